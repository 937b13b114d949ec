"""Ledger writer: dedupe.decisions -> postings in PostgreSQL, exactly once in effect.

Offsets live in PostgreSQL and are written in the transaction that writes the
postings they cover; on partition assignment the consumer seeks to them. Kafka's
own committed offsets are updated afterwards for lag monitoring only.

Run: python -m carbonledger.services.ledger.entrypoints.writer   (or `carbonledger ledger-writer`)
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from pydantic import ValidationError

from carbonledger.contracts import metrics, topics
from carbonledger.contracts.catalogue import Reason
from carbonledger.contracts.records import Decision, DecisionKind, ReductionClaim
from carbonledger.contracts.regions import RegionTable
from carbonledger.runtime.dead_letters import stage_dead_letter
from carbonledger.runtime.process import Health, run_process
from carbonledger.services.ledger.adapters.books import Applied, Books, Offset
from carbonledger.services.ledger.adapters.migrations import current_version, latest_version
from carbonledger.services.ledger.config import LedgerSettings

log = logging.getLogger("carbonledger.ledger.writer")

BATCHES = metrics.histogram(
    "ledger",
    "write_batch_decisions",
    "Decisions per ledger write batch",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
APPLIED = metrics.counter(
    "ledger", "decisions_total", "Decisions recorded (redeliveries not counted), by kind", ("kind",)
)
POSTINGS = metrics.counter(
    "ledger", "postings_total", "Postings made (three per credit or reversal)"
)
WRITE_SECONDS = metrics.histogram("ledger", "write_seconds", "Time to apply one batch")
CREDITED = metrics.counter(
    "ledger",
    "credited_reduction_grams_total",
    "Reduction credited to the books, by behaviour type and province",
    ("behaviour_type", "province"),
)
REVERSED = metrics.counter(
    "ledger",
    "reversed_reduction_grams_total",
    "Reduction taken back by reversals, by behaviour type and province",
    ("behaviour_type", "province"),
)
INGEST_TO_POSTING = metrics.histogram(
    "ledger",
    "ingest_to_posting_seconds",
    "From ingest admitting an event to its first credit being committed (the pipeline's latency)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300, 1800),
)
EVENT_TO_POSTING = metrics.histogram(
    "ledger",
    "event_to_posting_seconds",
    "From the event's time (set by the partner) to its first credit being committed",
    buckets=(1, 5, 30, 60, 300, 900, 3600, 14400, 86400, 259200, 604800, 2592000),
)
_MOVING = (DecisionKind.CREDIT, DecisionKind.REVERSE)


def observe(applied: Applied, regions: RegionTable, now: datetime) -> None:
    """Metrics of the decisions a batch recorded for the first time."""
    for d in applied.fresh:
        APPLIED.labels(d.kind.value).inc()
        if d.kind not in _MOVING:
            continue
        claim = d.claim
        province = regions.province_of(claim.region).code if claim.region in regions else "unknown"
        mass = CREDITED if d.amount_mg >= 0 else REVERSED
        mass.labels(claim.type, province).inc(metrics.grams(abs(d.amount_mg)))
        if d.kind is DecisionKind.CREDIT and d.sequence == 0:
            # Only the decision made when the claim arrived: a reversal or a later
            # credit of an older claim is timed by the claim that caused it, not this one.
            _latency(claim, now)


def _latency(claim: ReductionClaim, now: datetime) -> None:
    EVENT_TO_POSTING.observe(max(0.0, (now - claim.time).total_seconds()))
    if claim.received_at is not None:
        INGEST_TO_POSTING.observe(max(0.0, (now - claim.received_at).total_seconds()))


class SeekToStoredOffsets(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, resume each partition where the books say it was applied up to."""

    def __init__(self, consumer: KafkaConsumer, books: Books, group: str) -> None:
        self.consumer, self.books, self.group = consumer, books, group

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        pass

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        stored = self.books.offsets(self.group, topics.DECISIONS)
        for tp in assigned:
            if tp.partition in stored:
                self.consumer.seek(tp, stored[tp.partition])
        log.info("assigned %s", sorted(tp.partition for tp in assigned))


