"""Auditing the books: `carbonledger verify` against the database, and the
verification package `carbonledger export` writes for a third-party verifier,
which `carbonledger verify-export` checks offline with the same chain rules."""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from itertools import groupby
from pathlib import Path
from typing import Any

import psycopg

from carbonledger.contracts.records import MAX_AMOUNT_MG
from carbonledger.contracts.regions import RegionTable, load_regions
from carbonledger.services.ledger.adapters import registry_views, views
from carbonledger.services.ledger.domain.aggregates import periods, rollup_accounts
from carbonledger.services.ledger.domain.chain import (
    CANONICAL_FIELDS,
    GENESIS,
    Break,
    Head,
    verify_chain,
)
from carbonledger.services.ledger.domain.registry import transactions as registry_chain
from carbonledger.services.ledger.domain.registry.holdings import Refused
from carbonledger.services.ledger.domain.registry.issuance import rows_digest
from carbonledger.services.ledger.domain.registry.proceeds import allocate, units_by_issuance


@dataclass
class Report:
    accounts: int = 0
    postings: int = 0
    breaks: list[Break] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    registry_transactions: int = 0

    @property
    def ok(self) -> bool:
        return not self.breaks and not self.problems

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}


# The bound every stage checks on consumption (contracts/records.py): one for the
# stored books too, so verify flags exactly what the writer would have refused.
MAX_DECISION_MG = MAX_AMOUNT_MG
INT64 = 2**63  # balances and totals are PostgreSQL bigint


def verify(
    conn: psycopg.Connection,
    account: tuple[str, str] | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    regions: RegionTable | None = None,
) -> Report:
    """Recompute every chain (or one account's) and check heads, books, decisions and
    the books' invariants, all in one snapshot so that postings written meanwhile
    are either wholly seen or not at all; `progress` hears (accounts checked,
    accounts in the balances table)."""
    report = Report()
    with snapshot(conn):
        heads = views.heads(conn)
        units = views.unit_balances(conn)
        seen = set()
        for (book, name), entries in groupby(views.chain_entries(conn, account), _account_of):
            seen.add((book, name))
            chain = list(entries)
            report.accounts += 1
            report.postings += len(chain)
            report.breaks += verify_chain(book, name, chain)
            last = chain[-1]
            if heads.get((book, name)) != (len(chain), int(last["balance_mg"]), last["hash"]):
                report.problems.append(f"{book}:{name}: balance row does not match its chain")
            if book == "personal" and _kind_differs(chain, "unit" if name in units else "person"):
                report.problems.append(f"{book}:{name}: postings of another kind than its account")
            if progress:
                progress(report.accounts, 1 if account else len(heads))
        if account is None:
            report.problems += [
                f"{b}:{a}: balance row without postings" for b, a in heads.keys() - seen
            ]
            _check_books(conn, report)
            _check_invariants(conn, report, heads, regions or load_regions())
            _check_registry(conn, report)
    return report


@contextmanager
def snapshot(conn: psycopg.Connection) -> Iterator[None]:
    """One read-only REPEATABLE READ transaction: every read in it sees the ledger as
    of its first query. (Separate snapshots saw a posting in its chain but not yet in
    its balance row, and reported a break for each.) Writers never wait for it."""
    with conn.transaction():  # also what a named (server-side) cursor needs
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def _kind_differs(chain: list[dict[str, Any]], kind: str) -> bool:
    """Whether a personal account holds postings of a subject kind other than its
    balance row's (a person's account is never a unit's, nor the other way)."""
    return any(entry["subject_kind"] != kind for entry in chain)


def _account_of(entry: Mapping[str, Any]) -> tuple[str, str]:
    return str(entry["book"]), str(entry["account"])


def _check_books(conn: psycopg.Connection, report: Report) -> None:
    report.totals = views.totals(conn)
    if len(set(report.totals.values())) > 1:
        report.problems.append(f"book totals differ: {report.totals}")
    uneven = views.uneven_decisions(conn, limit=20)
    report.problems += [f"decision {d}: postings differ from its amount" for d in uneven]
    national = views.national_total(conn)
    if report.totals and national != report.totals.get("government", 0):
        report.problems.append("national roll-up differs from the government book")


