"""Reading the carbon asset registry: every query the API, the registry commands
and `carbonledger verify` make of its tables, and none that writes (the writes are
registry.py's, as the books' are books.py's beside views.py)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg

from carbonledger.contracts.regions import RegionTable, load_regions
from carbonledger.services.ledger.adapters import registry, views
from carbonledger.services.ledger.domain.aggregates import rollup_accounts
from carbonledger.services.ledger.domain.registry.holdings import Block
from carbonledger.services.ledger.domain.registry.issuance import (
    Period,
    Vintage,
    adjustment,
    outstanding_shortfall,
)
from carbonledger.services.ledger.domain.registry.serials import Range, Serial
from carbonledger.services.ledger.domain.registry.transactions import Transaction


def _dicts(cur: psycopg.Cursor[Any]) -> list[dict[str, Any]]:
    assert cur.description is not None
    names = [c.name for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@contextmanager
def snapshot(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """One REPEATABLE READ READ ONLY transaction: a read of several statements sees
    one registry, not an issuance or a move committed between two of them."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield conn


def _infos(
    conn: psycopg.Connection, only: Collection[uuid.UUID] | None = None
) -> dict[uuid.UUID, registry.IssuanceInfo]:
    rows = conn.execute(
        "SELECT issuance_id, unit_type, region, methodology_id, vintage FROM registry_issuances"
        " WHERE %s::uuid[] IS NULL OR issuance_id = ANY(%s::uuid[])",
        (None if only is None else list(only),) * 2,
    ).fetchall()
    return {i: registry.IssuanceInfo(str(u), str(r), str(m), int(v)) for i, u, r, m, v in rows}


def transactions(conn: psycopg.Connection) -> Iterator[Transaction]:
    """The whole chain, in order (call inside a transaction for one snapshot)."""
    yield from (tx for tx, _ in stored_transactions(conn))


def stored_transactions(conn: psycopg.Connection) -> Iterator[tuple[Transaction, int]]:
    """The whole chain, in order, each with the unit count its row stores (which the
    hash covers as the count of the runs moved: a row whose column differs is altered)."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT {registry.TX_COLUMNS} FROM registry_transactions ORDER BY chain_index")
        for row in _dicts(cur):
            yield registry.transaction_of(row), int(row["units"])


def all_blocks(conn: psycopg.Connection) -> list[Block]:
    return _blocks(conn, "true", ())


def head(conn: psycopg.Connection) -> tuple[int, str]:
    row = conn.execute("SELECT chain_index, hash FROM registry_head").fetchone()
    return (int(row[0]), str(row[1])) if row else (0, "0" * 64)


def issuance_rows(
    conn: psycopg.Connection, only: Collection[uuid.UUID] | None = None
) -> list[dict[str, Any]]:
    """Every issuance (or those named), oldest first, with its serial block."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT i.*, t.chain_index FROM registry_issuances i JOIN registry_transactions t"
            " USING (tx_id) WHERE %s::uuid[] IS NULL OR i.issuance_id = ANY(%s::uuid[])"
            " ORDER BY t.chain_index",
            (None if only is None else list(only),) * 2,
        )
        rows = _dicts(cur)
    for row in rows:
        info = registry.IssuanceInfo(
            row["unit_type"], row["region"], row["methodology_id"], row["vintage"]
        )
        first, last = row["serial_first"], row["serial_last"]
        row["serials"] = info.serial(Range(first, last)) if first else None
        row["shortfall_mg"] = max(0, -int(row["carried_mg"]))
    return rows


def issuance_detail(conn: psycopg.Connection, issuance: uuid.UUID) -> dict[str, Any] | None:
    """One issuance with its adjustments and contributors' total, in one snapshot."""
    with snapshot(conn):
        found = issuance_rows(conn, [issuance])
        if not found:
            return None
        row = found[0]
        with conn.cursor() as cur:
            cur.execute(
                "SELECT vintage_id, current_mg, adjusted_mg FROM registry_adjustments"
                " WHERE issuance_id = %s ORDER BY vintage_id",
                (issuance,),
            )
            row["adjustments"] = _dicts(cur)
        totals = conn.execute(
            "SELECT count(*), coalesce(sum(net_mg), 0) FROM registry_contributions"
            " WHERE issuance_id = %s",
            (issuance,),
        ).fetchone()
    row["contributors"], row["contributed_mg"] = (
        (int(totals[0]), int(totals[1])) if totals else (0, 0)
    )
    return row


