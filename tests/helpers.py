"""Small helpers for tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import socket
import sys

PYTHON = sys.executable


def run(coro):
    """Run a coroutine in a fresh event loop (tests stay plain functions)."""
    return asyncio.run(coro)


def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
