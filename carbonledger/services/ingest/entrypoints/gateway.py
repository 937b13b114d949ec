"""HTTP gateway: `POST /v1/events` for partners without a Kafka producer.

Run: uvicorn carbonledger.services.ingest.entrypoints.gateway:app --port 6075

Each accepted event is produced to the partner's own topic, exactly as a
partner's producer would; ingest then takes it the same way as any other. The
answer is 200 with one result per event, in order, once every accepted event is
on the broker; 401 when the request is not signed by a registered partner (a
missing header included); 413 when the body is over `CARBON_GATEWAY_MAX_BYTES`,
refused while it streams in; 503 when the broker does not take the events (retry).
The three signature headers are the OpenAPI's security schemes, not parameters, so
that a generated client signs the exact bytes it sends (an httpx `Auth`, as the
partner SDK's `GatewaySignature`).
The use case is the ingest service's `Gateway` (gateway_service.py); this module
only wires it to HTTP and to a producer.

Importing this module builds nothing: `app` is made on first access (`create_app`),
and the settings, registry and producer in the app's lifespan, when uvicorn starts
it (the contract docs import it for its OpenAPI).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import APIKeyHeader
from kafka.errors import KafkaError

from carbonledger.contracts.partners import load_registry
from carbonledger.contracts.schemas import cloud_event_schema, gateway_request_body
from carbonledger.runtime import logs
from carbonledger.runtime.bearer import PROBLEM_SCHEMA, PROBLEM_TYPE, answer_with_problems
from carbonledger.runtime.docs_pages import serve_docs
from carbonledger.runtime.producers import Outgoing, producer, send_and_wait
from carbonledger.runtime.web import health_router, with_access_log
from carbonledger.services.ingest.config import IngestSettings
from carbonledger.services.ingest.domain.gateway import BadBatch, BrokerUnavailable, Unauthorised
from carbonledger.services.ingest.entrypoints.body_limit import (
    BodyTooLarge,
    read_capped,
    refuse_declared_length,
)
from carbonledger.services.ingest.gateway_service import BatchResult, Gateway
from carbonledger.services.ingest.metrics import GATEWAY_REQUESTS, GATEWAY_SECONDS


class KafkaSender:
    """Produces and waits for the broker's acknowledgement of every record."""

    def __init__(self, settings: IngestSettings) -> None:
        self.producer = producer(settings)

    def send_all(self, topic: str, records: list[bytes]) -> None:
        try:
            send_and_wait(self.producer, [Outgoing(topic, r) for r in records], timeout=30)
        except KafkaError as exc:
            raise BrokerUnavailable(f"the broker did not take the events: {exc}") from exc

    def close(self) -> None:
        self.producer.close()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = IngestSettings()
    logs.configure(settings)
    sender = KafkaSender(settings)
    service = Gateway(settings, load_registry(settings.partners_file), sender)
    app.state.gateway = service
    try:
        yield
    finally:
        service.close()  # the batches in flight reach the broker before its producer closes
        sender.close()


EVENTS, DRY_RUN = "/v1/events", "/v1/events/dry-run"


def gateway(request: Request) -> Gateway:
    found: Gateway = request.app.state.gateway
    return found


# auto_error=False: a missing header is this API's 401, not FastAPI's 403/422.
PARTNER = APIKeyHeader(
    name="X-Carbon-Partner",
    scheme_name="partnerId",
    description="your partner id",
    auto_error=False,
)
TIMESTAMP = APIKeyHeader(
    name="X-Carbon-Timestamp",
    scheme_name="timestamp",
    description="Unix seconds when signed; refused outside the replay window",
    auto_error=False,
)
SIGNATURE = APIKeyHeader(
    name="X-Carbon-Signature",
    scheme_name="signature",
    description="hex HMAC-SHA256 of '<X-Carbon-Timestamp>.<raw body>' with your secret; "
    "each signature is accepted once",
    auto_error=False,
)


ANSWERED = {
    "accepted": 1,
    "rejected": 1,
    "results": [
        {"index": 0, "id": "shenzhen-metro-000183", "status": "accepted"},
        {
            "index": 1,
            "id": "shenzhen-metro-000184",
            "status": "rejected",
            "reason": "out_of_bounds",
            "message": "data.distance_km: 900 is over the maximum 200",
        },
    ],
}


def _problem(description: str) -> dict[str, Any]:
    # Errors answer as RFC 9457 problems (runtime/bearer.py's answer_with_problems).
    return {
        "description": description,
        "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Every event answered, in order",
        "content": {"application/json": {"example": ANSWERED}},
    },
    400: _problem("The body is not one JSON event or an array of them"),
    401: _problem(
        "Not signed by a registered partner (or a header missing, the timestamp outside "
        "the window, the signature used already)"
    ),
    413: _problem("The body or the batch is over the gateway's limit"),
    503: _problem(
        "The broker did not take the events; nothing was accepted for sure: send the "
        "batch again (same ids: no double credit)"
    ),
}


def _required(value: str | None, header: str) -> str:
    if not value:
        raise Unauthorised(f"the {header} header is missing")
    return value


