"""Ledger HTTP API (read side): the books over HTTP, versioned under /v1.

Run: uvicorn carbonledger.services.ledger.entrypoints.api:app   (`carbonledger up` does)

Importing this package builds nothing but its metric families: `app` is made on
first access (`main.create_app`), and the settings, the connection pool, the
region table and the methodology registry in the app's lifespan.
"""

from __future__ import annotations

from fastapi import FastAPI

from carbonledger.services.ledger.entrypoints.api.main import create_app

__all__ = ["app", "create_app"]


def __getattr__(name: str) -> FastAPI:
    # `app` for uvicorn's module:attribute target, made once on first access.
    if name == "app":
        made = globals()["app"] = create_app()
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
