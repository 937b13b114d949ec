"""Consent (DOMAIN §12, docs/dedupe.md "Consent"): a behaviour from a partner with
`consent_required` is credited only if the subject's consent to that partner was in
force at its end, whatever order the behaviours, grants and withdrawals arrive in,
through the stream's use case and through `settle`."""

from __future__ import annotations

import json
import random
import re
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from pydantic import ValidationError

from carbonledger.contracts.calendar import CST
from carbonledger.contracts.groups import dedupe_group
from carbonledger.contracts.methodology_files import load_methodologies
from carbonledger.contracts.partners import PartnerRegistry, parse_registry
from carbonledger.contracts.records import (
    CapUse,
    Decision,
    DecisionKind,
    ReductionClaim,
    SubjectKind,
    ValidatedBehaviour,
)
from carbonledger.contracts.settings import ROOT, Settings
from carbonledger.demo.sample import subject_of
from carbonledger.reference.settle import settle
from carbonledger.runtime.changelog import ChangelogTable
from carbonledger.services.dedupe.adapters.memory import MemoryState
from carbonledger.services.dedupe.adapters.state import ChangelogState, decode_person, encode_person
from carbonledger.services.dedupe.domain import consent as consent_rule
from carbonledger.services.dedupe.domain.activities import event_key
from carbonledger.services.dedupe.domain.expiry import expires_on
from carbonledger.services.dedupe.domain.person import PersonState, observe, prune
from carbonledger.services.dedupe.domain.resolve import Outcome, Status, Why, resolve
from carbonledger.services.dedupe.metrics import DedupeMetrics
from carbonledger.services.dedupe.service import Dedupe, StateStore
from carbonledger.services.ingest.service import PartnerRecord, admit_records
from carbonledger.services.ledger.domain.postings import postings_for
from carbonledger.services.quantify.service import quantify_behaviour
from tests.factories import admitted, claim, event, raw
from tests.unit.test_dedupe_service import Tallied
from tests.unit.test_household import week_then

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DAY = datetime(2026, 10, 12, 0, 0, tzinfo=CST)
WINDOW = timedelta(days=7)
ALICE, BOB = subject_of("+86-consent-alice"), subject_of("+86-consent-bob")
GOV, OTHER_GOV, MAPS = "gov-metro", "gov-transit", "navi-maps"
METHODOLOGIES = load_methodologies(Settings().methodology_dir)


def registry() -> PartnerRegistry:
    """Two partners that credit only with consent, and one that needs none."""
    partner = {"kind": "test", "behaviours": ["travel.metro"]}
    return parse_registry(
        {
            "partners": [
                {**partner, "id": GOV, "name": GOV, "consent_required": True,
                 "evidence_rank": {"trip": 30}},
                {**partner, "id": OTHER_GOV, "name": OTHER_GOV, "consent_required": True,
                 "evidence_rank": {"trip": 25}},
                {**partner, "id": MAPS, "name": MAPS, "evidence_rank": {"trip": 20}},
            ]
        }
    )  # fmt: skip


REGISTRY_ = registry()
Record = tuple[str, bytes]


def at(minute: int) -> datetime:
    return DAY + timedelta(minutes=minute)


def envelope(partner: str, event_id: str, kind: str, time: datetime, subject: str,
             data: dict[str, Any], unit: bool = False) -> Record:  # fmt: skip
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": partner,
        "type": kind,
        "time": time.isoformat(),
        "subject": subject,
        "data": {"region": "440305", **data},
    }
    if unit:
        body["subjectkind"] = "unit"
    return partner, json.dumps(body).encode()


def ride(partner: str, n: int, end: int, subject: str = ALICE, unit: bool = False) -> Record:
    """A 25-minute metro trip ending `end` minutes into the day (10 km: 467 g)."""
    data = {
        "started_at": at(end - 25).isoformat(),
        "ended_at": at(end).isoformat(),
        "distance_km": "10.0",
    }
    return envelope(partner, f"ride-{n}", "travel.metro", at(end), subject, data, unit)


def consent(partner: str, kind: str, minute: int, subject: str = ALICE, unit: bool = False,
            n: int = 0) -> Record:  # fmt: skip
    evidence = f"auth-{kind}-{minute}-{n}"
    data = {"scope": "carbon_account", "evidence_id": evidence}
    return envelope(partner, evidence, f"consent.{kind}", at(minute), subject, data, unit)


def grant(partner: str, minute: int, **more: Any) -> Record:
    return consent(partner, "granted", minute, **more)


def withdraw(partner: str, minute: int, **more: Any) -> Record:
    return consent(partner, "withdrawn", minute, **more)


def claims_of(records: list[Record], now: datetime = NOW) -> list[ReductionClaim]:
    arrivals = [PartnerRecord(p, None, raw, "batch", 0, n) for n, (p, raw) in enumerate(records)]
    found = []
    for outcome in admit_records(arrivals, REGISTRY_, now=now):
        assert isinstance(outcome, ValidatedBehaviour), outcome
        found.append(quantify_behaviour(outcome, METHODOLOGIES))
    return found


