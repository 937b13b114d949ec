"""The ledger's schema migrations (Alembic) against a real PostgreSQL server.

Needs only PostgreSQL: the test stack's server, started here unless it runs
already, with a scratch database per test.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

from carbonledger.contracts.settings import Settings
from carbonledger.ops import stack
from carbonledger.services.ledger.adapters import migrations
from carbonledger.services.ledger.adapters.migrations import (
    current_version,
    latest_version,
    migrate,
)

pytestmark = pytest.mark.integration

SQL_FILES = sorted(migrations.MIGRATIONS.glob("*.sql"))
NAMES = [path.name for path in SQL_FILES]

# What the hand-written runner before Alembic created and filled, one row per file.
OLD_RUNNER_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY, name text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())"
)

# The schema as the catalogue describes it, less the migrators' own bookkeeping.
SCHEMA = {
    "columns": "SELECT table_name, column_name, data_type, column_default, is_nullable"
    " FROM information_schema.columns WHERE table_schema = 'public'",
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
    " FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
    "triggers": "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)"
    " FROM pg_trigger WHERE NOT tgisinternal",
    "functions": "SELECT proname, prosrc FROM pg_proc WHERE pronamespace = 'public'::regnamespace",
}
BOOKKEEPING = ("alembic_version", "schema_migrations")


@pytest.fixture(scope="module")
def postgres(settings: Settings) -> Iterator[None]:
    started = stack.script("postgres", "status", settings, check=False) != 0
    if started:
        stack.script("postgres", "start", settings)
    yield
    if started:
        stack.script("postgres", "stop", settings)


@pytest.fixture()
def scratch(settings: Settings, postgres: None) -> Iterator[Callable[[], str]]:
    """Makes empty databases; returns each one's conninfo. Dropped afterwards."""
    made: list[str] = []

    def make() -> str:
        name = f"migrations_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(settings.pg_conninfo, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"'.encode())
        made.append(name)
        return settings.model_copy(update={"pg_database": name}).pg_conninfo

    yield make
    with psycopg.connect(settings.pg_conninfo, autocommit=True) as admin:
        for name in made:
            drop(admin, name)


def drop(admin: psycopg.Connection, name: str, attempts: int = 20) -> None:
    """Drop a scratch database. FORCE may not end an autovacuum worker that has just
    started on it (a superuser's process: "must be a member of the role ..."); the
    worker gives way within moments, so try again."""
    for attempt in range(attempts):
        try:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
            return
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


def migrate_as_the_old_runner(conninfo: str, up_to: int) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(OLD_RUNNER_TABLE)
        for version, path in enumerate(SQL_FILES[:up_to], start=1):
            with conn.transaction():
                conn.execute(path.read_text(encoding="utf-8").encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (version, path.name),
                )


def version_of(conninfo: str) -> int:
    with psycopg.connect(conninfo) as conn:
        return current_version(conn)


def schema_of(conninfo: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(conninfo) as conn:
        return {
            part: sorted(
                row
                for row in conn.execute(query.encode()).fetchall()
                if not any(str(field).startswith(BOOKKEEPING) for field in row)
            )
            for part, query in SCHEMA.items()
        }


def test_a_fresh_database_gets_every_sql_file_in_order_and_a_second_run_nothing(
    scratch: Callable[[], str],
) -> None:
    conninfo = scratch()
    assert version_of(conninfo) == 0

    assert migrate(conninfo) == NAMES
    assert migrate(conninfo) == []
    assert version_of(conninfo) == latest_version() == len(NAMES)


def test_alembic_makes_the_schema_the_old_runner_made(scratch: Callable[[], str]) -> None:
    by_alembic, by_old_runner = scratch(), scratch()
    migrate(by_alembic)
    migrate_as_the_old_runner(by_old_runner, up_to=len(SQL_FILES))

    assert schema_of(by_alembic) == schema_of(by_old_runner)
    assert schema_of(by_alembic)["triggers"]  # the comparison saw the append-only guards


def test_a_database_the_old_runner_migrated_is_stamped_not_migrated_again(
    scratch: Callable[[], str],
) -> None:
    conninfo = scratch()
    migrate_as_the_old_runner(conninfo, up_to=len(SQL_FILES))
    assert version_of(conninfo) == 0  # the writer refuses it until `db migrate` has run

    assert migrate(conninfo) == []  # running 0001 again would fail: its tables exist
    assert version_of(conninfo) == latest_version()
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (f"{latest_version():04d}",)
        ]


