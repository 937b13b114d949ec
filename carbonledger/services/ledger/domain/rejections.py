"""Partners' own rejections (DOMAIN §14): each dead letter that names a partner,
kept for that partner to read (`GET /v1/partners/{id}/rejections`).

Only the admin principal may read the dead-letter topic; the ledger writer records
the letters of partners' records (ingest's refusals above all) in an append-only
table keyed by the letter's id, a function of where the refused record was, so a
redelivered letter is one row. Letters naming no partner (a stage's own poison
records) stay the operator's (`carbonledger dlq`), and are never recorded here, so
the writer cannot feed on its own letters.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from carbonledger.contracts.records import DeadLetter


@dataclass(frozen=True)
class RejectionEntry:
    """One row of partner_rejections."""

    dead_letter_id: UUID
    partner: str
    stage: str
    reason: str
    message: str
    topic: str
    partition: int
    record_offset: int
    original: bytes  # the refused record's bytes, as the partner sent them
    received_at: datetime


def rejection_entry(letter: DeadLetter) -> RejectionEntry | None:
    """The row of a partner's dead letter; None for one that names no partner."""
    if not letter.partner:
        return None
    return RejectionEntry(
        dead_letter_id=letter.dead_letter_id,
        partner=letter.partner,
        stage=letter.stage,
        reason=letter.reason,
        message=letter.message,
        topic=letter.origin.topic,
        partition=letter.origin.partition,
        record_offset=letter.origin.offset,
        original=base64.b64decode(letter.payload_b64),
        received_at=letter.received_at,
    )
