"""Dedupe worker: reduction.claims -> dedupe.decisions, with per-person state.

Run: faust -A carbonledger.services.dedupe.entrypoints.app worker

Claims are keyed by subject, so all claims of one person arrive in one partition
and meet in one state entry (the state is co-partitioned with the claims topic).
Each partition keeps its own watermark (the newest behaviour end it has seen) in
the same state, so it moves with the partition on a rebalance and is restored
from the changelog after a crash.

Claims are read in batches (carbonledger/batching.py) and the state is a
changelog-backed mapping (adapters/changelog.py) rather than a faust table:
faust's per-event path was most of dedupe's CPU (docs/performance.md). A batch's
decisions and state changes are acknowledged by the broker before its offsets
are committed; after a crash the re-read claims are replays, and a replay
re-emits the decisions its first arrival caused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from carbonledger.contracts import metrics, topics
from carbonledger.contracts.records import Decision, DecisionKind, ReductionClaim
from carbonledger.runtime.batching import Output
from carbonledger.runtime.changelog import ChangelogTable
from carbonledger.runtime.stage import Stage, make_app
from carbonledger.services.dedupe.config import DedupeSettings
from carbonledger.services.dedupe.domain.expiry import expires_on, register, sweep
from carbonledger.services.dedupe.domain.person import Observation, PersonState, observe

log = logging.getLogger(__name__)
settings = DedupeSettings()

app = make_app(topics.DEDUPE_APP_ID, settings.dedupe_web_port, settings)
stage = Stage("dedupe", app, settings)
# The people of the partition being worked on, and the partition's watermark,
# expiry index and sweep mark: to the domain, a mapping of bytes (expiry.Table).
people = ChangelogTable(topics.DEDUPE_CHANGELOG, settings)

CLAIMS_SEEN = metrics.counter(
    "dedupe", "claims_total", "Claims consumed, by outcome (new, replay, late)", ("outcome",)
)
DECISIONS = metrics.counter(
    "dedupe", "decisions_total", "Decisions emitted, by kind and class", ("kind", "activity_class")
)
DUPLICATES = metrics.counter(
    "dedupe",
    "duplicates_total",
    "Claims found to duplicate another partner's claim, by class and partner pair",
    ("activity_class", "partner", "winner_partner"),
)
REVERSALS = metrics.counter(
    "dedupe",
    "reversals_total",
    "Credits reversed, by class, reason (displaced, capped, cap_reached, recomputed,"
    " corrected) and partner pair (the reversed claim's partner, the winner's or none)",
    ("activity_class", "reason", "partner", "winner_partner"),
)
STATE_BYTES = metrics.histogram(
    "dedupe",
    "person_state_bytes",
    "Size of one person's stored state after a claim",
    buckets=(512, 1024, 4096, 16384, 65536, 262144, 1048576),
)
PRUNED = metrics.counter("dedupe", "pruned_claims_total", "Claims forgotten after the window")
EXPIRED = metrics.counter(
    "dedupe", "expired_people_total", "People whose whole state expired after the window"
)
WATERMARK = metrics.gauge(
    "dedupe",
    "watermark_timestamp_seconds",
    "Newest behaviour end seen, per claims partition (the window is measured from it)",
    ("partition",),
)


def _watermark(partition: int, claim: ReductionClaim) -> datetime:
    key = f"~watermark/{partition}".encode()
    stored = people.get(key)
    mark = claim.ended_at
    if stored is not None:
        mark = max(mark, datetime.fromisoformat(stored.decode()))
    if stored is None or mark.isoformat().encode() != stored:
        people[key] = mark.isoformat().encode()
    WATERMARK.labels(str(partition)).set(mark.timestamp())
    return mark


def _decide(partition: int, claim: ReductionClaim) -> Observation:
    key, window = claim.subject.encode(), settings.dedupe_window
    watermark = _watermark(partition, claim)
    EXPIRED.inc(sweep(people, partition, watermark, window))
    raw = people.get(key)
    state = PersonState.from_bytes(raw) if raw is not None else PersonState(claim.subject)
    expiring = expires_on(state, window)
    seen = observe(state, claim, watermark=watermark, window=window)
    if seen.new and not seen.late:
        stored = state.to_bytes()
        people[key] = stored
        register(people, partition, state, window, expiring)
        STATE_BYTES.observe(len(stored))
    PRUNED.inc(seen.pruned)
    CLAIMS_SEEN.labels("late" if seen.late else "new" if seen.new else "replay").inc()
    return seen


def _count(decision: Decision) -> None:
    claim = decision.claim
    DECISIONS.labels(decision.kind.value, claim.activity_class).inc()
    if decision.kind is DecisionKind.DUPLICATE and decision.winner is not None:
        DUPLICATES.labels(claim.activity_class, claim.event.source, decision.winner.source).inc()
    elif decision.kind is DecisionKind.REVERSE:
        winner = decision.winner.source if decision.winner is not None else "none"
        REVERSALS.labels(
            claim.activity_class, decision.reason or "", claim.event.source, winner
        ).inc()


def dedupe_claim(record: Any, claim: ReductionClaim) -> Iterator[Output]:
    """A claim's decisions (claims are taken in the order they arrived per partition)."""
    people.use(record.partition)
    for decision in _decide(record.partition, claim).decisions:
        _count(decision)
        yield Output(topics.DECISIONS, claim.subject.encode(), decision.to_bytes())


batches = stage.batches((topics.CLAIMS,), stage.each(ReductionClaim, dedupe_claim), state=people)
