"""Quantify's use case: a validated behaviour's reduction claim, counted, whoever
asks (the stream stage, `settle`). No Kafka here."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter

from carbonledger.contracts import metrics
from carbonledger.contracts.catalogue import CATALOGUE, Reason, Rejection, validate_data
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
    claims, mass = _counters(claim.type, outcome)
    claims.inc()
    mass.inc(metrics.grams(claim.reduction_mg))
    return claim


# Each (type, outcome)'s two counters, found once: `labels()` checks and locks on every
# call, a cost per claim for what is the same child object each time.
_COUNTERS: dict[tuple[str, str], tuple[Counter, Counter]] = {}


def _counters(behaviour_type: str, outcome: str) -> tuple[Counter, Counter]:
    found = _COUNTERS.get((behaviour_type, outcome))
    if found is None:
        found = _COUNTERS[behaviour_type, outcome] = (
            CLAIMS.labels(behaviour_type, outcome),
            CREDITED_MASS.labels(behaviour_type),
        )
    return found


def check_consumed(behaviour: ValidatedBehaviour) -> ValidatedBehaviour:
    """A behaviour read from `behaviour.validated`, checked again against its catalogue
    type (defence in depth: whoever wrote the topic, a `data` ingest would refuse is
    never quantified); raises `Rejection(invalid_record)` with what ingest would say.

    `data` as the topic carries it (JSON: decimals and times as text), with the
    behaviour's own region and its admission time as "now", as ingest checked it."""
    spec = CATALOGUE.get(behaviour.type)
    if spec is None:
        raise Rejection(Reason.INVALID_RECORD, f"{behaviour.type!r} is not in the catalogue")
    try:
        validate_data(
            spec, {**behaviour.data, "region": behaviour.region}, behaviour.time,
            behaviour.received_at,
        )  # fmt: skip
    except Rejection as exc:
        raise Rejection(Reason.INVALID_RECORD, f"{exc.reason.value}: {exc.message}") from exc
    return behaviour
