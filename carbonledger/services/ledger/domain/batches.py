"""A batch of decisions as the ledger applies it: the consumer offsets recorded in
the same transaction as its postings, and what applying it did."""

from __future__ import annotations

from dataclasses import dataclass

from carbonledger.contracts.records import Decision


@dataclass(frozen=True)
class Offset:
    topic: str
    partition: int
    next_offset: int


@dataclass(frozen=True)
class Applied:
    """What one batch did: postings made, and the decisions not recorded before."""

    postings: int
    fresh: list[Decision]
