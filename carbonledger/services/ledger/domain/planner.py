"""Planning a batch: what applying fresh decisions does to the books, as values.

Given the decisions not applied before and the heads of the accounts they touch,
`plan` says every posting (placed in its account's chain), where each account's
head ends, how the period totals move and what goes to the outbox. It reads and
writes nothing: the adapter locks the heads, calls it and copies its rows, so the
same batch over the same heads always plans the same postings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

from pydantic import BaseModel
from pydantic_core import to_json

from carbonledger.contracts.records import Decision, DecisionKind, LedgerPosting
from carbonledger.contracts.regions import RegionTable
from carbonledger.services.ledger.domain.aggregates import Key, period_deltas
from carbonledger.services.ledger.domain.chain import ChainedPosting, Head
from carbonledger.services.ledger.domain.postings import accounts, moves_books, postings_for
from carbonledger.services.ledger.domain.statistics import (
    Bucket,
    FigureKey,
    PeriodKey,
    statistics_deltas,
)

Account = tuple[str, str]  # (book, account)
_GENESIS = Head()  # an account's head before its first posting


@dataclass(frozen=True)
class OutboxRow:
    """A posting as the publisher sends it: keyed by `book:account`."""

    posting_id: UUID
    key: str
    payload: bytes


@dataclass(frozen=True)
class Plan:
    postings: tuple[ChainedPosting, ...]
    heads: Mapping[Account, Head]  # the accounts the batch moves, where each ends
    period_deltas: Mapping[Key, tuple[int, int]]  # amount and count per period key
    outbox: tuple[OutboxRow, ...]
    # The government statistics (domain/statistics.py): amount and actions per figure;
    # per subject's period row, net actions per bucket (the adapter reads the rows as
    # they are and moves them by these with `statistics.participation`).
    figures: Mapping[FigureKey, tuple[int, int]]
    participants: Mapping[PeriodKey, Mapping[Bucket, int]]


def accounts_moved(decisions: Iterable[Decision]) -> list[Account]:
    """The accounts these decisions post to, in the one order every writer locks them."""
    moving = (d for d in decisions if moves_books(d))
    return sorted({(book.value, account) for d in moving for book, account in accounts(d).items()})


def reversal_refused(
    fresh: Sequence[Decision], credits: Mapping[UUID, int], reversed_before: set[UUID]
) -> tuple[Decision, str] | None:
    """The first fresh reversal the books must not take, and why: one of a credit they
    do not hold, of a credit already reversed, or of more than it credited.

    `credits` are the amounts of the credits the reversals name, as the books held
    them before this batch; `reversed_before`, those of them already reversed. The
    batch's own credits and reversals count in decision order."""
    credited, reversed_ = dict(credits), set(reversed_before)
    for d in fresh:
        if d.kind is DecisionKind.CREDIT:
            credited[d.decision_id] = d.amount_mg
        if d.kind is not DecisionKind.REVERSE:
            continue
        target = d.reverses
        if target is None or target not in credited:
            return d, f"reverses {target}, a credit the books do not hold"
        if target in reversed_:
            return d, f"reverses {target}, which is already reversed"
        if -d.amount_mg > credited[target]:
            return d, f"reverses {-d.amount_mg} mg of {target}, which credited {credited[target]}"
        reversed_.add(target)
    return None


def plan(
    decisions: Sequence[Decision], heads: Mapping[Account, Head], regions: RegionTable
) -> Plan:
    """Each decision's postings (`postings_for`: personal, enterprise, government), in
    decision order, chained after the given heads (an account missing from them starts
    at genesis)."""
    moved = dict(heads)
    postings, outbox = [], []
    for decision in decisions:
        made = postings_for(decision)
        if not made:
            continue
        publish = Published(decision)  # what the decision's payloads share, made once
        for posting_id, book, account, content in made:
            key = (book.value, account)
            posting = content.placed(moved.get(key, _GENESIS), posting_id, book, account)
            moved[key] = posting.head
            postings.append(posting)
            outbox.append(publish.row(posting))
    touched = {(str(p.book), p.account) for p in postings}
    figures, participants = statistics_deltas(decisions, regions)
    return Plan(
        figures=figures,
        participants=participants,
        postings=tuple(postings),
        heads={a: h for a, h in moved.items() if a in touched},
        period_deltas=period_deltas(postings, regions),
        outbox=tuple(outbox),
    )


class Published:
    """A decision's postings as published (`LedgerPosting` JSON), the same bytes as the
    model's `to_bytes` without validating and serializing a model per posting: what
    the postings share is serialized once per decision, each value by pydantic's own
    serializer, and the fields are in the model's order (tests/unit/test_ledger_planner.py
    compares them with the model's bytes)."""

    __slots__ = ("_claim_part", "_content_part", "_decision", "_tail")

    def __init__(self, decision: Decision) -> None:
        claim = decision.claim
        methodology = claim.methodology
        self._decision = (
            f',"decision_id":"{decision.decision_id}","decision_kind":"{decision.kind.value}"'
            f',"claim_id":"{claim.claim_id}","event":{_json(claim.event)},"book":"'
        )
        self._content_part = f',"amount_mg":{decision.amount_mg},"balance_mg":'
        self._claim_part = (
            f',"behaviour_type":{_json(claim.type)},"region":{_json(claim.region)}'
            f',"partner":{_json(claim.event.source)}'
            f',"methodology":{_json(methodology)},"behaviour_time":{_json(claim.ended_at)}'
            ',"prev_hash":'
        )
        self._tail = f',"subject_kind":"{claim.subject_kind.value}"}}'

    def row(self, p: ChainedPosting) -> OutboxRow:
        payload = (
            f'{{"schema":"{_SCHEMA}","posting_id":"{p.posting_id}"{self._decision}'
            f'{p.book.value}","account":{_json(p.account)},"chain_index":{p.chain_index}'
            f"{self._content_part}{p.balance_mg}{self._claim_part}{_json(p.prev_hash)}"
            f',"hash":{_json(p.hash)}{self._tail}'
        )
        return OutboxRow(p.posting_id, f"{p.book.value}:{p.account}", payload.encode())


_SCHEMA = LedgerPosting.model_fields["schema_"].default


def _json(value: object) -> str:
    """A value as pydantic serializes it in a record (strings escaped as the model's
    serializer escapes them, times in its format, a nested record as its JSON)."""
    if isinstance(value, BaseModel):
        return value.__pydantic_serializer__.to_json(value).decode()
    return to_json(value).decode()
