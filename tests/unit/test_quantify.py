from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbonledger.contracts import ids
from carbonledger.contracts.methodology import Methodology
from carbonledger.contracts.methodology_files import load_methodologies
from carbonledger.contracts.records import ValidatedBehaviour
from carbonledger.services.quantify.domain.methodology import Unquantified, select
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
