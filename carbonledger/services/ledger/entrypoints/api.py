"""Ledger HTTP API (read side): the books over HTTP, versioned under /v1.

Run: uvicorn carbonledger.services.ledger.entrypoints.api:app   (or `carbonledger ledger-api`)
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

import psycopg
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.routing import APIRoute
from psycopg_pool import ConnectionPool
from pydantic import BaseModel, Field

from carbonledger import __version__
from carbonledger.contracts import metrics as carbon_metrics
from carbonledger.contracts.envelope import SUBJECT_PATTERN
from carbonledger.contracts.exact import mg_to_display, mg_to_tonnes
from carbonledger.contracts.methodology import Methodology
from carbonledger.contracts.methodology_files import load_methodologies
from carbonledger.contracts.metrics import exposition
from carbonledger.contracts.records import ReductionClaim
from carbonledger.contracts.regions import NATIONAL, RegionTable, load_regions
from carbonledger.services.ledger.adapters import views as reads
from carbonledger.services.ledger.config import LedgerSettings


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


class PersonalLedger(BaseModel):
    subject: str
    balance: Amount
    postings: int
    by_behaviour_type: dict[str, Amount]
    by_month: dict[str, Amount] = Field(description="YYYY-MM (China Standard Time) → amount")
    recent_postings: list[PostingView]
    next_before: int | None = Field(description="pass as `before` for the next page")


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
    Never part of the enterprise book's total (DOMAIN.md §6)."""

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
    personal: Amount
    enterprise: Amount
    government: Amount
    balanced: bool


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = LedgerSettings()
    pool = ConnectionPool(
        settings.pg_conninfo, min_size=1, max_size=8, open=True, kwargs={"autocommit": True}
    )
    app.state.pool = pool
    app.state.methodologies = {
        (m.id, m.version): m for m in load_methodologies(settings.methodology_dir)
    }
    try:
        yield
    finally:
        pool.close()


app = FastAPI(
    title="Carbon inclusion ledger",
    version=__version__,
    openapi_url="/v1/openapi.json",
    docs_url="/v1/docs",
    generate_unique_id_function=_operation_id,
    lifespan=lifespan,
)

REQUESTS = carbon_metrics.counter(
    "api", "requests_total", "Ledger API requests, by route template", ("route", "method", "status")
)
REQUEST_SECONDS = carbon_metrics.histogram(
    "api", "request_seconds", "Time to answer one ledger API request", ("route",)
)


@app.middleware("http")
async def count_requests(request: Request, call_next: Callable[[Request], Any]) -> Response:
    started = time.perf_counter()
    response: Response = await call_next(request)
    # The route's template, never the path: subjects and regions are unbounded.
    route = getattr(request.scope.get("route"), "path", "unmatched")
    REQUESTS.labels(route, request.method, str(response.status_code)).inc()
    REQUEST_SECONDS.labels(route).observe(time.perf_counter() - started)
    return response


def connection(request: Request) -> Iterator[psycopg.Connection]:
    pool: ConnectionPool = request.app.state.pool
    with pool.connection() as conn:
        yield conn


BooksDep = Annotated[psycopg.Connection, Depends(connection)]

Limit = Annotated[int, Query(ge=1, le=500)]
Before = Annotated[int | None, Query(ge=1, description="page: postings with seq below this")]


@app.get("/healthz", tags=["health"])
def healthz() -> dict[str, str]:
    return {"status": "alive"}


@app.get("/readyz", tags=["health"])
def readyz(books: BooksDep) -> dict[str, bool]:
    reads.totals(books)
    return {"ready": True}


@app.get("/metrics", tags=["health"], include_in_schema=False)
def metrics() -> Response:
    body, content_type = exposition()
    return Response(body, media_type=content_type)


@app.get("/v1/ledgers/personal/{subject}", tags=["ledgers"], response_model=PersonalLedger)
def personal_ledger(
    subject: str, books: BooksDep, limit: Limit = 50, before: Before = None
) -> PersonalLedger:
    """A person's balance, totals by behaviour type and month, and recent postings
    (newest first), each with its claim, methodology version and partner."""
    if not SUBJECT_PATTERN.match(subject):
        raise HTTPException(422, "subject must be 64 lowercase hex characters")
    found = reads.balance(books, "personal", subject)
    if found is None:
        raise HTTPException(404, "no postings for this subject")
    periods = reads.period_rows(books, "personal", subject)
    views, next_before = _page(books, "personal", subject, limit, before)
    return PersonalLedger(
        subject=subject,
        balance=Amount.of(found[0]),
        postings=found[1],
        by_behaviour_type=_sum_by(periods, "behaviour_type"),
        by_month=_sum_by(periods, "period_start", _month),
        recent_postings=views,
        next_before=next_before,
    )


