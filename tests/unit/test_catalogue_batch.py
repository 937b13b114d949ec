"""A batch across the whole catalogue: every bad event gets its documented reason,
every good one in the same batch is admitted, and nothing is lost."""

from __future__ import annotations

import json
from typing import Any

from carbonledger.contracts.catalogue import CATALOGUE
from carbonledger.contracts.records import DeadLetter, Origin, ValidatedBehaviour
from carbonledger.demo.sample import subject_of
from carbonledger.services.ingest.domain.admission import admit
from tests.factories import NOW, event, registry

# A family link is reported by one of its two sides: the factory's subject is the head.
HEAD, MEMBER = subject_of("+8613900000002"), subject_of("+8613900000009")
VALID: dict[str, tuple[str, dict[str, Any]]] = {
    "travel.metro": ("440304", {"distance_km": "10.0"}),
    "travel.bus": ("440304", {"distance_km": "8.0", "electric": True}),
    "travel.bike_share": ("110105", {"distance_km": "3.0"}),
    "travel.ebike_share": ("500103", {"distance_km": "4.0"}),
    "travel.carpool": ("110105", {"distance_km": "20.0", "passengers": 3}),
    "travel.ev_drive": ("310115", {"distance_km": "30.0"}),
    "steps.daily": ("420102", {"date": "2026-10-10", "steps": 12000}),
    "ev.charge": ("310115", {"amount_cny": "50", "kwh": "20"}),
    "home.electricity": (
        "440304",
        {"meter_id": "m-1", "date": "2026-10-10", "kwh": "6", "household_size": 3},
    ),
    "recycle.item": ("330802", {"batch_id": "b-1", "material": "paper", "kg": "2.5"}),
    "food.no_cutlery": ("440304", {"order_id": "o-1"}),
    "meeting.online": ("110105", {"meeting_id": "m-1", "participants": 4}),
    "payment.utility_online": ("420102", {"bill_id": "b-1", "utility": "power"}),
    "travel.walk": ("440304", {"distance_km": "2.5"}),
    "travel.bike_private": ("110105", {"distance_km": "6"}),
    "travel.ride_hailing_ev": ("310115", {"distance_km": "12", "powertrain": "bev"}),
    "travel.rail": ("110105", {"ticket_id": "t-1", "distance_km": "120"}),
    "travel.car_free_day": ("440304", {"date": "2026-10-10", "vehicle_id": "v-1"}),
    "travel.battery_swap": ("310115", {"kwh": "40", "station_id": "s-1"}),
    "travel.etc_toll": ("440304", {"passage_id": "p-1", "date": "2026-10-10"}),
    "travel.freight_match": (
        "420102",
        {"order_id": "f-1", "distance_km": "300", "empty_km_avoided": "120"},
    ),
    "travel.fuel_digital": ("440304", {"order_id": "r-1", "litres": "40", "fuel": "gasoline"}),
    "travel.flight_green": (
        "110105",
        {"flight_id": "CA1234", "date": "2026-10-10", "action": "own_cup"},
    ),
    "food.small_portion": ("440304", {"order_id": "o-2"}),
    "food.clean_plate": ("330802", {"date": "2026-10-10", "meal": "lunch"}),
    "food.plant_based": ("440304", {"order_id": "o-3", "servings": 2}),
    "home.pv_generation": (
        "330802",
        {
            "meter_id": "pv-1",
            "period_start": "2026-09-01",
            "period_end": "2026-09-30",
            "kwh": "320",
        },
    ),
    "home.efficient_appliance": (
        "440304",
        {"order_id": "a-1", "appliance": "refrigerator", "energy_label_grade": 1},
    ),
    "home.waste_sorting": ("330802", {"drop_id": "d-1", "date": "2026-10-10", "kg": "1.5"}),
    "goods.second_hand": ("110105", {"order_id": "s-1", "item_category": "books"}),
    "goods.green_product": (
        "110105",
        {"order_id": "g-1", "label": "energy_saving", "quantity": 2},
    ),
    "goods.packaging": ("440304", {"parcel_id": "pc-1", "action": "circular_box"}),
    "goods.no_plastic_bag": ("440304", {"receipt_id": "rc-1"}),
    "goods.clothes_donation": ("440304", {"batch_id": "c-1", "kg": "5"}),
    "goods.book_donation": ("110105", {"batch_id": "bk-1", "count": 12}),
    "tourism.green_visit": ("530102", {"venue_id": "v-1", "date": "2026-10-10"}),
    "office.e_invoice": ("440304", {"invoice_id": "i-1"}),
    "service.online": ("500103", {"case_id": "k-1", "service": "government"}),
    "payment.offline_mobile": ("420102", {"transaction_id": "x-1", "amount_cny": "35.5"}),
    "payment.online_ticket": ("420102", {"ticket_id": "e-1", "kind": "train"}),
    "payment.e_bill": ("420102", {"statement_id": "st-1"}),
    "sink.tree": ("150102", {"certificate_id": "tc-1", "trees": 3}),
    "engage.sign_in": ("440304", {"date": "2026-10-10"}),
    "engage.quiz": ("440304", {"quiz_id": "q-1", "correct": True}),
    "engage.volunteer": ("440304", {"activity_id": "va-1", "hours": "2.5"}),
    "consent.granted": ("440304", {"scope": "carbon_account", "evidence_id": "auth-1"}),
    "consent.withdrawn": ("440304", {"scope": "carbon_account", "evidence_id": "auth-2"}),
    "family.linked": ("440304", {"head": HEAD, "member": MEMBER}),
    "family.unlinked": ("440304", {"head": HEAD, "member": MEMBER, "evidence_id": "f-1"}),
}