async def post_events(
    request: Request,
    service: Annotated[Gateway, Depends(gateway)],
    partner: Annotated[str | None, Depends(PARTNER)],
    timestamp: Annotated[str | None, Depends(TIMESTAMP)],
    signature: Annotated[str | None, Depends(SIGNATURE)],
) -> BatchResult:
    """One CloudEvents event (a JSON object) or a batch (a JSON array, at most
    `CARBON_GATEWAY_MAX_EVENTS`); each is answered accepted or rejected with its reason,
    once the accepted ones are on the broker."""
    return await _answered(request, service, (partner, timestamp, signature), service.accept)


async def dry_run_events(
    request: Request,
    service: Annotated[Gateway, Depends(gateway)],
    partner: Annotated[str | None, Depends(PARTNER)],
    timestamp: Annotated[str | None, Depends(TIMESTAMP)],
    signature: Annotated[str | None, Depends(SIGNATURE)],
) -> BatchResult:
    """What `POST /v1/events` would answer for this body, event by event (accepted, or
    rejected with ingest's reason and message), without publishing anything: for a
    partner to check its events before sending them. Signed the same way."""
    return await _answered(request, service, (partner, timestamp, signature), service.check)


async def _answered(
    request: Request,
    service: Gateway,
    headers: tuple[str | None, str | None, str | None],
    answer_for: Callable[[str, bytes], Awaitable[BatchResult]],
) -> BatchResult:
    """The signed body answered by `answer_for` (accept, or check without publishing)."""
    partner, timestamp, signature = headers
    started = time.perf_counter()
    x_carbon_partner = partner or "-"
    try:
        x_carbon_partner = _required(partner, "X-Carbon-Partner")
        x_carbon_timestamp = _required(timestamp, "X-Carbon-Timestamp")
        x_carbon_signature = _required(signature, "X-Carbon-Signature")
        # Headers first: an oversized or unproven request is refused before its body
        # is read, and a body is never held past the limit.
        body = await _signed_body(
            request, service, x_carbon_partner, x_carbon_timestamp, x_carbon_signature
        )
        service.authenticate(x_carbon_partner, x_carbon_timestamp, x_carbon_signature, body)
        answer = await answer_for(x_carbon_partner, body)
    except Unauthorised as no:
        GATEWAY_REQUESTS.labels("-", "401").inc()  # an unproven partner id is not a label value
        raise HTTPException(401, str(no)) from None
    except BodyTooLarge as big:
        GATEWAY_REQUESTS.labels("-", "413").inc()
        raise HTTPException(413, str(big)) from None
    except BadBatch as bad:
        GATEWAY_REQUESTS.labels(x_carbon_partner, str(bad.status)).inc()
        raise HTTPException(bad.status, str(bad)) from None
    except BrokerUnavailable as down:
        GATEWAY_REQUESTS.labels(x_carbon_partner, "503").inc()
        raise HTTPException(503, str(down), headers={"Retry-After": "5"}) from None
    finally:
        GATEWAY_SECONDS.observe(time.perf_counter() - started)
    GATEWAY_REQUESTS.labels(x_carbon_partner, "200").inc()
    return answer


async def _signed_body(
    request: Request, service: Gateway, partner: str, timestamp: str, signature: str
) -> bytes:
    """The body, once the headers alone could not refuse it (413, then 401)."""
    limit = service.settings.gateway_max_bytes
    refuse_declared_length(request.headers.get("content-length"), limit)
    service.check_headers(partner, timestamp, signature)
    return await read_capped(request.stream(), limit)


def gateway_ready(request: Request) -> dict[str, Any]:
    return {"ready": hasattr(request.app.state, "gateway")}


def create_app() -> FastAPI:
    app = FastAPI(
        title="Carbon inclusion ledger — partner event gateway",
        version="1",
        lifespan=lifespan,
        openapi_url="/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    # Errors as RFC 9457 problems; Swagger UI and ReDoc from the package, not a CDN.
    answer_with_problems(app)
    serve_docs(app)
    body = {
        "requestBody": gateway_request_body(
            IngestSettings.model_fields["gateway_max_events"].default
        )
    }
    for path, route, operation in (
        (EVENTS, post_events, "post_events"),
        (DRY_RUN, dry_run_events, "dry_run_events"),
    ):
        app.post(
            path,
            response_model=BatchResult,
            tags=["events"],
            responses=RESPONSES,
            operation_id=operation,
            openapi_extra=body,
        )(route)
    app.include_router(health_router(gateway_ready, documented=False))
    with_access_log(app)
    app.openapi = lambda: _with_cloud_event(app)  # type: ignore[method-assign]
    return app


def _with_cloud_event(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the CloudEvent schema the request body refers to, and the
    three signature headers as one security requirement (all of them), where FastAPI
    lists each alone (any of them)."""
    if app.openapi_schema is None:
        doc = FastAPI.openapi(app)
        doc["components"]["schemas"]["CloudEvent"] = cloud_event_schema()
        doc["components"]["schemas"]["Problem"] = PROBLEM_SCHEMA
        signed: dict[str, list[str]] = {s.scheme_name: [] for s in (PARTNER, TIMESTAMP, SIGNATURE)}
        for path in (EVENTS, DRY_RUN):
            doc["paths"][path]["post"]["security"] = [signed]
        app.openapi_schema = doc
    return app.openapi_schema


def __getattr__(name: str) -> FastAPI:
    # `app` for uvicorn's module:attribute target, made once on first access.
    if name == "app":
        made = globals()["app"] = create_app()
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
