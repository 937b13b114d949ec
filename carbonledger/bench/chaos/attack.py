"""Sending the tables to a running stack and observing what it did.

Every input goes twice: alone, then followed by a valid control event (in the same
HTTP batch, or next on the same partner topic). All of a table is sent in one go, then
the run waits until every control is credited and every refused input is accounted
for (or the timeout), reads the dead letters written since it started, the postings of
its events and every process's start time, and hands them to verdict.py.
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import httpx
import orjson
import psycopg
from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from carbonledger.bench.chaos.hostile import HOSTILE, HTTP, KAFKA, PARTNER, Crafting, Hostile
from carbonledger.bench.chaos.hostile import control as control_of
from carbonledger.bench.chaos.poison import POISON, Poison, upstream
from carbonledger.bench.chaos.verdict import (
    ALONE,
    WITH_CONTROL,
    Attempt,
    Observed,
    Verdict,
    judge_all,
    restarted,
)
from carbonledger.contracts import topics
from carbonledger.contracts.partners import load_registry
from carbonledger.contracts.records import DeadLetter
from carbonledger.contracts.settings import Settings
from carbonledger.ops import stack
from carbonledger.ops.publish import publish
from carbonledger.runtime.producers import Outgoing, producer, send_and_wait
from carbonledger.services.ingest.domain.gateway import sign
from carbonledger.services.ledger.adapters import views


@dataclass
class Report:
    verdicts: list[Verdict] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.restarted and all(v.ok for v in self.verdicts)


def new_tag() -> str:
    return f"chaos{uuid.uuid4().hex[:8]}"


# --- process restarts ------------------------------------------------------------------


def start_times(processes: stack.Processes) -> dict[str, float]:
    """Every running service process's `process_start_time_seconds`, by name-worker."""
    found = {}
    for name, worker in processes.running():
        url = f"http://127.0.0.1:{processes.port(name, worker)}/metrics"
        try:
            text = httpx.get(url, timeout=10).text
        except httpx.HTTPError:
            continue  # not answering: the next reading says whether it came back
        for family in text_string_to_metric_families(text):
            if family.name == "process_start_time_seconds" and family.samples:
                found[f"{name}-{worker}"] = family.samples[0].value
    return found


# --- sending -----------------------------------------------------------------------------


def kafka_attempts(cases: Iterable[Hostile], crafting: Crafting) -> Iterator[Attempt]:
    for case in cases:
        if KAFKA in case.channels:
            for phase in (ALONE, WITH_CONTROL):
                event_id = crafting.event_id(case.name, f"{KAFKA}-{phase}")
                yield Attempt(
                    case.name,
                    KAFKA,
                    phase,
                    event_id,
                    case.build(crafting, event_id),
                    case.reasons,
                    control_id=_control_id(crafting, case, KAFKA, phase),
                )


def _control_id(crafting: Crafting, case: Hostile, channel: str, phase: str) -> str | None:
    return crafting.control_id(case.name, f"{channel}-{phase}") if phase != ALONE else None


def send_kafka(settings: Settings, attempts: list[Attempt], crafting: Crafting) -> None:
    """Each input on the partner's own topic as the partner; a control right after."""
    records = []
    for a in attempts:
        records.append((PARTNER, a.raw))
        if a.control_id is not None:
            records.append((PARTNER, control_of(crafting, a.case, f"{KAFKA}-{a.phase}")))
    publish(settings, records)


