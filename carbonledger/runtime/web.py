"""Liveness, readiness and the Prometheus exposition: one source of the answers, two servers.

The FastAPI apps (the HTTP gateway, the ledger API) include `health_router`; the faust
stages keep faust's own web server (runtime/stage.py), because faust runs it in the
worker, but answer from the same functions: `alive` for /healthz, `metrics_answer`
for /metrics and `readiness_status` for the /readyz status of a readiness body.

Both servers answer /readyz with its body, 200 when it is ready and 503 when not, so a
balancer or `carbonledger up` waits; faust's /metrics content type is the one aiohttp
accepts (runtime/stage.py).
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at
# runtime, and /readyz's names `readiness`, a local of `health_router`.
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Annotated, Any, get_type_hints

from fastapi import APIRouter, Depends, FastAPI, Response
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carbonledger.contracts.metrics import exposition
from carbonledger.runtime.bearer import public

# The /readyz body of a FastAPI app, called as a dependency (it may take the request or
# a connection); its "ready" says whether to send the process work.
Readiness = Callable[..., Mapping[str, Any]]


def alive() -> dict[str, str]:
    """The /healthz body: the process answers, so it is alive."""
    return {"status": "alive"}


def metrics_answer() -> tuple[bytes, str]:
    """The /metrics body, this process's metrics in Prometheus text format, and its
    content type."""
    return exposition()


def readiness_status(body: Mapping[str, Any]) -> int:
    """The status of a /readyz answer: 503 tells a balancer to wait."""
    return 200 if body["ready"] else 503


def health_router(
    readiness: Readiness, *, documented: bool, tags: list[str] | None = None
) -> APIRouter:
    """/healthz, /readyz (the body `readiness` returns) and /metrics for a FastAPI app.

    `readiness` is called as a FastAPI dependency, so it may ask for the request or a
    connection; its return annotation is the /readyz response model. `documented` puts
    /healthz and /readyz in the app's OpenAPI (/metrics never is)."""
    # Public (DOMAIN §14): probes and Prometheus carry no token.
    router = APIRouter(tags=list(tags or []), dependencies=[Depends(public)])
    ready_model = get_type_hints(readiness)["return"]

    @router.get("/healthz", include_in_schema=documented)
    def healthz() -> dict[str, str]:
        return alive()

    @router.get("/readyz", include_in_schema=documented, response_model=ready_model)
    def readyz(
        body: Annotated[Mapping[str, Any], Depends(readiness)], response: Response
    ) -> Mapping[str, Any]:
        response.status_code = readiness_status(body)
        return body

    @router.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        body, content_type = metrics_answer()
        return Response(body, media_type=content_type)

    return router


# An id a client sends is echoed only if it is short and plain; otherwise one is made.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
REQUEST_ID_HEADER = "X-Request-Id"
access_log = logging.getLogger("carbonledger.access")


def request_id_of(sent: str | None) -> str:
    return sent if sent and _REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex


def with_access_log(app: FastAPI) -> None:
    """Every request answered with an `X-Request-Id` (the client's, or a new one) and
    logged in one line: request id, method, path, status, seconds, and the partner
    a gateway request names (runtime/logs.py)."""
    app.add_middleware(AccessLog)


class AccessLog:
    """Plain ASGI, not BaseHTTPMiddleware: the gateway streams request bodies (and refuses
    an oversized one while it streams in), which must pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = request_id_of(headers.get(REQUEST_ID_HEADER))
        scope.setdefault("state", {})["request_id"] = request_id
        status, started = 500, time.perf_counter()

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            _log_access(scope, headers, request_id, status, time.perf_counter() - started)


def _log_access(
    scope: Scope, headers: Headers, request_id: str, status: int, seconds: float
) -> None:
    client = scope.get("client")
    access_log.info(
        "%s %s %d",
        scope["method"],
        scope["path"],
        status,
        extra={
            "request_id": request_id,
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "seconds": round(seconds, 6),
            "partner": _partner(headers.get("X-Carbon-Partner")),
            "client": client[0] if client else None,
        },
    )


def _partner(sent: str | None) -> str | None:
    return sent if sent and _REQUEST_ID.fullmatch(sent) else None
