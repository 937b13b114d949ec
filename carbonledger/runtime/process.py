"""The shape of a stage process started by its own `main()`: a faust worker (its
lifecycle, signals and the one web server with /metrics, /healthz, /readyz from
runtime/stage.py), and blocking work on a database connection kept off the
event loop so heartbeats and rebalances go on while it runs."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Callable
from typing import NoReturn, ParamSpec, TypeVar

import faust

from carbonledger.contracts.settings import Settings
from carbonledger.runtime.logs import logging_config

P = ParamSpec("P")
T = TypeVar("T")


class OffLoop:
    """Blocking calls on one connection, each in a thread and one at a time.

    `close` waits for the call in flight: a worker stopping while a transaction
    runs lets it end (commit or roll back) before the connection goes."""

    def __init__(self, close: Callable[[], None]) -> None:
        self._close = close
        self._lock = threading.Lock()

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        def locked() -> T:
            with self._lock:
                return fn(*args, **kwargs)

        return await asyncio.to_thread(locked)

    def close(self) -> None:
        with self._lock:
            self._close()


# A stage allocates a few container objects per record (decoded claims, outputs, futures)
# that die young, so the cyclic collector's default of a young collection every 700
# net allocations ran hundreds of times a batch for little; 10,000 keeps the young
# generation a few MB. What import and start-up made (modules, classes, schemas) lives as
# long as the process: frozen, the full collections no longer walk it.
GC_THRESHOLDS = (10_000, 20, 10)


def _tune_gc() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_worker(app: faust.App, *closing: Callable[[], None]) -> NoReturn:
    """Run `app` as a faust worker logging as configured (runtime/logs.py: text, faust's
    own format, or JSON, at CARBON_LOG_LEVEL), then close what it used."""
    settings = Settings()
    config = logging_config(settings) if settings.log_format == "json" else None
    _tune_gc()
    try:
        faust.Worker(
            app, loglevel=settings.log_level.lower(), logging_config=config
        ).execute_from_commandline()
    finally:
        for close in closing:
            close()
