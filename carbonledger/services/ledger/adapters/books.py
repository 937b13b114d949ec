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

from carbonledger.contracts.records import Book, Decision, LedgerPosting
from carbonledger.contracts.regions import RegionTable, load_regions
from carbonledger.services.ledger.domain.aggregates import period_deltas
from carbonledger.services.ledger.domain.chain import CANONICAL_FIELDS, Head, extend
from carbonledger.services.ledger.domain.postings import postings_for

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
_CHAIN_COLUMNS = ("chain_index", "balance_mg", "prev_hash", "hash")
# A posting's content: what its hash covers, less its place in the chain.
_POSTING_COLUMNS = tuple(c for c in CANONICAL_FIELDS if c not in _CHAIN_COLUMNS)

_STAGE = f"""
CREATE TEMP TABLE stage_decisions ON COMMIT DROP AS
    SELECT {", ".join(_DECISION_COLUMNS)} FROM decisions WITH NO DATA;
"""

_INSERT_DECISIONS = f"""
INSERT INTO decisions ({", ".join(_DECISION_COLUMNS)})
SELECT {", ".join(_DECISION_COLUMNS)} FROM stage_decisions
ON CONFLICT (decision_id) DO NOTHING
RETURNING decision_id
"""

# Accounts are created (empty) and locked in one order by every writer, so two
# writers sharing accounts queue rather than deadlock, and each chain grows in
# one transaction at a time.
_OPEN_ACCOUNTS = """
INSERT INTO balances (book, account, balance_mg, postings)
SELECT book, account, 0, 0 FROM unnest(%s::text[], %s::text[]) AS a(book, account)
ORDER BY book, account
ON CONFLICT (book, account) DO NOTHING
"""
_LOCK_HEADS = """
SELECT b.book, b.account, b.postings, b.balance_mg, b.head_hash FROM balances b
JOIN unnest(%s::text[], %s::text[]) AS a(book, account) USING (book, account)
ORDER BY b.book, b.account
FOR UPDATE OF b
"""
_MOVE_HEADS = """
UPDATE balances b
SET postings = v.postings, balance_mg = v.balance_mg, head_hash = v.head_hash, updated_at = now()
FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::bigint[], %s::text[])
    AS v(book, account, postings, balance_mg, head_hash)
WHERE (b.book, b.account) = (v.book, v.account)
"""
_ADD_PERIOD_TOTALS = """
INSERT INTO period_totals
    (book, account, period, period_start, behaviour_type, region, amount_mg, postings)
SELECT * FROM unnest(
    %s::text[], %s::text[], %s::text[], %s::date[], %s::text[], %s::text[], %s::bigint[],
    %s::bigint[])
ON CONFLICT (book, account, period, period_start, behaviour_type, region) DO UPDATE
SET amount_mg = period_totals.amount_mg + EXCLUDED.amount_mg,
    postings = period_totals.postings + EXCLUDED.postings
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


def _entries(decisions: Iterable[Decision]) -> list[tuple[Decision, dict[str, Any]]]:
    """Each decision's postings as chain entries (content only, not yet placed)."""
    made = []
    for d in decisions:
        for p in postings_for(d):
            m = p.methodology
            entry = {
                "posting_id": p.posting_id,
                "decision_id": p.decision_id,
                "claim_id": p.claim_id,
                "book": p.book.value,
                "account": p.account,
                "amount_mg": p.amount_mg,
                "behaviour_type": p.behaviour_type,
                "region": p.region,
                "partner": p.partner,
                "methodology_id": m.id if m else None,
                "methodology_version": m.version if m else None,
                "behaviour_time": p.behaviour_time,
            }
            made.append((d, entry))
    return made


