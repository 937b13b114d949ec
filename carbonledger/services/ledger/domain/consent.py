"""The consent history (DOMAIN §12): what a partner reported of a subject's consent,
and which consent is in force now.

Each `consent.granted` / `consent.withdrawn` account event becomes one entry of the
subject's append-only history. What is in force depends only on the times the user
gave or withdrew consent (`given_at`, the event's time), never on the order the
records arrived in: per partner, the last entry at or before now decides, and at
one instant a withdrawal wins (consent holds for granted <= t < withdrawn).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from carbonledger.contracts.accounts import ConsentOrder, consent_order
from carbonledger.contracts.catalogue import (
    CONSENT_GRANTED,
    CONSENT_WITHDRAWN,
    Reason,
    Rejection,
)
from carbonledger.contracts.records import AccountEvent

GRANTED, WITHDRAWN = "granted", "withdrawn"
_TYPES = {CONSENT_GRANTED: GRANTED, CONSENT_WITHDRAWN: WITHDRAWN}


@dataclass(frozen=True)
class ConsentEntry:
    """One row of the consent history (table consent_events)."""

    account_event_id: UUID
    subject: str
    subject_kind: str
    partner: str
    type: str  # granted or withdrawn
    scope: str
    evidence_id: str
    given_at: datetime
    region: str
    event_source: str
    event_id: str
    received_at: datetime | None


def consent_entry(event: AccountEvent) -> ConsentEntry:
    """The history entry of a consent event; a record without its scope or evidence
    (which ingest requires) is refused as an invalid record, never half-stored."""
    kind = _TYPES.get(event.type)
    scope, evidence = event.data.get("scope"), event.data.get("evidence_id")
    if kind is None or not isinstance(scope, str) or not isinstance(evidence, str):
        raise Rejection(
            Reason.INVALID_RECORD,
            f"account event {event.account_event_id}: not a consent with scope and evidence_id",
        )
    return ConsentEntry(
        account_event_id=event.account_event_id,
        subject=event.subject,
        subject_kind=event.subject_kind.value,
        partner=event.partner,
        type=kind,
        scope=scope,
        evidence_id=evidence,
        given_at=event.time,
        region=event.region,
        event_source=event.event.source,
        event_id=event.event.id,
        received_at=event.received_at,
    )


@dataclass(frozen=True)
class ConsentStep:
    """What the in-force rule needs of an entry."""

    partner: str
    type: str
    given_at: datetime
    evidence_id: str


@dataclass(frozen=True)
class Standing:
    """A partner's consent as it stands: granted or withdrawn since `since` (the first
    entry of the current run: a renewed grant does not move it)."""

    partner: str
    state: str
    since: datetime
    evidence_id: str


def _order(step: ConsentStep) -> ConsentOrder:
    return consent_order(step.given_at, step.type == WITHDRAWN, step.evidence_id)


def in_force(history: Iterable[ConsentStep], now: datetime) -> dict[str, Standing]:
    """Per partner, the consent in force at `now` (entries given after it do not
    count yet), whatever order the entries were recorded in."""
    standing: dict[str, Standing] = {}
    for step in sorted((s for s in history if s.given_at <= now), key=_order):
        current = standing.get(step.partner)
        if current is None or current.state != step.type:
            standing[step.partner] = Standing(
                step.partner, step.type, step.given_at, step.evidence_id
            )
    return dict(sorted(standing.items()))
