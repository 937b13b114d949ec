"""Ledger writer: dedupe.decisions -> postings in PostgreSQL, exactly once in effect.

A stage of the runtime kit (runtime/batching.py), committing with `StoredOffsets`:
offsets live in PostgreSQL and are written in the transaction that writes the
postings they cover; on partition assignment the consumer seeks to them. Kafka's
own committed offsets are updated afterwards for lag monitoring only. An
undecodable decision is a dead letter, acknowledged before the batch's offsets
are stored.

Run: python -m carbonledger.services.ledger.entrypoints.writer
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from carbonledger.contracts import metrics, topics
from carbonledger.contracts.records import Decision, DecisionKind, ReductionClaim
from carbonledger.contracts.regions import RegionTable
from carbonledger.runtime.batching import Output
from carbonledger.runtime.commits import Offsets, StoredOffsets
from carbonledger.runtime.process import OffLoop, run_worker
from carbonledger.runtime.stage import Stage, make_app
from carbonledger.services.ledger.adapters.books import Applied, Books, Offset
from carbonledger.services.ledger.adapters.migrations import connect_migrated
from carbonledger.services.ledger.config import LedgerSettings
from carbonledger.services.ledger.metrics import (
    APPLIED,
    BATCHES,
    CREDITED,
    EVENT_TO_POSTING,
    INGEST_TO_POSTING,
    POSTINGS,
    REVERSED,
    WRITE_SECONDS,
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


class Postings:
    """The books as the writer's sink: the decisions of the batch in hand, recorded
    with the batch's offsets in one transaction (an `OffsetStore`)."""

    def __init__(self, books: Books, group: str, db: OffLoop) -> None:
        self.books, self.group, self.db = books, group, db
        self.decisions: list[Decision] = []

    def take(self, record: Any, decision: Decision) -> Iterator[Output]:
        """The batch handler's part: keep the decision for `write` (it sends nothing)."""
        self.decisions.append(decision)
        return iter(())

    async def stored(self, topic: str) -> dict[int, int]:
        return await self.db.call(self.books.offsets, self.group, topic)

    async def write(self, offsets: Offsets) -> None:
        decisions, self.decisions = self.decisions, []
        stored = [Offset(tp.topic, tp.partition, o) for tp, o in offsets.items()]
        await self.db.call(self._apply, decisions, stored)

    def _apply(self, decisions: list[Decision], offsets: list[Offset]) -> None:
        started = time.perf_counter()
        applied = self.books.apply(decisions, self.group, offsets)
        WRITE_SECONDS.observe(time.perf_counter() - started)
        POSTINGS.inc(applied.postings)
        BATCHES.observe(len(decisions))
        observe(applied, self.books.regions, datetime.now(UTC))


def main() -> None:
    settings = LedgerSettings()
    conn = connect_migrated(settings.pg_conninfo)
    db = OffLoop(conn.close)
    # The app id is the consumer group, as for every stage (its lag and readiness).
    app = make_app(settings.ledger_group, settings.ledger_writer_metrics_port, settings)
    stage = Stage("ledger", app, settings)
    postings = Postings(Books(conn), settings.ledger_group, db)
    stage.batches(
        (topics.DECISIONS,),
        stage.each(Decision, postings.take),
        commit=StoredOffsets(postings),
        max_records=settings.ledger_batch_max,
        poll_ms=settings.ledger_poll_ms,
        # Never a record of an aborted Kafka transaction, whoever produces the topic.
        consumer_config={"isolation_level": "read_committed"},
    )
    run_worker(app, db.close)


if __name__ == "__main__":
    main()
