"""The stage kit's own partitioner gives every key the partition aiokafka's default
partitioner (Kafka's murmur2) gives it, so naming partitions moves no record."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from prometheus_client import CollectorRegistry, Histogram

from carbonledger.runtime.batching import observe_each
from carbonledger.runtime.changelog import Partition
from carbonledger.runtime.partitioner import murmur2, partition_for


def test_murmur2_is_aiokafkas_for_keys_of_every_length() -> None:
    rnd = random.Random(24)
    keys = [rnd.randbytes(n) for n in range(0, 130) for _ in range(20)]
    keys += [b"", b"a", b"21", "李雷".encode(), b"\xff" * 7, b"alice"]
    for key in keys:
        assert murmur2(key) == aiokafka_murmur2(key), key


def test_a_key_goes_to_the_partition_aiokafka_would_send_it_to() -> None:
    rnd = random.Random(8)
    partitioner = DefaultPartitioner()
    for count in (1, 2, 3, 8, 12, 64):
        every = list(range(count))
        for _ in range(300):
            key = rnd.randbytes(rnd.randrange(1, 80))
            assert partition_for(key, count) == partitioner(key, every, every)


def test_observing_each_of_a_batch_at_once_is_observing_them_one_by_one() -> None:
    registry = CollectorRegistry()
    one = Histogram("one_seconds", "one by one", ("stage",), registry=registry)
    many = Histogram("many_seconds", "at once", ("stage",), registry=registry)
    for value, count in ((0.003, 4), (0.07, 500), (0.07, 1), (12.0, 3), (400.0, 2)):
        for _ in range(count):
            one.labels("s").observe(value)
        observe_each(many.labels("s"), value, count)

    def samples(name: str) -> list[tuple[str, dict[str, str], float]]:
        return [
            (s.name.removeprefix(name), s.labels, round(s.value, 9))
            for metric in registry.collect()
            if metric.name == name
            for s in metric.samples
            if not s.name.endswith("_created")
        ]

    assert samples("one_seconds") == samples("many_seconds")


def test_a_partitions_reads_see_writes_and_deletions_over_the_held_state() -> None:
    held = {b"a": b"1", b"b": b"2"}
    part = Partition(held, {b"b": None, b"c": b"3"})
    assert part.get(b"a") == b"1" and part.get(b"b") is None and part.get(b"c") == b"3"
    assert part.get(b"b", b"gone") == b"gone" and part.get(b"x", b"none") == b"none"
    assert b"a" in part and b"b" not in part and b"c" in part and b"x" not in part


class _Cluster:
    """The part of kafka-python's ClusterMetadata a partitioner reads."""

    def __init__(self, partitions: int) -> None:
        self.numbers = set(range(partitions))

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return self.numbers

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.numbers


def test_plain_producers_send_a_key_where_kafka_pythons_default_would() -> None:
    from kafka.partitioner.default import DefaultPartitioner as KafkaPythonDefault

    from carbonledger.runtime.producers import KeyedPartitioner

    rnd = random.Random(3)
    ours, theirs = KeyedPartitioner(), KafkaPythonDefault()
    for count in (1, 3, 8, 12):
        cluster = _Cluster(count)
        for _ in range(300):
            key = rnd.randbytes(rnd.randrange(1, 80))
            expected = theirs.partition("t", key, key, b"v", b"v", cluster)
            assert ours.partition("t", key, key, b"v", b"v", cluster) == expected
        assert ours.partition("t", None, None, b"v", b"v", cluster) in cluster.numbers
