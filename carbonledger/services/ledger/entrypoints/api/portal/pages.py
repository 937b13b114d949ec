"""The portal's pages (docs/portal.md): a region's overview for a government user, my
account for a person, my enterprise book and rejections for a partner.

Each page answers from the same functions as the JSON routes, under the same policy
(contracts/roles.py): the bearer token comes from the `carbon_token` cookie the
login page sets (or an Authorization header). An anonymous visitor is sent to the
login page; a page outside the token's scope is a 403 page that says no more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

import jinja2
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from carbonledger.contracts.calendar import CST
from carbonledger.contracts.regions import NATIONAL
from carbonledger.contracts.roles import Principal, Reading, Role
from carbonledger.runtime.bearer import (
    LOOPBACK_ONLY,
    TOKEN_COOKIE,
    MaybeCaller,
    from_loopback,
    http_problem,
    verified,
)
from carbonledger.runtime.tokens import (
    Grant,
    InvalidToken,
    TokenVerifier,
    mint_development_token,
)
from carbonledger.services.ledger.entrypoints.api import reports
from carbonledger.services.ledger.entrypoints.api.auth import require
from carbonledger.services.ledger.entrypoints.api.deps import Before, BooksDep, Regions
from carbonledger.services.ledger.entrypoints.api.portal.charts import Bar, bar_chart, tree_map
from carbonledger.services.ledger.entrypoints.api.routers import (
    claims,
    consents,
    ledgers,
    partners,
)
from carbonledger.services.ledger.entrypoints.api.schemas import PersonalLedger

router = APIRouter(prefix="/portal", include_in_schema=False)
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
)
# Times as the people of the scheme read them: China Standard Time.
TEMPLATES.filters["cst"] = lambda moment: moment.astimezone(CST).strftime("%Y-%m-%d %H:%M")
PERIOD_NAMES = {"month": "月 Month", "quarter": "季度 Quarter", "year": "年 Year"}


class Anonymous(Exception):
    """No valid token: the answer is the login page."""


def page(template: str, caller: Principal | None, status: int = 200, **values: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(template).render(
        caller=caller.name() if caller else None, **values
    )
    return HTMLResponse(html, status_code=status)


def signed_in(caller: MaybeCaller) -> Principal:
    if caller is None:
        raise Anonymous()
    return caller


Visitor = Annotated[Principal, Depends(signed_in)]


_TITLES = {
    403: "无权访问 Forbidden",
    404: "未找到 Not found",
    413: "内容过大 Too large",
    422: "请求有误 Bad request",
}


async def _portal_problem(request: Request, exc: Exception) -> Response:
    """On the portal, errors are pages (the login page for an anonymous visitor);
    elsewhere, problem+json."""
    if isinstance(exc, Anonymous):
        return RedirectResponse("/portal/login", 303)
    assert isinstance(exc, StarletteHTTPException)
    if not request.url.path.startswith("/portal"):
        return await http_problem(request, exc)
    html = TEMPLATES.get_template("problem.html").render(
        caller=None,
        status=exc.status_code,
        title=_TITLES.get(exc.status_code, "错误 Error"),
        detail=str(exc.detail),
    )
    return HTMLResponse(html, status_code=exc.status_code)


def serve_portal(app: FastAPI) -> None:
    """The portal's pages, and their errors as pages."""
    app.include_router(router)
    app.add_exception_handler(Anonymous, _portal_problem)
    app.add_exception_handler(StarletteHTTPException, _portal_problem)


@router.get("")
def home(caller: MaybeCaller) -> Response:
    """Each role's own page; the login page for an anonymous visitor."""
    if caller is None:
        return RedirectResponse("/portal/login", 303)
    if caller.role is Role.GOVERNMENT:
        return RedirectResponse(f"/portal/region/{caller.region}", 303)
    if caller.role in (Role.PERSON, Role.UNIT):
        return RedirectResponse(f"/portal/person/{caller.subject}", 303)
    if caller.role is Role.PARTNER:
        return RedirectResponse(f"/portal/partner/{caller.partner}", 303)
    if caller.unscoped:
        return RedirectResponse(f"/portal/region/{NATIONAL}", 303)
    return page(
        "problem.html", caller, 403, title="无权访问 Forbidden", detail="no page for this role"
    )