def outcomes(records: list[Record]) -> dict[str, Outcome]:
    return resolve(claims_of(records))


def stream(
    claims: list[ReductionClaim], store: StateStore | None = None
) -> tuple[Counter[str], list[Decision]]:
    """The claims through the stream's Dedupe, partitioned by dedupe group: the
    personal book (each decision posted once) and every decision emitted."""
    dedupe = Dedupe(store or MemoryState(), WINDOW, Tallied())
    book: Counter[str] = Counter()
    posted: set[object] = set()
    emitted: list[Decision] = []
    for c in claims:
        for decision in dedupe.observe(zlib.crc32(dedupe_group(c).encode()) % 4, c).decisions:
            emitted.append(decision)
            if decision.decision_id not in posted:
                posted.add(decision.decision_id)
                for p in postings_for(decision):
                    if p.book.value == "personal":
                        book[p.account] += p.content.amount_mg
    return +book, emitted


RIDE_MG = 467_000  # 10 km × 46.7 g


# --- the rule ---------------------------------------------------------------------


def test_credited_iff_the_consent_was_in_force_at_the_behaviours_end() -> None:
    """granted ≤ end < withdrawn, at the boundaries: a grant at exactly the end
    counts, a withdrawal at exactly the end counts too."""
    cases: list[tuple[list[Record], bool]] = [
        ([], False),
        ([grant(GOV, 60)], True),  # granted exactly at the end
        ([grant(GOV, 61)], False),  # a minute too late
        ([grant(GOV, 0), withdraw(GOV, 60)], False),  # withdrawn exactly at the end
        ([grant(GOV, 0), withdraw(GOV, 61)], True),
        ([grant(GOV, 60), withdraw(GOV, 60)], False),  # same instant: withdrawal after
        ([withdraw(GOV, 0), grant(GOV, 30)], True),
        ([grant(GOV, 0), withdraw(GOV, 10), grant(GOV, 20)], True),
    ]
    for records, credited in cases:
        found = outcomes([ride(GOV, 1, 60), *records])[f"{GOV}/ride-1"]
        assert (found.status is Status.CREDITED) is credited, records
        assert found.amount_mg == (RIDE_MG if credited else 0)
        if not credited:
            assert found.reason == Why.NO_CONSENT and found.status is Status.NOT_CREDITED


def test_the_detail_names_the_partner_the_end_and_the_record_that_decided() -> None:
    end = at(60).isoformat()
    none = outcomes([ride(GOV, 1, 60)])[f"{GOV}/ride-1"]
    assert none.detail is not None and GOV in none.detail and end in none.detail
    assert "no consent record" in none.detail
    withdrawn = outcomes([ride(GOV, 1, 60), grant(GOV, 0), withdraw(GOV, 30)])[f"{GOV}/ride-1"]
    assert withdrawn.detail is not None and end in withdrawn.detail
    assert f"withdrawn at {at(30).isoformat()}" in withdrawn.detail
    assert f"{GOV}/auth-withdrawn-30-0" in withdrawn.detail


def test_consent_is_not_retroactive_and_a_withdrawal_keeps_earlier_credits() -> None:
    found = outcomes(
        [ride(GOV, 1, 30), grant(GOV, 40), ride(GOV, 2, 60), withdraw(GOV, 80), ride(GOV, 3, 90)]
    )
    assert [found[f"{GOV}/ride-{n}"].status for n in (1, 2, 3)] == [
        Status.NOT_CREDITED,
        Status.CREDITED,
        Status.NOT_CREDITED,
    ]


def test_consent_to_one_partner_does_not_enable_another() -> None:
    found = outcomes([grant(OTHER_GOV, 0), ride(GOV, 1, 60), ride(OTHER_GOV, 2, 180)])
    assert found[f"{GOV}/ride-1"].reason == Why.NO_CONSENT
    assert found[f"{OTHER_GOV}/ride-2"].status is Status.CREDITED


def test_one_subjects_consent_does_not_enable_anothers() -> None:
    bobs = claims_of([grant(GOV, 0, subject=BOB)])
    alices = claims_of([ride(GOV, 1, 60)])
    assert resolve(alices + bobs)[f"{GOV}/ride-1"].reason == Why.NO_CONSENT


def test_units_need_their_own_consent_too() -> None:
    unit_ride = ride(GOV, 1, 60, subject=BOB, unit=True)
    assert claims_of([unit_ride])[0].subject_kind is SubjectKind.UNIT
    assert outcomes([unit_ride])[f"{GOV}/ride-1"].reason == Why.NO_CONSENT
    granted = outcomes([unit_ride, grant(GOV, 0, subject=BOB, unit=True)])
    assert granted[f"{GOV}/ride-1"].status is Status.CREDITED


