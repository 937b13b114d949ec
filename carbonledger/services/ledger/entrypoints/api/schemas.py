"""The ledger API's response models: what each route answers (they are the OpenAPI
document's schemas), and how rows of the views become them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from carbonledger.contracts.exact import mg_to_display, mg_to_tonnes
from carbonledger.contracts.records import ReductionClaim


class Amount(BaseModel):
    """An exact amount of CO2: integer milligrams, with kg and tonne strings for display."""

    mg: int
    kg: str
    t: str

    @classmethod
    def of(cls, mg: int) -> Amount:
        return cls(mg=mg, kg=mg_to_display(mg), t=mg_to_tonnes(mg))


class PostingView(BaseModel):
    seq: int
    posting_id: UUID
    decision_id: UUID
    kind: str
    claim_id: UUID
    event_source: str
    event_id: str
    amount: Amount
    behaviour_type: str
    region: str
    partner: str
    methodology_id: str | None
    methodology_version: str | None
    behaviour_time: datetime
    posted_at: datetime
    subject_kind: str = Field("person", description="person, or unit (an organisation)")


class PersonalLedger(BaseModel):
    subject: str
    subject_kind: str = Field(
        "person", description="person, or unit: an organisation's account, counted apart"
    )
    balance: Amount
    postings: int
    by_behaviour_type: dict[str, Amount]
    by_month: dict[str, Amount] = Field(description="YYYY-MM (China Standard Time) → amount")
    recent_postings: list[PostingView]
    next_before: int | None = Field(description="pass as `before` for the next page")


class UnitLedger(PersonalLedger):
    """A unit's (an organisation's) account: its part of the personal book, which the
    totals report on a line of its own (`BookTotals.units`)."""

    subject_kind: str = Field("unit", description="always unit")


class EnterpriseLedger(BaseModel):
    partner: str
    balance: Amount
    postings: int
    by_behaviour_type: dict[str, Amount]
    by_region: dict[str, Amount] = Field(description="six-digit region of the behaviour")
    by_province: dict[str, Amount]
    by_month: dict[str, Amount]
    recent_postings: list[PostingView]
    next_before: int | None


class EmployerLedger(BaseModel):
    """A view of the personal book: the linked employees' postings since each link.
    Never part of the enterprise book's total (docs/domain.md)."""

    employer: str
    members: int
    total: Amount
    by_behaviour_type: dict[str, Amount]
    by_month: dict[str, Amount]


class RegionTotal(BaseModel):
    code: str
    name: str
    level: str
    total: Amount


class GovernmentLedger(BaseModel):
    """A region's roll-up: its own postings and those of every unit inside it."""

    region: str
    name: str
    level: str = Field(description="national, province, city or district")
    parent: str | None
    total: Amount
    postings: int
    by_behaviour_type: dict[str, Amount]
    by_month: dict[str, Amount]
    children: list[RegionTotal] = Field(description="direct child regions with postings")


class BookTotals(BaseModel):
    personal: Amount = Field(description="people's and units' accounts: people + units")
    people: Amount = Field(description="the personal book's accounts of people")
    units: Amount = Field(description="the personal book's accounts of units (organisations)")
    enterprise: Amount
    government: Amount
    balanced: bool = Field(description="the three books hold the same total")


class ClaimPosting(BaseModel):
    posting_id: UUID
    book: str
    account: str
    amount: Amount
    posted_at: datetime
    subject_kind: str = "person"


class EventKey(BaseModel):
    source: str
    id: str


class DecisionView(BaseModel):
    decision_id: UUID
    sequence: int
    kind: str
    amount: Amount
    winner: EventKey | None
    winner_claim_id: UUID | None
    reverses: UUID | None
    reason: str | None
    reason_detail: str | None
    recorded_at: datetime
    claim: ReductionClaim
    postings: list[ClaimPosting]


class ClaimExplanation(BaseModel):
    """Where an event stands now, and every decision that brought it there."""

    source: str
    id: str
    status: str = Field(
        description="credited, duplicate, reversed, not_credited (reason says why: "
        "no_applicable_methodology, cap_reached, late, no_consent, ...)"
    )
    credited: Amount = Field(description="net amount this event holds in each book")
    duplicate_of: EventKey | None = Field(description="the winning claim, for a duplicate")
    duplicates: list[EventKey] = Field(description="other partners' claims of this activity")
    reason: str | None
    decisions: list[DecisionView]


class ConsentRecord(BaseModel):
    """One entry of a subject's consent history, as the partner reported it."""

    type: str = Field(description="granted or withdrawn")
    partner: str
    scope: str
    evidence_id: str = Field(description="the partner's record of the authorisation")
    given_at: datetime = Field(description="when the user gave or withdrew consent")
    recorded_at: datetime
    region: str
    event: EventKey


class ConsentStanding(BaseModel):
    state: str = Field(description="granted or withdrawn")
    since: datetime
    evidence_id: str


class ConsentHistory(BaseModel):
    """A subject's consent history (append-only) and, per partner, the consent in force
    now. The outcome depends only on the times given, never on arrival order."""

    subject: str
    history: list[ConsentRecord] = Field(description="by given_at, then in recorded order")
    in_force: dict[str, ConsentStanding] = Field(description="partner → its consent now")


class LinkInterval(BaseModel):
    linked_from: datetime
    linked_to: datetime | None = Field(description="null: in force now")


class RefusedLink(BaseModel):
    at: datetime = Field(description="when both sides had reported it")
    reason: str


class FamilyMember(BaseModel):
    member: str
    in_force: bool
    intervals: list[LinkInterval]
    net: Amount = Field(description="personal postings with behaviour inside the intervals")
    postings: int
    refused: list[RefusedLink] = Field(description="links that would overlap another family")
    awaiting: str | None = Field(
        description="head or member: whose report of a pending link is still missing"
    )


class FamilyLedger(BaseModel):
    """Family account (1+N): a view of the personal book, never added to any book's
    total. The head's own postings all count; a member's count while linked."""

    head: str
    head_own: Amount = Field(description="the head's personal balance (all its postings)")
    members: list[FamilyMember]
    total: Amount = Field(description="head_own plus every member's net while linked")


class MethodologySummary(BaseModel):
    id: str
    version: str
    title: str
    title_zh: str
    region: str
    valid_from: date
    valid_to: date | None
    behaviours: list[str]
    formula: str
    active: bool


def month(start: Any) -> str:
    return f"{start:%Y-%m}"


def sum_by(
    rows: list[Mapping[str, Any]], column: str, label: Callable[[Any], str] = str
) -> dict[str, Amount]:
    """Rows' amounts summed by one column (as labelled), in label order."""
    sums: dict[str, int] = {}
    for row in rows:
        key = label(row[column])
        sums[key] = sums.get(key, 0) + int(row["amount_mg"])
    return {k: Amount.of(v) for k, v in sorted(sums.items())}
