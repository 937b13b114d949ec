"""Reconciling the stream's books with the batch reference (`settle`) over the same records."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from carbonledger.contracts.methodology_files import load_methodologies
from carbonledger.contracts.partners import load_registry
from carbonledger.contracts.settings import Settings
from carbonledger.reference.settle import Settlement, settle
from carbonledger.services.ledger.adapters import views


def expected_from(settings: Settings, records: list[tuple[str, bytes]]) -> Settlement:
    return settle(
        records,
        load_registry(settings.partners_file),
        load_methodologies(settings.methodology_dir),
        datetime.now(UTC),
        window=settings.dedupe_window,
    )


def ledger_matches(conn: psycopg.Connection, expected: Settlement) -> list[str]:
    """Differences between the books in PostgreSQL and the expected settlement."""
    problems = []
    for book in ("personal", "enterprise", "government"):
        actual = views.balances(conn, book)
        wanted = {a: v for a, v in expected.book(book).items() if v}
        if actual != wanted:
            wrong = sorted(
                set(actual) ^ set(wanted) | {a for a in actual if actual[a] != wanted.get(a)}
            )
            problems.append(f"{book}: {len(wrong)} accounts differ (e.g. {wrong[:3]})")
    personal = views.balances(conn, "personal")
    units = {a for a in views.unit_accounts(conn) if personal.get(a)}
    if units != {a for a in expected.units if expected.personal.get(a)}:
        problems.append(f"personal: {len(units)} unit accounts, {len(expected.units)} expected")
    recorded = views.account_event_counts(conn)
    if recorded != dict(expected.account_events):
        problems.append(f"account events: {recorded} recorded, {dict(expected.account_events)}")
    return problems