def _decode(records: list[Any], dead: KafkaProducer) -> list[Decision]:
    decoded = []
    for record in records:
        try:
            decoded.append(Decision.model_validate_json(record.value))
        except ValidationError as exc:
            letter = stage_dead_letter("ledger", Reason.UNDECODABLE_RECORD, str(exc), record)
            dead.send(topics.REJECTED, key=b"ledger", value=letter.to_bytes()).get(timeout=30)
            metrics.DEAD_LETTERS.labels("ledger", letter.reason).inc()
            metrics.RECORDS_PRODUCED.labels("ledger", topics.REJECTED).inc()
    return decoded


class LagReport:
    """The writer's consumer lag (highwater minus position), at most once a second.
    Records polled are in the database before the next poll, so the position is
    what the writer has processed."""

    def __init__(self, consumer: KafkaConsumer, group: str) -> None:
        self.consumer, self.group = consumer, group
        self.reported: set[str] = set()
        self.last = 0.0

    def maybe_report(self, health: Health, max_lag: int) -> None:
        if time.monotonic() - self.last < 1.0:
            return
        self.last = time.monotonic()
        lag = {topics.DECISIONS: 0}
        assigned = self.consumer.assignment()
        for tp in assigned:
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                lag[tp.topic] += max(0, highwater - self.consumer.position(tp))
        self.reported = metrics.report_lag(self.group, lag, self.reported)
        total = lag[topics.DECISIONS]
        health.update(
            bool(assigned) and total <= max_lag, assigned=len(assigned), lag_records=total
        )


def run(settings: LedgerSettings, stop: list[bool], health: Health) -> None:
    # autocommit: every write is an explicit transaction in Books.apply, and reads
    # (offsets on assignment) must not leave one open around it.
    conn = psycopg.connect(settings.pg_conninfo, autocommit=True)
    if current_version(conn) != latest_version():
        raise SystemExit("ledger schema is not migrated; run `carbonledger db migrate`")
    books = Books(conn)
    consumer = KafkaConsumer(
        **settings.pipeline_consumer_config(settings.ledger_group, f"ledger-writer-{os.getpid()}"),
        max_poll_records=settings.ledger_batch_max,
        isolation_level="read_committed",
    )
    consumer.subscribe(
        [topics.DECISIONS], listener=SeekToStoredOffsets(consumer, books, settings.ledger_group)
    )
    dead = KafkaProducer(
        **settings.kafka_client_config(),
        acks="all",
        max_request_size=topics.REJECTED_MAX_BYTES,
    )
    log.info("ledger writer consuming %s as %s", topics.DECISIONS, settings.ledger_group)
    lag = LagReport(consumer, settings.ledger_group)
    consumed = metrics.RECORDS_CONSUMED.labels("ledger")
    try:
        while not stop[0]:
            polled = consumer.poll(
                timeout_ms=settings.ledger_poll_ms, max_records=settings.ledger_batch_max
            )
            lag.maybe_report(health, settings.ready_max_lag)
            if not polled:
                continue
            records = [r for batch in polled.values() for r in batch]
            consumed.inc(len(records))
            offsets = [
                Offset(tp.topic, tp.partition, batch[-1].offset + 1) for tp, batch in polled.items()
            ]
            decisions = _decode(records, dead)
            started = time.perf_counter()
            applied = books.apply(decisions, settings.ledger_group, offsets)
            WRITE_SECONDS.observe(time.perf_counter() - started)
            POSTINGS.inc(applied.postings)
            BATCHES.observe(len(decisions))
            observe(applied, books.regions, datetime.now(UTC))
            consumer.commit_async()
    finally:
        consumer.close(autocommit=False)
        dead.close()
        conn.close()


def main() -> None:
    settings = LedgerSettings()
    run_process(run, settings, settings.ledger_writer_metrics_port)


if __name__ == "__main__":
    main()
