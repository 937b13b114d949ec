"""The batch loop's commit strategies: with `StoredOffsets` the sink's transaction is
the commit, the consumer resumes where the sink says, and a failure exits the
process before anything is committed; and the ledger writer as such a sink."""

from __future__ import annotations

import asyncio
import importlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import faust
import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from carbonledger.contracts import topics
from carbonledger.runtime import batching
from carbonledger.runtime.batching import BatchLoop, Output, _FinishBatchFirst
from carbonledger.runtime.commits import KafkaCommit, Offsets, StoredOffsets
from carbonledger.runtime.process import OffLoop
from carbonledger.services.ledger import service
from carbonledger.services.ledger.domain.batches import Applied, Offset
from carbonledger.services.ledger.entrypoints import publisher, writer
from tests.unit.test_batching import EVERY_BATCH, Record, polled

P0, P1 = TopicPartition("in", 0), TopicPartition("in", 1)


@dataclass
class Consumer:
    log: list[str]
    owned: set[TopicPartition] = field(default_factory=lambda: {P0, P1})
    commit_error: Exception | None = None

    async def commit(self, offsets: Offsets) -> None:
        if self.commit_error is not None:
            raise self.commit_error
        self.log.append(f"commit {sorted((tp.partition, o) for tp, o in offsets.items())}")

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.log.append(f"seek {tp.partition} {offset}")

    def assignment(self) -> set[TopicPartition]:
        return self.owned


@dataclass
class Producer:
    """Acknowledges every send at once."""

    log: list[str]

    async def send(
        self, topic: str, value: bytes, key: bytes, partition: int | None = None
    ) -> asyncio.Future[None]:
        self.log.append(f"send {topic}")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(8))


@dataclass
class Store:
    """A sink keeping its offsets (partition -> next offset) in its own transaction."""

    log: list[str]
    offsets: dict[int, int] = field(default_factory=dict)
    fails: bool = False

    async def stored(self, topic: str) -> dict[int, int]:
        if self.fails:
            raise ConnectionError("database gone")
        return dict(self.offsets)

    async def write(self, offsets: Offsets) -> None:
        if self.fails:
            raise ConnectionError("database gone")
        self.log.append(f"store {sorted((tp.partition, o) for tp, o in offsets.items())}")
        self.offsets |= {tp.partition: o for tp, o in offsets.items()}

    def discard(self) -> None:
        self.log.append("discard")


def dead_letters(records: list[Any]) -> Iterator[Output]:
    yield Output("rejected", b"ledger", b"letter")


def loop_with(store: Store, log: list[str]) -> BatchLoop:
    loop = BatchLoop(
        "ledger", faust.App("commit-test"), EVERY_BATCH, ("in",), dead_letters,
        commit=StoredOffsets(store),
    )  # fmt: skip
    loop.consumer, loop.producer = Consumer(log), Producer(log)  # type: ignore[assignment,unused-ignore]
    return loop


def exits_recorded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    exits: list[int] = []

    def _exit(code: int) -> None:
        exits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr("carbonledger.runtime.batching.os._exit", _exit)
    return exits


def test_kafka_commit_is_the_default_and_commits_what_it_holds_at_the_flush() -> None:
    log: list[str] = []
    loop = BatchLoop("test", faust.App("default-test"), EVERY_BATCH, ("in",), dead_letters)
    strategy, consumer = loop.commit_strategy, Consumer(log)
    assert isinstance(strategy, KafkaCommit)

    async def two_batches_then_flushes() -> None:
        await strategy.commit(consumer, {P0: 9})  # type: ignore[arg-type,unused-ignore]
        await strategy.commit(consumer, {P0: 12, P1: 4})  # type: ignore[arg-type,unused-ignore]
        assert log == []  # held, not yet committed
        await strategy.flush(consumer)  # type: ignore[arg-type,unused-ignore]
        await strategy.flush(consumer)  # type: ignore[arg-type,unused-ignore]  # nothing left

    asyncio.run(two_batches_then_flushes())
    assert log == ["commit [(0, 12), (1, 4)]"]


