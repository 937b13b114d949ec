"""The behaviour catalogue: the partner contract for `data`, as one declarative table.

Each behaviour type names its category (what statistics group by), its activity
class (what dedupe compares), its fields with kinds, units and bounds, its natural
key (per person, or global: one physical thing whoever reports it), and how its
interval is found.
`validate_data` applies a row to a partner's `data` object and either returns the
normalised fields or raises `Rejection` with a stable reason code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Any

from carbonledger.contracts import bounds
from carbonledger.contracts.calendar import CST, local_date
from carbonledger.contracts.exact import NotExactError, _to_decimal
from carbonledger.contracts.regions import load_regions


class Reason(StrEnum):
    """Stable reason codes of rejected records; partners and operators rely on them."""

    OVERSIZED = "oversized"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_AN_OBJECT = "not_an_object"
    TOO_DEEP = "too_deep"
    DUPLICATE_KEY = "duplicate_key"
    INVALID_ENVELOPE = "invalid_envelope"
    UNKNOWN_PARTNER = "unknown_partner"
    PARTNER_DISABLED = "partner_disabled"
    SOURCE_MISMATCH = "source_mismatch"
    UNKNOWN_TYPE = "unknown_type"
    TYPE_NOT_ALLOWED = "type_not_allowed"
    INVALID_SUBJECT = "invalid_subject"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    INVALID_FIELD = "invalid_field"
    OUT_OF_BOUNDS = "out_of_bounds"
    INVALID_REGION = "invalid_region"
    INTERVAL_INVERTED = "interval_inverted"
    IN_FUTURE = "in_future"
    UNDECODABLE_RECORD = "undecodable_record"
    INVALID_RECORD = "invalid_record"
    PROCESSING_ERROR = "processing_error"


MAX_MESSAGE_LENGTH = 300


class Rejection(Exception):
    """A record that cannot be admitted, with the reason code and a message for humans.

    The message is cut to `MAX_MESSAGE_LENGTH`: it may quote what the partner sent,
    and a dead letter must not grow with the hostile value it refuses."""

    def __init__(self, reason: Reason, message: str) -> None:
        message = bounds.escaped(message)
        if len(message) > MAX_MESSAGE_LENGTH:
            message = message[: MAX_MESSAGE_LENGTH - 1] + "…"
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message


class Kind(StrEnum):
    DECIMAL = "decimal"
    INTEGER = "integer"
    TEXT = "text"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    DATE = "date"
    CHOICE = "choice"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: Kind
    required: bool = True
    unit: str | None = None
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    exclusive_minimum: bool = False
    choices: tuple[str, ...] = ()
    default: Any = None
    description: str = ""


class Category(StrEnum):
    """The classification the seeds and T/ACEF 031-2022 use; statistics group by it."""

    CLOTHING = "clothing"  # 衣
    FOOD = "food"  # 食
    HOME = "home"  # 住
    TRAVEL = "travel"  # 行
    GOODS = "goods"  # 用
    TOURISM = "tourism"  # 游
    OFFICE = "office"  # 办公
    FINANCE = "finance"  # 数字金融
    SINK = "sink"  # 碳汇
    ENGAGEMENT = "engagement"  # no reduction: sign-ins, quizzes, volunteering
    ACCOUNT = "account"  # no reduction: consent and family links (whose, and to which account)


@dataclass(frozen=True)
class BehaviourType:
    type: str
    activity_class: str
    title: str
    fields: tuple[FieldSpec, ...]
    natural_key: tuple[str, ...] = ()
    category: Category = Category.TRAVEL
    # A global key names one physical thing (a batch, a car's day, a meter's period,
    # a tree certificate) that is credited once whoever reports it.
    global_key: bool = False
    # The behaviour is the whole of its `date` (a day's steps or power use, a car left
    # at home all day): it can be reported only once that day is over. A dated act (a
    # sign-in, a clean plate, a toll passage) may be reported on its own day.
    whole_day: bool = False
    # At least one of these groups must be present (e.g. ev.charge: kwh or amount_cny).
    one_of: tuple[str, ...] = ()
    max_duration: timedelta | None = None

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)

    @cached_property
    def data_names(self) -> frozenset[str]:
        """The names `data` may hold: the fields and the region (made once per type:
        validate_data runs for every record, in ingest and again in quantify)."""
        return frozenset(f.name for f in self.fields) | {"region"}

    @cached_property
    def converters(self) -> tuple[tuple[FieldSpec, Callable[[FieldSpec, Any], Any]], ...]:
        """Each field with the converter of its kind, in the table's order."""
        return tuple((f, _CONVERTERS[f.kind]) for f in self.fields)

    @property
    def measured_interval(self) -> bool:
        """Whether the interval was measured (started_at, ended_at), rather than being
        the calendar day or period of a date, or the instant `time`: only measured
        intervals can show that two reports without a shared key are one activity."""
        return self.field("started_at") is not None

    @property
    def engagement(self) -> bool:
        """Engagement events earn points, never a reduction: not quantified or posted."""
        return self.category is Category.ENGAGEMENT

    @property
    def account(self) -> bool:
        """Account events (consent, family links) say whose behaviour may be credited
        and to which accounts: never quantified, never posted."""
        return self.category is Category.ACCOUNT


