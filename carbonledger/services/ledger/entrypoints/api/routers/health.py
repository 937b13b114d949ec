"""Liveness, readiness and the Prometheus exposition (runtime/web.py): the API is
ready when the books can be read."""

from __future__ import annotations

from carbonledger.runtime.web import health_router
from carbonledger.services.ledger.adapters import views
from carbonledger.services.ledger.entrypoints.api.deps import BooksDep, BooksUnavailable


def books_readable(books: BooksDep) -> dict[str, bool]:
    """Ready when the books can be read now; not ready (503) while PostgreSQL is away."""
    try:
        with books.reading() as conn:
            views.totals(conn)
    except BooksUnavailable:
        return {"ready": False}
    return {"ready": True}


router = health_router(books_readable, documented=True, tags=["health"])