def test_a_failed_kafka_commit_raises_and_keeps_the_offsets_for_the_next_flush() -> None:
    log: list[str] = []
    strategy, consumer = KafkaCommit(), Consumer(log, commit_error=CommitFailedError("gone"))

    async def fails_then_flushes() -> None:
        await strategy.commit(consumer, {P0: 9})  # type: ignore[arg-type,unused-ignore]
        with pytest.raises(CommitFailedError):
            await strategy.flush(consumer)  # type: ignore[arg-type,unused-ignore]
        consumer.commit_error = None
        await strategy.flush(consumer)  # type: ignore[arg-type,unused-ignore]

    asyncio.run(fails_then_flushes())
    assert log == ["commit [(0, 9)]"]


def test_stored_offsets_seek_on_assignment_under_the_batch_lock() -> None:
    log: list[str] = []
    store = Store(log, offsets={0: 42})  # partition 1 was never written by the sink
    loop = loop_with(store, log)

    async def assign() -> tuple[bool, int]:
        listener = _FinishBatchFirst(loop)
        await loop.lock.acquire()  # a batch in flight
        assigning = asyncio.create_task(listener.on_partitions_assigned({P0, P1}))
        await asyncio.sleep(0.01)
        waited = log == []
        loop.lock.release()
        await assigning
        return waited, loop.generation

    waited, generation = asyncio.run(assign())
    assert waited, "the seek must wait for the batch in flight"
    assert log == ["seek 0 42"]  # partition 1 starts where Kafka's offsets say
    assert generation > 0 and not loop.restoring


def test_the_sink_transaction_comes_after_every_output_and_before_the_kafka_commit() -> None:
    log: list[str] = []
    loop = loop_with(Store(log), log)
    asyncio.run(loop._process(polled()))
    assert log == ["send rejected", "store [(0, 9), (1, 4)]", "commit [(0, 9), (1, 4)]"]


def test_a_failed_sink_transaction_commits_nothing_and_exits_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exits = exits_recorded(monkeypatch)
    log: list[str] = []
    loop = loop_with(Store(log, fails=True), log)

    class OneBatch(Consumer):
        async def getmany(self, **_: Any) -> dict[TopicPartition, list[Any]]:
            return polled()

    loop.consumer = OneBatch(log)  # type: ignore[assignment,unused-ignore]
    with pytest.raises(SystemExit):
        asyncio.run(BatchLoop._run(loop))
    assert exits == [batching.EXIT_BATCH_FAILED]
    assert not any(line.startswith(("commit", "store")) for line in log)


def test_unreadable_stored_offsets_exit_rather_than_read_from_kafkas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exits = exits_recorded(monkeypatch)
    log: list[str] = []
    loop = loop_with(Store(log, fails=True), log)
    with pytest.raises(SystemExit):
        asyncio.run(_FinishBatchFirst(loop).on_partitions_assigned({P0}))
    assert exits == [batching.EXIT_BATCH_FAILED] and log == []


def test_a_lost_kafka_commit_after_the_sink_transaction_is_only_a_warning() -> None:
    log: list[str] = []
    store = Store(log)
    consumer = Consumer(log, commit_error=CommitFailedError("rebalanced"))
    strategy = StoredOffsets(store)

    async def stores_then_flushes() -> None:
        await strategy.commit(consumer, {P0: 9})  # type: ignore[arg-type,unused-ignore]
        await strategy.flush(consumer)  # type: ignore[arg-type,unused-ignore]

    asyncio.run(stores_then_flushes())
    assert log == ["store [(0, 9)]"] and store.offsets == {0: 9}


def test_a_batch_a_rebalance_overtook_resumes_at_the_stored_offsets() -> None:
    log: list[str] = []
    loop = loop_with(Store(log, offsets={0: 12}), log)
    loop.consumer = Consumer(log, owned={P0})  # type: ignore[assignment,unused-ignore]
    asyncio.run(loop._fetch_again(polled()))
    # Rewound to the batch's start, then to where the sink has written up to.
    assert log == ["seek 0 7", "seek 0 12"]


