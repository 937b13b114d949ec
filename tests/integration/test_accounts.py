"""Consent history, family accounts and unit accounts over real PostgreSQL.

Needs only PostgreSQL (the test stack's server, started here unless it runs
already) and one scratch database for the module; the API runs in process on it,
and the operator command as a process. No broker: the writer's path is its sink
(`Postings`) over the real books.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from aiokafka import TopicPartition
from fastapi.testclient import TestClient

from carbonledger.contracts import topics
from carbonledger.contracts.calendar import CST
from carbonledger.contracts.catalogue import (
    CONSENT_GRANTED,
    CONSENT_WITHDRAWN,
    FAMILY_LINKED,
    FAMILY_UNLINKED,
)
from carbonledger.contracts.records import AccountEvent, Decision, DecisionKind, SubjectKind
from carbonledger.contracts.settings import Settings
from carbonledger.demo.sample import subject_of
from carbonledger.ops import stack
from carbonledger.runtime.process import OffLoop
from carbonledger.services.ledger.adapters import audit, views
from carbonledger.services.ledger.adapters.books import Books
from carbonledger.services.ledger.adapters.migrations import migrate
from carbonledger.services.ledger.entrypoints.api import create_app
from carbonledger.services.ledger.service import Postings
from tests.integration.helpers import bearer
from tests.integration.test_ledger import decisions
from tests.unit.test_accounts import account_event

pytestmark = pytest.mark.integration

GROUP = "ledger-writer"
T0 = datetime(2026, 10, 10, 0, 0, tzinfo=CST)  # the test decisions' trips are on this day


@pytest.fixture(scope="module")
def scratch(settings: Settings) -> Iterator[str]:
    """A migrated database of this module's own, on the test stack's PostgreSQL."""
    started = stack.script("postgres", "status", settings, check=False) != 0
    if started:
        stack.script("postgres", "start", settings)
    name = f"accounts_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(settings.pg_conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    migrate(settings.model_copy(update={"pg_database": name}).pg_conninfo)
    yield name
    with psycopg.connect(settings.pg_conninfo, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
    if started:
        stack.script("postgres", "stop", settings)


@pytest.fixture()
def conn(settings: Settings, scratch: str) -> Iterator[psycopg.Connection]:
    info = settings.model_copy(update={"pg_database": scratch}).pg_conninfo
    with psycopg.connect(info, autocommit=True) as c:
        yield c


@pytest.fixture()
def api(scratch: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("CARBON_PG_DATABASE", scratch)
    with TestClient(create_app(), headers=bearer(), client=("127.0.0.1", 50000)) as client:
        yield client


def write(conn: psycopg.Connection, records: list[Decision | AccountEvent], offset: int) -> None:
    """Through the writer's sink, as one batch of both topics with its offsets."""
    postings = Postings(Books(conn), GROUP, OffLoop(lambda: None))
    for r in records:
        take = postings.take if isinstance(r, Decision) else postings.take_account
        list(take(None, r))  # type: ignore[arg-type]
    stored = {
        TopicPartition(topics.DECISIONS, 0): offset,
        TopicPartition(topics.ACCOUNTS, 0): offset,
    }
    asyncio.run(postings.write(stored))


def consent(subject: str, type_: str, hours: int, partner: str, evidence: str) -> AccountEvent:
    return account_event(
        type_, subject, T0 + timedelta(hours=hours), source=partner,
        scope="carbon_account", evidence_id=evidence,
    )  # fmt: skip


def family(type_: str, by: str, head: str, member: str, hours: float) -> AccountEvent:
    return account_event(type_, by, T0 + timedelta(hours=hours), head=head, member=member)


def count(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}".encode()).fetchone()
    return int(row[0]) if row else 0


def test_account_events_go_with_decisions_in_one_transaction_once(
    conn: psycopg.Connection,
) -> None:
    someone = subject_of("+86-accounts-once")
    batch: list[Decision | AccountEvent] = [
        *decisions("accounts-once", 2),
        consent(someone, CONSENT_GRANTED, 1, "green-bank", "auth-1"),
        family(FAMILY_LINKED, someone, someone, subject_of("+86-accounts-kid"), 1),
    ]
    before = (count(conn, "consent_events"), count(conn, "family_events"), count(conn, "postings"))
    write(conn, batch, 10)
    write(conn, batch, 10)  # redelivered: nothing new
    after = (count(conn, "consent_events"), count(conn, "family_events"), count(conn, "postings"))
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 6]
    assert views.offsets(conn, GROUP, topics.ACCOUNTS) == {0: 10}
    # A batch that fails (a decision the database refuses) leaves no account event.
    broken = [decisions("accounts-broken", 1)[0].model_copy(update={"amount_mg": 2**63})]
    withdrawn = consent(someone, CONSENT_WITHDRAWN, 2, "green-bank", "auth-2")
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        write(conn, [*broken, withdrawn], 11)
    assert count(conn, "consent_events") == after[0]
    assert views.offsets(conn, GROUP, topics.ACCOUNTS) == {0: 10}
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute("UPDATE consent_events SET partner = 'x' WHERE subject = %s", (someone,))
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute("DELETE FROM family_events WHERE reported_by = %s", (someone,))


