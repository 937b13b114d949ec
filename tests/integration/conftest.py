"""A whole stack for the integration tests: its own Kafka, PostgreSQL and services.

It runs from its own run folder and ports (Kafka 29092, PostgreSQL 25432,
service ports +1000), so it never touches a developer's `carbonledger up`.
Every session starts from empty storage.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import psycopg
import pytest

from carbonledger.contracts.settings import ROOT, Settings
from carbonledger.ops import lifecycle, stack

# CARBON_TEST_SLOT=N moves the whole test stack by N*100 ports and to its own run
# folder, so several checkouts on one machine can each run their integration tests.
_SLOT = int(os.environ.get("CARBON_TEST_SLOT", "0"))
TEST_ENV = {
    "CARBON_ENVIRONMENT": "test",
    "CARBON_RUN_DIR": str(ROOT / ".run" / ("test-stack" + (f"-{_SLOT}" if _SLOT else ""))),
    "CARBON_KAFKA_PORT": str(29092 + 100 * _SLOT),
    "CARBON_KAFKA_CONTROLLER_PORT": str(29093 + 100 * _SLOT),
    "CARBON_PG_PORT": str(25432 + 100 * _SLOT),
    "CARBON_PORT_OFFSET": str(1000 + 100 * _SLOT),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that send today's traffic run after the others: it moves dedupe's
    watermark to now, and the other tests' traffic (October 2026) would then be
    late. Tests that restart the broker run last, so no other test sees it."""

    def late(item: pytest.Item) -> tuple[bool, bool]:
        return (
            item.get_closest_marker("broker_restart") is not None,
            item.get_closest_marker("todays_traffic") is not None,
        )

    items.sort(key=late)


@pytest.fixture(scope="session")
def settings() -> Iterator[Settings]:
    saved = {k: os.environ.get(k) for k in TEST_ENV}
    os.environ.update(TEST_ENV)
    try:
        yield Settings()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def running_stack(settings: Settings) -> Iterator[stack.Processes]:
    lifecycle.down(settings)  # a previous session killed hard may have left processes behind
    shutil.rmtree(settings.run_dir, ignore_errors=True)
    lifecycle.up(settings)
    try:
        yield stack.Processes(settings)
    finally:
        if not os.environ.get("CARBON_KEEP_TEST_STACK"):  # set it to inspect a failure
            lifecycle.down(settings)


@pytest.fixture()
def db(settings: Settings, running_stack: stack.Processes) -> Iterator[psycopg.Connection]:
    with psycopg.connect(settings.pg_conninfo, autocommit=True) as conn:
        yield conn
