"""Family accounts (1+N): a view of the personal book, never part of any book total."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, HTTPException

from carbonledger.contracts.envelope import SUBJECT_PATTERN
from carbonledger.services.ledger.adapters import views
from carbonledger.services.ledger.domain.family import FamilyReport, Membership, memberships
from carbonledger.services.ledger.entrypoints.api.deps import BooksDep
from carbonledger.services.ledger.entrypoints.api.schemas import (
    Amount,
    FamilyLedger,
    FamilyMember,
    LinkInterval,
    RefusedLink,
)

router = APIRouter(prefix="/v1/ledgers", tags=["ledgers"])


def report_of(row: Mapping[str, Any]) -> FamilyReport:
    return FamilyReport(**row)


@router.get("/family/{head}", response_model=FamilyLedger)
def family_ledger(head: str, books: BooksDep) -> FamilyLedger:
    """Family account (88碳账户's 1+N): the head, each member's link intervals (in
    force from both sides' reports until either unlinks), links refused because the
    member was in another family, and what each member reduced while linked (by
    behaviour time). 404 for what is not a subject id or a head never reported."""
    if not SUBJECT_PATTERN.match(head):
        raise HTTPException(404, "not a subject id (64 lowercase hex characters)")
    with books.reading() as conn:
        reports = [report_of(r) for r in views.family_reports_of_head(conn, head)]
        if not reports:
            raise HTTPException(404, "no family reported for this head")
        found = [m for (h, _), m in sorted(memberships(reports).items()) if h == head]
        spans = [(m.member, i.start, i.end) for m in found for i in m.intervals]
        sums = iter(views.personal_within(conn, spans))
        own = views.balance(conn, "personal", head)
    members = [_member(m, [next(sums) for _ in m.intervals]) for m in found]
    head_own = own[0] if own else 0
    return FamilyLedger(
        head=head,
        head_own=Amount.of(head_own),
        members=members,
        total=Amount.of(head_own + sum(m.net.mg for m in members)),
    )


def _member(m: Membership, sums: list[tuple[int, int]]) -> FamilyMember:
    return FamilyMember(
        member=m.member,
        in_force=m.in_force,
        intervals=[LinkInterval(linked_from=i.start, linked_to=i.end) for i in m.intervals],
        net=Amount.of(sum(net for net, _ in sums)),
        postings=sum(count for _, count in sums),
        refused=[RefusedLink(at=r.at, reason=r.reason) for r in m.refused],
        awaiting=m.awaiting,
    )
