"""Global natural keys, units and engagement events over the real broker and database.

One recycling batch reported by two or three people through partners of different
evidence ranks is credited once, whatever the order, with resends and a SIGKILL of
the dedupe stage mid-run; the books equal `settle` over the same records. An
engagement event reaches engagement.events and no book.

The shipped registry credits no recycling (Quzhou's factor is inactive) and no
shipped partner may report engagement events, so this module runs ingest with a
partner file that lets two more partners report batches and sign-ins, and quantify
with a registry holding an active copy of the recycling factor; both are restored
afterwards.
"""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
import yaml

from carbonledger.contracts import ids, topics
from carbonledger.contracts.calendar import CST
from carbonledger.contracts.methodology_files import publish as publish_version
from carbonledger.contracts.settings import Settings
from carbonledger.demo.sample import subject_of
from carbonledger.ops import stack
from carbonledger.ops.publish import publish
from carbonledger.reference.reconcile import expected_from
from carbonledger.services.ledger.adapters import views
from tests.integration.helpers import (
    books_balanced,
    latest_kinds,
    publish_killing,
    read_api,
    scan,
    wait_for_balances,
)

pytestmark = pytest.mark.integration

RANKS = {"recycle-station": 30, "navi-maps": 20, "green-bank": 10}
DISTRICTS = ("440303", "440305", "440307")


