"""The ledger API application: its routers, request metrics and lifespan."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.routing import APIRoute
from psycopg_pool import ConnectionPool

from carbonledger import __version__
from carbonledger.contracts.methodology_files import load_methodologies
from carbonledger.contracts.regions import load_regions
from carbonledger.services.ledger.config import LedgerSettings
from carbonledger.services.ledger.entrypoints.api.deps import Books, BooksUnavailable, Registries
from carbonledger.services.ledger.entrypoints.api.guards import (
    books_unavailable,
    refuse_control_characters,
)
from carbonledger.services.ledger.entrypoints.api.routers import (
    claims,
    employers,
    health,
    ledgers,
    methodologies,
)
from carbonledger.services.ledger.metrics import API_REQUEST_SECONDS, API_REQUESTS


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = LedgerSettings()
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


async def count_requests(request: Request, call_next: Callable[[Request], Any]) -> Response:
    started = time.perf_counter()
    response: Response = await call_next(request)
    # The route's template, never the path: subjects and regions are unbounded.
    route = getattr(request.scope.get("route"), "path", "unmatched")
    API_REQUESTS.labels(route, request.method, str(response.status_code)).inc()
    API_REQUEST_SECONDS.labels(route).observe(time.perf_counter() - started)
    return response


def create_app() -> FastAPI:
    app = FastAPI(
        title="Carbon inclusion ledger",
        version=__version__,
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        generate_unique_id_function=_operation_id,
        lifespan=lifespan,
        dependencies=[Depends(refuse_control_characters)],
    )
    app.middleware("http")(count_requests)
    app.add_exception_handler(BooksUnavailable, books_unavailable)
    for area in (health, ledgers, employers, claims, methodologies):
        app.include_router(area.router)
    return app