def test_partners_without_consent_required_are_untouched_by_consent_records() -> None:
    """A partner that needs no consent credits whatever its users' records say: same
    outcomes and the same decisions, ids included, as without them."""
    rides = [ride(MAPS, 1, 60), ride(MAPS, 2, 180)]
    records = [withdraw(MAPS, 0), grant(GOV, 0), withdraw(GOV, 100)]
    with_records = outcomes(rides + records)
    alone = outcomes(rides)
    assert {k: with_records[k] for k in alone} == alone
    assert all(o.status is Status.CREDITED for o in alone.values())
    _, bare = stream(claims_of(rides))
    _, mixed = stream(claims_of(records + rides))
    assert [d for d in mixed if d.claim.event.source == MAPS] == bare


def test_a_group_with_no_claim_that_needs_consent_does_no_consent_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Claims of partners without consent_required pay nothing for the rule: no
    consent records gathered, none looked up, not even when the group holds some."""
    rides = claims_of([ride(MAPS, 1, 60), ride(MAPS, 2, 180), withdraw(MAPS, 0), grant(GOV, 0)])
    expected = resolve(rides)

    def no_work(claims: object) -> NoReturn:
        raise AssertionError("consent work for a group that needs none")

    monkeypatch.setattr(consent_rule, "Consents", no_work)
    assert resolve(rides[:2]) == {k: expected[k] for k in (f"{MAPS}/ride-1", f"{MAPS}/ride-2")}
    assert resolve(rides) == expected
    with pytest.raises(AssertionError, match="consent work"):
        resolve([*rides, *claims_of([ride(GOV, 3, 300)])])


def test_a_claim_without_consent_does_not_displace_another_partners_credit() -> None:
    """The metro operator's report (rank 30) would win the trip; without consent it
    takes no part in dedupe, so the map app's report of it stays credited."""
    trip = [ride(GOV, 1, 60), ride(MAPS, 2, 60)]
    found = outcomes(trip)
    assert found[f"{GOV}/ride-1"].reason == Why.NO_CONSENT
    assert found[f"{MAPS}/ride-2"].status is Status.CREDITED
    granted = outcomes([*trip, grant(GOV, 0)])
    assert granted[f"{GOV}/ride-1"].status is Status.CREDITED
    assert granted[f"{MAPS}/ride-2"].status is Status.DUPLICATE


def test_caps_count_only_the_credited_claims() -> None:
    """Two rides a day: the first (no consent) does not use up the cap."""
    cap = (CapUse(key="m#0", period="day", max_events=1),)
    rides = [
        claim(GOV, f"c-{n}", 60 * n, caps=cap, subject=ALICE, day=12).model_copy(
            update={"consent_required": True}
        )
        for n in (1, 2)
    ]
    granted_between = claims_of([grant(GOV, 100)])  # after ride 1 ended, before ride 2
    found = resolve(rides + granted_between)
    assert found[f"{GOV}/c-1"].reason == Why.NO_CONSENT
    assert found[f"{GOV}/c-2"].status is Status.CREDITED and found[f"{GOV}/c-2"].amount_mg > 0
    before_both = resolve(rides + claims_of([grant(GOV, 0)]))
    assert before_both[f"{GOV}/c-2"].status is Status.CAPPED


def test_a_consent_partner_may_not_report_global_key_types() -> None:
    """The registry refuses what dedupe could never credit, at start-up."""
    entry = {"id": GOV, "name": GOV, "kind": "test", "consent_required": True}
    with pytest.raises(ValidationError, match=r"recycle\.item.*consent cannot be checked"):
        parse_registry({"partners": [{**entry, "behaviours": ["travel.metro", "recycle.item"]}]})
    without = {**entry, "consent_required": False, "behaviours": ["recycle.item"]}
    assert parse_registry({"partners": [without]}).ids == [GOV]


def test_a_global_key_claim_from_a_consent_partner_is_not_credited() -> None:
    """A recycling batch is de-duplicated across people, away from its reporter's
    consent records: conservatively not credited, saying why (a registry edited
    since start-up, or a claim redriven from before the flag was set)."""
    batch = claim(GOV, "b-1", 60, 0, subject=ALICE, day=12, activity_class="recycle",
                  behaviour_type="recycle.item", natural_key="batch-1")  # fmt: skip
    batch = batch.model_copy(update={"consent_required": True})
    assert dedupe_group(batch).startswith("~global/")
    found = resolve([batch, *claims_of([grant(GOV, 0)])])[f"{GOV}/b-1"]
    assert found.status is Status.NOT_CREDITED and found.reason == Why.NO_CONSENT
    assert found.detail is not None and "cannot be checked" in found.detail
    without = resolve([batch.model_copy(update={"consent_required": False})])[f"{GOV}/b-1"]
    assert without.status is Status.CREDITED


