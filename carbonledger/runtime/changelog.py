"""Dedupe's per-person state: a mapping of bytes per claims partition, kept in memory
and made durable in a compacted changelog topic.

Its records are those faust's table wrote to the same topic (raw key, raw value,
a tombstone for a deletion, in the partition of the claim that caused them), so
state carries over from the faust-table version of dedupe. Writes are collected
per batch and only each key's last value is sent, with the batch, before the
batch's offsets are committed. On assignment each partition is read back from the
changelog's beginning before any claim of it is taken.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, MutableMapping

from aiokafka import AIOKafkaConsumer, TopicPartition

from carbonledger.contracts.settings import Settings
from carbonledger.runtime.batching import Output

log = logging.getLogger(__name__)


class Partition(MutableMapping[bytes, bytes]):
    """One partition's state: reads see it, writes are kept for the batch's flush."""

    def __init__(self, table: ChangelogTable, number: int) -> None:
        self.number = number
        self.held = table.partitions.setdefault(number, {})
        self.dirty = table.dirty

    def __getitem__(self, key: bytes) -> bytes:
        return self.held[key]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.held[key] = value
        self.dirty[(self.number, key)] = value

    def __delitem__(self, key: bytes) -> None:
        del self.held[key]
        self.dirty[(self.number, key)] = None

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.held)

    def __len__(self) -> int:
        return len(self.held)


class ChangelogTable:
    """Per-partition mappings of bytes (`partition`), flushed with each batch.

    A `Partition` is taken for the records of one batch: a rebalance between batches
    forgets or restores partitions, and with them the mappings handed out before.
    """

    def __init__(self, topic: str, settings: Settings) -> None:
        self.topic, self.settings = topic, settings
        self.partitions: dict[int, dict[bytes, bytes]] = {}
        self.dirty: dict[tuple[int, bytes], bytes | None] = {}

    def partition(self, number: int) -> Partition:
        """The state of one input partition, as a mapping whose writes are logged."""
        return Partition(self, number)

    def flush(self) -> list[Output]:
        """The batch's changes, one record per key, in the partition they belong to."""
        out = [Output(self.topic, key, value, part) for (part, key), value in self.dirty.items()]
        self.dirty.clear()
        return out

    def forget(self, partitions: set[int]) -> None:
        for number in partitions:
            self.partitions.pop(number, None)

    async def restore(self, partitions: set[int]) -> None:
        """Read each partition's changelog from its beginning to its end."""
        wanted = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        if not wanted:
            return
        started = time.monotonic()
        reader = AIOKafkaConsumer(
            **self.settings.kafka_client_config(), enable_auto_commit=False, group_id=None
        )
        await reader.start()
        try:
            records = await self._read(reader, wanted)
        finally:
            await reader.stop()
        log.info(
            "restored %d keys of %s from %d changelog records in %.1f s",
            sum(len(self.partitions[p]) for p in partitions),
            sorted(partitions),
            records,
            time.monotonic() - started,
        )

    async def _read(self, reader: AIOKafkaConsumer, wanted: list[TopicPartition]) -> int:
        reader.assign(wanted)
        await reader.seek_to_beginning(*wanted)
        ends = await reader.end_offsets(wanted)
        for tp in wanted:
            self.partitions[tp.partition] = {}
        left = {tp for tp in wanted if ends[tp] > await reader.position(tp)}
        count = 0
        while left:
            for tp, batch in (await reader.getmany(*left, timeout_ms=1000)).items():
                values = self.partitions[tp.partition]
                for record in batch:
                    if record.value is None:
                        values.pop(record.key, None)
                    else:
                        values[record.key] = record.value
                count += len(batch)
                if await reader.position(tp) >= ends[tp]:
                    left.discard(tp)
        return count
