"""Issuer kinds, partner scope, supersedes, the selection order, the ambiguity check
at load, the formula kinds added for the whole catalogue, and caps counted per type.

Every expected amount is computed by hand in the comment next to it."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from carbonledger.contracts.calendar import CST
from carbonledger.contracts.methodology import Methodology, check_registry, in_force
from carbonledger.contracts.methodology_files import RegistryError, load_methodologies, publish
from carbonledger.contracts.records import CapUse, EventRef, ReductionClaim
from carbonledger.services.quantify.domain.methodology import Unquantified, select
from carbonledger.services.quantify.domain.quantify import quantify
from tests.factories import admitted, event, raw
from tests.unit.test_dedupe import stream

REGISTRY_DIR = (
    Path(__file__).resolve().parents[2] / "carbonledger" / "services" / "quantify" / "registry"
)
SHIPPED = load_methodologies(REGISTRY_DIR)
DAY = date(2026, 10, 10)


def method(**fields: Any) -> Methodology:
    """A methodology version built for one test (the shape of a registry file)."""
    base: dict[str, Any] = {
        "id": "test-method",
        "version": "1",
        "title": "Test",
        "title_zh": "测试",
        "issuer": "tests",
        "region": "national",
        "valid_from": "2020-01-01",
        "gases": "CO2",
        "behaviours": ["travel.metro"],
        "formula": "per_unit",
        "factors": [
            {
                "name": "per_ride",
                "value": "10",
                "unit": "gCO2/ride",
                "source": "tests",
                "confidence": "S",
                "when": {"type": "travel.metro"},
            }
        ],
    }
    return Methodology.model_validate({**base, **fields})


def factor(name: str, value: str, unit: str = "gCO2/ride", **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "source": "tests",
        "confidence": "S",
        **more,
    }


def claim_from(
    partner: str,
    behaviour_type: str,
    region: str,
    methodologies: list[Methodology],
    ended: datetime | None = None,
    **data: Any,
) -> ReductionClaim:
    """The claim quantify makes for an event reported by `partner`."""
    behaviour = admitted(raw(event(behaviour_type, region, ended, **data)), "every-app")
    from_partner = behaviour.model_copy(
        update={"event": EventRef(source=partner, id=behaviour.event.id)}
    )
    return quantify(from_partner, methodologies)


# --- scope and selection --------------------------------------------------------


def test_a_partner_methodology_credits_only_its_partners_events() -> None:
    bank = method(
        id="wuhan-bank",
        region="4201",
        issuer_kind="partner",
        partners=["hankou-bank"],
        factors=[factor("per_ride", "80", when={"type": "travel.metro"})],
    )
    own = claim_from("hankou-bank", "travel.metro", "420102", [bank], distance_km="12.5")
    assert own.credited and own.reduction_mg == 80_000  # 80 g per ride, whatever the km
    other = claim_from("navi-maps", "travel.metro", "420102", [bank], distance_km="12.5")
    assert not other.credited and other.reason == "no_applicable_methodology"
    assert "out of partner scope" in (other.reason_detail or "")
    assert "navi-maps" in (other.reason_detail or "")


def test_government_beats_partner_even_when_the_partner_is_more_specific() -> None:
    government = method(id="city-metro", region="44", factors=[factor("per_ride", "30")])
    partner = method(
        id="app-metro",
        region="440305",
        issuer_kind="partner",
        partners=["navi-maps"],
        factors=[factor("per_ride", "52")],
    )
    chosen = select([partner, government], "travel.metro", "440305", DAY, "navi-maps")
    assert isinstance(chosen, Methodology) and chosen.id == "city-metro"
    standard = method(id="national-standard", issuer_kind="standard")
    chosen = select([partner, standard], "travel.metro", "440305", DAY, "navi-maps")
    assert isinstance(chosen, Methodology) and chosen.id == "national-standard"
    # Where no public methodology applies, the partner's own figures do.
    chosen = select([partner, government], "travel.metro", "110105", DAY, "navi-maps")
    assert isinstance(chosen, Unquantified)
    chosen = select([partner], "travel.metro", "440305", DAY, "navi-maps")
    assert isinstance(chosen, Methodology) and chosen.id == "app-metro"


def test_within_a_kind_the_most_specific_region_wins() -> None:
    national = method(id="national-metro", issuer_kind="standard")
    city = method(id="city-metro", region="4403")
    chosen = select([national, city], "travel.metro", "440305", DAY, "any")
    assert isinstance(chosen, Methodology) and chosen.id == "city-metro"
    app = method(id="app", issuer_kind="partner", partners=["a"])
    app_city = method(id="app-city", region="4403", issuer_kind="partner", partners=["a"])
    chosen = select([app, app_city], "travel.metro", "440305", DAY, "a")
    assert isinstance(chosen, Methodology) and chosen.id == "app-city"


def test_supersedes_retires_an_earlier_version_without_editing_it() -> None:
    old = method(id="bank", region="4201")
    new = method(
        id="bank",
        version="2",
        region="4201",
        issuer_kind="partner",
        partners=["hankou-bank"],
        supersedes=["1"],
    )
    assert in_force([old, new]) == [new]
    # The old government-kind version would otherwise win for every partner.
    chosen = select([old, new], "travel.metro", "420102", DAY, "navi-maps")
    assert isinstance(chosen, Unquantified)
    chosen = select([old, new], "travel.metro", "420102", DAY, "hankou-bank")
    assert isinstance(chosen, Methodology) and chosen.version == "2"
    with pytest.raises(ValueError, match="not in the registry"):
        check_registry([method(id="bank", version="3", supersedes=["9"])])


def test_a_partner_methodology_must_name_its_partners() -> None:
    with pytest.raises(ValueError, match="lists the partner ids"):
        method(issuer_kind="partner")
    with pytest.raises(ValueError, match="partners is for issuer_kind partner"):
        method(partners=["hankou-bank"])
    assert method().issuer_kind.value == "government"  # the default of the old files


def test_every_file_published_before_scopes_still_loads_unchanged() -> None:
    # The published checksums are of the original bytes: loading them proves both.
    old = {
        "chongqing-ebike-2023@1.yaml",
        "guangzhou-metro-2017@1.yaml",
        "hankou-bank-2022@1.yaml",
        "hello-enterprise-2022@1.yaml",
        "online-meeting-2021@1.yaml",
        "quzhou-recycling-2022@1.yaml",
        "shared-riding-2021@1.yaml",
        "shared-riding-2024@1.yaml",
        "shenzhen-household-electricity@1.yaml",
        "shenzhen-public-transport@1.yaml",
        "spdb-2022@1.yaml",
    }
    loaded = {f"{m.id}@{m.version}.yaml": m for m in SHIPPED}
    assert old <= set(loaded)
    assert all(loaded[name].issuer_kind.value == "government" for name in old)
    assert all(not loaded[name].partners and not loaded[name].supersedes for name in old)


# --- the ambiguity check ----------------------------------------------------------


def _copy_with(tmp_path: Path, document: dict[str, Any]) -> Path:
    folder = tmp_path / "registry"
    shutil.copytree(REGISTRY_DIR, folder)
    path = folder / f"{document['id']}@{document['version']}.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def _shenzhen_twin(**update: Any) -> dict[str, Any]:
    text = (REGISTRY_DIR / "shenzhen-public-transport@1.yaml").read_text(encoding="utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    return {**document, "id": "shenzhen-twin", **update}


def test_an_ambiguous_registry_is_refused_at_publish_and_at_load(tmp_path: Path) -> None:
    path = _copy_with(tmp_path, _shenzhen_twin())
    with pytest.raises(RegistryError, match="cannot be published") as refused:
        publish(path)
    message = str(refused.value)
    assert "shenzhen-public-transport@1 and shenzhen-twin@1 are ambiguous" in message
    assert "travel.bus, travel.metro" in message and "region 4403" in message
    # Forced into the lock file by hand, the folder still does not load.
    from carbonledger.contracts.methodology_files import LOCK_FILE, digest

    with (path.parent / LOCK_FILE).open("a", encoding="utf-8") as fh:
        fh.write(f"{digest(path)}  {path.name}\n")
    with pytest.raises(RegistryError, match="are ambiguous"):
        load_methodologies(path.parent)


@pytest.mark.parametrize(
    "update",
    [
        {"region": "440305"},  # a more specific prefix wins: no tie
        {"valid_from": date(2019, 1, 1), "valid_to": date(2020, 12, 31)},  # periods apart
        {"behaviours": ["travel.bike_share"], "factors": []},  # no common type
        {"active": False},
        {"issuer_kind": "partner", "partners": ["navi-maps"]},  # government wins
    ],
)
def test_the_ambiguity_check_is_exact(tmp_path: Path, update: dict[str, Any]) -> None:
    path = _copy_with(tmp_path, _shenzhen_twin(**update))
    publish(path)
    assert len(load_methodologies(path.parent)) == len(SHIPPED) + 1


def test_partner_scopes_that_do_not_meet_are_not_ambiguous() -> None:
    a = method(id="a", issuer_kind="partner", partners=["p1", "p2"])
    b = method(id="b", issuer_kind="partner", partners=["p3"])
    check_registry([a, b])
    c = method(id="c", issuer_kind="partner", partners=["p2"])
    with pytest.raises(ValueError, match="ambiguous"):
        check_registry([a, b, c])
    # Government and standard share a precedence: equal scope is a tie.
    with pytest.raises(ValueError, match="ambiguous"):
        check_registry([method(id="g"), method(id="s", issuer_kind="standard")])


def test_the_shipped_registry_is_unambiguous() -> None:
    check_registry(SHIPPED)


# --- formula kinds ----------------------------------------------------------------


def meeting_method() -> Methodology:
    return method(
        behaviours=["meeting.online"],
        formula="per_event_share",
        gases="CO2e",
        factors=[
            factor(
                "per_meeting",
                "27932",
                "gCO2e/meeting",
                when={"type": "meeting.online"},
                shared_by="participants",
            )
        ],
    )


@pytest.mark.parametrize(
    ("participants", "mg"),
    [
        (None, 27_932_000),  # absent = 1: 27,932 g = 27,932,000 mg
        (1, 27_932_000),
        (3, 9_310_666),  # 27,932,000 mg / 3 = 9,310,666.67 -> rounded down
        (5, 5_586_400),  # 27,932,000 / 5 = 5,586,400 exactly
        (7, 3_990_285),  # 27,932,000 / 7 = 3,990,285.71 -> 3,990,285
    ],
)
def test_per_event_share_divides_the_meeting_among_its_participants(
    participants: int | None, mg: int
) -> None:
    data: dict[str, Any] = {"meeting_id": "m-1"}
    if participants is not None:
        data["participants"] = participants
    result = claim_from("online-meetings", "meeting.online", "110105", [meeting_method()], **data)
    assert result.credited and result.reduction_mg == mg
    assert result.formula == "per_event_share"
    assert result.inputs["participants"] == str(participants or 1)
    # Every participant reporting: the shares sum to at most the published figure.
    assert mg * (participants or 1) <= 27_932_000


GRID = {
    "source": "tests: the regional grid division",
    "regions": [
        {"name": "north_china", "name_zh": "华北", "prefixes": ["11", "15"]},
        {"name": "northeast", "name_zh": "东北", "prefixes": ["21", "1504"]},
        {"name": "south", "name_zh": "南方", "prefixes": ["44"]},
    ],
}


def grid_method() -> Methodology:
    def grid_factor(grid: str, value: str) -> dict[str, Any]:
        return factor(f"grid_{grid}", value, "kgCO2/kWh", when={"grid": grid}, per="kwh")

    return method(
        behaviours=["ev.charge"],
        formula="per_kwh_grid",
        grid=GRID,
        factors=[
            grid_factor("north_china", "0.6776"),
            grid_factor("northeast", "0.5564"),
            grid_factor("south", "0.3869"),
        ],
    )


@pytest.mark.parametrize(
    ("region", "grid", "mg"),
    [
        ("440304", "south", 38_690_000),  # 100 kWh x 0.3869 kg = 38.69 kg = 38,690,000 mg
        ("110105", "north_china", 67_760_000),  # 100 x 0.6776 kg = 67.76 kg
        ("150402", "northeast", 55_640_000),  # Chifeng: the city prefix 1504 beats 15
        ("150102", "north_china", 67_760_000),  # Hohhot: Inner Mongolia's own prefix
    ],
)
def test_per_kwh_grid_takes_the_factor_of_the_events_grid(region: str, grid: str, mg: int) -> None:
    result = claim_from("charge-net", "ev.charge", region, [grid_method()], kwh="100")
    assert result.credited and result.reduction_mg == mg
    assert result.inputs == {"kwh": "100", "grid": grid}
    (used,) = result.factors
    assert used.name == f"grid_{grid}" and used.unit == "kgCO2/kWh" and used.source == "tests"


def test_per_kwh_grid_outside_every_grid_is_not_credited() -> None:
    result = claim_from("charge-net", "ev.charge", "310115", [grid_method()], kwh="100")
    assert not result.credited and result.reason == "no_applicable_factor"
    assert "310115" in (result.reason_detail or "")


def test_a_grid_factor_must_be_in_kg_per_kwh_and_name_a_grid() -> None:
    bad_unit = factor("g", "536.6", "gCO2/kWh", when={"grid": "south"}, per="kwh")
    with pytest.raises(ValueError, match="kgCO2/kWh"):
        method(behaviours=["ev.charge"], formula="per_kwh_grid", grid=GRID, factors=[bad_unit])
    no_grid = factor("g", "0.5", "kgCO2/kWh", when={"grid": "mars"}, per="kwh")
    with pytest.raises(ValueError, match="names one of the grids"):
        method(behaviours=["ev.charge"], formula="per_kwh_grid", grid=GRID, factors=[no_grid])


def recycling_method(*materials: tuple[str, str]) -> Methodology:
    return method(
        behaviours=["recycle.item"],
        formula="by_choice",
        choice="material",
        factors=[
            factor(f"per_kg_{m}", v, "gCO2/kg", when={"material": m}, per="kg")
            for m, v in materials
        ],
    )


def test_by_choice_takes_the_factor_of_the_chosen_value() -> None:
    recycling = recycling_method(("paper", "500"), ("metal", "2500"))
    data: dict[str, Any] = {"batch_id": "b-1", "kg": "3.5"}
    paper = claim_from("recycle-station", "recycle.item", "330802", [recycling], **data,
                       material="paper")  # fmt: skip
    assert paper.reduction_mg == 1_750_000  # 3.5 kg x 500 g/kg = 1,750 g
    assert paper.inputs == {"kg": "3.5", "material": "paper"}
    metal = claim_from("recycle-station", "recycle.item", "330802", [recycling], **data,
                       material="metal")  # fmt: skip
    assert metal.reduction_mg == 8_750_000  # 3.5 x 2,500 = 8,750 g
    glass = claim_from("recycle-station", "recycle.item", "330802", [recycling], **data,
                       material="glass")  # fmt: skip
    assert not glass.credited and glass.reason == "no_applicable_factor"
    assert "material = glass" in (glass.reason_detail or "")


def test_by_choice_refuses_a_value_the_catalogue_field_does_not_offer() -> None:
    with pytest.raises(ValueError, match=r"'wood' is not a choice of recycle\.item\.material"):
        recycling_method(("wood", "100"))
    with pytest.raises(ValueError, match="names its choice field"):
        method(behaviours=["recycle.item"], formula="by_choice", factors=[])


def test_a_methodology_for_an_unknown_or_engagement_type_is_refused() -> None:
    with pytest.raises(ValueError, match=r"not in the catalogue: travel\.teleport"):
        method(behaviours=["travel.teleport"], factors=[])
    with pytest.raises(ValueError, match="engagement types are never quantified"):
        method(behaviours=["engage.sign_in"], factors=[])


def test_a_condition_on_a_field_the_type_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match="has no field 'colour'"):
        method(factors=[factor("per_ride", "10", when={"type": "travel.metro", "colour": "red"})])


def test_baseline_minus_project_per_quantity() -> None:
    charging = method(
        behaviours=["ev.charge"],
        formula="baseline_minus_project",
        factors=[
            factor("petrol", "250", "gCO2/kWh-equivalent", role="baseline", per="kwh"),
            factor("grid", "100", "gCO2/kWh", role="project", per="kwh"),
        ],
    )
    result = claim_from("charge-net", "ev.charge", "310115", [charging], kwh="12.5")
    # BE = 250 x 12.5 = 3,125 g; PE = 100 x 12.5 = 1,250 g; ER = 1,875 g
    assert (result.reduction_mg, result.baseline_mg, result.project_mg) == (
        1_875_000,
        3_125_000,
        1_250_000,
    )
    assert result.inputs == {"kwh": "12.5"}
    missing = claim_from("charge-net", "ev.charge", "310115", [charging], amount_cny="30")
    assert missing.reason == "missing_input"


def test_baseline_and_project_must_count_one_quantity() -> None:
    with pytest.raises(ValueError, match="count one field"):
        method(
            behaviours=["ev.charge"],
            formula="baseline_minus_project",
            factors=[
                factor("petrol", "250", "g", role="baseline", per="kwh"),
                factor("grid", "100", "g", role="project"),
            ],
        )


def test_at_least_narrows_a_factor_to_large_enough_events() -> None:
    utility = method(
        behaviours=["payment.utility_online"],
        factors=[factor("per_bill", "262", at_least={"amount_cny": "1"})],
    )
    paid = claim_from("green-bank", "payment.utility_online", "420102", [utility],
                      bill_id="b-1", amount_cny="1.00")  # fmt: skip
    assert paid.reduction_mg == 262_000
    small = claim_from("green-bank", "payment.utility_online", "420102", [utility],
                       bill_id="b-2", amount_cny="0.99")  # fmt: skip
    assert small.reason == "no_applicable_factor"


# --- caps ----------------------------------------------------------------------


def rides(partner: str, methodologies: list[Methodology], count: int, **data: Any) -> list[Any]:
    """`count` metro rides of one person on 2026-10-10, an hour apart."""
    return [
        claim_from(
            partner,
            "travel.metro",
            "110105",
            methodologies,
            ended=datetime(2026, 10, 10, 7 + n, 0, tzinfo=CST),
            distance_km="5",
            **data,
        )
        for n in range(count)
    ]


def test_a_cap_by_event_count_per_type() -> None:
    capped = method(
        behaviours=["travel.metro", "travel.bus"],
        factors=[
            factor("metro", "52", when={"type": "travel.metro"}),
            factor("bus", "80", when={"type": "travel.bus"}),
        ],
        caps=[
            {
                "behaviours": ["travel.metro", "travel.bus"],
                "period": "day",
                "max_events": 2,
                "per_type": True,
            }
        ],
    )
    buses = [
        claim_from("navi-maps", "travel.bus", "110105", [capped],
                   ended=datetime(2026, 10, 10, 12 + n, 0, tzinfo=CST), distance_km="3")
        for n in range(3)
    ]  # fmt: skip
    net, _ = stream([*rides("navi-maps", [capped], 3), *buses])
    # Two of each type a day: 2 x 52 g + 2 x 80 g = 264 g
    assert sum(net.values()) == 264_000
    together = capped.model_copy(
        update={"caps": tuple(c.model_copy(update={"per_type": False}) for c in capped.caps)}
    )
    net, _ = stream(rides("navi-maps", [together], 3))
    assert sum(net.values()) == 104_000  # 2 rides of the three: 2 x 52 g


def test_claims_made_before_per_type_still_decode() -> None:
    old = CapUse.model_validate({"key": "hankou-bank-2022#0", "period": "day", "max_mg": 1})
    assert old.per_type is False


def test_a_cap_counting_a_global_key_type_is_refused() -> None:
    # recycle.item's batch is one thing whoever reports it: decided per key, not person.
    with pytest.raises(ValueError, match="global-key types"):
        method(
            behaviours=["recycle.item"],
            formula="by_choice",
            choice="material",
            factors=[factor("paper", "500", "gCO2/kg", when={"material": "paper"}, per="kg")],
            caps=[{"behaviours": ["recycle.item"], "period": "day", "max_events": 1}],
        )


def test_a_cap_must_limit_something_it_covers() -> None:
    with pytest.raises(ValueError, match="does not cover"):
        method(caps=[{"behaviours": ["travel.bus"], "period": "day", "max_events": 1}])
    with pytest.raises(ValueError, match="limits nothing"):
        method(caps=[{"behaviours": ["travel.metro"], "period": "day"}])


# --- the shipped registry -------------------------------------------------------


def test_ant_forest_credits_at_most_five_metro_rides_a_day() -> None:
    six = rides("ant-forest", SHIPPED, 6)
    assert [c.reduction_mg for c in six] == [52_000] * 6
    assert {c.caps[0].key for c in six} == {"ant-forest#0"}
    net, decisions = stream(six)
    assert sum(net.values()) == 260_000  # 5 x 52 g, not 6 x 52 = 312 g
    assert any("at most 5 events per person per day" in (d.reason_detail or "") for d in decisions)
    # The next day counts afresh: one more ride is credited.
    next_day = datetime(2026, 10, 11, 8, 0, tzinfo=CST)
    seventh = claim_from(
        "ant-forest", "travel.metro", "110105", SHIPPED, ended=next_day, distance_km="5"
    )
    net, _ = stream([*six, seventh])
    assert sum(net.values()) == 312_000  # 260 g + 52 g


def test_hankou_bank_figures_credit_only_hankou_banks_wuhan_rides() -> None:
    own = claim_from("hankou-bank", "travel.metro", "420102", SHIPPED, distance_km="12.5")
    assert own.methodology is not None
    assert (own.methodology.id, own.methodology.version) == ("hankou-bank-2022", "2")
    assert own.reduction_mg == 80_000  # 80 g per ride
    for other in ("green-bank", "navi-maps", "shenzhen-metro"):
        theirs = claim_from(other, "travel.metro", "420102", SHIPPED, distance_km="12.5")
        assert not theirs.credited and theirs.reason == "no_applicable_methodology"
        assert "out of partner scope" in (theirs.reason_detail or "")


def test_spdb_figures_credit_only_spdbs_shanghai_bus_rides() -> None:
    own = claim_from("spdb", "travel.bus", "310115", SHIPPED, distance_km="6.0")
    assert own.reduction_mg == 1_022_000  # 1022 g per ride
    other = claim_from("navi-maps", "travel.bus", "310115", SHIPPED, distance_km="6.0")
    assert not other.credited


def test_one_meeting_reported_by_all_five_participants_sums_to_the_published_figure() -> None:
    reports = [
        claim_from(
            "online-meetings",
            "meeting.online",
            "110105",
            SHIPPED,
            ended=datetime(2026, 10, 10, 9, n, tzinfo=CST),
            meeting_id="m-5",
            participants=5,
        )
        for n in range(5)
    ]
    # 27,932 g / 5 = 5,586.4 g each; 5 x 5,586.4 = 27,932 g (was 5 x 27,932 g)
    assert [r.reduction_mg for r in reports] == [5_586_400] * 5
    assert {r.methodology.version for r in reports if r.methodology} == {"2"}


def shipped_pv(active: bool = True) -> Methodology:
    shipped = next(m for m in SHIPPED if m.id == "pv-grid-displacement")
    return shipped.model_copy(update={"active": active})


@pytest.mark.parametrize(
    ("region", "grid", "factor_value", "mg"),
    [
        ("440304", "south", "0.3869", 116_070_000),  # 300 kWh x 0.3869 kg = 116.07 kg
        ("110105", "north_china", "0.6776", 203_280_000),  # 300 x 0.6776 = 203.28 kg
        ("310115", "east_china", "0.5617", 168_510_000),  # 300 x 0.5617 = 168.51 kg
        ("420102", "central_china", "0.5395", 161_850_000),  # 300 x 0.5395 = 161.85 kg
        ("210102", "northeast", "0.5564", 166_920_000),  # 300 x 0.5564 = 166.92 kg
        ("150402", "northeast", "0.5564", 166_920_000),  # 赤峰 is on the 东北 grid (蒙东)
        ("150102", "north_china", "0.6776", 203_280_000),  # 呼和浩特: 蒙西, 华北
        ("610102", "northwest", "0.5857", 175_710_000),  # 300 x 0.5857 = 175.71 kg
        ("510104", "southwest", "0.2268", 68_040_000),  # 300 x 0.2268 = 68.04 kg
    ],
)
def test_the_shipped_grid_table_once_an_operator_activates_it(
    region: str, grid: str, factor_value: str, mg: int
) -> None:
    data: dict[str, Any] = {
        "meter_id": "pv-1",
        "period_start": "2026-09-01",
        "period_end": "2026-09-30",
    }
    result = claim_from("power-utility", "home.pv_generation", region, [shipped_pv()], kwh="300",
                        **data)  # fmt: skip
    assert result.credited and result.reduction_mg == mg
    assert result.inputs == {"kwh": "300", "grid": grid}
    (used,) = result.factors
    assert str(used.value) == factor_value and used.name == f"grid_factor_{grid}_2022"
    assert "MEE/NBS 2022" in used.source and used.confidence == "S"


def test_every_province_is_on_exactly_one_grid() -> None:
    grid = shipped_pv().grid
    assert grid is not None
    provinces = {
        "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36",
        "37", "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62",
        "63", "64", "65",
    }  # fmt: skip
    assert all(grid.grid_of(p + "0102") is not None for p in provinces)
    assert grid.grid_of("810000") is None  # Hong Kong: on none of the mainland grids
    assert "regional" in grid.source


def test_a_new_version_overlapping_the_old_one_must_supersede_it() -> None:
    old = method(id="city")
    with pytest.raises(ValueError, match="city@1 and city@2 are ambiguous"):
        check_registry([old, method(id="city", version="2", valid_from="2025-01-01")])
    # A hand-over from a date: the old factors anew up to the day before, superseding
    # the open-ended version, and the new factors from the date.
    until = method(id="city", version="2", valid_to="2024-12-31", supersedes=["1"])
    after = method(id="city", version="3", valid_from="2025-01-01",
                   factors=[factor("per_ride", "12", when={"type": "travel.metro"})])  # fmt: skip
    check_registry([old, until, after])
    before = select([old, until, after], "travel.metro", "110105", date(2024, 12, 31), "p")
    later = select([old, until, after], "travel.metro", "110105", date(2025, 1, 1), "p")
    assert isinstance(before, Methodology) and before.version == "2"
    assert isinstance(later, Methodology) and later.version == "3"
