"""Every row of the catalogue, checked from the row itself: a valid event of each type
is admitted, and each required field, bound and choice is enforced with its
documented reason, at ingest and (where JSON Schema can say it) in the published
schema. Examples are derived from the rows, so a new type cannot be left untested."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import jsonschema
import pytest

from carbonledger.contracts.calendar import CST, local_date
from carbonledger.contracts.catalogue import (
    CATALOGUE,
    MAX_PERIOD_DAYS,
    BehaviourType,
    Category,
    FieldSpec,
    Kind,
)
from carbonledger.contracts.records import DeadLetter, Origin, ValidatedBehaviour
from carbonledger.contracts.schemas import behaviour_schemas
from carbonledger.demo.sample import subject_of
from carbonledger.services.ingest.domain.admission import admit
from carbonledger.services.quantify.domain.quantify import quantify
from tests.factories import NOW, event, registry
from tests.unit.test_registry import SHIPPED

SCHEMAS = behaviour_schemas()
REGION = "440304"
DAY = "2026-10-10"
PERIOD = {"period_start": "2026-09-01", "period_end": "2026-09-30"}
STEP = Decimal("0.01")  # past a decimal bound by one cent of its unit
# A family link names two subjects and is reported by one of them (the factory's).
FAMILY_SIDES = {"head": subject_of("+8613900000002"), "member": subject_of("+8613900000009")}
ORIGIN = Origin(topic="partner.every-app.events", partition=0, offset=0)


def _inside(spec: FieldSpec) -> Any:
    """A value of the field that its row accepts (a bound itself, where it has one)."""
    if spec.kind is Kind.DECIMAL:
        return str(spec.maximum if spec.maximum is not None else Decimal(1))
    if spec.kind is Kind.INTEGER:
        return int(spec.minimum) if spec.minimum is not None else 1
    if spec.kind is Kind.DATE:
        return PERIOD.get(spec.name, DAY)
    if spec.kind is Kind.CHOICE:
        return spec.choices[-1]
    if spec.kind is Kind.BOOLEAN:
        return True
    if spec.name in FAMILY_SIDES:
        return FAMILY_SIDES[spec.name]
    return f"{spec.name}-1"


def example(behaviour: BehaviourType, full: bool = False) -> dict[str, Any]:
    """`data` with every required field (every field, if `full`); the interval's two
    times are the factory's, so they are left out here."""
    chosen = [
        f
        for f in behaviour.fields
        if f.kind is not Kind.DATETIME
        and (full or f.required or (behaviour.one_of and f.name == behaviour.one_of[0]))
    ]
    return {f.name: _inside(f) for f in chosen}


def outcome(behaviour_type: str, data: dict[str, Any], **envelope: Any) -> Any:
    body = {**event(behaviour_type, REGION), **envelope}
    body["data"] = {**body["data"], **data}
    body["data"] = {k: v for k, v in body["data"].items() if v is not None}
    raw = json.dumps(body).encode()
    return admit(raw, None, partner_id="every-app", registry=registry(), origin=ORIGIN, now=NOW)


def admitted(behaviour_type: str, data: dict[str, Any]) -> ValidatedBehaviour:
    result = outcome(behaviour_type, data)
    assert isinstance(result, ValidatedBehaviour), result
    return result


def refused(behaviour_type: str, data: dict[str, Any]) -> str:
    result = outcome(behaviour_type, data)
    assert isinstance(result, DeadLetter), (behaviour_type, data)
    return result.reason


def _cases(select: Any) -> list[tuple[str, str]]:
    return [(t, f.name) for t, b in sorted(CATALOGUE.items()) for f in b.fields if select(b, f)]


REQUIRED = _cases(lambda b, f: f.required)
BOUNDED = _cases(lambda b, f: f.minimum is not None or f.maximum is not None)
CHOICES = _cases(lambda b, f: f.kind is Kind.CHOICE)
ONE_OF = [t for t, b in sorted(CATALOGUE.items()) if b.one_of]


def test_the_cases_reach_every_row() -> None:
    assert {t for t, _ in REQUIRED} == set(CATALOGUE)  # every type requires something
    assert len(CATALOGUE) == 49 and len(BOUNDED) >= 30 and len(CHOICES) >= 12