def _d(text: str) -> Decimal:
    return Decimal(text)


def _interval_fields() -> tuple[FieldSpec, ...]:
    return (
        FieldSpec("started_at", Kind.DATETIME, description="RFC 3339 with offset"),
        FieldSpec("ended_at", Kind.DATETIME, description="RFC 3339 with offset"),
    )


def _positive(name: str, unit: str, maximum: str, required: bool = True) -> FieldSpec:
    """A quantity that must be above zero and at most `maximum`."""
    return FieldSpec(
        name,
        Kind.DECIMAL,
        required=required,
        unit=unit,
        minimum=_d("0"),
        exclusive_minimum=True,
        maximum=_d(maximum),
    )


def _distance(max_km: str) -> FieldSpec:
    return _positive("distance_km", "km", max_km)


def _text(name: str, required: bool = True) -> FieldSpec:
    return FieldSpec(name, Kind.TEXT, required=required)


def _count(
    name: str, unit: str, maximum: str, required: bool = True, default: int | None = None
) -> FieldSpec:
    """A whole number of things, at least one and at most `maximum`."""
    return FieldSpec(
        name,
        Kind.INTEGER,
        required=required,
        unit=unit,
        minimum=_d("1"),
        maximum=_d(maximum),
        default=default,
    )


def _choice(name: str, *choices: str) -> FieldSpec:
    return FieldSpec(name, Kind.CHOICE, choices=choices)


def _date(name: str = "date") -> FieldSpec:
    return FieldSpec(name, Kind.DATE, description="a China Standard Time (UTC+8) calendar date")


def _period_fields() -> tuple[FieldSpec, ...]:
    """A metering period in whole CST days, first and last day included."""
    return (_date("period_start"), _date("period_end"))


REGION_FIELD = FieldSpec("region", Kind.TEXT, description="GB/T 2260 six-digit admin code")
_TRIP_HOURS = 12
# The longest interval of any type (ev.charge's 48 h) bounds how long dedupe keeps a
# claim to compare overlaps (dedupe/domain/person.py LONGEST_INTERVAL), so rail and
# freight stay within it: a longer journey is reported leg by leg (order by order).
_LONG_HAUL_HOURS = 48
# A metering period (PV output) is at most a year, a leap year's days: meters are read
# monthly or yearly, and a longer period is more likely a wrong date than a reading.
MAX_PERIOD_DAYS = 366

