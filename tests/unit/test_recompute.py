"""Recalculation after a new methodology version: correcting claims, compensating entries."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from carbonledger.contracts.methodology import Methodology
from carbonledger.contracts.records import DecisionKind
from carbonledger.services.dedupe.adapters.state import decode_person, encode_person
from carbonledger.services.dedupe.domain.person import PersonState, observe
from carbonledger.services.quantify.domain.recompute import Standing, correcting_claim
from tests.factories import NOW
from tests.unit.test_dedupe_and_postings import claim_of
from tests.unit.test_quantify import SHIPPED


def revised(value: str = "50") -> list[Methodology]:
    """The shipped registry plus a version 2 of the Shenzhen transport methodology."""
    v1 = next(m for m in SHIPPED if m.id == "shenzhen-public-transport")
    factors = tuple(
        f.model_copy(update={"value": Decimal(value)}) if f.name.startswith("metro") else f
        for f in v1.factors
    )
    return [*SHIPPED, v1.model_copy(update={"version": "2", "factors": factors})]


def test_unchanged_registry_makes_no_correction() -> None:
    claim = claim_of()
    assert correcting_claim(claim, Standing(claim.reduction_mg, None), SHIPPED, NOW) is None


def test_new_version_supersedes_with_the_new_amount_and_provenance() -> None:
    claim = claim_of()  # 10.0 km x 46.7 g
    fixed = correcting_claim(claim, Standing(467_000, None), revised(), NOW)
    assert fixed is not None and fixed.supersedes is not None
    assert fixed.reduction_mg == 500_000 and fixed.methodology is not None
    assert fixed.methodology.version == "2" and fixed.supersedes.claim_id == claim.claim_id
    assert fixed.event == claim.event and fixed.claim_id != claim.claim_id


def test_inside_the_window_dedupe_reverses_and_credits_the_difference_once() -> None:
    claim = claim_of()
    state = PersonState(claim.subject)
    credit = observe(state, claim, watermark=claim.ended_at).decisions[0]
    fixed = correcting_claim(claim, Standing(467_000, credit.decision_id), revised(), NOW)
    assert fixed is not None
    made = observe(state, fixed, watermark=claim.ended_at).decisions
    assert [(d.kind, d.amount_mg) for d in made] == [
        (DecisionKind.REVERSE, -467_000),
        (DecisionKind.CREDIT, 500_000),
    ]
    reverse, new_credit = made
    assert reverse.reverses == credit.decision_id
    assert reverse.claim.methodology == claim.methodology  # reverses what v1 credited
    assert new_credit.claim.methodology == fixed.methodology
    again = decode_person(encode_person(state))
    assert observe(again, fixed, watermark=claim.ended_at).decisions == made  # redelivered
    # A partner replaying the original event re-emits only decisions already made.
    replayed = observe(again, claim, watermark=claim.ended_at)
    assert not replayed.new
    assert {d.decision_id for d in replayed.decisions} <= {credit.decision_id} | {
        d.decision_id for d in made
    }
    assert replayed.decisions[0].claim.methodology == claim.methodology
    assert reverse.reason == "recomputed"


def test_outside_the_window_the_standing_credit_is_replaced() -> None:
    claim = claim_of()
    fixed = correcting_claim(claim, Standing(467_000, claim.claim_id), revised(), NOW)
    assert fixed is not None
    later = claim.ended_at + timedelta(days=30)
    made = observe(PersonState(claim.subject), fixed, watermark=later).decisions
    assert [(d.kind, d.amount_mg) for d in made] == [
        (DecisionKind.REVERSE, -467_000),
        (DecisionKind.CREDIT, 500_000),
    ]
    assert made == observe(PersonState(claim.subject), fixed, watermark=later).decisions


def test_a_capped_or_duplicate_credit_is_never_raised_by_recomputation() -> None:
    claim = claim_of()
    later = claim.ended_at + timedelta(days=30)
    capped = correcting_claim(claim, Standing(100_000, claim.claim_id), revised(), NOW)
    assert capped is not None
    made = observe(PersonState(claim.subject), capped, watermark=later).decisions
    assert sum(d.amount_mg for d in made) == 0  # held at the capped 100 g
    lower = correcting_claim(claim, Standing(100_000, claim.claim_id), revised("5"), NOW)
    assert lower is not None
    made = observe(PersonState(claim.subject), lower, watermark=later).decisions
    assert sum(d.amount_mg for d in made) == 50_000 - 100_000
    duplicate = correcting_claim(claim, Standing(0, None), revised(), NOW)
    assert duplicate is not None
    assert observe(PersonState(claim.subject), duplicate, watermark=later).decisions == []


def test_a_duplicate_or_unchanged_claim_is_restated_under_the_new_version() -> None:
    claim = claim_of()
    maps = claim_of(source="navi-maps", id="maps-1")
    state = PersonState(claim.subject)
    for c in (claim, maps):
        observe(state, c, watermark=claim.ended_at)
    fixed = correcting_claim(maps, Standing(0, None), revised(), NOW)
    assert fixed is not None
    (record,) = observe(state, fixed, watermark=claim.ended_at).decisions
    assert record.kind is DecisionKind.DUPLICATE and record.claim.claim_id == fixed.claim_id
    same = correcting_claim(claim, Standing(467_000, None), revised("46.7"), NOW)
    assert same is not None  # a new version with the same factor
    made = observe(state, same, watermark=claim.ended_at).decisions
    assert [(d.kind, d.amount_mg) for d in made] == [
        (DecisionKind.REVERSE, -467_000),
        (DecisionKind.CREDIT, 467_000),
    ]
    assert made[1].claim.methodology == same.methodology
