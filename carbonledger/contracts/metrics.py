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


def report_lag(group: str, lag_by_topic: dict[str, int], reported: set[str]) -> set[str]:
    """Set this process's lag per topic; topics it no longer owns drop to zero."""
    for topic in reported - lag_by_topic.keys():
        CONSUMER_LAG.labels(group, topic).set(0)
    for topic, lag in lag_by_topic.items():
        CONSUMER_LAG.labels(group, topic).set(lag)
    return reported | lag_by_topic.keys()


_BUILD = Info(f"{PREFIX}_build", "Version of the running carbonledger code")
_BUILD.info({"version": __version__, "python": platform.python_version()})


def exposition() -> tuple[bytes, str]:
    """The process's metrics in Prometheus text format, with its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