# (type, changes to the valid data (None removes a field), the documented reason)
BAD: list[tuple[str, dict[str, Any], str]] = [
    ("travel.metro", {"distance_km": "900"}, "out_of_bounds"),
    ("travel.metro", {"distance_km": "-3.2"}, "out_of_bounds"),
    ("travel.metro", {"distance_km": "0"}, "out_of_bounds"),
    ("travel.metro", {"distance_km": None}, "missing_field"),
    ("travel.metro", {"distance_km": "ten"}, "invalid_field"),
    ("travel.metro", {"platform": "ios"}, "unknown_field"),
    ("travel.metro", {"region": "99999"}, "invalid_region"),
    ("travel.metro", {"region": "990101"}, "invalid_region"),
    ("travel.metro", {"started_at": "2026-10-10T09:00:00+08:00"}, "interval_inverted"),
    ("travel.metro", {"started_at": "2026-10-10T08:10:00"}, "invalid_field"),
    ("travel.bus", {"electric": "yes"}, "invalid_field"),
    ("travel.bus", {"distance_km": True}, "invalid_field"),
    ("travel.bike_share", {"started_at": None}, "missing_field"),
    ("travel.bike_share", {"started_at": "2026-10-08T08:00:00+08:00"}, "out_of_bounds"),
    ("travel.ebike_share", {"distance_km": "-1"}, "out_of_bounds"),
    ("travel.carpool", {"passengers": 0}, "out_of_bounds"),
    ("travel.carpool", {"passengers": 9}, "out_of_bounds"),
    ("travel.carpool", {"passengers": "2.5"}, "invalid_field"),
    ("travel.carpool", {"passengers": None}, "missing_field"),
    ("travel.ev_drive", {"distance_km": None}, "missing_field"),
    ("steps.daily", {"steps": -5}, "out_of_bounds"),
    ("steps.daily", {"steps": 150001}, "out_of_bounds"),
    ("steps.daily", {"steps": "10.5"}, "invalid_field"),
    ("steps.daily", {"date": "2026-13-01"}, "invalid_field"),
    ("steps.daily", {"date": None}, "missing_field"),
    ("ev.charge", {"kwh": "-1"}, "out_of_bounds"),
    ("ev.charge", {"amount_cny": "abc"}, "invalid_field"),
    ("home.electricity", {"household_size": 0}, "out_of_bounds"),
    ("home.electricity", {"household_size": 21}, "out_of_bounds"),
    ("home.electricity", {"kwh": "5000"}, "out_of_bounds"),
    ("home.electricity", {"meter_id": None}, "missing_field"),
    ("recycle.item", {"material": "wood"}, "invalid_field"),
    ("recycle.item", {"batch_id": None}, "missing_field"),
    ("recycle.item", {"kg": "-2"}, "out_of_bounds"),
    ("food.no_cutlery", {"order_id": None}, "missing_field"),
    ("food.no_cutlery", {"cutlery": False}, "unknown_field"),
    ("meeting.online", {"meeting_id": None}, "missing_field"),
    ("meeting.online", {"participants": 0}, "out_of_bounds"),
    ("meeting.online", {"ended_at": "2026-10-10T07:00:00+08:00"}, "interval_inverted"),
    ("payment.utility_online", {"utility": "phone"}, "invalid_field"),
    ("payment.utility_online", {"bill_id": None}, "missing_field"),
    ("payment.utility_online", {"region": None}, "missing_field"),
    ("travel.walk", {"distance_km": 61}, "out_of_bounds"),
    ("travel.ride_hailing_ev", {"powertrain": "diesel"}, "invalid_field"),
    ("travel.car_free_day", {"vehicle_id": None}, "missing_field"),
    ("travel.flight_green", {"action": "window_seat"}, "invalid_field"),
    ("food.plant_based", {"servings": 51}, "out_of_bounds"),
    ("home.pv_generation", {"period_end": "2026-08-31"}, "interval_inverted"),
    ("home.efficient_appliance", {"energy_label_grade": 6}, "out_of_bounds"),
    ("home.efficient_appliance", {"trade_in": "no"}, "invalid_field"),
    ("goods.book_donation", {"count": 0}, "out_of_bounds"),
    ("sink.tree", {"trees": 100001}, "out_of_bounds"),
    ("engage.quiz", {"correct": None}, "missing_field"),
    ("engage.volunteer", {"hours": 25}, "out_of_bounds"),
    ("engage.sign_in", {"date": "2026-11-02"}, "in_future"),
    ("consent.granted", {"scope": "marketing"}, "invalid_field"),
    ("consent.withdrawn", {"evidence_id": None}, "missing_field"),
    ("family.linked", {"member": "not-a-subject"}, "invalid_field"),
    ("family.linked", {"head": "f" * 64}, "invalid_field"),  # reported by neither side
    ("family.unlinked", {"member": HEAD}, "invalid_field"),  # one subject twice
]


