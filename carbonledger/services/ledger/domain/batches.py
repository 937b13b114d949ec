"""A batch of decisions as the ledger applies it: the consumer offsets recorded in
the same transaction as its postings, and what applying it did."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from carbonledger.contracts.records import Decision


@dataclass(frozen=True)
class Offset:
    topic: str
    partition: int
    next_offset: int


@dataclass(frozen=True)
class Applied:
    """What one batch did: postings made, the decisions not recorded before, and the
    account events recorded for the first time, by type (`consent.granted`, ...)."""

    postings: int
    fresh: list[Decision]
    accounts: Counter[str] = field(default_factory=Counter)
