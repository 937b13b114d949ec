"""The three books: a person's, a partner's and a region's ledger, and the totals."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from fastapi import APIRouter, HTTPException

from carbonledger.contracts.envelope import SUBJECT_PATTERN
from carbonledger.contracts.regions import NATIONAL, RegionTable
from carbonledger.contracts.roles import Reading
from carbonledger.services.ledger.adapters import views
from carbonledger.services.ledger.entrypoints.api.auth import reads
from carbonledger.services.ledger.entrypoints.api.deps import Before, BooksDep, Limit, Regions
from carbonledger.services.ledger.entrypoints.api.schemas import (
    Amount,
    BookTotals,
    EnterpriseLedger,
    GovernmentLedger,
    PersonalLedger,
    PostingView,
    RegionTotal,
    UnitLedger,
    month,
    sum_by,
)

router = APIRouter(prefix="/v1/ledgers", tags=["ledgers"])


@router.get(
    "/personal/{subject}",
    response_model=PersonalLedger,
    dependencies=[reads(Reading.PERSONAL, "subject")],
)
def personal_ledger(
    subject: str, books: BooksDep, limit: Limit = 50, before: Before = None
) -> PersonalLedger:
    """A person's (or a unit's: `subject_kind`) balance, totals by behaviour type and
    month, and recent postings (newest first), each with its claim, methodology
    version and partner."""
    if not SUBJECT_PATTERN.match(subject):
        raise HTTPException(422, "subject must be 64 lowercase hex characters")
    with books.reading() as conn:
        _, shown = _account(
            conn, "personal", subject, limit, before, "no postings for this subject"
        )
        kind = views.subject_kind(conn, subject) or "person"
    return PersonalLedger(subject=subject, subject_kind=kind, **shown)


@router.get(
    "/unit/{subject}", response_model=UnitLedger, dependencies=[reads(Reading.UNIT, "subject")]
)
def unit_ledger(
    subject: str, books: BooksDep, limit: Limit = 50, before: Before = None
) -> UnitLedger:
    """A unit's (an organisation's) account: balance, totals by behaviour type and
    month, recent postings. 404 for a subject whose account is a person's (their
    route is /v1/ledgers/personal) or that has no postings."""
    if not SUBJECT_PATTERN.match(subject):
        raise HTTPException(422, "subject must be 64 lowercase hex characters")
    with books.reading() as conn:
        if views.subject_kind(conn, subject) != "unit":
            raise HTTPException(404, "no unit account for this subject")
        _, shown = _account(conn, "personal", subject, limit, before, "no postings for this unit")
    return UnitLedger(subject=subject, **shown)


def _account(
    conn: psycopg.Connection,
    book: str,
    account: str,
    limit: int,
    before: int | None,
    missing: str,
) -> tuple[list[Mapping[str, Any]], dict[str, Any]]:
    """An account's period rows, and what the personal and the enterprise ledger both
    show of it: balance, totals by behaviour type and month, a page of postings.
    404 (saying `missing`) when the account has no postings."""
    found = views.balance(conn, book, account)
    if found is None:
        raise HTTPException(404, missing)
    periods = views.period_rows(conn, book, account)
    recent, next_before = _page(conn, book, account, limit, before)
    return periods, {
        "balance": Amount.of(found[0]),
        "postings": found[1],
        "by_behaviour_type": sum_by(periods, "behaviour_type"),
        "by_month": sum_by(periods, "period_start", month),
        "recent_postings": recent,
        "next_before": next_before,
    }


def _page(
    conn: psycopg.Connection, book: str, account: str, limit: int, before: int | None
) -> tuple[list[PostingView], int | None]:
    rows = views.recent_postings(conn, book, account, limit, before)
    page = [PostingView(amount=Amount.of(int(r["amount_mg"])), **r) for r in rows]
    return page, page[-1].seq if len(page) == limit else None


@router.get(
    "/enterprise/{partner}",
    response_model=EnterpriseLedger,
    dependencies=[reads(Reading.ENTERPRISE, "partner")],
)
def enterprise_ledger(
    partner: str, books: BooksDep, regions: Regions, limit: Limit = 50, before: Before = None
) -> EnterpriseLedger:
    """The reductions a partner drove (its claims that won dedupe), by behaviour type,
    region, province and month, and its recent postings (newest first)."""
    with books.reading() as conn:
        periods, shown = _account(
            conn, "enterprise", partner, limit, before, "no postings for this partner"
        )
    return EnterpriseLedger(
        partner=partner,
        by_region=sum_by(periods, "region"),
        by_province=sum_by(periods, "region", lambda r: _province(regions, r)),
        **shown,
    )


def _province(regions: RegionTable, code: str) -> str:
    return regions.province_of(code).code if code in regions else code


@router.get(
    "/government/{region}",
    response_model=GovernmentLedger,
    dependencies=[reads(Reading.GOVERNMENT, "region")],
)
def government_ledger(region: str, books: BooksDep, regions: Regions) -> GovernmentLedger:
    """A region's roll-up (a province sums all its cities and districts; 000000 is
    national), by behaviour type and month, with its direct child regions."""
    if region != NATIONAL and region not in regions:
        raise HTTPException(404, "not a GB/T 2260 code in the shipped table")
    if region == NATIONAL:
        name, level, parent, children = (
            "中华人民共和国",
            "national",
            None,
            regions.children(NATIONAL),
        )
    else:
        unit = regions.get(region)
        assert unit is not None
        name, level, parent, children = unit.name, unit.level, unit.parent, regions.children(region)
    with books.reading() as conn:
        periods = views.period_rows(conn, "government", region)
        child_totals = views.account_totals(conn, "government", [c.code for c in children])
    return GovernmentLedger(
        region=region,
        name=name,
        level=str(level),
        parent=parent,
        total=Amount.of(sum(int(r["amount_mg"]) for r in periods)),
        postings=sum(int(r["postings"]) for r in periods),
        by_behaviour_type=sum_by(periods, "behaviour_type"),
        by_month=sum_by(periods, "period_start", month),
        children=[
            RegionTotal(code=c.code, name=c.name, level=str(c.level), total=Amount.of(t))
            for c in children
            if (t := child_totals.get(c.code)) is not None
        ],
    )


@router.get("/totals", response_model=BookTotals, dependencies=[reads(Reading.TOTALS, "totals")])
def totals(books: BooksDep) -> BookTotals:
    """The three books' totals (they must always be equal), with the personal book
    split into people's and units' accounts (people + units = personal)."""
    with books.reading() as conn:
        t, kinds = views.totals_by_kind(conn)
    return BookTotals(
        personal=Amount.of(t["personal"]),
        people=Amount.of(kinds["person"]),
        units=Amount.of(kinds["unit"]),
        enterprise=Amount.of(t["enterprise"]),
        government=Amount.of(t["government"]),
        balanced=t["personal"] == t["enterprise"] == t["government"],
    )
