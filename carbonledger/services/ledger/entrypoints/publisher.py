"""The outbox publisher: postings committed by the ledger writer go out on
`ledger.postings`, keyed by `book:account`, for incentive systems; registry
transactions and proceeds allocations (adapters/registry.py) on `registry.events`.

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

The use case is service.py's `OutboxRelay`; this module wires it. It runs in a
faust worker for the runtime's lifecycle and web server, and consumes nothing. It
produces with kafka-python (runtime/producers.py): a batch is one blocking call in
a thread (lock rows, send, flush, delete), so the row locks and the broker's
acknowledgements stay in one transaction on one connection.

Run: python -m carbonledger.services.ledger.entrypoints.publisher
"""

from __future__ import annotations

from typing import Any

from faust.app.base import BootStrategy
from kafka import KafkaProducer
from mode import Service

from carbonledger.contracts import topics
from carbonledger.runtime.batching import exit_to_restart
from carbonledger.runtime.process import OffLoop, run_worker
from carbonledger.runtime.producers import (
    DEFAULT_MAX_REQUEST_BYTES,
    Outgoing,
    producer,
    send_and_wait,
)
from carbonledger.runtime.stage import make_app, serve_readiness
from carbonledger.services.ledger.adapters.migrations import connect_migrated
from carbonledger.services.ledger.adapters.outbox import Outbox
from carbonledger.services.ledger.config import LedgerSettings
from carbonledger.services.ledger.domain.outbox import OutboxPosting
from carbonledger.services.ledger.service import OutboxRelay

APP_ID = topics.LEDGER_PUBLISHER_APP_ID
STANDBY_SECONDS = 2.0  # how often a standby tries the leader lock


class Sender:
    """Sends outbox postings and returns once the broker acknowledged every one."""

    def __init__(self, producer: KafkaProducer) -> None:
        self.producer = producer

    def __call__(self, postings: list[OutboxPosting]) -> None:
        records = [Outgoing(p.topic, p.payload, key=p.key.encode()) for p in postings]
        send_and_wait(self.producer, records, timeout=60)  # raises: rolls back, rows stay


class Publisher(Service):
    """Runs the relay in the worker: standby until it leads, then step after step."""

    def __init__(self, relay: OutboxRelay, db: OffLoop, poll_seconds: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.relay, self.db, self.poll_seconds = relay, db, poll_seconds

    @Service.task
    async def _run(self) -> None:
        try:
            if await self._wait_to_lead():
                await self._publish()
        except Exception:
            exit_to_restart("publishing failed")

    async def _wait_to_lead(self) -> bool:
        while not self.should_stop:
            if await self.db.call(self.relay.try_lead):
                return True
            await self.sleep(STANDBY_SECONDS)
        return False

    async def _publish(self) -> None:
        while not self.should_stop:
            if not await self.db.call(self.relay.step):
                await self.sleep(self.poll_seconds)


def main() -> None:
    settings = LedgerSettings()
    conn = connect_migrated(settings.pg_conninfo)
    db = OffLoop(conn.close)  # closing the connection releases the leader lock
    # Larger batches than the gateway's: the publisher sends the backlog in bulk.
    kafka = producer(
        settings, linger_ms=5, batch_size=262144, max_request_size=DEFAULT_MAX_REQUEST_BYTES
    )
    app = make_app(APP_ID, settings.publisher_metrics_port, settings)
    # Only the web server: the publisher reads no topic, and sends with its own producer.
    app.boot_strategy = BootStrategy(app, enable_kafka=False)
    relay = OutboxRelay(
        Outbox(conn), Sender(kafka), settings.publisher_batch_max, settings.book_totals_seconds
    )
    publisher = Publisher(relay, db, settings.publisher_poll_ms / 1000, beacon=app.beacon)
    serve_readiness(app, relay.readiness)

    async def start_publishing() -> None:
        await app.add_runtime_dependency(publisher)

    app.task(start_publishing)
    run_worker(app, lambda: kafka.close(timeout=10), db.close)


if __name__ == "__main__":
    main()