def _published(decision: Decision, entry: Mapping[str, Any]) -> LedgerPosting:
    c = decision.claim
    return LedgerPosting(
        posting_id=entry["posting_id"],
        decision_id=decision.decision_id,
        decision_kind=decision.kind,
        claim_id=c.claim_id,
        event=c.event,
        book=Book(entry["book"]),
        account=entry["account"],
        chain_index=entry["chain_index"],
        amount_mg=entry["amount_mg"],
        balance_mg=entry["balance_mg"],
        behaviour_type=entry["behaviour_type"],
        region=entry["region"],
        partner=entry["partner"],
        methodology=c.methodology,
        behaviour_time=entry["behaviour_time"],
        prev_hash=entry["prev_hash"],
        hash=entry["hash"],
    )


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows as columns, for unnest() parameters."""
    return [[row[i] for row in rows] for i in range(width)]


def _dicts(cursor: psycopg.Cursor[Any]) -> list[Mapping[str, Any]]:
    assert cursor.description is not None
    names = [col.name for col in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@dataclass(frozen=True)
class Offset:
    topic: str
    partition: int
    next_offset: int


@dataclass(frozen=True)
class Applied:
    """What one batch did: postings made, and the decisions not recorded before."""

    postings: int
    fresh: list[Decision]


class Books:
    """Writes and reads the three books over one connection."""

    def __init__(self, conn: psycopg.Connection, regions: RegionTable | None = None) -> None:
        self.conn = conn
        self.regions = regions or load_regions()

    def apply(
        self, decisions: Sequence[Decision], group_id: str, offsets: Iterable[Offset]
    ) -> Applied:
        """Apply decisions and record the offsets after them, atomically. Decisions
        already applied make no postings and are not among the fresh ones."""
        with self.conn.transaction(), self.conn.cursor() as cur:
            fresh = self._new_decisions(cur, decisions) if decisions else []
            made = self._post(cur, fresh) if fresh else 0
            cur.executemany(
                _SAVE_OFFSET, [(group_id, o.topic, o.partition, o.next_offset) for o in offsets]
            )
        return Applied(made, fresh)

    def _new_decisions(
        self, cur: psycopg.Cursor[Any], decisions: Sequence[Decision]
    ) -> list[Decision]:
        """Record the decisions; returns those not recorded before, once each, in order."""
        cur.execute(_STAGE)
        with cur.copy(f"COPY stage_decisions ({', '.join(_DECISION_COLUMNS)}) FROM STDIN") as cp:
            for d in decisions:
                cp.write_row(_decision_row(d))
        cur.execute(_INSERT_DECISIONS)
        new = {row[0] for row in cur.fetchall()}
        fresh = []
        for d in decisions:
            if d.decision_id in new:
                new.discard(d.decision_id)
                fresh.append(d)
        return fresh

    def _post(self, cur: psycopg.Cursor[Any], decisions: list[Decision]) -> int:
        entries = _entries(decisions)
        if not entries:
            return 0
        heads = self._lock_heads(cur, sorted({(e["book"], e["account"]) for _, e in entries}))
        for _, entry in entries:
            extend(heads[(entry["book"], entry["account"])], entry)
        columns = (*_POSTING_COLUMNS, *_CHAIN_COLUMNS)
        with cur.copy(f"COPY postings ({', '.join(columns)}) FROM STDIN") as cp:
            for _, entry in entries:
                cp.write_row([entry[c] for c in columns])
        moved = [(b, a, h.index, h.balance_mg, h.hash) for (b, a), h in heads.items()]
        cur.execute(_MOVE_HEADS, _columns(moved, 5))
        deltas = period_deltas((e for _, e in entries), self.regions)
        rows = [(*key, amount, count) for key, (amount, count) in sorted(deltas.items())]
        cur.execute(_ADD_PERIOD_TOTALS, _columns(rows, 8))
        with cur.copy("COPY outbox (posting_id, key, payload) FROM STDIN") as cp:
            for decision, entry in entries:
                cp.write_row(
                    (
                        entry["posting_id"],
                        f"{entry['book']}:{entry['account']}",
                        _published(decision, entry).to_bytes(),
                    )
                )
        return len(entries)

    def _lock_heads(
        self, cur: psycopg.Cursor[Any], accounts: list[tuple[str, str]]
    ) -> dict[tuple[str, str], Head]:
        books_, names = _columns(accounts, 2)
        cur.execute(_OPEN_ACCOUNTS, (books_, names))
        cur.execute(_LOCK_HEADS, (books_, names))
        return {
            (str(b), str(a)): Head(int(n), int(balance), str(head))
            for b, a, n, balance, head in cur.fetchall()
        }

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

    def balances_of(self, book: str, accounts: Iterable[str]) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT account, balance_mg FROM balances WHERE book = %s AND account = ANY(%s)",
            (book, list(accounts)),
        )
        return {str(a): int(b) for a, b in rows.fetchall()}

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

    def period_rows(
        self, book: str, account: str, period: str = "month"
    ) -> list[Mapping[str, Any]]:
        """An account's period totals by behaviour type and region (a few rows per month)."""
        rows = self.conn.execute(
            "SELECT period_start, behaviour_type, region, amount_mg, postings FROM period_totals"
            " WHERE book = %s AND account = %s AND period = %s ORDER BY period_start",
            (book, account, period),
        )
        return _dicts(rows)

    def account_totals(self, book: str, accounts: list[str]) -> dict[str, int]:
        """Each account's all-time total from the monthly aggregates (roll-ups included)."""
        rows = self.conn.execute(
            "SELECT account, sum(amount_mg) FROM period_totals"
            " WHERE book = %s AND period = 'month' AND account = ANY(%s) GROUP BY account",
            (book, accounts),
        )
        return {str(a): int(t) for a, t in rows.fetchall()}

    def link_employer(self, employer: str, subjects: list[str]) -> int:
        """Link people to an employer from now on (a person has one employer at a time:
        relinking moves them, from the new link's time). Returns the links made."""
        with self.conn.transaction():
            rows = self.conn.execute(
                "INSERT INTO employer_links (subject, employer) SELECT unnest(%s::text[]), %s"
                " ON CONFLICT (subject) DO UPDATE SET employer = EXCLUDED.employer,"
                " linked_at = now() WHERE employer_links.employer <> EXCLUDED.employer"
                " RETURNING subject",
                (subjects, employer),
            ).fetchall()
        return len(rows)

    def employer_rows(self, employer: str) -> tuple[int, list[Mapping[str, Any]]]:
        """An employer's members, and their personal postings since each was linked,
        summed by behaviour type and month (China Standard Time)."""
        members = self.conn.execute(
            "SELECT count(*) FROM employer_links WHERE employer = %s", (employer,)
        ).fetchone()
        rows = self.conn.execute(
            "SELECT p.behaviour_type, date_trunc('month', p.behaviour_time AT TIME ZONE"
            " 'Asia/Shanghai')::date AS period_start, sum(p.amount_mg) AS amount_mg"
            " FROM employer_links l JOIN postings p ON p.book = 'personal'"
            " AND p.account = l.subject AND p.posted_at >= l.linked_at"
            " WHERE l.employer = %s GROUP BY 1, 2",
            (employer,),
        )
        return (int(members[0]) if members else 0), _dicts(rows)

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
