"""The gateway's use case: a partner's signed batch of events admitted event by event,
and the accepted ones handed to a `Sender` before the answer. No HTTP and no Kafka
here: the entrypoint (entrypoints/gateway.py) wires it to FastAPI and a producer."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Literal, Protocol

from pydantic import BaseModel

from carbonledger.contracts import topics
from carbonledger.contracts.bounds import MAX_ID_LENGTH, text_fault
from carbonledger.contracts.catalogue import Reason, Rejection
from carbonledger.contracts.envelope import envelope_attribute
from carbonledger.contracts.partners import PartnerRegistry
from carbonledger.contracts.records import Origin, ValidatedBehaviour
from carbonledger.services.ingest.config import IngestSettings
from carbonledger.services.ingest.domain.admission import validate_event
from carbonledger.services.ingest.domain.gateway import ReplayGuard, split_batch
from carbonledger.services.ingest.metrics import GATEWAY_EVENTS

# Batches being sent to the broker at once by one worker. kafka-python's send blocks
# until the broker acknowledges, so it runs in these threads, never on the event loop
# (where one slow broker would stall every request of the worker); further batches
# wait their turn without holding the loop.
SENDING_THREADS = 8

log = logging.getLogger(__name__)


class Sender(Protocol):
    """Puts records on a topic; returns once the broker has every one of them."""

    def send_all(self, topic: str, records: list[bytes]) -> None: ...


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

    def check_headers(self, partner_id: str, timestamp: str, signature: str) -> None:
        """What the headers alone can refuse, before the body is read (Unauthorised)."""
        self.replays.check_headers(self._secret(partner_id), timestamp, signature, time.time())

    def authenticate(self, partner_id: str, timestamp: str, signature: str, body: bytes) -> None:
        self.replays.check(self._secret(partner_id), timestamp, signature, body, time.time())

    def _secret(self, partner_id: str) -> bytes | None:
        partner = self.registry.get(partner_id)
        production = self.settings.environment == "production"
        return partner.signing_secret(os.environ, production) if partner else None

    async def accept(self, partner_id: str, body: bytes) -> BatchResult:
        """Each event answered; the accepted ones on the partner's topic before the answer."""
        answer, good = self.admit(partner_id, body)
        if good:
            await self.send(topics.partner_topic(partner_id), good)
        return answer

    async def check(self, partner_id: str, body: bytes) -> BatchResult:
        """The answer `accept` would give, publishing nothing (and counting nothing
        in the gateway's event metrics: nothing was sent)."""
        answer, _ = self.admit(partner_id, body, counted=False)
        return answer

    def admit(
        self, partner_id: str, body: bytes, counted: bool = True
    ) -> tuple[BatchResult, list[bytes]]:
        """The answer for each event, and the exact bytes of those accepted."""
        events = split_batch(body, self.settings.gateway_max_events)
        now, results, good = datetime.now(UTC), [], []
        for index, raw in enumerate(events):
            outcome = self._admit_one(partner_id, raw, index, now)
            if isinstance(outcome, Rejection):
                results.append(
                    EventResult(
                        index=index,
                        id=_id_of(raw),
                        status="rejected",
                        reason=outcome.reason.value,
                        message=outcome.message,
                    )
                )
                if counted:
                    GATEWAY_EVENTS.labels(partner_id, outcome.reason.value).inc()
                continue
            good.append(raw)
            results.append(EventResult(index=index, id=outcome.event.id, status="accepted"))
            if counted:
                GATEWAY_EVENTS.labels(partner_id, "accepted").inc()
        answer = BatchResult(accepted=len(good), rejected=len(results) - len(good), results=results)
        return answer, good

    def _admit_one(
        self, partner_id: str, raw: bytes, index: int, now: datetime
    ) -> ValidatedBehaviour | Rejection:
        """The event validated, or why not. A failure of the check itself (a bug) is
        that event's `processing_error`, as over Kafka, never a 500 for the batch."""
        try:
            return validate_event(
                raw,
                partner_id=partner_id,
                registry=self.registry,
                origin=Origin(topic="http", partition=0, offset=index),
                now=now,
                max_bytes=self.settings.ingest_max_record_bytes,
            )
        except Rejection as no:
            return no
        except Exception as exc:
            log.exception("admission failed for event %d from %s", index, partner_id)
            return Rejection(Reason.PROCESSING_ERROR, f"the event could not be checked: {exc!r}")

    async def send(self, topic: str, records: list[bytes]) -> None:
        """Returns once the broker has every record; the event loop serves others meanwhile."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.sending, self.sender.send_all, topic, records)

    def close(self) -> None:
        """Waits for the batches being sent."""
        self.sending.shutdown(wait=True)


def _id_of(raw: bytes) -> str | None:
    """The id a refused event claims, echoed only if it is printable and in bounds."""
    found = envelope_attribute(raw, "id")
    if found is None or len(found) > MAX_ID_LENGTH or text_fault(found) is not None:
        return None
    return found
