"""Quantify's metrics, registered on import (so `carbonledger monitoring` lists them
without starting the stage)."""

from __future__ import annotations

from carbonledger.contracts import metrics

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
