"""The ledger's PostgreSQL write side: applying decisions exactly once.

A batch of decisions is applied in one transaction together with the batch's
account events (consent history, family reports) and the consumer offsets that
follow it. Decisions, postings and account events are keyed by deterministic ids
(`ON CONFLICT DO NOTHING`), and balances move only by the postings that were
actually inserted, so a redelivered or retried batch changes nothing.

The adapter stages, locks and copies; what the batch does to the books is the
domain planner's (`domain/planner.py`). Reads are in `views.py`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import astuple, fields
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

from carbonledger.contracts.catalogue import Reason, Rejection
from carbonledger.contracts.records import Book, Decision, DecisionKind, Record
from carbonledger.contracts.regions import RegionTable, load_regions
from carbonledger.services.ledger.adapters import views
from carbonledger.services.ledger.domain.batches import Applied, Offset
from carbonledger.services.ledger.domain.chain import ENTRY_FIELDS, ChainedPosting, Head
from carbonledger.services.ledger.domain.consent import ConsentEntry
from carbonledger.services.ledger.domain.family import (
    FamilyReport,
    Membership,
    memberships,
)
from carbonledger.services.ledger.domain.planner import (
    Account,
    Plan,
    accounts_moved,
    plan,
    reversal_refused,
)
from carbonledger.services.ledger.domain.rejections import RejectionEntry
from carbonledger.services.ledger.domain.statistics import Bucket, PeriodKey, participation

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
# The postings table's columns are the chained posting's fields, copied by name
# (as views.py reads them back).
_POSTING_COLUMNS = ENTRY_FIELDS

# One staging table per connection, emptied by every commit (and a rollback takes its
# rows too): creating and dropping one per batch wrote the catalogs at every batch and
# made the INSERT below a new statement to plan each time. IF NOT EXISTS, because a
# batch that rolled back took the creation with it.
_STAGE = f"""
CREATE TEMP TABLE IF NOT EXISTS stage_decisions ON COMMIT DELETE ROWS AS
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
# A personal account's balance row says whose it is (a person's or a unit's), so the
# totals split the personal book from the balances alone.
_OPEN_ACCOUNTS = """
INSERT INTO balances (book, account, balance_mg, postings, subject_kind)
SELECT book, account, 0, 0, kind
FROM unnest(%s::text[], %s::text[], %s::text[]) AS a(book, account, kind)
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
# Government statistics (domain/statistics.py), moved by the postings just made.
_ADD_FIGURES = """
INSERT INTO region_statistics
    (region, day, category, behaviour_type, partner, subject_kind, amount_mg, actions)
SELECT * FROM unnest(
    %s::text[], %s::date[], %s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[],
    %s::bigint[])
ON CONFLICT (region, day, category, behaviour_type, partner, subject_kind) DO UPDATE
SET amount_mg = region_statistics.amount_mg + EXCLUDED.amount_mg,
    actions = region_statistics.actions + EXCLUDED.actions
"""
# Participants (domain/statistics.py): the batch's buckets by id from the dictionary
# (new ones added first, in key order), the subjects' period rows read locked, moved
# by the domain, written back in one upsert, and the counts bumped by the crossings.
_ADD_BUCKETS = """
INSERT INTO participant_buckets (region, dimension, dimension_value, subject_kind)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) ORDER BY 1, 2, 3, 4
ON CONFLICT (region, dimension, dimension_value, subject_kind) DO NOTHING
"""
_BUCKET_IDS = """
SELECT b.bucket, b.region, b.dimension, b.dimension_value, b.subject_kind
FROM participant_buckets b
JOIN unnest(%s::text[], %s::text[], %s::text[], %s::text[])
    AS k(region, dimension, dimension_value, subject_kind)
    ON (b.region, b.dimension, b.dimension_value, b.subject_kind)
     = (k.region::char(6), k.dimension, k.dimension_value, k.subject_kind)
"""
# The subject's rows are also behind its personal account's balance row, locked by
# `_lock_heads` before this; FOR UPDATE says so here too, in key order.
_HELD_PERIODS = """
SELECT p.period, p.period_start, p.subject, p.buckets, p.actions
FROM participant_periods p
JOIN unnest(string_to_array(%s, ','), string_to_array(%s, ',')::date[], %s::text[])
    AS k(period, period_start, subject) USING (period, period_start, subject)
ORDER BY 1, 2, 3
FOR UPDATE OF p
"""
# Columns of periods, dates and integers go as one joined string each, split in the
# SQL, and the arrays as their text forms ('{3,17}') joined by ';': psycopg dumps a
# Python list element by element, which was most of the writer's statistics cost.
# (Subjects, free text, go as a text[].)
_PUT_PERIODS = """
INSERT INTO participant_periods (period, period_start, subject, buckets, actions)
SELECT period, period_start, subject, b::integer[], a::integer[]
FROM unnest(string_to_array(%s, ','), string_to_array(%s, ',')::date[], %s::text[],
            string_to_array(%s, ';'), string_to_array(%s, ';'))
    AS v(period, period_start, subject, b, a)
