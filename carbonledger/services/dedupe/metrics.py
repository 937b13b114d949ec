"""Dedupe's metrics, registered on import (so `carbonledger monitoring` lists them
without starting the stage), and the Tally that counts into them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from carbonledger.contracts import metrics
from carbonledger.contracts.records import AccountEvent, Decision, DecisionKind, Engagement
from carbonledger.services.dedupe.domain.resolve import Why

CLAIMS_SEEN = metrics.counter(
    "dedupe",
    "claims_total",
    "Claims consumed, by outcome (new, replay, late, rerouted: sent on under its group's key,"
    " account: a family link passed on without state)",
    ("outcome",),
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
    " corrected, no_consent) and partner pair (the reversed claim's partner, the winner's or none)",
    ("activity_class", "reason", "partner", "winner_partner"),
)
NO_CONSENT = metrics.counter(
    "dedupe",
    "no_consent_total",
    "Claims recorded not credited for lack of the subject's consent to their partner (reason"
    " no_consent; a replay's included), by partner",
    ("partner",),
)
ENGAGEMENTS = metrics.counter(
    "dedupe",
    "engagements_total",
    "Engagement records emitted on engagement.events (a replay's included), by type",
    ("behaviour_type",),
)
ACCOUNT_EVENTS = metrics.counter(
    "dedupe",
    "account_events_total",
    "Account event records (consent, family links) emitted on account.events (a replay's"
    " included), by type",
    ("behaviour_type",),
)
STATE_BYTES = metrics.histogram(
    "dedupe",
    "person_state_bytes",
    "Size of one person's (or global key's) stored state after a claim",
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


# prometheus_client's labels() validates and locks on every call, a few per claim; the
# children are kept here by metric and label values (all str: ids and StrEnum values, so
# equal keys are the same label strings) and looked up once each.
_CHILDREN: dict[tuple[object, ...], Any] = {}


def _child(metric: Any, *values: str) -> Any:
    key = (metric, *values)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = metric.labels(*values)
    return child


class DedupeMetrics:
    """The Dedupe use case's Tally for the stream: its Prometheus metrics."""

    def claim(self, outcome: str) -> None:
        _child(CLAIMS_SEEN, outcome).inc()

    def decision(self, decision: Decision) -> None:
        claim = decision.claim
        kind = decision.kind
        _child(DECISIONS, kind.value, claim.activity_class).inc()
        if kind is DecisionKind.DUPLICATE and decision.winner is not None:
            _child(
                DUPLICATES, claim.activity_class, claim.event.source, decision.winner.source
            ).inc()
        elif kind is DecisionKind.NOT_CREDITED and decision.reason == Why.NO_CONSENT:
            _child(NO_CONSENT, claim.event.source).inc()
        elif kind is DecisionKind.REVERSE:
            winner = decision.winner.source if decision.winner is not None else "none"
            _child(
                REVERSALS, claim.activity_class, decision.reason or "", claim.event.source, winner
            ).inc()

    def engagement(self, record: Engagement) -> None:
        _child(ENGAGEMENTS, record.type).inc()

    def account(self, record: AccountEvent) -> None:
        _child(ACCOUNT_EVENTS, record.type).inc()

    def stored(self, state_bytes: int) -> None:
        STATE_BYTES.observe(state_bytes)

    def pruned(self, claims: int) -> None:
        PRUNED.inc(claims)

    def expired(self, people: int) -> None:
        EXPIRED.inc(people)

    def watermark(self, partition: int, mark: datetime) -> None:
        _child(WATERMARK, str(partition)).set(mark.timestamp())
