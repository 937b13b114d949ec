"""Poison on every internal topic, written as the admin principal (a bug upstream or
a compromised service): each record is dead-lettered with its reason (invalid_record,
or processing_error where it fails processing on its own), the valid control records
around it are credited, nothing else reaches the books, and no stage restarts."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from carbonledger.contracts import ids, topics
from carbonledger.contracts.records import (
    Decision,
    DecisionKind,
    ReductionClaim,
    ValidatedBehaviour,
)
from carbonledger.contracts.services import DEDUPE, INGEST, LEDGER_WRITER, QUANTIFY
from carbonledger.contracts.settings import Settings
from carbonledger.demo.sample import subject_of
from carbonledger.ops import stack
from carbonledger.services.ledger.adapters import views
from carbonledger.services.quantify.domain.quantify import quantify
from tests.factories import admitted, claim, metro, raw
from tests.integration.helpers import books_balanced, wait_for_balances
from tests.integration.test_access import send_as
from tests.integration.test_pipeline import dead_letters
from tests.unit.test_quantify import SHIPPED

pytestmark = pytest.mark.integration

STAGES = (INGEST, QUANTIFY, DEDUPE, LEDGER_WRITER)


def started_at(settings: Settings) -> dict[str, float]:
    """Each stage's `process_start_time_seconds`, from its /metrics (worker 0)."""
    started = {}
    for service in STAGES:
        url = f"http://127.0.0.1:{service.base_port + settings.port_offset}/metrics"
        text = httpx.get(url, timeout=10).text
        found = re.search(r"^process_start_time_seconds (\S+)$", text, re.MULTILINE)
        assert found, f"{service.name} reports no start time"
        started[service.name] = float(found.group(1))
    return started


def body(record: ReductionClaim | Decision, **changes: Any) -> bytes:
    data: dict[str, Any] = json.loads(record.to_bytes())
    for path, value in changes.items():
        *outer, name = path.split("__")
        target = data
        for part in outer:
            target = target[part]
        target[name] = value
    return json.dumps(data).encode()


def a_claim(tag: str, mg: int = 1_000) -> ReductionClaim:
    # Mid-week of the other tests' traffic: dedupe's window holds it whatever ran before.
    subject = subject_of(f"+86-poison-{tag}")
    return claim("every-app", f"poison-{tag}", 0, mg=mg, subject=subject, day=15)


def a_credit(tag: str, mg: int = 1_000) -> Decision:
    made = a_claim(tag, mg)
    return Decision(
        decision_id=ids.decision_id(DecisionKind.CREDIT, made.claim_id),
        kind=DecisionKind.CREDIT,
        amount_mg=mg,
        claim=made,
        winner_claim_id=made.claim_id,
        winner=made.event,
    )


def a_behaviour(tag: str, **data: Any) -> bytes:
    """A behaviour ingest admitted, then its `data` changed (None: a field removed)."""
    event = metro(120, id=f"poison-{tag}", subject=subject_of(f"+86-poison-{tag}"))
    behaviour: dict[str, Any] = json.loads(admitted(raw(event), "shenzhen-metro").to_bytes())
    for name, value in data.items():
        if value is None:
            behaviour["data"].pop(name)
        else:
            behaviour["data"][name] = value
    return json.dumps(behaviour).encode()


def test_poison_on_every_internal_topic_is_dead_lettered_and_no_stage_restarts(
    settings: Settings, db: psycopg.Connection, running_stack: stack.Processes
) -> None:
    before, totals = started_at(settings), views.totals(db)
    control_behaviour = ValidatedBehaviour.model_validate_json(a_behaviour("ctl-b"))
    missing = a_credit("missing")
    poison = {
        # behaviour.validated: data its catalogue type refuses
        a_behaviour("abc", distance_km="abc"): (topics.VALIDATED, "invalid_record"),
        a_behaviour("nofield", distance_km=None): (topics.VALIDATED, "invalid_record"),
        # reduction.claims: out of bounds, of the wrong sign, beyond 64 bits, unknown region
        body(a_claim("neg"), reduction_mg=-(10**12)): (topics.CLAIMS, "invalid_record"),
        body(a_claim("huge"), reduction_mg=2**70): (topics.CLAIMS, "invalid_record"),
        body(a_claim("region"), region="999999"): (topics.CLAIMS, "invalid_record"),
        # dedupe.decisions
        body(a_credit("huge"), amount_mg=2**70): (topics.DECISIONS, "invalid_record"),
        body(a_credit("nul"), claim__event__id="poison-\u0000nul"): (
            topics.DECISIONS,
            "invalid_record",
        ),
        body(
            missing,
            decision_id=str(uuid.uuid4()),
            kind="reverse",
            amount_mg=-1_000,
            reverses=str(uuid.uuid4()),  # a decision that does not exist
        ): (topics.DECISIONS, "invalid_record"),
        # decodes and holds every invariant, but PostgreSQL cannot store it (a NUL in
        # the claim's JSON): a processing fault, isolated from the writer's batch
        body(a_credit("jsonb-nul"), claim__data={"note": "a\u0000b"}): (
            topics.DECISIONS,
            "processing_error",
        ),
    }
    controls = [
        (topics.VALIDATED, control_behaviour.to_bytes()),
        (topics.CLAIMS, a_claim("ctl-c").to_bytes()),
        (topics.DECISIONS, a_credit("ctl-d").to_bytes()),
    ]
    for value, (topic, _) in poison.items():
        send_as(settings, "admin", topic, value)
    for topic, value in controls:
        send_as(settings, "admin", topic, value)

    want = {
        control_behaviour.subject: quantify(control_behaviour, SHIPPED).reduction_mg,
        a_claim("ctl-c").subject: 1_000,
        a_credit("ctl-d").claim.subject: 1_000,
    }
    assert wait_for_balances(settings, db, want) == want
    letters = dead_letters(settings, set(poison), timeout=120)
    reasons = {v: letters.get(v, {}).get("reason") for v in poison}
    assert reasons == {v: reason for v, (_, reason) in poison.items()}
    assert {letters[v]["origin"]["topic"] for v in poison} == {t for t, _ in poison.values()}
    after = views.totals(db)
    assert {book: after[book] - totals[book] for book in after} == dict.fromkeys(
        after, sum(want.values())
    )  # the controls and nothing else
    assert books_balanced(db)
    assert started_at(settings) == before  # no stage restarted