def _month(start: Any) -> str:
    return f"{start:%Y-%m}"


def _sum_by(
    rows: list[Mapping[str, Any]], column: str, label: Callable[[Any], str] = str
) -> dict[str, Amount]:
    sums: dict[str, int] = {}
    for row in rows:
        key = label(row[column])
        sums[key] = sums.get(key, 0) + int(row["amount_mg"])
    return {k: Amount.of(v) for k, v in sorted(sums.items())}


def _page(
    books: psycopg.Connection, book: str, account: str, limit: int, before: int | None
) -> tuple[list[PostingView], int | None]:
    rows = reads.recent_postings(books, book, account, limit, before)
    views = [PostingView(amount=Amount.of(int(r["amount_mg"])), **r) for r in rows]
    return views, views[-1].seq if len(views) == limit else None


@app.get("/v1/ledgers/enterprise/{partner}", tags=["ledgers"], response_model=EnterpriseLedger)
def enterprise_ledger(
    partner: str, books: BooksDep, limit: Limit = 50, before: Before = None
) -> EnterpriseLedger:
    """The reductions a partner drove (its claims that won dedupe), by behaviour type,
    region, province and month, and its recent postings (newest first)."""
    found = reads.balance(books, "enterprise", partner)
    if found is None:
        raise HTTPException(404, "no postings for this partner")
    periods = reads.period_rows(books, "enterprise", partner)
    regions = load_regions()
    views, next_before = _page(books, "enterprise", partner, limit, before)
    return EnterpriseLedger(
        partner=partner,
        balance=Amount.of(found[0]),
        postings=found[1],
        by_behaviour_type=_sum_by(periods, "behaviour_type"),
        by_region=_sum_by(periods, "region"),
        by_province=_sum_by(periods, "region", lambda r: _province(regions, r)),
        by_month=_sum_by(periods, "period_start", _month),
        recent_postings=views,
        next_before=next_before,
    )


@app.get("/v1/ledgers/employer/{employer}", tags=["ledgers"], response_model=EmployerLedger)
def employer_ledger(employer: str, books: BooksDep) -> EmployerLedger:
    """Employer account (企业员工碳账户): what linked employees reduced since linking."""
    members, rows = reads.employer_rows(books, employer)
    if not members:
        raise HTTPException(404, "no employees linked to this employer")
    return EmployerLedger(
        employer=employer,
        members=members,
        total=Amount.of(sum(int(r["amount_mg"]) for r in rows)),
        by_behaviour_type=_sum_by(rows, "behaviour_type"),
        by_month=_sum_by(rows, "period_start", _month),
    )


def _province(regions: RegionTable, code: str) -> str:
    return regions.province_of(code).code if code in regions else code


@app.get("/v1/ledgers/government/{region}", tags=["ledgers"], response_model=GovernmentLedger)
def government_ledger(region: str, books: BooksDep) -> GovernmentLedger:
    """A region's roll-up (a province sums all its cities and districts; 000000 is
    national), by behaviour type and month, with its direct child regions."""
    regions = load_regions()
    if region != NATIONAL and region not in regions:
        raise HTTPException(404, "not a GB/T 2260 code in the shipped table")
    periods = reads.period_rows(books, "government", region)
    if region == NATIONAL:
        name, level, parent, children = (
            "中华人民共和国",
            "national",
            None,
            regions.children(NATIONAL),
        )
    else:
        unit = regions.get(region)
        assert unit is not None
        name, level, parent, children = unit.name, unit.level, unit.parent, regions.children(region)
    child_totals = reads.account_totals(books, "government", [c.code for c in children])
    return GovernmentLedger(
        region=region,
        name=name,
        level=str(level),
        parent=parent,
        total=Amount.of(sum(int(r["amount_mg"]) for r in periods)),
        postings=sum(int(r["postings"]) for r in periods),
        by_behaviour_type=_sum_by(periods, "behaviour_type"),
        by_month=_sum_by(periods, "period_start", _month),
        children=[
            RegionTotal(code=c.code, name=c.name, level=str(c.level), total=Amount.of(t))
            for c in children
            if (t := child_totals.get(c.code)) is not None
        ],
    )


