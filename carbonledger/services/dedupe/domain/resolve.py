"""What each claim of one dedupe group (a person, or a global natural key) should be
credited, given all of them.

`resolve` is the whole rule book as one pure function of a set of claims: consent
first (consent.py: a claim whose partner needs the subject's consent, which was not
in force at its end, is not credited and takes no further part), clusters and
winners (activities.py), then the methodology's per-person caps over the
unique activities in a fixed order (behaviour end, then `(source, id)`), so a
day's first rides are the ones credited whatever order they arrived in. The
stream and the batch both call it; they differ only in when.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum

from carbonledger.contracts.calendar import CST
from carbonledger.contracts.records import CapUse, ReductionClaim
from carbonledger.services.dedupe.domain.activities import clusters, event_key, why_lost, winner
from carbonledger.services.dedupe.domain.consent import refusals
from carbonledger.services.dedupe.domain.household import completed


class Status(StrEnum):
    NEW = "new"
    CREDITED = "credited"
    DUPLICATE = "duplicate"
    CAPPED = "capped"
    NOT_CREDITED = "not_credited"


class Why(StrEnum):
    """Reason codes dedupe adds to its decisions."""

    DUPLICATE = "duplicate"
    CAP_REACHED = "cap_reached"
    CAPPED = "capped"
    DISPLACED = "displaced"
    LATE = "late"
    RECOMPUTED = "recomputed"
    CORRECTED = "corrected"
    NO_CONSENT = "no_consent"


@dataclass(frozen=True)
class Outcome:
    status: Status
    amount_mg: int = 0
    winner: str | None = None  # event key of the cluster's winner, for duplicates
    reason: str | None = None
    detail: str | None = None
    claim: ReductionClaim | None = None  # the claim as decided, when a rule completed it


def cap_period(cap: CapUse, claim: ReductionClaim) -> str:
    day = claim.ended_at.astimezone(CST).date()
    return day.isoformat() if cap.period == "day" else f"{day:%Y-%m}"


def cap_period_end(cap: CapUse, claim: ReductionClaim) -> date:
    """The last local day of the cap's period that holds the claim."""
    day = claim.ended_at.astimezone(CST).date()
    if cap.period == "day":
        return day
    first_next = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return date.fromordinal(first_next.toordinal() - 1)


def _cap_order(claim: ReductionClaim) -> tuple[object, str, str]:
    return (claim.ended_at, claim.event.source, claim.event.id)


CapScope = tuple[str, str, str]  # cap key, period, behaviour type ("" = all types)


def cap_scope(cap: CapUse, claim: ReductionClaim) -> CapScope:
    """What one use of the cap is counted under: its key and period, and the claim's
    type when the cap counts each type apart."""
    return (cap.key, cap_period(cap, claim), claim.type if cap.per_type else "")


def _apply_caps(winners: list[ReductionClaim]) -> dict[str, Outcome]:
    used_mg: dict[CapScope, int] = defaultdict(int)
    used_events: dict[CapScope, int] = defaultdict(int)
    outcomes: dict[str, Outcome] = {}
    for claim in sorted(winners, key=_cap_order):
        amount, binding = claim.reduction_mg, None
        scopes = [(cap, cap_scope(cap, claim)) for cap in claim.caps]
        for cap, scope in scopes:
            room = amount
            if cap.max_events is not None and used_events[scope] >= cap.max_events:
                room = 0
            if cap.max_mg is not None:
                room = min(room, max(cap.max_mg - used_mg[scope], 0))
            if room < amount:
                amount, binding = room, cap
        for _, scope in scopes:
            used_mg[scope] += amount
            used_events[scope] += 1 if amount > 0 else 0
        outcomes[event_key(claim)] = _capped(claim, amount, binding)
    return outcomes


def _capped(claim: ReductionClaim, amount: int, binding: CapUse | None) -> Outcome:
    if binding is None:
        return Outcome(Status.CREDITED, amount)
    limit = f"{binding.max_mg} mg" if binding.max_mg is not None else f"{binding.max_events} events"
    each = " per type" if binding.per_type else ""
    detail = f"cap {binding.key}: at most {limit} per person per {binding.period}{each}"
    if amount == 0:
        return Outcome(Status.CAPPED, 0, reason=Why.CAP_REACHED, detail=detail)
    return Outcome(Status.CREDITED, amount, reason=Why.CAPPED, detail=detail)


def resolve(claims: Iterable[ReductionClaim]) -> dict[str, Outcome]:
    """The outcome of every claim of one dedupe group, keyed by event key."""
    credited: list[ReductionClaim] = []
    claims = list(claims)
    refused = refusals(claims)
    outcomes = {
        key: Outcome(Status.NOT_CREDITED, reason=Why.NO_CONSENT, detail=why)
        for key, why in refused.items()
    }
    # Without consent a claim's data is not used at all, not even as household history.
    claims = [c for c in claims if event_key(c) not in refused]
    decided = completed(claims)
    for claim in (decided.get(event_key(c), c) for c in claims):
        if claim.credited:
            credited.append(claim)
        else:
            outcomes[event_key(claim)] = Outcome(
                Status.NOT_CREDITED, reason=claim.reason, detail=claim.reason_detail
            )
    winners = []
    for cluster in clusters(credited):
        won = winner(cluster)
        winners.append(won)
        for loser in cluster:
            if loser is not won:
                outcomes[event_key(loser)] = Outcome(
                    Status.DUPLICATE,
                    winner=event_key(won),
                    reason=Why.DUPLICATE,
                    detail=f"same activity as {event_key(won)}: {why_lost(loser, won)}",
                )
    outcomes.update(_apply_caps(winners))
    for key, claim in decided.items():
        if claim.credited:
            outcomes[key] = replace(outcomes[key], claim=claim)
    return outcomes
