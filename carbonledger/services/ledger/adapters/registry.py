"""The carbon asset registry in PostgreSQL (migration 0007, docs/registry.md).

Every change is one registry transaction, appended to the hash chain in the same
database transaction as the holdings it changes and the outbox rows that publish it
on `registry.events`. Writers queue on one advisory lock, taken before their
REPEATABLE READ transaction begins: each sees every registry change committed
before it, and an issuance reads the books in one snapshot. So two retirements of
the same units, from two processes, run one after the other, and the second finds
the units retired.

The rules are the domain's (domain/registry/); this module locks, reads, calls them
and writes what they say. The reads the API, the CLI and the audit make are in
registry_views.py.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from carbonledger.contracts import ids, topics
from carbonledger.contracts.calendar import CST_ZONE_NAME
from carbonledger.contracts.regions import NATIONAL, RegionTable, load_regions
from carbonledger.contracts.registry import (
    TRANSACTION_KEY,
    ProceedsAllocation,
    RegistryTransaction,
)
from carbonledger.services.ledger.adapters import views
from carbonledger.services.ledger.domain.aggregates import rollup_accounts
from carbonledger.services.ledger.domain.registry.holdings import (
    Block,
    Moved,
    Refused,
    carve,
    choose,
    first_retired,
)
from carbonledger.services.ledger.domain.registry.issuance import (
    Issued,
    Period,
    Units,
    Vintage,
    adjustment,
    period_refused,
    rows_digest,
    units_of,
)
from carbonledger.services.ledger.domain.registry.proceeds import allocate, units_by_issuance
from carbonledger.services.ledger.domain.registry.serials import (
    MAX_SEQUENCE,
    UNIT_TYPE,
    Range,
    Serial,
)
from carbonledger.services.ledger.domain.registry.transactions import (
    Content,
    Kind,
    Transaction,
    moved_text,
    parse_moved,
)

REGISTRY_LOCK = 0x0CA4B2  # advisory lock key: one registry writer at a time
ACCOUNT_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
HOLDING_PREFIX = "holding-"
IN_CST = f"AT TIME ZONE '{CST_ZONE_NAME}'"
TX_COLUMNS = (
    "chain_index, tx_id, kind, account, counterparty, units, moved, details, occurred_at,"
    " prev_hash, hash"
)
TX_NAMES = tuple(name.strip() for name in TX_COLUMNS.split(","))


def holding_account(region: str) -> str:
    """A region's holding (issuance) account."""
    return f"{HOLDING_PREFIX}{region}"


@dataclass(frozen=True)
class Verification:
    """A verifier's sign-off on an export package, as the issuance records it."""

    verifier: str
    verified_at: datetime
    manifest_sha256: str
    net_mg: int  # the methodology's net for the period, as the package shows it


@dataclass(frozen=True)
class IssuanceInfo:
    """What a serial is written with."""

    unit_type: str
    region: str
    methodology: str
    vintage: int

    def serial(self, numbers: Range) -> str:
        return str(Serial(self.unit_type, self.region, self.methodology, self.vintage, numbers))

    def names(self, serial: Serial) -> bool:
        """Whether the serial's prefix is this issuance's (not only its numbers)."""
        return (serial.unit_type, serial.region, serial.methodology, serial.vintage) == (
            self.unit_type, self.region, self.methodology, self.vintage,
        )  # fmt: skip


def issuances_of(
    cur: psycopg.Connection | psycopg.Cursor[Any], serial: Serial
) -> dict[uuid.UUID, IssuanceInfo] | None:
    """The issuances whose numbers the serial's overlap, if every one of them is what
    the serial's prefix names (unit type, region, methodology, vintage); None when
    none does or any differs: numbers alone do not make a unit's serial."""
    rows = cur.execute(
        "SELECT issuance_id, unit_type, region, methodology_id, vintage FROM registry_issuances"
        " WHERE unit_type = %s AND serial_first <= %s AND serial_last >= %s",
        (serial.unit_type, serial.range.last, serial.range.first),
    ).fetchall()
    found = {i: IssuanceInfo(str(u), str(r), str(m), int(v)) for i, u, r, m, v in rows}
    if not found or not all(info.names(serial) for info in found.values()):
        return None
    return found


