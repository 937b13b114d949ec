"""Internal records passed between stages. Each is versioned by its `schema`, and
each carries a deterministic id derived from its inputs (see ids.py).

Every stage decodes what it consumes with these models, so they also hold the
invariants a record must keep (defence in depth: a bug upstream or a compromised
service writing an internal topic is refused, not posted): amounts within
`MAX_AMOUNT_MG` and of the sign of their kind, every integer within 64 bits,
regions in the shipped GB/T 2260 table, times within the booked calendar (from
2000-01-01, offsets -12:00..+14:00), text without control characters and
within a length. A record that decodes but breaks one is an `invalid_record`
(`invariant_broken` tells it from an undecodable one)."""

from __future__ import annotations

import base64
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from carbonledger.contracts import ids
from carbonledger.contracts.bounds import MAX_ID_LENGTH, forbidden_character, moment_fault
from carbonledger.contracts.exact import ExactDecimal
from carbonledger.contracts.regions import load_regions

# No one record moves more than 1,000 t (10^12 mg); the largest honest claim of the
# catalogue is some kilograms. Far inside the books' bigint, so sums of them fit too.
MAX_AMOUNT_MG = 10**12
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
ID_MAX = (
    MAX_ID_LENGTH  # an event id, as the envelope allows; subjects, sources and keys are shorter
)
DETAIL_MAX = 2000  # reasons and factor sources: sentences, not ids
INVALID_RECORD = "invalid_record"  # the pydantic error type of a broken invariant


def _printable(value: str) -> str:
    # PostgreSQL refuses NUL in text; any control character in an id or a name is a
    # bug or an attack, never data (the envelope refuses them from partners).
    if forbidden_character(value) is not None:
        raise PydanticCustomError(INVALID_RECORD, "text contains a control character")
    return value


def _in_calendar(value: datetime) -> datetime:
    # Year 1 at +14:00 passes as a datetime but overflows in UTC and date arithmetic.
    fault = moment_fault(value)
    if fault is not None:
        raise PydanticCustomError(INVALID_RECORD, "time {fault}", {"fault": fault})
    return value


def _known_region(value: str) -> str:
    if value not in load_regions():
        raise PydanticCustomError(
            INVALID_RECORD, "region {region} is not in the GB/T 2260 table", {"region": value}
        )
    return value


Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
Mass = Annotated[int, Field(ge=0, le=MAX_AMOUNT_MG)]  # a claim's amounts: never negative
Amount = Annotated[int, Field(ge=-MAX_AMOUNT_MG, le=MAX_AMOUNT_MG)]  # a move of the books
Id = Annotated[str, Field(max_length=ID_MAX), AfterValidator(_printable)]
Detail = Annotated[str, Field(max_length=DETAIL_MAX), AfterValidator(_printable)]
RegionCode = Annotated[str, AfterValidator(_known_region)]
Moment = Annotated[AwareDatetime, AfterValidator(_in_calendar)]

# Pydantic's error types of a value that has the model's shape but breaks a bound or
# an invariant (as opposed to JSON that is not the record at all).
_INVARIANT_ERRORS = frozenset(
    {
        INVALID_RECORD,
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "string_too_long",
        "string_too_short",
        "string_pattern_mismatch",
    }
)


def invariant_broken(exc: ValidationError) -> bool:
    """Whether a record decoded but broke an invariant (`invalid_record`), rather than
    not being the model at all (`undecodable_record`)."""
    return all(error["type"] in _INVARIANT_ERRORS for error in exc.errors())


class SubjectKind(StrEnum):
    """Whose behaviour a record is: a person's (the default) or an organisation's
    (a unit: its subject is the HMAC of its unified social credit code)."""

    PERSON = "person"
    UNIT = "unit"


