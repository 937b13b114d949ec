"""The faust side shared by the stream processors: app factory, batching, endpoints.

Each stage reads raw bytes and decodes them itself (pydantic), so a poison record
is a dead letter, never a crashed codec. Stages iterate event by event: faust
acknowledges an event once the agent asks for the next one, and flushes the
producer before it commits acknowledged offsets, so every output of an event
reaches the broker before its offset is committed: at-least-once delivery, made
exactly-once in effect by the deterministic ids downstream.

(`take_events` batching was tried and lost records when a worker was killed:
it runs a second task over the stream's shared state. Batching belongs to the
performance work, behind the same kill tests.)
"""

from __future__ import annotations

import base64
import logging
import os
from datetime import UTC, datetime
from typing import Any

import faust
from faust.web import Request, Response, View
from mode import CrashingSupervisor

from carbonledger.contracts import ids, topics
from carbonledger.contracts.catalogue import Reason
from carbonledger.contracts.metrics import exposition
from carbonledger.contracts.records import DeadLetter, Origin
from carbonledger.contracts.settings import Settings

log = logging.getLogger(__name__)

RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


def worker_id() -> int:
    """This process's index within its consumer group (one datadir and port each)."""
    return int(os.environ.get("CARBON_WORKER_ID", "0"))


def make_app(
    app_id: str, base_port: int, settings: Settings, *, store: str = "memory://"
) -> faust.App:
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
        # A dead letter carries the original record (base64), up to the partner
        # topics' limit, so the producer must take what the rejected topic takes.
        producer_max_request_size=topics.REJECTED_MAX_BYTES,
        # An agent that raises must take the worker down so it restarts from its
        # committed offsets. Restarting only the agent (faust's default) resumes
        # after the unacknowledged batch and silently skips it.
        agent_supervisor=CrashingSupervisor,
        autodiscover=False,
    )
    _add_endpoints(app)
    return app


def _add_endpoints(app: faust.App) -> None:
    @app.page("/metrics")
    async def metrics(web: View, request: Request) -> Response:
        body, content_type = exposition()
        # aiohttp refuses a charset inside content_type; the exposition is ASCII/UTF-8.
        return web.bytes(body, content_type=content_type.split(";")[0] + "; version=0.0.4")

    @app.page("/healthz")
    async def healthz(web: View, request: Request) -> Response:
        return web.json({"status": "alive"})

    @app.page("/readyz")
    async def readyz(web: View, request: Request) -> Response:
        # Ready once started, not rebalancing, and owning partitions to work on.
        ready = app.started and not app.rebalancing and bool(app.consumer.assignment())
        return web.json({"ready": bool(ready)}, status=200 if ready else 503)


def now_utc() -> datetime:
    return datetime.now(UTC)


def origin_of(message: Any) -> Origin:
    return Origin(topic=message.topic, partition=message.partition, offset=message.offset)


def stage_dead_letter(stage: str, reason: Reason, message: str, record: Any) -> DeadLetter:
    """A dead letter for a record an internal stage could not process."""
    origin = origin_of(record)
    return DeadLetter(
        dead_letter_id=ids.dead_letter_id(origin.topic, origin.partition, origin.offset),
        stage=stage,
        reason=reason.value,
        message=message[:2000],
        partner=None,
        origin=origin,
        key_b64=base64.b64encode(record.key).decode() if record.key is not None else None,
        payload_b64=base64.b64encode(record.value or b"").decode(),
        received_at=now_utc(),
    )