def issuance_id(region: str, methodology: str, period: Period) -> uuid.UUID:
    """One issuance per (region, methodology, period): a repeat has the same id."""
    return uuid.uuid5(
        ids.NAMESPACE, f"issuance\x1f{region}\x1f{methodology}\x1f{period.first}\x1f{period.last}"
    )


def request_tx_id(request: str | None) -> uuid.UUID:
    """The transaction id of an operator's request: the same request id, the same
    transaction (so a repeated command is found, not done twice); none, a new one."""
    if request is None:
        return uuid.uuid4()
    if not request.strip():
        raise Refused("a request id is not blank")
    return uuid.uuid5(ids.NAMESPACE, f"registry-request\x1f{request}")


def _allocation_id(tx: uuid.UUID, issuance: uuid.UUID, account: str) -> uuid.UUID:
    return uuid.uuid5(ids.NAMESPACE, f"allocation\x1f{tx}\x1f{issuance}\x1f{account}")


def transaction_of(row: Mapping[str, Any]) -> Transaction:
    """A registry_transactions row as the domain's chained transaction."""
    content = Content(
        tx_id=row["tx_id"],
        kind=Kind(row["kind"]),
        account=row["account"],
        occurred_at=row["occurred_at"],
        counterparty=row["counterparty"],
        moved=parse_moved(row["moved"]),
        details=row["details"],
    )
    return Transaction(content, int(row["chain_index"]), str(row["prev_hash"]), str(row["hash"]))


class _Writing:
    """One registry change in progress: its cursor, the chain's head, and appending."""

    def __init__(self, cur: psycopg.Cursor[Any], index: int, head: str) -> None:
        self.cur, self.index, self.head = cur, index, head
        self.known: dict[uuid.UUID, IssuanceInfo] = {}

    def info(self, issuance: uuid.UUID) -> IssuanceInfo:
        if issuance not in self.known:
            row = self.cur.execute(
                "SELECT unit_type, region, methodology_id, vintage FROM registry_issuances"
                " WHERE issuance_id = %s",
                (issuance,),
            ).fetchone()
            if row is None:
                raise Refused(f"no issuance {issuance}")
            self.known[issuance] = IssuanceInfo(str(row[0]), str(row[1]), str(row[2]), int(row[3]))
        return self.known[issuance]

    def append(self, content: Content) -> Transaction:
        """The transaction, chained after the head, with its outbox row."""
        tx = Transaction.after(self.index, self.head, content)
        c = content
        self.cur.execute(
            f"INSERT INTO registry_transactions ({TX_COLUMNS})"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                tx.chain_index, c.tx_id, c.kind.value, c.account, c.counterparty, c.units,
                moved_text(c.moved), Jsonb(dict(c.details)), c.occurred_at, tx.prev_hash, tx.hash,
            ),
        )  # fmt: skip
        self.cur.execute(
            "UPDATE registry_head SET chain_index = %s, hash = %s", (tx.chain_index, tx.hash)
        )
        self.index, self.head = tx.chain_index, tx.hash
        event = RegistryTransaction(
            tx_id=c.tx_id,
            chain_index=tx.chain_index,
            kind=c.kind.value,
            account=c.account,
            counterparty=c.counterparty,
            units=c.units,
            serials=[self.info(m.issuance).serial(m.range) for m in c.moved],
            details=dict(c.details),
            occurred_at=c.occurred_at,
            prev_hash=tx.prev_hash,
            hash=tx.hash,
        )
        self.publish(c.tx_id, TRANSACTION_KEY, event.to_bytes())
        return tx

    def publish(self, row_id: uuid.UUID, key: str, payload: bytes) -> None:
        self.cur.execute(
            "INSERT INTO outbox (posting_id, key, payload, topic) VALUES (%s, %s, %s, %s)",
            (row_id, key, payload, topics.REGISTRY),
        )

    def blocks_of(self, account: str) -> list[Block]:
        rows = self.cur.execute(
            "SELECT unit_type, first_seq, last_seq, issuance_id, account, retired_by"
            " FROM registry_blocks WHERE account = %s ORDER BY unit_type, first_seq FOR UPDATE",
            (account,),
        ).fetchall()
        return [block_of(row) for row in rows]

    def rewrite(self, removed: Iterable[Block], added: Iterable[Block]) -> None:
        """The holdings after a move: the blocks it cut removed, the pieces added."""
        for b in removed:
            self.cur.execute(
                "DELETE FROM registry_blocks WHERE unit_type = %s AND first_seq = %s",
                (b.unit_type, b.range.first),
            )
        for b in added:
            self.cur.execute(
                "INSERT INTO registry_blocks"
                " (unit_type, first_seq, last_seq, issuance_id, account, retired_by)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (b.unit_type, b.range.first, b.range.last, b.issuance, b.account, b.retired_by),
            )