def test_a_database_the_old_runner_left_part_way_gets_only_the_later_files(
    scratch: Callable[[], str],
) -> None:
    conninfo = scratch()
    migrate_as_the_old_runner(conninfo, up_to=2)

    assert migrate(conninfo) == NAMES[2:]
    assert version_of(conninfo) == latest_version()


def test_a_failing_file_leaves_the_files_before_it_applied_and_the_lock_free(
    scratch: Callable[[], str],
) -> None:
    conninfo = scratch()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE employer_links (subject text)")  # what 0004 creates

    with pytest.raises(psycopg.errors.DuplicateTable):
        migrate(conninfo)
    assert version_of(conninfo) == 3
    with pytest.raises(psycopg.errors.DuplicateTable):  # a second run is not left waiting
        migrate(conninfo)


def test_migrators_started_together_take_turns_on_the_old_runners_lock(
    scratch: Callable[[], str],
) -> None:
    conninfo = scratch()
    program = (
        "import sys; from carbonledger.services.ledger.adapters.migrations import migrate;"
        " print(','.join(migrate(sys.argv[1])))"
    )
    with psycopg.connect(conninfo, autocommit=True) as holder:
        # Held here (as an old runner would hold it), both must queue behind it.
        holder.execute("SELECT pg_advisory_lock(%s)", (migrations._LOCK_KEY,))
        runs = [
            subprocess.Popen(
                [sys.executable, "-c", program, conninfo], stdout=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        wait_for_lock_waiters(holder, count=2)
        holder.execute("SELECT pg_advisory_unlock(%s)", (migrations._LOCK_KEY,))
        outputs = sorted(run.communicate(timeout=120)[0].strip() for run in runs)

    assert [run.returncode for run in runs] == [0, 0]
    assert outputs == ["", ",".join(NAMES)]


def wait_for_lock_waiters(conn: psycopg.Connection, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    query = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    while time.monotonic() < deadline:
        row = conn.execute(query).fetchone()
        if row and row[0] >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} migrators waited for the lock")


def test_0006_marks_the_unit_accounts_written_before_it(scratch: Callable[[], str]) -> None:
    conninfo = scratch()
    migrate_as_the_old_runner(conninfo, up_to=5)
    unit, person = "a" * 64, "b" * 64
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for n, (account, kind) in enumerate([(unit, "unit"), (person, "person")]):
            decision = uuid.uuid4()
            conn.execute(
                "INSERT INTO decisions (decision_id, kind, claim_id, event_source, event_id,"
                " subject, behaviour_type, region, amount_mg, claim)"
                " VALUES (%s, 'credit', %s, 'p', %s, %s, 'travel.metro', '440305', 5, '{}')",
                (decision, decision, f"e{n}", account),
            )
            conn.execute(
                "INSERT INTO postings (posting_id, decision_id, claim_id, book, account,"
                " amount_mg, behaviour_type, region, partner, behaviour_time, chain_index,"
                " balance_mg, prev_hash, hash, subject_kind) VALUES (%s, %s, %s, 'personal', %s,"
                " 5, 'travel.metro', '440305', 'p', now(), 1, 5, repeat('0', 64),"
                " repeat('1', 64), %s)",
                (uuid.uuid4(), decision, decision, account, kind),
            )
            conn.execute(
                "INSERT INTO balances (book, account, balance_mg, postings)"
                " VALUES ('personal', %s, 5, 1)",
                (account,),
            )
    assert migrate(conninfo) == NAMES[5:]
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute("SELECT account, subject_kind FROM balances").fetchall()
    kinds: dict[str, str] = {str(a): str(k) for a, k in rows}
    assert kinds == {unit: "unit", person: "person"}
