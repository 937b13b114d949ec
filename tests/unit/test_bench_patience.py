"""The benchmark across a PostgreSQL or broker restart: reads of the books are
retried on a new connection, a lost lag reading costs a reading, not the run."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from kafka.errors import NodeNotReadyError

from carbonledger.bench import patience, run
from carbonledger.contracts.settings import Settings


class FakeConnection:
    closed = False

    def close(self) -> None:
        self.closed = True


def test_a_read_is_retried_on_a_new_connection_until_postgresql_is_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[FakeConnection] = []

    def connect(*args: Any, **kwargs: Any) -> FakeConnection:
        opened.append(FakeConnection())
        return opened[-1]

    monkeypatch.setattr(psycopg, "connect", connect)
    failures = [psycopg.OperationalError("terminating connection due to administrator command")]

    def view(conn: FakeConnection, seq: int) -> int:
        if failures:
            raise failures.pop()
        return seq + 1

    books = patience.Books(Settings(), patience=30)
    assert books.read(view, 41) == 42
    assert len(opened) == 2 and opened[0].closed and not opened[1].closed


def test_a_read_that_is_wrong_rather_than_unlucky_is_not_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(psycopg, "connect", lambda *a, **k: FakeConnection())
    calls: list[int] = []

    def view(conn: FakeConnection) -> None:
        calls.append(1)
        raise psycopg.errors.UndefinedTable("no such table")

    with pytest.raises(psycopg.errors.UndefinedTable):
        patience.Books(Settings()).read(view)
    assert calls == [1]


def test_a_read_gives_up_after_its_patience(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psycopg, "connect", lambda *a, **k: FakeConnection())

    def view(conn: FakeConnection) -> None:
        raise psycopg.OperationalError("connection refused")

    with pytest.raises(psycopg.OperationalError):
        patience.Books(Settings(), patience=1).read(view)


class FakeBooks:
    def read(self, view: Any, *args: Any) -> dict[int, int]:
        return {}


class FakeProbe:
    def __init__(self, settings: Settings) -> None:
        made.append(self)
        if len(made) == 1:
            raise NodeNotReadyError("broker restarting")

    def pipeline(self, ledger_offsets: dict[int, int]) -> dict[str, int]:
        return {"carbon-ingest": 0}

    def __exit__(self, *exc: object) -> None:
        pass


made: list[FakeProbe] = []


def test_catching_up_rides_out_a_broker_that_is_not_ready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made.clear()
    monkeypatch.setattr(run, "LagProbe", FakeProbe)
    run.wait_caught_up(Settings(), FakeBooks(), timeout=60)  # type: ignore[arg-type]
    assert len(made) == 2  # the first probe failed; a new one read the lag
