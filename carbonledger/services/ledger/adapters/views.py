"""Reading the books: every query the API, the operator commands, the audit, the
demo and the bench make of the ledger's PostgreSQL tables, and none that writes.

Each view is a function of a connection (CQRS-style read side: the write side,
`books.Books`, goes through the domain planner; reads go straight to SQL).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from typing import Any, NamedTuple

import psycopg

from carbonledger.contracts.calendar import CST_ZONE_NAME
from carbonledger.services.ledger.domain.chain import ENTRY_FIELDS
from carbonledger.services.ledger.domain.family import (
    FamilyReport,
    FamilyView,
    MemberTotal,
    memberships,
)

BOOKS = ("personal", "enterprise", "government")
_SELECT_ENTRIES = f"SELECT {', '.join(ENTRY_FIELDS)} FROM postings"
# Dates in SQL are China Standard Time dates (contracts/calendar.py), as in Python.
_IN_CST = f"AT TIME ZONE '{CST_ZONE_NAME}'"


def _dicts(cursor: psycopg.Cursor[Any]) -> list[Mapping[str, Any]]:
    assert cursor.description is not None
    names = [col.name for col in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _count(conn: psycopg.Connection, query: str, args: tuple[Any, ...] = ()) -> int:
    row = conn.execute(query, args).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


# --- the writer's progress ----------------------------------------------------------


def offsets(conn: psycopg.Connection, group_id: str, topic: str) -> dict[int, int]:
    """The next offset per partition the ledger writer recorded with its postings."""
    rows = conn.execute(
        "SELECT partition, next_offset FROM consumer_offsets WHERE group_id = %s AND topic = %s",
        (group_id, topic),
    ).fetchall()
    return {int(p): int(o) for p, o in rows}


def account_event_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Recorded account events by type (consent.granted, ..., family.unlinked)."""
    rows = conn.execute(
        "SELECT 'consent.' || type, count(*) FROM consent_events GROUP BY 1"
        " UNION ALL SELECT 'family.' || type, count(*) FROM family_events GROUP BY 1"
    ).fetchall()
    return {str(kind): int(n) for kind, n in rows}


def writer_offsets(conn: psycopg.Connection, group_id: str) -> dict[str, dict[int, int]]:
    """The ledger writer's recorded offsets of each topic it reads (decisions and
    account events), by topic, then partition."""
    found: dict[str, dict[int, int]] = {}
    rows = conn.execute(
        "SELECT topic, partition, next_offset FROM consumer_offsets WHERE group_id = %s",
        (group_id,),
    ).fetchall()
    for topic, partition, next_offset in rows:
        found.setdefault(str(topic), {})[int(partition)] = int(next_offset)
    return found


def backend_pid(conn: psycopg.Connection) -> int | None:
    """The process id of the server process serving `conn` (the benchmark's probe
    finds PostgreSQL's main process as its parent)."""
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    return int(row[0]) if row else None


# --- balances --------------------------------------------------------------------------


def totals(conn: psycopg.Connection) -> dict[str, int]:
    """Each book's total (the three must always be equal)."""
    rows = conn.execute("SELECT book, coalesce(sum(balance_mg), 0) FROM balances GROUP BY book")
    found = {str(book): int(total) for book, total in rows.fetchall()}
    return {book: found.get(book, 0) for book in BOOKS}


def totals_by_kind(conn: psycopg.Connection) -> tuple[dict[str, int], dict[str, int]]:
    """Each book's total, and the personal book's split into people's and units'
    accounts (`person`, `unit`), from the balances in one statement (one snapshot)."""
    rows = conn.execute(
        "SELECT book, subject_kind, coalesce(sum(balance_mg), 0) FROM balances"
        " GROUP BY book, subject_kind"
    ).fetchall()
    books = dict.fromkeys(BOOKS, 0)
    kinds = {"person": 0, "unit": 0}
    for book, kind, total in rows:
        books[str(book)] = books.get(str(book), 0) + int(total)
        if book == "personal":
            kinds[str(kind)] = kinds.get(str(kind), 0) + int(total)
    return books, kinds