_NEW_TRAVEL: tuple[BehaviourType, ...] = (
    BehaviourType(
        "travel.walk",
        "trip",
        "Walk",
        (*_interval_fields(), _distance("60")),
        max_duration=timedelta(hours=_TRIP_HOURS),
    ),
    BehaviourType(
        "travel.bike_private",
        "trip",
        "Ride on one's own bicycle",
        (*_interval_fields(), _distance("100")),
        max_duration=timedelta(hours=_TRIP_HOURS),
    ),
    BehaviourType(
        "travel.ride_hailing_ev",
        "trip",
        "Ride-hailing trip in a new-energy vehicle",
        (
            *_interval_fields(),
            _distance("500"),
            _choice("powertrain", "bev", "phev", "fcev"),
            _text("order_id", False),
        ),
        max_duration=timedelta(hours=_TRIP_HOURS),
    ),
    BehaviourType(
        "travel.rail",
        "trip",
        "Rail journey",
        (
            *_interval_fields(),
            _text("ticket_id"),
            _positive("distance_km", "km", "4000", required=False),
        ),
        natural_key=("ticket_id",),
        max_duration=timedelta(hours=_LONG_HAUL_HOURS),
    ),
    BehaviourType(
        "travel.car_free_day",
        "car_free",
        "A day a private car is not driven",
        (_date(), _text("vehicle_id")),
        natural_key=("vehicle_id", "date"),
        whole_day=True,
        global_key=True,
    ),
    BehaviourType(
        "travel.battery_swap",
        "charge",
        "Electric-vehicle battery swap",
        (*_interval_fields(), _positive("kwh", "kWh", "200"), _text("station_id", False)),
        max_duration=timedelta(hours=_TRIP_HOURS),
    ),
    BehaviourType(
        "travel.etc_toll",
        "toll",
        "Contactless (ETC) toll passage",
        (_text("passage_id"), _date()),
        natural_key=("passage_id",),
    ),
    BehaviourType(
        "travel.freight_match",
        "freight",
        "Freight matched to avoid empty running",
        (
            _text("order_id"),
            *_interval_fields(),
            _distance("5000"),
            _positive("empty_km_avoided", "km", "5000"),
        ),
        natural_key=("order_id",),
        max_duration=timedelta(hours=_LONG_HAUL_HOURS),
    ),
    BehaviourType(
        "travel.fuel_digital",
        "refuel",
        "Refuelling paid without paper (digital refuel order)",
        (_text("order_id"), _positive("litres", "L", "500"), _choice("fuel", "gasoline", "diesel")),
        natural_key=("order_id",),
    ),
    BehaviourType(
        "travel.flight_green",
        "flight_action",
        "Green action on a flight",
        (
            _text("flight_id"),
            _date(),
            _choice(
                "action",
                "self_check_in",
                "e_boarding_pass",
                "own_cup",
                "no_checked_bag",
                "e_invoice",
            ),
        ),
        natural_key=("flight_id", "action"),
    ),
)

_NEW_FOOD_AND_HOME: tuple[BehaviourType, ...] = (
    BehaviourType(
        "food.small_portion",
        "small_portion",
        "Food order of a small portion",
        (_text("order_id"),),
        natural_key=("order_id",),
        category=Category.FOOD,
    ),
    BehaviourType(
        "food.clean_plate",
        "clean_plate",
        "Clean plate (no food wasted)",
        (_date(), _choice("meal", "breakfast", "lunch", "dinner"), _text("photo_id", False)),
        natural_key=("date", "meal"),
        category=Category.FOOD,
    ),
    BehaviourType(
        "food.plant_based",
        "plant_based",
        "Plant-based meal order",
        (_text("order_id"), _count("servings", "servings", "50")),
        natural_key=("order_id",),
        category=Category.FOOD,
    ),
    BehaviourType(
        "home.pv_generation",
        "pv",
        "Rooftop solar (PV) generation over a metering period",
        (_text("meter_id"), *_period_fields(), _positive("kwh", "kWh", "100000")),
        natural_key=("meter_id", "period_start"),
        category=Category.HOME,
        global_key=True,
    ),
    BehaviourType(
        "home.efficient_appliance",
        "appliance",
        "Purchase of an energy-efficient appliance",
        (
            _text("order_id"),
            _choice(
                "appliance",
                "air_conditioner",
                "heat_pump_water_heater",
                "refrigerator",
                "washing_machine",
                "television",
                "other",
            ),
            FieldSpec(
                "energy_label_grade",
                Kind.INTEGER,
                minimum=_d("1"),
                maximum=_d("5"),
                description="China energy label grade, 1 the most efficient",
            ),
            FieldSpec("trade_in", Kind.BOOLEAN, required=False, default=False),
        ),
        natural_key=("order_id",),
        category=Category.HOME,
    ),
    BehaviourType(
        "home.waste_sorting",
        "sorting",
        "Sorted household waste drop-off",
        (
            _text("drop_id"),
            _date(),
            _positive("kg", "kg", "100", required=False),
            _text("bin_id", False),
        ),
        natural_key=("drop_id",),
        category=Category.HOME,
    ),
)

