"""Dedupe worker: reduction.claims -> dedupe.decisions, with per-person state in a table.

Run: faust -A services.dedupe.entrypoints.app worker
"""

from __future__ import annotations

import logging
from typing import Any

from carbonledger.contracts import metrics, topics
from carbonledger.contracts.records import ReductionClaim
from carbonledger.streaming import (
    RAW,
    Stage,
    make_app,
)
from services.dedupe.config import DedupeSettings
from services.dedupe.domain.person import PersonState, observe

log = logging.getLogger(__name__)
settings = DedupeSettings()

app = make_app(
    topics.DEDUPE_APP_ID, settings.dedupe_web_port, settings, store=settings.dedupe_store
)
stage = Stage("dedupe", app, settings)
claims = app.topic(topics.CLAIMS, **RAW)
decisions = app.topic(topics.DECISIONS, **RAW)
# Keyed by subject, co-partitioned with the claims topic (also keyed by subject).
# bytes keys and values use faust's raw codec; encoding is the domain's business.
people = app.Table(
    topics.DEDUPE_TABLE, key_type=bytes, value_type=bytes, partitions=settings.topic_partitions
)

CLAIMS_SEEN = metrics.counter("dedupe", "claims_total", "Claims consumed, by outcome", ("outcome",))
DECISIONS = metrics.counter(
    "dedupe", "decisions_total", "Decisions emitted, by kind and class", ("kind", "activity_class")
)


def _decide(claim: ReductionClaim) -> list[Any]:
    key = claim.subject.encode()
    raw = people.get(key)
    state = PersonState.from_bytes(raw) if raw is not None else PersonState(claim.subject)
    changed, made = observe(state, claim)
    if changed:
        people[key] = state.to_bytes()
    CLAIMS_SEEN.labels("new" if changed else "replay").inc()
    return made


@app.agent(claims)
async def dedupe_claims(stream: Any) -> None:
    async for claim in stage.records(stream, ReductionClaim):
        for decision in _decide(claim):
            DECISIONS.labels(decision.kind.value, claim.activity_class).inc()
            await decisions.send(key=claim.subject.encode(), value=decision.to_bytes())
