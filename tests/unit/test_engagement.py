"""Engagement events (`engage.*`, docs/subscribers.md): validated and replay-deduped
like any event, published on engagement.events for incentive systems, never
quantified, never a decision, never in the books."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from carbonledger.contracts import access, ids, topics
from carbonledger.contracts.calendar import CST
from carbonledger.contracts.catalogue import CATALOGUE
from carbonledger.contracts.methodology_files import load_methodologies
from carbonledger.contracts.records import (
    ENGAGEMENT_REASON,
    Engagement,
    ReductionClaim,
    SubjectKind,
)
from carbonledger.contracts.settings import ROOT, Settings
from carbonledger.reference.settle import settle
from carbonledger.services.dedupe.adapters.memory import MemoryState
from carbonledger.services.dedupe.entrypoints.app import decisions_of
from carbonledger.services.dedupe.service import Dedupe
from carbonledger.services.quantify.service import quantify_behaviour
from tests.factories import admitted, event, metro, raw, registry
from tests.unit.test_dedupe_service import Tallied

ENGAGEMENT_TYPES = sorted(t for t, spec in CATALOGUE.items() if spec.engagement)
DAY = datetime(2026, 10, 13, 9, 0, tzinfo=CST)
DATA: dict[str, dict[str, Any]] = {
    "engage.sign_in": {"date": "2026-10-13"},
    "engage.quiz": {"quiz_id": "quiz-42", "correct": True},
    "engage.volunteer": {"activity_id": "tree-day-3", "hours": "2.5"},
}
METHODOLOGIES = load_methodologies(Settings().methodology_dir)


def engagement_claim(behaviour_type: str, event_id: str = "e-1") -> ReductionClaim:
    body = event(behaviour_type, "440305", ended=DAY, **DATA[behaviour_type])
    body["id"] = event_id
    return quantify_behaviour(admitted(raw(body), "every-app"), METHODOLOGIES)


def test_every_engagement_type_has_a_valid_example_here() -> None:
    assert ENGAGEMENT_TYPES and set(DATA) == set(ENGAGEMENT_TYPES)


@pytest.mark.parametrize("behaviour_type", ENGAGEMENT_TYPES)
def test_quantify_passes_an_engagement_event_on_uncredited_without_a_methodology(
    behaviour_type: str,
) -> None:
    claim = engagement_claim(behaviour_type)
    assert not claim.credited and claim.reduction_mg == 0
    assert claim.reason == ENGAGEMENT_REASON and claim.methodology is None
    assert claim.natural_key is not None


@pytest.mark.parametrize("behaviour_type", ENGAGEMENT_TYPES)
def test_dedupe_makes_one_engagement_record_and_no_decision(behaviour_type: str) -> None:
    tally = Tallied()
    dedupe = Dedupe(MemoryState(), timedelta(days=7), tally)
    claim = engagement_claim(behaviour_type)
    first = dedupe.observe(0, claim)
    assert first.new and first.decisions == []
    (record,) = first.engagements
    assert record.engagement_id == ids.engagement_id(ids.event_id("every-app", "e-1"))
    assert (record.type, record.subject, record.partner) == (
        behaviour_type,
        claim.subject,
        "every-app",
    )
    assert record.event == claim.event and record.natural_key == claim.natural_key
    assert record.subject_kind is SubjectKind.PERSON and record.region == "440305"
    assert Engagement.model_validate_json(record.to_bytes()) == record
    # A partner's resend of the same (source, id): a replay, the same record again.
    again = dedupe.observe(0, claim)
    assert not again.new and again.decisions == [] and again.engagements == [record]
    assert tally.decisions == [] and tally.claims == {"new": 1, "replay": 1}


def test_another_event_is_another_engagement_even_with_the_same_key() -> None:
    dedupe = Dedupe(MemoryState(), timedelta(days=7), Tallied())
    one = dedupe.observe(0, engagement_claim("engage.sign_in", "s-1")).engagements
    other = dedupe.observe(0, engagement_claim("engage.sign_in", "s-2")).engagements
    assert len(one) == len(other) == 1 and one[0].engagement_id != other[0].engagement_id


def test_a_late_engagement_event_is_not_published() -> None:
    dedupe = Dedupe(MemoryState(), timedelta(days=7), Tallied())
    newer = admitted(raw(metro(hours_later=24 * 12)), "shenzhen-metro")
    dedupe.observe(0, quantify_behaviour(newer, METHODOLOGIES))
    late = dedupe.observe(0, engagement_claim("engage.quiz"))
    assert late.late and late.engagements == [] and late.decisions == []


def test_the_stage_sends_engagement_records_keyed_by_subject_to_their_topic() -> None:
    claim = engagement_claim("engage.volunteer")

    @dataclass
    class Consumed:
        partition: int = 3
        key: bytes = claim.subject.encode()

    (out,) = decisions_of(Dedupe(MemoryState(), timedelta(days=7), Tallied()))(Consumed(), claim)
    assert out.topic == topics.ENGAGEMENT and out.key == claim.subject.encode()
    assert out.value is not None and json.loads(out.value)["schema"] == "carbonledger.engagement/1"


def test_settle_counts_engagements_apart_and_no_book_moves() -> None:
    sign_in = event("engage.sign_in", "440305", ended=DAY, **DATA["engage.sign_in"])
    quiz = event("engage.quiz", "440305", ended=DAY, **DATA["engage.quiz"])
    quiz["id"] = "quiz-event-1"
    records = [("every-app", raw(e)) for e in (sign_in, quiz, sign_in)]  # one resent
    ride = raw(metro())
    now = datetime(2026, 10, 19, tzinfo=UTC)
    s = Settings()
    with_ride = settle(
        [*records, ("shenzhen-metro", ride)],
        registry(),
        METHODOLOGIES,
        now,
    )
    alone = settle([("shenzhen-metro", ride)], registry(), METHODOLOGIES, now)
    assert s.dedupe_window == timedelta(days=7)
    assert with_ride.engagements == {"engage.sign_in": 1, "engage.quiz": 1}
    for book in ("personal", "enterprise", "government"):
        assert with_ride.book(book) == alone.book(book)
    assert with_ride.outcomes["not_credited"] == alone.outcomes["not_credited"] == 0
    assert with_ride.outcomes["replay"] == 1
    assert with_ride.as_json()["engagements"] == {"engage.quiz": 1, "engage.sign_in": 1}


def test_dedupe_writes_the_topic_and_incentive_systems_read_it() -> None:
    names = {p.name: p for p in access.principals([], "carbon-ledger")}
    dedupe = names[access.service_principal_name("dedupe")]
    points = names[f"{access.SUBSCRIBER_PREFIX}points"]

    def rights(principal: access.Principal, operation: access.Operation) -> set[str]:
        return {
            g.name
            for g in principal.grants
            if g.resource is access.Resource.TOPIC and operation in g.operations
        }

    assert topics.ENGAGEMENT in rights(dedupe, access.Operation.WRITE)
    assert topics.ENGAGEMENT in rights(points, access.Operation.READ)
    assert topics.ENGAGEMENT not in rights(points, access.Operation.WRITE)
    spec = {t.name: t for t in topics.pipeline_topics()}[topics.ENGAGEMENT]
    assert (spec.key, spec.producers) == ("subject", "dedupe")


def test_the_documented_engagement_record_is_one() -> None:
    page = (ROOT / "docs" / "subscribers.md").read_text(encoding="utf-8")
    section = page[page.index("## Engagement events") :]
    block = section.split("```json\n", 1)[1].split("```", 1)[0]
    record = Engagement.model_validate_json(block)
    assert record.type in ENGAGEMENT_TYPES and record.partner == record.event.source
