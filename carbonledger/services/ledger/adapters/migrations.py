"""Versioned schema migrations: numbered SQL files, each applied once, in order."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_KEY = 0x0CA4B0  # advisory lock: one migrator at a time


def available() -> list[tuple[int, Path]]:
    found = []
    for path in sorted(MIGRATIONS.glob("*.sql")):
        match = re.match(r"^(\d{4})_", path.name)
        if match:
            found.append((int(match.group(1)), path))
    return found


def latest_version() -> int:
    return max(v for v, _ in available())


def current_version(conn: psycopg.Connection) -> int:
    if not _table_exists(conn):
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0


def connect_migrated(conninfo: str) -> psycopg.Connection:
    """An autocommit connection to a database at the latest schema version: every
    write is an explicit transaction, and reads must not leave one open around it."""
    conn = psycopg.connect(conninfo, autocommit=True)
    if current_version(conn) != latest_version():
        conn.close()
        raise SystemExit("ledger schema is not migrated; run `carbonledger db migrate`")
    return conn


def _table_exists(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    return bool(row and row[0])


def migrate(conninfo: str) -> list[str]:
    """Apply every migration not yet applied; returns the names applied."""
    applied = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = current_version(conn)
            for version, path in available():
                if version <= done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text(encoding="utf-8").encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (version, path.name),
                    )
                applied.append(path.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied
