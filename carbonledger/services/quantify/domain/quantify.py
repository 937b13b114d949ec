"""Turning a validated behaviour into a reduction claim with full provenance."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from carbonledger.contracts import ids
from carbonledger.contracts.calendar import local_date
from carbonledger.contracts.catalogue import is_account_type, is_engagement_type
from carbonledger.contracts.methodology import Methodology
from carbonledger.contracts.records import (
    ACCOUNT_REASON,
    ENGAGEMENT_REASON,
    MethodologyRef,
    ReductionClaim,
    ValidatedBehaviour,
)
from carbonledger.services.quantify.domain.methodology import Unquantified, calculate, selection

# What a claim carries over from its behaviour (besides `data`, kept as JSON text).
CARRIED_FIELDS: set[str] = {
    "event_id",
    "event",
    "type",
    "activity_class",
    "subject",
    "subject_kind",
    "time",
    "region",
    "started_at",
    "ended_at",
    "natural_key",
    "evidence_rank",
    "consent_required",
}


def quantify(behaviour: ValidatedBehaviour, methodologies: Sequence[Methodology]) -> ReductionClaim:
    """The claim for one behaviour: credited with its amount, or not credited and why."""
    if is_engagement_type(behaviour.type):
        return engagement_claim(behaviour)
    if is_account_type(behaviour.type):
        return account_claim(behaviour)
    day = local_date(behaviour.ended_at)
    registry = selection(methodologies)
    chosen = registry.select(behaviour.type, behaviour.region, day, behaviour.event.source)
    common = _carried(behaviour)
    if isinstance(chosen, Unquantified):
        return ReductionClaim(
            claim_id=ids.claim_id(behaviour.event_id, None, None),
            credited=False,
            reduction_mg=0,
            reason=chosen.reason.value,
            reason_detail=chosen.detail,
            **common,
        )
    ref = MethodologyRef(id=chosen.id, version=chosen.version)
    result = calculate(chosen, behaviour.type, behaviour.data, behaviour.region)
    claim_id = ids.claim_id(behaviour.event_id, chosen.id, chosen.version)
    if isinstance(result, Unquantified):
        return ReductionClaim(
            claim_id=claim_id,
            credited=False,
            reduction_mg=0,
            reason=result.reason.value,
            reason_detail=result.detail,
            methodology=ref,
            formula=chosen.formula.value,
            factors=result.factors,  # what it would use: dedupe completes the household rule
            caps=registry.caps(chosen, behaviour.type),
            **common,
        )
    return ReductionClaim(
        claim_id=claim_id,
        credited=True,
        reduction_mg=result.reduction_mg,
        methodology=ref,
        formula=chosen.formula.value,
        inputs=result.inputs,
        factors=result.factors,
        baseline_mg=result.baseline_mg,
        project_mg=result.project_mg,
        caps=registry.caps(chosen, behaviour.type),
        **common,
    )


def _carried(behaviour: ValidatedBehaviour) -> dict[str, Any]:
    """What every claim of a behaviour carries over from it: its validated values as
    they are (a claim field has the type of the behaviour's), not dumped and parsed."""
    common = {name: getattr(behaviour, name) for name in _CARRIED}
    # The inputs as JSON text (decimals as strings), so a claim round-trips exactly.
    # Read from a topic they are JSON already (ingest wrote them so): copied as they are.
    data = behaviour.data
    if all(type(value) in _JSON_SCALARS for value in data.values()):
        common["data"] = dict(data)
    else:
        common["data"] = behaviour.model_dump(mode="json", include={"data"})["data"]
    common["received_at"] = behaviour.received_at
    return common


_CARRIED = tuple(sorted(CARRIED_FIELDS))
# What JSON mode leaves as it is (exact types: a str or int subclass may serialise otherwise).
_JSON_SCALARS = frozenset({str, int, bool, type(None)})


def engagement_claim(behaviour: ValidatedBehaviour) -> ReductionClaim:
    """An engagement event's claim: never credited, no methodology looked up; dedupe
    turns it into an engagement record (engagement.events), never into a posting."""
    return ReductionClaim(
        claim_id=ids.claim_id(behaviour.event_id, None, None),
        credited=False,
        reduction_mg=0,
        reason=ENGAGEMENT_REASON,
        reason_detail="an engagement event earns points, never a reduction",
        **_carried(behaviour),
    )


def account_claim(behaviour: ValidatedBehaviour) -> ReductionClaim:
    """An account event's claim (consent, family link): never credited. Dedupe keeps
    consent in the subject's state, where it decides what that subject's behaviours
    from the partner are credited, and passes every account event on to
    account.events."""
    return ReductionClaim(
        claim_id=ids.claim_id(behaviour.event_id, None, None),
        credited=False,
        reduction_mg=0,
        reason=ACCOUNT_REASON,
        reason_detail="an account event (consent or family link), never a reduction",
        **_carried(behaviour),
    )