_NEW_GOODS: tuple[BehaviourType, ...] = (
    BehaviourType(
        "goods.second_hand",
        "second_hand",
        "Second-hand purchase or sale",
        (
            _text("order_id"),
            _choice("item_category", "clothing", "electronics", "books", "furniture", "other"),
            _positive("kg", "kg", "1000", required=False),
        ),
        natural_key=("order_id",),
        category=Category.GOODS,
    ),
    BehaviourType(
        "goods.green_product",
        "green_purchase",
        "Purchase of a certified green product",
        (
            _text("order_id"),
            _choice("label", "energy_saving", "water_saving", "environmental", "organic", "other"),
            _count("quantity", "items", "1000"),
        ),
        natural_key=("order_id",),
        category=Category.GOODS,
    ),
    BehaviourType(
        "goods.packaging",
        "packaging",
        "Parcel with green packaging",
        (
            _text("parcel_id"),
            _choice("action", "circular_box", "original_packaging", "box_return", "no_filler"),
        ),
        natural_key=("parcel_id", "action"),
        category=Category.GOODS,
    ),
    BehaviourType(
        "goods.no_plastic_bag",
        "no_bag",
        "Purchase without a plastic bag",
        (_text("receipt_id"),),
        natural_key=("receipt_id",),
        category=Category.GOODS,
    ),
    BehaviourType(
        "goods.clothes_donation",
        "clothes",
        "Donated batch of used clothes",
        (_text("batch_id"), _positive("kg", "kg", "1000")),
        natural_key=("batch_id",),
        category=Category.CLOTHING,
        global_key=True,
    ),
    BehaviourType(
        "goods.book_donation",
        "books",
        "Donated batch of books",
        (_text("batch_id"), _count("count", "books", "10000")),
        natural_key=("batch_id",),
        category=Category.GOODS,
    ),
)

_NEW_SERVICES_AND_SINKS: tuple[BehaviourType, ...] = (
    BehaviourType(
        "tourism.green_visit",
        "visit",
        "Visit to a green tourism venue",
        (_text("venue_id"), _date(), _text("ticket_id", False)),
        natural_key=("venue_id", "date"),
        category=Category.TOURISM,
    ),
    BehaviourType(
        "office.e_invoice",
        "paperless",
        "Electronic invoice instead of paper",
        (_text("invoice_id"),),
        natural_key=("invoice_id",),
        category=Category.OFFICE,
    ),
    BehaviourType(
        "service.online",
        "e_service",
        "Public service handled online",
        (
            _text("case_id"),
            _choice("service", "government", "hospital", "social_security", "other"),
        ),
        natural_key=("case_id",),
        category=Category.OFFICE,
    ),
    BehaviourType(
        "payment.offline_mobile",
        "mobile_payment",
        "In-store mobile payment",
        (_text("transaction_id"), _positive("amount_cny", "CNY", "100000")),
        natural_key=("transaction_id",),
        category=Category.FINANCE,
    ),
    BehaviourType(
        "payment.online_ticket",
        "e_ticket",
        "Electronic ticket bought online",
        (_text("ticket_id"), _choice("kind", "train", "flight", "event", "transit", "other")),
        natural_key=("ticket_id",),
        category=Category.FINANCE,
    ),
    BehaviourType(
        "payment.e_bill",
        "paperless_bill",
        "Electronic bank statement instead of paper",
        (_text("statement_id"),),
        natural_key=("statement_id",),
        category=Category.FINANCE,
    ),
    BehaviourType(
        "sink.tree",
        "tree",
        "Trees planted (certificate)",
        (_text("certificate_id"), _count("trees", "trees", "100000"), _text("species", False)),
        natural_key=("certificate_id",),
        category=Category.SINK,
        global_key=True,
    ),
)

