"""The faust side shared by the stream processors: app factory, stages, endpoints.

Every stage reads raw bytes in batches (`Stage.batches`, carbonledger/runtime/batching.py)
inside a faust worker, which gives it its lifecycle, timers and web endpoints.
Records are decoded by the stage (pydantic), so a poison record is a dead letter,
never a crashed codec. Delivery is at least once, made exactly once in effect by
the deterministic ids downstream.

(faust's per-event stream path was two thirds of the stages' CPU, and its
`take_events` lost records when a worker was killed: it runs a second task over
the stream's shared state. docs/performance.md has the profiles.)
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import groupby
from typing import Any, TypeVar

import faust
from faust.app.base import BootStrategy
from faust.web import Request, Response, View
from pydantic import BaseModel, ValidationError

from carbonledger.contracts import metrics, topics
from carbonledger.contracts.catalogue import Reason, Rejection
from carbonledger.contracts.records import DeadLetter, invariant_broken
from carbonledger.contracts.settings import Settings
from carbonledger.runtime.batching import (
    BatchLoop,
    Errors,
    Handler,
    Output,
    State,
    dead_letter_output,
)
from carbonledger.runtime.commits import CommitStrategy
from carbonledger.runtime.dead_letters import backlog, stage_dead_letter
from carbonledger.runtime.web import alive, metrics_answer, readiness_status

log = logging.getLogger(__name__)
RecordT = TypeVar("RecordT", bound=BaseModel)
Readiness = Callable[[], dict[str, Any]]  # the /readyz body; its "ready" sets the status


def worker_id() -> int:
    """This process's index within its consumer group (one datadir and port each)."""
    return int(os.environ.get("CARBON_WORKER_ID", "0"))


def make_app(app_id: str, base_port: int, settings: Settings) -> faust.App:
    wid = worker_id()
    datadir = settings.run_dir / "faust" / app_id / str(wid)
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id,
        broker=f"kafka://{settings.bootstrap_servers}",
        broker_credentials=_credentials(settings),
        store="memory://",
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
        # A dead letter carries the original record (base64), up to the partner
        # topics' limit, so the producer must take what the rejected topic takes.
        producer_max_request_size=topics.REJECTED_MAX_BYTES,
        autodiscover=False,
    )
    _add_endpoints(app, settings)
    return app


def _credentials(settings: Settings) -> faust.SASLCredentials | None:
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    # faust speaks SASL_SSL when its credentials carry an SSL context.
    tls = settings.kafka_ssl_context() if settings.kafka_security_protocol == "SASL_SSL" else None
    return faust.SASLCredentials(
        username=settings.kafka_username,
        password=settings.kafka_secret(),
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=tls,
    )


def _add_endpoints(app: faust.App, settings: Settings) -> None:
    # faust's own web server, answering what the FastAPI apps answer (runtime/web.py).
    @app.page("/metrics")
    async def metrics_page(web: View, request: Request) -> Response:
        body, content_type = metrics_answer()
        # aiohttp refuses a charset inside content_type; the exposition is ASCII/UTF-8.
        return web.bytes(body, content_type=content_type.split(";")[0] + "; version=0.0.4")

    @app.page("/healthz")
    async def healthz(web: View, request: Request) -> Response:
        return web.json(alive())

    @app.page("/readyz")
    async def readyz(web: View, request: Request) -> Response:
        check: Readiness | None = getattr(app, "readiness", None)
        body = check() if check is not None else _consumer_readiness(app, settings)
        return web.json(body, status=readiness_status(body))


def serve_readiness(app: faust.App, readiness: Readiness) -> None:
    """Answer /readyz with `readiness` (a process that consumes nothing, such as the
    outbox publisher) instead of asking the consumer."""
    app.readiness = readiness  # type: ignore[attr-defined]


def _consumer_readiness(app: faust.App, settings: Settings) -> dict[str, Any]:
    # Ready once started, not rebalancing, owning partitions to work on, and
    # caught up to within the configured lag.
    loop = getattr(app, "batch_loop", None)  # a batch stage reads with its own consumer
    owned = loop.assignment() if loop is not None else app.consumer.assignment()
    assigned = app.started and not app.rebalancing and bool(owned)
    lag = metrics.lag_total(app.conf.id)
    ready = assigned and lag <= settings.ready_max_lag
    return {"ready": bool(ready), "assigned": bool(assigned), "lag_records": lag}


DEAD_LETTER_BACKLOG_SECONDS = 30.0


