"""Quantify worker: behaviour.validated -> reduction.claims.

Run: faust -A carbonledger.services.quantify.entrypoints.app worker
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from carbonledger.contracts import metrics, topics
from carbonledger.contracts.methodology_files import load_methodologies
from carbonledger.contracts.records import ValidatedBehaviour
from carbonledger.runtime.batching import Output
from carbonledger.runtime.stage import Stage, make_app
from carbonledger.services.quantify.config import QuantifySettings
from carbonledger.services.quantify.domain.quantify import quantify

log = logging.getLogger(__name__)
settings = QuantifySettings()
methodologies = load_methodologies(settings.methodology_dir)

app = make_app(topics.QUANTIFY_APP_ID, settings.quantify_web_port, settings)
stage = Stage("quantify", app, settings)

CLAIMS = metrics.counter(
    "quantify",
    "claims_total",
    "Reduction claims emitted, by behaviour type and outcome",
    ("behaviour_type", "outcome"),
)
CREDITED_MASS = metrics.counter(
    "quantify",
    "claimed_reduction_grams_total",
    "Reduction claimed before dedupe, by behaviour type",
    ("behaviour_type",),
)


def quantify_behaviour(record: Any, behaviour: ValidatedBehaviour) -> Iterator[Output]:
    """A validated behaviour's reduction claim."""
    claim = quantify(behaviour, methodologies)
    outcome = "credited" if claim.credited else (claim.reason or "not_credited")
    CLAIMS.labels(claim.type, outcome).inc()
    CREDITED_MASS.labels(claim.type).inc(metrics.grams(claim.reduction_mg))
    yield Output(topics.CLAIMS, claim.subject.encode(), claim.to_bytes())


batches = stage.batches((topics.VALIDATED,), stage.each(ValidatedBehaviour, quantify_behaviour))
