"""Ingest's metrics, registered on import (so `carbonledger monitoring` lists them
without starting the stage)."""

from __future__ import annotations

from carbonledger.contracts import metrics

RECORDS = metrics.counter(
    "ingest",
    "records_total",
    "Partner records consumed, by partner and outcome",
    ("partner", "outcome"),
)
REJECTIONS = metrics.counter(
    "ingest",
    "rejections_total",
    "Partner records dead-lettered, by partner and reason",
    ("partner", "reason"),
)
