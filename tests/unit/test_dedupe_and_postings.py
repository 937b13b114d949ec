from typing import Any

from carbonledger.contracts.records import (
    Book,
    Decision,
    DecisionKind,
    ReductionClaim,
)
from carbonledger.services.dedupe.adapters.state import decode_person, encode_person
from carbonledger.services.dedupe.domain.person import Observation, PersonState, observe
from carbonledger.services.ledger.domain.postings import postings_for
from carbonledger.services.quantify.domain.quantify import quantify
from tests.factories import admitted, metro, raw
from tests.unit.test_quantify import SHIPPED


def claim_of(**overrides: Any) -> ReductionClaim:
    partner = str(overrides.get("source", "shenzhen-metro"))
    return quantify(admitted(raw(metro(**overrides)), partner), SHIPPED)


def see(state: PersonState, claim: ReductionClaim) -> tuple[bool, list[Decision]]:
    seen: Observation = observe(state, claim, watermark=claim.ended_at)
    return seen.new, seen.decisions


def test_first_claim_is_credited() -> None:
    state = PersonState(claim_of().subject)
    changed, decisions = see(state, claim_of())
    assert changed
    (decision,) = decisions
    assert decision.kind is DecisionKind.CREDIT and decision.amount_mg == 467_000


def test_replay_has_no_effect_and_re_emits_the_same_decision() -> None:
    claim = claim_of()
    state = PersonState(claim.subject)
    _, first = see(state, claim)
    changed, again = see(state, claim)
    assert not changed and again == first
    # A replay carrying different content under the same (source, id) changes nothing.
    changed, altered = see(state, claim_of(data_distance_km="20.0"))
    assert not changed and altered == first


def test_state_round_trips_through_bytes() -> None:
    claim = claim_of()
    state = PersonState(claim.subject)
    see(state, claim)
    restored = decode_person(encode_person(state))
    assert restored == state


def test_uncredited_claim_makes_a_decision_but_no_posting() -> None:
    claim = claim_of(data_region="110105")
    _, (decision,) = see(PersonState(claim.subject), claim)
    assert decision.kind is DecisionKind.NOT_CREDITED
    assert postings_for(decision) == []


def test_credit_posts_the_same_amount_to_three_books() -> None:
    claim = claim_of()
    _, (decision,) = see(PersonState(claim.subject), claim)
    postings = postings_for(decision)
    assert {p.book: p.account for p in postings} == {
        Book.PERSONAL: claim.subject,
        Book.ENTERPRISE: "shenzhen-metro",
        Book.GOVERNMENT: "440305",
    }
    assert {p.content.amount_mg for p in postings} == {467_000}
    assert all(p.content is postings[0].content for p in postings)  # made once, for all
    assert len({p.posting_id for p in postings}) == 3
    again = postings_for(decision)
    assert [p.posting_id for p in again] == [p.posting_id for p in postings]  # deterministic
