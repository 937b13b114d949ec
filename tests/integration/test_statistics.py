"""Government statistics against the real database: a district's, city's and
province's figures for a month, quarter and year equal sums computed independently
from the postings, and participants count distinct people exactly (a reversed
credit leaves the count). And partners' rejections, recorded by the writer's sink
and read by their own partner only."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import psycopg
import pytest
from aiokafka import TopicPartition
from fastapi.testclient import TestClient

from carbonledger.contracts import topics
from carbonledger.contracts.calendar import CST
from carbonledger.contracts.catalogue import CATALOGUE
from carbonledger.contracts.records import DeadLetter, Decision, DecisionKind, Origin
from carbonledger.contracts.regions import load_regions
from carbonledger.contracts.roles import Role
from carbonledger.contracts.settings import Settings
from carbonledger.demo.sample import subject_of
from carbonledger.ops import stack
from carbonledger.runtime.process import OffLoop
from carbonledger.services.ledger.adapters.books import Books
from carbonledger.services.ledger.adapters.migrations import migrate
from carbonledger.services.ledger.domain.batches import Offset
from carbonledger.services.ledger.entrypoints.api import create_app
from carbonledger.services.ledger.service import Postings
from tests.factories import claim, reversal
from tests.integration.helpers import bearer

pytestmark = pytest.mark.integration

DISTRICTS = ("440305", "440304", "440106")  # 南山, 福田 (深圳), 天河 (广州)
PEOPLE = [subject_of(f"+86-stats-{n}") for n in range(12)]
YEAR = (date(2026, 1, 1), date(2026, 12, 31))


@pytest.fixture(scope="module")
def scratch(settings: Settings) -> Iterator[str]:
    started = stack.script("postgres", "status", settings, check=False) != 0
    if started:
        stack.script("postgres", "start", settings)
    name = f"statistics_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(settings.pg_conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    migrate(settings.model_copy(update={"pg_database": name}).pg_conninfo)
    yield name
    with psycopg.connect(settings.pg_conninfo, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
    if started:
        stack.script("postgres", "stop", settings)


def credits(count: int, seed: int) -> list[Decision]:
    rng = random.Random(seed)
    made = []
    for n in range(count):
        c = claim(
            rng.choice(["shenzhen-metro", "navi-maps"]),
            f"stats-{seed}-{n}",
            rng.randrange(0, 600),
            mg=rng.randrange(1, 5_000_000),
            subject=rng.choice(PEOPLE),
            behaviour_type=rng.choice(["travel.metro", "travel.bus", "home.electricity"]),
        )
        moment = datetime(2026, 1, 1, tzinfo=CST) + timedelta(days=rng.randrange(0, 360))
        c = c.model_copy(
            update={
                "region": rng.choice(DISTRICTS),
                "started_at": moment,
                "ended_at": moment + timedelta(minutes=20),
                "time": moment + timedelta(minutes=20),
            }
        )
        made.append(
            Decision(
                decision_id=uuid.uuid5(c.claim_id, "credit"),
                kind=DecisionKind.CREDIT,
                amount_mg=c.reduction_mg,
                claim=c,
            )
        )
    return made


def expected(
    conn: psycopg.Connection, regions: tuple[str, ...], first: date, last: date
) -> tuple[int, int]:
    """Amount and distinct people with net credited actions, straight from the postings."""
    row = conn.execute(
        "SELECT coalesce(sum(p.amount_mg), 0) FROM postings p WHERE p.book = 'government'"
        " AND p.region = ANY(%s) AND (p.behaviour_time AT TIME ZONE 'Asia/Shanghai')::date"
        " BETWEEN %s AND %s",
        (list(regions), first, last),
    ).fetchone()
    people = conn.execute(
        "SELECT count(*) FROM (SELECT d.subject FROM postings p JOIN decisions d USING"
        " (decision_id) WHERE p.book = 'government' AND p.region = ANY(%s)"
        " AND (p.behaviour_time AT TIME ZONE 'Asia/Shanghai')::date BETWEEN %s AND %s"
        " GROUP BY d.subject HAVING sum(sign(p.amount_mg)) > 0) s",
        (list(regions), first, last),
    ).fetchone()
    assert row is not None and people is not None
    return int(row[0]), int(people[0])


# Count rows that disagree with a count of the subjects' bucket entries above zero
# (the writer's bumps as entries cross zero must add up to it).
_COUNTS_DRIFT = """
SELECT count(*) FROM participant_counts c
FULL JOIN (SELECT p.period, p.period_start, u.bucket, count(*) AS n
           FROM participant_periods p, unnest(p.buckets, p.actions) AS u(bucket, actions)
           WHERE u.actions > 0 GROUP BY 1, 2, 3) r
