"""HTTP gateway: `POST /v1/events` for partners without a Kafka producer.

Run: uvicorn carbonledger.services.ingest.entrypoints.gateway:app --port 6075

Each accepted event is produced to the partner's own topic, exactly as a
partner's producer would; ingest then takes it the same way as any other. The
answer is 200 with one result per event, in order, once every accepted event is
on the broker; 401 when the request is not signed by a registered partner; 413
when the body is over `CARBON_GATEWAY_MAX_BYTES`, refused while it streams in.
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

from fastapi import Depends, FastAPI, Header, HTTPException, Request

from carbonledger.contracts.partners import load_registry
from carbonledger.runtime.bearer import answer_with_problems
from carbonledger.runtime.docs_pages import serve_docs
from carbonledger.runtime.producers import Outgoing, producer, send_and_wait
from carbonledger.runtime.web import health_router
from carbonledger.services.ingest.config import IngestSettings
from carbonledger.services.ingest.domain.gateway import BadBatch, Unauthorised
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
        send_and_wait(self.producer, [Outgoing(topic, r) for r in records], timeout=30)

    def close(self) -> None:
        self.producer.close()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = IngestSettings()
    sender = KafkaSender(settings)
    service = Gateway(settings, load_registry(settings.partners_file), sender)
    app.state.gateway = service
    try:
        yield
    finally:
        service.close()  # the batches in flight reach the broker before its producer closes
        sender.close()


def gateway(request: Request) -> Gateway:
    found: Gateway = request.app.state.gateway
    return found


async def post_events(
    request: Request,
    service: Annotated[Gateway, Depends(gateway)],
    x_carbon_partner: Annotated[str, Header(description="your partner id")],
    x_carbon_timestamp: Annotated[str, Header(description="Unix seconds when signed")],
    x_carbon_signature: Annotated[
        str, Header(description="hex HMAC-SHA256 of '<timestamp>.<body>' with your secret")
    ],
) -> BatchResult:
    """One CloudEvents event (a JSON object) or a batch (a JSON array, at most
    `CARBON_GATEWAY_MAX_EVENTS`); each is answered accepted or rejected with its reason."""
    return await _answered(
        request, service, (x_carbon_partner, x_carbon_timestamp, x_carbon_signature), service.accept
    )


async def dry_run_events(
    request: Request,
    service: Annotated[Gateway, Depends(gateway)],
    x_carbon_partner: Annotated[str, Header(description="your partner id")],
    x_carbon_timestamp: Annotated[str, Header(description="Unix seconds when signed")],
    x_carbon_signature: Annotated[
        str, Header(description="hex HMAC-SHA256 of '<timestamp>.<body>' with your secret")
    ],
) -> BatchResult:
    """What `POST /v1/events` would answer for this body, event by event (accepted, or
    rejected with ingest's reason and message), without publishing anything: for a
    partner to check its events before sending them. Signed the same way."""
    return await _answered(
        request, service, (x_carbon_partner, x_carbon_timestamp, x_carbon_signature), service.check
    )


async def _answered(
    request: Request,
    service: Gateway,
    headers: tuple[str, str, str],
    answer_for: Callable[[str, bytes], Awaitable[BatchResult]],
) -> BatchResult:
    """The signed body answered by `answer_for` (accept, or check without publishing)."""
    x_carbon_partner, x_carbon_timestamp, x_carbon_signature = headers
    started = time.perf_counter()
    try:
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
    app.post("/v1/events", response_model=BatchResult, tags=["events"])(post_events)
    app.post("/v1/events/dry-run", response_model=BatchResult, tags=["events"])(dry_run_events)
    app.include_router(health_router(gateway_ready, documented=False))
    return app


def __getattr__(name: str) -> FastAPI:
    # `app` for uvicorn's module:attribute target, made once on first access.
    if name == "app":
        made = globals()["app"] = create_app()
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
