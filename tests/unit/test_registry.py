"""Every shipped factor, with hand-computed expectations (docs/factors.md)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonledger.contracts import methodology_files as registry_files
from carbonledger.contracts.methodology import Factor, Methodology, in_force
from carbonledger.contracts.methodology_files import RegistryError, load_methodologies, publish
from carbonledger.contracts.records import EventRef, ReductionClaim
from carbonledger.services.quantify.domain.quantify import quantify
from tests.factories import admitted, event, raw

REGISTRY_DIR = (
    Path(__file__).resolve().parents[2] / "carbonledger" / "services" / "quantify" / "registry"
)
SHIPPED = load_methodologies(REGISTRY_DIR)


def claim(
    behaviour_type: str,
    region: str,
    methodologies: list[Methodology] = SHIPPED,
    partner: str = "every-app",
    **data: Any,
) -> ReductionClaim:
    """The claim for an event `partner` reports (the partner-scoped figures need theirs)."""
    behaviour = admitted(raw(event(behaviour_type, region, **data)), "every-app")
    reported = behaviour.model_copy(
        update={"event": EventRef(source=partner, id=behaviour.event.id)}
    )
    return quantify(reported, methodologies)


# The partner ids the shipped partner-scoped versions credit (docs/methodologies.md).
PARTNER_OF = {"hankou-bank-2022": "hankou-bank", "spdb-2022": "spdb", "ant-forest": "ant-forest"}


@pytest.mark.parametrize(
    ("behaviour_type", "region", "data", "mg", "methodology"),
    [
        ("travel.metro", "440304", {"distance_km": "10.0"}, 467_000, "shenzhen-public-transport"),
        (
            "travel.bus",
            "440304",
            {"distance_km": "8.0", "electric": True},
            215_200,
            "shenzhen-public-transport",
        ),
        ("travel.bike_share", "110105", {"distance_km": "3.0"}, 146_100, "shared-riding-2021"),
        ("travel.ebike_share", "310101", {"distance_km": "5.0"}, 272_500, "shared-riding-2021"),
        ("travel.ebike_share", "500103", {"distance_km": "4.0"}, 172_000, "chongqing-ebike-2023"),
        ("meeting.online", "110105", {"meeting_id": "m-1"}, 27_932_000, "online-meeting-2021"),
        (
            "steps.daily",
            "420102",
            {"date": "2026-10-10", "steps": 12000},
            240_000,
            "hankou-bank-2022",
        ),
        ("travel.metro", "420102", {"distance_km": "12.5"}, 80_000, "hankou-bank-2022"),
        ("travel.bus", "420102", {"distance_km": "3.0"}, 80_000, "hankou-bank-2022"),
        ("payment.utility_online", "420102", {"bill_id": "b-1"}, 262_000, "hankou-bank-2022"),
        ("ev.charge", "310115", {"amount_cny": "50"}, 54_700_000, "spdb-2022"),
        ("travel.bus", "310115", {"distance_km": "6.0"}, 1_022_000, "spdb-2022"),
        # 27,932 g shared by 4 participants = 6,983 g each
        (
            "meeting.online",
            "110105",
            {"meeting_id": "m-2", "participants": 4},
            6_983_000,
            "online-meeting-2021",
        ),
        # Ant Forest's energy grams per action, outside any public methodology's region
        ("travel.metro", "110105", {"distance_km": "12.5"}, 52_000, "ant-forest"),
        ("travel.bus", "110105", {"distance_km": "3.0"}, 80_000, "ant-forest"),
        (
            "payment.offline_mobile",
            "110105",
            {"transaction_id": "t-1", "amount_cny": "1"},
            5_000,
            "ant-forest",
        ),
        ("payment.utility_online", "110105", {"bill_id": "b-2"}, 262_000, "ant-forest"),
        (
            "payment.online_ticket",
            "110105",
            {"ticket_id": "k-1", "kind": "train"},
            136_000,
            "ant-forest",
        ),
        (
            "payment.online_ticket",
            "110105",
            {"ticket_id": "k-2", "kind": "event"},
            180_000,
            "ant-forest",
        ),
        (
            "service.online",
            "110105",
            {"case_id": "c-1", "service": "hospital"},
            277_000,
            "ant-forest",
        ),
        ("office.e_invoice", "110105", {"invoice_id": "i-1"}, 5_000, "ant-forest"),
    ],
)
def test_each_shipped_factor(
    behaviour_type: str, region: str, data: dict[str, Any], mg: int, methodology: str
) -> None:
    result = claim(behaviour_type, region, partner=PARTNER_OF.get(methodology, "every-app"), **data)
    assert result.credited, result.reason_detail
    assert result.reduction_mg == mg
    assert result.methodology is not None and result.methodology.id == methodology
    assert all(f.source and f.confidence in "VSD" for f in result.factors)


@pytest.mark.parametrize(
    ("behaviour_type", "region", "data", "reason", "partner"),
    [
        ("travel.bus", "440304", {"distance_km": "8.0"}, "no_applicable_factor", "every-app"),
        ("ev.charge", "310115", {"kwh": "30"}, "missing_input", "spdb"),  # per yuan only
        # The banks' figures are theirs: another partner's Shanghai or Wuhan events
        # are out of their scope.
        ("ev.charge", "310115", {"amount_cny": "50"}, "no_applicable_methodology", "every-app"),
        ("travel.metro", "420102", {"distance_km": "5"}, "no_applicable_methodology", "navi-maps"),
        (
            "home.electricity",
            "440304",
            {"meter_id": "m", "date": "2026-10-10", "kwh": "6", "household_size": 3},
            "parameter_unset",
            "every-app",
        ),
        ("food.no_cutlery", "440304", {"order_id": "o-1"}, "no_applicable_methodology", "x"),
        (
            "travel.carpool",
            "440304",
            {"distance_km": "9", "passengers": 2},
            "no_applicable_methodology",
            "every-app",
        ),
        (
            "recycle.item",
            "330802",
            {"batch_id": "b", "material": "paper", "kg": "3"},
            "no_applicable_methodology",
            "every-app",
        ),  # Quzhou factors not found: shipped inactive
        (
            "home.pv_generation",
            "440304",
            {
                "meter_id": "pv",
                "period_start": "2026-09-01",
                "period_end": "2026-09-30",
                "kwh": "300",
            },
            "no_applicable_methodology",
            "every-app",
        ),  # the grid-displacement version ships inactive
        # Ant Forest: under 1 yuan, and ticket kinds it publishes no figure for
        (
            "payment.offline_mobile",
            "110105",
            {"transaction_id": "t-2", "amount_cny": "0.99"},
            "no_applicable_factor",
            "ant-forest",
        ),
        (
            "payment.online_ticket",
            "110105",
            {"ticket_id": "k-3", "kind": "flight"},
            "no_applicable_factor",
            "ant-forest",
        ),
        (
            "steps.daily",
            "110105",
            {"date": "2026-10-10", "steps": 9000},
            "no_applicable_methodology",
            "ant-forest",
        ),  # no per-step figure
        (
            "travel.etc_toll",
            "110105",
            {"passage_id": "p", "date": "2026-10-10"},
            "no_applicable_methodology",
            "ant-forest",
        ),  # the "ETC? 23 g" entry is unsure
    ],
)
def test_not_credited_says_why(
    behaviour_type: str, region: str, data: dict[str, Any], reason: str, partner: str
) -> None:
    result = claim(behaviour_type, region, partner=partner, **data)
    assert not result.credited and result.reduction_mg == 0
    assert result.reason == reason


def test_government_methodology_beats_ant_forest_in_shenzhen() -> None:
    # Shenzhen's 46.7 g/person-km x 10 km = 467 g, not Ant Forest's 52 g per ride.
    result = claim("travel.metro", "440304", partner="ant-forest", distance_km="10.0")
    assert result.methodology is not None
    assert (result.methodology.id, result.reduction_mg) == ("shenzhen-public-transport", 467_000)


def test_shared_bike_crediting_starts_2021_09_30_china_time() -> None:
    from datetime import datetime

    from carbonledger.contracts.calendar import CST

    first = claim(
        "travel.bike_share",
        "110105",
        ended=datetime(2021, 9, 30, 0, 10, tzinfo=CST),
        distance_km="3.0",
    )
    before = claim(
        "travel.bike_share",
        "110105",
        ended=datetime(2021, 9, 29, 23, 50, tzinfo=CST),
        distance_km="3.0",
    )
    assert first.credited and not before.credited


def test_inactive_versions_ship_but_are_not_applied() -> None:
    inactive = {m.id for m in SHIPPED if not m.active}
    assert inactive == {
        "hello-enterprise-2022",
        "shared-riding-2024",
        "guangzhou-metro-2017",
        "quzhou-recycling-2022",
        "pv-grid-displacement",
    }
    assert claim("travel.metro", "440106", distance_km="10").reason == "no_applicable_methodology"
    retired = {f"{m.id}@{m.version}" for m in SHIPPED if m not in in_force(SHIPPED) and m.active}
    assert retired == {"hankou-bank-2022@1", "spdb-2022@1", "online-meeting-2021@1"}


def _with(base: str, **update: Any) -> Methodology:
    return next(m for m in SHIPPED if m.id == base).model_copy(update=update)


def test_baseline_minus_project_records_both_sides() -> None:
    from carbonledger.contracts.methodology import FormulaKind

    method = _with(
        "shenzhen-public-transport",
        id="bj-travel",
        region="11",
        formula=FormulaKind.BASELINE_MINUS_PROJECT,
        factors=(
            Factor(
                name="car",
                value="271.8",
                unit="g/km",
                source="t",
                confidence="D",
                role="baseline",
                when={"type": "travel.metro"},
            ),
            Factor(
                name="metro",
                value="61.4",
                unit="g/km",
                source="t",
                confidence="D",
                role="project",
                when={"type": "travel.metro"},
            ),
        ),
    )
    result = claim("travel.metro", "110105", [method], distance_km="22")
    # BE = 271.8 x 22 = 5979.6 g, PE = 61.4 x 22 = 1350.8 g, ER = 4628.8 g
    assert (result.reduction_mg, result.baseline_mg, result.project_mg) == (
        4_628_800,
        5_979_600,
        1_350_800,
    )


def household_method() -> Methodology:
    """The shipped household methodology with B = 3 kWh/person-day and the 南方 grid factor."""
    shipped = next(m for m in SHIPPED if m.id == "shenzhen-household-electricity")
    chosen = {"baseline_kwh_per_person_day": "3", "grid_emission_factor": "0.3869"}
    params = tuple(
        Factor.model_validate({**p.model_dump(), "value": chosen.get(p.name, p.value)})
        for p in shipped.parameters
    )
    return shipped.model_copy(update={"parameters": params})


def test_household_electricity_below_and_above_the_baseline() -> None:
    method = household_method()
    data: dict[str, Any] = {"meter_id": "m-9", "date": "2026-10-10", "household_size": 3}
    below = claim("home.electricity", "440304", [method], kwh="6", **data)
    # BE = 3 kWh x 3 people x 386.9 g = 3482.1 g; PE = 6 x 386.9 = 2321.4 g; ER = 1160.7 g
    assert (below.reduction_mg, below.baseline_mg, below.project_mg) == (
        1_160_700,
        3_482_100,
        2_321_400,
    )
    above = claim("home.electricity", "440304", [method], kwh="12", **data)
    assert above.reason == "needs_household_history"


def test_every_section_7_grid_factor_ships_with_its_source() -> None:
    household = next(m for m in SHIPPED if m.id == "shenzhen-household-electricity")
    values = {p.name: str(p.value) for p in household.parameters if p.value is not None}
    assert values["grid_factor_national_2022"] == "0.5366"
    assert values["grid_factor_south_2022"] == "0.3869"
    assert values["grid_factor_national_2023"] == "0.5306"
    assert len(values) == 9


def test_edited_or_unpublished_versions_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "registry"
    shutil.copytree(REGISTRY_DIR, folder)
    assert len(load_methodologies(folder)) == len(SHIPPED)
    edited = folder / "shenzhen-public-transport@1.yaml"
    edited.write_text(edited.read_text().replace('"46.7"', '"47.6"'))
    with pytest.raises(RegistryError, match="immutable"):
        load_methodologies(folder)
    with pytest.raises(RegistryError, match="already published"):
        publish(edited)
    shutil.copy(REGISTRY_DIR / edited.name, edited)
    draft = folder / "shenzhen-public-transport@2.yaml"
    draft.write_text(edited.read_text().replace('version: "1"', 'version: "2"\nsupersedes: ["1"]'))
    with pytest.raises(RegistryError, match="not published"):
        load_methodologies(folder)
    publish(draft)
    assert {
        m.version for m in load_methodologies(folder) if m.id == "shenzhen-public-transport"
    } == {"1", "2"}
    assert registry_files.LOCK_FILE in {p.name for p in folder.iterdir()}


CREDITABLE = [
    ("travel.metro", "440304", lambda n: {"distance_km": str(n)}),
    ("travel.bus", "440304", lambda n: {"distance_km": str(n), "electric": True}),
    ("travel.ebike_share", "500103", lambda n: {"distance_km": str(n)}),
    ("steps.daily", "420102", lambda n: {"date": "2026-10-10", "steps": int(n * 100)}),
    ("ev.charge", "310115", lambda n: {"amount_cny": str(n)}),
]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(CREDITABLE), st.decimals(min_value="0.01", max_value="99", places=2))
def test_no_shipped_methodology_ever_credits_a_negative_amount(case: Any, n: Any) -> None:
    behaviour_type, region, data = case
    result = claim(behaviour_type, region, **data(n))
    assert result.reduction_mg >= 0
    assert result.credited == (result.reduction_mg > 0)