# Engagement: points for taking part, never a reduction (not quantified or posted).
_ENGAGEMENT: tuple[BehaviourType, ...] = (
    BehaviourType(
        "engage.sign_in",
        "sign_in",
        "Daily sign-in",
        (_date(),),
        natural_key=("date",),
        category=Category.ENGAGEMENT,
    ),
    BehaviourType(
        "engage.quiz",
        "quiz",
        "Low-carbon quiz answered",
        (_text("quiz_id"), FieldSpec("correct", Kind.BOOLEAN)),
        natural_key=("quiz_id",),
        category=Category.ENGAGEMENT,
    ),
    BehaviourType(
        "engage.volunteer",
        "volunteer",
        "Volunteering for a green activity",
        (_text("activity_id"), _positive("hours", "h", "24")),
        natural_key=("activity_id",),
        category=Category.ENGAGEMENT,
    ),
)

# Account events (DOMAIN §12): a subject's consent to a partner, and family links
# (1+N: a head and a member, each side's partner reporting it). Accepted from every
# enabled partner, whatever its `behaviours`: they are not behaviours.
CONSENT_SCOPE = "carbon_account"
CONSENT_GRANTED, CONSENT_WITHDRAWN = "consent.granted", "consent.withdrawn"
FAMILY_LINKED, FAMILY_UNLINKED = "family.linked", "family.unlinked"


def _consent(type_: str, title: str) -> BehaviourType:
    return BehaviourType(
        type_,
        "consent",
        title,
        (
            FieldSpec("scope", Kind.CHOICE, choices=(CONSENT_SCOPE,), description="what for"),
            _text("evidence_id"),
        ),
        natural_key=("evidence_id",),
        category=Category.ACCOUNT,
    )


def _family(type_: str, title: str) -> BehaviourType:
    subject = "the HMAC subject (64 lowercase hex) of the "
    return BehaviourType(
        type_,
        "family",
        title,
        (
            FieldSpec("head", Kind.TEXT, description=subject + "family's head account"),
            FieldSpec("member", Kind.TEXT, description=subject + "member account"),
            _text("evidence_id", False),
        ),
        natural_key=("head", "member"),
        category=Category.ACCOUNT,
    )


_ACCOUNT: tuple[BehaviourType, ...] = (
    _consent(CONSENT_GRANTED, "Consent to credit the subject's data granted"),
    _consent(CONSENT_WITHDRAWN, "Consent to credit the subject's data withdrawn"),
    _family(FAMILY_LINKED, "Family account linked (reported by each side)"),
    _family(FAMILY_UNLINKED, "Family account unlinked (by either side)"),
)