@router.get("/login")
def login(
    request: Request,
    caller: MaybeCaller,
    problem: str | None = None,
    role: Role | None = None,
    subject: str | None = None,
    partner: str | None = None,
    region: str | None = None,
) -> HTMLResponse:
    """The login page; locally, the development login filled from the query (a ready
    login link, as `make demo` prints)."""
    verifier: TokenVerifier = request.app.state.token_verifier
    return page(
        "login.html",
        caller,
        title="登录 Log in",
        development=verifier.settings.trusts_development_key,
        roles=[r.value for r in Role],
        problem=problem,
        chosen={
            "role": role.value if role else None,
            "subject": subject,
            "partner": partner,
            "region": region,
        },
    )


FORM_LIMIT = 16_384  # bytes: a token and a few fields


async def _form(request: Request) -> dict[str, str]:
    """The login form's fields, read as it streams in and refused (413) past the
    limit: never the whole of a large body first."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > FORM_LIMIT:
        raise HTTPException(413, f"a login form is at most {FORM_LIMIT} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            raise HTTPException(413, f"a login form is at most {FORM_LIMIT} bytes")
    text = body.decode("utf-8", "replace")
    return {k: v[0].strip() for k, v in parse_qs(text).items() if v and v[0].strip()}


def same_origin(request: Request) -> None:
    """Refuses (403) a POST another site's page made: the browser says so in
    Sec-Fetch-Site, or in an Origin other than this one (login CSRF)."""
    fetched = request.headers.get("sec-fetch-site")
    if fetched is not None and fetched not in ("same-origin", "none"):
        raise HTTPException(403, "a cross-site form may not log in or out here")
    origin = request.headers.get("origin")
    here = f"{request.url.scheme}://{request.url.netloc}"
    if origin is not None and origin != here:
        raise HTTPException(403, "a cross-site form may not log in or out here")


SameOrigin = Depends(same_origin)


def _session(request: Request, token: str) -> Response:
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        verified(request, token)
    except InvalidToken as bad:
        return RedirectResponse(f"/portal/login?{urlencode({'problem': str(bad)})}", 303)
    answer = RedirectResponse("/portal", 303)
    answer.set_cookie(
        TOKEN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=verifier.settings.environment == "production",
        path="/",
    )
    return answer


@router.post("/session", dependencies=[SameOrigin])
async def session(request: Request, caller: MaybeCaller) -> Response:
    """Log in with a token pasted (or posted by the identity provider's redirect)."""
    token = (await _form(request)).get("token", "")
    return _session(request, token)


@router.post("/session/development", dependencies=[SameOrigin])
async def development_session(request: Request, caller: MaybeCaller) -> Response:
    """The local stack's login: a development token for the role and scope given,
    for a browser on this host only."""
    verifier: TokenVerifier = request.app.state.token_verifier
    if not from_loopback(request):
        raise HTTPException(403, LOOPBACK_ONLY)
    form = await _form(request)
    try:
        grant = Grant(
            Role(form.get("role", "")),
            subject=form.get("subject"),
            partner=form.get("partner"),
            region=form.get("region"),
        )
        token = mint_development_token(verifier.settings, grant)
    except (ValueError, PermissionError) as refused:
        return RedirectResponse(f"/portal/login?{urlencode({'problem': str(refused)})}", 303)
    return _session(request, token)


@router.post("/logout", dependencies=[SameOrigin])
def logout(caller: MaybeCaller) -> Response:
    answer = RedirectResponse("/portal/login", 303)
    answer.delete_cookie(TOKEN_COOKIE, path="/")
    return answer


PeriodQuery = Annotated[reports.Period | None, Query()]


@router.get("/region/{region}")
def region_page(
    region: str,
    caller: Visitor,
    books: BooksDep,
    regions: Regions,
    period: PeriodQuery = None,
    at: reports.AtQuery = None,
    first: reports.FromQuery = None,
    last: reports.ToQuery = None,
) -> HTMLResponse:
    """A region's overview: totals, trend, child regions (table and tree map),
    categories, behaviour types, top partners, CSV; every figure links to its source."""
    require(caller, Reading.GOVERNMENT, region, regions)
    found = reports.region_statistics(books, regions, region, (period, at, first, last))
    asked = (
        {"from": str(found.first_day), "to": str(found.last_day)}
        if found.period is None
        else {"period": found.period, "at": str(found.first_day)}
    )
    query = "?" + urlencode(asked)
    trend = [Bar(m.key, m.amount.mg, m.amount.t) for m in found.by_month]
    quarterly = [Bar(q.key, q.amount.mg, q.amount.t) for q in found.by_quarter]
    cells = [
        Bar(c.name, c.amount.mg, c.amount.t, f"/portal/region/{c.code}{query}")
        for c in found.children
    ]
    return page(
        "region.html",
        caller,
        title=found.name,
        s=found,
        query=query,
        api=f"/v1/statistics/{region}{query}",
        csv=f"/v1/statistics/{region}/csv{query}",
        book=f"/v1/ledgers/government/{region}",
        trend=bar_chart(trend, "月度趋势 Trend by month"),
        quarterly=bar_chart(quarterly, "季度趋势 Trend by quarter"),
        treemap=tree_map(cells, "下级地区 Child regions"),
        period_names=PERIOD_NAMES,
    )


@router.get("/person/{subject}")
def person_page(
    subject: str, caller: Visitor, books: BooksDep, regions: Regions, before: Before = None
) -> HTMLResponse:
    """My account: balance, history (each posting's event, methodology and a link to
    its provenance) and my consents."""
    require(
        caller, Reading.PERSONAL if caller.role is not Role.UNIT else Reading.UNIT, subject, regions
    )
    # A unit reads its unit account (the route its token reaches), everyone else
    # the personal one (which names the account's kind).
    read = ledgers.unit_ledger if caller.role is Role.UNIT else ledgers.personal_ledger
    ledger: PersonalLedger | None
    try:
        ledger = read(subject, books, 50, before)
    except HTTPException as missing:
        if missing.status_code != 404:
            raise
        ledger = None
    history = consents.consent_history(subject, books)
    return page(
        "person.html", caller, title="我的碳账户", subject=subject, ledger=ledger, consents=history
    )


@router.get("/claims")
def claim_page(
    caller: Visitor,
    books: BooksDep,
    regions: Regions,
    source: Annotated[str, Query(min_length=1)],
    event_id: Annotated[str, Query(alias="id", min_length=1)],
) -> HTMLResponse:
    """One event's provenance: each decision with its methodology, formula, inputs and
    every factor with its source."""
    found = claims.explain_claim_by_query(books, caller, regions, source, event_id)
    api = "/v1/claims?" + urlencode({"source": source, "id": event_id})
    return page("claim.html", caller, title="减排来源", c=found, api=api)


@router.get("/partner/{partner}")
def partner_page(
    partner: str, caller: Visitor, books: BooksDep, regions: Regions, before: Before = None
) -> HTMLResponse:
    """My enterprise book and my rejections."""
    require(caller, Reading.ENTERPRISE, partner, regions)
    try:
        ledger = ledgers.enterprise_ledger(partner, books, regions, 20, None)
    except HTTPException as missing:
        if missing.status_code != 404:
            raise
        ledger = None
    refused = partners.partner_rejections(partner, books, 50, before)
    return page(
        "partner.html", caller, title=partner, partner=partner, ledger=ledger, rejections=refused
    )
