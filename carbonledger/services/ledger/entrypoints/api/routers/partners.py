"""A partner's own rejections: why its records were refused (reason, message, the
original bytes, where and when), newest first, paged by `before`."""

from __future__ import annotations

import base64
from datetime import datetime
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from carbonledger.contracts.roles import Reading
from carbonledger.services.ledger.adapters import statistics
from carbonledger.services.ledger.entrypoints.api.auth import reads
from carbonledger.services.ledger.entrypoints.api.deps import Before, BooksDep, Limit

router = APIRouter(prefix="/v1/partners", tags=["partners"])


class RejectionView(BaseModel):
    seq: int
    dead_letter_id: UUID
    stage: str = Field(description="the stage that refused it (ingest, quantify, ...)")
    reason: str
    message: str
    topic: str
    partition: int
    offset: int
    received_at: datetime
    original_b64: str = Field(description="the record's bytes as sent, base64")
    original_text: str | None = Field(description="the same bytes as UTF-8 text, if they are")


class Rejections(BaseModel):
    partner: str
    rejections: list[RejectionView]
    next_before: int | None = Field(description="the next page: ?before=this")


def _text(original: bytes) -> str | None:
    try:
        return original.decode("utf-8")
    except UnicodeDecodeError:
        return None


@router.get(
    "/{partner}/rejections",
    response_model=Rejections,
    dependencies=[reads(Reading.REJECTIONS, "partner")],
)
def partner_rejections(
    partner: str, books: BooksDep, limit: Limit = 50, before: Before = None
) -> Rejections:
    """The partner's refused records (each dead letter naming it), newest first. A
    partner nothing was refused of has an empty list."""
    with books.reading() as conn:
        rows = statistics.rejections(conn, partner, limit, before)
    shown = [
        RejectionView(
            **{k: v for k, v in r.items() if k not in ("original", "record_offset")},
            offset=int(r["record_offset"]),
            original_b64=base64.b64encode(bytes(r["original"])).decode(),
            original_text=_text(bytes(r["original"])),
        )
        for r in rows
    ]
    return Rejections(
        partner=partner,
        rejections=shown,
        next_before=shown[-1].seq if len(shown) == limit else None,
    )