@pytest.mark.parametrize("full", [False, True], ids=["required", "every field"])
@pytest.mark.parametrize("behaviour_type", sorted(CATALOGUE))
def test_every_type_admits_its_example(behaviour_type: str, full: bool) -> None:
    spec = CATALOGUE[behaviour_type]
    behaviour = admitted(behaviour_type, example(spec, full))
    assert (behaviour.type, behaviour.activity_class) == (behaviour_type, spec.activity_class)
    expected_key = "|".join(str(behaviour.data[k]) for k in spec.natural_key) or None
    assert behaviour.natural_key == expected_key
    assert behaviour.started_at <= behaviour.ended_at
    for field in spec.fields:
        if field.default is not None and not full:
            assert behaviour.data[field.name] == field.default, field.name


@pytest.mark.parametrize("full", [False, True], ids=["required", "every field"])
@pytest.mark.parametrize("behaviour_type", sorted(CATALOGUE))
def test_every_types_example_matches_its_schema(behaviour_type: str, full: bool) -> None:
    document = event(behaviour_type, REGION, **example(CATALOGUE[behaviour_type], full))
    checker = jsonschema.FormatChecker()
    jsonschema.validate(document, SCHEMAS[behaviour_type], format_checker=checker)
    jsonschema.validate(
        {**document, "subjectkind": "unit"}, SCHEMAS[behaviour_type], format_checker=checker
    )


def _schema_refuses(behaviour_type: str, data: dict[str, Any], **envelope: Any) -> None:
    document = {**event(behaviour_type, REGION), **envelope}
    document["data"] = {k: v for k, v in {**document["data"], **data}.items() if v is not None}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            document, SCHEMAS[behaviour_type], format_checker=jsonschema.FormatChecker()
        )


@pytest.mark.parametrize(("behaviour_type", "name"), REQUIRED)
def test_a_missing_required_field_is_missing_field(behaviour_type: str, name: str) -> None:
    data = {**example(CATALOGUE[behaviour_type]), name: None}
    if name in ("started_at", "ended_at"):
        data[name] = None  # the factory's time is removed too
    assert refused(behaviour_type, data) == "missing_field"
    _schema_refuses(behaviour_type, data)


@pytest.mark.parametrize("behaviour_type", ONE_OF)
def test_none_of_a_one_of_group_is_missing_field(behaviour_type: str) -> None:
    spec = CATALOGUE[behaviour_type]
    data = {**example(spec, full=True), **dict.fromkeys(spec.one_of)}
    assert refused(behaviour_type, data) == "missing_field"
    _schema_refuses(behaviour_type, data)


def _past(spec: FieldSpec, upper: bool) -> Decimal:
    """The nearest value beyond one bound: above the maximum, or below (or at an
    exclusive) minimum."""
    step = STEP if spec.kind is Kind.DECIMAL else Decimal(1)
    if upper:
        assert spec.maximum is not None
        return spec.maximum + step
    assert spec.minimum is not None
    return spec.minimum if spec.exclusive_minimum else spec.minimum - step


def _as_json(spec: FieldSpec, number: Decimal) -> int | float:
    return int(number) if spec.kind is Kind.INTEGER else float(number)


@pytest.mark.parametrize("upper", [True, False], ids=["above", "below"])
@pytest.mark.parametrize(("behaviour_type", "name"), BOUNDED)
def test_a_value_past_a_bound_is_out_of_bounds(behaviour_type: str, name: str, upper: bool) -> None:
    spec = CATALOGUE[behaviour_type]
    field = spec.field(name)
    assert field is not None
    if (field.maximum if upper else field.minimum) is None:
        pytest.skip("no such bound")
    beyond = _past(field, upper)
    base = example(spec, full=True)
    as_text = str(beyond) if field.kind is Kind.DECIMAL else int(beyond)
    assert refused(behaviour_type, {**base, name: as_text}) == "out_of_bounds"
    # Sent as a JSON number the schema can say it too; as decimal text only ingest can.
    assert refused(behaviour_type, {**base, name: _as_json(field, beyond)}) == "out_of_bounds"
    _schema_refuses(behaviour_type, {**base, name: _as_json(field, beyond)})
    if not (field.exclusive_minimum and not upper):
        at_bound = field.maximum if upper else field.minimum
        admitted(behaviour_type, {**base, name: _as_json(field, Decimal(str(at_bound)))})


@pytest.mark.parametrize(("behaviour_type", "name"), CHOICES)
def test_an_unknown_choice_is_invalid_field(behaviour_type: str, name: str) -> None:
    data = {**example(CATALOGUE[behaviour_type], full=True), name: "something_else"}
    assert refused(behaviour_type, data) == "invalid_field"
    _schema_refuses(behaviour_type, data)
    field = CATALOGUE[behaviour_type].field(name)
    assert field is not None
    for choice in field.choices:  # and every listed one is admitted
        admitted(behaviour_type, {**data, name: choice})


