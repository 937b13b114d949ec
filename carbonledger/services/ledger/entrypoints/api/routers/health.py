"""Liveness, readiness and the Prometheus exposition."""

from __future__ import annotations

from fastapi import APIRouter, Response

from carbonledger.contracts.metrics import exposition
from carbonledger.services.ledger.adapters import views
from carbonledger.services.ledger.entrypoints.api.deps import Connection

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/readyz")
def readyz(conn: Connection) -> dict[str, bool]:
    views.totals(conn)  # ready when the books can be read
    return {"ready": True}


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    body, content_type = exposition()
    return Response(body, media_type=content_type)
