"""The shape of the ledger's plain-Python processes (writer, publisher): one HTTP
port with /metrics, /healthz and /readyz, and a loop that SIGTERM or SIGINT ends
after its current batch."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from carbonledger.contracts.metrics import exposition
from carbonledger.contracts.settings import Settings

SettingsT = TypeVar("SettingsT", bound=Settings)


@dataclass
class Health:
    """What the process loop last found about itself; the HTTP thread only reads it."""

    ready: bool = False
    detail: dict[str, Any] = field(default_factory=dict)

    def update(self, ready: bool, **detail: Any) -> None:
        self.detail = {"ready": ready, **detail}
        self.ready = ready


def _handler(health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, content_type = exposition()
                self._answer(200, body, content_type)
            elif self.path == "/healthz":
                self._answer(200, b'{"status": "alive"}', "application/json")
            elif self.path == "/readyz":
                body = json.dumps(health.detail or {"ready": False}).encode()
                self._answer(200 if health.ready else 503, body, "application/json")
            else:
                self._answer(404, b'{"detail": "not found"}', "application/json")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # probes every few seconds would drown the log

    return Handler


def serve_health(host: str, port: int, health: Health) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), _handler(health))
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server


def run_process(
    run: Callable[[SettingsT, list[bool], Health], None], settings: SettingsT, default_port: int
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    health = Health()
    serve_health(settings.web_host, int(os.environ.get("CARBON_WEB_PORT", default_port)), health)
    stop = [False]

    def _stop(signum: int, frame: Any) -> None:
        stop[0] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    run(settings, stop, health)
