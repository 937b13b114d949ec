"""The batch path of the stateless stages: a batch's offsets are committed only after
every output of it is acknowledged, a batch failed by the infrastructure commits
nothing (and exits), and a poison record is isolated and dead-lettered while the
records around it go through."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import faust
import pytest
from aiokafka import TopicPartition
from aiokafka.errors import MessageSizeTooLargeError
from prometheus_client import REGISTRY
from pydantic import BaseModel

from carbonledger.contracts import topics
from carbonledger.contracts.catalogue import Reason, Rejection
from carbonledger.contracts.records import ValidatedBehaviour
from carbonledger.contracts.settings import Settings
from carbonledger.runtime import batching
from carbonledger.runtime.batching import BatchLoop, Output
from carbonledger.runtime.changelog import ChangelogTable
from carbonledger.runtime.stage import Stage

# Offsets committed after every batch (a checkpoint interval of 0), so that each test
# sees its batch's commit; the interval itself is tested on its own.
EVERY_BATCH = Settings(stream_commit_interval_ms=0)


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None = b"k"
    value: bytes = b"v"


@dataclass
class FakeProducer:
    """Acknowledges a send only when the test says so."""

    log: list[str]
    pending: list[asyncio.Future[None]] = field(default_factory=list)

    async def send(
        self, topic: str, value: bytes, key: bytes, partition: int | None = None
    ) -> asyncio.Future[None]:
        self.log.append(f"send {topic} {value.decode()}")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda _: self.log.append(f"ack {value.decode()}"))
        self.pending.append(future)
        return future

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(8))


class AcksAtOnce(FakeProducer):
    async def send(
        self, topic: str, value: bytes, key: bytes, partition: int | None = None
    ) -> asyncio.Future[None]:
        future = await super().send(topic, value, key, partition)
        future.set_result(None)
        return future


@dataclass
class FakeConsumer:
    log: list[str]

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.log.append(f"commit {sorted((tp.partition, o) for tp, o in offsets.items())}")


def loop_with(handle: Any, log: list[str]) -> tuple[BatchLoop, FakeProducer]:
    app = faust.App("batch-test")
    loop = BatchLoop("test", app, EVERY_BATCH, ("in",), handle)
    producer = FakeProducer(log)
    loop.producer, loop.consumer = producer, FakeConsumer(log)  # type: ignore[assignment,unused-ignore]
    return loop, producer


def polled() -> dict[TopicPartition, list[Any]]:
    return {
        TopicPartition("in", 0): [Record("in", 0, 7), Record("in", 0, 8)],
        TopicPartition("in", 1): [Record("in", 1, 3)],
    }


def echo(records: list[Any]) -> Iterator[Output]:
    for r in records:
        yield Output("out", b"k", f"{r.partition}:{r.offset}".encode())


def test_offsets_are_committed_after_every_output_is_acknowledged() -> None:
    asyncio.run(_offsets_are_committed_after_every_output_is_acknowledged())


async def _offsets_are_committed_after_every_output_is_acknowledged() -> None:
    log: list[str] = []
    loop, producer = loop_with(echo, log)
    task = asyncio.create_task(loop._process(polled()))
    await asyncio.sleep(0.01)
    assert log == ["send out 0:7", "send out 0:8", "send out 1:3"]  # nothing committed yet
    for future in reversed(producer.pending):
        future.set_result(None)
    await task
    assert log[-1] == "commit [(0, 9), (1, 4)]"  # the next offset of each partition
    assert log.index("commit [(0, 9), (1, 4)]") > max(
        i for i, line in enumerate(log) if line.startswith("ack")
    )


def test_a_send_that_fails_commits_nothing() -> None:
    asyncio.run(_a_send_that_fails_commits_nothing())


async def _a_send_that_fails_commits_nothing() -> None:
    log: list[str] = []
    loop, producer = loop_with(echo, log)
    task = asyncio.create_task(loop._process(polled()))
    await asyncio.sleep(0.01)
    producer.pending[0].set_result(None)
    producer.pending[1].set_exception(TimeoutError("broker gone"))
    producer.pending[2].set_result(None)
    with pytest.raises(TimeoutError):
        await task
    assert not any(line.startswith("commit") for line in log)


def test_a_handler_failed_by_the_infrastructure_commits_nothing() -> None:
    asyncio.run(_a_handler_failed_by_the_infrastructure_commits_nothing())


async def _a_handler_failed_by_the_infrastructure_commits_nothing() -> None:
    def broken(records: list[Any]) -> Iterator[Output]:
        yield Output("out", b"k", b"first")
        raise ConnectionError("database gone")

    log: list[str] = []
    loop, _ = loop_with(broken, log)
    with pytest.raises(ConnectionError):
        await loop._process(polled())
    assert not any(line.startswith("commit") for line in log)


def test_the_run_loop_exits_the_process_on_a_failed_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Abruptly, as SIGKILL would: nothing after the failure may commit."""
    exits: list[int] = []

    def _exit(code: int) -> None:
        exits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr("carbonledger.runtime.batching.os._exit", _exit)

    def broken(records: list[Any]) -> Iterator[Output]:
        raise ConnectionError("broker gone")
        yield  # a generator, like the stages' handlers

    log: list[str] = []
    loop, _ = loop_with(broken, log)

    class OneBatch(FakeConsumer):
        async def getmany(self, **_: Any) -> dict[TopicPartition, list[Any]]:
            return polled()

    loop.consumer = OneBatch(log)  # type: ignore[assignment,unused-ignore]
    with pytest.raises(SystemExit):
        asyncio.run(BatchLoop._run(loop))
    assert exits == [batching.EXIT_BATCH_FAILED] and log == []


