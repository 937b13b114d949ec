"""The table of hostile partner input: what an adversarial or broken partner sends, over
its Kafka topic and the HTTP gateway, and what the platform must answer.

Each case is data: a name, the channels it is sent on, a builder of its exact bytes
(from a valid event, so each case differs from a good event in one way) and the reason
codes it may be refused with (contracts/catalogue.py `Reason`). More than one code is
allowed where the issue leaves the choice to the stage that refuses it (a time of year 1
is out of bounds, or an invalid envelope); none means the input is valid however odd it
looks and must be credited. Over Kafka "refused" is a dead letter with the reason; over
HTTP it is the event's own `rejected` result in a 200 answer, the rest of the batch
accepted. A `whole_body` case is the request body itself (not UTF-8, empty): the gateway
may refuse the request (4xx) instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from carbonledger.contracts.calendar import CST
from carbonledger.contracts.catalogue import Reason
from carbonledger.demo.sample import subject_of

KAFKA, HTTP = "kafka", "http"
PARTNER = "navi-maps"  # reports trips and steps on both channels
TRIP_REGION, STEPS_REGION = "440305", "420102"
MAX_RECORD_BYTES = 1_048_576  # ingest's default CARBON_INGEST_MAX_RECORD_BYTES
DEEP = 2_000  # nesting that overflowed the decoders (issue 18)
YEAR_ONE = "0001-01-01T00:00:00+14:00"  # before the first representable UTC instant


@dataclass(frozen=True)
class Crafting:
    """What builders share: the run's tag (in every id and subject, so runs never collide)
    and when the valid events happened."""

    tag: str
    at: datetime  # end of every valid trip; a day the dedupe window still holds

    def event_id(self, case: str, phase: str) -> str:
        return f"{self.tag}-{case}-{phase}"

    def control_id(self, case: str, phase: str) -> str:
        # Not an extension of the case's own id: a case may append to that one.
        return f"{self.tag}-control-{case}-{phase}"

    def trip(self, event_id: str) -> dict[str, Any]:
        """A valid metro trip of its own person (the subject derives from the id)."""
        ended = self.at.astimezone(CST)
        return {
            "specversion": "1.0",
            "id": event_id,
            "source": PARTNER,
            "type": "travel.metro",
            "time": ended.isoformat(),
            "subject": subject_of(f"+86-{event_id}"),
            "datacontenttype": "application/json",
            "data": {
                "region": TRIP_REGION,
                "started_at": (ended - timedelta(minutes=20)).isoformat(),
                "ended_at": ended.isoformat(),
                "distance_km": "7.5",
            },
        }

    def steps(self, event_id: str) -> dict[str, Any]:
        """A valid day of steps (walked the day before the trips' day)."""
        event = self.trip(event_id)
        day = (self.at.astimezone(CST) - timedelta(days=1)).date()
        event["type"] = "steps.daily"
        event["data"] = {"region": STEPS_REGION, "date": day.isoformat(), "steps": 8000}
        return event


Builder = Callable[[Crafting, str], bytes]  # (crafting, event id) -> the exact bytes


@dataclass(frozen=True)
class Hostile:
    name: str
    build: Builder
    reasons: frozenset[str]  # empty: valid, must be credited
    channels: tuple[str, ...] = (KAFKA, HTTP)
    whole_body: bool = False
    note: str = ""

    @property
    def admitted(self) -> bool:
        return not self.reasons


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode()


def control(crafting: Crafting, case: str, phase: str) -> bytes:
    """The valid event sent with a case: it must be credited whatever the case does."""
    return encode(crafting.trip(crafting.control_id(case, phase)))


# --- builders -------------------------------------------------------------------------

RAW = "\x01raw\x01"  # a placeholder string value, replaced by raw JSON text


def changed(edit: Callable[[dict[str, Any]], None], steps: bool = False) -> Builder:
    """A valid event with one edit made to its decoded form."""

    def build(crafting: Crafting, event_id: str) -> bytes:
        event = crafting.steps(event_id) if steps else crafting.trip(event_id)
        edit(event)
        return _with_raw(encode(event), None)

    return build


def raw_field(field: str, text: str, in_data: bool = True, steps: bool = False) -> Builder:
    """A valid event whose `field` is this JSON text exactly (numbers json cannot write)."""

    def build(crafting: Crafting, event_id: str) -> bytes:
        event = crafting.steps(event_id) if steps else crafting.trip(event_id)
        (event["data"] if in_data else event)[field] = RAW
        return _with_raw(encode(event), text)

    return build


def _with_raw(encoded: bytes, text: str | None) -> bytes:
    placeholder = json.dumps(RAW).encode()
    return encoded if text is None else encoded.replace(placeholder, text.encode())


def spliced(before: str, after: str) -> Builder:
    """A valid event's text with `before` replaced by `after` once (duplicate keys)."""

    def build(crafting: Crafting, event_id: str) -> bytes:
        text = json.dumps(crafting.trip(event_id))
        assert before in text, before
        return text.replace(before, after, 1).encode()

    return build


def framed(prefix: bytes, suffix: bytes = b"") -> Builder:
    """A valid event with bytes before or after it."""
    return lambda crafting, event_id: prefix + encode(crafting.trip(event_id)) + suffix


def constant(raw: bytes) -> Builder:
    return lambda crafting, event_id: raw


def padded_to(size: int) -> Builder:
    """A valid event grown to exactly `size` bytes by an unknown data field."""

    def build(crafting: Crafting, event_id: str) -> bytes:
        event = crafting.trip(event_id)
        event["data"]["note"] = ""
        short = len(encode(event))
        event["data"]["note"] = "x" * (size - short)
        return encode(event)

    return build


def nested_in_data(depth: int) -> Builder:
    return raw_field("note", "[" * depth + "]" * depth)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """An edit setting `path` ("data.distance_km", "id") to `value`."""

    def edit(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = event
        for p in parents:
            node = node[p]
        node[last] = value

    return edit


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def edit(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = event
        for p in parents:
            node = node[p]
        del node[last]

    return edit


def _suffix(path: str, text: str) -> Callable[[dict[str, Any]], None]:
    def edit(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = event
        for p in parents:
            node = node[p]
        node[last] = node[last] + text

    return edit


def _interval_at(started: str, ended: str) -> Callable[[dict[str, Any]], None]:
    def edit(event: dict[str, Any]) -> None:
        event["data"]["started_at"], event["data"]["ended_at"] = started, ended

    return edit


def _in_future(event: dict[str, Any]) -> None:
    # Far ahead of any clock skew allowed, whenever the suite runs.
    event["time"] = "2999-01-01T00:00:00+08:00"


def _reasons(*codes: Reason) -> frozenset[str]:
    return frozenset(c.value for c in codes)


R = Reason
BOUNDS = _reasons(R.OUT_OF_BOUNDS, R.INVALID_FIELD)
ENVELOPE = _reasons(R.INVALID_ENVELOPE)
NUL = "\u0000"

HOSTILE: tuple[Hostile, ...] = (
    # --- named by issue 18 ---
    Hostile("id-nul", changed(_suffix("id", NUL)), ENVELOPE, note="writer crash-looped"),
    Hostile(
        "time-year-one", changed(_set("time", YEAR_ONE)), ENVELOPE | BOUNDS, note="quantify loop"
    ),
    Hostile(
        "interval-year-one",
        changed(_interval_at(YEAR_ONE, YEAR_ONE)),
        BOUNDS,
        note="OverflowError in local_date",
    ),
    Hostile(
        "distance-1e-999999999",
        raw_field("distance_km", "1e-999999999"),
        BOUNDS,
        note="a 1 GB claim",
    ),
    Hostile("distance-text-1E-999999", changed(_set("data.distance_km", "1E-999999")), BOUNDS),
    Hostile(
        "steps-date-9999-12-31",
        changed(_set("data.date", "9999-12-31"), steps=True),
        BOUNDS | _reasons(R.IN_FUTURE),
        note="HTTP 500 for the whole batch",
    ),
    Hostile("nested-2000-in-data", nested_in_data(DEEP), _reasons(R.TOO_DEEP)),
    Hostile(
        "nested-2000-event",
        constant(b"[" * DEEP + b"]" * DEEP),
        _reasons(R.TOO_DEEP),
        channels=(KAFKA,),
    ),
    Hostile(
        "duplicate-key-in-data",
        spliced('"distance_km": "7.5"', '"distance_km": 12.5, "distance_km": 199.9'),
        _reasons(R.DUPLICATE_KEY),
    ),
    Hostile(
        "duplicate-subject",
        spliced('"subject": ', f'"subject": "{"0" * 64}", "subject": '),
        _reasons(R.DUPLICATE_KEY),
    ),
    # --- control characters and odd strings ---
    Hostile(
        "source-control-char",
        changed(_suffix("source", "\u0007")),
        ENVELOPE | _reasons(R.SOURCE_MISMATCH),
    ),
    Hostile("type-nul", changed(_suffix("type", NUL)), ENVELOPE | _reasons(R.UNKNOWN_TYPE)),
    Hostile(
        "subject-nul", changed(_suffix("subject", NUL)), ENVELOPE | _reasons(R.INVALID_SUBJECT)
    ),
    Hostile("id-newline", changed(_suffix("id", "\n")), ENVELOPE),
    Hostile(
        "region-nul", changed(_suffix("data.region", NUL)), _reasons(R.INVALID_REGION) | BOUNDS
    ),
    Hostile(
        "id-lone-surrogate",
        raw_field("id", '"lone-\\ud800"', in_data=False),
        ENVELOPE | _reasons(R.NOT_JSON),
    ),
    Hostile(
        "surrogate-bytes", framed(b"", b" \xed\xa0\x80"), _reasons(R.NOT_UTF8), channels=(KAFKA,)
    ),
    Hostile("id-10000-chars", changed(_suffix("id", "x" * 10_000)), ENVELOPE),
    Hostile("id-empty", changed(_set("id", "")), ENVELOPE),
    Hostile("id-4-byte-chars", changed(_suffix("id", "-\U0001f687\U0001f6b2")), frozenset()),
    # --- numbers ---
    Hostile("distance-1e308", raw_field("distance_km", "1e308"), BOUNDS),
    Hostile("distance-1e999999999", raw_field("distance_km", "1e999999999"), BOUNDS),
    Hostile("distance-5000-digits", raw_field("distance_km", "7." + "5" * 5000), BOUNDS),
    Hostile(
        "steps-2-to-the-70",
        raw_field("steps", str(2**70), steps=True),
        BOUNDS,
        note="orjson 64-bit",
    ),
    Hostile("distance-NaN-literal", raw_field("distance_km", "NaN"), BOUNDS | _reasons(R.NOT_JSON)),
    Hostile(
        "distance-Infinity-literal",
        raw_field("distance_km", "Infinity"),
        BOUNDS | _reasons(R.NOT_JSON),
    ),
    Hostile("distance-NaN-text", changed(_set("data.distance_km", "NaN")), BOUNDS),
    Hostile("distance-negative", changed(_set("data.distance_km", "-3.2")), BOUNDS),
    Hostile("distance-zero", raw_field("distance_km", "0"), BOUNDS),
    Hostile("steps-negative", changed(_set("data.steps", -1), steps=True), BOUNDS),
    # --- wrong types and shapes ---
    Hostile("distance-boolean", changed(_set("data.distance_km", True)), BOUNDS),
    Hostile("distance-object", changed(_set("data.distance_km", {})), BOUNDS),
    Hostile("data-array", changed(_set("data", [])), ENVELOPE | BOUNDS),
    Hostile("subject-number", changed(_set("subject", 7)), ENVELOPE),
    Hostile(
        "event-in-array", lambda c, i: b"[" + encode(c.trip(i)) + b"]", _reasons(R.NOT_AN_OBJECT)
    ),
    Hostile("specversion-2", changed(_set("specversion", "2.0")), ENVELOPE),
    Hostile("subject-missing", changed(_drop("subject")), ENVELOPE | _reasons(R.MISSING_FIELD)),
    Hostile("distance-missing", changed(_drop("data.distance_km")), _reasons(R.MISSING_FIELD)),
    Hostile("unknown-data-field", changed(_set("data.bonus", "1")), _reasons(R.UNKNOWN_FIELD)),
    Hostile("region-999999", changed(_set("data.region", "999999")), _reasons(R.INVALID_REGION)),
    Hostile(
        "interval-inverted",
        changed(_interval_at("2026-10-20T09:00:00+08:00", "2026-10-20T08:00:00+08:00")),
        _reasons(R.INTERVAL_INVERTED),
    ),
    Hostile("time-in-future", changed(_in_future), _reasons(R.IN_FUTURE) | BOUNDS),
    Hostile(
        "spoofed-source", changed(_set("source", "shenzhen-metro")), _reasons(R.SOURCE_MISMATCH)
    ),
    Hostile(
        "subject-upper-hex",
        changed(lambda e: e.update(subject=e["subject"].upper())),
        _reasons(R.INVALID_SUBJECT),
    ),
    # --- bytes that are not one JSON object ---
    Hostile("empty", constant(b""), _reasons(R.NOT_JSON), whole_body=True),
    Hostile("byte-order-mark", framed(b"\xef\xbb\xbf"), _reasons(R.NOT_JSON), whole_body=True),
    Hostile("not-utf8", framed(b"\xff\xfe"), _reasons(R.NOT_UTF8), whole_body=True),
    # Over HTTP these are the body: inside an array they leave no array to split.
    Hostile("trailing-garbage", framed(b"", b" }{"), _reasons(R.NOT_JSON), whole_body=True),
    Hostile(
        "truncated", lambda c, i: encode(c.trip(i))[:-7], _reasons(R.NOT_JSON), whole_body=True
    ),
    Hostile("one-mib-plus-one", padded_to(MAX_RECORD_BYTES + 1), _reasons(R.OVERSIZED)),
)

CASES = {case.name: case for case in HOSTILE}