def test_a_subjects_consent_history_and_what_is_in_force_now(
    conn: psycopg.Connection, api: TestClient
) -> None:
    person = subject_of("+86-accounts-consent")
    write(
        conn,
        [  # recorded out of order: the history is by the time consent was given
            consent(person, CONSENT_WITHDRAWN, 5, "green-bank", "auth-2"),
            consent(person, CONSENT_GRANTED, 1, "green-bank", "auth-1"),
        ],
        20,
    )
    # A record without received_at, alone in its batch (a column of nulls only).
    write(
        conn,
        [consent(person, CONSENT_GRANTED, 3, "navi-maps", "nm-9").model_copy(
            update={"received_at": None}
        )],
        21,
    )  # fmt: skip
    body = api.get(f"/v1/consents/{person}").json()
    assert [(r["type"], r["partner"], r["evidence_id"]) for r in body["history"]] == [
        ("granted", "green-bank", "auth-1"),
        ("granted", "navi-maps", "nm-9"),
        ("withdrawn", "green-bank", "auth-2"),
    ]
    first = body["history"][0]
    assert first["scope"] == "carbon_account" and first["event"]["source"] == "green-bank"
    assert datetime.fromisoformat(first["given_at"]) == T0 + timedelta(hours=1)
    assert {p: (s["state"], s["evidence_id"]) for p, s in body["in_force"].items()} == {
        "green-bank": ("withdrawn", "auth-2"),
        "navi-maps": ("granted", "nm-9"),
    }
    assert api.get(f"/v1/consents/{'0' * 64}").json() == {
        "subject": "0" * 64, "history": [], "in_force": {},
    }  # fmt: skip
    assert api.get("/v1/consents/not-a-subject").status_code == 404


def moved(d: Decision, tag: str, hours: float) -> Decision:
    """Another credit like `d` (its own ids) for a behaviour `hours` after T0."""
    when = T0 + timedelta(hours=hours)
    claim = d.claim.model_copy(
        update={"claim_id": uuid.uuid5(d.claim.claim_id, tag), "ended_at": when, "time": when}
    )
    return d.model_copy(update={"decision_id": uuid.uuid5(d.decision_id, tag), "claim": claim})


def test_a_family_view_sums_members_while_linked_and_refuses_a_second_family(
    conn: psycopg.Connection, api: TestClient
) -> None:
    head, other_head = subject_of("+86-fam-head"), subject_of("+86-fam-other")
    kid = subject_of("+86-fam-kid")
    (template,) = decisions("fam-template", 1)
    kid_credit = template.model_copy(
        update={"claim": template.claim.model_copy(update={"subject": kid})}
    )
    head_credit = template.model_copy(
        update={"claim": template.claim.model_copy(update={"subject": head})}
    )
    trips = [moved(kid_credit, f"kid-{h}", h) for h in (1, 5, 9, 13)]
    write(
        conn,
        [
            moved(head_credit, "head-0", 0),
            *trips,
            family(FAMILY_LINKED, head, head, kid, 2),
            family(FAMILY_LINKED, kid, head, kid, 4),  # in force from 4
            family(FAMILY_LINKED, other_head, other_head, kid, 6),
            family(FAMILY_LINKED, kid, other_head, kid, 7),  # refused: kid is in head's family
            family(FAMILY_UNLINKED, kid, head, kid, 8),  # [4, 8): the trip at 5
            family(FAMILY_LINKED, kid, head, kid, 12),
            family(FAMILY_LINKED, head, head, kid, 12.5),  # from 12.5: the trip at 13
        ],
        30,
    )
    totals_before = views.totals(conn)
    body = api.get(f"/v1/ledgers/family/{head}").json()
    (member,) = body["members"]
    assert member["member"] == kid and member["in_force"]
    assert [datetime.fromisoformat(i["linked_from"]) for i in member["intervals"]] == [
        T0 + timedelta(hours=4), T0 + timedelta(hours=12.5),
    ]  # fmt: skip
    assert member["postings"] == 2 and member["net"]["mg"] == 2 * trips[0].amount_mg
    assert body["head_own"]["mg"] == head_credit.amount_mg
    assert body["total"]["mg"] == 3 * head_credit.amount_mg
    other = api.get(f"/v1/ledgers/family/{other_head}").json()
    (refused,) = other["members"][0]["refused"]
    assert head in refused["reason"] and other["members"][0]["intervals"] == []
    assert views.totals(conn) == totals_before  # a view: no book moved
    assert api.get(f"/v1/ledgers/family/{subject_of('+86-fam-nobody')}").status_code == 404
    assert api.get("/v1/ledgers/family/HEAD").status_code == 404