def balance(conn: psycopg.Connection, book: str, account: str) -> tuple[int, int] | None:
    """An account's balance and number of postings, or None if it has none."""
    row = conn.execute(
        "SELECT balance_mg, postings FROM balances WHERE book = %s AND account = %s",
        (book, account),
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else None


def balances(conn: psycopg.Connection, book: str) -> dict[str, int]:
    rows = conn.execute("SELECT account, balance_mg FROM balances WHERE book = %s", (book,))
    return {str(a): int(b) for a, b in rows.fetchall()}


def personal_by_kind(conn: psycopg.Connection) -> dict[str, tuple[int, int]]:
    """The personal book split by whose accounts they are: kind -> (accounts, total),
    from the balance rows (each says its kind; `carbonledger verify` checks it
    against the account's postings)."""
    rows = conn.execute(
        "SELECT subject_kind, count(*), coalesce(sum(balance_mg), 0) FROM balances"
        " WHERE book = 'personal' GROUP BY subject_kind"
    ).fetchall()
    return {str(kind): (int(n), int(total)) for kind, n, total in rows}


def unit_accounts(conn: psycopg.Connection) -> set[str]:
    """The personal-book accounts that are units' (organisations'), not people's."""
    return unit_balances(conn)


def unit_balances(conn: psycopg.Connection) -> set[str]:
    """The personal accounts whose balance row says they are units'."""
    rows = conn.execute(
        "SELECT account FROM balances WHERE book = 'personal' AND subject_kind = 'unit'"
    ).fetchall()
    return {str(row[0]) for row in rows}


def balances_of(conn: psycopg.Connection, book: str, accounts: Iterable[str]) -> dict[str, int]:
    rows = conn.execute(
        "SELECT account, balance_mg FROM balances WHERE book = %s AND account = ANY(%s)",
        (book, list(accounts)),
    )
    return {str(a): int(b) for a, b in rows.fetchall()}


def heads(conn: psycopg.Connection) -> dict[tuple[str, str], tuple[int, int, str]]:
    """Every account's head as its balance row holds it: postings, balance, last hash."""
    rows = conn.execute("SELECT book, account, postings, balance_mg, head_hash FROM balances")
    return {(str(b), str(a)): (int(n), int(bal), str(h)) for b, a, n, bal, h in rows.fetchall()}


def head_of(conn: psycopg.Connection, book: str, account: str) -> tuple[int, int, str] | None:
    row = conn.execute(
        "SELECT postings, balance_mg, head_hash FROM balances WHERE book = %s AND account = %s",
        (book, account),
    ).fetchone()
    return (int(row[0]), int(row[1]), str(row[2])) if row else None


def accounts(conn: psycopg.Connection, book: str) -> list[str]:
    """A book's accounts, in order."""
    rows = conn.execute(
        "SELECT account FROM balances WHERE book = %s ORDER BY account", (book,)
    ).fetchall()
    return [str(a) for (a,) in rows]


# --- postings -----------------------------------------------------------------------------


def posting_count(conn: psycopg.Connection) -> int:
    return _count(conn, "SELECT count(*) FROM postings")


def last_seq(conn: psycopg.Connection) -> int:
    """The sequence number of the newest posting (0 for none)."""
    return _count(conn, "SELECT coalesce(max(seq), 0) FROM postings")


def last_posted_at(conn: psycopg.Connection, after_seq: int) -> float:
    """When the newest posting after `after_seq` was made (epoch seconds, 0 for none)."""
    row = conn.execute(
        "SELECT extract(epoch FROM max(posted_at)) FROM postings WHERE seq > %s", (after_seq,)
    ).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


def first_credits(conn: psycopg.Connection, after_seq: int) -> dict[str, float]:
    """Event id -> when its first credit was posted, for postings made after `after_seq`."""
    rows = conn.execute(
        "SELECT d.event_id, extract(epoch FROM min(p.posted_at)) FROM postings p"
        " JOIN decisions d ON d.decision_id = p.decision_id"
        " WHERE p.seq > %s AND p.book = 'personal' AND d.kind = 'credit'"
        " GROUP BY d.event_id",
        (after_seq,),
    ).fetchall()
    return {str(event): float(at) for event, at in rows}


def recent_postings(
    conn: psycopg.Connection, book: str, account: str, limit: int, before_seq: int | None = None
) -> list[Mapping[str, Any]]:
    """An account's postings, newest first, with the decision and event behind each."""
    rows = conn.execute(
        "SELECT p.seq, p.posting_id, p.decision_id, p.claim_id, p.amount_mg, p.behaviour_type,"
        " p.region, p.partner, p.methodology_id, p.methodology_version, p.behaviour_time,"
        " p.posted_at, p.subject_kind, d.kind, d.event_source, d.event_id"
        " FROM postings p JOIN decisions d USING (decision_id)"
        " WHERE p.book = %s AND p.account = %s AND p.seq < %s"
        " ORDER BY p.seq DESC LIMIT %s",
        (book, account, before_seq if before_seq is not None else 2**62, limit),
    )
    return _dicts(rows)


def subject_kind(conn: psycopg.Connection, subject: str) -> str | None:
    """Whether a personal account is a person's or a unit's (its balance row says),
    or None if it has no postings."""
    row = conn.execute(
        "SELECT subject_kind FROM balances WHERE book = 'personal' AND account = %s", (subject,)
    ).fetchone()
    return str(row[0]) if row else None


def postings_of_decisions(
    conn: psycopg.Connection, decision_ids: list[Any]
) -> dict[Any, list[Mapping[str, Any]]]:
    """The postings each of these decisions made, in one query."""
    rows = conn.execute(
        "SELECT decision_id, posting_id, book, account, amount_mg, posted_at, subject_kind"
        " FROM postings"
        " WHERE decision_id = ANY(%s) ORDER BY book",
        (decision_ids,),
    )
    made: dict[Any, list[Mapping[str, Any]]] = {d: [] for d in decision_ids}
    for row in _dicts(rows):
        made[row["decision_id"]].append(row)
    return made


# --- chains, for the audit ------------------------------------------------------------------


def chain_entries(
    conn: psycopg.Connection, account: tuple[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """Every posting (or one account's) as a chain entry, by book, account and chain
    index. Streams through a server-side cursor: call it inside a transaction."""
    where, args = (" WHERE book = %s AND account = %s", account) if account else ("", ())
    with conn.cursor(name="audit") as cur:  # a whole ledger does not fit in memory
        cur.itersize = 5000
        cur.execute(_SELECT_ENTRIES + where + " ORDER BY book, account, chain_index", args)
        for row in cur:
            yield dict(zip(ENTRY_FIELDS, row, strict=True))


def chain_stretch(
    conn: psycopg.Connection, book: str, account: str, first: date, last: date
) -> list[dict[str, Any]]:
    """The account's chain from its first to its last posting with behaviour (China
    Standard Time) in [first, last]."""
    bounds = conn.execute(
        "SELECT min(chain_index), max(chain_index) FROM postings WHERE book = %s"
        f" AND account = %s AND (behaviour_time {_IN_CST})::date"
        " BETWEEN %s AND %s",
        (book, account, first, last),
    ).fetchone()
    if not bounds or bounds[0] is None:
        return []
    rows = conn.execute(
        _SELECT_ENTRIES + " WHERE book = %s AND account = %s"
        " AND chain_index BETWEEN %s AND %s ORDER BY chain_index",
        (book, account, bounds[0], bounds[1]),
    ).fetchall()
    return [dict(zip(ENTRY_FIELDS, row, strict=True)) for row in rows]


def uneven_decisions(conn: psycopg.Connection, limit: int = 20) -> list[Any]:
    """Decisions whose postings are not three of exactly the decision's amount."""
    rows = conn.execute(
        "SELECT d.decision_id FROM decisions d JOIN postings p USING (decision_id)"
        " GROUP BY d.decision_id, d.amount_mg"
        " HAVING count(*) <> 3 OR bool_or(p.amount_mg <> d.amount_mg) LIMIT %s",
        (limit,),
    ).fetchall()
    return [d for (d,) in rows]


def misdirected_amounts(conn: psycopg.Connection, bound_mg: int, limit: int = 20) -> list[str]:
    """Decisions whose amount has the wrong sign for their kind or exceeds `bound_mg`
    in size: a credit adds (>= 0), a reverse takes away (<= 0)."""
    rows = conn.execute(
        "SELECT decision_id, kind, amount_mg FROM decisions"
        " WHERE abs(amount_mg::numeric) > %s"
        " OR (kind = 'credit' AND amount_mg < 0) OR (kind = 'reverse' AND amount_mg > 0)"
        " ORDER BY decision_id LIMIT %s",
        (bound_mg, limit),
    ).fetchall()
    return [f"{d} ({kind} of {amount} mg)" for d, kind, amount in rows]


def stray_reversals(conn: psycopg.Connection, limit: int = 20) -> list[str]:
    """Reverse decisions that do not cancel exactly one existing credit, and credits
    reversed more than once."""
    rows = conn.execute(
        "SELECT r.decision_id, CASE WHEN c.decision_id IS NULL THEN 'reverses no credit'"
        " ELSE 'does not cancel the amount of ' || c.decision_id END"
        " FROM decisions r LEFT JOIN decisions c"
        " ON c.decision_id = r.reverses AND c.kind = 'credit'"
        " WHERE r.kind = 'reverse' AND (c.decision_id IS NULL OR r.amount_mg <> -c.amount_mg)"
        " UNION ALL"
        " SELECT reverses, 'reversed ' || count(*) || ' times' FROM decisions"
        " WHERE kind = 'reverse' AND reverses IS NOT NULL GROUP BY reverses HAVING count(*) > 1"
        " LIMIT %s",
        (limit,),
    ).fetchall()
    return [f"{d} {why}" for d, why in rows]


def unposted_kinds(conn: psycopg.Connection, limit: int = 20) -> list[Any]:
    """Decisions that must not move the books (duplicate, not credited) but did."""
    rows = conn.execute(
        "SELECT DISTINCT d.decision_id FROM decisions d JOIN postings p USING (decision_id)"
        " WHERE d.kind NOT IN ('credit', 'reverse') LIMIT %s",
        (limit,),
    ).fetchall()
    return [d for (d,) in rows]


def posting_sums(conn: psycopg.Connection) -> dict[tuple[str, str], int]:
    """Each account's sum of postings, computed exactly (numeric, no 64-bit overflow)."""
    rows = conn.execute(
        "SELECT book, account, sum(amount_mg::numeric) FROM postings GROUP BY book, account"
    ).fetchall()
    return {(str(b), str(a)): int(total) for b, a, total in rows}


def posting_regions(conn: psycopg.Connection) -> set[str]:
    """Every region a posting or a government account names."""
    rows = conn.execute(
        "SELECT region FROM postings UNION SELECT account FROM postings WHERE book = 'government'"
    ).fetchall()
    return {str(r) for (r,) in rows}


# --- period totals ---------------------------------------------------------------------------


def period_rows(
    conn: psycopg.Connection, book: str, account: str, period: str = "month"
) -> list[Mapping[str, Any]]:
    """An account's period totals by behaviour type and region (a few rows per month)."""
    rows = conn.execute(
        "SELECT period_start, behaviour_type, region, amount_mg, postings FROM period_totals"
        " WHERE book = %s AND account = %s AND period = %s ORDER BY period_start",
        (book, account, period),
    )
    return _dicts(rows)


def account_totals(conn: psycopg.Connection, book: str, accounts: list[str]) -> dict[str, int]:
    """Each account's all-time total from the monthly aggregates (roll-ups included)."""
    rows = conn.execute(
        "SELECT account, sum(amount_mg) FROM period_totals"
        " WHERE book = %s AND period = 'month' AND account = ANY(%s) GROUP BY account",
        (book, accounts),
    )
    return {str(a): int(t) for a, t in rows.fetchall()}


def national_total(conn: psycopg.Connection) -> int:
    """The national roll-up of the government book, from the monthly aggregates."""
    return _count(
        conn,
        "SELECT coalesce(sum(amount_mg), 0) FROM period_totals"
        " WHERE book = 'government' AND account = '000000' AND period = 'month'",
    )


# --- employers ---------------------------------------------------------------------------------


def employer_rows(conn: psycopg.Connection, employer: str) -> tuple[int, list[Mapping[str, Any]]]:
    """An employer's members, and their personal postings since each was linked,
    summed by behaviour type and month (China Standard Time)."""
    members = _count(conn, "SELECT count(*) FROM employer_links WHERE employer = %s", (employer,))
    rows = conn.execute(
        "SELECT p.behaviour_type, date_trunc('month', p.behaviour_time"
        f" {_IN_CST})::date AS period_start, sum(p.amount_mg) AS amount_mg"
        " FROM employer_links l JOIN postings p ON p.book = 'personal'"
        " AND p.account = l.subject AND p.posted_at >= l.linked_at"
        " WHERE l.employer = %s GROUP BY 1, 2",
        (employer,),
    )
    return members, _dicts(rows)


# --- consent and family accounts ----------------------------------------------------------

_CONSENT_READ = (
    "SELECT type, partner, scope, evidence_id, given_at, recorded_at, region, event_source,"
    " event_id, subject_kind FROM consent_events"
)


def consent_history(conn: psycopg.Connection, subject: str) -> list[Mapping[str, Any]]:
    """A subject's consent history: every entry, by the time the user gave or withdrew
    consent, then in the order recorded."""
    rows = conn.execute(_CONSENT_READ + " WHERE subject = %s ORDER BY given_at, seq", (subject,))
    return _dicts(rows)


_FAMILY_READ = (
    "SELECT account_event_id, reported_by, head, member, partner, type, time, evidence_id,"
    " event_source, event_id FROM family_events"
)


def family_reports_of_head(conn: psycopg.Connection, head: str) -> list[Mapping[str, Any]]:
    """Every report about the members this head has ever been reported with, whatever
    their head (a member's other families decide whether a link takes effect)."""
    rows = conn.execute(
        _FAMILY_READ + " WHERE member IN (SELECT member FROM family_events WHERE head = %s)",
        (head,),
    )
    return _dicts(rows)


def family_view(conn: psycopg.Connection, head: str) -> FamilyView | None:
    """The family account of a head (None if no family was ever reported for it)."""
    reports = [FamilyReport(**r) for r in family_reports_of_head(conn, head)]
    if not reports:
        return None
    found = [m for (h, _), m in sorted(memberships(reports).items()) if h == head]
    sums = iter(
        personal_within(conn, [(m.member, i.start, i.end) for m in found for i in m.intervals])
    )
    parts = []
    for m in found:
        own = [next(sums) for _ in m.intervals]
        parts.append(MemberTotal(m, sum(n for n, _ in own), sum(c for _, c in own)))
    balance_row = balance(conn, "personal", head)
    return FamilyView(head, balance_row[0] if balance_row else 0, parts)


def family_reports_of_member(conn: psycopg.Connection, member: str) -> list[Mapping[str, Any]]:
    rows = conn.execute(_FAMILY_READ + " WHERE member = %s", (member,))
    return _dicts(rows)


def personal_within(
    conn: psycopg.Connection, spans: list[tuple[str, Any, Any]]
) -> list[tuple[int, int]]:
    """For each (account, start, end or None), the net amount and count of the
    account's personal postings whose behaviour time is in [start, end)."""
    if not spans:
        return []
    rows = conn.execute(
        "SELECT s.n, coalesce(sum(p.amount_mg), 0), count(p.posting_id)"
        " FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) WITH ORDINALITY"
        "  AS s(account, start_at, end_at, n)"
        " LEFT JOIN postings p ON p.book = 'personal' AND p.account = s.account"
        "  AND p.behaviour_time >= s.start_at AND (s.end_at IS NULL OR p.behaviour_time < s.end_at)"
        " GROUP BY s.n ORDER BY s.n",
        ([a for a, _, _ in spans], [s for _, s, _ in spans], [e for _, _, e in spans]),
    ).fetchall()
    return [(int(net), int(count)) for _, net, count in rows]


def invalid_account_rows(conn: psycopg.Connection, limit: int = 20) -> list[str]:
    """Consent and family rows naming what is not a subject id, or a family report by
    neither side or of a subject with itself (the tables' checks refuse them; this
    finds rows written around them)."""
    rows = conn.execute(
        "SELECT 'consent event ' || account_event_id FROM consent_events"
        " WHERE subject !~ '^[0-9a-f]{64}$'"
        " UNION ALL SELECT 'family event ' || account_event_id FROM family_events"
        " WHERE head !~ '^[0-9a-f]{64}$' OR member !~ '^[0-9a-f]{64}$' OR head = member"
        " OR reported_by NOT IN (head, member)"
        " LIMIT %s",
        (limit,),
    ).fetchall()
    return [str(r) for (r,) in rows]


# --- decisions and claims ---------------------------------------------------------------------


def decisions_of(conn: psycopg.Connection, source: str, event_id: str) -> list[Mapping[str, Any]]:
    """Every decision about one partner event, oldest first, with its full claim."""
    rows = conn.execute(
        "SELECT decision_id, kind, claim_id, amount_mg, winner_claim_id, winner_source,"
        " winner_event_id, reverses, reason, reason_detail, sequence, claim, recorded_at"
        " FROM decisions WHERE event_source = %s AND event_id = %s"
        " ORDER BY recorded_at, sequence, decision_id",
        (source, event_id),
    )
    return _dicts(rows)


def duplicates_of(conn: psycopg.Connection, source: str, event_id: str) -> list[Mapping[str, Any]]:
    """Other partners' claims last recorded as duplicates of this event's claim."""
    rows = conn.execute(
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


def decisions_by_id(conn: psycopg.Connection, decision_ids: list[Any]) -> list[tuple[Any, ...]]:
    """These decisions as (decision_id, kind, amount_mg, reverses, reason, claim), by id."""
    return conn.execute(
        "SELECT decision_id, kind, amount_mg, reverses, reason, claim FROM decisions"
        " WHERE decision_id = ANY(%s) ORDER BY decision_id",
        (decision_ids,),
    ).fetchall()


def claims_under(
    conn: psycopg.Connection, methodology_id: str, first: date, last: date
) -> Iterator[tuple[Mapping[str, Any], int, Any]]:
    """Each event quantified under a methodology whose behaviour ended (China
    Standard Time) in [first, last]: its latest claim, net amount, standing credit."""
    rows = conn.execute(
        "WITH events AS (SELECT DISTINCT event_source, event_id FROM decisions"
        "  WHERE claim->'methodology'->>'id' = %s AND ((claim->>'ended_at')::timestamptz"
        f"  {_IN_CST})::date BETWEEN %s AND %s)"
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


class EventTally(NamedTuple):
    decisions: int
    standing_credits: int
    postings: int


def event_tallies(conn: psycopg.Connection, id_prefix: str) -> dict[tuple[str, str], EventTally]:
    """Per partner event whose id starts with `id_prefix` (a test's or chaos run's tag):
    how many decisions it has, how many credits stand (credits less reversals) and how
    many postings it made. An event absent here reached no decision."""
    rows = conn.execute(
        "SELECT d.event_source, d.event_id, count(DISTINCT d.decision_id),"
        " count(DISTINCT d.decision_id) FILTER (WHERE d.kind = 'credit')"
        "  - count(DISTINCT d.decision_id) FILTER (WHERE d.kind = 'reverse'),"
        " count(p.posting_id)"
        " FROM decisions d LEFT JOIN postings p USING (decision_id)"
        " WHERE left(d.event_id, length(%s)) = %s GROUP BY 1, 2",
        (id_prefix, id_prefix),
    ).fetchall()
    return {(s, i): EventTally(int(n), int(c), int(p)) for s, i, n, c, p in rows}
