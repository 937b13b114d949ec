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

A stage may keep `State` per input partition (runtime/changelog.py). Each batch is
then one state transaction, ended by a checkpoint: the handler reaches the state
only through the open transaction, its changes are sent as changelog records with
the batch's outputs, all are acknowledged, the offsets are committed, and only then
do the changes become the state. A failed batch discards them.

A batch that fails for a reason of the records' own (anything but the stage's
`infrastructure` errors: the broker's, the database's, a lost connection, a
timeout) is not retried whole: its attempt is discarded (state transaction, the
sink's batch in hand) and it runs again in halves, each its own transaction and
checkpoint in offset order, down to the one record that fails alone. That record
is dead-lettered with its original bytes and its offset committed, so the good
records around it go through and a poison record cannot stop the stage. Only an
infrastructure error exits the process, to restart from the committed offsets.

How offsets are committed is the loop's `CommitStrategy` (runtime/commits.py):
to Kafka (the stream stages), or in the sink's own transaction (the ledger
writer, whose books hold the offsets of the decisions they record). Offsets bound
for Kafka are held and committed at the checkpoint interval
(`stream_commit_interval_ms`), when the loop is idle, before partitions are revoked
and at stop, rather than after every batch.

The consumer group is the faust app id, as before, so a stage upgraded from the
per-event path continues from the offsets it had committed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, RecordTooLargeError
from aiokafka.structs import ConsumerRecord
from mode import Service

from carbonledger.contracts import metrics, topics
from carbonledger.contracts.catalogue import Reason, Rejection
from carbonledger.contracts.records import DeadLetter
from carbonledger.contracts.settings import Settings
from carbonledger.runtime.commits import CommitStrategy, KafkaCommit, Offsets
from carbonledger.runtime.dead_letters import stage_dead_letter
from carbonledger.runtime.logs import log_batch
from carbonledger.runtime.metadata import wait_for_topics
from carbonledger.runtime.partitioner import partition_for

log = logging.getLogger(__name__)

EXIT_BATCH_FAILED = 70  # EX_SOFTWARE: the restart loop brings the worker back
STOP_FLUSH_SECONDS = 10.0
LAG_REPORT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Output:
    """One record a stage sends (`value` None is a tombstone; `partition` None lets
    the key choose)."""

    topic: str
    key: bytes
    value: bytes | None
    partition: int | None = None


def dead_letter_output(stage: str, letter: DeadLetter) -> Output:
    """A dead letter as a batch stage's output (counted now, sent with the batch)."""
    metrics.DEAD_LETTERS.labels(stage, letter.reason).inc()
    return Output(topics.REJECTED, (letter.partner or stage).encode(), letter.to_bytes())


class Transaction(Protocol):
    """One batch's changes of the state."""

    def changes(self) -> list[Output]:
        """The changes as the records that make them durable."""
        ...