def household_consent(day: int, hour: int = 12) -> ReductionClaim:
    """The household's consent to its power company (the factories' every-app)."""
    body = event("consent.granted", "440304", ended=datetime(2026, 10, day, hour, tzinfo=CST),
                 scope="carbon_account", evidence_id=f"power-auth-{day}")  # fmt: skip
    return quantify_behaviour(admitted(raw(body), "every-app"), METHODOLOGIES)


def test_readings_without_consent_are_no_household_history() -> None:
    """The household rule needs seven days of readings; a reading taken before the
    consent is not credited and is not used as anyone's history either."""
    week = [c.model_copy(update={"consent_required": True}) for c in week_then("8")]
    day_8 = event_key(week[-1])
    assert all(o.reason == Why.NO_CONSENT for o in resolve(week).values())
    consented = resolve([*week, household_consent(1, 0)])[day_8]
    assert consented.status is Status.CREDITED and consented.amount_mg == 773_800
    partly = resolve([*week, household_consent(4)])
    assert partly[day_8].reason == "needs_household_history"
    assert partly[event_key(week[0])].reason == Why.NO_CONSENT


# A consent history as the oracle reads it, per subject and partner: (minute, withdrawn).
ConsentHistory = list[tuple[int, bool]]
ConsentRecords = list[tuple[str, str, int, bool]]  # (subject, partner, minute, withdrawn)


def in_force(history: ConsentHistory, end: int) -> bool:
    """The oracle, by brute force over the history: the latest record at or before the
    end (a withdrawal after a grant of the same instant) is a grant."""
    latest = max((r for r in history if r[0] <= end), default=None)
    return latest is not None and not latest[1]


def history_of(records: ConsentRecords, subject: str, partner: str) -> ConsentHistory:
    return [
        (minute, withdrawn) for s, p, minute, withdrawn in records if (s, p) == (subject, partner)
    ]


def consent_records(records: ConsentRecords) -> list[Record]:
    """(subject, partner, minute, withdrawn) as consent records, each its own evidence."""
    return [
        consent(p, "withdrawn" if withdrawn else "granted", minute, subject=s, n=n)
        for n, (s, p, minute, withdrawn) in enumerate(records)
    ]


PARTNERS = (GOV, OTHER_GOV, MAPS)


@st.composite
def short_histories(
    draw: st.DrawFn,
) -> tuple[ConsentRecords, list[tuple[str, int]]]:
    """Grants and withdrawals of Alice and Bob to 1–3 partners on a half-hour grid (so
    records fall on behaviours' ends and on each other), and Alice's rides with those
    partners, one per slot (no two the same trip)."""
    partners = draw(st.lists(st.sampled_from(PARTNERS), min_size=1, max_size=3, unique=True))
    records = draw(
        st.lists(
            st.tuples(
                st.sampled_from((ALICE, BOB)),
                st.sampled_from(partners),
                st.integers(0, 12).map(lambda q: 30 * q),
                st.booleans(),
            ),
            max_size=10,
        )
    )
    rides = draw(
        st.lists(
            st.tuples(st.sampled_from(partners), st.integers(1, 12).map(lambda q: 30 * q)),
            min_size=1,
            max_size=8,
            unique_by=lambda r: r[1],
        )
    )
    return records, rides


@settings(max_examples=100, deadline=None)
@given(history=short_histories(), order=st.randoms(use_true_random=False))
def test_credited_iff_the_oracle_says_the_consent_was_in_force(
    history: tuple[ConsentRecords, list[tuple[str, int]]], order: random.Random
) -> None:
    """Whatever the records and their order, each ride is credited exactly when the
    oracle finds its partner needs no consent or Alice's was in force at its end."""
    records, rides = history
    arrivals = consent_records(records) + [ride(p, n, end) for n, (p, end) in enumerate(rides)]
    order.shuffle(arrivals)
    found = outcomes(arrivals)
    for n, (partner, end) in enumerate(rides):
        outcome = found[f"{partner}/ride-{n}"]
        if partner == MAPS or in_force(history_of(records, ALICE, partner), end):
            assert (outcome.status, outcome.amount_mg) == (Status.CREDITED, RIDE_MG)
        else:
            assert (outcome.status, outcome.reason) == (Status.NOT_CREDITED, Why.NO_CONSENT)


# --- order independence, through the stream's use case and settle ------------------

SCENARIO: list[Record] = [
    ride(GOV, 1, 5),  # before any consent
    grant(GOV, 10),
    ride(GOV, 2, 10),  # exactly at the grant
    ride(GOV, 3, 25),
    ride(MAPS, 4, 25),  # the same trip as ride 3, weaker evidence
    withdraw(GOV, 40),
    ride(GOV, 5, 40),  # exactly at the withdrawal
    ride(GOV, 6, 55),
    ride(MAPS, 7, 55),  # the same trip as ride 6: credited, ride 6 has no consent
    grant(GOV, 70),
    ride(GOV, 8, 90),
    ride(OTHER_GOV, 9, 200),  # another partner, never granted
    grant(GOV, 300, subject=BOB),
    ride(GOV, 10, 320, subject=BOB),
]
# In force at ends 10, 25 and 90 only; the map app keeps the trip ride 6 could not take.
EXPECTED = {ALICE: 4 * RIDE_MG, BOB: RIDE_MG}