def government_nets(
    cur: psycopg.Connection | psycopg.Cursor[Any],
    accounts: list[str],
    methodology: str,
    periods: list[Period],
) -> list[int]:
    """The government book's net under the methodology (any version) for each period,
    by the behaviour's China Standard Time date, over these accounts: one statement."""
    rows = cur.execute(
        "SELECT v.n, coalesce(sum(p.amount_mg), 0) FROM"
        " unnest(%s::int[], %s::date[], %s::date[]) AS v(n, day0, day1)"
        " LEFT JOIN postings p ON p.book = 'government' AND p.account = ANY(%s)"
        f" AND p.methodology_id = %s AND (p.behaviour_time {IN_CST})::date"
        " BETWEEN v.day0 AND v.day1 GROUP BY v.n ORDER BY v.n",
        (
            list(range(len(periods))),
            [p.first for p in periods],
            [p.last for p in periods],
            accounts,
            methodology,
        ),
    ).fetchall()
    return [int(total) for _, total in rows]


def block_of(row: Sequence[Any]) -> Block:
    unit_type, first, last, issuance, account, retired_by = row
    return Block(str(unit_type), Range(int(first), int(last)), issuance, str(account), retired_by)


class Registry:
    """The registry over one autocommit connection: its operations and its reads."""

    def __init__(self, conn: psycopg.Connection, regions: RegionTable | None = None) -> None:
        # The lock is the session's and each write its own transaction: autocommit only.
        if not conn.autocommit:
            raise ValueError("the registry needs an autocommit connection")
        self.conn = conn
        self.regions = regions or load_regions()

    @contextmanager
    def _writing(self) -> Iterator[_Writing]:
        self.conn.execute("SELECT pg_advisory_lock(%s)", (REGISTRY_LOCK,))
        try:
            with self.conn.transaction(), self.conn.cursor() as cur:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                row = cur.execute(
                    "SELECT chain_index, hash FROM registry_head FOR UPDATE"
                ).fetchone()
                assert row is not None, "registry_head has its row from migration 0007"
                yield _Writing(cur, int(row[0]), str(row[1]))
        finally:
            self.conn.execute("SELECT pg_advisory_unlock(%s)", (REGISTRY_LOCK,))

    # --- accounts ------------------------------------------------------------------------

    def open_account(
        self, account: str, name: str, kind: str = "buyer", request: str | None = None
    ) -> dict[str, Any]:
        """A buyer account (a registered organisation), or a region's holding account
        (`holding-<region>`). Refused if the id is taken or not well formed; a repeated
        `request` returns the account it opened."""
        tx_id = request_tx_id(request)
        with self._writing() as w:
            return self._open(w, account, name, kind, tx_id)

    def _open(
        self, w: _Writing, account: str, name: str, kind: str, tx_id: uuid.UUID | None = None
    ) -> dict[str, Any]:
        region = self._account_region(account, kind)
        if not name.strip():
            raise Refused("an account needs a name")
        details = {"name": name, "kind": kind, "region": region}
        if tx_id is not None and (done := _repeat(w, tx_id, Kind.OPEN, account, None, 0, details)):
            return _opened(done)
        if w.cur.execute(
            "SELECT 1 FROM registry_accounts WHERE account_id = %s", (account,)
        ).fetchone():
            raise Refused(f"account {account} exists")
        now = datetime.now(UTC)
        tx = w.append(Content(tx_id or uuid.uuid4(), Kind.OPEN, account, now, details=details))
        w.cur.execute(
            "INSERT INTO registry_accounts (account_id, name, kind, region, opened_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (account, name, kind, region, now),
        )
        return _opened(tx.content)

    def _account_region(self, account: str, kind: str) -> str | None:
        if kind not in ("buyer", "holding"):
            raise Refused(f"an account is a buyer or a holding account, not {kind!r}")
        if not ACCOUNT_ID.match(account):
            raise Refused(f"{account!r} is not an account id: a-z, 0-9, '.', '_', '-'")
        is_holding = account.startswith(HOLDING_PREFIX)
        if kind == "buyer":
            if is_holding:
                raise Refused(f"{HOLDING_PREFIX}* ids are the regions' holding accounts")
            return None
        region = account.removeprefix(HOLDING_PREFIX)
        if not is_holding or (region not in self.regions and region != NATIONAL):
            raise Refused(f"a holding account is {HOLDING_PREFIX}<region>, not {account}")
        return region

    def _kind_of(self, w: _Writing, account: str) -> str:
        row = w.cur.execute(
            "SELECT kind FROM registry_accounts WHERE account_id = %s", (account,)
        ).fetchone()
        if row is None:
            raise Refused(f"no registry account {account}")
        return str(row[0])

    # --- issuance ------------------------------------------------------------------------

    def issue(
        self,
        region: str,
        methodology: str,
        period: Period,
        verification: Verification,
        unit_type: str,
    ) -> dict[str, Any]:
        """Issue the period's units of (region, methodology) to the region's holding
        account, after the checks of §13; Refused naming the rule otherwise."""
        if region not in self.regions and region != NATIONAL:
            raise Refused(f"region {region} is not in the region table")
        if not UNIT_TYPE.match(unit_type):
            raise Refused(f"unit type {unit_type!r}: 2-10 capitals or digits, e.g. CIER")
        with self._writing() as w:
            self._period_allowed(w, region, methodology, period)
            accounts = self._subtree_accounts(region)
            vintages, carried_in = self._series(w, region, methodology)
            nets = self._nets(w, accounts, methodology, [period, *(p for _, p in vintages)])
            net = nets[0]
            if verification.net_mg != net:
                raise Refused(
                    f"the package shows {verification.net_mg} mg under {methodology}, the books"
                    f" now {net} mg: export and verify the period again"
                )
            contributors = self._contributors(w, accounts, methodology, period)
            if sum(mg for _, mg in contributors.values()) != net:
                raise Refused("the personal book's contributions differ from the government net")
            moves = [
                (v, adjustment(v, current))
                for (v, _), current in zip(vintages, nets[1:], strict=True)
            ]
            arithmetic = units_of(net, carried_in, sum(a for _, a in moves))
            return self._record_issue(
                w, region, methodology, period, verification, unit_type, arithmetic,
                moves, nets[1:], contributors,
            )  # fmt: skip

    def _period_allowed(self, w: _Writing, region: str, methodology: str, period: Period) -> None:
        rows = w.cur.execute(
            "SELECT issuance_id, region, period_from, period_to FROM registry_issuances"
            " WHERE methodology_id = %s",
            (methodology,),
        ).fetchall()
        issued = [Issued(i, str(r), methodology, Period(f, t)) for i, r, f, t in rows]
        nested = {region: frozenset(self._nested(region, {str(r) for _, r, _, _ in rows}))}
        why = period_refused(region, methodology, period, issued, nested)
        if why is not None:
            raise Refused(why)

    def _nested(self, region: str, others: Iterable[str]) -> set[str]:
        """Of `others` (and the region itself), those enclosing or enclosed by it."""
        near = {region}
        for other in others:
            if region in self._lineage(other) or other in self._lineage(region):
                near.add(other)
        return near

    def _lineage(self, code: str) -> tuple[str, ...]:
        return rollup_accounts("government", code, self.regions)

    def _subtree_accounts(self, region: str) -> list[str]:
        """The government-book accounts that roll up into the region."""
        return [a for a in views.accounts(self.conn, "government") if region in self._lineage(a)]

    def _series(
        self, w: _Writing, region: str, methodology: str
    ) -> tuple[list[tuple[Vintage, Period]], int]:
        """The series' issued vintages (with what it accounts for each now) and the
        remainder its last issuance carried."""
        rows = w.cur.execute(
            "SELECT i.issuance_id, i.net_mg, i.period_from, i.period_to, i.carried_mg,"
            " i.net_mg + coalesce((SELECT sum(a.adjusted_mg) FROM registry_adjustments a"
            "   WHERE a.vintage_id = i.issuance_id), 0)"
            " FROM registry_issuances i JOIN registry_transactions t USING (tx_id)"
            " WHERE i.region = %s AND i.methodology_id = %s ORDER BY t.chain_index",
            (region, methodology),
        ).fetchall()
        vintages = [
            (Vintage(i, int(net), int(accounted)), Period(f, t))
            for i, net, f, t, _, accounted in rows
        ]
        return vintages, int(rows[-1][4]) if rows else 0

    def _nets(
        self, w: _Writing, accounts: list[str], methodology: str, periods: list[Period]
    ) -> list[int]:
        return government_nets(w.cur, accounts, methodology, periods)

    def _contributors(
        self, w: _Writing, regions: list[str], methodology: str, period: Period
    ) -> dict[str, tuple[str, int]]:
        """Each personal-book account's (person's or unit's) net in the vintage."""
        rows = w.cur.execute(
            "SELECT account, max(subject_kind), sum(amount_mg) FROM postings"
            " WHERE book = 'personal' AND region = ANY(%s) AND methodology_id = %s"
            f" AND (behaviour_time {IN_CST})::date BETWEEN %s AND %s"
            " GROUP BY account HAVING sum(amount_mg) <> 0 ORDER BY account",
            (regions, methodology, period.first, period.last),
        ).fetchall()
        return {str(a): (str(kind), int(mg)) for a, kind, mg in rows}

    def _record_issue(
        self,
        w: _Writing,
        region: str,
        methodology: str,
        period: Period,
        verification: Verification,
        unit_type: str,
        arithmetic: Units,
        moves: list[tuple[Vintage, int]],
        currents: list[int],
        contributors: Mapping[str, tuple[str, int]],
    ) -> dict[str, Any]:
        holding = holding_account(region)
        if not w.cur.execute(
            "SELECT 1 FROM registry_accounts WHERE account_id = %s", (holding,)
        ).fetchone():
            self._open(w, holding, f"holding account of {region}", "holding")
        issuance = issuance_id(region, methodology, period)
        info = IssuanceInfo(unit_type, region, methodology, period.vintage)
        w.known[issuance] = info
        moved: tuple[Moved, ...] = ()
        if arithmetic.units:
            row = w.cur.execute(
                "SELECT coalesce(max(serial_last), 0) + 1 FROM registry_issuances"
                " WHERE unit_type = %s",
                (unit_type,),
            ).fetchone()
            first = int(row[0]) if row else 1
            if first + arithmetic.units - 1 > MAX_SEQUENCE:
                raise Refused(f"{unit_type} has no serial numbers left for {arithmetic.units}")
            moved = (Moved(unit_type, Range(first, first + arithmetic.units - 1), issuance),)
        now = datetime.now(UTC)
        # Only positive contributors are snapshot: they are who share the proceeds.
        shares = [(a, kind, mg) for a, (kind, mg) in contributors.items() if mg > 0]
        adjusted = [(v.issuance, c, a) for (v, a), c in zip(moves, currents, strict=True)]
        details = {
            "issuance_id": str(issuance), "region": region, "methodology": methodology,
            "period_from": str(period.first), "period_to": str(period.last),
            "vintage": period.vintage, "unit_type": unit_type, "net_mg": arithmetic.net_mg,
            "carried_in_mg": arithmetic.carried_in_mg, "adjusted_mg": arithmetic.adjusted_mg,
            "carried_mg": arithmetic.carried_mg, "verifier": verification.verifier,
            "verified_at": verification.verified_at.isoformat(),
            "manifest_sha256": verification.manifest_sha256, "contributors": len(shares),
            "contributed_mg": sum(mg for _, _, mg in shares),
            "contributions_sha256": rows_digest(shares),
            "adjustments_sha256": rows_digest(adjusted),
        }  # fmt: skip
        tx = w.append(Content(uuid.uuid4(), Kind.ISSUE, holding, now, moved=moved, details=details))
        numbers = moved[0].range if moved else None
        w.cur.execute(
            "INSERT INTO registry_issuances (issuance_id, tx_id, region, methodology_id,"
            " period_from, period_to, vintage, unit_type, units, serial_first, serial_last,"
            " net_mg, carried_in_mg, adjusted_mg, carried_mg, verifier, verified_at,"
            " manifest_sha256, issued_at) VALUES"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                issuance, tx.content.tx_id, region, methodology, period.first, period.last,
                period.vintage, unit_type, arithmetic.units, numbers.first if numbers else None,
                numbers.last if numbers else None, arithmetic.net_mg, arithmetic.carried_in_mg,
                arithmetic.adjusted_mg, arithmetic.carried_mg, verification.verifier,
                verification.verified_at, verification.manifest_sha256, now,
            ),
        )  # fmt: skip
        w.cur.executemany(
            "INSERT INTO registry_adjustments (issuance_id, vintage_id, current_mg, adjusted_mg)"
            " VALUES (%s, %s, %s, %s)",
            [(issuance, *row) for row in adjusted],
        )
        with w.cur.copy(
            "COPY registry_contributions (issuance_id, account, subject_kind, net_mg) FROM STDIN"
        ) as cp:
            for row in shares:
                cp.write_row((issuance, *row))
        w.rewrite([], [Block(m.unit_type, m.range, m.issuance, holding) for m in moved])
        return {
            "issuance": str(issuance),
            "units": arithmetic.units,
            "serial_first": info.serial(Range(numbers.first, numbers.first)) if numbers else None,
            "serial_last": info.serial(Range(numbers.last, numbers.last)) if numbers else None,
            "serials": info.serial(numbers) if numbers else None,
            "carried_mg": arithmetic.carried_mg,
            "net_mg": arithmetic.net_mg,
            "carried_in_mg": arithmetic.carried_in_mg,
            "adjusted_mg": arithmetic.adjusted_mg,
            "shortfall_mg": arithmetic.shortfall_mg,
            "account": holding,
            "contributors": len(shares),
            "tx": str(tx.content.tx_id),
        }

    # --- transfer and retirement -----------------------------------------------------------

    def transfer(
        self,
        source: str,
        target: str,
        units: int,
        price_fen: int,
        venue: str,
        on: date,
        request: str | None = None,
    ) -> dict[str, Any]:
        """Move the lowest `units` serials `source` holds to `target` (a sale at
        `price_fen` per unit); a sale from a holding account shares its proceeds.
        A repeated `request` returns the transfer it made."""
        if source == target:
            raise Refused("a transfer needs two different accounts")
        if price_fen < 0:
            raise Refused("the price per unit is a whole number of fen, not negative")
        if not venue.strip():
            raise Refused("a transfer names its venue (e.g. 广州碳排放权交易所)")
        details = {"price_fen": price_fen, "amount_fen": price_fen * units,
                   "currency": "CNY", "venue": venue, "date": str(on)}  # fmt: skip
        tx_id = request_tx_id(request)
        with self._writing() as w:
            if done := _repeat(w, tx_id, Kind.TRANSFER, source, target, units, details):
                return _transferred(w, done)
            source_kind = self._kind_of(w, source)
            self._kind_of(w, target)
            blocks = w.blocks_of(source)
            moved = choose(blocks, units)
            removed, added = carve(blocks, moved, target)
            now = datetime.now(UTC)
            tx = w.append(Content(tx_id, Kind.TRANSFER, source, now, target, tuple(moved), details))
            w.rewrite(removed, added)
            if source_kind == "holding" and price_fen:
                self._share_proceeds(w, tx, price_fen, on)
            return _transferred(w, tx.content)

    def _share_proceeds(
        self, w: _Writing, tx: Transaction, price_fen: int, on: date
    ) -> list[ProceedsAllocation]:
        """The sale's proceeds, per issuance sold, to that vintage's contributors;
        Refused when units sold have no contributor (their fen would go to no one)."""
        allocations = []
        for issuance, units in units_by_issuance(tx.content.moved).items():
            shares = allocate(self._snapshot(w.cur, issuance), price_fen * units, issuance)
            for account, (kind, fen) in shares.items():
                if not fen:
                    continue
                allocation = ProceedsAllocation(
                    allocation_id=_allocation_id(tx.content.tx_id, issuance, account),
                    tx_id=tx.content.tx_id,
                    issuance_id=issuance,
                    account=account,
                    subject_kind=kind,
                    amount_fen=fen,
                    sale_date=on,
                    occurred_at=tx.content.occurred_at,
                )
                allocations.append(allocation)
        if sum(a.amount_fen for a in allocations) != price_fen * tx.content.units:
            raise Refused(f"the allocations of sale {tx.content.tx_id} do not sum to its amount")
        with w.cur.copy(
            "COPY registry_proceeds (allocation_id, tx_id, issuance_id, account, subject_kind,"
            " amount_fen) FROM STDIN"
        ) as cp:
            for a in allocations:
                cp.write_row(
                    (a.allocation_id, a.tx_id, a.issuance_id, a.account, a.subject_kind.value,
                     a.amount_fen)
                )  # fmt: skip
        for a in allocations:
            w.publish(a.allocation_id, a.account, a.to_bytes())
        return allocations

    @staticmethod
    def _snapshot(cur: psycopg.Cursor[Any], issuance: uuid.UUID) -> dict[str, tuple[str, int]]:
        rows = cur.execute(
            "SELECT account, subject_kind, net_mg FROM registry_contributions"
            " WHERE issuance_id = %s",
            (issuance,),
        ).fetchall()
        return {str(a): (str(k), int(mg)) for a, k, mg in rows}

    def retire(
        self,
        account: str,
        units: int,
        beneficiary: str,
        purpose: str,
        emissions: Period | None = None,
        serial: Serial | None = None,
        request: str | None = None,
    ) -> dict[str, Any]:
        """Retire the lowest `units` serials the account holds (or the first `units` of
        `serial`), for good. A serial already retired is refused, naming who retired it;
        a repeated `request` returns the retirement it made."""
        if not beneficiary.strip() or not purpose.strip():
            raise Refused("a retirement names its beneficiary and its purpose")
        if emissions is not None and emissions.last < emissions.first:
            raise Refused(f"the emissions period ends ({emissions.last}) before it starts")
        details: dict[str, Any] = {"beneficiary": beneficiary, "purpose": purpose}
        if emissions is not None:
            details |= {"period_from": str(emissions.first), "period_to": str(emissions.last)}
        tx_id = request_tx_id(request)
        with self._writing() as w:
            if done := _repeat(w, tx_id, Kind.RETIRE, account, None, units, details):
                return _retired(w, done)
            self._kind_of(w, account)
            within = self._retirable(w, serial, units) if serial else None
            blocks = w.blocks_of(account)
            moved = choose(blocks, units, within)
            removed, added = carve(blocks, moved, account, retired_by=tx_id)
            now = datetime.now(UTC)
            tx = w.append(
                Content(tx_id, Kind.RETIRE, account, now, moved=tuple(moved), details=details)
            )
            w.rewrite(removed, added)
            return _retired(w, tx.content)

    def _retirable(self, w: _Writing, serial: Serial, units: int) -> tuple[str, Range]:
        """The numbers of `serial` a retirement of `units` asks for; Refused if any of
        them is retired already (double use), saying by whom and when."""
        if not 1 <= units <= serial.range.size:
            raise Refused(f"{serial} has {serial.range.size} units, not {units}")
        if issuances_of(w.cur, serial.part(serial.range.head(units))) is None:
            raise Refused(f"no unit of {serial} was issued (its numbers are another serial's)")
        numbers = serial.range.head(units)
        rows = w.cur.execute(
            "SELECT unit_type, first_seq, last_seq, issuance_id, account, retired_by"
            " FROM registry_blocks WHERE unit_type = %s AND retired_by IS NOT NULL"
            " AND first_seq <= %s AND last_seq >= %s",
            (serial.unit_type, numbers.last, numbers.first),
        ).fetchall()
        found = first_retired([block_of(r) for r in rows], serial.unit_type, numbers)
        if found is not None and found.retired_by is not None:
            row = w.cur.execute(
                "SELECT details, occurred_at FROM registry_transactions WHERE tx_id = %s",
                (found.retired_by,),
            ).fetchone()
            details, at = row if row else ({}, None)
            part = w.info(found.issuance).serial(found.range)
            raise Refused(
                f"{part} already retired by {found.account} for {details.get('beneficiary')}"
                f" on {at.date() if at else '?'} (retirement {found.retired_by})"
            )
        return serial.unit_type, numbers


