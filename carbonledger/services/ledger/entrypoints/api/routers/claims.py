"""What became of one partner event, decision by decision.

Two addresses for the same answer: `/v1/claims/{source}/{event_id}`, where the id
may hold `/` (the rest of the path is the id), and `/v1/claims?source=&id=`, which
carries any id percent-encoded in the query string (docs/subscribers.md).

A partner reads what became of its own events (the source is its id), a person or a
unit what became of events about them: their scope is known once the decisions are
read, and an event that is not theirs and one never recorded are the same 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, HTTPException, Query

from carbonledger.contracts.regions import RegionTable
from carbonledger.contracts.roles import Principal, Reading, Role
from carbonledger.runtime.bearer import Caller
from carbonledger.services.ledger.adapters import views
from carbonledger.services.ledger.entrypoints.api.auth import require
from carbonledger.services.ledger.entrypoints.api.deps import BooksDep, Regions
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
def explain_claim(
    source: str, event_id: str, books: BooksDep, caller: Caller, regions: Regions
) -> ClaimExplanation:
    """What became of one partner event: each decision with the full claim behind it
    (methodology version, inputs, every factor with its source) and the postings it made.
    An id with `/` is the rest of the path (`/v1/claims/navi-maps/trip/42`)."""
    scope = _Scope(caller, regions)
    scope.before_reading(source)
    with books.reading() as conn:
        return _explanation(conn, source, event_id, scope)


@router.get("", response_model=ClaimExplanation)
def explain_claim_by_query(
    books: BooksDep,
    caller: Caller,
    regions: Regions,
    source: Annotated[str, Query(min_length=1, description="the partner's source")],
    event_id: Annotated[
        str, Query(alias="id", min_length=1, description="the event id, percent-encoded")
    ],
) -> ClaimExplanation:
    """The same answer as `/v1/claims/{source}/{event_id}`, for any event id: `?`, `#`,
    `%` or a trailing `/` travel safely percent-encoded in the query string."""
    scope = _Scope(caller, regions)
    scope.before_reading(source)
    with books.reading() as conn:
        return _explanation(conn, source, event_id, scope)


class _Scope:
    """Whose claims the caller reads: by the event's source (partners, auditors,
    operators, checked before reading) or by the claim's subject (people, units)."""

    def __init__(self, caller: Principal, regions: RegionTable) -> None:
        self.caller, self.regions = caller, regions
        self.by_subject = caller.role in (Role.PERSON, Role.UNIT)

    def before_reading(self, source: str) -> None:
        if not self.by_subject:
            require(self.caller, Reading.CLAIM, source, self.regions)

    def once_read(self, rows: list[Mapping[str, Any]]) -> None:
        if self.by_subject:
            subject = str(rows[0]["claim"]["subject"]) if rows else ""
            require(self.caller, Reading.CLAIM, subject, self.regions)


def _explanation(
    conn: psycopg.Connection, source: str, event_id: str, scope: _Scope
) -> ClaimExplanation:
    rows = views.decisions_of(conn, source, event_id)
    scope.once_read(rows)
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
