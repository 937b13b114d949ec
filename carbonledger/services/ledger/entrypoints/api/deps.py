"""Typed dependencies of the ledger API's routes: what the lifespan built, and the
books to read through the connection pool.

Why the routes take their connection themselves (`with books.reading() as conn`)
rather than from a `yield` dependency: FastAPI runs a sync dependency's setup and the
route body in two separate calls on anyio's thread pool. Under load every thread
was a dependency blocked waiting for a connection, while the requests holding the
connections waited for a thread to run their body: no request could finish (the
API stopped answering at 49 clients). Taken inside the route's own thread, a
connection is only ever held by a thread that is using it, and the wait for one
is bounded: past it the answer is 503 with Retry-After, never a hang.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

import psycopg
from fastapi import Depends, Query, Request
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from carbonledger.contracts.methodology import Methodology
from carbonledger.contracts.regions import RegionTable
from carbonledger.services.ledger.config import LedgerSettings

MethodologyKey = tuple[str, str]  # (id, version)


class BooksUnavailable(Exception):
    """The books cannot be read now (PostgreSQL away, or every connection busy past
    the wait): HTTP 503 with Retry-After, for the client to try again."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Books:
    """The ledger's tables, read through the pool with a bounded wait."""

    pool: ConnectionPool
    wait_seconds: float
    retry_after: int

    @contextmanager
    def reading(self) -> Iterator[psycopg.Connection]:
        """A pooled autocommit connection (checked alive as it is handed out), for the
        views (adapters/views.py). Raises `BooksUnavailable` when none comes within
        the wait, or when the database fails under the reads."""
        try:
            with self.pool.connection(timeout=self.wait_seconds) as conn:
                yield conn
        except PoolTimeout:
            raise BooksUnavailable(
                f"no database connection within {self.wait_seconds:g} s", self.retry_after
            ) from None
        except (PoolClosed, psycopg.OperationalError, psycopg.InterfaceError):
            # PoolClosed: a request still arriving as the API shuts down.
            # The pool drops a broken connection as it comes back and reconnects.
            raise BooksUnavailable("the books cannot be read now", self.retry_after) from None


@dataclass(frozen=True)
class Registries:
    """What the app's lifespan builds once and every request shares."""

    settings: LedgerSettings
    books: Books
    regions: RegionTable
    methodologies: Mapping[MethodologyKey, Methodology]


# The dependencies below are `async def` on purpose: they only look things up, and a
# sync dependency would take a trip through the thread pool for each.
async def registries(request: Request) -> Registries:
    built: Registries = request.app.state.registries
    return built


RegistriesDep = Annotated[Registries, Depends(registries)]


async def settings(built: RegistriesDep) -> LedgerSettings:
    return built.settings


async def books(built: RegistriesDep) -> Books:
    return built.books


async def regions(built: RegistriesDep) -> RegionTable:
    return built.regions


async def methodologies(built: RegistriesDep) -> Mapping[MethodologyKey, Methodology]:
    return built.methodologies


SettingsDep = Annotated[LedgerSettings, Depends(settings)]
BooksDep = Annotated[Books, Depends(books)]
Regions = Annotated[RegionTable, Depends(regions)]
Methodologies = Annotated[Mapping[MethodologyKey, Methodology], Depends(methodologies)]

Limit = Annotated[int, Query(ge=1, le=500)]
Before = Annotated[int | None, Query(ge=1, description="page: postings with seq below this")]
