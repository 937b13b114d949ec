"""The ledger's schema migrations, run by Alembic.

The numbered SQL files in this folder are the schema's source of truth. Each
revision in versions/ runs one of them unchanged, and its revision id is the
file's number ("0001" runs 0001_books.sql). Alembic is configured here, in code
(no alembic.ini), so an installed package carries everything it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from alembic import command, op
from alembic.config import Config
from alembic.runtime.migration import MigrationInfo
from alembic.script import ScriptDirectory
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).parent
# One migrator at a time; the hand-written runner before Alembic took the same
# key, so an old and a new image migrating side by side also wait for each other.
_LOCK_KEY = 0x0CA4B0
# What the hand-written runner recorded its versions in (1..4 for 0001..0004).
_OLD_RUNNER_TABLE = "schema_migrations"


def sql_file(revision: str) -> Path:
    """The SQL file that revision runs: the one whose name starts with its number."""
    (path,) = MIGRATIONS.glob(f"{revision}_*.sql")
    return path


def run_sql_file(revision: str) -> None:
    """Run the revision's SQL file as one string on psycopg itself, inside the
    revision's transaction: SQLAlchemy would read ':name' and '%' in it as
    parameters, and psycopg sends a query without parameters as it is."""
    driver = op.get_bind().connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    driver.execute(sql_file(revision).read_text(encoding="utf-8").encode())


def sqlalchemy_url(conninfo: str) -> URL:
    """The libpq conninfo (Settings.pg_conninfo) as a URL for SQLAlchemy's psycopg 3
    driver; parameters a URL has no place for (sslmode, ...) go in its query."""
    params = {key: str(value) for key, value in conninfo_to_dict(conninfo).items()}
    port = params.pop("port", None)
    return URL.create(
        "postgresql+psycopg",
        username=params.pop("user", None),
        password=params.pop("password", None),
        host=params.pop("host", None),
        port=int(port) if port else None,
        database=params.pop("dbname", None),
        query=params,
    )


def alembic_config(**attributes: Any) -> Config:
    """Alembic's configuration; `attributes` reach env.py (the connection to migrate)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.attributes.update(attributes)
    return config


def latest_version() -> int:
    """The number of the newest SQL file: the head revision."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    return int(head) if head else 0


def current_version(conn: psycopg.Connection) -> int:
    """The number of the newest SQL file applied (0 before Alembic has migrated)."""
    if not _table_exists(conn, "alembic_version"):
        return 0
    row = conn.execute("SELECT max(version_num) FROM alembic_version").fetchone()
    return int(row[0]) if row and row[0] else 0


def connect_migrated(conninfo: str) -> psycopg.Connection:
    """An autocommit connection to a database at the latest schema version: every
    write is an explicit transaction, and reads must not leave one open around it."""
    conn = psycopg.connect(conninfo, autocommit=True)
    if current_version(conn) != latest_version():
        conn.close()
        raise SystemExit("ledger schema is not migrated; run `carbonledger db migrate`")
    return conn


def _table_exists(conn: psycopg.Connection, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return bool(row and row[0])


def migrate(conninfo: str) -> list[str]:
    """Apply every SQL file not yet applied, in order; returns the names applied."""
    applied: list[str] = []

    def record(*, step: MigrationInfo, **_: Any) -> None:
        if step.is_upgrade and not step.is_stamp and step.up_revision_id:
            applied.append(sql_file(step.up_revision_id).name)

    engine = create_engine(sqlalchemy_url(conninfo), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            _run_locked(conn, alembic_config(connection=conn, on_version_apply=record))
    finally:
        engine.dispose()
    return applied


def _run_locked(conn: Connection, config: Config) -> None:
    # Alembic opens one transaction per revision only on a connection outside one:
    # commit after each statement of ours (the lock is the session's, it stays).
    conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK_KEY})
    conn.commit()
    try:
        if old := _old_runner_version(conn):
            command.stamp(config, f"{old:04d}")
        command.upgrade(config, "head")
    finally:
        conn.rollback()
        conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY})
        conn.commit()


def _old_runner_version(conn: Connection) -> int:
    """The newest version the hand-written runner applied, on a database Alembic has
    not migrated yet (else 0). Stamped as its revision, upgrade runs only the files
    after it."""
    untracked = conn.execute(
        text("SELECT to_regclass('alembic_version') IS NULL AND to_regclass(:table) IS NOT NULL"),
        {"table": _OLD_RUNNER_TABLE},
    ).scalar()
    query = f"SELECT max(version) FROM {_OLD_RUNNER_TABLE}"
    version = conn.execute(text(query)).scalar() if untracked else 0
    conn.commit()
    return int(version or 0)
