"""The partner inputs that stopped the pipeline or a whole HTTP batch, in the running
stack: each alone, then together with a valid control event, over Kafka and over
HTTP. The control is credited, each poison is dead-lettered (Kafka) or rejected in
its own result (HTTP) with its reason, and no stage restarts."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import psycopg
import pytest

from carbonledger.contracts.settings import Settings
from carbonledger.ops import stack
from carbonledger.ops.publish import publish
from carbonledger.services.ingest.domain.gateway import sign
from tests.integration.helpers import expected, trips, wait_for_balances
from tests.integration.test_pipeline import dead_letters

pytestmark = pytest.mark.integration

PARTNER = "navi-maps"  # may report metro trips and daily steps
SECRET = b"navi-maps-dev-secret"
YEAR_1 = "0001-01-01T00:00:00+14:00"


def base(tag: str) -> dict[str, Any]:
    """A valid navi-maps metro trip of this test's own person."""
    (_, raw), *_ = trips(f"hostile-{tag}", 1, people=1, seed=7)
    event: dict[str, Any] = json.loads(raw)
    return {**event, "source": PARTNER}


def poisons(tag: str) -> list[tuple[str, bytes]]:
    """(reason, record) for each named poison; ids carry `tag` so every copy is new."""
    trip = base(tag)

    def variant(name: str, **change: Any) -> dict[str, Any]:
        data = {**trip["data"], **change.pop("data", {})}
        return {**trip, "id": f"{tag}-{name}", **change, "data": data}

    def text(event: dict[str, Any]) -> bytes:
        return json.dumps(event).encode()

    distance = f'"distance_km": "{trip["data"]["distance_km"]}"'
    steps = {
        **trip,
        "id": f"{tag}-steps-9999",
        "type": "steps.daily",
        "data": {"region": "440305", "date": "9999-12-31", "steps": 1000},
    }
    deep = variant("deep")
    return [
        ("invalid_envelope", text(variant("nul\u0000id"))),
        ("out_of_bounds", text(variant("year-1", time=YEAR_1))),
        ("out_of_bounds", text(variant("year-1-interval", data={"started_at": YEAR_1}))),
        (
            "out_of_bounds",
            text(variant("tiny-number", data={"distance_km": "#n"})).replace(
                b'"#n"', b"1e-999999999"
            ),
        ),
        ("invalid_field", text(variant("tiny-text", data={"distance_km": "1E-999999"}))),
        ("in_future", text(steps)),
        (
            "too_deep",
            text({**deep, "ext": "#deep"}).replace(b'"#deep"', b"[" * 2000 + b"]" * 2000),
        ),
        (
            "duplicate_key",
            text(variant("dup-distance")).replace(
                distance.encode(), b'"distance_km": 12.5, "distance_km": 199.9'
            ),
        ),
        (
            "duplicate_key",
            text(variant("dup-subject")).replace(
                b'"subject": ', b'"subject": "' + b"b" * 64 + b'", "subject": '
            ),
        ),
    ]


def start_times(running_stack: stack.Processes) -> dict[str, float]:
    """`process_start_time_seconds` of every running service: a restart changes it."""
    found = {}
    for name, worker in running_stack.running():
        metrics = httpx.get(f"http://127.0.0.1:{running_stack.port(name, worker)}/metrics").text
        for line in metrics.splitlines():
            if line.startswith("process_start_time_seconds "):
                found[f"{name}-{worker}"] = float(line.split()[1])
    return found


def test_poison_over_kafka_is_dead_lettered_and_the_control_credited(
    settings: Settings, db: psycopg.Connection, running_stack: stack.Processes
) -> None:
    started = start_times(running_stack)
    alone = poisons("kafka-alone")
    for _, record in alone:
        publish(settings, [(PARTNER, record)])
    control = [(PARTNER, json.dumps(base("kafka-control")).encode())]
    together = poisons("kafka-together")
    publish(settings, [*control, *((PARTNER, r) for _, r in together)])

    letters = dead_letters(settings, {r for _, r in alone + together}, timeout=120)
    got = {raw: letter["reason"] for raw, letter in letters.items()}
    assert got == {raw: reason for reason, raw in alone + together}
    for letter in letters.values():  # the original bytes, byte for byte
        assert base64.b64decode(letter["payload_b64"]) in got
    want = dict(expected(settings, control).personal)
    assert want and wait_for_balances(settings, db, want) == want
    assert start_times(running_stack) == started


def post(url: str, body: bytes) -> httpx.Response:
    stamp = str(int(time.time()))
    headers = {
        "X-Carbon-Partner": PARTNER,
        "X-Carbon-Timestamp": stamp,
        "X-Carbon-Signature": sign(SECRET, stamp, body),
    }
    return httpx.post(url, content=body, headers=headers, timeout=60)


def test_poison_over_http_is_rejected_per_event_and_the_control_credited(
    settings: Settings, db: psycopg.Connection, running_stack: stack.Processes
) -> None:
    url = f"http://127.0.0.1:{running_stack.port('gateway')}/v1/events"
    started = start_times(running_stack)
    for reason, record in poisons("http-alone"):
        answer = post(url, b"[" + record + b"]")
        assert answer.status_code == 200, answer.text
        (result,) = answer.json()["results"]
        assert (result["status"], result["reason"]) == ("rejected", reason), record[:80]

    control = json.dumps(base("http-control")).encode()
    together = poisons("http-together")
    answer = post(url, b"[" + b",".join([control, *(r for _, r in together)]) + b"]")
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [(r["status"], r["reason"]) for r in results] == [
        ("accepted", None),
        *(("rejected", reason) for reason, _ in together),
    ]
    want = dict(expected(settings, [(PARTNER, control)]).personal)
    assert want and wait_for_balances(settings, db, want) == want
    assert start_times(running_stack) == started
