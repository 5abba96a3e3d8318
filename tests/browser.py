"""Headless Chromium (Debian's ``chromium`` package) driven over the Chrome DevTools Protocol, for page tests:
load a URL, record every request the page made, evaluate an expression in it, take a screenshot. Started with
the flags a closed machine needs (no background networking, no sync, no first-run) and its own profile folder;
stopped with its process group."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from resi.processes import die_with_parent

FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--window-size=1280,1600",
]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_or_skip() -> str:
    """The browser's path; the calling test is skipped, saying how to install it, when there is none."""
    binary = chromium_path()
    if binary is None:
        import pytest

        pytest.skip(
            "headless Chromium is not installed: `apt-get install chromium` (scripts/dev.py test does it when run as root)"
        )
    return binary


@dataclass
class Visit:
    requests: list[str] = field(default_factory=list)
    """Every URL the page asked for, the page itself included."""
    value: object = None
    """What the evaluated expression returned."""
    screenshot: bytes = b""


class Chromium:
    def __init__(self, profile: Path, binary: str):
        self.profile = profile
        self.binary = binary
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    def __enter__(self) -> Chromium:
        self.profile.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                self.binary,
                *FLAGS,
                f"--user-data-dir={self.profile}",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        active = self.profile / "DevToolsActivePort"  # Chromium writes the port it chose here
        deadline = time.monotonic() + 60
        while not (active.exists() and active.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start (exit code {self.proc.poll()})")
            time.sleep(0.1)
        self.port = int(active.read_text().split()[0])
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def visit(self, url: str, expression: str, timeout: float = 60) -> Visit:
        return asyncio.run(asyncio.wait_for(self._visit(url, expression), timeout))

    async def _visit(self, url: str, expression: str) -> Visit:
        visit = Visit()
        ids = itertools.count(1)
        async with aiohttp.ClientSession() as http:
            async with http.put(f"http://127.0.0.1:{self.port}/json/new?about:blank") as resp:
                target = await resp.json(content_type=None)
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                pending: dict[int, asyncio.Future] = {}
                loaded = asyncio.get_running_loop().create_future()

                async def reader() -> None:
                    async for msg in ws:
                        data = json.loads(msg.data)
                        if "id" in data and data["id"] in pending:
                            pending.pop(data["id"]).set_result(data)
                        elif data.get("method") == "Network.requestWillBeSent":
                            visit.requests.append(data["params"]["request"]["url"])
                        elif data.get("method") == "Page.loadEventFired" and not loaded.done():
                            loaded.set_result(True)

                async def send(method: str, **params) -> dict:
                    number = next(ids)
                    pending[number] = asyncio.get_running_loop().create_future()
                    await ws.send_json({"id": number, "method": method, "params": params})
                    answer = await pending[number]
                    if "error" in answer:
                        raise RuntimeError(f"{method}: {answer['error']}")
                    return answer["result"]

                reading = asyncio.create_task(reader())
                try:
                    await send("Network.enable")
                    await send("Page.enable")
                    await send("Page.navigate", url=url)
                    await loaded
                    result = await send("Runtime.evaluate", expression=expression, returnByValue=True)
                    visit.value = result["result"].get("value")
                    shot = await send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
                    visit.screenshot = base64.b64decode(shot["data"])
                finally:
                    reading.cancel()
        return visit