CATALOGUE: dict[str, BehaviourType] = {
    b.type: b
    for b in [
        BehaviourType(
            "travel.metro",
            "trip",
            "Metro ride",
            (
                *_interval_fields(),
                _distance("200"),
                _text("line", False),
                _text("entry_station", False),
                _text("exit_station", False),
            ),
            max_duration=timedelta(hours=_TRIP_HOURS),
        ),
        BehaviourType(
            "travel.bus",
            "trip",
            "Bus ride",
            (
                *_interval_fields(),
                _distance("300"),
                FieldSpec("electric", Kind.BOOLEAN, required=False, default=False),
                _text("line", False),
            ),
            max_duration=timedelta(hours=_TRIP_HOURS),
        ),
        BehaviourType(
            "travel.bike_share",
            "trip",
            "Shared bike ride",
            (
                *_interval_fields(),
                _distance("60"),
            ),
            max_duration=timedelta(hours=_TRIP_HOURS),
        ),
        BehaviourType(
            "travel.ebike_share",
            "trip",
            "Shared e-bike ride",
            (
                *_interval_fields(),
                _distance("100"),
            ),
            max_duration=timedelta(hours=_TRIP_HOURS),
        ),
        BehaviourType(
            "travel.carpool",
            "trip",
            "Carpool ride",
            (
                *_interval_fields(),
                _distance("500"),
                FieldSpec("passengers", Kind.INTEGER, minimum=_d("1"), maximum=_d("8")),
            ),
            max_duration=timedelta(hours=_TRIP_HOURS),
        ),
        BehaviourType(
            "travel.ev_drive",
            "trip",
            "Electric-vehicle drive",
            (
                *_interval_fields(),
                _distance("1000"),
            ),
            max_duration=timedelta(hours=_TRIP_HOURS),
        ),
        BehaviourType(
            "steps.daily",
            "steps",
            "Daily step count",
            (
                FieldSpec("date", Kind.DATE, description="the local (UTC+8) day counted"),
                FieldSpec(
                    "steps", Kind.INTEGER, unit="steps", minimum=_d("0"), maximum=_d("150000")
                ),
            ),
            natural_key=("date",),
            whole_day=True,
        ),
        BehaviourType(
            "ev.charge",
            "charge",
            "Electric-vehicle charging session",
            (
                *_interval_fields(),
                _positive("kwh", "kWh", "500", required=False),
                _positive("amount_cny", "CNY", "5000", required=False),
                _text("station_id", False),
            ),
            one_of=("kwh", "amount_cny"),
            max_duration=timedelta(hours=_LONG_HAUL_HOURS),
        ),
        BehaviourType(
            "home.electricity",
            "electricity",
            "Household daily electricity use",
            (
                _text("meter_id"),
                FieldSpec("date", Kind.DATE),
                FieldSpec("kwh", Kind.DECIMAL, unit="kWh", minimum=_d("0"), maximum=_d("1000")),
                FieldSpec(
                    "household_size",
                    Kind.INTEGER,
                    unit="persons",
                    minimum=_d("1"),
                    maximum=_d("20"),
                ),
            ),
            natural_key=("meter_id", "date"),
            whole_day=True,
            category=Category.HOME,
        ),
        BehaviourType(
            "recycle.item",
            "recycle",
            "Recycled material batch",
            (
                _text("batch_id"),
                FieldSpec(
                    "material",
                    Kind.CHOICE,
                    choices=("paper", "plastic", "glass", "textile", "metal", "appliance"),
                ),
                _positive("kg", "kg", "10000"),
            ),
            natural_key=("batch_id",),
            category=Category.GOODS,
            global_key=True,
        ),
        BehaviourType(
            "food.no_cutlery",
            "no_cutlery",
            "Food order without disposable cutlery",
            (_text("order_id"),),
            natural_key=("order_id",),
            category=Category.FOOD,
        ),
        BehaviourType(
            "meeting.online",
            "meeting",
            "Online meeting",
            (
                _text("meeting_id"),
                *_interval_fields(),
                # Optional, default 1: one report per meeting (the host's); the
                # per-meeting figure is shared out ÷ participants.
                _count("participants", "persons", "10000", required=False, default=1),
            ),
            natural_key=("meeting_id",),
            max_duration=timedelta(hours=24),
            category=Category.OFFICE,
        ),
        BehaviourType(
            "payment.utility_online",
            "payment",
            "Online utility bill payment",
            (
                _text("bill_id"),
                FieldSpec(
                    "utility", Kind.CHOICE, required=False, choices=("water", "power", "gas")
                ),
                _positive("amount_cny", "CNY", "100000", required=False),
            ),
            natural_key=("bill_id",),
            category=Category.FINANCE,
        ),
        *_NEW_TRAVEL,
        *_NEW_FOOD_AND_HOME,
        *_NEW_GOODS,
        *_NEW_SERVICES_AND_SINKS,
        *_ENGAGEMENT,
        *_ACCOUNT,
    ]
}


def is_engagement_type(behaviour_type: str) -> bool:
    """Whether the type is an engagement event (points only, never a reduction)."""
    spec = CATALOGUE.get(behaviour_type)
    return spec is not None and spec.engagement


def is_account_type(behaviour_type: str) -> bool:
    """Whether the type is an account event (consent, family link), never a reduction."""
    spec = CATALOGUE.get(behaviour_type)
    return spec is not None and spec.account


def is_consent_type(behaviour_type: str) -> bool:
    return behaviour_type in (CONSENT_GRANTED, CONSENT_WITHDRAWN)


_REGION_RE = re.compile(r"[0-9]{6}")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TEXT_MAX = bounds.MAX_TEXT_LENGTH


def validate_region(value: Any) -> str:
    # fullmatch on ASCII digits: `\d` and `$` would let other scripts' digits and a
    # trailing newline through as "well-formed".
    if not isinstance(value, str) or not _REGION_RE.fullmatch(value):
        raise Rejection(
            Reason.INVALID_REGION, f"region must be a six-digit GB/T 2260 code, got {value!r}"
        )
    # Membership, not a prefix check: the ledger rolls totals up through the
    # table's parents, so a code it cannot place must not be admitted.
    if value not in load_regions():
        raise Rejection(
            Reason.INVALID_REGION, f"region {value} is not a GB/T 2260 code in the shipped table"
        )
    return value


