"""The ledger's PostgreSQL adapter: applying decisions exactly once, and reading books.

A batch of decisions is applied in one transaction together with the consumer
offsets that follow it. Decisions and postings are keyed by deterministic ids
(`ON CONFLICT DO NOTHING`), and balances move only by the postings that were
actually inserted, so a redelivered or retried batch changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from carbonledger.contracts.records import Decision
from services.ledger.domain.postings import postings_for

_DECISION_COLUMNS = (
    "decision_id",
    "kind",
    "claim_id",
    "event_source",
    "event_id",
    "subject",
    "behaviour_type",
    "region",
    "amount_mg",
    "winner_claim_id",
    "reverses",
    "reason",
    "claim",
    "sequence",
    "reason_detail",
    "winner_source",
    "winner_event_id",
)
_POSTING_COLUMNS = (
    "posting_id",
    "decision_id",
    "claim_id",
    "book",
    "account",
    "amount_mg",
    "behaviour_type",
    "region",
    "partner",
    "methodology_id",
    "methodology_version",
    "behaviour_time",
)

_STAGE = f"""
CREATE TEMP TABLE stage_decisions ON COMMIT DROP AS
    SELECT {", ".join(_DECISION_COLUMNS)} FROM decisions WITH NO DATA;
CREATE TEMP TABLE stage_postings ON COMMIT DROP AS
    SELECT {", ".join(_POSTING_COLUMNS)} FROM postings WITH NO DATA;
"""

_APPLY = f"""
WITH new_decisions AS (
    INSERT INTO decisions ({", ".join(_DECISION_COLUMNS)})
    SELECT {", ".join(_DECISION_COLUMNS)} FROM stage_decisions
    ON CONFLICT (decision_id) DO NOTHING
    RETURNING decision_id
), new_postings AS (
    INSERT INTO postings ({", ".join(_POSTING_COLUMNS)})
    SELECT {", ".join("s." + c for c in _POSTING_COLUMNS)}
    FROM stage_postings s JOIN new_decisions d USING (decision_id)
    ORDER BY s.decision_id, s.book
    ON CONFLICT DO NOTHING
    RETURNING book, account, amount_mg
)
INSERT INTO balances (book, account, balance_mg, postings)
SELECT book, account, sum(amount_mg), count(*) FROM new_postings
GROUP BY book, account ORDER BY book, account
ON CONFLICT (book, account) DO UPDATE
SET balance_mg = balances.balance_mg + EXCLUDED.balance_mg,
    postings = balances.postings + EXCLUDED.postings,
    updated_at = now()