def family_cli(scratch: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CARBON_PG_DATABASE": scratch}
    return subprocess.run(
        [sys.executable, "-m", "carbonledger.cli.main", "family", *args],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip


def test_the_operator_links_and_unlinks_both_sides_once(
    scratch: str, conn: psycopg.Connection, api: TestClient
) -> None:
    import json

    head, member = subject_of("+86-op-head"), subject_of("+86-op-kid")
    done = family_cli(scratch, "link", head, member, "--evidence", "form-1")
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout)
    assert first["recorded"] == 2 and first["in_force"]
    assert json.loads(family_cli(scratch, "link", head, member).stdout)["recorded"] == 0
    at = "2030-01-01T00:00:00+08:00"
    ended = json.loads(family_cli(scratch, "unlink", head, member, "--at", at).stdout)
    assert ended["recorded"] == 2 and not ended["in_force"]
    assert (
        json.loads(family_cli(scratch, "unlink", head, member, "--at", at).stdout)["recorded"] == 0
    )
    rows = views.family_reports_of_member(conn, member)
    assert {(r["partner"], r["reported_by"] == head) for r in rows} == {
        ("operator", True), ("operator", False),
    }  # fmt: skip
    (shown,) = api.get(f"/v1/ledgers/family/{head}").json()["members"]
    assert datetime.fromisoformat(shown["intervals"][0]["linked_to"]) == datetime.fromisoformat(at)
    bad = family_cli(scratch, "link", head, "not-a-subject")
    assert bad.returncode == 2 and "not-a-subject" in bad.stderr
    assert family_cli(scratch, "link", head, member, "--at", "yesterday").returncode == 2


def test_units_have_their_own_route_and_line_in_the_totals_with_the_books_equal(
    conn: psycopg.Connection, api: TestClient
) -> None:
    person_batch = decisions("accounts-person", 1)
    unit_subject = subject_of("91440300MA5UNIT001")
    unit_batch = [
        d.model_copy(
            update={
                "decision_id": uuid.uuid5(d.decision_id, "unit"),
                "claim": d.claim.model_copy(
                    update={
                        "subject": unit_subject,
                        "subject_kind": SubjectKind.UNIT,
                        "claim_id": uuid.uuid5(d.claim.claim_id, "unit"),
                    }
                ),
            }
        )
        for d in decisions("accounts-unit", 2)
    ]
    before = api.get("/v1/ledgers/totals").json()
    write(conn, [*person_batch, *unit_batch], 40)
    unit = api.get(f"/v1/ledgers/unit/{unit_subject}").json()
    assert unit["subject_kind"] == "unit"
    assert unit["balance"]["mg"] == sum(d.amount_mg for d in unit_batch)
    person = person_batch[0].claim.subject
    assert api.get(f"/v1/ledgers/unit/{person}").status_code == 404
    assert api.get(f"/v1/ledgers/personal/{unit_subject}").json()["subject_kind"] == "unit"
    totals = api.get("/v1/ledgers/totals").json()
    assert totals["balanced"]
    assert totals["units"]["mg"] - before["units"]["mg"] == unit["balance"]["mg"]
    assert totals["people"]["mg"] + totals["units"]["mg"] == totals["personal"]["mg"]
    assert totals["people"]["mg"] - before["people"]["mg"] == person_batch[0].amount_mg
    assert views.personal_by_kind(conn)["unit"][1] == totals["units"]["mg"]
    assert unit_subject in views.unit_accounts(conn) and person not in views.unit_accounts(conn)
    report = audit.verify(conn)
    assert report.ok, report.as_json()


def test_the_claim_explanation_says_no_consent(conn: psycopg.Connection, api: TestClient) -> None:
    (credit,) = decisions("accounts-no-consent", 1)
    refused = Decision.model_validate(
        credit.model_dump(mode="json")
        | {
            "decision_id": str(uuid.uuid5(credit.decision_id, "no_consent")),
            "kind": DecisionKind.NOT_CREDITED.value,
            "amount_mg": 0,
            "reason": "no_consent",
            "reason_detail": "no consent of this subject to shenzhen-metro in force at 08:30",
        }
    )
    write(conn, [refused], 50)
    event = refused.claim.event
    body: dict[str, Any] = api.get(f"/v1/claims/{event.source}/{event.id}").json()
    assert (body["status"], body["reason"]) == ("not_credited", "no_consent")
    (decision,) = body["decisions"]
    assert decision["reason_detail"].startswith("no consent") and decision["postings"] == []
    assert body["credited"]["mg"] == 0