def parse_rfc3339(name: str, value: Any) -> datetime:
    if not isinstance(value, str):
        raise Rejection(Reason.INVALID_FIELD, f"{name} must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Rejection(Reason.INVALID_FIELD, f"{name} is not RFC 3339: {value!r}") from exc
    if parsed.tzinfo is None:
        raise Rejection(Reason.INVALID_FIELD, f"{name} needs a UTC offset: {value!r}")
    check_moment(name, parsed)
    return parsed


def check_moment(name: str, moment: datetime) -> None:
    """A time within the booked calendar and a real-world offset (docs/partners.md)."""
    fault = bounds.moment_fault(moment)
    if fault is not None:
        raise Rejection(Reason.OUT_OF_BOUNDS, f"{name}: {fault}")


def _check_bounds(spec: FieldSpec, number: Decimal) -> None:
    low, high = spec.minimum, spec.maximum
    too_low = low is not None and (number <= low if spec.exclusive_minimum else number < low)
    if too_low or (high is not None and number > high):
        bound = f"{'(' if spec.exclusive_minimum else '['}{low}, {high}]"
        unit = f" {spec.unit}" if spec.unit else ""
        raise Rejection(Reason.OUT_OF_BOUNDS, f"{spec.name}={number}{unit} is outside {bound}")


def _as_decimal(spec: FieldSpec, value: Any) -> Decimal:
    if isinstance(value, str) and not bounds.DECIMAL_TEXT.fullmatch(value):
        raise Rejection(Reason.INVALID_FIELD, f"{spec.name}: {value!r} is not decimal text")
    try:
        number = _to_decimal(value)
    except NotExactError as exc:
        raise Rejection(Reason.INVALID_FIELD, f"{spec.name}: {exc}") from exc
    fault = bounds.decimal_fault(number)
    if fault is not None:
        raise Rejection(Reason.OUT_OF_BOUNDS, f"{spec.name} {fault}")
    _check_bounds(spec, number)
    return number


def _as_integer(spec: FieldSpec, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Rejection(Reason.INVALID_FIELD, f"{spec.name} must be a whole number")
    _check_bounds(spec, Decimal(value))
    return value


def _as_text(spec: FieldSpec, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > _TEXT_MAX:
        raise Rejection(
            Reason.INVALID_FIELD, f"{spec.name} must be text of 1..{_TEXT_MAX} characters"
        )
    fault = bounds.text_fault(value)
    if fault is not None:
        raise Rejection(Reason.INVALID_FIELD, f"{spec.name} {fault}")
    return value


def _as_boolean(spec: FieldSpec, value: Any) -> bool:
    if not isinstance(value, bool):
        raise Rejection(Reason.INVALID_FIELD, f"{spec.name} must be true or false")
    return value


def _as_date(spec: FieldSpec, value: Any) -> str:
    # Exactly YYYY-MM-DD: fromisoformat alone also reads `20261005` and `2026-W41-1`.
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        raise Rejection(Reason.INVALID_FIELD, f"{spec.name} must be a YYYY-MM-DD date")
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise Rejection(Reason.INVALID_FIELD, f"{spec.name} must be a YYYY-MM-DD date") from exc
    fault = bounds.date_fault(day)
    if fault is not None:
        raise Rejection(Reason.OUT_OF_BOUNDS, f"{spec.name}: {fault}")
    return day.isoformat()


def _as_choice(spec: FieldSpec, value: Any) -> str:
    if value not in spec.choices:
        raise Rejection(
            Reason.INVALID_FIELD, f"{spec.name} must be one of {', '.join(spec.choices)}"
        )
    return str(value)


_CONVERTERS: dict[Kind, Callable[[FieldSpec, Any], Any]] = {
    Kind.DECIMAL: _as_decimal,
    Kind.INTEGER: _as_integer,
    Kind.TEXT: _as_text,
    Kind.BOOLEAN: _as_boolean,
    Kind.DATETIME: lambda spec, v: parse_rfc3339(spec.name, v),
    Kind.DATE: _as_date,
    Kind.CHOICE: _as_choice,
}


@dataclass(frozen=True)
class BehaviourData:
    """A validated `data` object: normalised fields plus what dedupe and quantify need."""

    fields: dict[str, Any]
    region: str
    started_at: datetime
    ended_at: datetime
    natural_key: str | None = field(default=None)


# The last instant of a day: a day's interval ends inside the day, so the CST date of
# its end (which crediting periods, caps and period totals use) is the day itself,
# not the next one, and a day ending at 9999-12-31 needs no day after it.
_LAST_INSTANT = timedelta(days=1) - timedelta(microseconds=1)


def local_day_bounds(day: str) -> tuple[datetime, datetime]:
    """The first and last instant of a CST calendar day."""
    start = datetime.combine(date.fromisoformat(day), time(0), CST)
    return start, start + _LAST_INSTANT


def _interval(
    spec: BehaviourType, fields: Mapping[str, Any], time_: datetime, latest: datetime
) -> tuple[datetime, datetime]:
    if "started_at" in fields:
        started, ended = fields["started_at"], fields["ended_at"]
        if ended < started:
            raise Rejection(Reason.INTERVAL_INVERTED, "ended_at is before started_at")
        if spec.max_duration is not None and ended - started > spec.max_duration:
            raise Rejection(Reason.OUT_OF_BOUNDS, f"lasts longer than {spec.max_duration}")
        return started, ended
    if "period_start" in fields:
        return _period_interval(fields["period_start"], fields["period_end"], latest)
    if "date" in fields:
        _not_after_today("date", fields["date"], latest)
        return local_day_bounds(fields["date"])
    return time_, time_


def _not_after_today(name: str, day: str, latest: datetime) -> None:
    # A day after today's is refused before its bounds are computed: the day
    # after 9999-12-31 does not exist.
    if date.fromisoformat(day) > local_date(latest):
        raise Rejection(Reason.IN_FUTURE, f"{name} {day} is in the future")


def _period_interval(first: str, last: str, latest: datetime) -> tuple[datetime, datetime]:
    """A period of whole CST days: from the start of its first day to the end of its last."""
    if last < first:  # ISO dates order as text
        raise Rejection(Reason.INTERVAL_INVERTED, "period_end is before period_start")
    days = date.fromisoformat(last).toordinal() - date.fromisoformat(first).toordinal() + 1
    if days > MAX_PERIOD_DAYS:
        raise Rejection(
            Reason.OUT_OF_BOUNDS, f"period lasts {days} days, longer than {MAX_PERIOD_DAYS}"
        )
    _not_after_today("period_end", last, latest)
    return local_day_bounds(first)[0], local_day_bounds(last)[1]


def validate_data(
    spec: BehaviourType,
    data: Mapping[str, Any],
    time_: datetime,
    now: datetime,
    clock_skew: timedelta = timedelta(minutes=5),
) -> BehaviourData:
    """Check `data` against its catalogue row and return it normalised."""
    check_moment("time", time_)
    if "region" not in data:
        raise Rejection(Reason.MISSING_FIELD, "region is required on every behaviour type")
    region = validate_region(data["region"])
    if not spec.data_names.issuperset(data):
        unknown = sorted(set(data) - spec.data_names)
        raise Rejection(Reason.UNKNOWN_FIELD, f"{spec.type} has no field {', '.join(unknown)}")
    fields: dict[str, Any] = {}
    for f, convert in spec.converters:
        value = data.get(f.name)
        if value is None:
            if f.required:
                raise Rejection(Reason.MISSING_FIELD, f"{spec.type} requires {f.name}")
            if f.default is not None:
                fields[f.name] = f.default
            continue
        fields[f.name] = convert(f, value)
    if spec.one_of and not any(name in fields for name in spec.one_of):
        raise Rejection(
            Reason.MISSING_FIELD, f"{spec.type} requires one of {', '.join(spec.one_of)}"
        )
    started, ended = _interval(spec, fields, time_, now + clock_skew)
    dated_act = "date" in fields and not spec.whole_day
    if (time_ if dated_act else max(ended, time_)) > now + clock_skew:
        raise Rejection(Reason.IN_FUTURE, "the behaviour ends in the future")
    key = "|".join(str(fields[k]) for k in spec.natural_key) if spec.natural_key else None
    return BehaviourData(fields, region, started, ended, key)
