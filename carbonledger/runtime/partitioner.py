"""Kafka's default partitioner for keyed records, computed by the stage kit itself.

aiokafka's `send` without a partition hashes the key with its pure-Python murmur2
and builds two lists of the topic's partitions for every record (2.6% of dedupe's
CPU, 6.5% of ingest's, docs/performance.md). The batch loop instead asks for a
topic's partition count once per batch and names each record's partition itself,
with the same hash: Kafka's `Utils.murmur2` (what aiokafka, kafka-python and the
Java client use), so a key goes to the same partition as it always has.
"""

from __future__ import annotations

import struct

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS = struct.Struct("<I")


def murmur2(data: bytes) -> int:
    """Kafka's 32-bit murmur2 of `data`, as an unsigned int (aiokafka's `murmur2`).

    The same arithmetic as Kafka's, with each word read in one call and only the
    masks that keep it in 32 bits: about half the time of aiokafka's."""
    length = len(data)
    h = _SEED ^ length
    whole = length & ~3
    if whole:
        for (word,) in _WORDS.iter_unpack(data[:whole]):
            k = (word * _M) & _MASK
            k = ((k ^ (k >> 24)) * _M) & _MASK
            h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    if tail:
        if tail == 3:
            h ^= data[whole + 2] << 16
        if tail >= 2:
            h ^= data[whole + 1] << 8
        h = ((h ^ data[whole]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a keyed record."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