def test_the_scenario_in_arrival_order_credits_what_was_in_force() -> None:
    book, decisions = stream(claims_of(SCENARIO))
    assert book == EXPECTED
    refused = {d.claim.event.id for d in decisions if d.reason == Why.NO_CONSENT}
    assert refused == {"ride-1", "ride-5", "ride-6", "ride-9"}


@settings(max_examples=60, deadline=None)
@given(
    order=st.permutations(range(len(SCENARIO))),
    replays=st.lists(st.integers(0, len(SCENARIO) - 1), max_size=6),
)
def test_grants_and_withdrawals_in_every_order_give_the_same_books(
    order: list[int], replays: list[int]
) -> None:
    records = [SCENARIO[i] for i in order] + [SCENARIO[i] for i in replays]
    claims = claims_of(records)
    book, _ = stream(claims)
    assert book == EXPECTED
    table = ChangelogTable("people-changelog", Settings())
    with table.transaction():
        assert stream(claims, ChangelogState(table))[0] == EXPECTED


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_settle_gives_the_same_books_from_shuffled_records(seed: int) -> None:
    records = SCENARIO + SCENARIO[:5]
    random.Random(seed).shuffle(records)
    result = settle(records, REGISTRY_, METHODOLOGIES, NOW, window=WINDOW)
    assert {a: v for a, v in result.personal.items() if v} == EXPECTED
    assert result.consent_records == 4 and result.outcomes[Why.NO_CONSENT] == 4
    assert result.as_json()["no_consent"] == 4 and result.as_json()["consent_records"] == 4
    assert result.account_events == {"consent.granted": 3, "consent.withdrawn": 1}
    assert result.outcomes["replay"] == 5


DAVE = subject_of("+86-consent-dave")  # in Alice's partition: her rides move his watermark
PEOPLE = (ALICE, BOB, DAVE)
MINUTES_A_DAY = 24 * 60
HISTORY_DAYS = 40  # longer than the window: claims pruned, consent superseded, people expired
LATER = NOW + timedelta(days=HISTORY_DAYS)
# The longest a record takes to arrive: under the window, so no behaviour is late and no
# consent record arrives after a behaviour it decides has left the state.
SLOWEST = 6 * MINUTES_A_DAY


@st.composite
def long_histories(draw: st.DrawFn) -> tuple[list[Record], Counter[str]]:
    """Three people's consent records (to the metro operator and to the map app, which
    needs none) and rides over 40 days, each arriving up to six days after its time,
    with replays arriving any time later; and the personal book the oracle expects:
    each trip credited once if any report of it is (the map app's always are)."""
    day = st.integers(0, HISTORY_DAYS - 1).map(lambda d: d * MINUTES_A_DAY)
    partner = st.sampled_from((GOV, MAPS))
    records = draw(
        st.lists(
            st.tuples(
                st.sampled_from(PEOPLE),
                partner,
                st.tuples(day, st.integers(0, 95)).map(lambda t: t[0] + 15 * t[1]),
                st.booleans(),
            ),
            max_size=14,
        )
    )
    rides = draw(
        st.lists(
            st.tuples(
                st.sampled_from(PEOPLE),
                partner,
                st.tuples(day, st.integers(1, 47)).map(lambda t: t[0] + 30 * t[1]),
            ),
            max_size=16,
        )
    )
    # Alice and Bob ride on the first and the last day: the window passes their history.
    last = (HISTORY_DAYS - 1) * MINUTES_A_DAY
    rides += [(s, MAPS, d + 12 * 60) for s in (ALICE, BOB) for d in (0, last)]
    timed = [
        (minute, r) for (_, _, minute, _), r in zip(records, consent_records(records), strict=True)
    ]
    timed += [(end, ride(p, n, end, subject=s)) for n, (s, p, end) in enumerate(rides)]
    delays = draw(st.lists(st.integers(0, SLOWEST), min_size=len(timed), max_size=len(timed)))
    arriving = [(t + delay, record) for (t, record), delay in zip(timed, delays, strict=True)]
    replays = draw(
        st.lists(
            st.tuples(st.integers(0, len(timed) - 1), st.integers(0, HISTORY_DAYS * MINUTES_A_DAY)),
            max_size=8,
        )
    )
    arriving += [(arriving[i][0] + later, arriving[i][1]) for i, later in replays]
    arrivals = [record for _, record in sorted(arriving, key=lambda a: a[0])]
    trips = {
        (s, end) for s, p, end in rides if p == MAPS or in_force(history_of(records, s, GOV), end)
    }
    return arrivals, Counter({s: RIDE_MG * sum(1 for t in trips if t[0] == s) for s in PEOPLE})


