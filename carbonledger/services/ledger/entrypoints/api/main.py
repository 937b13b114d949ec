"""The ledger API application: its routers, request metrics and lifespan."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute
from psycopg_pool import ConnectionPool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carbonledger import __version__
from carbonledger.contracts.methodology_files import load_methodologies
from carbonledger.contracts.regions import load_regions
from carbonledger.runtime import logs
from carbonledger.runtime.bearer import (
    PROTECTED_RESPONSES,
    PUBLIC_RESPONSES,
    answer_with_problems,
    install_verifier,
    undeclared_routes,
    with_problem_schema,
)
from carbonledger.runtime.docs_pages import serve_docs
from carbonledger.runtime.web import with_access_log
from carbonledger.services.ledger.config import LedgerSettings
from carbonledger.services.ledger.entrypoints.api.deps import Books, BooksUnavailable, Registries
from carbonledger.services.ledger.entrypoints.api.guards import (
    books_unavailable,
    refuse_control_characters,
)
from carbonledger.services.ledger.entrypoints.api.portal.pages import serve_portal
from carbonledger.services.ledger.entrypoints.api.routers import (
    claims,
    consents,
    employers,
    families,
    health,
    ledgers,
    methodologies,
    partners,
    registry,
    statistics,
)
from carbonledger.services.ledger.metrics import API_REQUEST_SECONDS, API_REQUESTS


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = LedgerSettings()
    logs.configure(settings)
    install_verifier(app)  # refuses production without a token issuer, before any pool
    # Opened without waiting: the API starts (and answers 503) while PostgreSQL is away.
    # `check` hands out only a live connection: after PostgreSQL restarts, the first
    # requests find the idle ones broken, and the pool replaces them instead of failing.
    pool = ConnectionPool(
        settings.pg_conninfo,
        min_size=1,
        max_size=settings.api_db_connections,
        open=True,
        kwargs={"autocommit": True},
        check=ConnectionPool.check_connection,
        timeout=settings.api_db_wait_seconds,
        name="ledger-api",
    )
    books = Books(pool, settings.api_db_wait_seconds, settings.api_retry_after_seconds)
    app.state.registries = Registries(
        settings=settings,
        books=books,
        regions=load_regions(),
        methodologies={(m.id, m.version): m for m in load_methodologies(settings.methodology_dir)},
    )
    try:
        yield
    finally:
        pool.close()


class CountRequests:
    """Counts and times each request by route (a plain ASGI middleware: FastAPI's
    `@app.middleware("http")` runs each request through extra tasks and streams,
    a cost every request of a loaded API pays)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500  # 500 unless an answer starts

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # The route's template (as documented, without convertors), never the path:
            # subjects and regions are unbounded.
            route = getattr(scope.get("route"), "path_format", "unmatched")
            API_REQUESTS.labels(route, scope["method"], str(status)).inc()
            API_REQUEST_SECONDS.labels(route).observe(time.perf_counter() - started)


def create_app() -> FastAPI:
    app = FastAPI(
        title="Carbon inclusion ledger",
        version=__version__,
        openapi_url="/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=_operation_id,
        lifespan=lifespan,
        dependencies=[Depends(refuse_control_characters)],
    )
    app.add_middleware(CountRequests)
    with_access_log(app)
    answer_with_problems(app)
    app.add_exception_handler(BooksUnavailable, books_unavailable)
    for area in (health, methodologies, registry):
        app.include_router(area.router, responses=PUBLIC_RESPONSES)
    for area in (ledgers, employers, families, consents, claims, statistics, partners):
        app.include_router(area.router, responses=PROTECTED_RESPONSES)
    serve_docs(app)
    serve_portal(app)
    with_problem_schema(app)
    _refuse_undeclared(app)
    return app


def _refuse_undeclared(app: FastAPI) -> None:
    """Every route is public or asks for a token (runtime/bearer.py): never open by omission."""
    missing = undeclared_routes(app)
    if missing:
        raise RuntimeError(f"routes declare neither public nor a principal: {missing}")
