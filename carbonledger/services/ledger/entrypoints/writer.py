"""Ledger writer: dedupe.decisions -> postings, account.events -> the consent
history and family reports, and behaviour.rejected -> partners' own rejections, in
PostgreSQL, exactly once in effect.

A stage of the runtime kit (runtime/batching.py), committing with `StoredOffsets`:
offsets live in PostgreSQL, per topic, and are written in the transaction that
writes the postings and account events they cover; on partition assignment the
consumer seeks to them. Kafka's own committed offsets are updated afterwards for
lag monitoring only. Each record is decoded as its topic's model; an undecodable
decision or account event is a dead letter, acknowledged before the batch's
offsets are stored; so is one the books refuse (invalid_record) or cannot store (a
processing error, isolated from its batch by the stage kit). The sink itself is
service.py's `Postings`; this module wires it.

Run: python -m carbonledger.services.ledger.entrypoints.writer
"""

from __future__ import annotations

import psycopg

from carbonledger.contracts import topics
from carbonledger.contracts.records import AccountEvent, DeadLetter, Decision
from carbonledger.runtime.commits import StoredOffsets
from carbonledger.runtime.process import OffLoop, run_worker
from carbonledger.runtime.stage import Stage, make_app
from carbonledger.services.ledger.adapters.books import Books
from carbonledger.services.ledger.adapters.migrations import connect_migrated
from carbonledger.services.ledger.config import LedgerSettings
from carbonledger.services.ledger.service import Postings


def main() -> None:
    settings = LedgerSettings()
    conn = connect_migrated(settings.pg_conninfo)
    db = OffLoop(conn.close)
    # The app id is the consumer group, as for every stage (its lag and readiness).
    app = make_app(settings.ledger_group, settings.ledger_writer_metrics_port, settings)
    stage = Stage("ledger", app, settings)
    postings = Postings(Books(conn), settings.ledger_group, db)
    stage.batches(
        (topics.DECISIONS, topics.ACCOUNTS, topics.REJECTED),
        stage.by_topic(
            {
                topics.DECISIONS: stage.each(Decision, postings.take),
                topics.ACCOUNTS: stage.each(AccountEvent, postings.take_account),
                # Partners' dead letters, for them to read (domain/rejections.py).
                topics.REJECTED: stage.each(DeadLetter, postings.take_rejection),
            }
        ),
        commit=StoredOffsets(postings),
        max_records=settings.ledger_batch_max,
        poll_ms=settings.ledger_poll_ms,
        # Never a record of an aborted Kafka transaction, whoever produces the topic.
        consumer_config={
            "isolation_level": "read_committed",
            "fetch_max_wait_ms": settings.ledger_fetch_max_wait_ms,
            "fetch_min_bytes": settings.ledger_fetch_min_bytes,
        },
        # The database away or the connection lost restarts the writer; any other
        # error (a DataError such as a NUL in a text field) is the decision's own.
        infrastructure=(psycopg.OperationalError, psycopg.InterfaceError),
    )
    run_worker(app, db.close)


if __name__ == "__main__":
    main()
