"""The outbox publisher: postings committed by the ledger writer go out on
`ledger.postings`, keyed by `book:account`, for incentive systems.

The writer puts each posting in the outbox table in the same transaction as the
posting itself, so a posting is published if and only if it exists. This
process takes the oldest outbox rows, produces them, waits for the broker's
acknowledgement of every one, and only then deletes them in the same
transaction that locked them. A crash in between publishes them again:
delivery is at least once, and subscribers are idempotent by `posting_id`.

One publisher works at a time (a PostgreSQL advisory lock); others wait as hot
standbys. One publisher in id order keeps each account's postings in chain
order on its partition.

Run: python -m carbonledger.services.ledger.entrypoints.publisher
"""

from __future__ import annotations

import logging
import time

import psycopg
from kafka import KafkaProducer

from carbonledger.contracts import metrics, topics
from carbonledger.runtime.process import Health, run_process
from carbonledger.services.ledger.adapters.books import Books
from carbonledger.services.ledger.adapters.migrations import current_version, latest_version
from carbonledger.services.ledger.config import LedgerSettings

log = logging.getLogger("ledger.publisher")

_LEADER_LOCK = 0x0CA4B1  # advisory lock key: the one active publisher
_TAKE = "SELECT id, key, payload FROM outbox ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"

PUBLISHED = metrics.counter("publisher", "postings_total", "Postings published on ledger.postings")
BACKLOG = metrics.gauge("publisher", "outbox_postings", "Postings in the outbox, not yet published")
ACTIVE = metrics.gauge("publisher", "active", "1 while this process is the active publisher")
BATCH_SECONDS = metrics.histogram("publisher", "batch_seconds", "Time to publish one outbox batch")
BOOK_BALANCE = metrics.gauge(
    "ledger",
    "book_balance_grams",
    "Total balance of each book, read in one snapshot by the active publisher",
    ("book",),
)


def publish_batch(conn: psycopg.Connection, producer: KafkaProducer, limit: int) -> int:
    """Publish and delete up to `limit` of the oldest outbox rows; returns how many."""
    with conn.transaction(), conn.cursor() as cur:
        rows = cur.execute(_TAKE, (limit,)).fetchall()
        if not rows:
            return 0
        futures = [
            producer.send(topics.POSTINGS, key=key.encode(), value=bytes(payload))
            for _, key, payload in rows
        ]
        producer.flush(timeout=60)
        for future in futures:
            future.get(timeout=30)  # raises: the transaction rolls back, rows stay
        cur.execute("DELETE FROM outbox WHERE id = ANY(%s)", ([row[0] for row in rows],))
    return len(rows)


def _backlog(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM outbox").fetchone()
    return int(row[0]) if row else 0


def _lead(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (_LEADER_LOCK,)).fetchone()
    return bool(row and row[0])


def _report_books(conn: psycopg.Connection) -> None:
    """The three books must hold the same total (one statement, one snapshot)."""
    for book, total_mg in Books(conn).totals().items():
        BOOK_BALANCE.labels(book).set(metrics.grams(total_mg))


def run(settings: LedgerSettings, stop: list[bool], health: Health) -> None:
    conn = psycopg.connect(settings.pg_conninfo, autocommit=True)
    if current_version(conn) != latest_version():
        raise SystemExit("ledger schema is not migrated; run `carbonledger db migrate`")
    producer = KafkaProducer(
        **settings.kafka_client_config(),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=262144,
    )
    try:
        while not stop[0] and not _lead(conn):
            ACTIVE.set(0)
            health.update(True, role="standby")
            time.sleep(2)  # standby: another publisher holds the lock
        ACTIVE.set(1)
        health.update(True, role="active")
        log.info("publishing the outbox to %s", topics.POSTINGS)
        last_count = last_books = 0.0
        while not stop[0]:
            started = time.perf_counter()
            sent = publish_batch(conn, producer, settings.publisher_batch_max)
            if sent:
                PUBLISHED.inc(sent)
                BATCH_SECONDS.observe(time.perf_counter() - started)
            if time.monotonic() - last_count > 5:
                BACKLOG.set(_backlog(conn))
                last_count = time.monotonic()
            if settings.book_totals_seconds and (
                time.monotonic() - last_books > settings.book_totals_seconds
            ):
                _report_books(conn)
                last_books = time.monotonic()
            if sent < settings.publisher_batch_max:
                time.sleep(settings.publisher_poll_ms / 1000)
    finally:
        producer.close(timeout=10)
        conn.close()  # releases the advisory lock


def main() -> None:
    settings = LedgerSettings()
    run_process(run, settings, settings.publisher_metrics_port)


if __name__ == "__main__":
    main()
