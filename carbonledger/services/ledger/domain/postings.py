"""Decisions become postings: the same amount in the personal, enterprise and
government books (docs/domain.md), each posting with a deterministic id."""

from __future__ import annotations

from carbonledger.contracts import ids
from carbonledger.contracts.records import Book, Decision, DecisionKind, Posting

MOVES_BOOKS = frozenset({DecisionKind.CREDIT, DecisionKind.REVERSE})


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


def postings_for(decision: Decision) -> list[Posting]:
    """The postings a decision makes; duplicates and uncredited claims make none."""
    if not moves_books(decision):
        return []
    claim = decision.claim
    return [
        Posting(
            posting_id=ids.posting_id(decision.decision_id, book.value),
            decision_id=decision.decision_id,
            claim_id=claim.claim_id,
            book=book,
            account=account,
            amount_mg=decision.amount_mg,
            behaviour_type=claim.type,
            region=claim.region,
            partner=claim.event.source,
            methodology=claim.methodology,
            behaviour_time=claim.ended_at,
            subject_kind=claim.subject_kind,
        )
        for book, account in accounts(decision).items()
    ]
