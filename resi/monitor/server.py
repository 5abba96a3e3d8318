"""The monitoring endpoint of a process: ``/metrics`` (Prometheus text), ``/healthz`` (the watchdog's view)
and read-only pages, from a thread of its own (a blocked event loop still answers), bound to 127.0.0.1
unless told otherwise. Off unless ``--metrics.port`` is given."""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from loguru import logger
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from resi.config import POSITIVE, SECONDS, env, number
from resi.monitor.watchdog import Heartbeat, Watchdog

Health = Callable[[], tuple[bool, dict]]
Page = Callable[[], str]


def add_monitor_args(parser: argparse.ArgumentParser, watchdog: bool = True) -> None:
    m = parser.add_argument_group("monitoring")
    m.add_argument(
        "--metrics.port",
        dest="metrics_port",
        type=number(int, 0, 65535),
        default=env("RESI_METRICS_PORT"),
        help="serve /metrics (Prometheus), /healthz and the status page on this port; 0 picks a free "
        "one; off when not given [env RESI_METRICS_PORT]",
    )
    m.add_argument(
        "--metrics.host",
        dest="metrics_host",
        default=env("RESI_METRICS_HOST", default="127.0.0.1"),
        help="address the monitoring port binds to (0.0.0.0 exposes it) [env RESI_METRICS_HOST]",
    )
    if watchdog:
        m.add_argument(
            "--watchdog.stall_seconds",
            dest="stall_seconds",
            type=POSITIVE,
            default=env("RESI_WATCHDOG_STALL_SECONDS", default="900"),
            help="seconds without progress after which /healthz answers 503 [env RESI_WATCHDOG_STALL_SECONDS]",
        )
        m.add_argument(
            "--watchdog.exit_seconds",
            dest="exit_seconds",
            type=SECONDS,
            default=env("RESI_WATCHDOG_EXIT_SECONDS", default="1800"),
            help="seconds without progress after which the neuron exits with code 3 so that pm2 restarts "
            "it; 0: never [env RESI_WATCHDOG_EXIT_SECONDS]",
        )


class MonitorServer:
    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry | None = None,
        health: Health | None = None,
        pages: dict[str, Page] | None = None,
    ):
        self.host, self.port = host, port
        self.registry = registry
        self.health = health
        self.pages = pages or {}
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> MonitorServer:
        monitor = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "resi-monitor"
            timeout = 10  # seconds a client has to send its request

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = urlsplit(self.path).path
                try:
                    status, kind, body = monitor.answer(path)
                except Exception:  # a page failing is ours to log, never the server's end
                    logger.exception(f"monitor: {path} failed")
                    status, kind, body = 500, "text/plain; charset=utf-8", b"internal error\n"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet: scrapes come every few s
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="monitor", daemon=True).start()
        served = (["/metrics"] if self.registry is not None else []) + ["/healthz", *self.pages]
        logger.info("serving " + ", ".join(self.url + path for path in served))
        return self

    def answer(self, path: str) -> tuple[int, str, bytes]:
        if path == "/metrics" and self.registry is not None:
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        if path == "/healthz":
            ok, detail = self.health() if self.health else (True, {"status": "ok"})
            return (200 if ok else 503), "application/json", json.dumps(detail).encode()
        page = self.pages.get(path)
        if page is not None:
            return 200, "text/html; charset=utf-8", page().encode()
        return 404, "text/plain; charset=utf-8", b"not found\n"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def start_monitoring(
    args: argparse.Namespace,
    registry: CollectorRegistry,
    heartbeat: Heartbeat | None = None,
    pages: dict[str, Page] | None = None,
) -> MonitorServer | None:
    """A neuron's watchdog (when given its ``heartbeat``: always for neurons) and the monitoring endpoint (when
    ``--metrics.port`` is given). A port that cannot be opened ends the start-up (exit 2) with the fix: the
    operator asked for it."""
    health = None
    if heartbeat is not None:
        health = Watchdog(heartbeat, args.stall_seconds, args.exit_seconds).start().health
    if args.metrics_port is None:
        return None
    try:
        return MonitorServer(args.metrics_host, args.metrics_port, registry, health, pages).start()
    except OSError as exc:
        logger.error(
            f"monitoring port {args.metrics_host}:{args.metrics_port} cannot be opened ({exc}): choose "
            "another --metrics.port (0 picks a free one) or leave it out"
        )
        raise SystemExit(2) from None