class Stage:
    """What every stream stage shares: its name, dead-letter records, batch loop and
    the per-stage metrics (records in and out, dead letters, processing time)."""

    def __init__(
        self, name: str, app: faust.App, settings: Settings, *, watch_dead_letters: bool = False
    ) -> None:
        self.name, self.app, self.settings = name, app, settings
        if watch_dead_letters:
            app.timer(interval=DEAD_LETTER_BACKLOG_SECONDS)(self._report_dead_letter_backlog)

    def dead_letter_output(self, letter: DeadLetter) -> Output:
        """A dead letter as a batch stage's output (counted now, sent with the batch)."""
        return dead_letter_output(self.name, letter)

    def decode(self, record: Any, model: type[RecordT]) -> RecordT | Output:
        """A record of an internal topic, decoded; or its dead letter: `invalid_record`
        if it has the model's shape but breaks an invariant (an amount out of bounds or
        of the wrong sign, an unknown region, a control character, records.py),
        `undecodable_record` if it is not the model at all."""
        try:
            return model.model_validate_json(record.value or b"")
        except ValidationError as exc:
            return self.dead_letter_output(self.refusal(record, exc))

    def refusal(self, record: Any, exc: ValidationError) -> DeadLetter:
        if invariant_broken(exc):
            metrics.INVALID_RECORDS.labels(self.name, record.topic).inc()
            return stage_dead_letter(self.name, Reason.INVALID_RECORD, str(exc), record)
        return stage_dead_letter(self.name, Reason.UNDECODABLE_RECORD, str(exc), record)

    def refused(self, record: Any, exc: Rejection) -> DeadLetter:
        if exc.reason is Reason.INVALID_RECORD:
            metrics.INVALID_RECORDS.labels(self.name, record.topic).inc()
        return stage_dead_letter(self.name, exc.reason, exc.message, record)

    def each(
        self, model: type[RecordT], handle: Callable[[Any, RecordT], Iterable[Output]]
    ) -> Handler:
        """A batch handler that decodes every record as `model` and hands it to
        `handle`; an undecodable or invalid record's dead letter takes its place in the
        outputs, as does one `handle` refuses with a `Rejection` (which it raises before
        changing anything). Any other failure is the batch loop's to isolate."""

        def handle_batch(records: list[Any]) -> Iterator[Output]:
            for record in records:
                item = self.decode(record, model)
                if isinstance(item, Output):
                    yield item
                    continue
                try:
                    outputs = list(handle(record, item))
                except Rejection as exc:
                    yield self.dead_letter_output(self.refused(record, exc))
                    continue
                yield from outputs

        return handle_batch

    def by_topic(self, handlers: Mapping[str, Handler]) -> Handler:
        """A batch handler for a stage that reads several topics, each with its own
        model: each run of records of one topic goes to that topic's handler (an
        `each`), in the order the batch holds them."""

        def handle_batch(records: list[Any]) -> Iterator[Output]:
            for topic, run in groupby(records, key=lambda r: r.topic):
                yield from handlers[topic](list(run))

        return handle_batch

    def batches(
        self,
        sources: tuple[str, ...],
        handle: Handler,
        state: State | None = None,
        *,
        commit: CommitStrategy | None = None,
        max_records: int = 500,
        poll_ms: int = 500,
        consumer_config: dict[str, Any] | None = None,
        infrastructure: Errors = (),
    ) -> BatchLoop:
        """Run `handle` over batches of `sources` instead of faust's per-event stream
        (runtime/batching.py says why); offsets committed to Kafka unless
        `commit` says otherwise (runtime/commits.py).

        `infrastructure` names the errors, besides the broker's, that are not a
        record's fault (the database's, for a stage that writes one): they restart
        the stage. Any other failure isolates the record that causes it."""
        loop = BatchLoop(
            self.name,
            self.app,
            self.settings,
            sources,
            handle,
            max_records=max_records,
            poll_ms=poll_ms,
            state=state,
            commit=commit,
            consumer_config=consumer_config,
            infrastructure=infrastructure,
            beacon=self.app.beacon,
        )

        # faust's own consumer would join the same group with nothing to read.
        self.app.boot_strategy = BootStrategy(self.app, enable_kafka_consumer=False)

        async def start_batches() -> None:
            await self.app.add_runtime_dependency(loop)

        self.app.task(start_batches)

        return loop

    async def _report_dead_letter_backlog(self) -> None:
        metrics.DEAD_LETTER_BACKLOG.set(await asyncio.to_thread(backlog, self.settings))