class Record(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    def to_bytes(self) -> bytes:
        """The record's JSON: `model_dump_json()` encoded, without making it a str first
        (pydantic's serializer writes the bytes, which model_dump_json decodes)."""
        return self.__pydantic_serializer__.to_json(self)


class Origin(Record):
    """Where a record was consumed: enough to find the original bytes again."""

    topic: Id
    partition: Count
    offset: Count


class EventRef(Record):
    source: Id
    id: Id


class ValidatedBehaviour(Record):
    """A partner event that passed ingest: authenticated, validated, normalised."""

    schema_: Literal["carbonledger.behaviour/1"] = Field("carbonledger.behaviour/1", alias="schema")
    event_id: UUID
    event: EventRef
    type: Id
    activity_class: Id
    subject: Id
    subject_kind: SubjectKind = SubjectKind.PERSON
    time: Moment
    region: RegionCode
    started_at: Moment
    ended_at: Moment
    natural_key: Id | None
    evidence_rank: Count = 0
    # The partner credits only with the subject's consent (stamped from the registry).
    consent_required: bool = False
    data: dict[str, Any]
    origin: Origin
    received_at: Moment


class MethodologyRef(Record):
    id: Id
    version: Id


class FactorUse(Record):
    """One factor as used in a calculation, with where it comes from."""

    name: Id
    value: ExactDecimal
    unit: Id
    source: Detail
    confidence: Id


class CapUse(Record):
    """A per-person cap of the claim's methodology, applied by dedupe to unique activities.

    `key` names the cap across versions of its methodology ("<methodology id>#<n>"), so a
    new version does not reset a person's day or month; with `per_type` each behaviour
    type has its own count under the key.
    """

    key: Id
    period: Literal["day", "month"]
    max_mg: Mass | None = None
    max_events: Count | None = None
    # Counted apart for each behaviour type (Ant Forest: 5 metro rides a day); absent in
    # claims made before it existed, which counted all their types together.
    per_type: bool = False


class Supersedes(Record):
    """What a recomputed claim replaces: the earlier claim of the same event, and what
    the books held for that event when the recomputation read them."""

    claim_id: UUID
    previous_mg: Mass  # the superseded claim's reduction
    standing_credit: UUID | None = None  # the credit decision in force, if any
    standing_mg: Mass = 0  # what that credit holds in each book


class ReductionClaim(Record):
    """The quantified reduction of one event, with full provenance.

    A claim that is not credited (no applicable methodology, say) still flows on,
    so that every event's outcome is recorded and explainable.
    """

    schema_: Literal["carbonledger.claim/1"] = Field("carbonledger.claim/1", alias="schema")
    claim_id: UUID
    event_id: UUID
    event: EventRef
    type: Id
    activity_class: Id
    subject: Id
    subject_kind: SubjectKind = SubjectKind.PERSON
    time: Moment
    region: RegionCode
    started_at: Moment
    ended_at: Moment
    natural_key: Id | None
    evidence_rank: Count = 0
    consent_required: bool = False  # credited only while the subject's consent is in force
    data: dict[str, Any] = {}
    credited: bool
    reduction_mg: Mass
    reason: Id | None = None
    reason_detail: Detail | None = None
    methodology: MethodologyRef | None = None
    formula: str | None = None
    inputs: dict[str, str] = {}
    factors: tuple[FactorUse, ...] = ()
    baseline_mg: Int64 | None = None
    project_mg: Int64 | None = None
    caps: tuple[CapUse, ...] = ()
    supersedes: Supersedes | None = None  # set on claims made by `carbonledger recompute`
    # When ingest admitted the event (or recompute re-quantified it): the start of the
    # pipeline's own latency, measured by the ledger at posting.
    received_at: Moment | None = None


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
    amount_mg: Amount
    claim: ReductionClaim
    winner_claim_id: UUID | None = None
    winner: EventRef | None = None
    reverses: UUID | None = None
    reason: Id | None = None
    reason_detail: Detail | None = None
    sequence: Count = 0

    @model_validator(mode="after")
    def _signed_by_kind(self) -> Decision:
        """A credit adds, a reversal takes away what a credit it names added, and the
        kinds that do not move the books carry nothing."""
        kind, amount = self.kind, self.amount_mg
        if kind is DecisionKind.CREDIT and amount < 0:
            raise PydanticCustomError(INVALID_RECORD, "a credit of a negative amount")
        if kind is DecisionKind.REVERSE and (amount > 0 or self.reverses is None):
            raise PydanticCustomError(
                INVALID_RECORD, "a reversal must be negative and name the credit it reverses"
            )
        if kind in (DecisionKind.DUPLICATE, DecisionKind.NOT_CREDITED) and amount != 0:
            raise PydanticCustomError(
                INVALID_RECORD, "a {kind} decision moves no amount", {"kind": kind.value}
            )
        return self


def _passed_on(claim: ReductionClaim) -> dict[str, Any]:
    """What a record dedupe passes on for an event that is never credited (an
    engagement or an account event) carries over from the event's claim."""
    return {
        "event_id": claim.event_id,
        "event": claim.event,
        "type": claim.type,
        "subject": claim.subject,
        "subject_kind": claim.subject_kind,
        "region": claim.region,
        "time": claim.time,
        "natural_key": claim.natural_key,
        "data": claim.data,
        "partner": claim.event.source,
    }


# The reason of an engagement event's claim: it earns points, never a reduction.
ENGAGEMENT_REASON = "engagement"


class Engagement(Record):
    """An engagement event (`engage.*`: a sign-in, a quiz, volunteering), published on
    `engagement.events` for incentive systems once dedupe has seen it: never quantified,
    never in the books.

    `engagement_id` is derived from the event, so a partner's resend of the same
    `(source, id)` and a redelivery after a crash carry the same id: a subscriber is
    idempotent by it."""

    schema_: Literal["carbonledger.engagement/1"] = Field(
        "carbonledger.engagement/1", alias="schema"
    )
    engagement_id: UUID
    event_id: UUID
    event: EventRef
    type: Id
    subject: Id
    subject_kind: SubjectKind = SubjectKind.PERSON
    region: RegionCode
    time: Moment
    natural_key: Id | None
    data: dict[str, Any] = {}
    partner: Id

    @classmethod
    def of(cls, claim: ReductionClaim) -> Engagement:
        """The engagement record of an engagement event's claim."""
        return cls(engagement_id=ids.engagement_id(claim.event_id), **_passed_on(claim))


# The reason of an account event's claim (consent, family link): never a reduction.
ACCOUNT_REASON = "account"


class AccountEvent(Record):
    """An account event (`consent.granted` / `consent.withdrawn`, `family.linked` /
    `family.unlinked`) as dedupe passes it on, on `account.events`: the ledger keeps
    it in the append-only consent history and family links, and incentive systems may
    follow it. Never quantified, never in a book.

    `account_event_id` is derived from the event, so a partner's resend of the same
    `(source, id)` and a redelivery after a crash carry the same id."""

    schema_: Literal["carbonledger.account_event/1"] = Field(
        "carbonledger.account_event/1", alias="schema"
    )
    account_event_id: UUID
    event_id: UUID
    event: EventRef
    type: Id
    subject: Id
    subject_kind: SubjectKind = SubjectKind.PERSON
    region: RegionCode
    time: Moment
    natural_key: Id | None
    data: dict[str, Any] = {}
    partner: Id
    received_at: Moment | None = None

    @classmethod
    def of(cls, claim: ReductionClaim) -> AccountEvent:
        """The account event of an account event's claim."""
        return cls(
            account_event_id=ids.account_event_id(claim.event_id),
            received_at=claim.received_at,
            **_passed_on(claim),
        )


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
    amount_mg: Int64
    behaviour_type: str
    region: str
    partner: str
    methodology: MethodologyRef | None
    behaviour_time: Moment
    # Whose behaviour: a person's or a unit's (old records, without it, are a person's).
    subject_kind: SubjectKind = SubjectKind.PERSON


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
    chain_index: Count
    amount_mg: Int64
    balance_mg: Int64
    behaviour_type: str
    region: str
    partner: str
    methodology: MethodologyRef | None
    behaviour_time: Moment
    prev_hash: str
    hash: str
    # Whose behaviour the posting is for (a unit's personal-book account is the unit's);
    # not in the chain's canonical text, so chains written before it verify unchanged.
    subject_kind: SubjectKind = SubjectKind.PERSON


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
