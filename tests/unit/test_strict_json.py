"""Partner JSON read within bounds, and the calendar safe at its edges."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from carbonledger.contracts import bounds
from carbonledger.contracts.calendar import local_date
from carbonledger.contracts.exact import NotExactError
from carbonledger.contracts.strict_json import (
    MAX_DEPTH,
    DuplicateKeyError,
    TooDeepError,
    loads_strict,
    nesting_depth,
    value_end,
)


def nested(depth: int) -> str:
    return '{"a": ' * (depth - 1) + "[]" + "}" * (depth - 1)


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ("[]", 1),
        ('{"a": [{"b": []}]}', 4),
        ('{"a": "[[[[{{{{"}', 1),  # brackets inside strings do not nest
        ('{"a": "\\"[[[["}', 1),  # nor after an escaped quote
        (nested(40), 40),
    ],
)
def test_nesting_depth_counts_brackets_outside_strings(text: str, depth: int) -> None:
    assert nesting_depth(text) == depth


def test_depth_is_refused_before_parsing_and_the_limit_itself_is_allowed() -> None:
    assert loads_strict(nested(MAX_DEPTH))
    with pytest.raises(TooDeepError):
        loads_strict(nested(MAX_DEPTH + 1))
    started = time.perf_counter()
    with pytest.raises(TooDeepError):  # the parser would hit its recursion limit
        loads_strict("[" * 500_000 + "]" * 500_000)
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    "text",
    [
        '{"distance_km": 12.5, "distance_km": 199.9}',
        '{"a": 1, "data": {"k": 1, "k": 1}}',
        '[{"x": 1}, {"y": 2, "y": 3}]',
    ],
)
def test_duplicate_keys_anywhere_are_refused(text: str) -> None:
    with pytest.raises(DuplicateKeyError):
        loads_strict(text)


def test_quantities_are_exact_and_constants_refused() -> None:
    assert loads_strict('{"d": 10.40, "e": 1e-999999999}') == {
        "d": Decimal("10.40"),
        "e": Decimal("1e-999999999"),  # parsed, not expanded: bounds refuse it later
    }
    for constant in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(NotExactError):
            loads_strict(f'{{"d": {constant}}}')


@pytest.mark.parametrize(
    ("text", "end"),
    [
        ('{"a": [1, "x]}\\""]} , 2', 19),
        ("[[[]]]]", 6),
        ('"ab\\"c", 1', 7),
        ("12.5e3 ]", 6),
        ("[" * 100_000 + "]" * 100_000 + ", {}", 200_000),
    ],
)
def test_value_end_delimits_a_value_without_parsing_it(text: str, end: int) -> None:
    assert value_end(text, 0) == end


@pytest.mark.parametrize("text", ['{"a": "unterminated}', "[[[", ",", '["a", "b"'])
def test_value_end_refuses_what_never_ends(text: str) -> None:
    with pytest.raises(ValueError):
        value_end(text, 0)


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("trip-1", None),
        ("行程-1", None),
        ("a\x00b", "U+0000"),
        ("a\x1fb", "U+001F"),
        ("a\x7f", "U+007F"),
        ("\x85", "U+0085"),
        ("a\u2028b", "U+2028"),
        ("a\ud800", "U+D800"),
    ],
)
def test_text_faults_name_the_character(text: str, fault: str | None) -> None:
    found = bounds.text_fault(text)
    assert (found is None) if fault is None else (found is not None and fault in found)
    assert json.dumps(bounds.escaped(text), ensure_ascii=False).encode()  # always encodable


@pytest.mark.parametrize(
    ("number", "ok"),
    [
        ("10.4", True),
        ("0.00000000000000000001", True),  # 20 places
        ("12345678901234567890", True),  # 20 digits
        ("1E-999999999", False),
        ("1E-999999", False),
        ("0E-30", False),
        ("1E+999999999", False),
        ("123456789012345678901", False),
    ],
)
def test_decimals_are_bounded_in_places_digits_and_exponent(number: str, ok: bool) -> None:
    assert (bounds.decimal_fault(Decimal(number)) is None) == ok


@pytest.mark.parametrize(
    ("moment", "ok"),
    [
        ("2026-10-10T08:30:00+08:00", True),
        ("2000-01-01T00:00:00+00:00", True),
        ("2000-01-01T13:59:59+14:00", False),  # 1999 in UTC
        ("1999-12-31T23:00:00-12:00", True),  # 2000 in UTC
        ("0001-01-01T00:00:00+14:00", False),
        ("2026-10-10T08:30:00+14:00", True),
        ("2026-10-10T08:30:00-12:00", True),
        ("2026-10-10T08:30:00+14:01", False),
        ("2026-10-10T08:30:00-12:30", False),
    ],
)
def test_moments_are_bounded_in_calendar_and_offset(moment: str, ok: bool) -> None:
    assert (bounds.moment_fault(datetime.fromisoformat(moment)) is None) == ok


@pytest.mark.parametrize(
    "moment",
    [
        datetime.min.replace(tzinfo=timezone(timedelta(hours=14))),
        datetime.max.replace(tzinfo=timezone(timedelta(hours=-12))),
    ],
)
def test_local_date_refuses_moments_without_a_cst_date(moment: datetime) -> None:
    with pytest.raises(ValueError, match="no date in China Standard Time"):
        local_date(moment)