def _tx_view(tx: Transaction, infos: Mapping[uuid.UUID, registry.IssuanceInfo]) -> dict[str, Any]:
    c = tx.content
    return {
        "tx_id": c.tx_id, "chain_index": tx.chain_index, "kind": c.kind.value,
        "account": c.account, "counterparty": c.counterparty, "units": c.units,
        "serials": [infos[m.issuance].serial(m.range) for m in c.moved if m.issuance in infos],
        "details": dict(c.details), "occurred_at": c.occurred_at, "hash": tx.hash,
    }  # fmt: skip


def lineage(conn: psycopg.Connection, serial: Serial) -> dict[str, Any] | None:
    """A serial's history: the issuance behind it, every transaction that moved any
    of its units (oldest first), and where its units are now, in one snapshot. None
    if never issued (also when its numbers were, but under another prefix)."""
    with snapshot(conn):
        infos = registry.issuances_of(conn, serial)
        if infos is None:
            return None
        wanted = serial.range
        history = [
            _tx_view(tx, infos)
            for tx in _moving(conn, infos)
            if any(
                m.unit_type == serial.unit_type and m.range.overlaps(wanted)
                for m in tx.content.moved
            )
        ]
        now = [
            {
                "serials": infos[b.issuance].serial(_clip(b.range, wanted)),
                "account": b.account,
                "status": "retired" if b.retired_by else "held",
                "retired_by": b.retired_by,
            }
            for b in _blocks(conn, "unit_type = %s AND first_seq <= %s AND last_seq >= %s",
                             (serial.unit_type, wanted.last, wanted.first))
        ]  # fmt: skip
        issued = issuance_rows(conn, infos)
    return {"serial": str(serial), "issuances": issued, "history": history, "now": now}