def test_off_loop_close_waits_for_the_call_in_flight() -> None:
    events: list[str] = []
    release = threading.Event()
    db = OffLoop(lambda: events.append("closed"))

    def transaction() -> None:
        release.wait(5)
        events.append("committed")

    async def call_then_close() -> None:
        call = asyncio.create_task(db.call(transaction))
        await asyncio.sleep(0.05)
        closer = threading.Thread(target=db.close)
        closer.start()
        time.sleep(0.05)
        release.set()
        await call
        closer.join(5)

    asyncio.run(call_then_close())
    assert events == ["committed", "closed"]


@dataclass
class Books:
    applied: list[tuple[int, str, list[Offset]]] = field(default_factory=list)
    regions: Any = field(default_factory=dict)

    def apply(
        self, decisions: list[Any], group_id: str, offsets: list[Offset], accounts: Any = ()
    ) -> Applied:
        self.applied.append((len(decisions), group_id, offsets))
        return Applied(0, [])

    def offsets(self, group_id: str, topic: str) -> dict[int, int]:
        return {3: 100} if (group_id, topic) == ("writers", "dedupe.decisions") else {}


def test_the_writer_records_a_batch_and_its_offsets_in_one_apply() -> None:
    books = Books()
    postings = service.Postings(books, "writers", OffLoop(lambda: None))  # type: ignore[arg-type,unused-ignore]
    assert list(postings.take(Record("d", 3, 99), "decision")) == []  # type: ignore[arg-type,unused-ignore]
    assert asyncio.run(postings.stored("dedupe.decisions")) == {3: 100}
    asyncio.run(postings.write({TopicPartition("dedupe.decisions", 3): 100}))
    asyncio.run(postings.write({TopicPartition("dedupe.decisions", 3): 101}))  # dead letters only
    assert books.applied == [
        (1, "writers", [Offset("dedupe.decisions", 3, 100)]),
        (0, "writers", [Offset("dedupe.decisions", 3, 101)]),
    ]


def test_the_writer_and_publisher_build_nothing_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBON_LEDGER_BATCH_MAX", "not a number")  # LedgerSettings() would fail
    monkeypatch.setenv("CARBON_PG_HOST", "no-such-host.invalid")
    importlib.reload(writer)
    importlib.reload(publisher)


def test_a_publisher_is_ready_once_it_knows_its_role() -> None:
    role = service.OutboxRelay(None, None, 0, 0)  # type: ignore[arg-type,unused-ignore]
    assert role.readiness() == {"ready": False}
    role.role = "standby"
    assert role.readiness() == {"ready": True, "role": "standby"}


def test_the_writer_isolates_a_decision_its_books_cannot_store() -> None:
    """A batch the books refuse as a whole (a DataError of one decision) is written again
    in parts: nothing of a failed attempt stays in hand, the poison goes alone as a dead
    letter with its offset, and every good decision is applied once."""
    applied: list[tuple[list[str], list[Offset]]] = []

    @dataclass
    class PoisonedBooks(Books):
        def apply(
            self, decisions: list[Any], group_id: str, offsets: list[Offset], accounts: Any = ()
        ) -> Applied:
            if "0:8" in decisions:
                raise ValueError("PostgreSQL text fields cannot contain NUL characters")
            applied.append((list(decisions), offsets))
            return Applied(0, [])

    postings = service.Postings(PoisonedBooks(), "writers", OffLoop(lambda: None))  # type: ignore[arg-type,unused-ignore]

    def take(records: list[Any]) -> Iterator[Output]:
        for r in records:
            yield from postings.take(r, f"{r.partition}:{r.offset}")  # type: ignore[arg-type,unused-ignore]

    log: list[str] = []
    loop = BatchLoop(
        "ledger", faust.App("writer-poison-test"), EVERY_BATCH, ("in",), take,
        commit=StoredOffsets(postings),
    )  # fmt: skip
    loop.consumer, loop.producer = Consumer(log), Producer(log)  # type: ignore[assignment,unused-ignore]
    asyncio.run(loop._process(polled()))
    assert applied == [
        (["0:7"], [Offset("in", 0, 8)]),
        ([], [Offset("in", 0, 9)]),  # the poison's dead letter and its offset only
        (["1:3"], [Offset("in", 1, 4)]),
    ]
    assert log.count(f"send {topics.REJECTED}") == 1
