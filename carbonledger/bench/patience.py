"""Riding out the faults the benchmark is run under: PostgreSQL or the broker
restarting (AdminShutdown, NodeNotReadyError, ...) no longer ends a run without a
verdict. Every read of the books and every lag reading is retried with bounded,
growing waits, on a new connection, for as long as a restart plausibly takes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import psycopg
from kafka.errors import KafkaError
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from carbonledger.contracts.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

# A restart of either takes seconds; minutes mean it is down, and the run fails then.
PATIENCE_SECONDS = 300.0
# psycopg.OperationalError covers AdminShutdown and refused connections; KafkaError
# the broker's NodeNotReadyError, timeouts and lost connections.
TRANSIENT: tuple[type[BaseException], ...] = (psycopg.OperationalError, KafkaError, OSError)


def patiently(patience: float = PATIENCE_SECONDS) -> Retrying:
    """Retry a transient failure after 0.5, 1, 2 ... up to 10 s between attempts."""
    return Retrying(
        retry=retry_if_exception_type(TRANSIENT),
        wait=wait_exponential(multiplier=0.5, max=10),
        stop=stop_after_delay(patience),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    )


class Books:
    """Reads of the books through one connection, opened again after it is lost."""

    def __init__(self, settings: Settings, patience: float = PATIENCE_SECONDS) -> None:
        self.settings, self.patience = settings, patience
        self.conn: psycopg.Connection | None = None

    def read(self, view: Callable[..., T], *args: Any) -> T:
        """`view(connection, *args)`, retried on a new connection while PostgreSQL is away."""
        for attempt in patiently(self.patience):
            with attempt:
                try:
                    return view(self._connection(), *args)
                except TRANSIENT:
                    self.close()
                    raise
        raise AssertionError("unreachable: tenacity reraises the last failure")

    def _connection(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(self.settings.pg_conninfo, autocommit=True)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None

    def __enter__(self) -> Books:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
