"""The portal in a real headless Chromium (Debian's `chromium`, driven by Playwright
through its executable path; no browser is downloaded): a government user sees the
region's total the API reports, a person their balance and a posting's provenance,
a partner its rejection. Every request the pages make stays on loopback (anything
else is aborted and fails the test). Screenshots go to the test stack's run folder
(`screenshots/`), for CI to keep.

Skipped only when CARBON_SKIP_BROWSER_TESTS=1; without chromium the tests fail
(deploy/local/browser.sh installs it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
import uvicorn
from aiokafka import TopicPartition

from carbonledger.contracts import topics
from carbonledger.contracts.roles import Role
from carbonledger.contracts.settings import Settings
from carbonledger.runtime.process import OffLoop
from carbonledger.services.ledger.adapters.books import Books
from carbonledger.services.ledger.domain.batches import Offset
from carbonledger.services.ledger.entrypoints.api import create_app
from carbonledger.services.ledger.service import Postings
from tests.integration.helpers import bearer
from tests.integration.test_statistics import PEOPLE, credits, letter, scratch

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.environ.get("CARBON_SKIP_BROWSER_TESTS") == "1",
        reason="CARBON_SKIP_BROWSER_TESTS=1",
    ),
]
__all__ = ["scratch"]  # the scratch database fixture, shared with test_statistics

CHROMIUM = os.environ.get("CARBON_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def portal(settings: Settings, scratch: str) -> Iterator[str]:
    """The ledger API over a scratch database holding a year of credits and a
    partner's rejection, served by uvicorn on a free loopback port."""
    info = settings.model_copy(update={"pg_database": scratch}).pg_conninfo
    with psycopg.connect(info, autocommit=True) as conn:
        Books(conn).apply(credits(120, seed=7), "portal", [Offset("t", 0, 1)])
        sink = Postings(Books(conn), "portal", OffLoop(lambda: None))
        list(sink.take_rejection(None, letter("navi-maps", 77, b'{"specversion": "0.3"}')))
        asyncio.run(sink.write({TopicPartition(topics.REJECTED, 1): 78}))
    saved = os.environ.get("CARBON_PG_DATABASE")
    os.environ["CARBON_PG_DATABASE"] = scratch
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(10)
        if saved is None:
            os.environ.pop("CARBON_PG_DATABASE", None)
        else:
            os.environ["CARBON_PG_DATABASE"] = saved


@pytest.fixture(scope="module")
def browser(portal: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"no chromium at {CHROMIUM}: run deploy/local/browser.sh"
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture()
def page(
    portal: str, browser: Any, settings: Settings, request: pytest.FixtureRequest
) -> Iterator[Any]:
    """(The portal is up first: it runs asyncio, which Playwright's running loop
    would refuse.) A fresh page whose every request must go to loopback (others are aborted and
    recorded); a screenshot of where it ended is saved after the test."""
    context = browser.new_context(viewport={"width": 1200, "height": 1400})
    opened = context.new_page()
    elsewhere: list[str] = []

    def only_loopback(route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    opened.route("**/*", only_loopback)
    yield opened
    shots = settings.run_dir / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    opened.screenshot(path=str(shots / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert elsewhere == [], f"pages reached beyond loopback: {elsewhere}"


def log_in(page: Any, base: str, role: str, **scope: str) -> None:
    page.goto(f"{base}/portal/login")
    page.select_option("#role", role)
    for name, value in scope.items():
        page.fill(f"#{name}", value)
    page.click("#login")
    page.wait_for_load_state()


def test_a_government_user_sees_the_regions_total_the_api_reports(page: Any, portal: str) -> None:
    log_in(page, portal, "government", region="440300")
    assert page.url.endswith("/portal/region/440300")
    page.goto(f"{portal}/portal/region/440300?period=year&at=2026-06-01")
    shown = page.inner_text("#total-tonnes").strip()
    api = httpx.get(
        f"{portal}/v1/statistics/440300?period=year&at=2026-06-01",
        headers=bearer(Role.GOVERNMENT, region="440300"),
    ).json()
    assert shown == api["amount"]["t"] and api["amount"]["mg"] > 0
    assert page.inner_text("#people").strip() == str(api["people"])
    assert page.locator("#trend-month svg.chart rect").count() == len(api["by_month"])
    assert page.locator("#trend-quarter svg.chart rect").count() == len(api["by_quarter"])
    assert "南山区" in page.inner_text("#children")
    # every district of the city, zeros included
    assert page.locator("#children tr").count() == 1 + len(api["children"]) > 3
    assert page.get_attribute("#csv", "href").startswith("/v1/statistics/440300/csv?")
    page.goto(f"{portal}/portal/region/110000")  # outside its scope: a 403 page
    assert "403" in page.inner_text("h1")
    page.goto(f"{portal}/portal/region/440300?period=year&at=2026-06-01")  # the screenshot's


def test_a_person_sees_the_balance_and_opens_a_postings_provenance(page: Any, portal: str) -> None:
    someone = PEOPLE[0]
    log_in(page, portal, "person", subject=someone)
    assert page.url.endswith(f"/portal/person/{someone}")
    api = httpx.get(
        f"{portal}/v1/ledgers/personal/{someone}", headers=bearer(Role.PERSON, subject=someone)
    ).json()
    assert page.inner_text("#balance").strip() == api["balance"]["kg"]
    page.click("a.provenance >> nth=0")
    page.wait_for_load_state()
    assert page.inner_text("#status").strip() == "credited"
    assert page.inner_text("#methodology").strip() == "m@1"


def test_a_partner_sees_its_rejection(page: Any, portal: str) -> None:
    log_in(page, portal, "partner", partner="navi-maps")
    assert page.url.endswith("/portal/partner/navi-maps")
    table = page.inner_text("#rejections")
    assert "invalid_envelope" in table and '"specversion": "0.3"' in table
    assert page.inner_text("#enterprise-balance").strip() != ""