class State(Protocol):
    """State kept per input partition, restored before the partition is worked on and
    changed in one transaction per batch."""

    async def restore(self, partitions: set[int]) -> None: ...

    def forget(self, partitions: set[int]) -> None: ...

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A transaction that takes effect when the block ends, discarded if it raises."""
        ...


Handler = Callable[[list[ConsumerRecord]], Iterable[Output]]
Errors = tuple[type[BaseException], ...]

# What every stage's batch may fail with that is not its records' fault: the broker
# (aiokafka's errors), a lost connection or a timeout. A stage adds its own (the
# ledger writer: the database's), `Stage.batches(infrastructure=...)`.
KAFKA_INFRASTRUCTURE: Errors = (KafkaError, ConnectionError, TimeoutError)
# ... except a record too large for the broker to take: that is the record's own.
RECORD_FAULTS: Errors = (MessageSizeTooLargeError, RecordTooLargeError)


def exit_to_restart(what: str) -> NoReturn:
    """Abrupt, as SIGKILL would be: an orderly stop could commit offsets of a batch
    whose outputs were never acknowledged. The restart loop brings the worker back."""
    log.critical("%s; exiting to restart from committed offsets", what, exc_info=True)
    logging.shutdown()
    os._exit(EXIT_BATCH_FAILED)


class _FinishBatchFirst(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka awaits these around a rebalance. Both hold the batch lock: a batch in
    flight is sent and committed before its partitions go, and none starts on a
    partition whose state is still being restored."""

    def __init__(self, loop: BatchLoop) -> None:
        self.loop = loop

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self.loop.lock:
            self.loop.generation += 1
            # Whoever gets the partitions resumes from what is committed now.
            try:
                await self.loop.flush()
            except Exception:
                exit_to_restart("committing the held offsets before a rebalance failed")
            if self.loop.partition_state is not None:
                self.loop.partition_state.forget({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("assigned %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))
        async with self.loop.lock:
            self.loop.generation += 1
            self.loop.restoring = True
            try:
                await self._resume(set(assigned))
            except Exception:
                # aiokafka would log and go on, reading from wherever Kafka says.
                exit_to_restart("resuming assigned partitions failed")
            finally:
                self.loop.restoring = False
            # A batch fetched while this ran may come from positions set before it.
            self.loop.generation += 1

    async def _resume(self, assigned: set[TopicPartition]) -> None:
        assert self.loop.consumer is not None
        await self.loop.commit_strategy.resume(self.loop.consumer, assigned)
        if self.loop.partition_state is not None:
            await self.loop.partition_state.restore({tp.partition for tp in assigned})


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
        poll_ms: int = 500,
        state: State | None = None,
        commit: CommitStrategy | None = None,
        consumer_config: dict[str, Any] | None = None,
        infrastructure: Errors = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.infrastructure = KAFKA_INFRASTRUCTURE + infrastructure
        self.stage, self.app, self.settings = stage, app, settings
        self.sources, self.handle, self.max_records = sources, handle, max_records
        self.poll_ms = poll_ms  # how long an idle fetch waits before the loop looks again
        self.commit_strategy = commit or KafkaCommit()
        self.commit_interval = settings.stream_commit_interval_ms / 1000
        self._flushed = time.monotonic()
        self.consumer_config = consumer_config or {}
        self.partition_state, self.restoring = state, False
        self.generation = 0  # moves at every rebalance
        self.group = app.conf.id
        self.lock = asyncio.Lock()
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self._consumed = metrics.RECORDS_CONSUMED.labels(stage)
        self._seconds = metrics.PROCESSING_SECONDS.labels(stage)
        self._poison = metrics.POISON_RECORDS.labels(stage)
        self._produced_by_topic: dict[str, Any] = {}
        self._lag_topics: set[str] = set()
        app.batch_loop = self  # type: ignore[attr-defined]  # /readyz asks it (runtime/stage.py)

    def assignment(self) -> set[TopicPartition]:
        """The partitions being worked on (none while their state is restored)."""
        if self.consumer is None or self.restoring:
            return set()
        return set(self.consumer.assignment())

    async def on_start(self) -> None:
        client_id = f"{self.group}-{os.getpid()}"
        self.producer = AIOKafkaProducer(
            **self.settings.kafka_client_config(),
            client_id=client_id,
            acks="all",
            linger_ms=self.settings.stream_linger_ms,
            max_request_size=topics.REJECTED_MAX_BYTES,
            request_timeout_ms=30_000,
        )
        self.consumer = AIOKafkaConsumer(
            **(
                self.settings.pipeline_consumer_config(self.group, client_id)
                | {"max_partition_fetch_bytes": topics.REJECTED_MAX_BYTES}
                | self.consumer_config  # the stage's own choices win
            )
        )
        await self.producer.start()
        # Subscribing before the topics exist would leave the first assignment empty.
        await wait_for_topics(self.producer.client, self.sources)
        self.consumer.subscribe(list(self.sources), listener=_FinishBatchFirst(self))
        await self.consumer.start()

    async def on_stop(self) -> None:
        if self.consumer is not None:
            try:
                async with self.lock:
                    await asyncio.wait_for(self.flush(), STOP_FLUSH_SECONDS)
            except Exception:
                # Stopping anyway: the next owner re-reads from the last commit.
                log.warning("committing the held offsets at stop failed", exc_info=True)
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()

    @Service.task
    async def _run(self) -> None:
        assert self.consumer is not None
        while not self.should_stop:
            generation = self.generation
            polled = await self.consumer.getmany(
                timeout_ms=self.poll_ms, max_records=self.max_records
            )
            try:
                async with self.lock:
                    if not polled:
                        await self.flush()  # idle: nothing held waits for the interval
                    elif self.generation != generation:
                        await self._fetch_again(polled)
                    else:
                        await self._process(polled)
            except Exception:
                exit_to_restart("batch failed")

    async def flush(self) -> None:
        """The checkpoint's last step: commit the offsets held since the last one."""
        assert self.consumer is not None
        await self.commit_strategy.flush(self.consumer)
        self._flushed = time.monotonic()

    async def _fetch_again(self, polled: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Leave a batch that a rebalance overtook to whoever owns its partitions now.

        It may have been fetched for the old assignment (its partitions may be someone
        else's, or their state restored since) or for the new one; either way the
        consumer's position has moved past it, so a partition still ours is rewound
        to the batch's first record, which is at or before the committed offset,
        and then to wherever the commit strategy says its work continues."""
        assert self.consumer is not None
        assigned = self.consumer.assignment()
        kept = {tp for tp in polled if tp in assigned}
        for tp in kept:
            self.consumer.seek(tp, polled[tp][0].offset)
        if kept:
            await self.commit_strategy.resume(self.consumer, kept)

    async def _process(self, polled: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        records = [r for batch in polled.values() for r in batch]
        started = time.perf_counter()
        await self._work(records)
        self._consumed.inc(len(records))
        took = time.perf_counter() - started
        log_batch(self.stage, records, took)
        # Each record's share of the batch's time, one observation per record.
        observe_each(self._seconds, took / len(records), len(records))

    def is_infrastructure(self, exc: BaseException) -> bool:
        """Whether a failure is the broker's or the database's (restart), not the
        records' own (isolate the record)."""
        return isinstance(exc, self.infrastructure) and not isinstance(exc, RECORD_FAULTS)

    async def _work(self, records: list[ConsumerRecord]) -> None:
        """Records in offset order, as one attempt; if it fails for a reason of the
        records' own, discarded and worked again in halves, down to the record that
        fails alone, which is dead-lettered."""
        try:
            await self._attempt(records)
        except Exception as exc:
            if self.is_infrastructure(exc):
                raise
            self.commit_strategy.discard()
            if len(records) == 1:
                await self._isolate(records[0], exc)
                return
            log.warning("a batch of %d records failed (%r); isolating", len(records), exc)
            half = len(records) // 2
            await self._work(records[:half])
            await self._work(records[half:])

    async def _attempt(self, records: list[ConsumerRecord]) -> None:
        with self._transaction() as tx:
            outputs = list(self.handle(records))
            if tx is not None:
                outputs += tx.changes()
            await self._checkpoint(outputs, offsets_after(records))

    async def _isolate(self, record: ConsumerRecord, exc: Exception) -> None:
        """The record that fails alone: its dead letter, and its offset committed. A
        `Rejection` names its reason (invalid_record); anything else is a processing
        error. If even that fails, the process restarts."""
        log.error("poison record %s[%d]@%d: %r", record.topic, record.partition, record.offset, exc)
        if isinstance(exc, Rejection):
            reason, message = exc.reason, exc.message
        else:
            reason, message = Reason.PROCESSING_ERROR, repr(exc)
        letter = dead_letter_output(
            self.stage, stage_dead_letter(self.stage, reason, message, record)
        )
        self._poison.inc()
        if reason is Reason.INVALID_RECORD:
            metrics.INVALID_RECORDS.labels(self.stage, record.topic).inc()
        with self._transaction():  # an empty one: the checkpoint of the letter alone
            await self._checkpoint([letter], offsets_after([record]))

    def _transaction(self) -> AbstractContextManager[Transaction | None]:
        """The batch's state transaction; none for a stage without state."""
        if self.partition_state is None:
            return nullcontext()
        return self.partition_state.transaction()

    async def _checkpoint(self, outputs: list[Output], offsets: Offsets) -> None:
        """Send the outputs, wait for all to be acknowledged, then commit the offsets
        (or hold them for the next flush: runtime/commits.py)."""
        assert self.consumer is not None and self.producer is not None
        sent = []
        counts: dict[str, int] = {}  # counted per topic, as each send is taken
        partitions = await self._partition_counts(outputs)
        try:
            for out in outputs:
                partition = out.partition
                if partition is None:
                    partition = partition_for(out.key, partitions[out.topic])
                sent.append(
                    await self.producer.send(out.topic, out.value, key=out.key, partition=partition)
                )
                counts[out.topic] = counts.get(out.topic, 0) + 1
        finally:
            for topic, count in counts.items():
                self._produced(topic).inc(count)
        await asyncio.gather(*sent)
        await self.commit_strategy.commit(self.consumer, offsets)
        if time.monotonic() - self._flushed >= self.commit_interval:
            await self.flush()

    async def _partition_counts(self, outputs: list[Output]) -> dict[str, int]:
        """How many partitions each topic the outputs key has, from the producer's
        metadata (fetched if it has none yet), once per batch: a topic given more
        partitions is seen at the next batch, as aiokafka sees it at its next send."""
        assert self.producer is not None
        keyed = {out.topic for out in outputs if out.partition is None}
        return {topic: len(await self.producer.partitions_for(topic)) for topic in keyed}

    def _produced(self, topic: str) -> Any:
        """The stage's records-produced counter of a topic (its labels looked up once)."""
        child = self._produced_by_topic.get(topic)
        if child is None:
            child = self._produced_by_topic[topic] = metrics.RECORDS_PRODUCED.labels(
                self.stage, topic
            )
        return child

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


def observe_each(histogram: Any, value: float, count: int) -> None:
    """`histogram.observe(value)` `count` times, in one step: the same count, sum and
    bucket as that many observations (prometheus_client's Histogram child has no
    weighted observe; a unit test holds this to its `observe`)."""
    histogram._raise_if_not_observable()
    histogram._sum.inc(value * count)
    for bucket, bound in zip(histogram._buckets, histogram._upper_bounds, strict=True):
        if value <= bound:
            bucket.inc(count)
            break


def offsets_after(records: Iterable[ConsumerRecord]) -> Offsets:
    """The next offset to read of each partition, after `records` (in offset order)."""
    return {TopicPartition(r.topic, r.partition): r.offset + 1 for r in records}
