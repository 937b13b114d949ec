"""Turning a validated behaviour into a reduction claim with full provenance."""

from __future__ import annotations

from collections.abc import Sequence

from carbonledger.contracts import ids
from carbonledger.contracts.records import MethodologyRef, ReductionClaim, ValidatedBehaviour
from services.quantify.domain.methodology import (
    Methodology,
    Unquantified,
    calculate,
    local_date,
    select,
)


def quantify(behaviour: ValidatedBehaviour, methodologies: Sequence[Methodology]) -> ReductionClaim:
    """The claim for one behaviour: credited with its amount, or not credited and why."""
    day = local_date(behaviour.ended_at)
    chosen = select(methodologies, behaviour.type, behaviour.region, day)
    common = behaviour.model_dump(
        include={
            "event_id",
            "event",
            "type",
            "activity_class",
            "subject",
            "time",
            "region",
            "started_at",
            "ended_at",
            "natural_key",
        }
    )
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
    result = calculate(chosen, behaviour.type, behaviour.data)
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
        **common,
    )
