"""The hot path of a stateless stage: consume, transform and produce in batches.

faust's per-event stream path (Stream, acknowledgement, Channel, FutureMessage)
cost about two thirds of ingest's and quantify's CPU (py-spy, docs/performance.md).
A stage with no table needs none of it, so it reads with aiokafka, faust's own
client, one batch at a time, inside the faust worker that still gives it its
lifecycle, web server (/metrics, /healthz, /readyz) and timers.

Delivery is at least once, as with faust: a batch's outputs are all acknowledged
by the broker before its offsets are committed. A crash between the two re-reads
the batch and sends the same records again, with the same deterministic ids,
which downstream stages already absorb. A revoked partition waits for the batch
in flight to be committed first, so a rebalance does not re-read it.

The consumer group is the faust app id, as before, so a stage upgraded from the
per-event path continues from the offsets it had committed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord
from mode import Service

from carbonledger.contracts import metrics, topics
from carbonledger.contracts.settings import Settings

log = logging.getLogger(__name__)

EXIT_BATCH_FAILED = 70  # EX_SOFTWARE: the restart loop brings the worker back
LAG_REPORT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Output:
    """One record a stage sends."""

    topic: str
    key: bytes
    value: bytes


Handler = Callable[[list[ConsumerRecord]], Iterable[Output]]


class _FinishBatchFirst(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka awaits this before giving partitions away."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self.lock = lock

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self.lock:  # the batch in flight is sent and committed
            pass

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("assigned %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))


class BatchLoop(Service):
    """Runs `handle` over batches of `sources` for as long as the faust worker runs."""

    def __init__(
        self,
        stage: str,
        app: faust.App,
        settings: Settings,
        sources: tuple[str, ...],
        handle: Handler,
        *,
        max_records: int = 500,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.stage, self.app, self.settings = stage, app, settings
        self.sources, self.handle, self.max_records = sources, handle, max_records
        self.group = app.conf.id
        self.lock = asyncio.Lock()
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self._consumed = metrics.RECORDS_CONSUMED.labels(stage)
        self._seconds = metrics.PROCESSING_SECONDS.labels(stage)
        self._lag_topics: set[str] = set()
        app.batch_loop = self  # type: ignore[attr-defined]  # /readyz asks it (streaming.py)

    def assignment(self) -> set[TopicPartition]:
        return set(self.consumer.assignment()) if self.consumer is not None else set()

    async def on_start(self) -> None:
        client = self.settings.kafka_client_config()
        self.producer = AIOKafkaProducer(
            **client,
            client_id=f"{self.group}-{os.getpid()}",
            acks="all",
            linger_ms=self.settings.stream_linger_ms,
            max_request_size=topics.REJECTED_MAX_BYTES,
            request_timeout_ms=30_000,
        )
        self.consumer = AIOKafkaConsumer(
            **client,
            group_id=self.group,
            client_id=f"{self.group}-{os.getpid()}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000,
            max_partition_fetch_bytes=topics.REJECTED_MAX_BYTES,
        )
        self.consumer.subscribe(list(self.sources), listener=_FinishBatchFirst(self.lock))
        await self.producer.start()
        await self.consumer.start()

    async def on_stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()

    @Service.task
    async def _run(self) -> None:
        assert self.consumer is not None
        while not self.should_stop:
            polled = await self.consumer.getmany(timeout_ms=500, max_records=self.max_records)
            if not polled:
                continue
            try:
                async with self.lock:
                    await self._process(polled)
            except Exception:
                # Abrupt, as SIGKILL would be: an orderly stop could commit
                # offsets of a batch whose outputs were never acknowledged.
                log.critical(
                    "batch failed; exiting to restart from committed offsets", exc_info=True
                )
                logging.shutdown()
                os._exit(EXIT_BATCH_FAILED)

    async def _process(self, polled: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        assert self.consumer is not None and self.producer is not None
        records = [r for batch in polled.values() for r in batch]
        started = time.perf_counter()
        sent = []
        for out in self.handle(records):
            sent.append(await self.producer.send(out.topic, out.value, key=out.key))
            metrics.RECORDS_PRODUCED.labels(self.stage, out.topic).inc()
        await asyncio.gather(*sent)
        await self.consumer.commit({tp: batch[-1].offset + 1 for tp, batch in polled.items()})
        self._consumed.inc(len(records))
        mean = (time.perf_counter() - started) / len(records)
        for _ in records:
            self._seconds.observe(mean)

    @Service.timer(LAG_REPORT_SECONDS)
    async def _report_lag(self) -> None:
        """Lag per source topic: the highwater last fetched minus the next offset to take."""
        if self.consumer is None:
            return
        lag = dict.fromkeys(self.sources, 0)
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                lag[tp.topic] += max(0, highwater - await self.consumer.position(tp))
        self._lag_topics = metrics.report_lag(self.group, lag, self._lag_topics)
