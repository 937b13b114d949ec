"""send_and_wait: every record sent, then flushed, then each answer waited for; a
failure raises, or is handed back for the caller to send again."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from kafka.errors import KafkaTimeoutError, NotLeaderForPartitionError

from carbonledger.runtime.producers import Outgoing, send_and_wait


@dataclass
class Future:
    error: Exception | None
    waited: list[float] = field(default_factory=list)

    def succeeded(self) -> bool:
        return self.error is None

    def get(self, timeout: float) -> None:
        self.waited.append(timeout)
        if self.error is not None:
            raise self.error


@dataclass
class FakeProducer:
    """Fails the sends whose value is in `refused`; logs what is called, in order."""

    refused: set[bytes] = field(default_factory=set)
    calls: list[Any] = field(default_factory=list)
    futures: list[Future] = field(default_factory=list)

    def send(self, topic: str, key: bytes | None = None, value: bytes | None = None) -> Future:
        self.calls.append(("send", topic, key, value))
        error = NotLeaderForPartitionError() if value in self.refused else None
        self.futures.append(Future(error))
        return self.futures[-1]

    def flush(self, timeout: float) -> None:
        self.calls.append(("flush", timeout))


def test_every_record_is_sent_with_its_key_then_flushed_then_waited_for() -> None:
    kafka = FakeProducer()
    records = [Outgoing("ledger.postings", b"a", key=b"person:1"), Outgoing("partner.metro", b"b")]
    assert send_and_wait(kafka, records, timeout=60) == []
    assert kafka.calls == [
        ("send", "ledger.postings", b"person:1", b"a"),
        ("send", "partner.metro", None, b"b"),
        ("flush", 60),
    ]
    assert [f.waited for f in kafka.futures] == [[60], [60]]


def test_a_failed_send_raises_its_error() -> None:
    kafka = FakeProducer(refused={b"b"})
    with pytest.raises(NotLeaderForPartitionError):
        send_and_wait(kafka, [Outgoing("t", b"a"), Outgoing("t", b"b")], timeout=30)


def test_failed_sends_are_returned_when_asked_even_of_equal_records() -> None:
    kafka = FakeProducer(refused={b"b"})
    a, b, again = Outgoing("t", b"a"), Outgoing("t", b"b"), Outgoing("t", b"b")
    failed = send_and_wait(kafka, [a, b, again], timeout=60, failures="return")
    assert len(failed) == 2 and failed[0] is b and failed[1] is again
    assert [f.waited for f in kafka.futures] == [[], [], []]  # nothing raised, nothing waited


@pytest.mark.parametrize("failures", ["raise", "return"])
def test_a_flush_that_times_out_raises_either_way(failures: Literal["raise", "return"]) -> None:
    class Stuck(FakeProducer):
        def flush(self, timeout: float) -> None:
            raise KafkaTimeoutError("flush timed out")

    with pytest.raises(KafkaTimeoutError):
        send_and_wait(Stuck(), [Outgoing("t", b"a")], timeout=1, failures=failures)
