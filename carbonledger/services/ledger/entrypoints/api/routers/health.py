"""Liveness, readiness and the Prometheus exposition (runtime/web.py): the API is
ready when the books can be read."""

from __future__ import annotations

from carbonledger.runtime.web import health_router
from carbonledger.services.ledger.adapters import views
from carbonledger.services.ledger.entrypoints.api.deps import Connection


def books_readable(conn: Connection) -> dict[str, bool]:
    views.totals(conn)  # raises when the books cannot be read
    return {"ready": True}


router = health_router(books_readable, documented=True, tags=["health"])
