"""Exact numbers: JSON quantities become Decimals without ever passing through a float."""

from __future__ import annotations

import json
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer


class NotExactError(ValueError):
    """A quantity arrived as a binary float or a non-finite number."""


def _reject_constant(name: str) -> Any:
    raise NotExactError(f"{name} is not a number this system accepts")


def loads_exact(text: str | bytes) -> Any:
    """Parse JSON with every fractional number as a Decimal taken from its digits."""
    return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool | float):
        raise NotExactError("binary floats are refused; send the number as JSON text")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        try:
            result = Decimal(value)
        except InvalidOperation as exc:
            raise NotExactError(f"{value!r} is not a decimal number") from exc
    else:
        raise NotExactError(f"{type(value).__name__} is not a decimal number")
    if not result.is_finite():
        raise NotExactError("non-finite numbers are refused")
    return result


ExactDecimal = Annotated[
    Decimal,
    BeforeValidator(_to_decimal),
    PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json"),
]
"""A Decimal field that refuses floats and serialises as a plain decimal string."""

MG_PER_G = Decimal(1000)


def grams_to_mg_floor(grams: Decimal) -> int:
    """Round a reduction in grams down to whole milligrams (conservativeness)."""
    return int((grams * MG_PER_G).to_integral_value(rounding=ROUND_FLOOR))


def mg_to_display(mg: int) -> str:
    """Milligrams as a kilogram string with all digits kept, e.g. 467000 -> '0.467000'."""
    return format(Decimal(mg).scaleb(-6), "f")


def mg_to_tonnes(mg: int) -> str:
    """Milligrams as a tonne string with all digits kept, e.g. 467000 -> '0.000467000'."""
    return format(Decimal(mg).scaleb(-9), "f")
