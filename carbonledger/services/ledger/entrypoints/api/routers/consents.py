"""A subject's consent history and the consent in force now, per partner."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException

from carbonledger.contracts.envelope import SUBJECT_PATTERN
from carbonledger.contracts.roles import Reading
from carbonledger.services.ledger.adapters import views
from carbonledger.services.ledger.domain.consent import ConsentStep, in_force
from carbonledger.services.ledger.entrypoints.api.auth import reads
from carbonledger.services.ledger.entrypoints.api.deps import BooksDep
from carbonledger.services.ledger.entrypoints.api.schemas import (
    ConsentHistory,
    ConsentRecord,
    ConsentStanding,
    EventKey,
)

router = APIRouter(prefix="/v1/consents", tags=["consents"])


@router.get(
    "/{subject}", response_model=ConsentHistory, dependencies=[reads(Reading.CONSENTS, "subject")]
)
def consent_history(subject: str, books: BooksDep) -> ConsentHistory:
    """Every consent record of the subject (granted, withdrawn: partner, scope,
    evidence, when given, when recorded) and the consent in force now per partner.
    A subject nothing was reported of has an empty history; 404 only for what is not
    a subject id (64 lowercase hex)."""
    if not SUBJECT_PATTERN.match(subject):
        raise HTTPException(404, "not a subject id (64 lowercase hex characters)")
    with books.reading() as conn:
        rows = views.consent_history(conn, subject)
    steps = [ConsentStep(r["partner"], r["type"], r["given_at"], r["evidence_id"]) for r in rows]
    return ConsentHistory(
        subject=subject,
        history=[
            ConsentRecord(event=EventKey(source=r["event_source"], id=r["event_id"]), **r)
            for r in rows
        ],
        in_force={
            partner: ConsentStanding(state=s.state, since=s.since, evidence_id=s.evidence_id)
            for partner, s in in_force(steps, datetime.now(UTC)).items()
        },
    )