def _check_invariants(
    conn: psycopg.Connection,
    report: Report,
    heads: Mapping[tuple[str, str], tuple[int, int, str]],
    regions: RegionTable,
) -> None:
    """What every stage checks before posting, checked again over what was posted."""
    report.problems += [
        f"decision {d}: amount of the wrong sign or beyond {MAX_DECISION_MG} mg"
        for d in views.misdirected_amounts(conn, MAX_DECISION_MG)
    ]
    report.problems += [f"reversal {r}" for r in views.stray_reversals(conn)]
    report.problems += [
        f"{row}: names what is not a subject id, or a family of one subject"
        for row in views.invalid_account_rows(conn)
    ]
    report.problems += [
        f"decision {d}: posted, but its kind moves no book" for d in views.unposted_kinds(conn)
    ]
    report.problems += [
        f"region {r}: not a division in the region table"
        for r in sorted(views.posting_regions(conn))
        if r not in regions
    ]
    sums = views.posting_sums(conn)
    for (book, name), total in sorted(sums.items()):
        head = heads.get((book, name))
        if head is not None and head[1] != total:
            report.problems.append(f"{book}:{name}: balance {head[1]} but postings sum to {total}")
        if not -INT64 <= total < INT64:
            report.problems.append(f"{book}:{name}: balance beyond 64 bits")
    report.problems += [
        f"{book} book: total beyond 64 bits"
        for book, total in report.totals.items()
        if not -INT64 <= total < INT64
    ]


def _check_registry(conn: psycopg.Connection, report: Report) -> None:
    """The registry's chain recomputed, its history replayed to the holdings it must
    lead to, and what the chain says checked against the tables beside it."""
    stored = list(registry_views.stored_transactions(conn))
    chain = [tx for tx, _ in stored]
    report.registry_transactions = len(chain)
    report.problems += [
        f"registry transaction {tx.chain_index} ({tx.content.tx_id}): stores {units} units,"
        f" its serials hold {tx.content.units}"
        for tx, units in stored
        if units != tx.content.units
    ]
    report.problems += registry_chain.verify_chain(chain)
    if registry_views.head(conn) != (
        (chain[-1].chain_index, chain[-1].hash) if chain else (0, GENESIS)
    ):
        report.problems.append("registry head does not match the registry's chain")
    holdings, refused = registry_chain.replay(chain)
    report.problems += refused
    blocks = registry_views.all_blocks(conn)
    if sorted(holdings.blocks) != sorted(blocks):
        extra = sorted(set(blocks) - set(holdings.blocks))[:3]
        report.problems.append(f"registry holdings differ from their transactions: {extra}")
    report.problems += _issuances_as_chained(conn, chain)
    report.problems += _accounts_as_opened(conn, chain)
    report.problems += _proceeds_as_chained(conn, chain)


# An issuance row's columns, the key its issue transaction's details hold each
# under, and how the details' JSON value reads back as the column's.
ISSUANCE_AS_DETAILS: tuple[tuple[str, str, Callable[[Any], object]], ...] = (
    ("issuance_id", "issuance_id", uuid.UUID),
    ("region", "region", str),
    ("methodology_id", "methodology", str),
    ("period_from", "period_from", date.fromisoformat),
    ("period_to", "period_to", date.fromisoformat),
    ("vintage", "vintage", int),
    ("unit_type", "unit_type", str),
    ("net_mg", "net_mg", int),
    ("carried_in_mg", "carried_in_mg", int),
    ("adjusted_mg", "adjusted_mg", int),
    ("carried_mg", "carried_mg", int),
    ("verifier", "verifier", str),
    ("verified_at", "verified_at", datetime.fromisoformat),
    ("manifest_sha256", "manifest_sha256", str),
)