def _moving(conn: psycopg.Connection, issuances: Collection[uuid.UUID]) -> Iterator[Transaction]:
    """The transactions that moved units of these issuances, in chain order."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {registry.TX_COLUMNS} FROM registry_transactions t WHERE EXISTS"
            " (SELECT 1 FROM unnest(%s::text[]) AS i(id) WHERE strpos(t.moved, i.id) > 0)"
            " ORDER BY chain_index",
            ([str(i) for i in issuances],),
        )
        yield from (registry.transaction_of(r) for r in _dicts(cur))


def _blocks(conn: psycopg.Connection, where: str, params: tuple[Any, ...]) -> list[Block]:
    rows = conn.execute(
        "SELECT unit_type, first_seq, last_seq, issuance_id, account, retired_by"
        f" FROM registry_blocks WHERE {where} ORDER BY unit_type, first_seq",
        params,
    ).fetchall()
    return [registry.block_of(r) for r in rows]


def _clip(numbers: Range, within: Range) -> Range:
    return Range(max(numbers.first, within.first), min(numbers.last, within.last))


def retirements(conn: psycopg.Connection, account: str | None = None) -> list[dict[str, Any]]:
    """Every retirement (or one account's), oldest first: who, for whom, why, which serials."""
    with snapshot(conn), conn.cursor() as cur:
        where = " AND account = %s" if account else ""
        cur.execute(
            f"SELECT {registry.TX_COLUMNS} FROM registry_transactions WHERE kind = 'retire'{where}"
            " ORDER BY chain_index",
            (account,) if account else (),
        )
        done = [registry.transaction_of(r) for r in _dicts(cur)]
        infos = _infos(conn, {m.issuance for tx in done for m in tx.content.moved})
    return [_tx_view(tx, infos) for tx in done]


def balance(conn: psycopg.Connection, account: str) -> dict[str, Any] | None:
    """An account: its units held and retired, as serial blocks, in one snapshot.
    None if there is no such account."""
    with snapshot(conn):
        row = conn.execute(
            "SELECT name, kind, region, opened_at FROM registry_accounts WHERE account_id = %s",
            (account,),
        ).fetchone()
        if row is None:
            return None
        blocks = _blocks(conn, "account = %s", (account,))
        infos = _infos(conn, {b.issuance for b in blocks})
    held = [b for b in blocks if b.retired_by is None]
    retired = [b for b in blocks if b.retired_by is not None]
    return {
        "account": account,
        "name": row[0],
        "kind": row[1],
        "region": row[2],
        "opened_at": row[3],
        "units": sum(b.units for b in held),
        "retired_units": sum(b.units for b in retired),
        "held": [infos[b.issuance].serial(b.range) for b in held],
        "retired": [
            {"serials": infos[b.issuance].serial(b.range), "retirement": b.retired_by}
            for b in retired
        ],
    }


def proceeds_of(conn: psycopg.Connection, account: str) -> dict[str, Any]:
    """A contributor's postings in the proceeds book (fen), oldest first."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT allocation_id, tx_id, issuance_id, subject_kind, amount_fen, currency,"
            " recorded_at FROM registry_proceeds WHERE account = %s ORDER BY recorded_at,"
            " allocation_id",
            (account,),
        )
        rows = _dicts(cur)
    return {
        "account": account,
        "currency": "CNY",
        "total_fen": sum(int(r["amount_fen"]) for r in rows),
        "allocations": rows,
    }


def series_shortfalls(
    conn: psycopg.Connection, regions: RegionTable | None = None
) -> list[dict[str, Any]]:
    """Each (region, methodology) series' uncovered shortfall now: what its last
    carried remainder and its vintages' current nets leave owing, before the next
    issuance deducts it. Only series that owe something are listed."""
    table = regions or load_regions()
    series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in issuance_rows(conn):
        series.setdefault((row["region"], row["methodology_id"]), []).append(row)
    found = []
    government = views.accounts(conn, "government")
    for (region, methodology), rows in sorted(series.items()):
        accounts = [a for a in government if region in rollup_accounts("government", a, table)]
        periods = [Period(r["period_from"], r["period_to"]) for r in rows]
        nets = registry.government_nets(conn, accounts, methodology, periods)
        owed = outstanding_shortfall(
            int(rows[-1]["carried_mg"]),
            (adjustment(_vintage(conn, r), net) for r, net in zip(rows, nets, strict=True)),
        )
        if owed:
            found.append({"region": region, "methodology": methodology, "shortfall_mg": owed})
    return found


def _vintage(conn: psycopg.Connection, row: Mapping[str, Any]) -> Vintage:
    moved = conn.execute(
        "SELECT coalesce(sum(adjusted_mg), 0) FROM registry_adjustments WHERE vintage_id = %s",
        (row["issuance_id"],),
    ).fetchone()
    net = int(row["net_mg"])
    return Vintage(row["issuance_id"], net, net + (int(moved[0]) if moved else 0))


def account_rows(conn: psycopg.Connection) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM registry_accounts ORDER BY account_id")
        return _dicts(cur)


def contribution_rows(conn: psycopg.Connection) -> dict[uuid.UUID, list[tuple[str, str, int]]]:
    """Every issuance's snapshot as (account, subject kind, mg) rows."""
    found: dict[uuid.UUID, list[tuple[str, str, int]]] = {}
    rows = conn.execute(
        "SELECT issuance_id, account, subject_kind, net_mg FROM registry_contributions"
    ).fetchall()
    for issuance, account, kind, mg in rows:
        found.setdefault(issuance, []).append((str(account), str(kind), int(mg)))
    return found


def adjustment_rows(conn: psycopg.Connection) -> dict[uuid.UUID, list[tuple[uuid.UUID, int, int]]]:
    """Every issuance's adjustments as (vintage, current mg, adjusted mg) rows."""
    found: dict[uuid.UUID, list[tuple[uuid.UUID, int, int]]] = {}
    rows = conn.execute(
        "SELECT issuance_id, vintage_id, current_mg, adjusted_mg FROM registry_adjustments"
    ).fetchall()
    for issuance, vintage, current, adjusted in rows:
        found.setdefault(issuance, []).append((vintage, int(current), int(adjusted)))
    return found


def proceeds_rows(conn: psycopg.Connection) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM registry_proceeds ORDER BY tx_id, issuance_id, account")
        return _dicts(cur)


def contributions(conn: psycopg.Connection, issuance: uuid.UUID) -> dict[str, tuple[str, int]]:
    with conn.cursor() as cur:
        return registry.Registry._snapshot(cur, issuance)