class Gateway:
    """Signed requests to the HTTP gateway as the partner."""

    def __init__(self, settings: Settings, processes: stack.Processes) -> None:
        partner = load_registry(settings.partners_file).get(PARTNER)
        assert partner is not None, PARTNER
        secret = partner.signing_secret(os.environ, settings.environment == "production")
        if secret is None:
            raise RuntimeError(f"no HTTP signing secret configured for {PARTNER}")
        self.secret = secret
        self.url = f"http://127.0.0.1:{processes.port('gateway')}/v1/events"
        self.client = httpx.Client(timeout=120)
        self.signed: set[tuple[str, bytes]] = set()

    def post(self, body: bytes) -> tuple[int | None, list[dict[str, object]]]:
        """The answer's status and per-event results; no status when the gateway
        dropped the connection (a failure of the gateway, judged as such)."""
        stamp = str(int(time.time()))
        while (stamp, body) in self.signed:  # the same body again: not a replay of it
            stamp = str(int(stamp) + 1)
        self.signed.add((stamp, body))
        headers = {
            "X-Carbon-Partner": PARTNER,
            "X-Carbon-Timestamp": stamp,
            "X-Carbon-Signature": sign(self.secret, stamp, body),
        }
        try:
            answer = self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError:
            return None, []
        return answer.status_code, _results(answer)

    def close(self) -> None:
        self.client.close()


def http_attempts(
    gateway: Gateway, cases: Iterable[Hostile], crafting: Crafting
) -> Iterator[Attempt]:
    """Each input in a batch of its own, then in a batch with a control; a whole-body
    input is the body itself, its control a request of its own right after."""
    for case in (c for c in cases if HTTP in c.channels):
        for phase in (ALONE, WITH_CONTROL):
            event_id = crafting.event_id(case.name, f"{HTTP}-{phase}")
            raw = case.build(crafting, event_id)
            control_id = _control_id(crafting, case, HTTP, phase)
            control = control_of(crafting, case.name, f"{HTTP}-{phase}")
            if case.whole_body:
                body = raw
            else:
                body = b"[" + raw + (b"," + control if control_id else b"") + b"]"
            status, results = gateway.post(body)
            if case.whole_body and control_id:
                gateway.post(b"[" + control + b"]")  # its credit is what is judged
            yield Attempt(
                case.name,
                HTTP,
                phase,
                event_id,
                raw,
                case.reasons,
                control_id=control_id,
                whole_body=case.whole_body,
                http_status=status,
                http_results=tuple(results),
            )


def _results(answer: httpx.Response) -> list[dict[str, object]]:
    try:
        found = answer.json().get("results", [])
    except (ValueError, AttributeError):
        return []
    return list(found) if isinstance(found, list) else []


def poison_attempts(
    settings: Settings, cases: Iterable[Poison], crafting: Crafting
) -> Iterator[Attempt]:
    for case in cases:
        event_id = crafting.event_id(case.name, case.topic)
        raw = case.build(upstream(settings, crafting, event_id))
        yield Attempt(case.name, case.topic, ALONE, event_id, raw, case.reasons)


def send_poison(settings: Settings, attempts: list[Attempt], crafting: Crafting) -> None:
    """Each poison on its topic as the admin principal, keyed as the stages key it
    (by subject), so it meets the partition a real record of its person would."""
    subject_of_trip = {a.event_id: crafting.trip(a.event_id)["subject"] for a in attempts}
    outgoing = [
        Outgoing(a.channel, a.raw, key=subject_of_trip[a.event_id].encode()) for a in attempts
    ]
    p = producer(settings)
    try:
        send_and_wait(p, outgoing, timeout=60)
    finally:
        p.close()


# --- observing ----------------------------------------------------------------------------


