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

from carbonledger.contracts import ids
from carbonledger.contracts.records import Decision, DecisionKind, LedgerPosting
from carbonledger.contracts.regions import RegionTable
from carbonledger.services.ledger.domain.aggregates import Key, period_deltas
from carbonledger.services.ledger.domain.chain import ChainedPosting, Head, Shared
from carbonledger.services.ledger.domain.postings import accounts, moves_books
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
    """Each decision's postings (personal, enterprise, government), in decision order,
    chained after the given heads (an account missing from them starts at genesis)."""
    moved = dict(heads)
    postings, outbox = [], []
    for decision in decisions:
        if not moves_books(decision):
            continue
        shared = _shared(decision)
        for book, account in accounts(decision).items():
            key = (book.value, account)
            posting_id = ids.posting_id(decision.decision_id, book.value)
            posting = shared.placed(moved.get(key, _GENESIS), posting_id, book, account)
            moved[key] = posting.head
            postings.append(posting)
            outbox.append(_outbox_row(decision, posting))
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


def _shared(decision: Decision) -> Shared:
    """What the decision's postings share: the content `postings_for` gives each of
    them, taken from the decision as it is (its claim, decoded and validated, already
    holds every bound a posting's would check), the methodology named by id and
    version as the chain names it."""
    claim = decision.claim
    methodology = claim.methodology
    return Shared(
        decision_id=decision.decision_id,
        claim_id=claim.claim_id,
        amount_mg=decision.amount_mg,
        behaviour_type=claim.type,
        region=claim.region,
        partner=claim.event.source,
        methodology_id=methodology.id if methodology else None,
        methodology_version=methodology.version if methodology else None,
        behaviour_time=claim.ended_at,
        subject_kind=claim.subject_kind,
    )


def _outbox_row(decision: Decision, p: ChainedPosting) -> OutboxRow:
    claim = decision.claim
    published = LedgerPosting(
        posting_id=p.posting_id,
        decision_id=decision.decision_id,
        decision_kind=decision.kind,
        claim_id=claim.claim_id,
        event=claim.event,
        book=p.book,
        account=p.account,
        chain_index=p.chain_index,
        amount_mg=p.amount_mg,
        balance_mg=p.balance_mg,
        behaviour_type=p.behaviour_type,
        region=p.region,
        partner=p.partner,
        methodology=claim.methodology,
        behaviour_time=p.behaviour_time,
        prev_hash=p.prev_hash,
        hash=p.hash,
        subject_kind=p.subject_kind,
    )
    return OutboxRow(p.posting_id, f"{p.book.value}:{p.account}", published.to_bytes())
