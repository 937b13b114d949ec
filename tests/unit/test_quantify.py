from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbonledger.contracts import ids
from carbonledger.contracts.methodology import Methodology
from carbonledger.contracts.methodology_files import load_methodologies
from carbonledger.contracts.records import ReductionClaim, ValidatedBehaviour
from carbonledger.services.quantify.domain.methodology import (
    Selection,
    Unquantified,
    select,
    selection,
)
from carbonledger.services.quantify.domain.quantify import quantify
from tests.factories import admitted, metro, raw

REGISTRY_DIR = (
    Path(__file__).resolve().parents[2] / "carbonledger" / "services" / "quantify" / "registry"
)
SHIPPED = load_methodologies(REGISTRY_DIR)


def behaviour(**overrides: Any) -> ValidatedBehaviour:
    return admitted(raw(metro(**overrides)), "shenzhen-metro")


def test_shenzhen_metro_ten_km_is_467_grams_with_provenance() -> None:
    claim = quantify(behaviour(), SHIPPED)
    assert claim.credited and claim.reduction_mg == 467_000
    assert claim.methodology is not None
    assert (claim.methodology.id, claim.methodology.version) == ("shenzhen-public-transport", "1")
    assert claim.inputs == {"distance_km": "10.0"}
    (factor,) = claim.factors
    assert (str(factor.value), factor.unit, factor.confidence) == ("46.7", "gCO2/person-km", "S")
    assert "深圳商报" in factor.source
    assert claim.claim_id == ids.claim_id(claim.event_id, "shenzhen-public-transport", "1")


@pytest.mark.parametrize(
    ("km", "mg"), [("0.1", 4670), ("12.345", 576511), ("0.001", 46), ("199.999", 9339953)]
)
def test_result_is_rounded_down_to_the_milligram(km: str, mg: int) -> None:
    # 46.7 g * 12.345 km = 576.5115 g -> 576511 mg; 46.7 * 0.001 = 0.0467 g -> 46 mg
    assert quantify(behaviour(data_distance_km=km), SHIPPED).reduction_mg == mg


def test_outside_shenzhen_is_not_credited_and_says_why() -> None:
    claim = quantify(behaviour(data_region="110105"), SHIPPED)
    assert not claim.credited and claim.reduction_mg == 0
    assert claim.reason == "no_applicable_methodology"
    assert "110105" in (claim.reason_detail or "")


def test_crediting_period_uses_china_standard_time() -> None:
    # 2020-12-31T16:30Z is already 2021-01-01 in Shenzhen: inside the crediting period.
    inside = behaviour(
        time="2020-12-31T16:30:00Z",
        data_started_at="2020-12-31T16:00:00Z",
        data_ended_at="2020-12-31T16:30:00Z",
    )
    before = behaviour(
        time="2020-12-31T15:30:00Z",
        data_started_at="2020-12-31T15:00:00Z",
        data_ended_at="2020-12-31T15:30:00Z",
    )
    assert quantify(inside, SHIPPED).credited
    assert quantify(before, SHIPPED).reason == "no_applicable_methodology"


def test_most_specific_region_prefix_wins() -> None:
    shenzhen = next(m for m in SHIPPED if m.id == "shenzhen-public-transport")
    national = shenzhen.model_copy(update={"id": "national-metro", "region": "national"})
    district = shenzhen.model_copy(update={"id": "nanshan-metro", "region": "440305"})
    chosen = select(
        [national, shenzhen, district],
        "travel.metro",
        "440305",
        date(2026, 10, 10),
        "shenzhen-metro",
    )
    assert isinstance(chosen, Methodology) and chosen.id == "nanshan-metro"
    chosen = select(
        [national, shenzhen, district],
        "travel.metro",
        "440303",
        date(2026, 10, 10),
        "shenzhen-metro",
    )
    assert isinstance(chosen, Methodology) and chosen.id == "shenzhen-public-transport"
    chosen = select(
        [national, shenzhen], "travel.metro", "110105", date(2026, 10, 10), "shenzhen-metro"
    )
    assert isinstance(chosen, Methodology) and chosen.id == "national-metro"


def test_inactive_methodology_is_never_selected() -> None:
    shenzhen = next(m for m in SHIPPED if m.id == "shenzhen-public-transport")
    retired = shenzhen.model_copy(update={"active": False})
    chosen = select([retired], "travel.metro", "440305", date(2026, 10, 10), "shenzhen-metro")
    assert isinstance(chosen, Unquantified)


@given(
    st.decimals(min_value="0.001", max_value="200", places=3),
    st.decimals(min_value="0.001", max_value="200", places=3),
)
def test_per_distance_is_monotone_and_never_negative(a: object, b: object) -> None:
    low, high = sorted([a, b])  # type: ignore[type-var]
    claim_low = quantify(behaviour(data_distance_km=str(low)), SHIPPED)
    claim_high = quantify(behaviour(data_distance_km=str(high)), SHIPPED)
    assert 0 <= claim_low.reduction_mg <= claim_high.reduction_mg


def every_shipped_case() -> list[ValidatedBehaviour]:
    """Behaviours credited, outside every region, before every crediting period."""
    before = {
        "time": "2010-01-01T08:00:00+08:00",
        "data_started_at": "2010-01-01T07:40:00+08:00",
        "data_ended_at": "2010-01-01T08:00:00+08:00",
    }
    return [
        behaviour(),
        behaviour(data_region="110105"),
        behaviour(data_distance_km="0.001"),
        behaviour(**before),
    ]


def test_a_selection_chooses_and_claims_as_the_plain_list_does() -> None:
    registry = Selection(SHIPPED)
    assert list(registry) == list(SHIPPED) and len(registry) == len(SHIPPED)
    for case in every_shipped_case():
        for _ in range(2):  # the second time from what it remembered
            made = quantify(case, registry)
            assert made == quantify(case, list(SHIPPED))
            assert made.to_bytes() == quantify(case, list(SHIPPED)).to_bytes()
    day = date(2026, 10, 10)
    assert registry.select("travel.metro", "440305", day, "shenzhen-metro") is registry.select(
        "travel.metro", "440305", day, "shenzhen-metro"
    )
    assert selection(registry) is registry


def test_a_claim_round_trips_through_its_bytes() -> None:
    # What it carries is read off the behaviour, not dumped and parsed: still the same.
    for case in every_shipped_case():
        made = quantify(case, SHIPPED)
        assert made == ReductionClaim.model_validate_json(made.to_bytes())
        assert made.to_bytes() == ReductionClaim.model_validate_json(made.to_bytes()).to_bytes()


def test_carried_data_is_the_json_form_whatever_the_behaviour_holds() -> None:
    # From ingest directly (settle): Decimals; from the topic: text. The claim's data
    # is the JSON form either way.
    direct = behaviour()
    from_topic = ValidatedBehaviour.model_validate_json(direct.to_bytes())
    assert direct.data != from_topic.data  # a Decimal and its text
    assert quantify(direct, SHIPPED).data == quantify(from_topic, SHIPPED).data
    assert quantify(direct, SHIPPED).to_bytes() == quantify(from_topic, SHIPPED).to_bytes()
