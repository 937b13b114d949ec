"""The HTTP gateway: signed requests, replay window, per-event answers."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from kafka.errors import KafkaTimeoutError

from carbonledger.services.ingest import gateway_service
from carbonledger.services.ingest.config import IngestSettings
from carbonledger.services.ingest.domain import admission
from carbonledger.services.ingest.domain.gateway import (
    BadBatch,
    BrokerUnavailable,
    ReplayGuard,
    Unauthorised,
    sign,
    split_batch,
)
from carbonledger.services.ingest.entrypoints.body_limit import BodyTooLarge, read_capped
from carbonledger.services.ingest.entrypoints.gateway import KafkaSender, app
from carbonledger.services.ingest.gateway_service import Gateway
from tests.factories import event, metro, raw, registry

SECRET = b"shenzhen-metro-dev-secret"  # the documented development secret


class FakeSender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def send_all(self, topic: str, records: list[bytes]) -> None:
        self.sent += [(topic, r) for r in records]


@pytest.fixture()
def sender() -> FakeSender:
    fake = FakeSender()
    app.state.gateway = Gateway(IngestSettings(environment="test"), registry(), fake)
    return fake


def post(
    body: bytes,
    *,
    secret: bytes = SECRET,
    ts: int | None = None,
    partner: str = "shenzhen-metro",
    signature: str | None = None,
    path: str = "/v1/events",
) -> httpx.Response:
    stamp = str(ts if ts is not None else int(time.time()))
    headers = {
        "X-Carbon-Partner": partner,
        "X-Carbon-Timestamp": stamp,
        "X-Carbon-Signature": signature or sign(secret, stamp, body),
        "Content-Type": "application/json",
    }
    # starlette's TestClient subclasses httpx2's Client if it can, so mypy sees no types on it.
    answer: httpx.Response = TestClient(app).post(path, content=body, headers=headers)
    return answer


def test_a_signed_batch_is_answered_event_by_event(sender: FakeSender) -> None:
    good, spoofed = metro(id="g-1"), metro(id="g-2", source="navi-maps")
    far = metro(id="g-3", data_distance_km="900")
    body = b"[" + b",".join(raw(e) for e in (good, spoofed, far)) + b"]"
    answer = post(body)
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [(r["id"], r["status"], r["reason"]) for r in results] == [
        ("g-1", "accepted", None),
        ("g-2", "rejected", "source_mismatch"),
        ("g-3", "rejected", "out_of_bounds"),
    ]
    assert sender.sent == [("partner.shenzhen-metro.events", raw(good))]  # the exact bytes


def test_the_gateway_admits_a_units_event_and_refuses_an_unknown_subjectkind(
    sender: FakeSender,
) -> None:
    unit, bad = metro(id="u-1", subjectkind="unit"), metro(id="u-2", subjectkind="company")
    results = post(b"[" + raw(unit) + b"," + raw(bad) + b"]").json()["results"]
    assert [(r["id"], r["status"], r["reason"]) for r in results] == [
        ("u-1", "accepted", None),
        ("u-2", "rejected", "invalid_envelope"),
    ]
    assert sender.sent == [("partner.shenzhen-metro.events", raw(unit))]


def test_a_dry_run_answers_as_a_post_would_and_publishes_nothing(sender: FakeSender) -> None:
    good, far = metro(id="d-1"), metro(id="d-2", data_distance_km="900")
    body = b"[" + raw(good) + b"," + raw(far) + b"]"
    checked = post(body, path="/v1/events/dry-run")
    assert checked.status_code == 200 and sender.sent == []
    assert [(r["id"], r["status"], r["reason"]) for r in checked.json()["results"]] == [
        ("d-1", "accepted", None),
        ("d-2", "rejected", "out_of_bounds"),
    ]
    assert post(body, path="/v1/events/dry-run", signature="0" * 64).status_code == 401
    sent = post(body, ts=int(time.time()) - 1)  # signed anew: a replayed signature is refused
    assert sent.json()["results"] == checked.json()["results"]
    assert sender.sent == [("partner.shenzhen-metro.events", raw(good))]


def test_one_event_without_an_array_is_accepted(sender: FakeSender) -> None:
    assert post(raw(metro(id="solo"))).json()["accepted"] == 1


@pytest.mark.parametrize(
    "how",
    ["bad signature", "stale timestamp", "future timestamp", "wrong secret", "unknown partner"],
)
def test_unproven_requests_are_refused_with_401(sender: FakeSender, how: str) -> None:
    body = raw(metro(id="x"))
    now = int(time.time())
    answer = {
        "bad signature": lambda: post(body, signature="0" * 64),
        "stale timestamp": lambda: post(body, ts=now - 301),
        # Well past the window: the seconds the test takes shrink a future offset.
        "future timestamp": lambda: post(body, ts=now + 360),
        "wrong secret": lambda: post(body, secret=b"guess"),
        "unknown partner": lambda: post(body, partner="nobody", secret=b"nobody-dev-secret"),
    }[how]()
    assert answer.status_code == 401 and answer.json()["detail"]
    assert sender.sent == []


def test_a_replayed_signed_request_is_refused(sender: FakeSender) -> None:
    body, stamp = raw(metro(id="once")), str(int(time.time()))
    signature = sign(SECRET, stamp, body)
    assert post(body, ts=int(stamp), signature=signature).status_code == 200
    assert post(body, ts=int(stamp), signature=signature).status_code == 401
    assert len(sender.sent) == 1


@pytest.mark.parametrize("case", [str.upper, lambda s: s[:10].upper() + s[10:]])
def test_a_replay_in_another_letter_case_is_still_a_replay(
    sender: FakeSender, case: object
) -> None:
    body, stamp = raw(metro(id="case")), str(int(time.time()))
    signature = sign(SECRET, stamp, body)
    assert post(body, ts=int(stamp), signature=signature).status_code == 200
    again = post(body, ts=int(stamp), signature=case(signature))  # type: ignore[operator]
    assert again.status_code == 401 and "already used" in again.json()["detail"]
    assert len(sender.sent) == 1


def test_a_signature_in_capitals_is_accepted_once() -> None:
    guard, body, now = ReplayGuard(), b"{}", time.time()
    signature = sign(SECRET, str(int(now)), body).upper()
    guard.check(SECRET, str(int(now)), signature, body, now)
    with pytest.raises(Unauthorised, match="already used"):
        guard.check_headers(SECRET, str(int(now)), signature.lower(), now)


@pytest.mark.parametrize(
    "signature", ["0" * 63, "0" * 65, " " + "0" * 63, "0x" + "0" * 62, "g" * 64, "00 " * 21 + "0"]
)
def test_a_signature_that_is_not_64_hex_digits_is_refused_before_the_body(signature: str) -> None:
    with pytest.raises(Unauthorised, match="64 hex digits"):
        ReplayGuard().check_headers(SECRET, str(int(time.time())), signature, time.time())


def test_a_timestamp_must_be_plain_digits() -> None:
    for stamp in (" 1", "1_0", "１２", "-5", ""):
        with pytest.raises(Unauthorised, match="Unix seconds"):
            ReplayGuard().check_headers(SECRET, stamp, "0" * 64, time.time())


def test_an_unproven_request_is_refused_without_reading_its_body(sender: FakeSender) -> None:
    read: list[int] = []

    def body() -> Iterator[bytes]:
        for n in range(100):
            read.append(n)
            yield b" " * 1024

    answer: httpx.Response = TestClient(app).post(
        "/v1/events", content=body(), headers={**signed(b""), "X-Carbon-Signature": "nope"}
    )
    assert answer.status_code == 401 and "64 hex digits" in answer.json()["detail"]
    assert len(read) <= 1  # the test transport may take the first chunk; never the rest


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(sender: FakeSender) -> None:
    sent: list[int] = []

    def body() -> Iterator[bytes]:  # no Content-Length: the transport sends it chunked
        for n in range(20):
            sent.append(n)
            yield b" " * (1024 * 1024)

    answer: httpx.Response = TestClient(app).post("/v1/events", content=body(), headers=signed(b""))
    assert answer.status_code == 413 and "body over" in answer.json()["detail"]


def test_reading_a_body_stops_at_the_limit() -> None:
    taken: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for n in range(1000):
            taken.append(n)
            yield b"x" * 100

    async def read(limit: int) -> bytes:
        return await read_capped(chunks(), limit)

    assert len(asyncio.run(read(10**6))) == 100_000
    taken.clear()
    with pytest.raises(BodyTooLarge):
        asyncio.run(read(250))
    assert len(taken) == 3  # the third chunk passed the limit; nothing after it was asked for


def test_batch_limits_and_malformed_bodies() -> None:
    assert len(split_batch(b' [ {"a": 1.5} , {"b": [1, 2]} ] ', 10)) == 2
    assert split_batch(b'[{"a": 10.40}]', 10) == [b'{"a": 10.40}']  # digits kept as sent
    with pytest.raises(BadBatch) as too_many:
        split_batch(b"[" + b",".join([b"{}"] * 11) + b"]", 10)
    assert too_many.value.status == 413
    for bad in (b"[{}, ", b"[{} {}]", b"[{}] x", b"\xff"):
        with pytest.raises(BadBatch):
            split_batch(bad, 10)


def test_an_oversized_body_is_refused_before_anything_else(sender: FakeSender) -> None:
    answer = post(b"[" + b" " * (5 * 1024 * 1024) + b"]")
    assert answer.status_code == 413
    # A declared length over the limit is refused on the headers, even unsigned.
    declared = TestClient(app).post(
        "/v1/events",
        content=b"[]",
        headers={**signed(b"[]"), "X-Carbon-Signature": "nope", "Content-Length": str(10**9)},
    )
    assert declared.status_code == 413


def test_malformed_batch_is_400_after_authentication(sender: FakeSender) -> None:
    answer = post(b"[{},")
    assert answer.status_code == 400
    assert json.loads(answer.content)["detail"].startswith("not a JSON array")


def test_poison_events_are_refused_alone_and_their_batch_goes_on(sender: FakeSender) -> None:
    """The inputs that answered 500 for a whole batch: each is now its own event's
    4xx-style reason, and the valid events around them are accepted."""
    control = raw(event("steps.daily", "440305", date="2026-10-09", steps=9000))
    deep = b'{"id": "deep", "x": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    far = raw(event("steps.daily", "440305", date="9999-12-31", steps=1) | {"id": "far"})
    doubled = control.replace(b'"steps": 9000', b'"steps": 1, "steps": 9000').replace(
        b'"id": "', b'"id": "dup-', 1
    )
    body = b"[" + b",".join((control, deep, far, doubled)) + b"]"
    answer = post(body, partner="every-app", secret=b"every-app-dev-secret")
    assert answer.status_code == 200, answer.text
    got = [(r["status"], r["reason"]) for r in answer.json()["results"]]
    assert got == [
        ("accepted", None),
        ("rejected", "too_deep"),
        ("rejected", "in_future"),
        ("rejected", "duplicate_key"),
    ]
    assert sender.sent == [("partner.every-app.events", control)]


def test_an_unexpected_failure_is_that_events_processing_error(
    sender: FakeSender, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = admission.validate_event

    def failing_on_poison(raw_event: bytes, **kwargs: Any) -> Any:
        if b"poison" in raw_event:
            raise OverflowError("a bug in a check")
        return real(raw_event, **kwargs)

    monkeypatch.setattr(gateway_service, "validate_event", failing_on_poison)
    body = b"[" + raw(metro(id="poison")) + b"," + raw(metro(id="fine")) + b"]"
    answer = post(body)
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [(r["id"], r["reason"]) for r in results] == [
        ("poison", "processing_error"),
        ("fine", None),
    ]
    assert [r for _, r in sender.sent] == [raw(metro(id="fine"))]


def test_a_refused_id_is_echoed_only_when_printable(sender: FakeSender) -> None:
    answer = post(raw(metro(id="bad\u0000id")))  # json.dumps writes the NUL as \u0000
    assert answer.status_code == 200
    (result,) = answer.json()["results"]
    assert result["reason"] == "invalid_envelope" and result["id"] is None


def test_a_batch_with_an_event_deeper_than_the_parser_is_still_split() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    assert split_batch(b"[{}, " + deep + b", {}]", 10) == [b"{}", deep, b"{}"]
    with pytest.raises(BadBatch):
        split_batch(b"[{}, " + b"[" * 100_000 + b"]", 10)


class SlowBroker(FakeSender):
    """A broker that acknowledges only when released (or after 5 s, so that a gateway
    which waits for it on the event loop makes this test fail rather than hang)."""

    def __init__(self) -> None:
        super().__init__()
        self.sending, self.released = threading.Event(), threading.Event()

    def send_all(self, topic: str, records: list[bytes]) -> None:
        self.sending.set()
        self.released.wait(timeout=5)
        super().send_all(topic, records)


def signed(body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {
        "X-Carbon-Partner": "shenzhen-metro",
        "X-Carbon-Timestamp": stamp,
        "X-Carbon-Signature": sign(SECRET, stamp, body),
    }


async def health_while_sending(broker: SlowBroker, body: bytes) -> tuple[int, bool, httpx.Response]:
    """/healthz's status asked while a POST waits for the broker, whether that POST
    was still waiting when /healthz answered, and the POST's answer."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        posting = asyncio.create_task(client.post("/v1/events", content=body, headers=signed(body)))
        assert await asyncio.to_thread(broker.sending.wait, 5)
        health = await client.get("/healthz")
        still_sending = not posting.done()
        broker.released.set()
        return health.status_code, still_sending, await posting


