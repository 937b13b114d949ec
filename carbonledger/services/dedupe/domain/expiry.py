"""Forgetting people who stop reporting: state expires after the window.

A person's entry is pruned whenever they have a new claim; someone who never
reports again would keep theirs forever. So each partition keeps an index of
who may expire on which day (`~expiry/<partition>/<day>/<bucket>`), and when the
partition's watermark enters a new day the stage sweeps the days now past:
each person listed is pruned, and removed when nothing is left. The index and
the sweep live in the same table as the people, so they move with the
partition and are restored with it; a stale listing (the person reported again
since) costs one read and changes nothing.
"""

from __future__ import annotations

import zlib
from collections.abc import MutableMapping
from datetime import date, datetime, timedelta

import orjson

from carbonledger.contracts.calendar import CST
from carbonledger.services.dedupe.domain.person import PersonState, prune, retained_until

Table = MutableMapping[bytes, bytes]


BUCKETS = 64  # a day's list is split so that one registration rewrites a small value


def expiry_key(partition: int, day: date, bucket: int) -> bytes:
    return f"~expiry/{partition}/{day.isoformat()}/{bucket}".encode()


def _bucket(subject: str) -> int:
    return zlib.crc32(subject.encode()) % BUCKETS


def swept_key(partition: int) -> bytes:
    return f"~swept/{partition}".encode()


def expires_on(state: PersonState, window: timedelta) -> date | None:
    """The local day from which every claim the person has is past the window."""
    if not state.claims:
        return None
    last = max(retained_until(c) for c in state.claims.values())
    return (last + window).astimezone(CST).date() + timedelta(days=1)


def register(
    table: Table, partition: int, state: PersonState, window: timedelta, before: date | None
) -> None:
    """List the person under the day their state may expire, if that day moved."""
    day = expires_on(state, window)
    if day is None or day == before:
        return
    key = expiry_key(partition, day, _bucket(state.subject))
    raw = table.get(key)
    listed: list[str] = orjson.loads(raw) if raw is not None else []
    if state.subject not in listed:
        table[key] = orjson.dumps([*listed, state.subject])


def sweep(table: Table, partition: int, watermark: datetime, window: timedelta) -> int:
    """Prune everyone listed under days the watermark has passed; returns people removed."""
    today = watermark.astimezone(CST).date()
    raw = table.get(swept_key(partition))
    swept_until = date.fromisoformat(raw.decode()) if raw is not None else None
    if swept_until is not None and swept_until >= today:
        return 0
    first = swept_until + timedelta(days=1) if swept_until else today - timedelta(days=400)
    removed = 0
    day = first
    while day <= today:
        removed += _sweep_day(table, partition, day, watermark - window)
        day += timedelta(days=1)
    table[swept_key(partition)] = today.isoformat().encode()
    return removed


def _sweep_day(table: Table, partition: int, day: date, cutoff: datetime) -> int:
    removed = 0
    for bucket in range(BUCKETS):
        key = expiry_key(partition, day, bucket)
        raw = table.get(key)
        if raw is not None:
            removed += _sweep_listed(table, orjson.loads(raw), cutoff)
            del table[key]
    return removed


def _sweep_listed(table: Table, subjects: list[str], cutoff: datetime) -> int:
    removed = 0
    for subject in subjects:
        stored = table.get(subject.encode())
        if stored is None:
            continue
        state = PersonState.from_bytes(stored)
        if prune(state, cutoff) == 0:
            continue
        if state.claims:
            table[subject.encode()] = state.to_bytes()
        else:
            del table[subject.encode()]
            removed += 1
    return removed
