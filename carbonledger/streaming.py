"""The faust side shared by the stream processors: app factory, batching, endpoints.

Each stage reads raw bytes and decodes them itself (orjson/pydantic), so a poison
record is a dead letter, never a crashed codec. Each batch's outputs are awaited
until the broker has them before the batch is acknowledged: at-least-once
delivery, made exactly-once in effect by the deterministic ids downstream.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from collections.abc import Awaitable, Iterator
from datetime import UTC, datetime
from typing import Any

import faust
from faust.web import Request, Response, View

from carbonledger.contracts import ids
from carbonledger.contracts.catalogue import Reason
from carbonledger.contracts.metrics import exposition
from carbonledger.contracts.records import DeadLetter, Origin
from carbonledger.contracts.settings import Settings

log = logging.getLogger(__name__)

BATCH_MAX = int(os.environ.get("CARBON_BATCH_MAX", "500"))
BATCH_WAIT_SECONDS = float(os.environ.get("CARBON_BATCH_WAIT_SECONDS", "0.05"))
RAW: dict[str, Any] = {"key_type": bytes, "value_type": bytes,
                       "key_serializer": "raw", "value_serializer": "raw"}


def worker_id() -> int:
    """This process's index within its consumer group (one datadir and port each)."""
    return int(os.environ.get("CARBON_WORKER_ID", "0"))


def make_app(app_id: str, base_port: int, settings: Settings, *, store: str = "memory://") -> faust.App:
    wid = worker_id()
    datadir = settings.run_dir / "faust" / app_id / str(wid)
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id,
        broker=f"kafka://{settings.bootstrap_servers}",
        store=store,
        datadir=str(datadir),
        web_host="127.0.0.1",
        web_port=int(os.environ.get("CARBON_WEB_PORT", base_port + wid)),
        web_enabled=True,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_session_timeout=10,
        broker_heartbeat_interval=3,
        broker_commit_interval=1.0,
        stream_wait_empty=False,
        autodiscover=False,
    )
    _add_endpoints(app)
    return app


def _add_endpoints(app: faust.App) -> None:
    @app.page("/metrics")
    async def metrics(web: View, request: Request) -> Response:
        body, content_type = exposition()
        return web.bytes(body, content_type=content_type)

    @app.page("/healthz")
    async def healthz(web: View, request: Request) -> Response:
        return web.json({"status": "alive"})

    @app.page("/readyz")
    async def readyz(web: View, request: Request) -> Response:
        # Ready once started, not rebalancing, and owning partitions to work on.
        ready = app.started and not app.rebalancing and bool(app.consumer.assignment())
        return web.json({"ready": bool(ready)}, status=200 if ready else 503)


def each_current(stream: Any, events: list[Any]) -> Iterator[Any]:
    """Yield a batch's events, making each the stream's current event in turn.

    faust tables write to the partition of the current event (local store and
    changelog alike); `take_events` leaves none set, so a table written while a
    batch is processed must have each event made current, as faust's own
    per-event iteration does.
    """
    for event in events:
        stream._set_current_event(event)
        yield event


async def delivered(futures: list[Awaitable[Any]]) -> None:
    """Wait until the broker acknowledged every send of a batch."""
    if futures:
        await asyncio.gather(*futures)


def now_utc() -> datetime:
    return datetime.now(UTC)


def origin_of(message: Any) -> Origin:
    return Origin(topic=message.topic, partition=message.partition, offset=message.offset)


def stage_dead_letter(stage: str, reason: Reason, message: str, record: Any) -> DeadLetter:
    """A dead letter for a record an internal stage could not process."""
    origin = origin_of(record)
    return DeadLetter(
        dead_letter_id=ids.dead_letter_id(origin.topic, origin.partition, origin.offset),
        stage=stage, reason=reason.value, message=message[:2000], partner=None, origin=origin,
        key_b64=base64.b64encode(record.key).decode() if record.key is not None else None,
        payload_b64=base64.b64encode(record.value or b"").decode(), received_at=now_utc(),
    )
