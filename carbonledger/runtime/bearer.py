"""Bearer authentication for the platform's FastAPI apps (the ledger API, the
gateway's read routes, the portal), and their errors as RFC 9457 problems.

Every route declares how it is reached: `Depends(public)` (health, metrics, the
methodology registry, the registry's public reads) or a dependency that asks for
the caller's principal. The app checks at start-up that none is left undeclared
(`undeclared_routes`), so a new route cannot be open by omission.

401 (no token, or one not accepted) carries `WWW-Authenticate: Bearer`; 403 (a
valid token outside its scope) says only that: neither tells whether what was
asked for exists.
"""

# No `from __future__ import annotations`: FastAPI reads the dependencies' annotations.
import ipaddress
import logging
from collections.abc import Callable, Iterable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from carbonledger.contracts.roles import Principal
from carbonledger.runtime.tokens import InvalidToken, TokenSettings, TokenVerifier

PROBLEM_TYPE = "application/problem+json"
REALM = "carbonledger"
# Where a token may also come from: the portal's pages keep it in this cookie (set
# by its login page, HttpOnly, SameSite=Strict), so a browser need not send a header.
TOKEN_COOKIE = "carbon_token"

log = logging.getLogger(__name__)
# Anyone may read the development key's file on a developer's machine, and anyone
# may mint with it through the development login: only clients on this host are
# trusted with it.
LOOPBACK_ONLY = "the development key is trusted only for clients on this host"

_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="A JWT from the scheme's identity provider (docs/access.md); locally, "
    "`carbonledger token --role ...`.",
)


class Unauthenticated(HTTPException):
    """401: no token, or one this platform does not accept."""

    def __init__(self, why: str) -> None:
        challenge = f'Bearer realm="{REALM}"'
        if why != "no bearer token":
            challenge += f', error="invalid_token", error_description="{why}"'
        super().__init__(401, why, headers={"WWW-Authenticate": challenge})


class Forbidden(HTTPException):
    """403: the token is valid but does not reach this (and says no more)."""

    def __init__(self) -> None:
        super().__init__(403, "outside this token's scope")


def public() -> None:
    """Declares a route public: it answers without a token (DOMAIN §14)."""


def install_verifier(app: FastAPI, settings: TokenSettings | None = None) -> TokenVerifier:
    """The app's token verifier, built once (in its lifespan): its settings refuse
    production without an issuer, so the app does not start without one."""
    verifier = TokenVerifier(settings or TokenSettings())
    app.state.token_verifier = verifier
    if verifier.settings.trusts_development_key:
        log.warning(
            "!!! DEVELOPMENT TOKENS: no CARBON_TOKEN_ISSUER is set, so tokens signed with "
            "the local development key (%s) are accepted, from clients on this host only, "
            "and /portal/session/development mints them. Never expose this process. !!!",
            verifier.settings.development_key_file,
        )
    return verifier


def from_loopback(request: Request) -> bool:
    """Whether the client's address is this host's (127.0.0.0/8, ::1)."""
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def verified(request: Request, token: str) -> Principal:
    """The token's principal, by the app's verifier; `InvalidToken` otherwise, and
    for a development token from a client elsewhere."""
    verifier: TokenVerifier = request.app.state.token_verifier
    if verifier.settings.trusts_development_key and not from_loopback(request):
        raise InvalidToken(LOOPBACK_ONLY)
    return verifier.principal(token)


def _token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    if credentials is not None and credentials.scheme.lower() == "bearer":
        return credentials.credentials
    return request.cookies.get(TOKEN_COOKIE) or None


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from the bearer token (or the portal's cookie); 401 otherwise."""
    token = _token(request, credentials)
    if token is None:
        raise Unauthenticated("no bearer token")
    try:
        return verified(request, token)
    except InvalidToken as bad:
        raise Unauthenticated(str(bad)) from None


Caller = Annotated[Principal, Depends(principal)]


async def optional_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    """The caller if a valid token came, else None: for pages that answer an anonymous
    visitor with the login page (each then checks the scope itself)."""
    token = _token(request, credentials)
    if token is None:
        return None
    try:
        return verified(request, token)
    except InvalidToken:
        return None


MaybeCaller = Annotated[Principal | None, Depends(optional_principal)]


def undeclared_routes(app: FastAPI, docs_paths: Iterable[str] = ()) -> list[str]:
    """Routes that declare neither `public` nor a principal (required, or optional for
    a page that checks its scope itself): none may be left."""
    exempt = set(docs_paths)
    missing = []
    for route in app.routes:
        if not isinstance(route, APIRoute) or route.path in exempt:
            continue
        calls = {_call(d) for d in _dependencies(route.dependant)}
        if not calls & {public, principal, optional_principal}:
            missing.append(f"{','.join(sorted(route.methods or ()))} {route.path}")
    return missing


def _call(dependant: Any) -> Callable[..., Any] | None:
    call: Callable[..., Any] | None = dependant.call
    return call


def _dependencies(dependant: Any) -> Iterable[Any]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def problem(status: int, detail: str, request: Request, **extra: Any) -> dict[str, Any]:
    """An RFC 9457 problem body."""
    from http import HTTPStatus

    return {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }


async def http_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return JSONResponse(
        problem(exc.status_code, detail, request),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
        media_type=PROBLEM_TYPE,
    )


async def validation_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
        for e in exc.errors()
    ]
    first = errors[0]["msg"] if errors else "the request is not valid"
    return JSONResponse(
        problem(422, first, request, errors=errors), status_code=422, media_type=PROBLEM_TYPE
    )


def answer_with_problems(app: FastAPI) -> None:
    """Every error the app raises answers as application/problem+json."""
    app.add_exception_handler(StarletteHTTPException, http_problem)
    app.add_exception_handler(RequestValidationError, validation_problem)


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


# The statuses a route may answer besides its own, for the OpenAPI document.
PROTECTED_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _problem_response("no bearer token, or one not accepted (WWW-Authenticate says why)"),
    403: _problem_response("the token is valid but outside its scope"),
    404: _problem_response("not found (only said within the token's scope)"),
    503: _problem_response("the books cannot be read now (Retry-After)"),
}
PUBLIC_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: _problem_response("not found"),
    503: _problem_response("the books cannot be read now (Retry-After)"),
}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}


def with_problem_schema(app: FastAPI) -> None:
    """Adds the Problem schema the error responses name to the app's OpenAPI."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = build()
            doc.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
