"""The shape of the ledger's plain-Python processes (writer, publisher): metrics on
their own port, and a loop that SIGTERM or SIGINT ends after its current batch."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from typing import Any

from prometheus_client import start_http_server

from services.ledger.config import LedgerSettings


def run_process(run: Callable[[LedgerSettings, list[bool]], None], metrics_port: int) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = LedgerSettings()
    start_http_server(int(os.environ.get("CARBON_WEB_PORT", metrics_port)), addr="127.0.0.1")
    stop = [False]

    def _stop(signum: int, frame: Any) -> None:
        stop[0] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    run(settings, stop)
