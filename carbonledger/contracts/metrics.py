"""Prometheus helpers: one `carbon_` prefix, base units, bounded labels."""

from __future__ import annotations

import platform

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

from carbonledger import __version__

PREFIX = "carbon"

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)


def name(service: str, metric: str) -> str:
    return f"{PREFIX}_{service}_{metric}"


def counter(service: str, metric: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
    return Counter(name(service, metric), doc, labels)


def gauge(service: str, metric: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
    return Gauge(name(service, metric), doc, labels)


def histogram(
    service: str,
    metric: str,
    doc: str,
    labels: tuple[str, ...] = (),
    buckets: tuple[float, ...] = LATENCY_BUCKETS,
) -> Histogram:
    return Histogram(name(service, metric), doc, labels, buckets=buckets)


# Every consumer (faust stage or plain) reports the records it has yet to process in
# the partitions it owns; summed over a group's processes, that is the group's lag.
CONSUMER_LAG = gauge(
    "consumer",
    "lag_records",
    "Records after this process's position in the partitions it owns, by topic",
    ("group", "topic"),
)


# What every stage reports, labelled by stage (ingest, quantify, dedupe, ledger), so
# one dashboard row and one alert cover the pipeline.
RECORDS_CONSUMED = counter(
    "stage", "records_consumed_total", "Records taken from the stage's input topics", ("stage",)
)
RECORDS_PRODUCED = counter(
    "stage", "records_produced_total", "Records the stage sent, by topic", ("stage", "topic")
)
DEAD_LETTERS = counter(
    "stage",
    "dead_letters_total",
    "Records the stage dead-lettered to behaviour.rejected, by reason code",
    ("stage", "reason"),
)
POISON_RECORDS = counter(
    "stage",
    "poison_records_total",
    "Records that failed processing alone, isolated from their batch and dead-lettered",
    ("stage",),
)
INVALID_RECORDS = counter(
    "stage",
    "invalid_records_total",
    "Internal records that decode but break an invariant, dead-lettered as invalid_record",
    ("stage", "topic"),
)
PROCESSING_SECONDS = histogram(
    "stage",
    "processing_seconds",
    "Time from taking a record to asking for the next (outputs sent included)",
    ("stage",),
)
DEAD_LETTER_BACKLOG = gauge(
    "dead_letter",
    "backlog_records",
    "Records held in behaviour.rejected (within its retention), fixed or not",
)


def grams(mg: int) -> float:
    """Prometheus's base unit for mass is the gram; the ledger's is the integer mg."""
    return mg / 1000


def report_lag(group: str, lag_by_topic: dict[str, int], reported: set[str]) -> set[str]:
    """Set this process's lag per topic; topics it no longer owns drop to zero."""
    for topic in reported - lag_by_topic.keys():
        CONSUMER_LAG.labels(group, topic).set(0)
    for topic, lag in lag_by_topic.items():
        CONSUMER_LAG.labels(group, topic).set(lag)
    return reported | lag_by_topic.keys()


_BUILD = Info(f"{PREFIX}_build", "Version of the running carbonledger code")
_BUILD.info({"version": __version__, "python": platform.python_version()})


def lag_total(group: str) -> int:
    """This process's current lag in `group`, over every topic it reports."""
    total = 0.0
    for metric in CONSUMER_LAG.collect():
        for sample in metric.samples:
            if sample.labels.get("group") == group:
                total += sample.value
    return int(total)


def exposition() -> tuple[bytes, str]:
    """The process's metrics in Prometheus text format, with its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