WRONG_KIND = {
    Kind.TEXT: 42,
    Kind.BOOLEAN: "yes",
    Kind.INTEGER: "2.5",
    Kind.DECIMAL: "ten",
    Kind.DATE: "10/10/2026",
    Kind.DATETIME: "2026-10-10T08:10:00",  # no offset
}
KINDS = _cases(lambda b, f: f.kind in WRONG_KIND)


@pytest.mark.parametrize(("behaviour_type", "name"), KINDS)
def test_a_value_of_the_wrong_kind_is_invalid_field(behaviour_type: str, name: str) -> None:
    field = CATALOGUE[behaviour_type].field(name)
    assert field is not None
    data = {**example(CATALOGUE[behaviour_type], full=True), name: WRONG_KIND[field.kind]}
    assert refused(behaviour_type, data) == "invalid_field"


@pytest.mark.parametrize("behaviour_type", sorted(CATALOGUE))
def test_an_unknown_field_is_refused_by_ingest_and_schema(behaviour_type: str) -> None:
    data = {**example(CATALOGUE[behaviour_type]), "platform": "ios"}
    assert refused(behaviour_type, data) == "unknown_field"
    _schema_refuses(behaviour_type, data)


def test_the_schema_refuses_an_unknown_subjectkind() -> None:
    _schema_refuses("travel.metro", {"distance_km": 3}, subjectkind="company")


@pytest.mark.parametrize("behaviour_type", sorted(CATALOGUE))
def test_quantify_takes_every_type_and_credits_none_it_has_no_methodology_for(
    behaviour_type: str,
) -> None:
    data = example(CATALOGUE[behaviour_type], full=True)
    behaviour = outcome(behaviour_type, data, subjectkind="unit")  # an organisation's, too
    assert isinstance(behaviour, ValidatedBehaviour), behaviour
    claim = quantify(behaviour, SHIPPED)
    assert (claim.type, claim.subject_kind) == (behaviour_type, "unit")
    covered = any(behaviour_type in m.behaviours for m in SHIPPED if m.active)
    spec = CATALOGUE[behaviour_type]
    if spec.engagement or spec.account or not covered:
        assert (claim.credited, claim.reduction_mg) == (False, 0)
    if spec.account:
        assert claim.reason == "account" and claim.methodology is None


# --- categories, classes, keys ------------------------------------------------


def test_categories_of_the_first_types_and_the_engagement_types() -> None:
    categories = {t: b.category for t, b in CATALOGUE.items()}
    for t in [t for t in CATALOGUE if t.startswith("travel.")] + ["steps.daily", "ev.charge"]:
        assert categories[t] is Category.TRAVEL, t
    assert categories["home.electricity"] is Category.HOME
    assert categories["recycle.item"] is Category.GOODS
    assert categories["food.no_cutlery"] is Category.FOOD
    assert categories["meeting.online"] is Category.OFFICE
    assert categories["payment.utility_online"] is Category.FINANCE
    assert categories["goods.clothes_donation"] is Category.CLOTHING
    assert categories["sink.tree"] is Category.SINK
    engagement = {t for t, b in CATALOGUE.items() if b.engagement}
    assert engagement == {"engage.sign_in", "engage.quiz", "engage.volunteer"}
    assert all(categories[t] is Category.ENGAGEMENT for t in engagement)


def test_global_keys_are_the_physical_things_credited_once() -> None:
    global_keys = {t for t, b in CATALOGUE.items() if b.global_key}
    assert global_keys == {
        "travel.car_free_day",
        "home.pv_generation",
        "goods.clothes_donation",
        "sink.tree",
        "recycle.item",
    }
    assert all(CATALOGUE[t].natural_key for t in global_keys)  # a key to be global


@pytest.mark.parametrize(
    ("behaviour_type", "key"),
    [
        ("travel.car_free_day", ("vehicle_id", "date")),
        ("travel.flight_green", ("flight_id", "action")),
        ("goods.packaging", ("parcel_id", "action")),
        ("home.pv_generation", ("meter_id", "period_start")),
        ("tourism.green_visit", ("venue_id", "date")),
        ("food.clean_plate", ("date", "meal")),
        ("engage.sign_in", ("date",)),
        ("engage.quiz", ("quiz_id",)),
        ("engage.volunteer", ("activity_id",)),
        ("travel.walk", ()),
    ],
)
def test_natural_keys(behaviour_type: str, key: tuple[str, ...]) -> None:
    assert CATALOGUE[behaviour_type].natural_key == key
    behaviour = admitted(behaviour_type, example(CATALOGUE[behaviour_type]))
    assert behaviour.natural_key == ("|".join(str(behaviour.data[k]) for k in key) or None)


