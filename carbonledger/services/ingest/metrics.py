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

# The HTTP gateway's (ingest's other way in).
GATEWAY_REQUESTS = metrics.counter(
    "gateway", "requests_total", "HTTP event requests, by partner and status", ("partner", "status")
)
GATEWAY_EVENTS = metrics.counter(
    "gateway",
    "events_total",
    "Events received over HTTP, by partner and outcome (accepted or a reason code)",
    ("partner", "outcome"),
)
GATEWAY_SECONDS = metrics.histogram("gateway", "request_seconds", "Time to answer one request")
