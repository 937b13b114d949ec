"""Employer accounts: a view of the personal book, never part of the enterprise book."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from carbonledger.contracts.roles import Reading
from carbonledger.services.ledger.adapters import views
from carbonledger.services.ledger.entrypoints.api.auth import reads
from carbonledger.services.ledger.entrypoints.api.deps import BooksDep
from carbonledger.services.ledger.entrypoints.api.schemas import (
    Amount,
    EmployerLedger,
    month,
    sum_by,
)

router = APIRouter(prefix="/v1/ledgers", tags=["ledgers"])


@router.get(
    "/employer/{employer}",
    response_model=EmployerLedger,
    dependencies=[reads(Reading.EMPLOYER, "employer")],
)
def employer_ledger(employer: str, books: BooksDep) -> EmployerLedger:
    """Employer account (企业员工碳账户): what linked employees reduced since linking."""
    with books.reading() as conn:
        members, rows = views.employer_rows(conn, employer)
    if not members:
        raise HTTPException(404, "no employees linked to this employer")
    return EmployerLedger(
        employer=employer,
        members=members,
        total=Amount.of(sum(int(r["amount_mg"]) for r in rows)),
        by_behaviour_type=sum_by(rows, "behaviour_type"),
        by_month=sum_by(rows, "period_start", month),
    )
