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
from collections.abc import Callable, Mapping
from typing import Annotated, Any, get_type_hints

from fastapi import APIRouter, Depends, Response

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
