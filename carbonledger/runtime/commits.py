"""Commit strategies of the batch loop: how a batch's offsets are made durable
once every output of it is acknowledged, and where a partition resumes.

`KafkaCommit` is the stream stages': offsets go to Kafka after the outputs, so a
crash in between re-reads the batch (at least once, absorbed downstream by the
deterministic ids). `StoredOffsets` is for a sink that writes the batch's
results and its offsets in one transaction of its own (the ledger's books): the
sink's offsets are the truth, the consumer seeks to them on assignment, and
Kafka's committed offsets follow afterwards for lag monitoring only.
"""

from __future__ import annotations

import logging
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

Offsets = dict[TopicPartition, int]  # the next offset to read, per partition


class CommitStrategy(Protocol):
    async def resume(self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]) -> None:
        """Position `partitions` where their work continues. Called under the batch
        lock on assignment, and for partitions whose fetched batch a rebalance
        overtook (after they were rewound to that batch's first record)."""

    async def commit(self, consumer: AIOKafkaConsumer, offsets: Offsets) -> None:
        """Make a batch's offsets durable; called once its outputs are acknowledged."""

    def discard(self) -> None:
        """Forget what a failed attempt at a batch left in hand (it runs again split)."""


class KafkaCommit:
    """Offsets committed to Kafka; the consumer resumes from them by itself."""

    async def resume(self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]) -> None:
        return None

    def discard(self) -> None:
        return None

    async def commit(self, consumer: AIOKafkaConsumer, offsets: Offsets) -> None:
        await consumer.commit(offsets)


class OffsetStore(Protocol):
    """A sink that keeps its input offsets itself, in the transaction of its writes."""

    async def stored(self, topic: str) -> dict[int, int]:
        """The next offset to read of each partition of `topic` the sink has seen."""

    async def write(self, offsets: Offsets) -> None:
        """Write the batch in hand and `offsets` in one transaction."""

    def discard(self) -> None:
        """Drop the batch in hand: its attempt failed and nothing of it was written."""


class StoredOffsets:
    """The sink's transaction is the commit; Kafka's offsets only show the lag."""

    def __init__(self, store: OffsetStore) -> None:
        self.store = store

    async def resume(self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]) -> None:
        for topic in sorted({tp.topic for tp in partitions}):
            stored = await self.store.stored(topic)
            for tp in partitions:
                if tp.topic == topic and tp.partition in stored:
                    consumer.seek(tp, stored[tp.partition])

    async def commit(self, consumer: AIOKafkaConsumer, offsets: Offsets) -> None:
        await self.store.write(offsets)
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            # The batch is durable in the sink; a lost Kafka commit only delays the
            # lag report until the next batch commits.
            log.warning("commit of monitoring offsets failed: %r", exc)

    def discard(self) -> None:
        self.store.discard()
