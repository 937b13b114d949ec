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


_BUILD = Info(f"{PREFIX}_build", "Version of the running carbonledger code")
_BUILD.info({"version": __version__, "python": platform.python_version()})


def exposition() -> tuple[bytes, str]:
    """The process's metrics in Prometheus text format, with its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
