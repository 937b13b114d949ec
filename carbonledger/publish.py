"""Publishing partner records to partner topics, as a partner's producer would."""

from __future__ import annotations

from collections.abc import Iterable

from kafka import KafkaProducer

from carbonledger.contracts import topics
from carbonledger.contracts.settings import Settings
from carbonledger.settle import source_of


def producer(settings: Settings) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=65536,
        max_request_size=topics.PARTNER_MAX_BYTES,
    )


def route(raw: bytes, fallback_partner: str) -> str:
    """The partner a record belongs to: its own `source`, else the fallback."""
    return source_of(raw) or fallback_partner


def publish(settings: Settings, records: Iterable[tuple[str, bytes]]) -> int:
    """Send (partner, raw) records to their partner topics; returns how many were sent."""
    p = producer(settings)
    sent = 0
    try:
        for partner, raw in records:
            p.send(topics.partner_topic(partner), value=raw)
            sent += 1
        p.flush(timeout=60)
    finally:
        p.close()
    return sent