def test_an_undecodable_record_becomes_a_dead_letter_with_its_bytes() -> None:
    stage = Stage("quantify", faust.App("decode-test"), Settings())
    out = stage.decode(Record(topics.VALIDATED, 2, 40, value=b"{not json"), ValidatedBehaviour)
    assert isinstance(out, Output) and out.topic == topics.REJECTED and out.key == b"quantify"
    assert out.value is not None  # narrows the type; a dead letter always has a value
    assert b"undecodable_record" in out.value and b"e25vdCBqc29u" in out.value  # base64 of it


def test_a_batch_fetched_before_a_rebalance_is_left_to_the_new_owner() -> None:
    log: list[str] = []
    loop, _ = loop_with(echo, log)

    class RebalancedDuringFetch(FakeConsumer):
        calls = 0

        async def getmany(self, **_: Any) -> dict[TopicPartition, list[Any]]:
            self.calls += 1
            if self.calls > 1:
                loop._stopped.set()  # type: ignore[attr-defined,unused-ignore]
                return {}
            loop.generation += 1  # a rebalance while this batch was fetched
            return polled()

        def assignment(self) -> set[TopicPartition]:
            return {TopicPartition("in", 0)}  # kept partition 0, lost partition 1

        def seek(self, tp: TopicPartition, offset: int) -> None:
            self.log.append(f"seek {tp.partition} {offset}")

    loop.consumer = RebalancedDuringFetch(log)  # type: ignore[assignment,unused-ignore]
    loop.producer = AcksAtOnce(log)  # type: ignore[assignment,unused-ignore]
    asyncio.run(BatchLoop._run(loop))
    # Nothing sent or committed; the partition kept is read again from the batch's start.
    assert log == ["seek 0 7"]


def test_changelog_writes_are_one_per_key_in_the_claims_partition() -> None:
    state = ChangelogTable("people-changelog", Settings())
    with state.transaction() as tx:
        three = tx.partition(3)
        three[b"alice"] = b"1"
        three[b"alice"] = b"2"
        three[b"bob"] = b"x"
        del three[b"bob"]
        tx.partition(5)[b"carol"] = b"c"
        assert sorted(tx.changes(), key=lambda o: o.key) == [
            Output("people-changelog", b"alice", b"2", 3),
            Output("people-changelog", b"bob", None, 3),  # a tombstone
            Output("people-changelog", b"carol", b"c", 5),
        ]
    with state.transaction() as tx:
        assert tx.changes() == []
        three = tx.partition(3)
        assert dict(three) == {b"alice": b"2"} and three.get(b"carol") is None
    state.forget({3})
    with state.transaction() as tx:
        assert len(tx.partition(3)) == 0


