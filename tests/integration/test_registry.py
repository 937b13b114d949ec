"""The carbon asset registry over real PostgreSQL: issuance from verified government
book nets, serial blocks split by transfers and retirements, double retirement
refused (also from two processes at once), proceeds summing exactly, a late reversal
deducted from the next issuance, the public reads, and `verify` naming an altered
registry row.

Each test issues under a methodology id and a unit type of its own, so the books and
serials other tests wrote never meet its figures."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from carbonledger.contracts import topics
from carbonledger.contracts.calendar import CST
from carbonledger.contracts.records import (
    MAX_AMOUNT_MG,
    Decision,
    DecisionKind,
    MethodologyRef,
)
from carbonledger.contracts.regions import load_regions
from carbonledger.contracts.roles import Role
from carbonledger.contracts.settings import Settings
from carbonledger.ops import stack
from carbonledger.services.ledger.adapters import audit, registry_views
from carbonledger.services.ledger.adapters.books import Books
from carbonledger.services.ledger.registry_service import manifest_sha256
from tests.factories import claim, reversal
from tests.integration.helpers import bearer, cli, scan

pytestmark = pytest.mark.integration

T = 10**9  # mg in a tonne: one unit
REGION = "440305"


def _tag() -> tuple[str, str]:
    """A methodology id and a unit type no other test uses."""
    token = uuid.uuid4().hex[:6].upper()
    return f"reg-{token.lower()}", f"T{token}"


def credits(methodology: str, day: date, amounts: dict[str, int]) -> list[Decision]:
    """Credits of `amounts` (mg) per subject, behaviour ending on `day` (CST), in
    decisions of at most 1000 t (the bound of one record)."""
    made: list[Decision] = []
    start = datetime(day.year, day.month, day.day, 8, 0, tzinfo=CST)
    for subject, mg in sorted(amounts.items()):
        while mg > 0:
            part = min(mg, MAX_AMOUNT_MG)
            mg -= part
            c = claim("every-app", f"{methodology}-{len(made)}", 0, mg=part, subject=subject)
            c = c.model_copy(
                update={
                    "methodology": MethodologyRef(id=methodology, version="1"),
                    "started_at": start,
                    "ended_at": start + timedelta(minutes=30),
                    "time": start + timedelta(minutes=30),
                }
            )
            made.append(
                Decision(
                    decision_id=uuid.uuid4(), kind=DecisionKind.CREDIT, amount_mg=part, claim=c
                )
            )
    return made


def post(db: psycopg.Connection, decisions: list[Decision]) -> None:
    Books(db).apply(decisions, f"test-registry-{uuid.uuid4()}", [])


def package(
    db: psycopg.Connection,
    settings: Settings,
    tmp: Path,
    first: date,
    last: date,
    region: str = REGION,
) -> Path:
    out = tmp / f"export-{region}-{first}-{uuid.uuid4().hex[:6]}"
    audit.export(db, load_regions(), settings.methodology_dir, region, first, last, out)
    return out


def run(*args: str) -> tuple[int, Any, str]:
    done = cli("registry", *args)
    body = json.loads(done.stdout) if done.returncode == 0 else None
    return done.returncode, body, done.stderr


def issue(
    folder: Path,
    methodology: str,
    unit_type: str,
    first: date,
    last: date,
    region: str = REGION,
    signed: str | None = None,
) -> tuple[int, Any, str]:
    """`registry issue` with the issue's flags (and `--manifest-hash` when `signed`)."""
    return run(
        "issue", "--region", region, "--methodology", methodology, "--from", str(first),
        "--to", str(last), "--package", str(folder), "--verifier", "中环联合认证中心 王工",
        "--unit-type", unit_type, *(("--manifest-hash", signed) if signed else ()),
    )  # fmt: skip


def people(n: int, tag: str) -> list[str]:
    return [uuid.uuid5(uuid.NAMESPACE_DNS, f"{tag}-{i}").hex * 2 for i in range(n)]


