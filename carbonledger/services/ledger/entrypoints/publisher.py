"""The outbox publisher: postings committed by the ledger writer go out on
`ledger.postings`, keyed by `book:account`, for incentive systems.

The writer puts each posting in the outbox table in the same transaction as the
posting itself, so a posting is published if and only if it exists. This
process takes the oldest outbox rows, produces them, waits for the broker's
acknowledgement of every one, and only then deletes them in the same
transaction that locked them (adapters/outbox.py). A crash in between publishes
them again: delivery is at least once, and subscribers are idempotent by
`posting_id`.

One publisher works at a time (a PostgreSQL advisory lock); others wait as hot
standbys, ready as such. One publisher in id order keeps each account's
postings in chain order on its partition.

It runs in a faust worker for the runtime's lifecycle and web server, and
consumes nothing. It produces with kafka-python: a batch is one blocking call in
a thread (lock rows, send, flush, delete), so the row locks and the broker's
acknowledgements stay in one transaction on one connection.

Run: python -m carbonledger.services.ledger.entrypoints.publisher
"""

from __future__ import annotations

import logging
import time
from typing import Any

from faust.app.base import BootStrategy
from kafka import KafkaProducer
from mode import Service

from carbonledger.contracts import metrics, topics
from carbonledger.runtime.batching import exit_to_restart
from carbonledger.runtime.process import OffLoop, run_worker
from carbonledger.runtime.stage import make_app, serve_readiness
from carbonledger.services.ledger.adapters.migrations import connect_migrated
from carbonledger.services.ledger.adapters.outbox import Outbox, OutboxPosting
from carbonledger.services.ledger.config import LedgerSettings
from carbonledger.services.ledger.metrics import (
    ACTIVE,
    BACKLOG,
    BATCH_SECONDS,
    BOOK_BALANCE,
    PUBLISHED,
)

log = logging.getLogger("ledger.publisher")

APP_ID = topics.LEDGER_PUBLISHER_APP_ID
STANDBY_SECONDS = 2.0  # how often a standby tries the leader lock
BACKLOG_SECONDS = 5.0


class Sender:
    """Sends outbox postings and returns once the broker acknowledged every one."""

    def __init__(self, producer: KafkaProducer) -> None:
        self.producer = producer

    def __call__(self, postings: list[OutboxPosting]) -> None:
        futures = [
            self.producer.send(topics.POSTINGS, key=p.key.encode(), value=p.payload)
            for p in postings
        ]
        self.producer.flush(timeout=60)
        for future in futures:
            future.get(timeout=30)  # raises: the transaction rolls back, rows stay


class Publisher(Service):
    """Standby until it holds the leader lock, then publishes the outbox."""

    def __init__(
        self, outbox: Outbox, send: Sender, db: OffLoop, settings: LedgerSettings, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.outbox, self.send, self.db, self.settings = outbox, send, db, settings
        self.role: str | None = None  # standby or active, once known

    def readiness(self) -> dict[str, Any]:
        """Ready as soon as it knows its role: a standby is ready to take over."""
        if self.role is None:
            return {"ready": False}
        return {"ready": True, "role": self.role}

    @Service.task
    async def _run(self) -> None:
        try:
            if await self._wait_to_lead():
                await self._publish()
        except Exception:
            exit_to_restart("publishing failed")

    async def _wait_to_lead(self) -> bool:
        while not self.should_stop:
            if await self.db.call(self.outbox.lead):
                ACTIVE.set(1)
                self.role = "active"
                log.info("publishing the outbox to %s", topics.POSTINGS)
                return True
            ACTIVE.set(0)
            self.role = "standby"  # another publisher holds the lock
            await self.sleep(STANDBY_SECONDS)
        return False

    async def _publish(self) -> None:
        limit = self.settings.publisher_batch_max
        last_count = last_books = 0.0
        while not self.should_stop:
            started = time.perf_counter()
            sent = await self.db.call(self.outbox.publish_oldest, limit, self.send)
            if sent:
                PUBLISHED.inc(sent)
                BATCH_SECONDS.observe(time.perf_counter() - started)
            if time.monotonic() - last_count > BACKLOG_SECONDS:
                BACKLOG.set(await self.db.call(self.outbox.backlog))
                last_count = time.monotonic()
            every = self.settings.book_totals_seconds
            if every and time.monotonic() - last_books > every:
                await self._report_books()
                last_books = time.monotonic()
            if sent < limit:
                await self.sleep(self.settings.publisher_poll_ms / 1000)

    async def _report_books(self) -> None:
        """The three books must hold the same total."""
        for book, total_mg in (await self.db.call(self.outbox.book_totals)).items():
            BOOK_BALANCE.labels(book).set(metrics.grams(total_mg))


def main() -> None:
    settings = LedgerSettings()
    conn = connect_migrated(settings.pg_conninfo)
    db = OffLoop(conn.close)  # closing the connection releases the leader lock
    producer = KafkaProducer(
        **settings.kafka_client_config(),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=262144,
    )
    app = make_app(APP_ID, settings.publisher_metrics_port, settings)
    # Only the web server: the publisher reads no topic, and sends with its own producer.
    app.boot_strategy = BootStrategy(app, enable_kafka=False)
    publisher = Publisher(Outbox(conn), Sender(producer), db, settings, beacon=app.beacon)
    serve_readiness(app, publisher.readiness)

    async def start_publishing() -> None:
        await app.add_runtime_dependency(publisher)

    app.task(start_publishing)
    run_worker(app, lambda: producer.close(timeout=10), db.close)


if __name__ == "__main__":
    main()
