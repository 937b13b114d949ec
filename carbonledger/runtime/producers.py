"""Plain Kafka producers (kafka-python) for what is not a stream stage: the HTTP
gateway, the operators' tools and the demo's partners."""

from __future__ import annotations

from kafka import KafkaProducer

from carbonledger.contracts import topics
from carbonledger.contracts.settings import Settings


def producer(settings: Settings, linger_ms: int = 5, batch_size: int = 65536) -> KafkaProducer:
    return KafkaProducer(
        **settings.kafka_client_config(),
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        batch_size=batch_size,
        max_request_size=topics.PARTNER_MAX_BYTES,
    )