@settings(max_examples=50, deadline=None)
@given(history=long_histories())
def test_histories_longer_than_the_window_give_the_oracles_and_settles_books(
    history: tuple[list[Record], Counter[str]],
) -> None:
    """Through the stream's use case over its changelog state (each state encoded and
    decoded on every claim), where the window forgets what it has passed, the books
    are those of `settle` over the same records, whose one batch needs a window over
    the whole history to see each behaviour as the stream did: in time."""
    arrivals, expected = history
    table = ChangelogTable("people-changelog", Settings())
    with table.transaction():
        book, _ = stream(claims_of(arrivals, LATER), ChangelogState(table))
        held = [
            decode_person(v)
            for n in range(4)
            for k, v in table.current().partition(n).items()
            if not k.startswith(b"~")
        ]
    whole = timedelta(days=HISTORY_DAYS)
    settled = settle(arrivals, REGISTRY_, METHODOLOGIES, LATER, window=whole)
    assert book == {a: v for a, v in settled.personal.items() if v} == +expected
    # The window did pass over the history: the first day's rides are forgotten.
    assert all(
        c.ended_at > at(MINUTES_A_DAY)
        for state in held
        for c in state.claims.values()
        if not consent_rule.is_consent(c)
    )


def test_a_behaviour_before_its_grant_is_credited_when_the_grant_arrives() -> None:
    dedupe = Dedupe(MemoryState(), WINDOW, Tallied())
    ride_claim, grant_claim = claims_of([ride(GOV, 1, 60), grant(GOV, 0)])
    (first,) = dedupe.observe(0, ride_claim).decisions
    assert (first.kind, first.reason) == (DecisionKind.NOT_CREDITED, Why.NO_CONSENT)
    arrived = dedupe.observe(0, grant_claim)
    assert [(d.kind, d.amount_mg) for d in arrived.decisions] == [(DecisionKind.CREDIT, RIDE_MG)]
    (account,) = arrived.accounts
    assert account.type == "consent.granted" and account.partner == GOV


def test_a_late_withdrawal_reverses_only_the_credits_after_it() -> None:
    dedupe = Dedupe(MemoryState(), WINDOW, Tallied())
    for c in claims_of([grant(GOV, 0), ride(GOV, 1, 30), ride(GOV, 2, 60), ride(GOV, 3, 90)]):
        dedupe.observe(0, c)
    (late,) = claims_of([withdraw(GOV, 45)])
    made = dedupe.observe(0, late).decisions
    assert {d.claim.event.id for d in made} == {"ride-2", "ride-3"}
    for n in (2, 3):
        reverse, record = [d for d in made if d.claim.event.id == f"ride-{n}"]
        assert reverse.kind is DecisionKind.REVERSE and reverse.amount_mg == -RIDE_MG
        assert reverse.reason == Why.NO_CONSENT and reverse.reverses is not None
        assert record.kind is DecisionKind.NOT_CREDITED and record.reason == Why.NO_CONSENT


def test_replays_of_consent_records_and_behaviours_have_no_effect() -> None:
    claims = claims_of(SCENARIO)
    dedupe = Dedupe(MemoryState(), WINDOW, Tallied())
    first: dict[object, Decision] = {}
    accounts: set[object] = set()
    for c in claims:
        seen = dedupe.observe(0, c)
        first.update((d.decision_id, d) for d in seen.decisions)
        accounts.update(a.account_event_id for a in seen.accounts)
    for c in reversed(claims):
        again = dedupe.observe(0, c)
        assert not again.new
        assert all(first[d.decision_id] == d for d in again.decisions)
        assert {a.account_event_id for a in again.accounts} <= accounts


# --- state: kept, pruned, encoded, expired ------------------------------------------


def test_a_consent_record_older_than_the_window_is_kept_and_still_decides() -> None:
    """A grant given weeks before is not late: it decides behaviours in the window,
    and a withdrawal reported late takes back what ended after it."""
    dedupe = Dedupe(MemoryState(), WINDOW, Tallied())
    weeks_later = 60 * 24 * 20
    for c in claims_of([ride(MAPS, 1, weeks_later)]):  # moves the watermark 20 days on
        dedupe.observe(0, c)
    old_grant, new_ride, old_withdrawal = claims_of(
        [grant(GOV, 0), ride(GOV, 2, weeks_later - 60), withdraw(GOV, 30)]
    )
    kept = dedupe.observe(0, old_grant)
    assert kept.new and not kept.late and kept.accounts
    (credit,) = dedupe.observe(0, new_ride).decisions
    assert credit.kind is DecisionKind.CREDIT
    reverse, record = dedupe.observe(0, old_withdrawal).decisions
    assert reverse.reverses == credit.decision_id and record.reason == Why.NO_CONSENT