def _record(behaviour_type: str, n: int, changes: dict[str, Any]) -> bytes:
    region, data = VALID[behaviour_type]
    body = event(behaviour_type, region, **data)
    body["id"] = f"{behaviour_type}-{n}"
    for name, value in changes.items():
        if value is None:
            body["data"].pop(name, None)
        else:
            body["data"][name] = value
    return json.dumps(body).encode()


def test_a_mixed_batch_gets_each_documented_reason_and_loses_nothing() -> None:
    assert len(BAD) >= 40 and set(VALID) == set(CATALOGUE)
    batch: list[tuple[bytes, str | None]] = [(_record(t, n, {}), None) for n, t in enumerate(VALID)]
    batch += [(_record(t, 100 + n, changes), reason) for n, (t, changes, reason) in enumerate(BAD)]
    accepted = rejected = 0
    for offset, (raw, reason) in enumerate(batch):
        origin = Origin(topic="partner.every-app.events", partition=0, offset=offset)
        outcome = admit(
            raw, None, partner_id="every-app", registry=registry(), origin=origin, now=NOW
        )
        if reason is None:
            assert isinstance(outcome, ValidatedBehaviour), outcome
            accepted += 1
        else:
            assert isinstance(outcome, DeadLetter), raw
            assert (outcome.reason, json.loads(raw)["id"]) == (reason, json.loads(raw)["id"])
            assert outcome.message and outcome.origin == origin
            rejected += 1
    assert (accepted, rejected) == (len(VALID), len(BAD))
    assert accepted + rejected == len(batch)
