"""The HTTP gateway in the running stack: signed batches become credited reductions."""

from __future__ import annotations

import json
import time

import httpx
import psycopg
import pytest

from carbonledger.contracts.settings import Settings
from carbonledger.ops import stack
from carbonledger.services.ingest.domain.gateway import sign
from tests.integration.helpers import expected, trips, wait_for_balances

pytestmark = pytest.mark.integration


def test_signed_batch_over_http_is_credited_and_unsigned_is_refused(
    settings: Settings, db: psycopg.Connection, running_stack: stack.Processes
) -> None:
    records = [r for r in trips("gateway", 30, people=5, seed=31) if r[0] == "navi-maps"]
    body = b"[" + b",".join(raw for _, raw in records) + b"]"
    url = f"http://127.0.0.1:{running_stack.port('gateway')}/v1/events"
    stamp = str(int(time.time()))
    headers = {
        "X-Carbon-Partner": "navi-maps",
        "X-Carbon-Timestamp": stamp,
        "X-Carbon-Signature": sign(b"navi-maps-dev-secret", stamp, body),
    }
    answer = httpx.post(url, content=body, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == len(records) > 0
    assert httpx.post(url, content=body, headers=headers).status_code == 401  # replayed
    forged = {**headers, "X-Carbon-Signature": "0" * 64}
    assert httpx.post(url, content=body, headers=forged).status_code == 401
    want = dict(expected(settings, records).personal)
    assert wait_for_balances(settings, db, want) == want
    metrics = httpx.get(url.replace("/v1/events", "/metrics")).text
    accepted = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("carbon_gateway_events_total{")
        and 'partner="navi-maps"' in line
        and 'outcome="accepted"' in line
    ]
    assert accepted and accepted[0] >= len(records)
    assert json.loads(answer.text)["rejected"] == 0
