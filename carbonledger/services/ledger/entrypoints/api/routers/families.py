"""Family accounts (1+N): a view of the personal book, never part of any book total."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from carbonledger.contracts.envelope import SUBJECT_PATTERN
from carbonledger.contracts.roles import Reading
from carbonledger.services.ledger.adapters import views
from carbonledger.services.ledger.domain.family import MemberTotal
from carbonledger.services.ledger.entrypoints.api.auth import reads
from carbonledger.services.ledger.entrypoints.api.deps import BooksDep
from carbonledger.services.ledger.entrypoints.api.schemas import (
    Amount,
    FamilyLedger,
    FamilyMember,
    LinkInterval,
    RefusedLink,
)

router = APIRouter(prefix="/v1/ledgers", tags=["ledgers"])


@router.get(
    "/family/{head}", response_model=FamilyLedger, dependencies=[reads(Reading.FAMILY, "head")]
)
def family_ledger(head: str, books: BooksDep) -> FamilyLedger:
    """Family account (88碳账户's 1+N): the head, each member's link intervals (in
    force from both sides' reports until either unlinks), links refused because the
    member was in another family, and what each member reduced while linked (by
    behaviour time). 404 for what is not a subject id or a head never reported."""
    if not SUBJECT_PATTERN.match(head):
        raise HTTPException(404, "not a subject id (64 lowercase hex characters)")
    with books.reading() as conn:
        family = views.family_view(conn, head)
    if family is None:
        raise HTTPException(404, "no family reported for this head")
    return FamilyLedger(
        head=head,
        head_own=Amount.of(family.head_own_mg),
        members=[_member(part) for part in family.members],
        total=Amount.of(family.total_mg),
    )


def _member(part: MemberTotal) -> FamilyMember:
    m = part.membership
    return FamilyMember(
        member=m.member,
        in_force=m.in_force,
        intervals=[LinkInterval(linked_from=i.start, linked_to=i.end) for i in m.intervals],
        net=Amount.of(part.net_mg),
        postings=part.postings,
        refused=[RefusedLink(at=r.at, reason=r.reason) for r in m.refused],
        awaiting=m.awaiting,
    )
