"""What became of one partner event, decision by decision.

Two addresses for the same answer: `/v1/claims/{source}/{event_id}`, where the id
may hold `/` (the rest of the path is the id), and `/v1/claims?source=&id=`, which
carries any id percent-encoded in the query string (docs/subscribers.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, HTTPException, Query

from carbonledger.services.ledger.adapters import views
from carbonledger.services.ledger.entrypoints.api.deps import BooksDep
from carbonledger.services.ledger.entrypoints.api.schemas import (
    Amount,
    ClaimExplanation,
    ClaimPosting,
    DecisionView,
    EventKey,
)

router = APIRouter(prefix="/v1/claims", tags=["claims"])


def _status(decisions: list[DecisionView], credited: int) -> str:
    last = decisions[-1]
    if credited:
        return "credited"
    if last.kind == "reverse":
        return "reversed"
    return last.kind


@router.get("/{source}/{event_id:path}", response_model=ClaimExplanation)
def explain_claim(source: str, event_id: str, books: BooksDep) -> ClaimExplanation:
    """What became of one partner event: each decision with the full claim behind it
    (methodology version, inputs, every factor with its source) and the postings it made.
    An id with `/` is the rest of the path (`/v1/claims/navi-maps/trip/42`)."""
    with books.reading() as conn:
        return _explanation(conn, source, event_id)


@router.get("", response_model=ClaimExplanation)
def explain_claim_by_query(
    books: BooksDep,
    source: Annotated[str, Query(min_length=1, description="the partner's source")],
    event_id: Annotated[
        str, Query(alias="id", min_length=1, description="the event id, percent-encoded")
    ],
) -> ClaimExplanation:
    """The same answer as `/v1/claims/{source}/{event_id}`, for any event id: `?`, `#`,
    `%` or a trailing `/` travel safely percent-encoded in the query string."""
    with books.reading() as conn:
        return _explanation(conn, source, event_id)


def _explanation(conn: psycopg.Connection, source: str, event_id: str) -> ClaimExplanation:
    rows = views.decisions_of(conn, source, event_id)
    if not rows:
        raise HTTPException(
            404,
            "no decision recorded for this event (not received, or rejected:"
            " see the dead-letter topic)",
        )
    made = views.postings_of_decisions(conn, [r["decision_id"] for r in rows])
    decisions = [_decision_view(r, made[r["decision_id"]]) for r in rows]
    credited = sum(int(r["amount_mg"]) for r in rows)
    last = decisions[-1]
    return ClaimExplanation(
        source=source,
        id=event_id,
        status=_status(decisions, credited),
        credited=Amount.of(credited),
        duplicate_of=last.winner if last.kind == "duplicate" else None,
        duplicates=[
            EventKey(source=d["event_source"], id=d["event_id"])
            for d in views.duplicates_of(conn, source, event_id)
        ],
        reason=last.reason,
        decisions=decisions,
    )


def _decision_view(row: Mapping[str, Any], postings: list[Mapping[str, Any]]) -> DecisionView:
    fields = {
        k: v for k, v in row.items() if k not in ("amount_mg", "winner_source", "winner_event_id")
    }
    winner = (
        EventKey(source=row["winner_source"], id=row["winner_event_id"])
        if row["winner_source"]
        else None
    )
    return DecisionView(
        amount=Amount.of(int(row["amount_mg"])),
        winner=winner,
        postings=[ClaimPosting(amount=Amount.of(int(p["amount_mg"])), **p) for p in postings],
        **fields,
    )