def test_a_slow_broker_does_not_stall_the_other_requests() -> None:
    broker = SlowBroker()
    app.state.gateway = Gateway(IngestSettings(environment="test"), registry(), broker)
    body = raw(metro(id="slow-1"))
    health, still_sending, answer = asyncio.run(health_while_sending(broker, body))
    assert health == 200 and still_sending
    assert answer.status_code == 200 and answer.json()["accepted"] == 1
    assert broker.sent == [("partner.shenzhen-metro.events", body)]


def test_importing_the_gateway_builds_nothing_until_app_is_asked_for() -> None:
    # Settings, registry and producer fail if built at all: only the lifespan may build them.
    probe = (
        "import json, sys\n"
        "import carbonledger.services.ingest.config as config\n"
        "import carbonledger.contracts.partners as partners\n"
        "import carbonledger.runtime.producers as producers\n"
        "def refuse(*args, **kwargs): raise AssertionError('built at import')\n"
        "config.IngestSettings.__init__ = refuse\n"
        "partners.load_registry = producers.producer = refuse\n"
        "import carbonledger.services.ingest.entrypoints.gateway as gateway\n"
        "built_at_import = 'app' in vars(gateway)\n"
        "app = gateway.app\n"
        "print(json.dumps([built_at_import, app is gateway.app, sorted(app.openapi()['paths'])]))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [False, True, ["/v1/events", "/v1/events/dry-run"]]


@pytest.mark.parametrize(
    "missing", ["X-Carbon-Partner", "X-Carbon-Timestamp", "X-Carbon-Signature"]
)
def test_a_missing_signature_header_is_401_as_documented(sender: FakeSender, missing: str) -> None:
    body = raw(metro(id="m-1"))
    stamp = str(int(time.time()))
    headers = {
        "X-Carbon-Partner": "shenzhen-metro",
        "X-Carbon-Timestamp": stamp,
        "X-Carbon-Signature": sign(SECRET, stamp, body),
    }
    del headers[missing]
    answer: httpx.Response = TestClient(app).post("/v1/events", content=body, headers=headers)
    assert answer.status_code == 401 and missing in answer.json()["detail"]
    assert sender.sent == []


class DownBroker:
    def send_all(self, topic: str, records: list[bytes]) -> None:
        raise BrokerUnavailable("the broker did not take the events: KafkaTimeoutError")


def test_a_broker_that_does_not_take_the_events_is_503_to_retry() -> None:
    app.state.gateway = Gateway(IngestSettings(environment="test"), registry(), DownBroker())
    answer = post(raw(metro(id="down-1")))
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    assert "did not take" in answer.json()["detail"]


def test_the_kafka_sender_turns_a_broker_error_into_broker_unavailable() -> None:
    class Failing:
        def send(self, topic: str, key: bytes | None, value: bytes) -> Any:
            raise KafkaTimeoutError("no broker")

        def flush(self, timeout: float) -> None: ...

    sender = KafkaSender.__new__(KafkaSender)
    sender.producer = Failing()
    with pytest.raises(BrokerUnavailable, match="no broker"):
        sender.send_all("partner.shenzhen-metro.events", [b"{}"])


def test_the_openapi_documents_body_statuses_and_the_signature() -> None:
    doc = app.openapi()
    operation = doc["paths"]["/v1/events"]["post"]
    assert operation["requestBody"]["required"] is True
    assert {"200", "400", "401", "413", "503"} <= operation["responses"].keys()
    assert "422" not in operation["responses"]
    assert operation["security"] == [{"partnerId": [], "timestamp": [], "signature": []}]
    assert "CloudEvent" in doc["components"]["schemas"]
    assert "parameters" not in operation  # the headers are the security schemes