def test_a_consent_record_leaves_the_partitions_watermark_alone() -> None:
    """A consent given ten days after the partition's newest behaviour (someone signing
    up today while their partner's data runs behind) is no behaviour: it moves no
    watermark, so another subject's ride six days older than the newest is in time."""
    dedupe, table = stream_state()
    days = MINUTES_A_DAY
    newest, given_later, older = claims_of(
        [
            ride(MAPS, 1, 20 * days, subject=BOB),
            grant(GOV, 30 * days),
            ride(MAPS, 2, 14 * days, subject=BOB),
        ]
    )
    dedupe.observe(0, newest)
    assert dedupe.observe(0, given_later).accounts
    mark = table.current().partition(0)[b"~watermark/0"]
    assert mark == newest.ended_at.isoformat().encode()
    seen = dedupe.observe(0, older)
    assert not seen.late and [d.kind for d in seen.decisions] == [DecisionKind.CREDIT]


def person(records: list[Record]) -> PersonState:
    state = PersonState(ALICE)
    for c in claims_of(records):
        observe(state, c, watermark=c.ended_at, window=WINDOW)
    return state


def test_the_state_keeps_consent_records_through_encoding() -> None:
    state = person([grant(GOV, 0), ride(GOV, 1, 30), withdraw(GOV, 45), ride(GOV, 2, 60)])
    decoded = decode_person(encode_person(state))
    assert decoded == state
    assert resolve(decoded.claims.values()) == resolve(state.claims.values())


def test_pruning_keeps_the_latest_consent_record_of_each_partner() -> None:
    state = person(
        [grant(GOV, 0), withdraw(GOV, 10), grant(GOV, 20), ride(GOV, 1, 30),
         grant(OTHER_GOV, 5), withdraw(MAPS, 6)]
    )  # fmt: skip
    prune(state, at(60 * 24 * 30))  # a month on: the ride is long forgotten
    assert sorted(state.claims) == sorted(
        [f"{GOV}/auth-granted-20-0", f"{OTHER_GOV}/auth-granted-5-0", f"{MAPS}/auth-withdrawn-6-0"]
    )
    assert set(state.positions) == set(state.claims)
    assert all(k in state.claims for made in state.caused.values() for k, _ in made)
    assert expires_on(state, WINDOW) is None  # nothing more to forget
    later = claims_of([ride(GOV, 3, 60 * 24 * 30)])[0]
    assert resolve([*state.claims.values(), later])[f"{GOV}/ride-3"].status is Status.CREDITED


def test_pruning_keeps_the_consent_that_decided_a_claim_kept_past_the_cutoff() -> None:
    """A claim kept for its cap period is decided again on every arrival: the grant
    that credited it stays, though a withdrawal came after it."""
    cap = (CapUse(key="m#0", period="month", max_events=10),)
    capped = claim(GOV, "c-1", 30, caps=cap, subject=ALICE, day=12).model_copy(
        update={"consent_required": True}
    )
    state = PersonState(ALICE)
    for c in [*claims_of([grant(GOV, 0), withdraw(GOV, 100)]), capped]:
        observe(state, c, watermark=at(200), window=WINDOW)
    before = resolve(state.claims.values())[f"{GOV}/c-1"]
    assert before.status is Status.CREDITED
    prune(state, at(60 * 24 * 4))  # past the cutoff, inside the claim's month
    assert f"{GOV}/c-1" in state.claims and len(state.claims) == 3
    assert resolve(state.claims.values())[f"{GOV}/c-1"] == before


def stream_state() -> tuple[Dedupe, ChangelogTable]:
    table = ChangelogTable("people-changelog", Settings())
    table.begin()  # as the batch loop opens one per batch
    return Dedupe(ChangelogState(table), WINDOW, DedupeMetrics()), table


def test_a_state_of_consent_records_only_is_not_expired_and_its_history_is_pruned() -> None:
    dedupe, table = stream_state()
    history = claims_of([grant(GOV, 0), withdraw(GOV, 10), grant(GOV, 20), ride(GOV, 1, 30)])
    first = [dedupe.observe(0, c).accounts for c in history]
    month = 60 * 24 * 30
    for day in range(1, 31):  # someone else's rides move the watermark a month on
        (other,) = claims_of([ride(MAPS, 100 + day, 60 * 24 * day + 600, subject=BOB)])
        dedupe.observe(0, other)
    held = table.current().partition(0)
    kept = decode_person(held[ALICE.encode()])
    assert sorted(kept.claims) == [f"{GOV}/auth-granted-20-0"]
    listed = [k for k in held if k.startswith(b"~expiry/0/") and ALICE.encode() in held[k]]
    assert listed == []  # the state can shrink no further: not listed again
    # A resend of a record forgotten as superseded decides nothing and is the same record.
    resent = dedupe.observe(0, history[1])
    assert resent.decisions == [] and resent.accounts == first[1]
    (later,) = claims_of([ride(GOV, 2, month)])
    (credit,) = dedupe.observe(0, later).decisions
    assert credit.kind is DecisionKind.CREDIT