def test_each_behaviour_on_one_order_is_its_own_activity_class() -> None:
    on_an_order = ["food.no_cutlery", "food.small_portion", "food.plant_based"]
    assert len({CATALOGUE[t].activity_class for t in on_an_order}) == len(on_an_order)
    assert CATALOGUE["food.no_cutlery"].activity_class == "no_cutlery"


def test_meeting_participants_default_to_one_report_per_meeting() -> None:
    behaviour = admitted("meeting.online", {"meeting_id": "m-1"})
    assert behaviour.data["participants"] == 1
    assert refused("meeting.online", {"meeting_id": "m-1", "participants": 10_001}) == (
        "out_of_bounds"
    )


def test_an_appliance_is_no_trade_in_unless_said() -> None:
    data = example(CATALOGUE["home.efficient_appliance"])
    assert admitted("home.efficient_appliance", data).data["trade_in"] is False
    traded = admitted("home.efficient_appliance", {**data, "trade_in": True})
    assert traded.data["trade_in"] is True


# --- periods and days ---------------------------------------------------------


def _pv(first: str, last: str) -> dict[str, Any]:
    return {"meter_id": "pv-1", "kwh": "320", "period_start": first, "period_end": last}


def test_a_metering_period_runs_from_its_first_days_start_to_its_last_days_end() -> None:
    behaviour = admitted("home.pv_generation", _pv("2026-09-01", "2026-09-30"))
    assert behaviour.started_at.astimezone(CST).isoformat() == "2026-09-01T00:00:00+08:00"
    assert local_date(behaviour.ended_at).isoformat() == "2026-09-30"
    assert behaviour.ended_at + timedelta(microseconds=1) == behaviour.started_at + timedelta(
        days=30
    )
    one_day = admitted("home.pv_generation", _pv("2026-09-01", "2026-09-01"))
    assert local_date(one_day.started_at) == local_date(one_day.ended_at)


def test_a_period_ending_before_it_starts_is_inverted() -> None:
    assert refused("home.pv_generation", _pv("2026-09-30", "2026-09-01")) == "interval_inverted"


def test_a_period_is_at_most_a_leap_year_long() -> None:
    assert MAX_PERIOD_DAYS == 366
    admitted("home.pv_generation", _pv("2024-01-01", "2024-12-31"))  # 366 days
    assert refused("home.pv_generation", _pv("2024-01-01", "2025-01-01")) == "out_of_bounds"


def test_a_period_ending_after_today_is_in_the_future() -> None:
    assert refused("home.pv_generation", _pv("2026-10-01", "2026-11-30")) == "in_future"


@pytest.mark.parametrize(
    "behaviour_type", sorted(t for t, b in CATALOGUE.items() if b.field("date") is not None)
)
def test_a_dated_behaviour_lies_within_its_own_cst_day(behaviour_type: str) -> None:
    behaviour = admitted(behaviour_type, {**example(CATALOGUE[behaviour_type]), "date": DAY})
    assert local_date(behaviour.started_at).isoformat() == DAY
    assert local_date(behaviour.ended_at).isoformat() == DAY
    assert behaviour.ended_at - behaviour.started_at == timedelta(days=1, microseconds=-1)


# --- the rows say what the specification says ---------------------------------

# (type, field): (lowest accepted or None, exclusive?, highest accepted), as specified.
SPECIFIED_BOUNDS: dict[tuple[str, str], tuple[str | None, bool, str]] = {
    ("travel.walk", "distance_km"): ("0", True, "60"),
    ("travel.bike_private", "distance_km"): ("0", True, "100"),
    ("travel.ride_hailing_ev", "distance_km"): ("0", True, "500"),
    ("travel.rail", "distance_km"): ("0", True, "4000"),
    ("travel.battery_swap", "kwh"): ("0", True, "200"),
    ("travel.freight_match", "distance_km"): ("0", True, "5000"),
    ("travel.freight_match", "empty_km_avoided"): ("0", True, "5000"),
    ("travel.fuel_digital", "litres"): ("0", True, "500"),
    ("food.plant_based", "servings"): ("1", False, "50"),
    ("home.pv_generation", "kwh"): ("0", True, "100000"),
    ("home.efficient_appliance", "energy_label_grade"): ("1", False, "5"),
    ("home.waste_sorting", "kg"): ("0", True, "100"),
    ("goods.second_hand", "kg"): ("0", True, "1000"),
    ("goods.green_product", "quantity"): ("1", False, "1000"),
    ("goods.clothes_donation", "kg"): ("0", True, "1000"),
    ("goods.book_donation", "count"): ("1", False, "10000"),
    ("payment.offline_mobile", "amount_cny"): ("0", True, "100000"),
    ("sink.tree", "trees"): ("1", False, "100000"),
    ("meeting.online", "participants"): ("1", False, "10000"),
    ("engage.volunteer", "hours"): ("0", True, "24"),
}

