"""HTTP gateway: `POST /v1/events` for partners without a Kafka producer.

Run: uvicorn carbonledger.services.ingest.entrypoints.gateway:app --port 6075

Each accepted event is produced to the partner's own topic, exactly as a
partner's producer would; ingest then takes it the same way as any other. The
answer is 200 with one result per event, in order, once every accepted event is
on the broker; 401 when the request is not signed by a registered partner.

Importing this module builds no settings, registry or producer: the app's
lifespan does, when uvicorn starts it (the contract docs import it for its OpenAPI).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol

from fastapi import Depends, FastAPI, Header, HTTPException, Request, Response
from pydantic import BaseModel

from carbonledger.contracts import metrics, topics
from carbonledger.contracts.catalogue import Rejection
from carbonledger.contracts.envelope import envelope_attribute
from carbonledger.contracts.partners import PartnerRegistry, load_registry
from carbonledger.contracts.records import Origin
from carbonledger.runtime.producers import Outgoing, producer, send_and_wait
from carbonledger.services.ingest.config import IngestSettings
from carbonledger.services.ingest.domain.admission import validate_event
from carbonledger.services.ingest.domain.gateway import (
    BadBatch,
    ReplayGuard,
    Unauthorised,
    split_batch,
)
from carbonledger.services.ingest.metrics import GATEWAY_EVENTS, GATEWAY_REQUESTS, GATEWAY_SECONDS

# Batches being sent to the broker at once by one worker. kafka-python's send blocks
# until the broker acknowledges, so it runs in these threads, never on the event loop
# (where one slow broker would stall every request of the worker); further batches
# wait their turn without holding the loop.
SENDING_THREADS = 8


class Sender(Protocol):
    def send_all(self, topic: str, records: list[bytes]) -> None: ...


class KafkaSender:
    """Produces and waits for the broker's acknowledgement of every record."""

    def __init__(self, settings: IngestSettings) -> None:
        self.producer = producer(settings)

    def send_all(self, topic: str, records: list[bytes]) -> None:
        send_and_wait(self.producer, [Outgoing(topic, r) for r in records], timeout=30)

    def close(self) -> None:
        self.producer.close()


class EventResult(BaseModel):
    index: int
    id: str | None
    status: Literal["accepted", "rejected"]
    reason: str | None = None
    message: str | None = None


class BatchResult(BaseModel):
    accepted: int
    rejected: int
    results: list[EventResult]


class Gateway:
    def __init__(
        self,
        settings: IngestSettings,
        registry: PartnerRegistry,
        sender: Sender,
        sending_threads: int = SENDING_THREADS,
    ) -> None:
        self.settings, self.registry, self.sender = settings, registry, sender
        self.replays = ReplayGuard(settings.gateway_replay_window_seconds)
        self.sending = ThreadPoolExecutor(sending_threads, thread_name_prefix="gateway-send")

    def authenticate(self, partner_id: str, timestamp: str, signature: str, body: bytes) -> None:
        partner = self.registry.get(partner_id)
        production = self.settings.environment == "production"
        secret = partner.signing_secret(os.environ, production) if partner else None
        self.replays.check(secret, timestamp, signature, body, time.time())

    async def accept(self, partner_id: str, body: bytes) -> BatchResult:
        """Each event answered; the accepted ones on the partner's topic before the answer."""
        answer, good = self.admit(partner_id, body)
        if good:
            await self.send(topics.partner_topic(partner_id), good)
        return answer

    def admit(self, partner_id: str, body: bytes) -> tuple[BatchResult, list[bytes]]:
        """The answer for each event, and the exact bytes of those accepted."""
        events = split_batch(body, self.settings.gateway_max_events)
        now, results, good = datetime.now(UTC), [], []
        for index, raw in enumerate(events):
            origin = Origin(topic="http", partition=0, offset=index)
            try:
                event = validate_event(
                    raw,
                    partner_id=partner_id,
                    registry=self.registry,
                    origin=origin,
                    now=now,
                    max_bytes=self.settings.ingest_max_record_bytes,
                )
            except Rejection as no:
                results.append(
                    EventResult(
                        index=index,
                        id=_id_of(raw),
                        status="rejected",
                        reason=no.reason.value,
                        message=no.message,
                    )
                )
                GATEWAY_EVENTS.labels(partner_id, no.reason.value).inc()
                continue
            good.append(raw)
            results.append(EventResult(index=index, id=event.event.id, status="accepted"))
            GATEWAY_EVENTS.labels(partner_id, "accepted").inc()
        answer = BatchResult(accepted=len(good), rejected=len(results) - len(good), results=results)
        return answer, good

    async def send(self, topic: str, records: list[bytes]) -> None:
        """Returns once the broker has every record; the event loop serves others meanwhile."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.sending, self.sender.send_all, topic, records)

    def close(self) -> None:
        """Waits for the batches being sent."""
        self.sending.shutdown(wait=True)


def _id_of(raw: bytes) -> str | None:
    return envelope_attribute(raw, "id")


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


app = FastAPI(
    title="Carbon inclusion ledger — partner event gateway",
    version="1",
    lifespan=lifespan,
    openapi_url="/v1/openapi.json",
    docs_url="/v1/docs",
)


def gateway(request: Request) -> Gateway:
    found: Gateway = request.app.state.gateway
    return found


@app.post("/v1/events", response_model=BatchResult, tags=["events"])
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
    started = time.perf_counter()
    body = await request.body()
    limit = service.settings.gateway_max_bytes
    if len(body) > limit:
        GATEWAY_REQUESTS.labels("-", "413").inc()
        raise HTTPException(413, f"body over {limit} bytes; send smaller batches")
    try:
        service.authenticate(x_carbon_partner, x_carbon_timestamp, x_carbon_signature, body)
        answer = await service.accept(x_carbon_partner, body)
    except Unauthorised as no:
        GATEWAY_REQUESTS.labels("-", "401").inc()  # an unproven partner id is not a label value
        raise HTTPException(401, str(no)) from None
    except BadBatch as bad:
        GATEWAY_REQUESTS.labels(x_carbon_partner, str(bad.status)).inc()
        raise HTTPException(bad.status, str(bad)) from None
    finally:
        GATEWAY_SECONDS.observe(time.perf_counter() - started)
    GATEWAY_REQUESTS.labels(x_carbon_partner, "200").inc()
    return answer


@app.get("/healthz", include_in_schema=False)
def healthz() -> dict[str, str]:
    return {"status": "alive"}


@app.get("/readyz", include_in_schema=False)
def readyz(request: Request) -> dict[str, Any]:
    return {"ready": hasattr(request.app.state, "gateway")}


@app.get("/metrics", include_in_schema=False)
def metrics_endpoint() -> Response:
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
