"""Tamper evidence: each account's postings form a hash chain.

A posting's hash covers its content, its place in the account (chain index and
running balance) and the previous posting's hash, so altering, removing or
reordering any posting breaks every hash after it. The canonical text is plain
and documented (docs/ledger.md) so that a verifier can recompute it without
this code:

    sha256( prev_hash "\\n" field_1 "|" field_2 "|" ... )   as lowercase hex

with the fields in the order of `CANONICAL_FIELDS`, integers in decimal, absent
values empty, and the behaviour time in UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
The first posting of an account chains from `GENESIS`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
CANONICAL_FIELDS = (
    "posting_id",
    "decision_id",
    "claim_id",
    "book",
    "account",
    "chain_index",
    "amount_mg",
    "balance_mg",
    "behaviour_type",
    "region",
    "partner",
    "methodology_id",
    "methodology_version",
    "behaviour_time",
)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(value)


def canonical(entry: Mapping[str, Any]) -> str:
    return "|".join(_text(entry[name]) for name in CANONICAL_FIELDS)


def entry_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(f"{prev_hash}\n{canonical(entry)}".encode()).hexdigest()


@dataclass
class Head:
    """Where an account's chain stands: postings so far, balance, last hash."""

    index: int = 0
    balance_mg: int = 0
    hash: str = GENESIS


def extend(head: Head, entry: dict[str, Any]) -> dict[str, Any]:
    """Place an entry (with its amount) after the head: fills chain_index,
    balance_mg, prev_hash and hash, and moves the head."""
    head.index += 1
    head.balance_mg += int(entry["amount_mg"])
    entry |= {"chain_index": head.index, "balance_mg": head.balance_mg, "prev_hash": head.hash}
    entry["hash"] = head.hash = entry_hash(head.hash, entry)
    return entry


@dataclass(frozen=True)
class Break:
    """Where a chain stops verifying, and why."""

    book: str
    account: str
    posting_id: str
    chain_index: int
    problem: str


def verify_chain(
    book: str, account: str, entries: Iterable[Mapping[str, Any]], start: Head | None = None
) -> Iterator[Break]:
    """Recompute one account's chain (entries in chain order) from its start (the
    genesis, or where an exported stretch begins); yields each break.

    After a break the check continues from the stored hash, so one altered row is
    reported once rather than as every posting after it."""
    expected = start or Head()
    for entry in entries:
        expected.index += 1
        expected.balance_mg += int(entry["amount_mg"])

        def broken(problem: str, at: Mapping[str, Any] = entry) -> Break:
            return Break(book, account, str(at["posting_id"]), int(at["chain_index"]), problem)

        if int(entry["chain_index"]) != expected.index:
            yield broken(f"chain index {entry['chain_index']}, expected {expected.index}")
            expected.index = int(entry["chain_index"])
        if int(entry["balance_mg"]) != expected.balance_mg:
            yield broken(f"running balance {entry['balance_mg']}, expected {expected.balance_mg}")
            expected.balance_mg = int(entry["balance_mg"])
        if entry["prev_hash"] != expected.hash:
            yield broken("previous hash does not match the posting before it")
        if entry_hash(str(entry["prev_hash"]), entry) != entry["hash"]:
            yield broken("hash does not match the posting's content")
        expected.hash = str(entry["hash"])