ORDER BY 1, 2, 3
ON CONFLICT (period, period_start, subject) DO UPDATE
SET buckets = EXCLUDED.buckets, actions = EXCLUDED.actions
"""
_ADD_COUNTS = """
INSERT INTO participant_counts (period, period_start, bucket, participants)
SELECT * FROM unnest(string_to_array(%s, ','), string_to_array(%s, ',')::date[],
                     string_to_array(%s, ',')::integer[], string_to_array(%s, ',')::bigint[])
ORDER BY 1, 2, 3
ON CONFLICT (period, period_start, bucket) DO UPDATE
SET participants = participant_counts.participants + EXCLUDED.participants
"""

# What the books held before this batch of the credits its reversals name (the
# batch's own decisions are already staged in the table, so they are left out).
_CREDITS_NAMED = """
SELECT decision_id, amount_mg FROM decisions
WHERE kind = 'credit' AND decision_id = ANY(%s) AND decision_id <> ALL(%s)
"""
_REVERSED_BEFORE = """
SELECT DISTINCT reverses FROM decisions
WHERE kind = 'reverse' AND reverses = ANY(%s) AND decision_id <> ALL(%s)
"""

# Account events: the consent history and family reports, append-only and keyed by
# the account event's id, so a redelivered or replayed event is not recorded again.
# Columns are the entry's dataclass fields by name; the casts follow their order.
_CONSENT_COLUMNS = tuple(f.name for f in fields(ConsentEntry))
_FAMILY_COLUMNS = tuple(f.name for f in fields(FamilyReport))
_INSERT_CONSENTS = f"""
INSERT INTO consent_events ({", ".join(_CONSENT_COLUMNS)})
SELECT * FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
    %s::text[], %s::timestamptz[], %s::text[], %s::text[], %s::text[], %s::timestamptz[])
ON CONFLICT (account_event_id) DO NOTHING
RETURNING type
"""
_REJECTION_COLUMNS = tuple(f.name for f in fields(RejectionEntry))
_INSERT_REJECTIONS = f"""
INSERT INTO partner_rejections ({", ".join(_REJECTION_COLUMNS)})
SELECT * FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
    %s::integer[], %s::bigint[], %s::bytea[], %s::timestamptz[])
ON CONFLICT (dead_letter_id) DO NOTHING
RETURNING reason
"""
_INSERT_FAMILY = f"""
INSERT INTO family_events ({", ".join(_FAMILY_COLUMNS)})
SELECT * FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
    %s::timestamptz[], %s::text[], %s::text[], %s::text[])
ON CONFLICT (account_event_id) DO NOTHING
RETURNING type
"""

_SAVE_OFFSET = """
INSERT INTO consumer_offsets (group_id, topic, partition, next_offset)
VALUES (%s, %s, %s, %s)
ON CONFLICT (group_id, topic, partition) DO UPDATE
SET next_offset = GREATEST(consumer_offsets.next_offset, EXCLUDED.next_offset), updated_at = now()
"""


def _record_json(record: Record) -> bytes:
    """A record as JSON for a jsonb column: its own serializer's bytes, the same values
    (and number texts) as `model_dump(mode="json")` through json.dumps, so the same
    jsonb, at a fifth of the cost (it was most of a decision row's)."""
    return record.to_bytes()


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
        Jsonb(c, dumps=_record_json),
        d.sequence,
        d.reason_detail,
        d.winner.source if d.winner else None,
        d.winner.id if d.winner else None,
    )


def _posting_row(p: ChainedPosting) -> list[Any]:
    return [
        getattr(p, c).value if c in ("book", "subject_kind") else getattr(p, c)
        for c in _POSTING_COLUMNS
    ]


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows as columns, for unnest() parameters."""
    return [[row[i] for row in rows] for i in range(width)]


# What a batch records beside its decisions: account events, and partners' rejections.
AccountEntries = Sequence[ConsentEntry | FamilyReport | RejectionEntry]


def _joined(values: Iterable[object]) -> str:
    """Values (periods, dates, integers: none holds a comma) as one string, split by
    string_to_array in the SQL."""
    return ",".join(map(str, values))


def _array(values: Iterable[int]) -> str:
    """Integers as a PostgreSQL array's text form, cast to integer[] in the SQL."""
    return "{" + ",".join(map(str, values)) + "}"


