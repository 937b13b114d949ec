"""Hostile partner inputs, table-driven: each is refused by ingest's decoder with its
reason (never admitted, never an exception), and a bounded neighbour is admitted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from carbonledger.contracts.catalogue import MAX_MESSAGE_LENGTH, Reason, Rejection
from carbonledger.contracts.records import ValidatedBehaviour
from carbonledger.contracts.strict_json import MAX_DEPTH
from carbonledger.services.ingest.domain.admission import validate_event
from tests.factories import NOW, NUMBER, ORIGIN, event, metro, raw, registry

YEAR_1_AT_PLUS_14 = "0001-01-01T00:00:00+14:00"
YEAR_9999_AT_MINUS_12 = "9999-12-31T23:59:59-12:00"


def steps(**data: Any) -> dict[str, Any]:
    fields = {"date": "2026-10-09", "steps": 9000, **data}
    return event("steps.daily", "440305", **fields)


def line(value: str) -> bytes:
    """A metro event whose `line` text is `value`, written with JSON escapes."""
    return raw(metro(data_line="#line")).replace(b'"#line"', json.dumps(value).encode())


def nested(depth: int) -> str:
    return '{"k": ' * (depth - 1) + "[]" + "}" * (depth - 1)


def with_extension(value: str) -> bytes:
    """A metro event with an extension attribute `ext` holding the JSON text `value`
    (extensions are allowed and ignored, so only the bound can refuse it)."""
    return raw(metro(ext="#ext")).replace(b'"#ext"', value.encode())


def partner_of(payload: bytes) -> str:
    return "every-app" if b'"every-app"' in payload else "shenzhen-metro"


def replaced(payload: bytes, old: bytes, new: bytes) -> bytes:
    assert old in payload
    return payload.replace(old, new, 1)


METRO = raw(metro())
HOSTILE: list[tuple[str, bytes, Reason]] = [
    # ids and strings: control characters and lengths
    ("NUL in id", raw(metro(id="trip\u00001")), Reason.INVALID_ENVELOPE),
    ("unit separator in id", raw(metro(id="trip\u001f1")), Reason.INVALID_ENVELOPE),
    ("DEL in id", raw(metro(id="trip\u007f")), Reason.INVALID_ENVELOPE),
    ("line separator in id", raw(metro(id="trip\u20281")), Reason.INVALID_ENVELOPE),
    (
        "lone surrogate in id",
        replaced(METRO, b'"trip-1"', b'"trip\\ud800"'),
        Reason.INVALID_ENVELOPE,
    ),
    ("id too long", raw(metro(id="t" * 257)), Reason.INVALID_ENVELOPE),
    ("NUL in type", raw(metro(type="travel.metro\u0000")), Reason.INVALID_ENVELOPE),
    ("NUL in subject", raw(metro(subject="a\u0000")), Reason.INVALID_ENVELOPE),
    ("newline in datacontenttype", raw(metro(datacontenttype="a\nb")), Reason.INVALID_ENVELOPE),
    ("NUL in a data text", line("L\u00009"), Reason.INVALID_FIELD),
    ("lone surrogate in a data text", line("L\ud8009"), Reason.INVALID_FIELD),
    ("data text too long", line("L" * 129), Reason.INVALID_FIELD),
    # times and dates outside the calendar, in any offset
    ("time in year 1 at +14:00", raw(metro(time=YEAR_1_AT_PLUS_14)), Reason.OUT_OF_BOUNDS),
    (
        "started_at in year 1 at +14:00",
        raw(metro(data_started_at=YEAR_1_AT_PLUS_14)),
        Reason.OUT_OF_BOUNDS,
    ),
    (
        "interval in year 1",
        raw(
            metro(
                time=YEAR_1_AT_PLUS_14,
                data_started_at=YEAR_1_AT_PLUS_14,
                data_ended_at=YEAR_1_AT_PLUS_14,
            )
        ),
        Reason.OUT_OF_BOUNDS,
    ),
    ("time in 1999", raw(metro(time="1999-12-31T23:59:59+00:00")), Reason.OUT_OF_BOUNDS),
    ("time in year 9999 at -12:00", raw(metro(time=YEAR_9999_AT_MINUS_12)), Reason.IN_FUTURE),
    (
        "ended_at in year 9999",
        raw(metro(data_ended_at=YEAR_9999_AT_MINUS_12)),
        Reason.OUT_OF_BOUNDS,  # lasts longer than 12 h, refused before it is in the future
    ),
    ("offset +15:00", raw(metro(time="2026-10-10T08:30:00+15:00")), Reason.OUT_OF_BOUNDS),
    ("time as Unix seconds", raw(metro(time=1760056200)), Reason.INVALID_ENVELOPE),
    ("time as Unix seconds text", raw(metro(time="1760056200")), Reason.INVALID_ENVELOPE),
    ("steps date 9999-12-31", raw(steps(date="9999-12-31")), Reason.IN_FUTURE),
    ("steps date tomorrow", raw(steps(date="2026-11-02")), Reason.IN_FUTURE),
    ("steps date 0001-01-01", raw(steps(date="0001-01-01")), Reason.OUT_OF_BOUNDS),
    ("steps date 1999-12-31", raw(steps(date="1999-12-31")), Reason.OUT_OF_BOUNDS),
    ("steps date without dashes", raw(steps(date="20261009")), Reason.INVALID_FIELD),
    ("steps date as an ISO week", raw(steps(date="2026-W41-5")), Reason.INVALID_FIELD),
    # decimals: refused, never expanded
    ("1e-999999999 km", raw(metro(data_distance_km=NUMBER), "1e-999999999"), Reason.OUT_OF_BOUNDS),
    ('"1E-999999" km', raw(metro(data_distance_km="1E-999999")), Reason.INVALID_FIELD),
    (
        "0E-999999 kWh",
        raw(
            event(
                "home.electricity",
                "440305",
                meter_id="m",
                date="2026-10-09",
                kwh=NUMBER,
                household_size=2,
            ),
            "0E-999999",
        ),
        Reason.OUT_OF_BOUNDS,
    ),
    ("1E+999999999 km", raw(metro(data_distance_km=NUMBER), "1E+999999999"), Reason.OUT_OF_BOUNDS),
    ("21 places", raw(metro(data_distance_km="1." + "0" * 21)), Reason.OUT_OF_BOUNDS),
    (
        "25 digits",
        raw(metro(data_distance_km=NUMBER), "1.000000000000000000000001"),
        Reason.OUT_OF_BOUNDS,
    ),
    ("underscored text", raw(metro(data_distance_km="1_0")), Reason.INVALID_FIELD),
    ("padded text", raw(metro(data_distance_km=" 10 ")), Reason.INVALID_FIELD),
    ("Arabic-Indic digits", raw(metro(data_distance_km="١٢")), Reason.INVALID_FIELD),
    ("NaN", raw(metro(data_distance_km=NUMBER), "NaN"), Reason.NOT_JSON),
    # nesting, before parsing
    ("2,000 deep extension", with_extension(nested(2000)), Reason.TOO_DEEP),
    ("33 deep in all", with_extension(nested(MAX_DEPTH)), Reason.TOO_DEEP),
    (
        "deep data field",
        replaced(METRO, b'"region"', b'"x": ' + nested(40).encode() + b', "region"'),
        Reason.TOO_DEEP,
    ),
    ("unclosed brackets", b"[" * 100_000, Reason.TOO_DEEP),
    # duplicate keys
    (
        "duplicate distance_km",
        replaced(METRO, b'"distance_km": "10.0"', b'"distance_km": 12.5, "distance_km": 199.9'),
        Reason.DUPLICATE_KEY,
    ),
    (
        "duplicate subject",
        replaced(METRO, b'"subject": ', b'"subject": "' + b"b" * 64 + b'", "subject": '),
        Reason.DUPLICATE_KEY,
    ),
    ("duplicate id", replaced(METRO, b'"id": ', b'"id": "a", "id": '), Reason.DUPLICATE_KEY),
    ("duplicate in an extension", with_extension('{"x": 1, "x": 1}'), Reason.DUPLICATE_KEY),
]


@pytest.mark.parametrize(("name", "payload", "reason"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_inputs_are_refused_with_their_reason(
    name: str, payload: bytes, reason: Reason
) -> None:
    with pytest.raises(Rejection) as refused:
        validate_event(
            payload,
            partner_id=partner_of(payload),
            registry=registry(),
            origin=ORIGIN,
            now=NOW,
        )
    assert refused.value.reason == reason, refused.value.message
    message = refused.value.message
    assert 0 < len(message) <= MAX_MESSAGE_LENGTH
    json.dumps(message, ensure_ascii=False).encode()  # a lone surrogate is never echoed


BOUNDED: list[tuple[str, bytes]] = [
    ("20 places", raw(metro(data_distance_km="0." + "0" * 19 + "1"))),
    ("20 digits", raw(metro(data_distance_km=NUMBER), "1.0000000000000000001")),
    ("exponent number", raw(metro(data_distance_km=NUMBER), "1.25E+1")),
    (
        "+14:00 and -12:00",
        raw(
            metro(
                time="2026-10-10T14:30:00+14:00",
                data_started_at="2026-10-09T12:05:00-12:00",
                data_ended_at="2026-10-09T12:30:00-12:00",
            )
        ),
    ),
    ("32 deep in all", with_extension(nested(MAX_DEPTH - 1))),
    ("CJK text", line("罗宝线")),
    ("256-character id", raw(metro(id="t" * 256))),
    ("steps today-1", raw(steps(date="2026-10-31"))),
]


@pytest.mark.parametrize(("name", "payload"), BOUNDED, ids=[b[0] for b in BOUNDED])
def test_inputs_at_the_bounds_are_admitted(name: str, payload: bytes) -> None:
    admitted = validate_event(
        payload, partner_id=partner_of(payload), registry=registry(), origin=ORIGIN, now=NOW
    )
    assert isinstance(admitted, ValidatedBehaviour)
    assert len(admitted.model_dump_json()) < 4096