def rejected_ends(settings: Settings) -> dict[int, int]:
    """Where the dead-letter topic ends now, per partition: a run reads only after it."""
    consumer = _letters_consumer(settings)
    try:
        parts = _letter_partitions(consumer)
        return {tp.partition: end for tp, end in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()


def _letters_consumer(settings: Settings) -> KafkaConsumer:
    return KafkaConsumer(
        **settings.kafka_client_config(),
        enable_auto_commit=False,
        max_partition_fetch_bytes=topics.REJECTED_MAX_BYTES,
        fetch_max_bytes=topics.REJECTED_MAX_BYTES,
    )


def _letter_partitions(consumer: KafkaConsumer) -> list[TopicPartition]:
    found = consumer.partitions_for_topic(topics.REJECTED) or set()
    return [TopicPartition(topics.REJECTED, p) for p in sorted(found)]


def read_letters(settings: Settings, since: dict[int, int], into: Observed) -> None:
    """The dead letters written since `since`, into the observation (by payload and by
    the event id found in the payload); `since` moves on past what was read."""
    consumer = _letters_consumer(settings)
    try:
        parts = _letter_partitions(consumer)
        consumer.assign(parts)
        for tp in parts:
            consumer.seek(tp, since.get(tp.partition, 0))
        ends = consumer.end_offsets(parts)
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            for tp, records in consumer.poll(timeout_ms=1000).items():
                for record in records:
                    _note_letter(record.value, into)
                since[tp.partition] = consumer.position(tp)
    finally:
        consumer.close()


def _note_letter(value: bytes, into: Observed) -> None:
    try:
        letter = DeadLetter.model_validate_json(value)
    except ValueError:
        return
    payload = base64.b64decode(letter.payload_b64)
    into.letters[payload] = letter.reason
    event_id = _event_id_in(payload)
    if event_id is not None:
        into.letters_by_event[event_id] = letter.reason


def _event_id_in(payload: bytes) -> str | None:
    """The partner event id a record carries: a partner event's own, or that of the
    event an internal record is about."""
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    for path in (("claim", "event", "id"), ("event", "id"), ("id",)):
        node: object = document
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str):
            return node
    return None


def read_postings(conn: psycopg.Connection, tag: str, into: Observed) -> None:
    tallies = views.event_tallies(conn, tag)
    into.postings = {event_id: t.postings for (_, event_id), t in tallies.items()}


# --- a whole run ---------------------------------------------------------------------------


def run_tables(
    settings: Settings,
    hostile: Iterable[Hostile] = HOSTILE,
    poison: Iterable[Poison] = POISON,
    at: datetime | None = None,
    timeout: float = 180,
    progress: Callable[[str], None] = lambda _line: None,
) -> Report:
    """Send both tables to the running stack; the verdict of every input."""
    started = time.monotonic()
    processes = stack.Processes(settings)
    crafting = Crafting(new_tag(), at or datetime.now().astimezone())
    before, since = start_times(processes), rejected_ends(settings)
    hostile = list(hostile)
    attempts = list(kafka_attempts(hostile, crafting))
    send_kafka(settings, attempts, crafting)
    progress(f"sent {len(attempts)} partner records over Kafka")
    gateway = Gateway(settings, processes)
    try:
        attempts += http_attempts(gateway, hostile, crafting)
    finally:
        gateway.close()
    progress(f"sent {sum(a.channel == HTTP for a in attempts)} requests to the gateway")
    internal = list(poison_attempts(settings, poison, crafting))
    send_poison(settings, internal, crafting)
    attempts += internal
    progress(f"wrote {len(internal)} poison records to the internal topics")
    seen = wait_for_outcomes(settings, crafting.tag, attempts, since, timeout)
    return Report(
        judge_all(attempts, seen),
        restarted(before, start_times(processes)),
        round(time.monotonic() - started, 1),
    )


def wait_for_outcomes(
    settings: Settings, tag: str, attempts: list[Attempt], since: dict[int, int], timeout: float
) -> Observed:
    """Until every control is credited and every input sent to Kafka is dead-lettered or
    posted (nothing more will happen to it), or the timeout."""
    seen, deadline = Observed(), time.monotonic() + timeout
    with psycopg.connect(settings.pg_conninfo, autocommit=True) as conn:
        while True:
            read_letters(settings, since, seen)
            read_postings(conn, tag, seen)
            if _settled(attempts, seen) or time.monotonic() > deadline:
                return seen
            time.sleep(1)


def _settled(attempts: list[Attempt], seen: Observed) -> bool:
    for a in attempts:
        if a.control_id is not None and not seen.credited(a.control_id):
            return False
        if not a.reasons:
            if not seen.posted(a.event_id):
                return False
        elif a.channel != HTTP and not (seen.letter_reason(a) or seen.posted(a.event_id)):
            return False
    return True