def _repeat(
    w: _Writing,
    tx_id: uuid.UUID,
    kind: Kind,
    account: str,
    counterparty: str | None,
    units: int,
    details: Mapping[str, Any],
) -> Content | None:
    """The transaction a request already made, or None if it is new; Refused when the
    request id was used for a different operation (a script's mistake, not a repeat)."""
    row = w.cur.execute(
        f"SELECT {TX_COLUMNS} FROM registry_transactions WHERE tx_id = %s", (tx_id,)
    ).fetchone()
    if row is None:
        return None
    done = transaction_of(dict(zip(TX_NAMES, row, strict=True))).content
    asked = (kind, account, counterparty, units, dict(details))
    if (done.kind, done.account, done.counterparty, done.units, dict(done.details)) != asked:
        raise Refused(
            f"this request id made another {done.kind.value} (transaction {tx_id}), not this one"
        )
    return done


def _opened(c: Content) -> dict[str, Any]:
    return {"account": c.account, "name": c.details["name"], "kind": c.details["kind"],
            "region": c.details["region"], "tx": str(c.tx_id)}  # fmt: skip


def _transferred(w: _Writing, c: Content) -> dict[str, Any]:
    """What a transfer prints, from its transaction and its proceeds postings."""
    paid = w.cur.execute(
        "SELECT count(*), coalesce(sum(amount_fen), 0) FROM registry_proceeds WHERE tx_id = %s",
        (c.tx_id,),
    ).fetchone()
    allocations, allocated = (int(paid[0]), int(paid[1])) if paid else (0, 0)
    return {
        "tx": str(c.tx_id),
        "from": c.account,
        "to": c.counterparty,
        "units": c.units,
        "serials": [w.info(m.issuance).serial(m.range) for m in c.moved],
        "price_fen": c.details["price_fen"],
        "amount_fen": c.details["amount_fen"],
        "allocations": allocations,
        "allocated_fen": allocated,
    }


def _retired(w: _Writing, c: Content) -> dict[str, Any]:
    return {
        "tx": str(c.tx_id),
        "account": c.account,
        "units": c.units,
        "serials": [w.info(m.issuance).serial(m.range) for m in c.moved],
        **c.details,
        "retired_at": c.occurred_at.isoformat(),
    }
