"""Commit strategies of the batch loop: how a batch's offsets are made durable
once every output of it is acknowledged, and where a partition resumes.

`KafkaCommit` is the stream stages': offsets go to Kafka after the outputs, so a
crash in between re-reads the batch (at least once, absorbed downstream by the
deterministic ids). `StoredOffsets` is for a sink that writes the batch's
results and its offsets in one transaction of its own (the ledger's books): the
sink's offsets are the truth, the consumer seeks to them on assignment, and
Kafka's committed offsets follow afterwards for lag monitoring only.

Offsets bound for Kafka are held and committed together at the loop's checkpoint
interval (`flush`), not after every batch: an offset commit is a round trip and a
write to the broker's offsets log, and at a steady rate a stage finishes a batch
every fetch wait (50 ms). What is held is only ever offsets whose outputs are all
acknowledged; a crash before the flush re-reads those batches, as a crash between
acknowledgement and commit always could.
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
        """Make a batch's offsets durable, or hold them for `flush`; called once its
        outputs are acknowledged."""

    async def flush(self, consumer: AIOKafkaConsumer) -> None:
        """Commit to Kafka the offsets held since the last flush (the loop calls it at
        its checkpoint interval, when idle, before partitions are revoked and at stop)."""

    def discard(self) -> None:
        """Forget what a failed attempt at a batch left in hand (it runs again split)."""


class HeldOffsets:
    """Offsets whose outputs are acknowledged, held until they are committed to Kafka."""

    def __init__(self) -> None:
        self.held: Offsets = {}

    def hold(self, offsets: Offsets) -> None:
        self.held.update(offsets)

    async def commit_held(self, consumer: AIOKafkaConsumer) -> None:
        """Commit what is held; kept if the commit fails, to go with the next flush.
        (The loop holds and flushes only under its batch lock, so nothing is held
        while a commit is in flight.)"""
        if self.held:
            await consumer.commit(self.held)
            self.held = {}


class KafkaCommit(HeldOffsets):
    """Offsets committed to Kafka; the consumer resumes from them by itself. A failed
    commit raises (the loop exits to restart from what was committed before)."""

    async def resume(self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]) -> None:
        return None

    def discard(self) -> None:
        return None

    async def commit(self, consumer: AIOKafkaConsumer, offsets: Offsets) -> None:
        self.hold(offsets)

    async def flush(self, consumer: AIOKafkaConsumer) -> None:
        await self.commit_held(consumer)


class OffsetStore(Protocol):
    """A sink that keeps its input offsets itself, in the transaction of its writes."""

    async def stored(self, topic: str) -> dict[int, int]:
        """The next offset to read of each partition of `topic` the sink has seen."""

    async def write(self, offsets: Offsets) -> None:
        """Write the batch in hand and `offsets` in one transaction."""

    def discard(self) -> None:
        """Drop the batch in hand: its attempt failed and nothing of it was written."""


class StoredOffsets(HeldOffsets):
    """The sink's transaction is the commit; Kafka's offsets only show the lag."""

    def __init__(self, store: OffsetStore) -> None:
        super().__init__()
        self.store = store

    async def resume(self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]) -> None:
        for topic in sorted({tp.topic for tp in partitions}):
            stored = await self.store.stored(topic)
            for tp in partitions:
                if tp.topic == topic and tp.partition in stored:
                    consumer.seek(tp, stored[tp.partition])

    async def commit(self, consumer: AIOKafkaConsumer, offsets: Offsets) -> None:
        await self.store.write(offsets)
        self.hold(offsets)

    async def flush(self, consumer: AIOKafkaConsumer) -> None:
        try:
            await self.commit_held(consumer)
        except KafkaError as exc:
            # The batches are durable in the sink; a lost Kafka commit only delays the
            # lag report until the next flush.
            log.warning("commit of monitoring offsets failed: %r", exc)

    def discard(self) -> None:
        self.store.discard()
