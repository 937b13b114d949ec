"""Per-partition state kept in memory and made durable in a compacted changelog topic.

A stage's state is a mapping of bytes per input partition. It is read and written
only inside a `StateTransaction`, one per batch (quixstreams' checkpoint is the
model): the transaction holds the batch's writes, its reads see them, and at the
checkpoint its `changes()` (each key's last value, a tombstone for a deletion, in
the partition of the input that caused it) are sent with the batch's outputs. Once
they are all acknowledged and the offsets committed (or held for the next flush,
runtime/commits.py), the writes become the partition's state; a batch that fails
discards them (and either runs again in parts, to isolate a poison record, or the
process exits, to restore from the changelog). The changelog may so hold the
changes of batches whose offsets a crash kept from being committed: those batches
are read again over state that already has them, which the stages' rules absorb as
they absorb any redelivery.

The records are those a faust table writes to its changelog (raw key, raw value),
so state written by a faust table carries over. On assignment each partition is
read back from the changelog's beginning before any input of it is taken.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TypeVar, overload

from aiokafka import AIOKafkaConsumer, TopicPartition

from carbonledger.contracts.settings import Settings
from carbonledger.runtime.batching import Output

log = logging.getLogger(__name__)

T = TypeVar("T")
_UNWRITTEN: Any = object()  # a key the transaction has not written (None: deleted)


class Partition(MutableMapping[bytes, bytes]):
    """One partition's state as a transaction sees it: its held state under the
    transaction's writes (None is a deletion)."""

    def __init__(self, held: dict[bytes, bytes], writes: dict[bytes, bytes | None]) -> None:
        self.held, self.writes = held, writes

    def __getitem__(self, key: bytes) -> bytes:
        if key in self.writes:
            value = self.writes[key]
            if value is None:
                raise KeyError(key)
            return value
        return self.held[key]

    # `get` and `in` are the stages' most frequent reads: answered here, with two
    # dict lookups, rather than by Mapping's, which go through __getitem__ and a
    # KeyError for every key not there.
    @overload
    def get(self, key: bytes, /) -> bytes | None: ...

    @overload
    def get(self, key: bytes, default: bytes | T, /) -> bytes | T: ...

    def get(self, key: bytes, default: Any = None) -> Any:
        value = self.writes.get(key, _UNWRITTEN)
        if value is _UNWRITTEN:
            return self.held.get(key, default)
        return default if value is None else value

    def __contains__(self, key: object) -> bool:
        value = self.writes.get(key, _UNWRITTEN)  # type: ignore[call-overload]
        if value is _UNWRITTEN:
            return key in self.held
        return value is not None

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.writes[key] = value

    def __delitem__(self, key: bytes) -> None:
        if key not in self:
            raise KeyError(key)
        self.writes[key] = None

    def __iter__(self) -> Iterator[bytes]:
        yield from (key for key in self.held if key not in self.writes)
        yield from (key for key, value in self.writes.items() if value is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class StateTransaction:
    """One batch's reads and writes of the state (`partition`); its `changes()` are
    the changelog records of the checkpoint."""

    def __init__(self, table: ChangelogTable) -> None:
        self.table = table
        self.writes: dict[int, dict[bytes, bytes | None]] = {}
        self.open = True

    def partition(self, number: int) -> Partition:
        """The state of one input partition, as a mapping whose writes are logged."""
        if not self.open:
            raise RuntimeError("the transaction has ended; state is reached in an open one")
        held = self.table.partitions.setdefault(number, {})
        return Partition(held, self.writes.setdefault(number, {}))

    def changes(self) -> list[Output]:
        """The writes as changelog records: one per key, in the partition it belongs to."""
        return [
            Output(self.table.topic, key, value, number)
            for number, writes in self.writes.items()
            for key, value in writes.items()
        ]

    def commit(self) -> None:
        """The writes become the state (after the checkpoint has made them durable)."""
        for number, writes in self.writes.items():
            held = self.table.partitions.setdefault(number, {})
            for key, value in writes.items():
                if value is None:
                    held.pop(key, None)
                else:
                    held[key] = value
        self._end()

    def discard(self) -> None:
        self._end()

    def _end(self) -> None:
        self.open = False
        if self.table.open is self:
            self.table.open = None


class ChangelogTable:
    """Per-partition mappings of bytes, reached only through the open transaction.

    One transaction at a time (`begin` or `transaction`): the batch loop opens one per
    batch, and a rebalance, which forgets or restores partitions, happens between them.
    """

    def __init__(self, topic: str, settings: Settings) -> None:
        self.topic, self.settings = topic, settings
        self.partitions: dict[int, dict[bytes, bytes]] = {}
        self.open: StateTransaction | None = None

    def begin(self) -> StateTransaction:
        if self.open is not None:
            raise RuntimeError("a state transaction is already open")
        self.open = StateTransaction(self)
        return self.open

    @contextmanager
    def transaction(self) -> Iterator[StateTransaction]:
        """A transaction committed when the block ends, discarded if it raises."""
        tx = self.begin()
        try:
            yield tx
        except BaseException:
            tx.discard()
            raise
        tx.commit()

    def current(self) -> StateTransaction:
        """The open transaction: the way a handler reaches the state."""
        if self.open is None:
            raise RuntimeError("state is read and written only in a transaction")
        return self.open

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
