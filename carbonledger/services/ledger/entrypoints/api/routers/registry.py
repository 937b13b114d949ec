"""The carbon asset registry's reads: public (no token) for issuances, a serial's
lineage, retirements, accounts and uncovered shortfalls; a contributor's proceeds
for that person's (or unit's) own token (docs/registry.md). Writing is the
`carbonledger registry` commands'."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException

from carbonledger.contracts.roles import Reading
from carbonledger.services.ledger.adapters import registry_views
from carbonledger.services.ledger.domain.registry.serials import Serial
from carbonledger.services.ledger.entrypoints.api.auth import PUBLIC, reads
from carbonledger.services.ledger.entrypoints.api.deps import BooksDep, Regions

# Public reads (DOMAIN §14): issuances, serials, retirements and registry accounts
# need no token; a contributor's proceeds are that person's (or unit's) own.
router = APIRouter(prefix="/v1/registry", tags=["registry"])


@router.get("/issuances", dependencies=[PUBLIC])
def issuances(books: BooksDep) -> list[dict[str, Any]]:
    """Every issuance, oldest first: region, methodology, period, vintage, serial block,
    the verifier's sign-off and the arithmetic (net, carried in and out, adjustments;
    `shortfall_mg` is what the issuance left uncovered)."""
    with books.reading() as conn:
        return registry_views.issuance_rows(conn)


@router.get("/issuances/{issuance_id}", dependencies=[PUBLIC])
def issuance(issuance_id: uuid.UUID, books: BooksDep) -> dict[str, Any]:
    """One issuance, with its adjustments of earlier vintages and its contributors' total."""
    with books.reading() as conn:
        found = registry_views.issuance_detail(conn, issuance_id)
    if found is None:
        raise HTTPException(404, "no such issuance")
    return found


@router.get("/serials/{serial}", dependencies=[PUBLIC])
def serial_lineage(serial: str, books: BooksDep) -> dict[str, Any]:
    """A serial's (a block's or one unit's) full lineage: issuance, every transaction
    that moved any of its units, and where they are now."""
    try:
        parsed = Serial.parse(serial)
    except ValueError as why:
        raise HTTPException(422, str(why)) from None
    with books.reading() as conn:
        found = registry_views.lineage(conn, parsed)
    if found is None:
        raise HTTPException(404, "no unit of this serial was ever issued")
    return found


@router.get("/retirements", dependencies=[PUBLIC])
def retirements(books: BooksDep, account: str | None = None) -> list[dict[str, Any]]:
    """Every retirement (or one account's): beneficiary, purpose, emissions period, serials."""
    with books.reading() as conn:
        return registry_views.retirements(conn, account)


@router.get("/accounts/{account}", dependencies=[PUBLIC])
def account_balance(account: str, books: BooksDep) -> dict[str, Any]:
    """A registry account: units held and retired, as serial blocks."""
    with books.reading() as conn:
        found = registry_views.balance(conn, account)
    if found is None:
        raise HTTPException(404, "no such registry account")
    return found


@router.get(
    "/proceeds/{account}",
    dependencies=[reads(Reading.PROCEEDS, "account")],
)
def proceeds(account: str, books: BooksDep) -> dict[str, Any]:
    """A contributor's postings in the proceeds book (fen, CNY): their shares of sales."""
    with books.reading() as conn:
        return registry_views.proceeds_of(conn, account)


@router.get("/shortfalls", dependencies=[PUBLIC])
def shortfalls(books: BooksDep, regions: Regions) -> list[dict[str, Any]]:
    """Series (region, methodology) whose issued vintages' nets fell below what was
    issued and the shortfall is not yet covered by a later issuance."""
    with books.reading() as conn:
        return registry_views.series_shortfalls(conn, regions)