def _kinds(decisions: Iterable[Decision]) -> dict[str, str]:
    """Whose personal accounts these decisions post to: subject -> person or unit."""
    return {d.claim.subject: d.claim.subject_kind.value for d in decisions}


class Books:
    """Applies decisions to the three books over one connection (and reads the two
    figures the writer and the publisher need: their offsets and the book totals)."""

    def __init__(self, conn: psycopg.Connection, regions: RegionTable | None = None) -> None:
        self.conn = conn
        self.regions = regions or load_regions()
        # participant_buckets ids known committed, and those read in the open transaction.
        self._buckets: dict[Bucket, int] = {}
        self._unsure: dict[Bucket, int] = {}

    def apply(
        self,
        decisions: Sequence[Decision],
        group_id: str,
        offsets: Iterable[Offset],
        accounts: AccountEntries = (),
    ) -> Applied:
        """Apply decisions, record the account events (consent history, family
        reports) and the offsets after them, atomically. Decisions already applied
        make no postings and are not among the fresh ones; account events already
        recorded are not recorded again."""
        try:
            applied = self._apply(decisions, group_id, offsets, accounts)
        except BaseException:
            self._unsure.clear()
            raise
        # Committed (not inside a caller's transaction, which may yet roll back): the
        # buckets this transaction added are there for good.
        if self.conn.info.transaction_status is TransactionStatus.IDLE:
            self._buckets.update(self._unsure)
        self._unsure.clear()
        return applied

    def _apply(
        self,
        decisions: Sequence[Decision],
        group_id: str,
        offsets: Iterable[Offset],
        accounts: AccountEntries,
    ) -> Applied:
        with self.conn.transaction(), self.conn.cursor() as cur:
            fresh = self._record(cur, decisions) if decisions else []
            self._check_reversals(cur, fresh)
            moving = accounts_moved(fresh)
            heads = self._lock_heads(cur, moving, _kinds(fresh)) if moving else {}
            planned = plan(fresh, heads, self.regions)
            if planned.postings:
                self._copy(cur, planned)
            recorded = self._record_accounts(cur, accounts)
            cur.executemany(
                _SAVE_OFFSET, [(group_id, o.topic, o.partition, o.next_offset) for o in offsets]
            )
        return Applied(len(planned.postings), fresh, recorded)

    def _record_accounts(self, cur: psycopg.Cursor[Any], accounts: AccountEntries) -> Counter[str]:
        """Insert the batch's account events; how many were new, by type."""
        recorded: Counter[str] = Counter()
        consents = [astuple(a) for a in accounts if isinstance(a, ConsentEntry)]
        reports = [astuple(a) for a in accounts if isinstance(a, FamilyReport)]
        letters = [astuple(a) for a in accounts if isinstance(a, RejectionEntry)]
        for insert, rows, width, kind in (
            (_INSERT_CONSENTS, consents, len(_CONSENT_COLUMNS), "consent"),
            (_INSERT_FAMILY, reports, len(_FAMILY_COLUMNS), "family"),
            (_INSERT_REJECTIONS, letters, len(_REJECTION_COLUMNS), "rejection"),
        ):
            if rows:
                cur.execute(insert, _columns(rows, width))
                new = [f"{kind}.{t}" for (t,) in cur.fetchall()]
                if kind != "rejection":  # a dead letter is no account event
                    recorded.update(new)
        return recorded

    def record_family(self, reports: Sequence[FamilyReport]) -> int:
        """Record family reports of their own (the operator's command); returns how
        many were new (the same reports again record nothing)."""
        with self.conn.transaction(), self.conn.cursor() as cur:
            return sum(self._record_accounts(cur, reports).values())

    def transaction(self) -> AbstractContextManager[Any]:
        """One transaction (a savepoint inside another) for what the caller does next."""
        return self.conn.transaction()

    def membership(self, head: str, member: str) -> Membership | None:
        rows = views.family_reports_of_member(self.conn, member)
        return memberships(FamilyReport(**r) for r in rows).get((head, member))

    def _record(self, cur: psycopg.Cursor[Any], decisions: Sequence[Decision]) -> list[Decision]:
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

    def _check_reversals(self, cur: psycopg.Cursor[Any], fresh: Sequence[Decision]) -> None:
        """A reversal only of a credit that exists and is not yet reversed: else the
        batch is refused (rolled back) as an invalid_record, which the stage kit
        isolates and dead-letters, so it is never posted."""
        named = sorted({d.reverses for d in fresh if d.kind is DecisionKind.REVERSE and d.reverses})
        if not named and not any(d.kind is DecisionKind.REVERSE for d in fresh):
            return
        own = [d.decision_id for d in fresh]
        cur.execute(_CREDITS_NAMED, (named, own))
        credits = {row[0]: int(row[1]) for row in cur.fetchall()}
        cur.execute(_REVERSED_BEFORE, (named, own))
        refused = reversal_refused(fresh, credits, {row[0] for row in cur.fetchall()})
        if refused is not None:
            decision, why = refused
            raise Rejection(Reason.INVALID_RECORD, f"decision {decision.decision_id} {why}")

    def _lock_heads(
        self, cur: psycopg.Cursor[Any], accounts: list[Account], kinds: dict[str, str]
    ) -> dict[Account, Head]:
        books_, names = _columns(accounts, 2)
        opened = [
            kinds.get(a, "person") if b == Book.PERSONAL.value else "person" for b, a in accounts
        ]
        cur.execute(_OPEN_ACCOUNTS, (books_, names, opened))
        cur.execute(_LOCK_HEADS, (books_, names))
        return {
            (str(b), str(a)): Head(int(n), int(balance), str(head))
            for b, a, n, balance, head in cur.fetchall()
        }

    def _copy(self, cur: psycopg.Cursor[Any], planned: Plan) -> None:
        """The plan's rows: postings, moved heads, period totals and outbox."""
        with cur.copy(f"COPY postings ({', '.join(_POSTING_COLUMNS)}) FROM STDIN") as cp:
            for posting in planned.postings:
                cp.write_row(_posting_row(posting))
        moved = [(b, a, h.index, h.balance_mg, h.hash) for (b, a), h in planned.heads.items()]
        cur.execute(_MOVE_HEADS, _columns(moved, 5))
        # In key order, so writers sharing period rows take their locks in one order.
        deltas = sorted(planned.period_deltas.items())
        rows = [(*key, amount, count) for key, (amount, count) in deltas]
        cur.execute(_ADD_PERIOD_TOTALS, _columns(rows, 8))
        self._add_statistics(cur, planned)
        with cur.copy("COPY outbox (posting_id, key, payload) FROM STDIN") as cp:
            for row in planned.outbox:
                cp.write_row((row.posting_id, row.key, row.payload))

    def _add_statistics(self, cur: psycopg.Cursor[Any], planned: Plan) -> None:
        """The statistics rows, in key order (writers sharing rows lock them in one order)."""
        figures = [(*key, a, n) for key, (a, n) in sorted(planned.figures.items())]
        if figures:
            cur.execute(_ADD_FIGURES, _columns(figures, 8))
        if planned.participants:
            self._add_participants(cur, planned.participants)

    def _add_participants(
        self, cur: psycopg.Cursor[Any], deltas: Mapping[PeriodKey, Mapping[Bucket, int]]
    ) -> None:
        """Move the subjects' period rows by the batch's deltas, and the counts by the
        buckets that crossed zero (domain/statistics.py `participation`)."""
        ids = self._bucket_ids(cur, {b for delta in deltas.values() for b in delta})
        by_id = {key: {ids[b]: n for b, n in delta.items()} for key, delta in deltas.items()}
        keys = sorted(by_id)
        periods, starts, subjects = _columns(keys, 3)
        cur.execute(_HELD_PERIODS, (_joined(periods), _joined(starts), subjects))
        held = {
            (str(period), start, str(subject)): dict(zip(buckets, actions, strict=True))
            for period, start, subject, buckets, actions in cur.fetchall()
        }
        rows, counts = participation(held, by_id)
        ids_, actions_ = [], []
        for key in keys:
            row = rows[key]
            order = sorted(row)
            ids_.append(_array(order))
            actions_.append(_array(row[b] for b in order))
        put = (_joined(periods), _joined(starts), subjects, ";".join(ids_), ";".join(actions_))
        cur.execute(_PUT_PERIODS, put)
        if counts:
            moves = [(*k, n) for k, n in sorted(counts.items())]
            cur.execute(_ADD_COUNTS, [_joined(column) for column in _columns(moves, 4)])

    def _bucket_ids(self, cur: psycopg.Cursor[Any], wanted: set[Bucket]) -> dict[Bucket, int]:
        """The buckets' ids, adding those the dictionary lacks. Ids read here join the
        process's cache only once their transaction has committed (`apply`): an id
        added by a transaction that rolls back names nothing."""
        missing = sorted(wanted - self._buckets.keys())
        if missing:
            columns = _columns(missing, 4)
            cur.execute(_ADD_BUCKETS, columns)
            cur.execute(_BUCKET_IDS, columns)
            self._unsure.update({(str(r), d, v, k): int(b) for b, r, d, v, k in cur.fetchall()})
        return {b: self._buckets.get(b) or self._unsure[b] for b in wanted}

    def offsets(self, group_id: str, topic: str) -> dict[int, int]:
        return views.offsets(self.conn, group_id, topic)

    def totals(self) -> dict[str, int]:
        return views.totals(self.conn)

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
