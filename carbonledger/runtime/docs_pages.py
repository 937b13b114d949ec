"""Swagger UI and ReDoc for the platform's APIs, served from the installed package
(fastapi-offline ships the assets): the pages work with no network beyond the API
itself, where FastAPI's defaults load them from a CDN and show a blank page offline.
"""

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from carbonledger.runtime.bearer import public

ASSETS = Path(fastapi_offline.__file__).parent / "static"


def serve_docs(app: FastAPI, prefix: str = "/v1") -> None:
    """`{prefix}/docs` (Swagger UI) and `{prefix}/redoc`, their scripts and styles
    under `{prefix}/docs-assets`; the app is made with docs_url=None, redoc_url=None."""
    assets = f"{prefix}/docs-assets"
    app.mount(assets, StaticFiles(directory=ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or f"{prefix}/openapi.json"
    router = APIRouter(include_in_schema=False, dependencies=[Depends(public)])

    @router.get(f"{prefix}/docs")
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} — Swagger UI",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
        )

    @router.get(f"{prefix}/redoc")
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} — ReDoc",
            redoc_js_url=f"{assets}/redoc.standalone.js",
            redoc_favicon_url=f"{assets}/favicon.png",
            with_google_fonts=False,
        )

    app.include_router(router)
