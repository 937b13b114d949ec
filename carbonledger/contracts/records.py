"""Internal records passed between stages. Each is versioned by its `schema`, and
each carries a deterministic id derived from its inputs (see ids.py)."""

from __future__ import annotations

import base64
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from carbonledger.contracts import ids
from carbonledger.contracts.exact import ExactDecimal


class Record(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class Origin(Record):
    """Where a record was consumed: enough to find the original bytes again."""

    topic: str
    partition: int
    offset: int


class EventRef(Record):
    source: str
    id: str


class ValidatedBehaviour(Record):
    """A partner event that passed ingest: authenticated, validated, normalised."""

    schema_: Literal["carbonledger.behaviour/1"] = Field("carbonledger.behaviour/1", alias="schema")
    event_id: UUID
    event: EventRef
    type: str
    activity_class: str
    subject: str
    time: AwareDatetime
    region: str
    started_at: AwareDatetime
    ended_at: AwareDatetime
    natural_key: str | None
    evidence_rank: int = 0
    data: dict[str, Any]
    origin: Origin
    received_at: AwareDatetime


class MethodologyRef(Record):
    id: str
    version: str


class FactorUse(Record):
    """One factor as used in a calculation, with where it comes from."""

    name: str
    value: ExactDecimal
    unit: str
    source: str
    confidence: str


class CapUse(Record):
    """A per-person cap of the claim's methodology, applied by dedupe to unique activities.

    `key` names the cap across versions of its methodology ("<methodology id>#<n>"), so a
    new version does not reset a person's day or month.
    """

    key: str
    period: Literal["day", "month"]
    max_mg: int | None = None
    max_events: int | None = None


class Supersedes(Record):
    """What a recomputed claim replaces: the earlier claim of the same event, and what
    the books held for that event when the recomputation read them."""

    claim_id: UUID
    previous_mg: int  # the superseded claim's reduction
    standing_credit: UUID | None = None  # the credit decision in force, if any
    standing_mg: int = 0  # what that credit holds in each book


class ReductionClaim(Record):
    """The quantified reduction of one event, with full provenance.

    A claim that is not credited (no applicable methodology, say) still flows on,
    so that every event's outcome is recorded and explainable.
    """

    schema_: Literal["carbonledger.claim/1"] = Field("carbonledger.claim/1", alias="schema")
    claim_id: UUID
    event_id: UUID
    event: EventRef
    type: str
    activity_class: str
    subject: str
    time: AwareDatetime
    region: str
    started_at: AwareDatetime
    ended_at: AwareDatetime
    natural_key: str | None
    evidence_rank: int = 0
    data: dict[str, Any] = {}
    credited: bool
    reduction_mg: int
    reason: str | None = None
    reason_detail: str | None = None
    methodology: MethodologyRef | None = None
    formula: str | None = None
    inputs: dict[str, str] = {}
    factors: tuple[FactorUse, ...] = ()
    baseline_mg: int | None = None
    project_mg: int | None = None
    caps: tuple[CapUse, ...] = ()
    supersedes: Supersedes | None = None  # set on claims made by `carbonledger recompute`
    # When ingest admitted the event (or recompute re-quantified it): the start of the
    # pipeline's own latency, measured by the ledger at posting.
    received_at: AwareDatetime | None = None


class DecisionKind(StrEnum):
    CREDIT = "credit"
    REVERSE = "reverse"
    DUPLICATE = "duplicate"
    NOT_CREDITED = "not_credited"


class Decision(Record):
    """What dedupe decided about a claim. Only credit and reverse move the books.

    A credit carries the amount credited (after caps); a reverse carries the negative
    of the credit it cancels (`reverses`), so a ledger just adds amounts. `sequence`
    numbers the decisions about one claim in the order dedupe made them.
    """

    schema_: Literal["carbonledger.decision/1"] = Field("carbonledger.decision/1", alias="schema")
    decision_id: UUID
    kind: DecisionKind
    amount_mg: int
    claim: ReductionClaim
    winner_claim_id: UUID | None = None
    winner: EventRef | None = None
    reverses: UUID | None = None
    reason: str | None = None
    reason_detail: str | None = None
    sequence: int = 0


class Book(StrEnum):
    PERSONAL = "personal"
    ENTERPRISE = "enterprise"
    GOVERNMENT = "government"


class Posting(Record):
    """One entry in one book; reversals are opposite postings, never edits."""

    schema_: Literal["carbonledger.posting/1"] = Field("carbonledger.posting/1", alias="schema")
    posting_id: UUID
    decision_id: UUID
    claim_id: UUID
    book: Book
    account: str
    amount_mg: int
    behaviour_type: str
    region: str
    partner: str
    methodology: MethodologyRef | None
    behaviour_time: AwareDatetime


class LedgerPosting(Record):
    """A posting as published on `ledger.postings` for incentive systems (keyed by
    `book:account`): the entry, the running balance after it, and its chain link.

    Delivery is at least once; a subscriber is idempotent by `posting_id`. Within
    an account, `chain_index` counts 1, 2, 3, ... so a gap or repeat is visible.
    """

    schema_: Literal["carbonledger.ledger_posting/1"] = Field(
        "carbonledger.ledger_posting/1", alias="schema"
    )
    posting_id: UUID
    decision_id: UUID
    decision_kind: DecisionKind
    claim_id: UUID
    event: EventRef
    book: Book
    account: str
    chain_index: int
    amount_mg: int
    balance_mg: int
    behaviour_type: str
    region: str
    partner: str
    methodology: MethodologyRef | None
    behaviour_time: AwareDatetime
    prev_hash: str
    hash: str


class DeadLetter(Record):
    """A record no stage could accept: the original bytes and why (nothing is lost)."""

    schema_: Literal["carbonledger.dead_letter/1"] = Field(
        "carbonledger.dead_letter/1", alias="schema"
    )
    dead_letter_id: UUID
    stage: str
    reason: str
    message: str
    partner: str | None
    origin: Origin
    key_b64: str | None
    payload_b64: str
    received_at: datetime

    @classmethod
    def of(
        cls,
        *,
        stage: str,
        reason: str,
        message: str,
        partner: str | None,
        origin: Origin,
        key: bytes | None,
        payload: bytes,
        received_at: datetime,
    ) -> DeadLetter:
        """The dead letter of the record at `origin`; its id is a function of where
        the record was, so a replayed stage dead-letters it under the same id."""
        return cls(
            dead_letter_id=ids.dead_letter_id(origin.topic, origin.partition, origin.offset),
            stage=stage,
            reason=reason,
            message=message,
            partner=partner,
            origin=origin,
            key_b64=base64.b64encode(key).decode() if key is not None else None,
            payload_b64=base64.b64encode(payload).decode(),
            received_at=received_at,
        )