def _issuances_as_chained(
    conn: psycopg.Connection, chain: list[registry_chain.Transaction]
) -> list[str]:
    """Each issuance row, its contributions and its adjustments say what its issue
    transaction's hashed details say; each issue transaction has its row."""
    issued = {tx.content.tx_id: tx.content for tx in chain if tx.content.kind == "issue"}
    contributions = registry_views.contribution_rows(conn)
    adjustments = registry_views.adjustment_rows(conn)
    problems = []
    for row in registry_views.issuance_rows(conn):
        c = issued.pop(row["tx_id"], None)
        where = f"issuance {row['issuance_id']}"
        if c is None:
            problems.append(f"{where}: no issue transaction {row['tx_id']} in the chain")
            continue
        problems += [f"{where}: {d} differs from its transaction" for d in _issuance_diff(row, c)]
        shares = contributions.get(row["issuance_id"], [])
        if (
            sum(mg for _, _, mg in shares) != c.details.get("contributed_mg")
            or len(shares) != c.details.get("contributors")
            or rows_digest(shares) != c.details.get("contributions_sha256")
        ):
            problems.append(f"{where}: contributions differ from its transaction")
        moves = adjustments.get(row["issuance_id"], [])
        if sum(a for _, _, a in moves) != int(row["adjusted_mg"]) or rows_digest(
            moves
        ) != c.details.get("adjustments_sha256"):
            problems.append(f"{where}: adjustments differ from its transaction")
    problems += [f"issue transaction {tx}: no issuance row" for tx in issued]
    return problems


def _issuance_diff(row: Mapping[str, Any], c: registry_chain.Content) -> Iterator[str]:
    """The columns of an issuance row that are not what its transaction says."""
    for column, key, read in ISSUANCE_AS_DETAILS:
        if key not in c.details or row[column] != read(c.details[key]):
            yield column
    moved = (c.moved[0].range.first, c.moved[0].range.last) if c.moved else (None, None)
    if (row["serial_first"], row["serial_last"]) != moved:
        yield "serial range"
    if int(row["units"]) != c.units:
        yield "units"
    if row["issued_at"] != c.occurred_at:
        yield "issued_at"


def _accounts_as_opened(
    conn: psycopg.Connection, chain: list[registry_chain.Transaction]
) -> list[str]:
    """Each registry account is what its open transaction says, and each has one."""
    opened = {tx.content.account: tx.content for tx in chain if tx.content.kind == "open"}
    problems = []
    for row in registry_views.account_rows(conn):
        c = opened.pop(row["account_id"], None)
        if c is None:
            problems.append(f"registry account {row['account_id']}: no open transaction")
            continue
        said = (c.details.get("name"), c.details.get("kind"), c.details.get("region"))
        if (row["name"], row["kind"], row["region"]) != said or row["opened_at"] != c.occurred_at:
            problems.append(f"registry account {row['account_id']}: differs from its transaction")
    problems += [f"registry account {a}: opened in the chain, no row" for a in opened]
    return problems


def _proceeds_as_chained(
    conn: psycopg.Connection, chain: list[registry_chain.Transaction]
) -> list[str]:
    """Each sale's proceeds postings are the largest-remainder shares of price × units."""
    holding = {
        tx.content.account
        for tx in chain
        if tx.content.kind == "open" and tx.content.details.get("kind") == "holding"
    }
    stored: dict[Any, dict[tuple[Any, str], int]] = {}
    for row in registry_views.proceeds_rows(conn):
        stored.setdefault(row["tx_id"], {})[(row["issuance_id"], row["account"])] = int(
            row["amount_fen"]
        )
    problems = []
    for tx in chain:
        c = tx.content
        price = int(c.details.get("price_fen", 0)) if c.kind == "transfer" else 0
        expected: dict[tuple[Any, str], int] = {}
        if price and c.account in holding:
            try:
                for issuance, units in units_by_issuance(c.moved).items():
                    shares = allocate(registry_views.contributions(conn, issuance), price * units)
                    expected |= {(issuance, a): fen for a, (_, fen) in shares.items() if fen}
            except Refused as why:
                problems.append(f"sale {c.tx_id}: {why}")
            if sum(expected.values()) != price * c.units:
                problems.append(f"sale {c.tx_id}: proceeds not allocated in full")
        if stored.pop(c.tx_id, {}) != expected:
            problems.append(f"sale {c.tx_id}: proceeds postings differ from its shares")
    problems += [f"proceeds of {tx}: no sale in the registry's chain" for tx in stored]
    return problems


