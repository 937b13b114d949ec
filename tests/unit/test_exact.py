from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from carbonledger.contracts.exact import ExactDecimal, grams_to_mg_floor, loads_exact, mg_to_display


class Holder(BaseModel):
    value: ExactDecimal


def test_json_numbers_become_decimals_digit_for_digit() -> None:
    doc = loads_exact('{"distance_km": 10.4, "long": 0.1000000000000000055511151231257827}')
    assert doc["distance_km"] == Decimal("10.4")
    assert doc["long"] == Decimal("0.1000000000000000055511151231257827")


@pytest.mark.parametrize("text", ['{"x": NaN}', '{"x": Infinity}', '{"x": -Infinity}'])
def test_non_finite_json_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        loads_exact(text)


def test_models_refuse_binary_floats() -> None:
    with pytest.raises(ValidationError, match="binary floats"):
        Holder(value=10.4)
    assert Holder(value="10.4").value == Decimal("10.4")
    assert Holder.model_validate_json(Holder(value="46.7").model_dump_json()).value == Decimal(
        "46.7"
    )


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_no_float_is_ever_accepted(value: float) -> None:
    with pytest.raises(ValidationError):
        Holder(value=value)


@pytest.mark.parametrize(
    ("grams", "mg"),
    [
        ("467.0", 467000),
        ("0.0009999", 0),
        ("1.2345678", 1234),
        ("-0.0001", -1),
    ],
)
def test_grams_round_down_to_whole_milligrams(grams: str, mg: int) -> None:
    assert grams_to_mg_floor(Decimal(grams)) == mg


def test_display_in_kilograms_keeps_every_digit() -> None:
    assert mg_to_display(467000) == "0.467000"
    assert mg_to_display(2442283910) == "2442.283910"
