"""Recalculation: an event already quantified, quantified again under today's registry.

When a methodology version is published for a period already credited, each
affected event gets a correcting claim that supersedes its earlier one. Dedupe
turns it into compensating decisions (a reverse of the standing credit and a
credit of the new amount), so the ledgers move by new entries, never by edits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from carbonledger.contracts.methodology import Methodology
from carbonledger.contracts.records import (
    Origin,
    ReductionClaim,
    Supersedes,
    ValidatedBehaviour,
)
from carbonledger.services.quantify.domain.quantify import CARRIED_FIELDS, quantify


@dataclass(frozen=True)
class Standing:
    """What the books hold for one event now (read from the ledger)."""

    net_mg: int
    credit: UUID | None


def behaviour_of(claim: ReductionClaim, now: datetime) -> ValidatedBehaviour:
    """The validated behaviour a claim was made from (claims carry their inputs)."""
    return ValidatedBehaviour(
        **claim.model_dump(include=CARRIED_FIELDS | {"data"}),
        origin=Origin(topic="recompute", partition=0, offset=0),
        received_at=now,
    )


def correcting_claim(
    claim: ReductionClaim,
    standing: Standing,
    methodologies: Sequence[Methodology],
    now: datetime,
) -> ReductionClaim | None:
    """The claim that supersedes `claim`, or None when today's registry agrees with it."""
    fresh = quantify(behaviour_of(claim, now), methodologies)
    if fresh.claim_id == claim.claim_id:
        return None
    return fresh.model_copy(
        update={
            "supersedes": Supersedes(
                claim_id=claim.claim_id,
                previous_mg=claim.reduction_mg,
                standing_credit=standing.credit,
                standing_mg=standing.net_mg,
            )
        }
    )
