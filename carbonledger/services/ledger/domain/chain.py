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

A posting also records whose behaviour it is for (`subject_kind`: a person or a
unit). That is an attribute of the posting outside the canonical text, so chains
written before units existed verify unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from carbonledger.contracts.records import Book, SubjectKind

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


def _joined(values: Iterable[Any]) -> str:
    return "|".join(_text(value) for value in values)


def _hash(prev_hash: str, canonical_text: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{canonical_text}".encode()).hexdigest()


def canonical(entry: Mapping[str, Any]) -> str:
    return _joined(entry[name] for name in CANONICAL_FIELDS)


def entry_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    return _hash(prev_hash, canonical(entry))


@dataclass(frozen=True)
class Head:
    """Where an account's chain stands: postings so far, balance, last hash."""

    index: int = 0
    balance_mg: int = 0
    hash: str = GENESIS


class Shared:
    """What a decision's postings share (all but each one's id, book and account), with
    its part of the canonical text made once: a decision posts to three books, and
    the texts of its ids and time are most of what hashing a posting costs.
    `postings.postings_for` makes one per decision; `placed` chains each posting."""

    __slots__ = (
        "_middle",
        "_tail",
        "amount_mg",
        "behaviour_time",
        "behaviour_type",
        "claim_id",
        "decision_id",
        "methodology_id",
        "methodology_version",
        "partner",
        "region",
        "subject_kind",
    )  # fmt: skip

    def __init__(
        self,
        decision_id: UUID,
        claim_id: UUID,
        amount_mg: int,
        behaviour_type: str,
        region: str,
        partner: str,
        methodology_id: str | None,
        methodology_version: str | None,
        behaviour_time: datetime,
        subject_kind: SubjectKind = SubjectKind.PERSON,
    ) -> None:
        self.decision_id, self.claim_id, self.amount_mg = decision_id, claim_id, amount_mg
        self.behaviour_type, self.region, self.partner = behaviour_type, region, partner
        self.methodology_id, self.methodology_version = methodology_id, methodology_version
        self.behaviour_time, self.subject_kind = behaviour_time, subject_kind
        # The canonical text is posting_id|<middle>|book|account|index|amount|balance|<tail>.
        self._middle = _joined((decision_id, claim_id))
        self._tail = _joined(
            (behaviour_type, region, partner, methodology_id, methodology_version, behaviour_time)
        )

    def placed(self, head: Head, posting_id: UUID, book: Book, account: str) -> ChainedPosting:
        """This content's posting to `book:account`, placed after the account's head."""
        index, balance = head.index + 1, head.balance_mg + self.amount_mg
        text = (
            f"{posting_id}|{self._middle}|{_text(book)}|{_text(account)}|{index}"
            f"|{self.amount_mg}|{balance}|{self._tail}"
        )
        return ChainedPosting(
            posting_id, self.decision_id, self.claim_id, book, account, index, self.amount_mg,
            balance, self.behaviour_type, self.region, self.partner, self.methodology_id,
            self.methodology_version, self.behaviour_time, head.hash, _hash(head.hash, text),
            self.subject_kind,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ChainedPosting:
    """One posting in one book, placed in its account's chain: its content, chain
    index, running balance and link. Built once, by `Shared.placed`, and never changed.

    The fields are declared in the canonical order (then prev_hash and hash), so
    the hash covers exactly the documented text; `subject_kind` follows, outside it."""

    posting_id: UUID
    decision_id: UUID
    claim_id: UUID
    book: Book
    account: str
    chain_index: int
    amount_mg: int
    balance_mg: int
    behaviour_type: str
    region: str
    partner: str
    methodology_id: str | None
    methodology_version: str | None
    behaviour_time: datetime
    prev_hash: str
    hash: str
    subject_kind: SubjectKind = SubjectKind.PERSON

    @property
    def head(self) -> Head:
        """The account's head once this posting is on it."""
        return Head(self.chain_index, self.balance_mg, self.hash)

    def entry(self) -> dict[str, Any]:
        """The posting as the mapping `verify_chain` and a verifier read."""
        return {name: getattr(self, name) for name in ENTRY_FIELDS}


# The canonical fields, then the link, then the subject's kind: every field of a
# chained posting, in order (the postings table's columns).
ENTRY_FIELDS = (*CANONICAL_FIELDS, "prev_hash", "hash", "subject_kind")


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
    index, balance, prev = expected.index, expected.balance_mg, expected.hash
    for entry in entries:
        index += 1
        balance += int(entry["amount_mg"])

        def broken(problem: str, at: Mapping[str, Any] = entry) -> Break:
            return Break(book, account, str(at["posting_id"]), int(at["chain_index"]), problem)

        if int(entry["chain_index"]) != index:
            yield broken(f"chain index {entry['chain_index']}, expected {index}")
            index = int(entry["chain_index"])
        if int(entry["balance_mg"]) != balance:
            yield broken(f"running balance {entry['balance_mg']}, expected {balance}")
            balance = int(entry["balance_mg"])
        if entry["prev_hash"] != prev:
            yield broken("previous hash does not match the posting before it")
        if entry_hash(str(entry["prev_hash"]), entry) != entry["hash"]:
            yield broken("hash does not match the posting's content")
        prev = str(entry["hash"])