def test_a_transaction_reads_its_own_writes_and_a_discarded_one_leaves_the_state() -> None:
    state = ChangelogTable("people-changelog", Settings())
    with state.transaction() as tx:
        tx.partition(0).update({b"alice": b"1", b"bob": b"2"})
    with pytest.raises(RuntimeError), state.transaction() as tx:
        zero = tx.partition(0)
        zero[b"alice"] = b"changed"
        del zero[b"bob"]
        zero[b"carol"] = b"3"
        assert dict(zero) == {b"alice": b"changed", b"carol": b"3"}
        assert state.partitions[0] == {b"alice": b"1", b"bob": b"2"}  # not yet the state
        raise RuntimeError("bug")
    assert state.open is None and state.partitions[0] == {b"alice": b"1", b"bob": b"2"}
    with pytest.raises(RuntimeError):
        tx.partition(0)  # an ended transaction reaches no state
    with pytest.raises(RuntimeError):
        state.current()  # nor does anything outside a transaction


def counting(state: ChangelogTable) -> Any:
    """A stateful handler: counts the records of each partition in its state."""

    def handle(records: list[Any]) -> Iterator[Output]:
        for r in records:
            counts = state.current().partition(r.partition)
            counts[b"n"] = str(int(counts.get(b"n", b"0")) + 1).encode()
            yield Output("out", b"k", f"{r.partition}:{r.offset}".encode())

    return handle


async def counting_batch_in_flight(
    log: list[str],
) -> tuple[ChangelogTable, FakeProducer, asyncio.Task[None]]:
    """A stateful stage's batch, processed up to its sends (acknowledged by the caller)."""
    state = ChangelogTable("counts-changelog", Settings())
    loop, producer = loop_with(counting(state), log)
    loop.partition_state = state
    task = asyncio.create_task(loop._process(polled()))
    await asyncio.sleep(0.01)
    return state, producer, task


def test_a_checkpoint_sends_the_state_changes_with_the_outputs_before_the_commit() -> None:
    asyncio.run(_a_checkpoint_sends_the_state_changes_with_the_outputs_before_the_commit())


async def _a_checkpoint_sends_the_state_changes_with_the_outputs_before_the_commit() -> None:
    log: list[str] = []
    state, producer, task = await counting_batch_in_flight(log)
    assert log[3:] == ["send counts-changelog 2", "send counts-changelog 1"]
    assert state.partitions == {0: {}, 1: {}}  # not the state before it is durable
    for future in producer.pending:
        future.set_result(None)
    await task
    assert log[-1] == "commit [(0, 9), (1, 4)]"
    assert state.partitions == {0: {b"n": b"2"}, 1: {b"n": b"1"}} and state.open is None


def test_a_failed_batch_discards_its_state_changes() -> None:
    asyncio.run(_a_failed_batch_discards_its_state_changes())


async def _a_failed_batch_discards_its_state_changes() -> None:
    log: list[str] = []
    state, producer, task = await counting_batch_in_flight(log)
    producer.pending[-1].set_exception(TimeoutError("broker gone"))
    for future in producer.pending[:-1]:
        future.set_result(None)
    with pytest.raises(TimeoutError):
        await task
    assert state.partitions == {0: {}, 1: {}} and state.open is None
    assert not any(line.startswith("commit") for line in log)


def test_the_consumer_waits_to_gather_a_batch_as_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CARBON_STREAM_FETCH_MAX_WAIT_MS", "80")
    built: dict[str, Any] = {}

    class Recorder:
        def __init__(self, **config: Any) -> None:
            built.update(config)

    monkeypatch.setattr("carbonledger.runtime.batching.AIOKafkaConsumer", Recorder)
    monkeypatch.setattr("carbonledger.runtime.batching.AIOKafkaProducer", lambda **_: None)
    loop = BatchLoop("test", faust.App("fetch-test"), Settings(), ("in",), echo)
    with contextlib.suppress(AttributeError):  # the recorder cannot subscribe
        asyncio.run(loop.on_start())
    assert built["fetch_max_wait_ms"] == 80
    assert built["fetch_min_bytes"] == Settings().stream_fetch_min_bytes

    # A stage's own consumer settings (the ledger writer's fetch) override the shared ones.
    own = BatchLoop(
        "test", faust.App("fetch-own-test"), Settings(), ("in",), echo,
        consumer_config={"fetch_max_wait_ms": 150, "isolation_level": "read_committed"},
    )  # fmt: skip
    with contextlib.suppress(AttributeError):
        asyncio.run(own.on_start())
    assert built["fetch_max_wait_ms"] == 150 and built["isolation_level"] == "read_committed"
    assert built["fetch_min_bytes"] == Settings().stream_fetch_min_bytes


