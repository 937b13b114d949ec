"""Decisions become postings: the same amount in the personal, enterprise and
government books (docs/domain.md), each posting with a deterministic id.

`postings_for` is the one rule for which postings a decision makes and what they
carry: the planner places them in their accounts' chains (domain/planner.py), the
batch reference adds them up (reference/settle.py).
"""

from __future__ import annotations

from typing import NamedTuple
from uuid import UUID

from carbonledger.contracts import ids
from carbonledger.contracts.records import Book, Decision, DecisionKind
from carbonledger.services.ledger.domain.chain import Shared

MOVES_BOOKS = frozenset({DecisionKind.CREDIT, DecisionKind.REVERSE})


class ToPost(NamedTuple):
    """One posting a decision makes, before its account's chain places it
    (`content.placed(head, posting_id, book, account)`): its id, book and account, and
    the content it shares with the decision's other postings (one `Shared` for all
    three, so the decision's part of the hashed text is made once). A named tuple:
    cheap to build, and the planner's loop unpacks it."""

    posting_id: UUID
    book: Book
    account: str
    content: Shared


def accounts(decision: Decision) -> dict[Book, str]:
    claim = decision.claim
    return {
        Book.PERSONAL: claim.subject,
        Book.ENTERPRISE: claim.event.source,
        Book.GOVERNMENT: claim.region,
    }


def moves_books(decision: Decision) -> bool:
    """Only credits and reversals of an amount post; duplicates and uncredited claims do not."""
    return decision.kind in MOVES_BOOKS and decision.amount_mg != 0


def postings_for(decision: Decision) -> list[ToPost]:
    """The postings a decision makes, one per book; duplicates and uncredited claims
    make none."""
    if not moves_books(decision):
        return []
    content, decision_id = _content(decision), decision.decision_id
    return [
        ToPost(ids.posting_id(decision_id, book.value), book, account, content)
        for book, account in accounts(decision).items()
    ]


def _content(decision: Decision) -> Shared:
    """What a decision's postings carry, taken from the decision as it is (its claim,
    decoded and validated, already holds every bound a posting's would check), the
    methodology named by id and version as the chain names it."""
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