USING (period, period_start, bucket)
WHERE coalesce(c.participants, 0) <> coalesce(r.n, 0)
"""

# The column of the postings (with the category of each type) each breakdown is by.
_BREAKDOWNS = {
    "by_category": "coalesce(c.category, 'other')",
    "by_behaviour_type": "p.behaviour_type",
    "by_partner": "p.partner",
}


def expected_people_by(
    conn: psycopg.Connection, breakdown: str, regions: tuple[str, ...], first: date, last: date
) -> dict[str, int]:
    """Distinct people with net credited actions per value of a breakdown, from the
    postings (independently of the statistics tables)."""
    types = sorted(CATALOGUE)
    rows = conn.execute(
        f"SELECT value, count(*) FROM (SELECT {_BREAKDOWNS[breakdown]} AS value, d.subject"
        " FROM postings p JOIN decisions d USING (decision_id)"
        " LEFT JOIN unnest(%s::text[], %s::text[]) AS c(behaviour_type, category)"
        " ON c.behaviour_type = p.behaviour_type"
        " WHERE p.book = 'government' AND p.region = ANY(%s)"
        " AND (p.behaviour_time AT TIME ZONE 'Asia/Shanghai')::date BETWEEN %s AND %s"
        " GROUP BY 1, 2 HAVING sum(sign(p.amount_mg)) > 0) s GROUP BY 1",
        (types, [CATALOGUE[t].category.value for t in types], list(regions), first, last),
    ).fetchall()
    return {str(v): int(n) for v, n in rows}


def test_figures_equal_sums_from_the_postings_at_every_level_and_period(
    settings: Settings, scratch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = settings.model_copy(update={"pg_database": scratch}).pg_conninfo
    batch = credits(300, seed=22)
    undone = [reversal(d) for d in batch[:40]]
    with psycopg.connect(info, autocommit=True) as conn:
        books = Books(conn)
        books.apply(batch, "stats", [Offset("t", 0, 1)])
        books.apply(undone, "stats", [Offset("t", 0, 2)])
        books.apply(batch + undone, "stats", [Offset("t", 0, 2)])  # redelivered: no change
        assert conn.execute(_COUNTS_DRIFT).fetchone() == (0,)
        monkeypatch.setenv("CARBON_PG_DATABASE", scratch)
        cases = [
            ("440305", ("440305",)),
            ("440300", ("440305", "440304")),
            ("440000", DISTRICTS),
        ]
        with TestClient(create_app(), headers=bearer(), client=("127.0.0.1", 50000)) as api:
            for region, districts in cases:
                for query, first, last in [
                    ("period=month&at=2026-05-09", date(2026, 5, 1), date(2026, 5, 31)),
                    ("period=quarter&at=2026-08-01", date(2026, 7, 1), date(2026, 9, 30)),
                    ("period=year&at=2026-02-02", date(2026, 1, 1), date(2026, 12, 31)),
                    ("from=2026-03-15&to=2026-06-20", date(2026, 3, 15), date(2026, 6, 20)),
                    ("from=2026-04-01&to=2026-06-30", date(2026, 4, 1), date(2026, 6, 30)),
                    ("period=day&at=2026-02-10", date(2026, 2, 10), date(2026, 2, 10)),
                ]:
                    got = api.get(f"/v1/statistics/{region}?{query}").json()
                    amount, people = expected(conn, districts, first, last)
                    assert (got["amount"]["mg"], got["people"]) == (amount, people), (region, query)
                    assert sum(c["amount"]["mg"] for c in got["by_category"]) == amount
                    assert sum(c["amount"]["mg"] for c in got["by_partner"]) == amount
                    for breakdown in _BREAKDOWNS:
                        by = {f["key"]: f["people"] for f in got[breakdown] if f["people"]}
                        assert by == expected_people_by(conn, breakdown, districts, first, last), (
                            region,
                            query,
                            breakdown,
                        )
            quarter = api.get("/v1/statistics/440300?from=2026-04-01&to=2026-06-30").json()
            assert quarter["period"] == "quarter"  # read from the quarter's counts
            province = api.get("/v1/statistics/440000?period=year&at=2026-01-01").json()
            shown = {c["code"]: c for c in province["children"]}
            assert list(shown) == [c.code for c in load_regions().children("440000")]
            assert shown["440400"]["amount"]["mg"] == 0 and shown["440400"]["people"] == 0
            assert shown["440300"]["people"] == expected(conn, DISTRICTS[:2], *YEAR)[1]
            assert sum(c["amount"]["mg"] for c in shown.values()) == province["amount"]["mg"]
            assert [q["key"] for q in province["by_quarter"]] == [
                "2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"
            ]  # fmt: skip
            assert (
                sum(q["amount"]["mg"] for q in province["by_quarter"]) == (province["amount"]["mg"])
            )
            assert province["actions"] == 300 - 40
            csv = api.get("/v1/statistics/440000/csv?period=year&at=2026-01-01")
            assert csv.headers["content-type"].startswith("text/csv")
            assert f"total,440000,广东省,{province['amount']['mg']}" in csv.content.decode(
                "utf-8-sig"
            )


def letter(partner: str | None, offset: int, payload: bytes) -> DeadLetter:
    return DeadLetter.of(
        stage="ingest",
        reason="invalid_envelope",
        message="specversion must be 1.0",
        partner=partner,
        origin=Origin(topic=f"partner.{partner or 'x'}.events", partition=0, offset=offset),
        key=None,
        payload=payload,
        received_at=datetime(2026, 5, 1, tzinfo=CST),
    )


def test_a_partner_reads_its_own_rejections_and_no_one_elses(
    settings: Settings, scratch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = settings.model_copy(update={"pg_database": scratch}).pg_conninfo
    letters = [letter("navi-maps", n, b'{"id": "bad-%d"}' % n) for n in range(3)]
    letters += [letter("shenzhen-metro", 9, b"\xff\xfe"), letter(None, 10, b"poison")]
    with psycopg.connect(info, autocommit=True) as conn:
        sink = Postings(Books(conn), "rejections", OffLoop(lambda: None))
        for again in range(2):  # redelivered: the same rows
            for one in letters:
                list(sink.take_rejection(None, one))
            asyncio.run(sink.write({TopicPartition(topics.REJECTED, 0): 11 + again}))
        assert conn.execute("SELECT count(*) FROM partner_rejections").fetchone() == (4,)
    monkeypatch.setenv("CARBON_PG_DATABASE", scratch)
    with TestClient(create_app(), client=("127.0.0.1", 50000)) as api:
        own = bearer(Role.PARTNER, partner="navi-maps")
        first = api.get("/v1/partners/navi-maps/rejections?limit=2", headers=own).json()
        rest = api.get(
            f"/v1/partners/navi-maps/rejections?before={first['next_before']}", headers=own
        ).json()
        theirs = api.get("/v1/partners/shenzhen-metro/rejections", headers=own)
        binary = api.get(
            "/v1/partners/shenzhen-metro/rejections",
            headers=bearer(Role.PARTNER, partner="shenzhen-metro"),
        ).json()["rejections"]
    shown = [r["original_text"] for r in first["rejections"] + rest["rejections"]]
    assert shown == ['{"id": "bad-2"}', '{"id": "bad-1"}', '{"id": "bad-0"}']
    assert first["rejections"][0]["reason"] == "invalid_envelope"
    assert first["rejections"][0]["offset"] == 2 and rest["next_before"] is None
    assert theirs.status_code == 403
    assert binary[0]["original_text"] is None and binary[0]["original_b64"] == "//4="
