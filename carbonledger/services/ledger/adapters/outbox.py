"""The outbox table: postings the writer committed (and registry events the registry
committed), waiting to be published, each row on its topic.

The writer puts each posting here in the transaction of the posting itself. The
publisher takes the oldest rows, hands them to the broker, and deletes them only
once every one is acknowledged, in the transaction that locked them; a crash in
between publishes them again (subscribers are idempotent by posting id).
"""

from __future__ import annotations

import psycopg

from carbonledger.services.ledger.adapters import registry_views, views
from carbonledger.services.ledger.domain.outbox import OutboxPosting, Publish

LEADER_LOCK = 0x0CA4B1  # advisory lock key: the one active publisher
_TAKE = "SELECT id, key, payload, topic FROM outbox ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
_DELETE = "DELETE FROM outbox WHERE id = ANY(%s)"


class Outbox:
    """The outbox over one autocommit connection (each method its own transaction)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def publish_oldest(self, limit: int, publish: Publish) -> int:
        """Hand up to `limit` of the oldest rows to `publish`, then delete them; if
        `publish` raises, the transaction rolls back and the rows stay."""
        with self.conn.transaction(), self.conn.cursor() as cur:
            rows = cur.execute(_TAKE, (limit,)).fetchall()
            if not rows:
                return 0
            publish([OutboxPosting(int(i), str(k), bytes(p), str(t)) for i, k, p, t in rows])
            cur.execute(_DELETE, ([row[0] for row in rows],))
        return len(rows)

    def backlog(self) -> int:
        row = self.conn.execute("SELECT count(*) FROM outbox").fetchone()
        return int(row[0]) if row else 0

    def lead(self) -> bool:
        """Whether this connection holds (or now takes) the publisher's leader lock;
        the lock goes with the connection."""
        row = self.conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()
        return bool(row and row[0])

    def book_totals(self) -> tuple[dict[str, int], dict[str, int]]:
        """Each book's total, and the personal book's by whose accounts (person,
        unit), read in one statement (one snapshot)."""
        return views.totals_by_kind(self.conn)

    def registry_shortfalls(self) -> list[int]:
        """Each registry series' uncovered shortfall (mg), those that owe anything."""
        return [int(s["shortfall_mg"]) for s in registry_views.series_shortfalls(self.conn)]