SPECIFIED_OPTIONAL = {
    "travel.metro": {"line", "entry_station", "exit_station"},
    "travel.bus": {"electric", "line"},
    "ev.charge": {"kwh", "amount_cny", "station_id"},  # at least one of the first two
    "meeting.online": {"participants"},
    "payment.utility_online": {"utility", "amount_cny"},
    "travel.ride_hailing_ev": {"order_id"},
    "travel.rail": {"distance_km"},
    "travel.battery_swap": {"station_id"},
    "food.clean_plate": {"photo_id"},
    "home.efficient_appliance": {"trade_in"},
    "home.waste_sorting": {"kg", "bin_id"},
    "goods.second_hand": {"kg"},
    "tourism.green_visit": {"ticket_id"},
    "sink.tree": {"species"},
    "family.linked": {"evidence_id"},
    "family.unlinked": {"evidence_id"},
}


@pytest.mark.parametrize(("where", "bounds"), sorted(SPECIFIED_BOUNDS.items()))
def test_bounds_are_the_specified_ones(
    where: tuple[str, str], bounds: tuple[str | None, bool, str]
) -> None:
    field = CATALOGUE[where[0]].field(where[1])
    assert field is not None, where
    low, exclusive, high = bounds
    assert (field.minimum, field.exclusive_minimum, field.maximum) == (
        None if low is None else Decimal(low),
        exclusive,
        Decimal(high),
    )


@pytest.mark.parametrize("behaviour_type", sorted(CATALOGUE))
def test_optional_fields_are_the_specified_ones(behaviour_type: str) -> None:
    optional = {f.name for f in CATALOGUE[behaviour_type].fields if not f.required}
    assert optional == SPECIFIED_OPTIONAL.get(behaviour_type, set())


def _sign_in_or_steps(behaviour_type: str, clock: str) -> ValidatedBehaviour | DeadLetter:
    body = event(behaviour_type, REGION, ended=datetime.fromisoformat(f"{DAY}T08:00:00+08:00"))
    body["data"]["date"] = DAY
    if behaviour_type == "steps.daily":
        body["data"]["steps"] = 8000
    now = datetime.fromisoformat(f"{DAY}T{clock}+08:00")
    raw = json.dumps(body).encode()
    return admit(raw, None, partner_id="every-app", registry=registry(), origin=ORIGIN, now=now)


@pytest.mark.parametrize(("clock", "admitted_then"), [("23:54:59", False), ("23:55:00", True)])
def test_a_whole_day_is_accepted_once_its_day_is_over(clock: str, admitted_then: bool) -> None:
    """A day's step count ends at 24:00 CST; the usual 5 minutes of clock skew apply."""
    assert CATALOGUE["steps.daily"].whole_day
    result = _sign_in_or_steps("steps.daily", clock)
    if admitted_then:
        assert isinstance(result, ValidatedBehaviour), result
    else:
        assert isinstance(result, DeadLetter) and result.reason == "in_future"


@pytest.mark.parametrize(("clock", "admitted_then"), [("07:54:59", False), ("07:55:00", True)])
def test_a_dated_act_is_accepted_on_its_own_day(clock: str, admitted_then: bool) -> None:
    """A sign-in at 08:00 is reported that morning, not after midnight: only its `time`
    (and a date not after today) must not be in the future."""
    assert not CATALOGUE["engage.sign_in"].whole_day
    result = _sign_in_or_steps("engage.sign_in", clock)
    if admitted_then:
        assert isinstance(result, ValidatedBehaviour), result
        assert result.ended_at.isoformat() == f"{DAY}T23:59:59.999999+08:00"
    else:
        assert isinstance(result, DeadLetter) and result.reason == "in_future"