"""

_SAVE_OFFSET = """
INSERT INTO consumer_offsets (group_id, topic, partition, next_offset)
VALUES (%s, %s, %s, %s)
ON CONFLICT (group_id, topic, partition) DO UPDATE
SET next_offset = GREATEST(consumer_offsets.next_offset, EXCLUDED.next_offset), updated_at = now()
"""


def _decision_row(d: Decision) -> tuple[Any, ...]:
    c = d.claim
    return (
        d.decision_id,
        d.kind.value,
        c.claim_id,
        c.event.source,
        c.event.id,
        c.subject,
        c.type,
        c.region,
        d.amount_mg,
        d.winner_claim_id,
        d.reverses,
        d.reason,
        Jsonb(c.model_dump(mode="json")),
        d.sequence,
        d.reason_detail,
        d.winner.source if d.winner else None,
        d.winner.id if d.winner else None,
    )


def _posting_rows(d: Decision) -> Iterable[tuple[Any, ...]]:
    for p in postings_for(d):
        m = p.methodology
        yield (
            p.posting_id,
            p.decision_id,
            p.claim_id,
            p.book.value,
            p.account,
            p.amount_mg,
            p.behaviour_type,
            p.region,
            p.partner,
            m.id if m else None,
            m.version if m else None,
            p.behaviour_time,
        )


def _dicts(cursor: psycopg.Cursor[Any]) -> list[Mapping[str, Any]]:
    assert cursor.description is not None
    names = [col.name for col in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@dataclass(frozen=True)
class Offset:
    topic: str
    partition: int
    next_offset: int


class Books:
    """Writes and reads the three books over one connection."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def apply(
        self, decisions: Sequence[Decision], group_id: str, offsets: Iterable[Offset]
    ) -> None:
        """Apply decisions and record the offsets after them, atomically."""
        with self.conn.transaction(), self.conn.cursor() as cur:
            if decisions:
                cur.execute(_STAGE)
                with cur.copy(
                    f"COPY stage_decisions ({', '.join(_DECISION_COLUMNS)}) FROM STDIN"
                ) as cp:
                    for d in decisions:
                        cp.write_row(_decision_row(d))
                with cur.copy(
                    f"COPY stage_postings ({', '.join(_POSTING_COLUMNS)}) FROM STDIN"
                ) as cp:
                    for d in decisions:
                        for row in _posting_rows(d):
                            cp.write_row(row)
                cur.execute(_APPLY)
            cur.executemany(
                _SAVE_OFFSET, [(group_id, o.topic, o.partition, o.next_offset) for o in offsets]
            )

    def offsets(self, group_id: str, topic: str) -> dict[int, int]:
        rows = self.conn.execute(
            "SELECT partition, next_offset FROM consumer_offsets"
            " WHERE group_id = %s AND topic = %s",
            (group_id, topic),
        ).fetchall()
        return {int(p): int(o) for p, o in rows}

    def totals(self) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT book, coalesce(sum(balance_mg), 0) FROM balances GROUP BY book"
        )
        found = {str(book): int(total) for book, total in rows.fetchall()}
        return {book: found.get(book, 0) for book in ("personal", "enterprise", "government")}

    def balance(self, book: str, account: str) -> tuple[int, int] | None:
        row = self.conn.execute(
            "SELECT balance_mg, postings FROM balances WHERE book = %s AND account = %s",
            (book, account),
        ).fetchone()
        return (int(row[0]), int(row[1])) if row else None

    def balances(self, book: str) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT account, balance_mg FROM balances WHERE book = %s", (book,)
        )
        return {str(a): int(b) for a, b in rows.fetchall()}

    def totals_by_type(self, book: str, account: str) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT behaviour_type, sum(amount_mg) FROM postings WHERE book = %s AND account = %s"
            " GROUP BY behaviour_type ORDER BY behaviour_type",
            (book, account),
        )
        return {str(t): int(s) for t, s in rows.fetchall()}

    def recent_postings(
        self, book: str, account: str, limit: int, before_seq: int | None = None
    ) -> list[Mapping[str, Any]]:
        rows = self.conn.execute(
            "SELECT p.seq, p.posting_id, p.decision_id, p.claim_id, p.amount_mg, p.behaviour_type,"
            " p.region, p.partner, p.methodology_id, p.methodology_version, p.behaviour_time,"
            " p.posted_at, d.kind, d.event_source, d.event_id"
            " FROM postings p JOIN decisions d USING (decision_id)"
            " WHERE p.book = %s AND p.account = %s AND p.seq < %s"
            " ORDER BY p.seq DESC LIMIT %s",
            (book, account, before_seq if before_seq is not None else 2**62, limit),
        )
        return _dicts(rows)

    def posting_count(self) -> int:
        row = self.conn.execute("SELECT count(*) FROM postings").fetchone()
        return int(row[0]) if row else 0

    def decisions_of(self, source: str, event_id: str) -> list[Mapping[str, Any]]:
        """Every decision about one partner event, oldest first, with its full claim."""
        rows = self.conn.execute(
            "SELECT decision_id, kind, claim_id, amount_mg, winner_claim_id, winner_source,"
            " winner_event_id, reverses, reason, reason_detail, sequence, claim, recorded_at"
            " FROM decisions WHERE event_source = %s AND event_id = %s"
            " ORDER BY recorded_at, sequence, decision_id",
            (source, event_id),
        )
        return _dicts(rows)

    def duplicates_of(self, source: str, event_id: str) -> list[Mapping[str, Any]]:
        """Other partners' claims last recorded as duplicates of this event's claim."""
        rows = self.conn.execute(
            "SELECT DISTINCT ON (d.event_source, d.event_id) d.event_source, d.event_id, d.kind,"
            " d.winner_source, d.winner_event_id FROM decisions d JOIN ("
            "   SELECT DISTINCT event_source, event_id FROM decisions"
            "   WHERE winner_source = %s AND winner_event_id = %s"
            " ) named USING (event_source, event_id)"
            " ORDER BY d.event_source, d.event_id, d.recorded_at DESC, d.sequence DESC",
            (source, event_id),
        )
        return [
            r
            for r in _dicts(rows)
            if r["kind"] == "duplicate"
            and (r["winner_source"], r["winner_event_id"]) == (source, event_id)
        ]

    def claims_under(
        self, methodology_id: str, first: date, last: date
    ) -> Iterator[tuple[Mapping[str, Any], int, Any]]:
        """Each event quantified under a methodology whose behaviour ended (China
        Standard Time) in [first, last]: its latest claim, net amount, standing credit."""
        rows = self.conn.execute(
            "WITH events AS (SELECT DISTINCT event_source, event_id FROM decisions"
            "  WHERE claim->'methodology'->>'id' = %s AND ((claim->>'ended_at')::timestamptz"
            "  AT TIME ZONE 'Asia/Shanghai')::date BETWEEN %s AND %s)"
            " SELECT (SELECT claim FROM decisions d WHERE (d.event_source, d.event_id)"
            "   = (e.event_source, e.event_id) ORDER BY recorded_at DESC, sequence DESC LIMIT 1),"
            " (SELECT coalesce(sum(amount_mg), 0) FROM decisions d"
            "   WHERE (d.event_source, d.event_id) = (e.event_source, e.event_id)),"
            " (SELECT decision_id FROM decisions d WHERE (d.event_source, d.event_id)"
            "   = (e.event_source, e.event_id) AND kind = 'credit' AND NOT EXISTS"
            "   (SELECT 1 FROM decisions r WHERE r.reverses = d.decision_id)"
            "   ORDER BY recorded_at DESC, sequence DESC LIMIT 1)"
            " FROM events e ORDER BY e.event_source, e.event_id",
            (methodology_id, first, last),
        )
        for claim, net, credit in rows:
            yield claim, int(net), credit

    def postings_of_decisions(self, decision_ids: list[Any]) -> dict[Any, list[Mapping[str, Any]]]:
        """The postings each of these decisions made, in one query."""
        rows = self.conn.execute(
            "SELECT decision_id, posting_id, book, account, amount_mg, posted_at FROM postings"
            " WHERE decision_id = ANY(%s) ORDER BY book",
            (decision_ids,),
        )
        made: dict[Any, list[Mapping[str, Any]]] = {d: [] for d in decision_ids}
        for row in _dicts(rows):
            made[row["decision_id"]].append(row)
        return made
