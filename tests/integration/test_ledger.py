"""The ledger against real PostgreSQL: idempotent batches, atomicity, the HTTP API."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from carbonledger.contracts import topics
from carbonledger.contracts.catalogue import CONSENT_GRANTED
from carbonledger.contracts.records import Decision
from carbonledger.contracts.settings import Settings
from carbonledger.demo.sample import subject_of
from carbonledger.ops import stack
from carbonledger.ops.progress import LEDGER_GROUP
from carbonledger.runtime.producers import producer
from carbonledger.services.dedupe.domain.person import PersonState, observe
from carbonledger.services.ledger.adapters import views
from carbonledger.services.ledger.adapters.books import Books
from carbonledger.services.ledger.domain.batches import Offset
from carbonledger.services.quantify.domain.quantify import quantify
from tests.factories import admitted, metro, raw
from tests.integration.helpers import read_api
from tests.unit.test_accounts import account_event
from tests.unit.test_quantify import SHIPPED

pytestmark = pytest.mark.integration


def decisions(tag: str, count: int) -> list[Decision]:
    made = []
    for n in range(count):
        event = metro(n, id=f"{tag}-{n}", subject=subject_of(f"+86-{tag}-{n % 3}"))
        claim = quantify(admitted(raw(event), "shenzhen-metro"), SHIPPED)
        made += observe(PersonState(claim.subject), claim, watermark=claim.ended_at).decisions
    return made


def personal(db: psycopg.Connection, tag: str) -> dict[str, int]:
    return {
        s: (views.balance(db, "personal", s) or (0, 0))[0]
        for s in {subject_of(f"+86-{tag}-{i}") for i in range(3)}
    }


def test_applying_the_same_decisions_twice_changes_nothing(db: psycopg.Connection) -> None:
    books = Books(db)
    batch = decisions("twice", 9)
    group = f"test-{uuid.uuid4()}"
    books.apply(batch, group, [Offset("t", 0, 9)])
    before, count = personal(db, "twice"), views.posting_count(db)
    books.apply(batch + batch[:4], group, [Offset("t", 0, 9)])
    assert personal(db, "twice") == before == {k: 3 * 467_000 for k in before}
    assert views.posting_count(db) == count
    assert books.offsets(group, "t") == {0: 9}


def test_a_batch_failing_halfway_leaves_no_trace_and_retries_cleanly(
    db: psycopg.Connection,
) -> None:
    books = Books(db)
    batch = decisions("halfway", 6)
    group = f"test-{uuid.uuid4()}"
    broken = [*batch[:3], batch[3].model_copy(update={"amount_mg": 2**63})]  # overflows bigint
    count = views.posting_count(db)
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        books.apply(broken, group, [Offset("t", 0, 4)])
    assert views.posting_count(db) == count and books.offsets(group, "t") == {}
    books.apply(batch, group, [Offset("t", 0, 6)])
    assert views.posting_count(db) == count + 18
    assert sum(personal(db, "halfway").values()) == 6 * 467_000


def test_postings_are_append_only(db: psycopg.Connection) -> None:
    Books(db).apply(decisions("append", 1), f"test-{uuid.uuid4()}", [])
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        db.execute(
            "UPDATE postings SET amount_mg = 1 WHERE account = %s", (subject_of("+86-append-0"),)
        )


def test_api_serves_personal_ledger_and_equal_totals(
    db: psycopg.Connection, running_stack: stack.Processes
) -> None:
    Books(db).apply(decisions("api", 3), f"test-{uuid.uuid4()}", [])
    base = f"http://127.0.0.1:{running_stack.port('ledger-api')}"
    subject = subject_of("+86-api-0")
    body = read_api(f"{base}/v1/ledgers/personal/{subject}?limit=1").json()
    assert body["balance"] == {"mg": 467_000, "kg": "0.467000", "t": "0.000467000"}
    assert body["by_month"]["2026-10"]["mg"] == 467_000
    assert body["by_behaviour_type"]["travel.metro"]["mg"] == 467_000
    (posting,) = body["recent_postings"]
    assert (posting["methodology_id"], posting["methodology_version"]) == (
        "shenzhen-public-transport",
        "1",
    )
    assert posting["event_id"] == "api-0"
    assert read_api(f"{base}/v1/ledgers/personal/{'0' * 64}").status_code == 404
    assert read_api(f"{base}/v1/ledgers/personal/not-a-subject").status_code == 422
    totals = read_api(f"{base}/v1/ledgers/totals").json()
    assert totals["balanced"] is True
    assert read_api(f"{base}/v1/openapi.json").json()["info"]["title"] == "Carbon inclusion ledger"


def test_the_writer_records_account_events_from_the_broker_with_the_decisions(
    settings: Settings, db: psycopg.Connection
) -> None:
    (decision,) = decisions("writer-accounts", 1)
    granted = account_event(
        CONSENT_GRANTED, decision.claim.subject, decision.claim.time, source="green-bank",
        scope="carbon_account", evidence_id=f"auth-{uuid.uuid4()}",
    )  # fmt: skip
    send = producer(settings)
    send.send(topics.DECISIONS, key=decision.claim.subject.encode(), value=decision.to_bytes())
    send.send(topics.ACCOUNTS, key=granted.subject.encode(), value=granted.to_bytes())
    send.send(topics.ACCOUNTS, key=granted.subject.encode(), value=b"not an account event")
    send.flush(timeout=60)
    send.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        views.consent_history(db, granted.subject)
        and views.balance(db, "personal", granted.subject)
    ):
        time.sleep(0.5)
    (entry,) = views.consent_history(db, granted.subject)
    assert (entry["type"], entry["partner"]) == ("granted", "green-bank")
    assert views.balance(db, "personal", granted.subject) is not None
    assert views.offsets(db, LEDGER_GROUP, topics.ACCOUNTS)  # stored with the postings


def test_every_credited_amount_traces_to_event_methodology_and_factor_sources(
    db: psycopg.Connection, running_stack: stack.Processes
) -> None:
    Books(db).apply(decisions("trace", 1), f"test-{uuid.uuid4()}", [])
    base = f"http://127.0.0.1:{running_stack.port('ledger-api')}"
    ledger = read_api(f"{base}/v1/ledgers/personal/{subject_of('+86-trace-0')}").json()
    (posting,) = ledger["recent_postings"]
    explained = read_api(f"{base}/v1/claims/{posting['event_source']}/{posting['event_id']}").json()
    assert explained["status"] == "credited"
    assert explained["credited"] == posting["amount"]
    (decision,) = explained["decisions"]
    assert decision["amount"] == posting["amount"]
    assert {p["book"] for p in decision["postings"]} == {"personal", "enterprise", "government"}
    claim = decision["claim"]
    assert claim["methodology"] == {"id": "shenzhen-public-transport", "version": "1"}
    assert claim["inputs"] == {"distance_km": "10.0"}
    (factor,) = claim["factors"]
    assert (factor["value"], factor["unit"]) == ("46.7", "gCO2/person-km")
    assert "深圳商报" in factor["source"]
    assert read_api(f"{base}/v1/claims/shenzhen-metro/never-sent").status_code == 404
