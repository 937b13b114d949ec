"""Registry transactions: the registry's history, hash-chained, and its replay.

Every change to the registry is one transaction (an account opened, an issuance, a
transfer, a retirement), numbered 1, 2, 3, ... in one chain. A transaction's hash
covers its content, its place and the previous hash, like the books' postings
(domain/chain.py), with a documented canonical text (docs/registry.md):

    sha256( prev_hash "\\n" tx_id "|" chain_index "|" kind "|" account "|" counterparty
            "|" units "|" moved "|" details "|" occurred_at )   as lowercase hex

`moved` lists the runs moved as `unit_type:issuance:first-last` joined by `;`,
`details` is JSON with sorted keys and no spaces (UTF-8, not escaped), absent values
are empty and the time is UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ`. The first transaction
chains from 64 zeros.

The holdings (who holds which units now) are derived: `replay` runs the history
through `Holdings`, so `carbonledger verify` can compare them with the table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from carbonledger.services.ledger.domain.registry.holdings import Holdings, Moved, Refused
from carbonledger.services.ledger.domain.registry.serials import Range

GENESIS = "0" * 64


class Kind(StrEnum):
    OPEN = "open"  # an account opened
    ISSUE = "issue"
    TRANSFER = "transfer"
    RETIRE = "retire"


@dataclass(frozen=True)
class Content:
    """What a transaction says, before it is placed in the chain."""

    tx_id: UUID
    kind: Kind
    account: str
    occurred_at: datetime
    counterparty: str | None = None
    moved: tuple[Moved, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def units(self) -> int:
        return sum(m.range.size for m in self.moved)


@dataclass(frozen=True)
class Transaction:
    """A transaction in the chain."""

    content: Content
    chain_index: int
    prev_hash: str
    hash: str

    @classmethod
    def after(cls, index: int, prev_hash: str, content: Content) -> Transaction:
        """The transaction placed after the chain's head (`index` transactions so far)."""
        return cls(content, index + 1, prev_hash, tx_hash(prev_hash, index + 1, content))


def moved_text(moved: Iterable[Moved]) -> str:
    return ";".join(f"{m.unit_type}:{m.issuance}:{m.range.first}-{m.range.last}" for m in moved)


def parse_moved(text: str) -> tuple[Moved, ...]:
    runs = []
    for part in filter(None, text.split(";")):
        unit_type, issuance, numbers = part.split(":")
        first, last = numbers.split("-")
        runs.append(Moved(unit_type, Range(int(first), int(last)), UUID(issuance)))
    return tuple(runs)


def details_text(details: Mapping[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _moment(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(index: int, c: Content) -> str:
    fields = (
        str(c.tx_id), str(index), c.kind.value, c.account, c.counterparty or "", str(c.units),
        moved_text(c.moved), details_text(c.details), _moment(c.occurred_at),
    )  # fmt: skip
    return "|".join(fields)


def tx_hash(prev_hash: str, index: int, content: Content) -> str:
    return hashlib.sha256(f"{prev_hash}\n{canonical(index, content)}".encode()).hexdigest()


def verify_chain(chain: Iterable[Transaction]) -> Iterator[str]:
    """Each break of the registry's chain (transactions in chain order), once per
    altered row: after a break the check goes on from the stored hash."""
    index, prev = 0, GENESIS
    for tx in chain:
        index += 1
        where = f"registry transaction {tx.chain_index} ({tx.content.tx_id})"
        if tx.chain_index != index:
            yield f"{where}: chain index {tx.chain_index}, expected {index}"
            index = tx.chain_index
        if tx.prev_hash != prev:
            yield f"{where}: previous hash does not match the transaction before it"
        if tx_hash(tx.prev_hash, tx.chain_index, tx.content) != tx.hash:
            yield f"{where}: hash does not match the transaction's content"
        prev = tx.hash


def replay(chain: Iterable[Transaction]) -> tuple[Holdings, list[str]]:
    """The holdings the history leads to, and every transaction the rules refuse
    (an issuance out of sequence, a move of units the account did not hold)."""
    holdings, problems = Holdings(), []
    for tx in chain:
        c = tx.content
        try:
            apply(holdings, c)
        except Refused as why:
            problems.append(f"registry transaction {tx.chain_index} ({c.tx_id}): {why}")
    return holdings, problems


def apply(holdings: Holdings, c: Content) -> None:
    """One recorded transaction on the holdings (Refused if the rules forbid it)."""
    if c.kind is Kind.ISSUE:
        for move in c.moved:
            holdings.record_issue(move, c.account)
    elif c.kind is Kind.TRANSFER:
        if c.counterparty is None:
            raise Refused("a transfer names no receiving account")
        holdings.move(c.account, c.moved, c.counterparty)
    elif c.kind is Kind.RETIRE:
        holdings.move(c.account, c.moved, c.account, retired_by=c.tx_id)
