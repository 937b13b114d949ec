"""The HTTP services under bounded load in the running stack: the ledger API answers
200 concurrent readers, 503 with Retry-After while PostgreSQL is away and 200 again
after it returns; the gateway refuses oversized bodies without holding them."""

from __future__ import annotations

import time

import pytest

from carbonledger.bench import api_load
from carbonledger.contracts.settings import Settings
from carbonledger.ops import stack
from tests.integration.helpers import bearer, read_api

pytestmark = pytest.mark.integration


def test_the_api_answers_200_concurrent_readers_without_a_timeout(
    running_stack: stack.Processes,
) -> None:
    base = f"http://127.0.0.1:{running_stack.port('ledger-api')}"
    # Generous per-request bound: the machine may be shared; a deadlocked API never answers.
    report = api_load.drive_api(
        api_load.ApiLoad(
            base, clients=200, seconds=5, timeout=30, token=bearer()["Authorization"][7:]
        )
    )
    summary = report.summary()
    assert report.requests > 200, summary
    assert (report.timeouts, report.server_errors, dict(report.errors)) == (0, 0, {}), summary
    assert set(report.by_status) == {"200"}, summary


def test_the_gateway_refuses_oversized_bodies_while_they_stream(
    running_stack: stack.Processes,
) -> None:
    pid = running_stack.pid("gateway")
    assert pid is not None
    url = f"http://127.0.0.1:{running_stack.port('gateway')}/v1/events"
    load = api_load.BodyLoad(url, pid, bodies=4, megabytes=200)
    report = api_load.refuse_bodies(load)
    assert dict(report.answers) == {"413": 4}, report.summary()
    assert report.rss_peak_mb < 150, report.summary()


def test_the_api_is_503_while_postgres_is_away_and_recovers_after(
    settings: Settings, running_stack: stack.Processes
) -> None:
    base = f"http://127.0.0.1:{running_stack.port('ledger-api')}"
    assert read_api(f"{base}/v1/ledgers/totals", timeout=30).status_code == 200  # pooled
    stack.script("postgres", "stop", settings)
    try:
        away = [read_api(f"{base}/v1/ledgers/totals", timeout=30) for _ in range(3)]
        ready = read_api(f"{base}/readyz", timeout=30)
    finally:
        stack.script("postgres", "start", settings)
    assert {a.status_code for a in away} == {503}
    assert all(int(a.headers["retry-after"]) > 0 for a in away)
    assert ready.status_code == 503 and ready.json() == {"ready": False}
    statuses = _statuses_until_ok(f"{base}/v1/ledgers/totals", within=60)
    assert statuses[-1] == 200 and set(statuses) <= {200, 503}, statuses  # never a 500
    assert read_api(f"{base}/readyz", timeout=30).status_code == 200
    running_stack.wait_ready("ledger-writer")  # the stack whole again for the other tests


def _statuses_until_ok(url: str, within: float) -> list[int]:
    statuses: list[int] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        statuses.append(read_api(url, timeout=30).status_code)
        if statuses[-1] == 200:
            break
        time.sleep(0.5)
    return statuses
