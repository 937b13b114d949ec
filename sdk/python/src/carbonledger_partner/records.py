"""The records the ledger publishes to incentive systems, as a subscriber reads them.

`LedgerPosting` is `carbonledger.ledger_posting/1` on `ledger.postings` (keyed by
`book:account`, at least once: be idempotent by `posting_id`); the platform's test
suite checks that it accepts exactly the platform's own record. Unknown fields are
refused: a record of another schema version is not silently half-read.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# China Standard Time: the day that caps and points count in.
CST = timezone(timedelta(hours=8), "CST")

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]


class _Record(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


class SubjectKind(StrEnum):
    PERSON = "person"
    UNIT = "unit"


class Book(StrEnum):
    PERSONAL = "personal"
    ENTERPRISE = "enterprise"
    GOVERNMENT = "government"


class DecisionKind(StrEnum):
    CREDIT = "credit"
    REVERSE = "reverse"
    DUPLICATE = "duplicate"
    NOT_CREDITED = "not_credited"


class EventRef(_Record):
    source: str
    id: str


class MethodologyRef(_Record):
    id: str
    version: str


class LedgerPosting(_Record):
    """A posting: the entry, the account's running balance after it, its chain link."""

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
    behaviour_time: AwareDatetime
    prev_hash: str
    hash: str
    subject_kind: SubjectKind = SubjectKind.PERSON