def test_each_hands_decoded_records_on_and_puts_dead_letters_in_their_place() -> None:
    class Reading(BaseModel):
        value: int

    def double(record: Any, reading: Reading) -> Iterator[Output]:
        yield Output("out", b"k", str(reading.value * 2).encode())

    stage = Stage("quantify", faust.App("each-test"), Settings())
    records = [
        Record("in", 0, 1, value=b'{"value": 2}'),
        Record("in", 0, 2, value=b"{broken"),
        Record("in", 0, 3, value=b'{"value": 5}'),
    ]
    outputs = list(stage.each(Reading, double)(records))
    assert [o.topic for o in outputs] == ["out", topics.REJECTED, "out"]
    assert [outputs[0].value, outputs[2].value] == [b"4", b"10"]


# --- poison isolation -------------------------------------------------------------------------


def acking_loop_with(
    handle: Any, log: list[str], settings: Settings = EVERY_BATCH, **kwargs: Any
) -> BatchLoop:
    loop = BatchLoop("test", faust.App("poison-test"), settings, ("in",), handle, **kwargs)
    loop.producer, loop.consumer = AcksAtOnce(log), FakeConsumer(log)  # type: ignore[assignment,unused-ignore]
    return loop


def later_batch() -> dict[TopicPartition, list[Any]]:
    return {
        TopicPartition("in", 0): [Record("in", 0, 9)],
        TopicPartition("in", 2): [Record("in", 2, 5)],
    }


HOURLY = Settings(stream_commit_interval_ms=3_600_000)


def test_offsets_are_held_until_the_checkpoint_interval_then_committed_together() -> None:
    log: list[str] = []
    loop = acking_loop_with(echo, log, HOURLY)

    async def two_batches_then_the_interval() -> None:
        await loop._process(polled())
        await loop._process(later_batch())
        assert not any(line.startswith("commit") for line in log)  # all acknowledged, held
        loop._flushed -= 2 * loop.commit_interval  # the interval has passed
        await loop._process({TopicPartition("in", 1): [Record("in", 1, 4)]})

    asyncio.run(two_batches_then_the_interval())
    assert [line for line in log if line.startswith("commit")] == [
        "commit [(0, 10), (1, 5), (2, 6)]"
    ]


def test_held_offsets_are_committed_before_partitions_are_revoked() -> None:
    log: list[str] = []
    loop = acking_loop_with(echo, log, HOURLY)

    async def a_batch_then_a_rebalance() -> None:
        await loop._process(polled())
        await batching._FinishBatchFirst(loop).on_partitions_revoked({TopicPartition("in", 0)})

    asyncio.run(a_batch_then_a_rebalance())
    assert log[-1] == "commit [(0, 9), (1, 4)]"


def test_an_idle_loop_commits_what_it_holds_at_once() -> None:
    log: list[str] = []
    loop = acking_loop_with(echo, log, HOURLY)

    class Idle(FakeConsumer):
        async def getmany(self, **kwargs: Any) -> dict[TopicPartition, list[Any]]:
            loop._stopped.set()  # one empty poll, then the loop ends
            return {}

    async def a_batch_then_nothing() -> None:
        await loop._process(polled())
        loop.consumer = Idle(log)  # type: ignore[assignment,unused-ignore]
        await batching.BatchLoop._run(loop)  # type: ignore[call-arg,arg-type,unused-ignore]

    asyncio.run(a_batch_then_nothing())
    assert log[-1] == "commit [(0, 9), (1, 4)]"


def failing_at(offset: int, error: Exception) -> Any:
    """A handler that fails whenever the record at `offset` of partition 0 is in its batch."""

    def handle(records: list[Any]) -> Iterator[Output]:
        for r in records:
            if (r.partition, r.offset) == (0, offset):
                raise error
            yield Output("out", b"k", f"{r.partition}:{r.offset}".encode())

    return handle


def letters(log: list[str]) -> list[dict[str, Any]]:
    return [
        json.loads(line.removeprefix(f"send {topics.REJECTED} "))
        for line in log
        if line.startswith(f"send {topics.REJECTED} ")
    ]