# --- the verification package -------------------------------------------------

EXPORT_README = """# Verification package

Government-book postings of region {region} and every unit inside it, with
behaviour in {first} .. {last} (China Standard Time), exported {exported}.

- `postings.jsonl`: for each account, the contiguous stretch of its hash chain
  that holds the period's postings (`in_period` marks them).
- `chains.json`: per account, the stretch's first and last chain index, the hash
  it chains from (`anchor`), and the account's head at export time.
- `claims.jsonl`: every decision behind those postings, with the full claim
  (event, inputs, methodology version, factors and their sources).
- `methodologies/`: the methodology version files the claims name.
- `summary.json`: the period's totals by behaviour type and by district.
- `manifest.json`: SHA-256 of every file above.

A posting's hash is SHA-256 (hex) of `prev_hash + "\\n" + canonical`, where
canonical joins these fields with `|` (integers in decimal, absent values empty,
behaviour_time in UTC as YYYY-MM-DDTHH:MM:SS.ffffffZ):
{fields}

Check it with `carbonledger verify-export <this folder>`, or with your own code
from the rule above.
"""


def export(
    conn: psycopg.Connection,
    regions: RegionTable,
    methodology_dir: Path,
    region: str,
    first: date,
    last: date,
    out: Path,
    progress: Callable[[int, int | None], None] | None = None,
) -> dict[str, Any]:
    """Write the verification package for a region and period; returns its summary.
    `progress` hears (accounts written, accounts in the region)."""
    out.mkdir(parents=True, exist_ok=True)
    accounts = [
        a
        for a in views.accounts(conn, "government")
        if region in rollup_accounts("government", a, regions)
    ]
    chains: dict[str, Any] = {}
    decision_ids: set[Any] = set()
    summary: dict[str, Any] = {"region": region, "from": str(first), "to": str(last)}
    by_type: dict[str, int] = {}
    by_district: dict[str, int] = {}
    with (out / "postings.jsonl").open("w", encoding="utf-8") as postings_file:
        for done, account in enumerate(accounts, 1):
            if progress:
                progress(done, len(accounts))
            chain = _stretch(conn, account, first, last)
            if not chain:
                continue
            chains[account] = _chain_info(conn, account, chain)
            for entry in chain:
                day = periods(entry["behaviour_time"])[0][1]
                entry["in_period"] = first <= day <= last
                if entry["in_period"]:
                    decision_ids.add(entry["decision_id"])
                    amount = int(entry["amount_mg"])
                    by_type[entry["behaviour_type"]] = (
                        by_type.get(entry["behaviour_type"], 0) + amount
                    )
                    by_district[account] = by_district.get(account, 0) + amount
                postings_file.write(json.dumps(entry, default=str, ensure_ascii=False) + "\n")
    methodologies = _write_claims(conn, sorted(decision_ids, key=str), out)
    _copy_methodologies(methodology_dir, methodologies, out)
    summary |= {
        "total_mg": sum(by_district.values()),
        "by_behaviour_type_mg": dict(sorted(by_type.items())),
        "by_district_mg": by_district,
    }
    _write_json(out / "chains.json", chains)
    _write_json(out / "summary.json", summary)
    (out / "README.md").write_text(
        EXPORT_README.format(
            region=region,
            first=first,
            last=last,
            exported=date.today(),
            fields=", ".join(CANONICAL_FIELDS),
        ),
        encoding="utf-8",
    )
    _write_json(out / "manifest.json", _manifest(out))
    return summary


def _stretch(
    conn: psycopg.Connection, account: str, first: date, last: date
) -> list[dict[str, Any]]:
    """The account's chain from its first to its last posting with behaviour in the period."""
    return views.chain_stretch(conn, "government", account, first, last)