OCT1, OCT31 = date(2026, 10, 1), date(2026, 10, 31)
NOV1, NOV30 = date(2026, 11, 1), date(2026, 11, 30)


def test_issue_sell_retire_and_read_back_a_vintage(
    db: psycopg.Connection, settings: Settings, tmp_path: Path, running_stack: stack.Processes
) -> None:
    methodology, unit_type = _tag()
    a, b, c = people(3, methodology)
    # 8026.5 t in October from three people, 3 t in early November.
    post(
        db,
        credits(methodology, date(2026, 10, 10), {a: 4000 * T, b: 3000 * T, c: 1026 * T + T // 2}),
    )
    post(db, credits(methodology, date(2026, 11, 2), {a: 3 * T}))
    october = package(db, settings, tmp_path, OCT1, OCT31)

    code, _, err = issue(october, methodology, unit_type, OCT1, OCT31, signed="0" * 64)
    assert code == 2 and "not the 0000" in err  # the verifier signed another package
    code, out, err = issue(october, methodology, unit_type, OCT1, OCT31)  # no --manifest-hash
    assert code == 0, err
    recorded = registry_views.issuance_detail(db, uuid.UUID(out["issuance"]))
    assert recorded is not None and recorded["manifest_sha256"] == manifest_sha256(october)
    assert (out["units"], out["carried_mg"], out["net_mg"]) == (8026, T // 2, 8026 * T + T // 2)
    prefix = f"CN-{unit_type}-{REGION}-{methodology}-2026"
    assert out["serial_first"] == f"{prefix}-000000001-000000001"
    assert out["serial_last"] == f"{prefix}-000008026-000008026"

    code, _, err = issue(october, methodology, unit_type, OCT1, OCT31)
    assert code == 2 and "already issued" in err
    late = package(db, settings, tmp_path, date(2026, 10, 31), NOV30)
    code, _, err = issue(late, methodology, unit_type, date(2026, 10, 31), NOV30)
    assert code == 2 and "overlaps" in err
    city = package(db, settings, tmp_path, OCT1, OCT31, region="440300")  # holds 440305
    code, _, err = issue(city, methodology, unit_type, OCT1, OCT31, region="440300")
    assert code == 2 and "overlaps" in err and "440305" in err

    buyer = f"tianping-{methodology}"
    assert run("account", "create", "--id", buyer, "--name", "天平保险")[0] == 0
    code, sale, err = run(
        "transfer", "--from", f"holding-{REGION}", "--to", buyer, "--units", "8000",
        "--price-fen", "3464", "--venue", "广州碳排放权交易所",
    )  # fmt: skip
    assert code == 0, err
    assert sale["serials"] == [f"{prefix}-000000001-000008000"]
    assert sale["allocated_fen"] == sale["amount_fen"] == 8000 * 3464
    shares = {s: registry_views.proceeds_of(db, s)["total_fen"] for s in (a, b, c)}
    assert sum(shares.values()) == 8000 * 3464
    whole = 8026 * T + T // 2
    for subject, mg in ((a, 4000 * T), (b, 3000 * T), (c, 1026 * T + T // 2)):
        assert abs(shares[subject] - 8000 * 3464 * mg / whole) < 1  # pro rata, to the fen

    code, retired, err = run(
        "retire", "--account", buyer, "--units", "10", "--beneficiary", "第十五届全运会",
        "--purpose", "赛事碳中和", "--period-from", "2026-10-01", "--period-to", "2026-10-31",
        "--serial", f"{prefix}-000000101-000000200",
    )  # fmt: skip
    assert code == 0, err
    assert retired["serials"] == [f"{prefix}-000000101-000000110"]
    code, _, err = run(
        "retire", "--account", buyer, "--units", "1", "--beneficiary", "someone else",
        "--purpose", "double use", "--serial", f"{prefix}-000000105-000000105",
    )  # fmt: skip
    assert code == 2 and "already retired by" in err and "第十五届全运会" in err

    code, held, _ = run("balance", buyer)
    assert (held["units"], held["retired_units"]) == (7990, 10)
    assert held["held"] == [f"{prefix}-000000001-000000100", f"{prefix}-000000111-000008000"]
    # The retired units never move: a transfer of everything takes the 7990 others.
    code, _, err = run(
        "transfer", "--from", buyer, "--to", f"holding-{REGION}", "--units", "7991",
        "--price-fen", "0", "--venue", "return",
    )  # fmt: skip
    assert code == 2 and "holds 7990 units" in err

    code, story, _ = run("show", f"{prefix}-000000105-000000105")
    assert [h["kind"] for h in story["history"]] == ["issue", "transfer", "retire"]
    assert story["now"] == [  # where the asked units are now
        {"serials": f"{prefix}-000000105-000000105", "account": buyer, "status": "retired",
         "retired_by": retired["tx"]},
    ]  # fmt: skip

    # The numbers alone do not make a serial: another region, methodology, vintage or
    # unit type with the same numbers was never issued.
    others = [
        f"CN-{unit_type}-440306-{methodology}-2026-000000105-000000105",
        f"CN-{unit_type}-{REGION}-{methodology}x-2026-000000105-000000105",
        f"CN-{unit_type}-{REGION}-{methodology}-2025-000000105-000000105",
        f"CN-{unit_type}Z-{REGION}-{methodology}-2026-000000105-000000105",
    ]
    for other in others:
        assert run("show", other)[0] == 1, other
    code, _, err = run(
        "retire", "--account", buyer, "--units", "1", "--beneficiary", "B", "--purpose", "P",
        "--serial", others[0].replace("000000105", "000000120"),
    )  # fmt: skip
    assert code == 2 and "no unit of" in err

    base = f"http://127.0.0.1:{running_stack.port('ledger-api')}/v1/registry"
    for other in others:
        assert httpx.get(f"{base}/serials/{other}").status_code == 404, other
    issued = [
        i for i in httpx.get(f"{base}/issuances").json() if i["methodology_id"] == methodology
    ]
    assert [(i["units"], i["serials"]) for i in issued] == [(8026, f"{prefix}-000000001-000008026")]
    lineage = httpx.get(f"{base}/serials/{prefix}-000000105-000000105").json()
    assert lineage["history"][-1]["details"]["beneficiary"] == "第十五届全运会"
    mine = httpx.get(f"{base}/retirements", params={"account": buyer}).json()
    assert [r["units"] for r in mine] == [10]
    assert httpx.get(f"{base}/accounts/{buyer}").json()["units"] == 7990
    # A contributor's proceeds are their own: with their token, never without one.
    own = httpx.get(f"{base}/proceeds/{a}", headers=bearer(Role.PERSON, subject=a))
    assert own.json()["total_fen"] == shares[a]
    assert httpx.get(f"{base}/proceeds/{a}").status_code == 401

    # Published through the outbox: the issuance, and the sale's allocations summing exactly.
    seen: dict[str, Any] = {}
    paid: dict[str, int] = {}

    def all_seen() -> bool:
        # Transactions and allocations are on different partitions: any order.
        whole = sum(paid.values()) == sale["amount_fen"]
        return out["tx"] in seen and sale["tx"] in seen and whole

    for record in scan(settings, [topics.REGISTRY], until=all_seen, timeout=60):
        event = json.loads(record.value)
        if event["schema"] == "carbonledger.registry_transaction/1":
            seen[event["tx_id"]] = event
        elif event["tx_id"] == sale["tx"]:
            paid[event["account"]] = event["amount_fen"]
        if all_seen():
            break
    assert seen[out["tx"]]["serials"] == [f"{prefix}-000000001-000008026"]
    assert seen[sale["tx"]]["details"]["venue"] == "广州碳排放权交易所"
    assert paid == shares


def test_a_late_reversal_is_deducted_from_the_next_issuance_and_reported_until_then(
    db: psycopg.Connection, settings: Settings, tmp_path: Path
) -> None:
    methodology, unit_type = _tag()
    a, b = people(2, methodology)
    october = credits(methodology, date(2026, 10, 20), {a: 5 * T + 300, b: 2 * T})
    post(db, october)
    october_package = package(db, settings, tmp_path, OCT1, OCT31)
    signed = manifest_sha256(october_package)
    assert issue(october_package, methodology, unit_type, OCT1, OCT31, signed=signed)[0] == 0
    post(
        db, [reversal(next(d for d in october if d.claim.subject == b))]
    )  # 2 t of the issued October vintage taken back
    owed = [s for s in registry_views.series_shortfalls(db) if s["methodology"] == methodology]
    assert owed == [{"region": REGION, "methodology": methodology, "shortfall_mg": 2 * T - 300}]

    post(db, credits(methodology, date(2026, 11, 5), {a: 3 * T}))
    code, out, err = issue(
        package(db, settings, tmp_path, NOV1, NOV30), methodology, unit_type, NOV1, NOV30
    )
    assert code == 0, err
    # 3 t of November + 300 mg carried - 2 t deducted = 1 t and 300 mg.
    assert (out["adjusted_mg"], out["carried_in_mg"], out["units"], out["carried_mg"]) == (
        -2 * T, 300, 1, 300,
    )  # fmt: skip
    assert out["serial_first"].endswith("-000000008-000000008")  # after October's 7 units
    assert not [s for s in registry_views.series_shortfalls(db) if s["methodology"] == methodology]


def test_two_processes_retiring_the_same_units_at_once_one_succeeds(
    db: psycopg.Connection, settings: Settings, tmp_path: Path
) -> None:
    methodology, unit_type = _tag()
    post(db, credits(methodology, date(2026, 10, 3), {people(1, methodology)[0]: 5 * T}))
    code, out, _ = issue(
        package(db, settings, tmp_path, OCT1, OCT31), methodology, unit_type, OCT1, OCT31
    )
    assert code == 0
    retire = [
        sys.executable, "-m", "carbonledger.cli.main", "registry", "retire",
        "--account", f"holding-{REGION}", "--units", "5", "--beneficiary", "B",
        "--purpose", "P", "--serial", out["serials"],
    ]  # fmt: skip
    both = [
        subprocess.Popen(retire, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(p.wait(60), p.stderr.read() if p.stderr else "") for p in both]
    assert sorted(code for code, _ in results) == [0, 2], results
    assert "already retired by" in next(err for code, err in results if code == 2)


def test_verify_names_an_altered_registry_row(
    db: psycopg.Connection, settings: Settings, tmp_path: Path
) -> None:
    methodology, unit_type = _tag()
    post(db, credits(methodology, date(2026, 10, 4), {people(1, methodology)[0]: 3 * T}))
    code, out, _ = issue(
        package(db, settings, tmp_path, OCT1, OCT31), methodology, unit_type, OCT1, OCT31
    )
    assert code == 0
    done = cli("verify")
    assert json.loads(done.stdout)["ok"], done.stdout
    tx = uuid.UUID(out["tx"])

    def tamper(units: int, moved: str) -> None:
        with db.transaction():  # as the superuser would, past the append-only trigger
            db.execute("ALTER TABLE registry_transactions DISABLE TRIGGER USER")
            db.execute(
                "UPDATE registry_transactions SET units = %s, moved = %s WHERE tx_id = %s",
                (units, moved, tx),
            )
            db.execute("ALTER TABLE registry_transactions ENABLE TRIGGER USER")

    row = db.execute("SELECT moved FROM registry_transactions WHERE tx_id = %s", (tx,)).fetchone()
    assert row is not None
    moved = str(row[0])
    tamper(300, moved)  # the unit count alone
    try:
        report = json.loads(cli("verify").stdout)
        assert any(f"({tx}): stores 300 units" in p for p in report["problems"]), report
        tamper(300, moved.rsplit("-", 1)[0] + "-300")  # the serials too: 297 from nowhere
        done = cli("verify")
        report = json.loads(done.stdout)
        assert done.returncode == 1 and not report["ok"]
        assert any(f"({tx}): hash does not match" in p for p in report["problems"]), report
        assert any("registry holdings differ" in p for p in report["problems"]), report
    finally:
        tamper(3, moved)
    assert cli("verify").returncode == 0


@contextmanager
def altered(
    db: psycopg.Connection, table: str, column: str, value: object, key: str, at: object
) -> Iterator[None]:
    """The rows of `table` whose `key` is `at` with `column` set to `value`, as a
    superuser would (past the append-only trigger), put back afterwards."""
    row = db.execute(f"SELECT {column} FROM {table} WHERE {key} = %s", (at,)).fetchone()
    assert row is not None, (table, key, at)

    def write(v: object) -> None:
        with db.transaction():
            db.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            db.execute(f"UPDATE {table} SET {column} = %s WHERE {key} = %s", (v, at))
            db.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")

    write(value)
    try:
        yield
    finally:
        write(row[0])


def test_verify_names_a_tampered_issuance_contribution_adjustment_or_account(
    db: psycopg.Connection, settings: Settings, tmp_path: Path
) -> None:
    methodology, unit_type = _tag()
    person = people(1, methodology)[0]
    post(db, credits(methodology, date(2026, 10, 4), {person: 3 * T}))
    post(db, credits(methodology, date(2026, 11, 4), {person: 2 * T}))
    october = issue(
        package(db, settings, tmp_path, OCT1, OCT31), methodology, unit_type, OCT1, OCT31
    )
    november = issue(
        package(db, settings, tmp_path, NOV1, NOV30), methodology, unit_type, NOV1, NOV30
    )
    assert october[0] == november[0] == 0, (october, november)
    buyer = f"buyer-{methodology}"
    assert run("account", "create", "--id", buyer, "--name", "天平保险")[0] == 0
    assert cli("verify").returncode == 0
    first, second = uuid.UUID(october[1]["issuance"]), uuid.UUID(november[1]["issuance"])
    cases = [  # table, column, tampered value, key column, key; what verify must say
        ("registry_issuances", "region", "440306", "issuance_id", first,
         f"issuance {first}: region differs"),
        ("registry_issuances", "verifier", "someone else", "issuance_id", first,
         f"issuance {first}: verifier differs"),
        ("registry_issuances", "period_to", NOV30, "issuance_id", first,
         f"issuance {first}: period_to differs"),
        ("registry_issuances", "manifest_sha256", "f" * 64, "issuance_id", second,
         f"issuance {second}: manifest_sha256 differs"),
        ("registry_issuances", "net_mg", 3 * T + 1, "issuance_id", first,
         f"issuance {first}: net_mg differs"),
        ("registry_contributions", "net_mg", 3 * T + 1, "issuance_id", first,
         f"issuance {first}: contributions differ"),
        ("registry_contributions", "subject_kind", "unit", "issuance_id", second,
         f"issuance {second}: contributions differ"),
        ("registry_adjustments", "adjusted_mg", -1, "issuance_id", second,
         f"issuance {second}: adjustments differ"),
        ("registry_adjustments", "current_mg", 0, "issuance_id", second,
         f"issuance {second}: adjustments differ"),
        ("registry_accounts", "name", "someone else", "account_id", buyer,
         f"registry account {buyer}: differs"),
    ]  # fmt: skip
    for table, column, value, key, at, said in cases:
        with altered(db, table, column, value, key, at):
            done = cli("verify")
            report = json.loads(done.stdout)
            assert done.returncode == 1 and any(said in p for p in report["problems"]), (
                table, column, report["problems"],
            )  # fmt: skip
    assert cli("verify").returncode == 0


def test_a_public_read_sees_one_registry_whatever_commits_meanwhile(
    db: psycopg.Connection, settings: Settings
) -> None:
    # lineage, balance and issuance detail read in this snapshot: a write committed
    # between their statements (an issuance, a move) cannot make them disagree.
    count = "SELECT count(*) FROM registry_accounts"
    with psycopg.connect(settings.pg_conninfo, autocommit=True) as reader:
        with registry_views.snapshot(reader):
            before = reader.execute(count).fetchone()
            made = run("account", "create", "--id", f"snap-{uuid.uuid4().hex[:8]}", "--name", "N")
            assert made[0] == 0, made
            assert reader.execute(count).fetchone() == before
        assert reader.execute(count).fetchone() != before
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), registry_views.snapshot(reader):
            reader.execute("UPDATE registry_head SET chain_index = chain_index")


def test_a_repeated_request_is_done_once_and_returns_what_it_did(
    db: psycopg.Connection, settings: Settings, tmp_path: Path
) -> None:
    methodology, unit_type = _tag()
    post(db, credits(methodology, date(2026, 10, 6), {people(1, methodology)[0]: 5 * T}))
    code, _, err = issue(
        package(db, settings, tmp_path, OCT1, OCT31), methodology, unit_type, OCT1, OCT31
    )
    assert code == 0, err
    buyer = f"req-{methodology}"
    create = ["account", "create", "--id", buyer, "--name", "N", "--request-id", f"o-{buyer}"]
    opened, again = run(*create), run(*create)
    assert opened[0] == again[0] == 0 and opened[1] == again[1], (opened, again)
    sale = [
        "transfer", "--from", f"holding-{REGION}", "--to", buyer, "--units", "3",
        "--price-fen", "100", "--venue", "V", "--date", "2026-11-20", "--request-id", f"s-{buyer}",
    ]  # fmt: skip
    sold, again = run(*sale), run(*sale)
    assert sold[0] == again[0] == 0 and sold[1] == again[1], (sold, again)
    assert sold[1]["allocated_fen"] == sold[1]["amount_fen"] == 300
    retire = [
        "retire", "--account", buyer, "--units", "2", "--beneficiary", "B", "--purpose", "P",
        "--request-id", f"r-{buyer}",
    ]  # fmt: skip
    retired, again = run(*retire), run(*retire)
    assert retired[0] == again[0] == 0 and retired[1] == again[1], (retired, again)
    held = run("balance", buyer)[1]
    assert (held["units"], held["retired_units"]) == (1, 2)  # each done once
    backwards = [*retire[:-2], "--period-from", "2026-10-31", "--period-to", "2026-10-01"]
    code, _, err = run(*backwards)
    assert code == 2 and "emissions period ends" in err, err
    other = [("3" if arg == "2" else arg) for arg in retire]  # the same id, another retirement
    code, _, err = run(*other)
    assert code == 2 and "made another retire" in err, err


def test_the_database_refuses_a_serial_in_two_blocks_or_two_issuances(
    db: psycopg.Connection, settings: Settings, tmp_path: Path
) -> None:
    methodology, unit_type = _tag()
    post(db, credits(methodology, date(2026, 10, 7), {people(1, methodology)[0]: 3 * T}))
    code, out, err = issue(
        package(db, settings, tmp_path, OCT1, OCT31), methodology, unit_type, OCT1, OCT31
    )
    assert code == 0, err
    issuance = uuid.UUID(out["issuance"])
    # Units 1..3 are in one block: a block 3..4 would put unit 3 in two places.
    with pytest.raises(psycopg.errors.ExclusionViolation), db.transaction():
        db.execute(
            "INSERT INTO registry_blocks (unit_type, first_seq, last_seq, issuance_id, account)"
            " VALUES (%s, 3, 4, %s, %s)",
            (unit_type, issuance, f"holding-{REGION}"),
        )
    with pytest.raises(psycopg.errors.ExclusionViolation), db.transaction():
        db.execute(
            "INSERT INTO registry_issuances SELECT gen_random_uuid(), tx_id, region,"
            " methodology_id, period_from + 400, period_to + 400, vintage + 1, unit_type, units,"
            " serial_first + 1, serial_last + 1, net_mg, carried_in_mg, adjusted_mg, carried_mg,"
            " verifier, verified_at, manifest_sha256, issued_at FROM registry_issuances"
            " WHERE issuance_id = %s",
            (issuance,),
        )
