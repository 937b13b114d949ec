import asyncio
import time
from dataclasses import dataclass

import faust
import pytest

from carbonledger import streaming
from carbonledger.contracts.settings import Settings


@dataclass
class Message:
    topic: str
    partition: int
    offset: int


class Exited(Exception):
    pass


def guard(monkeypatch: pytest.MonkeyPatch, committed: int | None) -> streaming.OffsetGuard:
    def _exit(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(streaming.os, "_exit", _exit)
    g = streaming.OffsetGuard(faust.App("guard-test"), Settings())
    reads: list[int] = []

    def read() -> dict[tuple[str, int], int]:
        reads.append(1)
        return {} if committed is None else {("t", 0): committed, ("t", 1): 0}

    monkeypatch.setattr(g, "_read_committed", read)
    g.reads = reads  # type: ignore[attr-defined]
    return g


def admit(g: streaming.OffsetGuard, offset: int, partition: int = 0) -> None:
    asyncio.run(g.admit(Message("t", partition, offset)))


def test_contiguous_offsets_and_re_reads_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    g = guard(monkeypatch, committed=10)
    for offset in (10, 11, 12, 11, 12, 13):  # a re-read after a seek is harmless
        admit(g, offset)
    admit(g, 0, partition=1)  # another partition starts at its committed offset
    assert len(g.reads) == 1  # one read of the group's offsets serves every partition


def test_first_record_past_the_committed_offset_exits(monkeypatch: pytest.MonkeyPatch) -> None:
    g = guard(monkeypatch, committed=10)
    with pytest.raises(Exited) as exited:
        admit(g, 11)
    assert exited.value.args == (streaming.EXIT_SKIPPED_RECORDS,)


def test_a_jump_within_a_partition_exits(monkeypatch: pytest.MonkeyPatch) -> None:
    g = guard(monkeypatch, committed=None)  # a new group starts wherever the log starts
    admit(g, 500)
    admit(g, 501)
    with pytest.raises(Exited):
        admit(g, 1013)


def test_a_new_assignment_starts_from_the_committed_offset_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    g = guard(monkeypatch, committed=10)
    admit(g, 10)
    asyncio.run(g.app.on_partitions_assigned.send(set()))  # a rebalance assigns anew
    with pytest.raises(Exited):
        admit(g, 12)
    assert len(g.reads) == 2  # committed offsets are read again after the rebalance


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


class FakeConsumer:
    def assignment(self) -> set[TP]:
        return {TP("t", 0), TP("changelog", 0)}


def stalled_guard(
    monkeypatch: pytest.MonkeyPatch, waiting: dict[tuple[str, int], int], idle: float
) -> streaming.OffsetGuard:
    def _exit(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(streaming.os, "_exit", _exit)
    app = faust.App("stall-test")
    g = streaming.OffsetGuard(app, Settings(stall_seconds=30), sources=("t",))
    monkeypatch.setattr(
        streaming.OffsetGuard,
        "_waiting",
        lambda self, parts: {k: v for k, v in waiting.items() if k in parts},
    )
    app.consumer = FakeConsumer()  # type: ignore[assignment]
    g.last_progress -= idle
    return g


def test_a_worker_with_records_waiting_untaken_for_the_stall_period_exits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    g = stalled_guard(monkeypatch, {("t", 0): 12}, idle=300)
    asyncio.run(g._check_stalled())  # first seen waiting: not yet a stall
    assert g.waiting_since is not None
    g.waiting_since -= 29
    asyncio.run(g._check_stalled())
    g.waiting_since -= 2  # now waiting for 31 s, nothing taken
    with pytest.raises(Exited) as exited:
        asyncio.run(g._check_stalled())
    assert exited.value.args == (streaming.EXIT_STALLED,)


def test_a_long_idle_worker_is_not_stalled_when_new_records_arrive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker idle for an hour sees a burst arrive: it gets the stall period to
    take them (restarting it here cost every burst ten seconds of latency)."""
    g = stalled_guard(monkeypatch, {("t", 0): 148}, idle=3600)
    asyncio.run(g._check_stalled())
    g.last_progress = time.monotonic()  # it took one
    g.waiting_since = time.monotonic() - 3600  # a stale mark from before must not count
    asyncio.run(g._check_stalled())


@pytest.mark.parametrize(
    ("waiting", "idle"),
    [({("t", 0): 12}, 5), ({}, 300), ({("changelog", 0): 9}, 300)],
)
def test_busy_or_caught_up_workers_and_other_topics_do_not_trip_it(
    monkeypatch: pytest.MonkeyPatch, waiting: dict[tuple[str, int], int], idle: float
) -> None:
    asyncio.run(stalled_guard(monkeypatch, waiting, idle)._check_stalled())