class ClaimPosting(BaseModel):
    posting_id: UUID
    book: str
    account: str
    amount: Amount
    posted_at: datetime


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
        "no_applicable_methodology, cap_reached, late, ...)"
    )
    credited: Amount = Field(description="net amount this event holds in each book")
    duplicate_of: EventKey | None = Field(description="the winning claim, for a duplicate")
    duplicates: list[EventKey] = Field(description="other partners' claims of this activity")
    reason: str | None
    decisions: list[DecisionView]


def _status(views: list[DecisionView], credited: int) -> str:
    last = views[-1]
    if credited:
        return "credited"
    if last.kind == "reverse":
        return "reversed"
    return last.kind


@app.get("/v1/claims/{source}/{event_id}", tags=["claims"], response_model=ClaimExplanation)
def explain_claim(source: str, event_id: str, books: BooksDep) -> ClaimExplanation:
    """What became of one partner event: each decision with the full claim behind it
    (methodology version, inputs, every factor with its source) and the postings it made."""
    rows = reads.decisions_of(books, source, event_id)
    if not rows:
        raise HTTPException(
            404,
            "no decision recorded for this event (not received, or rejected:"
            " see the dead-letter topic)",
        )
    made = reads.postings_of_decisions(books, [r["decision_id"] for r in rows])
    views = [_decision_view(r, made[r["decision_id"]]) for r in rows]
    credited = sum(int(r["amount_mg"]) for r in rows)
    last = views[-1]
    return ClaimExplanation(
        source=source,
        id=event_id,
        status=_status(views, credited),
        credited=Amount.of(credited),
        duplicate_of=last.winner if last.kind == "duplicate" else None,
        duplicates=[
            EventKey(source=d["event_source"], id=d["event_id"])
            for d in reads.duplicates_of(books, source, event_id)
        ],
        reason=last.reason,
        decisions=views,
    )


def _decision_view(row: Mapping[str, Any], postings: list[Mapping[str, Any]]) -> DecisionView:
    fields = {
        k: v for k, v in row.items() if k not in ("amount_mg", "winner_source", "winner_event_id")
    }
    winner = (
        EventKey(source=row["winner_source"], id=row["winner_event_id"])
        if row["winner_source"]
        else None
    )
    return DecisionView(
        amount=Amount.of(int(row["amount_mg"])),
        winner=winner,
        postings=[ClaimPosting(amount=Amount.of(int(p["amount_mg"])), **p) for p in postings],
        **fields,
    )


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


@app.get("/v1/methodologies", tags=["methodologies"], response_model=list[MethodologySummary])
def methodologies(request: Request) -> list[MethodologySummary]:
    """Every methodology version in the registry, active or not."""
    return [
        MethodologySummary(
            **m.model_dump(include=set(MethodologySummary.model_fields) - {"behaviours"}),
            behaviours=sorted(m.behaviours),
        )
        for _, m in sorted(request.app.state.methodologies.items())
    ]


@app.get(
    "/v1/methodologies/{methodology_id}/{version}",
    tags=["methodologies"],
    response_model=Methodology,
)
def methodology(methodology_id: str, version: str, request: Request) -> Methodology:
    """One version with every factor, its unit, source and confidence, caps and parameters."""
    found: Methodology | None = request.app.state.methodologies.get((methodology_id, version))
    if found is None:
        raise HTTPException(404, f"no methodology {methodology_id}@{version}")
    return found


@app.get("/v1/ledgers/totals", tags=["ledgers"], response_model=BookTotals)
def totals(books: BooksDep) -> BookTotals:
    """The three books' totals; they must always be equal."""
    t = reads.totals(books)
    return BookTotals(
        personal=Amount.of(t["personal"]),
        enterprise=Amount.of(t["enterprise"]),
        government=Amount.of(t["government"]),
        balanced=t["personal"] == t["enterprise"] == t["government"],
    )
