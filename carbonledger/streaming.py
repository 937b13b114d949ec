"""The faust side shared by the stream processors: app factory, stages, endpoints.

Each stage reads raw bytes and decodes them itself (pydantic), so a poison record
is a dead letter, never a crashed codec.

Dedupe, which keeps a table, iterates faust's stream event by event: faust
acknowledges an event once the agent asks for the next one, and flushes the
producer before it commits acknowledged offsets, so every output of an event
reaches the broker before its offset is committed. Ingest and quantify, which keep
no state, read in batches instead (`Stage.batches`, carbonledger/batching.py) with
the same guarantee per batch. Either way delivery is at least once, made exactly
once in effect by the deterministic ids downstream.

(faust's `take_events` was tried first and lost records when a worker was killed:
it runs a second task over the stream's shared state, and it keeps the per-event
path, whose cost was the reason to batch.)
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import faust
from faust.app.base import BootStrategy
from faust.web import Request, Response, View
from mode import CrashingSupervisor
from mode.types.signals import BaseSignalT
from pydantic import BaseModel, ValidationError

from carbonledger.batching import BatchLoop, Handler, Output
from carbonledger.contracts import ids, metrics, topics
from carbonledger.contracts.catalogue import Reason
from carbonledger.contracts.metrics import exposition
from carbonledger.contracts.records import DeadLetter, Origin
from carbonledger.contracts.settings import Settings

log = logging.getLogger(__name__)
RecordT = TypeVar("RecordT", bound=BaseModel)

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
        broker_credentials=_credentials(settings),
        store=store,
        datadir=str(datadir),
        # web_host only names the host in faust's URLs; web_bind is what it listens on.
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=int(os.environ.get("CARBON_WEB_PORT", base_port + wid)),
        web_enabled=True,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # With no linger, aiokafka sends each record in its own produce request as soon
        # as its sender is idle: per-record requests dominated the stages' CPU.
        producer_linger_ms=settings.stream_linger_ms,
        # faust's default (1200 s) lets a produce request that never completes hold a
        # stage for minutes (seen after a SIGKILL elsewhere in the pipeline); failing
        # it crashes the worker, which restarts from its committed offsets.
        producer_request_timeout=30.0,
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
    _add_endpoints(app, settings)
    return app


def _credentials(settings: Settings) -> faust.SASLCredentials | None:
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    if settings.kafka_security_protocol == "SASL_SSL":
        raise ValueError("SASL_SSL needs an SSL context; it is not wired for faust yet")
    return faust.SASLCredentials(
        username=settings.kafka_username,
        password=settings.kafka_secret(),
        mechanism=settings.kafka_sasl_mechanism,
    )


def _add_endpoints(app: faust.App, settings: Settings) -> None:
    @app.page("/metrics")
    async def metrics_page(web: View, request: Request) -> Response:
        body, content_type = exposition()
        # aiohttp refuses a charset inside content_type; the exposition is ASCII/UTF-8.
        return web.bytes(body, content_type=content_type.split(";")[0] + "; version=0.0.4")

    @app.page("/healthz")
    async def healthz(web: View, request: Request) -> Response:
        return web.json({"status": "alive"})

    @app.page("/readyz")
    async def readyz(web: View, request: Request) -> Response:
        # Ready once started, not rebalancing, owning partitions to work on, and
        # caught up to within the configured lag.
        loop = getattr(app, "batch_loop", None)  # a batch stage reads with its own consumer
        owned = loop.assignment() if loop is not None else app.consumer.assignment()
        assigned = app.started and not app.rebalancing and bool(owned)
        lag = metrics.lag_total(app.conf.id)
        ready = assigned and lag <= settings.ready_max_lag
        body = {"ready": bool(ready), "assigned": bool(assigned), "lag_records": lag}
        return web.json(body, status=200 if ready else 503)


# These exits are abrupt (os._exit), so no counter of them would ever be scraped:
# they show as a restart (changes(process_start_time_seconds[1h])) and in the log.
EXIT_SKIPPED_RECORDS = 75  # EX_TEMPFAIL: restart and try again
LAG_REPORT_SECONDS = 5.0
EXIT_STALLED = 76
STALL_CHECK_SECONDS = 10.0


class OffsetGuard:
    """Refuses to let a stage work past a record it was never given.

    After a worker restart (table recovery suspends and reseeks the consumer)
    faust 0.15 was seen to jump ahead in a partition: its fetch loop records the
    skipped offsets as a "gap" (meant for compacted topics and transaction
    markers), counts gaps as acknowledged and commits past them, silently losing
    those records. The guard tracks the next offset each partition must deliver,
    starting from the group's committed offset after every assignment. On a jump
    the process exits at once: an orderly faust shutdown would acknowledge the
    current event and commit past the gap. Exiting abruptly is what SIGKILL does,
    which every stage survives (outputs are idempotent); the supervisor restarts
    the worker from its committed offsets. Lower offsets (re-reads after a seek)
    are fine.
    """

    def __init__(self, app: faust.App, settings: Settings, sources: tuple[str, ...] = ()) -> None:
        self.app, self.settings, self.sources = app, settings, sources
        self.expected: dict[tuple[str, int], int] = {}
        self.committed: dict[tuple[str, int], int] | None = None  # read once per assignment
        self.last_progress = time.monotonic()
        self.waiting_since: float | None = None  # when records were first seen waiting, untaken

        @app.on_partitions_assigned.connect
        def _forget(sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
            self.expected.clear()
            self.committed = None
            self.last_progress = time.monotonic()

        if sources:
            app.timer(interval=STALL_CHECK_SECONDS)(self._check_stalled)
            app.timer(interval=LAG_REPORT_SECONDS)(self._report_lag)
        self.lag_topics: set[str] = set()

    async def _report_lag(self) -> None:
        """Lag per source topic: the highwater the consumer last saw, minus the next
        offset this worker will process (the committed offset until it takes one)."""
        lag: dict[str, int] = dict.fromkeys(self.sources, 0)
        mine = [tp for tp in self.app.consumer.assignment() if tp.topic in lag]
        if mine and self.committed is None:
            self.committed = await asyncio.to_thread(self._read_committed)
        for tp in mine:
            key = (tp.topic, tp.partition)
            done = self.expected.get(key, (self.committed or {}).get(key, 0))
            highwater = self.app.consumer.highwater(tp)
            if highwater is not None:
                lag[tp.topic] += max(0, highwater - done)
        self.lag_topics = metrics.report_lag(self.app.conf.id, lag, self.lag_topics)

    async def _check_stalled(self) -> None:
        """Exit when records have waited in this worker's partitions for the whole
        stall period and none was taken: faust 0.15 can stay idle after a rebalance
        that meets a restart, until the next rebalance. The restart loop brings it
        back. A worker that was merely idle is not stalled when new records arrive:
        they must be seen waiting, untaken, for `stall_seconds` first."""
        now = time.monotonic()
        if getattr(self.app, "in_recovery", False) or now - self.last_progress < (
            self.settings.stall_seconds
        ):
            self.waiting_since = None
            return
        mine = [tp for tp in self.app.consumer.assignment() if tp.topic in self.sources]
        waiting = await asyncio.to_thread(self._waiting, [(tp.topic, tp.partition) for tp in mine])
        since = self.waiting_since
        if not waiting or since is None or since < self.last_progress:
            self.waiting_since = now if waiting else None
            return
        idle = now - since
        if idle < self.settings.stall_seconds:
            return
        log.critical(
            "no record taken for %.0f s while %d wait in %s; exiting to restart",
            idle,
            sum(waiting.values()),
            sorted(waiting),
        )
        logging.shutdown()
        os._exit(EXIT_STALLED)

    def _waiting(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        from kafka import KafkaConsumer, TopicPartition

        if not partitions:
            return {}
        committed = self._read_committed()
        probe = KafkaConsumer(**self.settings.kafka_client_config())
        try:
            ends = probe.end_offsets([TopicPartition(t, p) for t, p in partitions])
        finally:
            probe.close()
        waiting = {}
        for tp, end in ends.items():
            key = (tp.topic, tp.partition)
            done = max(self.expected.get(key, 0), committed.get(key, 0))
            if end > done:
                waiting[key] = end - done
        return waiting

    def _read_committed(self) -> dict[tuple[str, int], int]:
        from carbonledger.admin import admin_client, committed_offsets

        admin = admin_client(self.settings)
        try:
            found = committed_offsets(admin, self.app.conf.id)
        finally:
            admin.close()
        return {(tp.topic, tp.partition): offset for tp, offset in found.items()}

    async def admit(self, message: Any) -> None:
        key = (message.topic, message.partition)
        expected = self.expected.get(key)
        if expected is None:
            if self.committed is None:
                self.committed = await asyncio.to_thread(self._read_committed)
            expected = self.committed.get(key)
        self.last_progress = time.monotonic()
        if expected is not None and message.offset > expected:
            log.critical(
                "%s[%s]: got offset %s but offsets from %s were never delivered; "
                "exiting to restart from committed offsets",
                message.topic,
                message.partition,
                message.offset,
                expected,
            )
            logging.shutdown()
            os._exit(EXIT_SKIPPED_RECORDS)
        self.expected[key] = message.offset + 1


DEAD_LETTER_BACKLOG_SECONDS = 30.0


class Stage:
    """What every stream stage shares: its name, offset guard, dead-letter topic and
    the per-stage metrics (records in and out, dead letters, processing time)."""

    def __init__(
        self,
        name: str,
        app: faust.App,
        settings: Settings,
        sources: tuple[str, ...] = (),
        *,
        watch_dead_letters: bool = False,
    ) -> None:
        self.name, self.app, self.settings = name, app, settings
        self.guard = OffsetGuard(app, settings, sources)
        self.rejected = app.topic(topics.REJECTED, **RAW)
        self._consumed = metrics.RECORDS_CONSUMED.labels(name)
        self._seconds = metrics.PROCESSING_SECONDS.labels(name)
        if watch_dead_letters:
            app.timer(interval=DEAD_LETTER_BACKLOG_SECONDS)(self._report_dead_letter_backlog)

    async def send(self, topic: Any, key: bytes, value: bytes) -> None:
        await topic.send(key=key, value=value)
        metrics.RECORDS_PRODUCED.labels(self.name, topic.get_topic_name()).inc()

    async def dead_letter(self, letter: DeadLetter) -> None:
        output = self.dead_letter_output(letter)
        await self.send(self.rejected, output.key, output.value)

    def dead_letter_output(self, letter: DeadLetter) -> Output:
        """A dead letter as a batch stage's output (counted now, sent with the batch)."""
        metrics.DEAD_LETTERS.labels(self.name, letter.reason).inc()
        return Output(topics.REJECTED, (letter.partner or self.name).encode(), letter.to_bytes())

    def decode(self, record: Any, model: type[RecordT]) -> RecordT | Output:
        """A record of an internal topic, decoded; or, if undecodable, its dead letter."""
        try:
            return model.model_validate_json(record.value)
        except ValidationError as exc:
            letter = stage_dead_letter(self.name, Reason.UNDECODABLE_RECORD, str(exc), record)
            return self.dead_letter_output(letter)

    def batches(self, sources: tuple[str, ...], handle: Handler) -> BatchLoop:
        """Run `handle` over batches of `sources` instead of faust's per-event stream
        (a stage without tables; carbonledger/batching.py says why)."""
        loop = BatchLoop(
            self.name, self.app, self.settings, sources, handle, beacon=self.app.beacon
        )

        # faust's own consumer would join the same group with nothing to read.
        self.app.boot_strategy = BootStrategy(self.app, enable_kafka_consumer=False)

        async def start_batches() -> None:
            await self.app.add_runtime_dependency(loop)

        self.app.task(start_batches)

        return loop

    async def events(self, stream: Any) -> AsyncIterator[Any]:
        """Each event of the stream, admitted by the offset guard, counted and timed
        until the agent asks for the next."""
        async for event in stream.events():
            await self.guard.admit(event.message)
            self._consumed.inc()
            started = time.perf_counter()
            yield event
            self._seconds.observe(time.perf_counter() - started)

    async def records(self, stream: Any, model: type[RecordT]) -> AsyncIterator[RecordT]:
        """Each record of an internal topic, decoded; an undecodable one is dead-lettered."""
        async for event in self.events(stream):
            decoded = self.decode(event.message, model)
            if isinstance(decoded, Output):
                await self.send(self.rejected, decoded.key, decoded.value)
                continue
            yield decoded

    async def _report_dead_letter_backlog(self) -> None:
        from carbonledger.dlq import backlog

        metrics.DEAD_LETTER_BACKLOG.set(await asyncio.to_thread(backlog, self.settings))


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
