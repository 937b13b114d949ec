"""Quantify's use case: a validated behaviour's reduction claim, counted, whoever
asks (the stream stage, `settle`). No Kafka here."""

from __future__ import annotations

from collections.abc import Sequence

from carbonledger.contracts import metrics
from carbonledger.contracts.methodology import Methodology
from carbonledger.contracts.records import ReductionClaim, ValidatedBehaviour
from carbonledger.services.quantify.domain.quantify import quantify
from carbonledger.services.quantify.metrics import CLAIMS, CREDITED_MASS


def quantify_behaviour(
    behaviour: ValidatedBehaviour, methodologies: Sequence[Methodology]
) -> ReductionClaim:
    """The behaviour's reduction claim under the methodology that applies to it."""
    claim = quantify(behaviour, methodologies)
    outcome = "credited" if claim.credited else (claim.reason or "not_credited")
    CLAIMS.labels(claim.type, outcome).inc()
    CREDITED_MASS.labels(claim.type).inc(metrics.grams(claim.reduction_mg))
    return claim