def _chain_info(conn: psycopg.Connection, account: str, chain: list[dict[str, Any]]) -> Any:
    head = views.head_of(conn, "government", account)
    assert head is not None
    return {
        "first_index": chain[0]["chain_index"],
        "last_index": chain[-1]["chain_index"],
        "anchor": chain[0]["prev_hash"],
        "opening_balance_mg": int(chain[0]["balance_mg"]) - int(chain[0]["amount_mg"]),
        "head": {"index": int(head[0]), "balance_mg": int(head[1]), "hash": str(head[2])},
    }


def _write_claims(conn: psycopg.Connection, decision_ids: list[Any], out: Path) -> set[str]:
    methodologies: set[str] = set()
    rows = views.decisions_by_id(conn, decision_ids)
    with (out / "claims.jsonl").open("w", encoding="utf-8") as fh:
        for decision_id, kind, amount, reverses, reason, claim in rows:
            m = claim.get("methodology")
            if m:
                methodologies.add(f"{m['id']}@{m['version']}")
            record = {
                "decision_id": decision_id,
                "kind": kind,
                "amount_mg": amount,
                "reverses": reverses,
                "reason": reason,
                "claim": claim,
            }
            fh.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
    return methodologies


def _copy_methodologies(source: Path, names: set[str], out: Path) -> None:
    target = out / "methodologies"
    target.mkdir(exist_ok=True)
    for name in sorted(names):
        path = source / f"{name}.yaml"
        if path.exists():
            shutil.copy(path, target / path.name)


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n", "utf-8")


def _manifest(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def verify_export(folder: Path) -> Report:
    """Check a verification package offline: files, chains, claims and totals."""
    report = Report()
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    report.problems += [
        f"{n}: file changed" for n, h in _manifest(folder).items() if manifest.get(n) != h
    ]
    report.problems += [f"{n}: file missing" for n in manifest if not (folder / n).exists()]
    chains = json.loads((folder / "chains.json").read_text("utf-8"))
    claims = {
        c["decision_id"]: c
        for c in map(json.loads, (folder / "claims.jsonl").read_text("utf-8").splitlines())
    }
    entries = [
        json.loads(line) for line in (folder / "postings.jsonl").read_text("utf-8").splitlines()
    ]
    total = 0
    for account, group in groupby(entries, lambda e: str(e["account"])):
        chain = list(group)
        report.accounts += 1
        report.postings += len(chain)
        report.breaks += _verify_stretch(account, chain, chains.get(account, {}))
        for e in chain:
            claim = claims.get(e["decision_id"])
            if e["in_period"] and (claim is None or int(claim["amount_mg"]) != int(e["amount_mg"])):
                report.problems.append(f"posting {e['posting_id']}: no matching decision")
            total += int(e["amount_mg"]) if e["in_period"] else 0
    summary = json.loads((folder / "summary.json").read_text("utf-8"))
    if summary["total_mg"] != total:
        report.problems.append(f"summary total {summary['total_mg']} but postings sum to {total}")
    report.totals = {"government": total}
    return report


def _verify_stretch(
    account: str, chain: list[dict[str, Any]], info: Mapping[str, Any]
) -> list[Break]:
    """A stretch verifies like a whole chain from its opening; if it reaches the
    account's head at export time, it must end on that head's hash."""
    opening = Head(
        int(info.get("first_index", 1)) - 1,
        int(info.get("opening_balance_mg", 0)),
        str(info.get("anchor", GENESIS)),
    )
    entries = [{**e, "behaviour_time": datetime.fromisoformat(e["behaviour_time"])} for e in chain]
    breaks = list(verify_chain("government", account, entries, opening))
    head = info.get("head", {})
    last = chain[-1]
    if int(last["chain_index"]) == head.get("index") and last["hash"] != head.get("hash"):
        breaks.append(
            Break(
                "government",
                account,
                str(last["posting_id"]),
                int(last["chain_index"]),
                "stretch ends at the head index but not on the head's hash",
            )
        )
    return breaks