@pytest.fixture(scope="module")
def configured(
    settings: Settings, running_stack: stack.Processes, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """Ingest and quantify restarted on this module's partner file and registry."""
    folder = tmp_path_factory.mktemp("global-keys")
    partners = yaml.safe_load(settings.partners_file.read_text(encoding="utf-8"))
    for partner in partners["partners"]:
        if partner["id"] in RANKS:
            partner["behaviours"] = sorted({*partner["behaviours"], "recycle.item"})
            partner["evidence_rank"] = {
                **partner.get("evidence_rank", {}),
                "recycle": RANKS[partner["id"]],
            }
        if partner["id"] == "navi-maps":
            partner["behaviours"] = sorted({*partner["behaviours"], "engage.sign_in"})
    partners_file = folder / "partners.yaml"
    partners_file.write_text(yaml.safe_dump(partners, allow_unicode=True), encoding="utf-8")
    registry = folder / "registry"
    shutil.copytree(settings.methodology_dir, registry)
    quzhou = (registry / "quzhou-recycling-2022@1.yaml").read_text(encoding="utf-8")
    active = registry / "test-recycling@1.yaml"
    active.write_text(
        quzhou.replace("id: quzhou-recycling-2022", "id: test-recycling")
        .replace('region: "3308"', 'region: "44"')
        .replace("active: false", "active: true"),
        encoding="utf-8",
    )
    publish_version(active)
    env = {"CARBON_PARTNERS_FILE": str(partners_file), "CARBON_METHODOLOGY_DIR": str(registry)}
    restart(running_stack, env)
    try:
        yield settings.model_copy(
            update={"partners_file": partners_file, "methodology_dir": registry}
        )
    finally:
        restart(running_stack, {})


def restart(running_stack: stack.Processes, env: dict[str, str]) -> None:
    for name in ("ingest", "quantify"):
        running_stack.stop(name)
        running_stack.start(name, env=env)
    for name in ("ingest", "quantify"):
        running_stack.wait_ready(name)


def recycling(tag: str, batches: int, seed: int) -> list[tuple[str, bytes]]:
    """Batches handed in during the shared week, each reported by one to three of
    this test's people through different partners, weights a little apart; the
    first of them is an organisation (a unit)."""
    rng = random.Random(seed)
    people = [subject_of(f"+86-{tag}-{i}") for i in range(10)]
    records = []
    for b in range(batches):
        handed_in = datetime(2026, 10, 13, 8, tzinfo=CST) + timedelta(minutes=rng.randrange(6000))
        kg = rng.randint(10, 300)
        partners = rng.sample(sorted(RANKS), rng.randint(1, 3))
        for n, (partner, subject) in enumerate(zip(partners, rng.sample(people, 3), strict=False)):
            at = handed_in + timedelta(minutes=rng.choice([0, 5, 40]))
            event = {
                "specversion": "1.0",
                "id": f"{tag}-{b}-{n}",
                "source": partner,
                "type": "recycle.item",
                "time": at.isoformat(),
                "subject": subject,
                "data": {
                    "region": DISTRICTS[b % 3],
                    "batch_id": f"{tag}-batch-{b}",
                    "material": "paper",
                    "kg": f"{(kg + rng.choice([0, 0, 1, -1])) / 10:.1f}",
                },
            }
            if subject == people[0]:
                event["subjectkind"] = "unit"
            records.append((partner, json.dumps(event).encode()))
    return records


def books_of_events(db: psycopg.Connection, id_prefix: str) -> dict[str, dict[str, int]]:
    """What the ledger's postings of these events add up to, per book and account."""
    rows = db.execute(
        "SELECT p.book, p.account, sum(p.amount_mg) FROM postings p"
        " JOIN decisions d USING (decision_id) WHERE d.event_id LIKE %s GROUP BY 1, 2",
        (id_prefix + "%",),
    ).fetchall()
    books: dict[str, dict[str, int]] = defaultdict(dict)
    for book, account, total in rows:
        if total:
            books[str(book)][str(account)] = int(total)
    return books


def test_one_batch_of_two_people_is_credited_once_despite_a_killed_dedupe(
    configured: Settings, db: psycopg.Connection, running_stack: stack.Processes
) -> None:
    records = recycling("gkey", batches=150, seed=31)
    rng = random.Random(32)
    records += rng.sample(records, 40)  # resent by partners
    rng.shuffle(records)
    settled = expected_from(configured, records)
    batches = len({json.loads(raw)["data"]["batch_id"] for _, raw in records})
    assert settled.outcomes["credited"] == batches  # each batch exactly once
    assert settled.outcomes["duplicate"] > 50  # the traffic really has other people's copies
    want = {a: v for a, v in settled.personal.items() if v}

    publish_killing(configured, running_stack, records, chunk=40, after=2.0)
    assert wait_for_balances(configured, db, want, timeout=300) == want
    got = books_of_events(db, "gkey-")
    for book in ("personal", "enterprise", "government"):
        assert got[book] == {a: v for a, v in settled.book(book).items() if v}, book
    kinds = latest_kinds(db, "gkey-")
    assert kinds.get("duplicate", 0) == settled.outcomes["duplicate"]
    assert kinds.get("credit", 0) == batches
    assert books_balanced(db)
    explained_across_people(configured, db)
    units = {a for a in views.unit_accounts(db) if a in want}
    assert units == {a for a in settled.units if a in want} and len(units) == 1
    (unit,) = units
    base = f"http://127.0.0.1:{8000 + configured.port_offset}/v1/ledgers/personal"
    assert read_api(f"{base}/{unit}").json()["subject_kind"] == "unit"
    person = next(a for a in want if a != unit)
    assert read_api(f"{base}/{person}").json()["subject_kind"] == "person"


def explained_across_people(settings: Settings, db: psycopg.Connection) -> None:
    """The claim API explains a loser whose winner is another person's claim."""
    row = db.execute(
        "SELECT l.event_source, l.event_id, l.subject, w.subject FROM decisions l"
        " JOIN decisions w ON (w.event_source, w.event_id) = (l.winner_source, l.winner_event_id)"
        " WHERE l.kind = 'duplicate' AND l.event_id LIKE 'gkey-%' AND w.subject <> l.subject"
        " LIMIT 1"
    ).fetchone()
    assert row is not None  # some batch was won by another person's report
    source, event_id, loser, winner = row
    base = f"http://127.0.0.1:{8000 + settings.port_offset}/v1/claims"
    answer = read_api(f"{base}/{source}/{event_id}").json()
    assert answer["status"] == "duplicate" and answer["credited"]["mg"] == 0
    won = answer["duplicate_of"]
    assert won is not None and loser != winner
    assert {"source": source, "id": event_id} in read_api(
        f"{base}/{won['source']}/{won['id']}"
    ).json()["duplicates"]


def test_an_engagement_event_reaches_its_topic_and_no_book(
    configured: Settings, db: psycopg.Connection
) -> None:
    subject = subject_of("+86-engage-1")

    def sign_in(event_id: str, day: int) -> tuple[str, bytes]:
        at = datetime(2026, 10, day, 9, tzinfo=CST)
        body: dict[str, Any] = {
            "specversion": "1.0",
            "id": event_id,
            "source": "navi-maps",
            "type": "engage.sign_in",
            "time": at.isoformat(),
            "subject": subject,
            "data": {"region": "440305", "date": at.date().isoformat()},
        }
        return "navi-maps", json.dumps(body).encode()

    sent = [sign_in("engage-it-1", 14), sign_in("engage-it-2", 15), sign_in("engage-it-1", 14)]
    publish(configured, sent)
    wanted = {
        ids.engagement_id(ids.event_id("navi-maps", e)) for e in ("engage-it-1", "engage-it-2")
    }
    found: Counter[str] = Counter()

    def all_seen() -> bool:
        return wanted <= {ids.engagement_id(ids.event_id("navi-maps", e)) for e in found}

    for record in scan(configured, [topics.ENGAGEMENT], until=all_seen, timeout=120):
        value = json.loads(record.value)
        if value["event"]["id"].startswith("engage-it-"):
            assert record.key == subject.encode()
            assert value["schema"] == "carbonledger.engagement/1"
            assert value["engagement_id"] == str(
                ids.engagement_id(ids.event_id("navi-maps", value["event"]["id"]))
            )
            found[value["event"]["id"]] += 1
    assert set(found) == {"engage-it-1", "engage-it-2"}
    assert db.execute(
        "SELECT count(*) FROM decisions WHERE event_id LIKE 'engage-it-%'"
    ).fetchone() == (0,)
    assert db.execute(
        "SELECT count(*) FROM postings WHERE book = 'personal' AND account = %s", (subject,)
    ).fetchone() == (0,)
