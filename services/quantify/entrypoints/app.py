"""Quantify worker: behaviour.validated -> reduction.claims.

Run: faust -A services.quantify.entrypoints.app worker
"""

from __future__ import annotations

import logging
from typing import Any

from carbonledger.contracts import metrics, topics
from carbonledger.contracts.records import ValidatedBehaviour
from carbonledger.streaming import (
    RAW,
    Stage,
    make_app,
)
from services.quantify.adapters.registry_files import load_methodologies
from services.quantify.config import QuantifySettings
from services.quantify.domain.quantify import quantify

log = logging.getLogger(__name__)
settings = QuantifySettings()
methodologies = load_methodologies(settings.methodology_dir)

app = make_app(topics.QUANTIFY_APP_ID, settings.quantify_web_port, settings)
stage = Stage("quantify", app, settings, sources=(topics.VALIDATED,))
behaviours = app.topic(topics.VALIDATED, **RAW)
claims = app.topic(topics.CLAIMS, **RAW)

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


@app.agent(behaviours)
async def quantify_behaviours(stream: Any) -> None:
    async for behaviour in stage.records(stream, ValidatedBehaviour):
        claim = quantify(behaviour, methodologies)
        outcome = "credited" if claim.credited else (claim.reason or "not_credited")
        CLAIMS.labels(claim.type, outcome).inc()
        CREDITED_MASS.labels(claim.type).inc(metrics.grams(claim.reduction_mg))
        await stage.send(claims, claim.subject.encode(), claim.to_bytes())
