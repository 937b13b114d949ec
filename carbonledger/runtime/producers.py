"""Plain Kafka producers (kafka-python) for what is not a stream stage: the HTTP
gateway, the outbox publisher, the operators' tools and the demo's partners; and
the one way they send a batch and wait for the broker's acknowledgement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from kafka import KafkaProducer
from kafka.partitioner.abc import Partitioner
from kafka.partitioner.default import DefaultPartitioner

from carbonledger.contracts import topics
from carbonledger.contracts.settings import Settings
from carbonledger.runtime.partitioner import partition_for

# kafka-python's own default, which the outbox publisher keeps (postings are small).
DEFAULT_MAX_REQUEST_BYTES = 1048576


class KeyedPartitioner(Partitioner):  # type: ignore[misc]
    """kafka-python's default partitioner with the kit's murmur2: the same partition
    for every key, at about half the cost (kafka-python's pure-Python hash and its
    sorted copy of the partitions were a fifth of the outbox publisher's samples).
    A record without a key goes where the default would send it."""

    def __init__(self) -> None:
        self.unkeyed = DefaultPartitioner()

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: Any,
    ) -> int:
        if serialized_key is None:
            return int(self.unkeyed.partition(topic, key, None, value, serialized_value, cluster))
        partitions = cluster.partitions_for_topic(topic)
        if partitions is None:
            raise ValueError(f"Topic {topic} not found in ClusterMetadata")
        # A topic's partitions are numbered 0..n-1, so the n-th sorted one is n.
        return partition_for(serialized_key, len(partitions))


def producer(
    settings: Settings,
    linger_ms: int = 5,
    batch_size: int = 65536,
    max_request_size: int = topics.PARTNER_MAX_BYTES,
) -> KafkaProducer:
    return KafkaProducer(
        **settings.plain_client_config(),
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        batch_size=batch_size,
        max_request_size=max_request_size,
        partitioner=KeyedPartitioner(),
    )


# eq=False: a record is itself, so two records of equal bytes are two sends and
# `send_and_wait`'s caller can tell which of its records failed.
@dataclass(frozen=True, slots=True, eq=False)
class Outgoing:
    topic: str
    value: bytes
    key: bytes | None = None


def send_and_wait(
    producer: KafkaProducer,
    records: Sequence[Outgoing],
    timeout: float,
    failures: Literal["raise", "return"] = "raise",
) -> list[Outgoing]:
    """Send every record, flush, and wait for the broker's answer to each.

    With `failures="raise"` the first failed send raises its error (the caller's
    transaction rolls back) and nothing is returned; with `"return"` the records
    the broker did not acknowledge are returned, for the caller to send again.
    A flush that outlasts `timeout` raises either way.
    """
    sent = [(r, producer.send(r.topic, key=r.key, value=r.value)) for r in records]
    producer.flush(timeout=timeout)
    if failures == "return":
        return [r for r, future in sent if not future.succeeded()]
    for _, future in sent:
        future.get(timeout=timeout)
    return []
