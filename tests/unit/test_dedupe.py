"""Dedupe rules (docs/dedupe.md): same activity, one winner, corrections, caps, window."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from carbonledger.contracts.records import CapUse, Decision, DecisionKind, ReductionClaim
from carbonledger.services.dedupe.adapters.state import decode_person, encode_person
from carbonledger.services.dedupe.domain.activities import event_key
from carbonledger.services.dedupe.domain.person import PersonState, observe
from carbonledger.services.dedupe.domain.resolve import Status, resolve
from tests.factories import claim

DAY_CAP = CapUse(key="steps#0", period="day", max_mg=200_000)
RIDES = CapUse(key="rides#0", period="day", max_events=5)


def stream(
    claims: Iterable[ReductionClaim], window: timedelta = timedelta(days=7)
) -> tuple[dict[str, int], list[Decision]]:
    """Claims through dedupe in this order, as the stage does: net credit per event key."""
    people: dict[str, PersonState] = {}
    watermark = None
    net: dict[str, int] = defaultdict(int)
    applied: dict[object, Decision] = {}
    for c in claims:
        watermark = c.ended_at if watermark is None else max(watermark, c.ended_at)
        state = people.setdefault(c.subject, PersonState(c.subject))
        for d in observe(state, c, watermark=watermark, window=window).decisions:
            if d.decision_id not in applied:  # the ledger's idempotency
                applied[d.decision_id] = d
                net[event_key(d.claim)] += d.amount_mg
    return {k: v for k, v in net.items() if v}, list(applied.values())


def batch(claims: Sequence[ReductionClaim]) -> dict[str, int]:
    by_person: dict[str, dict[str, ReductionClaim]] = defaultdict(dict)
    for c in claims:
        by_person[c.subject].setdefault(event_key(c), c)
    credited = {}
    for mine in by_person.values():
        for key, outcome in resolve(mine.values()).items():
            if outcome.amount_mg:
                credited[key] = outcome.amount_mg
    return credited


# --- same activity -----------------------------------------------------------------


def test_one_trip_from_three_partners_is_credited_once_to_the_ticketing_operator() -> None:
    metro = claim("shenzhen-metro", "m1", 480, 30, mg=467_000, rank=30)
    maps = claim("navi-maps", "n1", 482, 27, mg=455_000, rank=20)
    bank = claim("green-bank", "b1", 481, 29, mg=470_000, rank=10)
    for order in ([metro, maps, bank], [bank, maps, metro], [maps, bank, metro]):
        net, decisions = stream(order)
        assert net == {"shenzhen-metro/m1": 467_000}
        last = {d.claim.event.id: d for d in decisions}  # each claim's latest decision
        assert {k: d.kind for k, d in last.items()} == {
            "m1": DecisionKind.CREDIT,
            "n1": DecisionKind.DUPLICATE,
            "b1": DecisionKind.DUPLICATE,
        }
        assert {d.winner.id for d in last.values() if d.winner} == {"m1"}


def test_a_later_stronger_claim_reverses_the_earlier_credit() -> None:
    maps = claim("navi-maps", "n1", 482, 27, mg=455_000, rank=20)
    metro = claim("shenzhen-metro", "m1", 480, 30, mg=467_000, rank=30)
    _, decisions = stream([maps, metro])
    kinds = [(d.kind, d.claim.event.id, d.amount_mg) for d in decisions]
    assert kinds == [
        (DecisionKind.CREDIT, "n1", 455_000),
        (DecisionKind.REVERSE, "n1", -455_000),
        (DecisionKind.DUPLICATE, "n1", 0),
        (DecisionKind.CREDIT, "m1", 467_000),
    ]
    credit, reverse = decisions[0], decisions[1]
    assert reverse.reverses == credit.decision_id and reverse.reason == "displaced"
    assert reverse.winner is not None and reverse.winner.id == "m1"


def test_overlap_of_half_the_shorter_links_and_less_does_not() -> None:
    long = claim("a", "1", 0, 60)
    assert len(batch([long, claim("b", "2", 50, 20)])) == 1  # 10 of 20 minutes: half
    assert len(batch([long, claim("b", "2", 51, 20)])) == 2  # 9 of 20 minutes
    assert len(batch([long, claim("b", "2", 60, 20)])) == 2  # touching is not overlapping


def test_clusters_are_transitive() -> None:
    a, b, c = claim("a", "1", 0, 30), claim("b", "2", 15, 30), claim("c", "3", 30, 30)
    assert len(batch([a, c])) == 2
    assert len(batch([a, b, c])) == 1


def test_other_people_and_other_classes_never_match() -> None:
    trip = claim("a", "1", 0, 30)
    assert len(batch([trip, claim("b", "2", 0, 30, subject="b" * 64)])) == 2
    steps = claim("b", "2", 0, 30, activity_class="steps", behaviour_type="steps.daily")
    assert len(batch([trip, steps])) == 2


def test_natural_key_links_instants_and_distant_times() -> None:
    bill = dict(activity_class="payment", behaviour_type="payment.utility_online")
    one = claim("bank", "1", 0, 0, natural_key="bill-9", **bill)  # type: ignore[arg-type]
    two = claim("app", "2", 300, 0, natural_key="bill-9", **bill)  # type: ignore[arg-type]
    other = claim("app", "3", 0, 0, natural_key="bill-10", **bill)  # type: ignore[arg-type]
    assert len(batch([one, two])) == 1
    assert len(batch([one, other])) == 2  # instants at the same moment: different bills


def test_ties_go_to_smaller_reduction_then_earlier_time_then_smaller_id() -> None:
    assert batch([claim("a", "1", 0, 30, mg=900), claim("b", "2", 1, 30, mg=800)]) == {"b/2": 800}
    assert batch([claim("a", "1", 0, 31), claim("b", "2", 0, 30)]) == {"b/2": 1_000}
    assert batch([claim("b", "1", 0, 30), claim("a", "9", 0, 30)]) == {"a/9": 1_000}


def test_uncredited_claims_do_not_block_a_credited_one() -> None:
    uncredited = claim("a", "1", 0, 30, rank=99, credited=False)
    assert batch([uncredited, claim("b", "2", 0, 30)]) == {"b/2": 1_000}


# --- caps ----------------------------------------------------------------------------


def steps(source: str, n: str, mg: int, day: int = 10) -> ReductionClaim:
    return claim(
        source,
        n,
        0,
        24 * 60,
        mg=mg,
        activity_class="steps",
        behaviour_type="steps.daily",
        natural_key=f"2026-10-{day}",
        caps=(DAY_CAP,),
        day=day,
    )


def test_steps_cap_holds_per_person_per_day() -> None:
    assert batch([steps("maps", "1", 360_000)]) == {"maps/1": 200_000}
    assert batch([steps("maps", "1", 150_000, day=10), steps("maps", "2", 150_000, day=11)]) == {
        "maps/1": 150_000,
        "maps/2": 150_000,
    }


def test_event_count_cap_credits_the_days_first_rides_whatever_the_order() -> None:
    rides = [claim("app", str(n), n * 60, 30, caps=(RIDES,)) for n in range(8)]
    for seed in range(5):
        shuffled = rides[:]
        random.Random(seed).shuffle(shuffled)
        net, decisions = stream(shuffled)
        assert net == {f"app/{n}": 1_000 for n in range(5)}
        capped = {d.claim.event.id for d in decisions if d.reason == "cap_reached"}
        assert {"5", "6", "7"} <= capped


def test_a_late_arriving_earlier_claim_shrinks_a_partly_capped_credit() -> None:
    cap = CapUse(key="c#0", period="day", max_mg=1_500)
    first = claim("app", "1", 0, 30, caps=(cap,))
    second = claim("app", "2", 60, 30, caps=(cap,))
    net, decisions = stream([second, first])
    assert net == {"app/1": 1_000, "app/2": 500}
    assert [d.amount_mg for d in decisions if d.claim.event.id == "2"] == [1_000, -1_000, 500]


# --- window --------------------------------------------------------------------------


def test_claims_older_than_the_window_are_late_and_change_nothing() -> None:
    old = claim("a", "old", 0, 30, day=1)
    new = claim("a", "new", 0, 30, day=9)
    net, decisions = stream([new, old])
    assert net == {"a/new": 1_000}
    (late,) = [d for d in decisions if d.claim.event.id == "old"]
    assert late.kind is DecisionKind.NOT_CREDITED and late.reason == "late"
    assert stream([old, new])[0] == {"a/old": 1_000, "a/new": 1_000}  # in time, in window


def test_state_forgets_claims_no_accepted_claim_can_meet() -> None:
    state = PersonState("a" * 64)
    for day in range(1, 21):
        c = claim("a", str(day), 0, 30, day=day)
        observe(state, c, watermark=c.ended_at)
    assert len(state.claims) <= 7 + 3
    assert len(encode_person(state)) < 40_000


# --- the guarantees, over many orders -----------------------------------------------


def city(seed: int, people: int = 30, activities: int = 400) -> list[ReductionClaim]:
    """Overlapping trips of a few people from partners of different rank, some steps."""
    rng = random.Random(seed)
    subjects = [f"{n:064x}" for n in range(people)]
    ranks = {"metro": 30, "maps": 20, "bank": 10, "bike": 20}
    claims: list[ReductionClaim] = []
    for n in range(activities):
        subject, day = rng.choice(subjects), rng.randint(10, 14)
        if rng.random() < 0.15:
            for source in rng.sample(["maps", "bank"], rng.randint(1, 2)):
                claims.append(steps(source, f"s{n}", rng.randint(50, 400) * 1_000, day=day))
                claims[-1] = claims[-1].model_copy(update={"subject": subject})
            continue
        start, minutes = rng.randint(0, 20 * 60), rng.randint(5, 90)
        for source in rng.sample(sorted(ranks), rng.choice((1, 1, 2, 3))):
            drift = rng.randint(-4, 4)
            claims.append(
                claim(
                    source,
                    f"t{n}",
                    start + drift,
                    minutes - drift,
                    mg=rng.randint(1, 60) * 10_000,
                    rank=ranks[source],
                    subject=subject,
                    caps=(RIDES,) if source == "bike" else (),
                    day=day,
                )
            )
    return claims


def test_simulated_city_settles_identically_in_every_order_with_replays() -> None:
    for seed in range(4):
        claims = city(seed)
        expected = batch(claims)
        assert len(expected) < len(claims)  # there were duplicates to remove
        rng = random.Random(seed)
        for _ in range(6):
            order = claims + rng.sample(claims, len(claims) // 5)  # replays
            rng.shuffle(order)
            net, decisions = stream(order)
            assert net == expected
            assert all(d.amount_mg >= 0 for d in decisions if d.kind is DecisionKind.CREDIT)


@st.composite
def overlapping_trips(draw: st.DrawFn) -> list[ReductionClaim]:
    count = draw(st.integers(1, 7))
    return [
        claim(
            draw(st.sampled_from(["a", "b", "c"])),
            str(n),
            draw(st.integers(0, 120)),
            draw(st.integers(0, 60)),
            mg=draw(st.integers(1, 5)) * 100,
            rank=draw(st.integers(0, 2)),
            caps=draw(
                st.sampled_from([(), (RIDES,), (CapUse(key="g", period="day", max_mg=700),)])
            ),
        )
        for n in range(count)
    ]


@settings(max_examples=150, deadline=None)
@given(overlapping_trips(), st.randoms(use_true_random=False))
def test_order_replays_and_redelivery_never_change_the_result(
    trips: list[ReductionClaim], rng: random.Random
) -> None:
    expected = batch(trips)
    shuffled = trips + rng.sample(trips, rng.randint(0, len(trips)))
    rng.shuffle(shuffled)
    net, decisions = stream(shuffled)
    assert net == expected
    # Each cluster nets to exactly one winner's (capped) amount.
    for key, amount in net.items():
        credits = sum(d.amount_mg for d in decisions if event_key(d.claim) == key)
        assert credits == amount
    # Caps hold on what is finally credited.
    assert sum(1 for t in trips if event_key(t) in net and t.caps == (RIDES,)) <= 5
    gram_capped = [t for t in trips if t.caps and t.caps[0].key == "g"]
    assert sum(net.get(event_key(t), 0) for t in gram_capped) <= 700


@settings(max_examples=80, deadline=None)
@given(overlapping_trips())
def test_the_winner_of_a_cluster_does_not_depend_on_order(trips: list[ReductionClaim]) -> None:
    forward, _ = stream(trips)
    backward, _ = stream(trips[::-1])
    assert forward == backward
    for key in forward:
        assert resolve(trips)[key].status is Status.CREDITED


def test_replayed_claim_re_emits_exactly_its_first_decisions() -> None:
    maps = claim("navi-maps", "n1", 482, 27, rank=20)
    metro = claim("shenzhen-metro", "m1", 480, 30, rank=30)
    state = PersonState(maps.subject)
    observe(state, maps, watermark=maps.ended_at)
    first = observe(state, metro, watermark=metro.ended_at).decisions
    restored = decode_person(encode_person(state))
    again = observe(restored, metro, watermark=metro.ended_at)
    assert not again.new and again.decisions == first


def test_state_stored_before_positions_existed_is_read_as_standalone_credits() -> None:
    """State written by the first dedupe (claims only) must not crash the new one."""
    import orjson

    old = claim("navi-maps", "n1", 482, 27, rank=20)
    legacy = orjson.dumps(
        {"subject": old.subject, "claims": {"navi-maps/n1": old.model_dump(mode="json")}}
    )
    state = decode_person(legacy)
    metro = claim("shenzhen-metro", "m1", 480, 30, rank=30)
    made = observe(state, metro, watermark=metro.ended_at).decisions
    reverse = next(d for d in made if d.kind is DecisionKind.REVERSE)
    assert reverse.amount_mg == -old.reduction_mg
    # It reverses the very credit the first dedupe published (sequence 0, no qualifier).
    assert (
        reverse.reverses
        == observe(PersonState(old.subject), old, watermark=old.ended_at).decisions[0].decision_id
    )


def test_dated_acts_of_one_day_link_only_by_their_key() -> None:
    """Lunch and dinner of one day are two clean plates; the same lunch from two
    partners is one. Their intervals are the whole day, which shows nothing."""
    day = 24 * 60

    def plate(source: str, meal: str) -> ReductionClaim:
        return claim(
            source,
            f"{source}-{meal}",
            0,
            day - 1,
            activity_class="clean_plate",
            behaviour_type="food.clean_plate",
            natural_key=f"2026-10-10|{meal}",
        )

    outcomes = resolve([plate("app-a", "lunch"), plate("app-a", "dinner"), plate("app-b", "lunch")])
    assert sorted(o.status for o in outcomes.values()) == [
        Status.CREDITED,
        Status.CREDITED,
        Status.DUPLICATE,
    ]
    assert outcomes["app-b/app-b-lunch"].winner == "app-a/app-a-lunch"