def poison_count(stage: str) -> float:
    return REGISTRY.get_sample_value("carbon_stage_poison_records_total", {"stage": stage}) or 0.0


def test_a_poison_record_is_dead_lettered_and_the_others_go_through_in_order() -> None:
    log: list[str] = []
    before = poison_count("test")
    loop = acking_loop_with(
        failing_at(8, ValueError("PostgreSQL text fields cannot contain NUL")), log
    )
    asyncio.run(loop._process(polled()))
    good = [line for line in log if line.startswith(("send out", "commit"))]
    assert good == [
        "send out 0:7",
        "commit [(0, 8)]",
        "commit [(0, 9)]",  # the poison's dead letter, acknowledged first
        "send out 1:3",
        "commit [(1, 4)]",
    ]
    (letter,) = letters(log)
    assert letter["reason"] == "processing_error" and "cannot contain NUL" in letter["message"]
    assert letter["origin"] == {"topic": "in", "partition": 0, "offset": 8}
    assert base64.b64decode(letter["payload_b64"]) == b"v"  # the original bytes
    assert poison_count("test") == before + 1


def test_a_rejected_record_is_dead_lettered_with_its_reason() -> None:
    log: list[str] = []
    refused = Rejection(Reason.INVALID_RECORD, "reverses a credit that does not exist")
    loop = acking_loop_with(failing_at(7, refused), log)
    asyncio.run(loop._process(polled()))
    (letter,) = letters(log)
    assert letter["reason"] == "invalid_record" and "does not exist" in letter["message"]
    assert log[-1] == "commit [(0, 9), (1, 4)]"  # the other half, in one checkpoint


def test_a_record_too_large_for_the_broker_is_the_records_own_fault() -> None:
    log: list[str] = []
    loop = acking_loop_with(failing_at(8, MessageSizeTooLargeError()), log)
    asyncio.run(loop._process(polled()))
    assert [letter["origin"]["offset"] for letter in letters(log)] == [8]


def test_an_infrastructure_error_of_the_stage_still_fails_the_batch() -> None:
    class AdminShutdown(Exception):
        """Stands for psycopg's OperationalError, the writer's infrastructure."""

    log: list[str] = []
    loop = acking_loop_with(failing_at(8, AdminShutdown()), log, infrastructure=(AdminShutdown,))
    with pytest.raises(AdminShutdown):
        asyncio.run(loop._process(polled()))
    assert not any(line.startswith("commit") for line in log) and letters(log) == []


def test_infrastructure_found_while_isolating_still_fails_the_batch() -> None:
    calls = 0

    def flaky(records: list[Any]) -> Iterator[Output]:
        nonlocal calls
        calls += 1
        raise ValueError("poison") if calls == 1 else TimeoutError("broker gone")
        yield

    log: list[str] = []
    with pytest.raises(TimeoutError):
        asyncio.run(acking_loop_with(flaky, log)._process(polled()))
    assert not any(line.startswith("commit") for line in log)


def test_a_poison_records_state_changes_never_become_state() -> None:
    state = ChangelogTable("counts-changelog", Settings())
    count = counting(state)

    def poisoned(records: list[Any]) -> Iterator[Output]:
        for r in records:
            yield from count([r])  # its change is written in the transaction first
            if (r.partition, r.offset) == (0, 8):
                raise OverflowError("date value out of range")

    log: list[str] = []
    loop = acking_loop_with(poisoned, log, state=state)
    asyncio.run(loop._process(polled()))
    # One count per good record; the poison's write went with its discarded attempts.
    assert state.partitions == {0: {b"n": b"1"}, 1: {b"n": b"1"}} and state.open is None
    changelog = [line for line in log if line.startswith("send counts-changelog")]
    assert changelog == ["send counts-changelog 1", "send counts-changelog 1"]
    assert [letter["origin"]["offset"] for letter in letters(log)] == [8]


def test_every_record_poisoned_is_each_dead_lettered() -> None:
    def hopeless(records: list[Any]) -> Iterator[Output]:
        raise ValueError("not one of these")
        yield

    log: list[str] = []
    asyncio.run(acking_loop_with(hopeless, log)._process(polled()))
    assert sorted(letter["origin"]["offset"] for letter in letters(log)) == [3, 7, 8]
    assert log[-1] == "commit [(1, 4)]"
