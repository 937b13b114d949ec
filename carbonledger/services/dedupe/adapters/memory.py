"""Dedupe's state held in memory, for the batch reference (`settle`): the same use
case as the stream's, with people kept as objects rather than encoded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

from carbonledger.services.dedupe.domain.person import PersonState


class MemoryPartition:
    """One partition's people, watermark and expiry listing."""

    def __init__(self) -> None:
        self.people: dict[str, PersonState] = {}
        self.mark: datetime | None = None
        self.swept: date | None = None
        self.expiring: dict[date, list[str]] = {}

    def watermark(self) -> datetime | None:
        return self.mark

    def keep_watermark(self, mark: datetime) -> None:
        self.mark = mark

    def person(self, subject: str) -> PersonState | None:
        return self.people.get(subject)

    def keep_person(self, state: PersonState) -> None:
        self.people[state.subject] = state

    def forget_person(self, subject: str) -> None:
        del self.people[subject]

    def swept_until(self) -> date | None:
        return self.swept

    def keep_swept_until(self, day: date) -> None:
        self.swept = day

    def list_for_expiry(self, day: date, subject: str) -> None:
        listed = self.expiring.setdefault(day, [])
        if subject not in listed:
            listed.append(subject)

    def take_expiring(self, day: date) -> list[str]:
        return self.expiring.pop(day, [])


class MemoryState:
    """The Dedupe use case's StateStore, one MemoryPartition per partition."""

    def __init__(self) -> None:
        self.partitions: dict[int, MemoryPartition] = {}

    def partition(self, number: int) -> MemoryPartition:
        return self.partitions.setdefault(number, MemoryPartition())

    def people(self) -> Iterator[PersonState]:
        for partition in self.partitions.values():
            yield from partition.people.values()