def test_a_grant_does_not_keep_the_behaviours_it_credited_past_the_window() -> None:
    """A grant is kept for ever; what its arrival credited goes with the window, and
    its replay then re-emits its own account event (those credits are long booked)."""
    dedupe, table = stream_state()
    for c in claims_of([ride(GOV, 1, 30), ride(GOV, 2, 90)]):
        dedupe.observe(0, c)
    (late_grant,) = claims_of([grant(GOV, 0)])
    first = dedupe.observe(0, late_grant)
    assert [d.kind for d in first.decisions] == [DecisionKind.CREDIT] * 2
    for day in range(1, 31):
        (other,) = claims_of([ride(MAPS, 100 + day, 60 * 24 * day + 600, subject=BOB)])
        dedupe.observe(0, other)
    kept = decode_person(table.current().partition(0)[ALICE.encode()])
    assert sorted(kept.claims) == [f"{GOV}/auth-granted-0-0"]
    again = dedupe.observe(0, late_grant)
    assert not again.new and again.decisions == [] and again.accounts == first.accounts


def test_a_consent_record_from_before_the_window_is_listed_for_a_day_still_to_sweep() -> None:
    dedupe, table = stream_state()
    month = 60 * 24 * 30
    for c in claims_of([ride(MAPS, 1, month, subject=BOB), grant(GOV, 0), withdraw(GOV, 10)]):
        dedupe.observe(0, c)
    held = table.current().partition(0)
    days = [k for k in held if k.startswith(b"~expiry/0/") and ALICE.encode() in held[k]]
    swept = held[b"~swept/0"].decode()
    assert days and all(k.decode().split("/")[2] > swept for k in days)
    (tomorrow,) = claims_of([ride(MAPS, 2, month + 60 * 24, subject=BOB)])
    dedupe.observe(0, tomorrow)
    kept = decode_person(table.current().partition(0)[ALICE.encode()])
    assert sorted(kept.claims) == [f"{GOV}/auth-withdrawn-10-0"]


# --- family links: passed on, no state ----------------------------------------------


def family(kind: str, n: int = 0) -> Record:
    data = {"head": ALICE, "member": BOB, "evidence_id": f"fam-{n}"}
    return envelope(GOV, f"family-{kind}-{n}", f"family.{kind}", at(60), ALICE, data)


def test_family_links_reach_account_events_without_any_state() -> None:
    dedupe, table = stream_state()
    tally = Tallied()
    dedupe.tally = tally
    (linked,) = claims_of([family("linked")])
    first = dedupe.observe(0, linked)
    (record,) = first.accounts
    assert record.type == "family.linked" and record.data["member"] == BOB
    assert first.decisions == [] and ALICE.encode() not in table.current().partition(0)
    assert not [k for k in table.current().partition(0) if k.startswith(b"~expiry/")]
    again = dedupe.observe(0, linked)
    assert again.accounts == [record]  # a replay: the same record, by its id
    assert tally.accounts == [record, record] and tally.claims == {"account": 2}


def test_family_links_leave_a_persons_state_as_it_was() -> None:
    dedupe, table = stream_state()
    for c in claims_of([ride(MAPS, 1, 60)]):
        dedupe.observe(0, c)
    before = table.current().partition(0)[ALICE.encode()]
    (unlinked,) = claims_of([family("unlinked")])
    assert dedupe.observe(0, unlinked).accounts
    assert table.current().partition(0)[ALICE.encode()] == before


# --- what operators see -------------------------------------------------------------


def test_no_consent_is_counted_by_partner() -> None:
    def counted() -> float:
        sample = REGISTRY.get_sample_value("carbon_dedupe_no_consent_total", {"partner": GOV})
        return sample or 0.0

    before = counted()
    dedupe, _ = stream_state()
    for c in claims_of([ride(GOV, 1, 30), ride(GOV, 2, 60), ride(MAPS, 3, 90)]):
        dedupe.observe(0, c)
    assert counted() == before + 2


# --- the partner guide's examples ---------------------------------------------------


def test_the_partner_guides_consent_and_family_examples_are_admitted() -> None:
    page = (ROOT / "docs" / "partners.md").read_text(encoding="utf-8")
    section = page.split("### Consent and family events", 1)[1].split("\n## ", 1)[0]
    (entry,) = re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)
    guide = parse_registry({"partners": yaml.safe_load(entry)})
    metro = guide.get("city-metro")
    assert metro is not None and metro.consent_required
    events = [
        chunk if chunk.startswith("{") else "{" + chunk
        for block in re.findall(r"```json\n(.*?)```", section, flags=re.DOTALL)
        for chunk in block.strip().split("\n{")
    ]
    records = [
        PartnerRecord("city-metro", None, json.dumps(json.loads(e)).encode(), "batch", 0, n)
        for n, e in enumerate(events)
    ]
    admitted = list(admit_records(records, guide, now=NOW))
    assert [a.type for a in admitted if isinstance(a, ValidatedBehaviour)] == [
        "consent.granted",
        "consent.withdrawn",
        "family.linked",
        "family.unlinked",
    ]
