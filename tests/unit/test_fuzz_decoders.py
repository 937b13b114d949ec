"""Property-based fuzzing of the partner decoders (the envelope and the catalogue).

For arbitrary bytes, arbitrary JSON and mutated valid events, ingest's decoder
either admits a behaviour that re-validates, round-trips and stays small, or raises
`Rejection` with a reason code; never any other exception. An admitted behaviour
also quantifies into a bounded claim (a precise decimal must not grow a claim).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carbonledger.contracts.catalogue import CATALOGUE, Reason, Rejection, validate_data
from carbonledger.contracts.methodology_files import load_methodologies
from carbonledger.contracts.records import ValidatedBehaviour
from carbonledger.services.ingest.domain.admission import validate_event
from carbonledger.services.quantify.domain.quantify import quantify
from tests.factories import NOW, ORIGIN, event, metro, raw, registry

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REGISTRY = registry()
METHODOLOGIES = load_methodologies(
    Path(__file__).resolve().parents[2] / "carbonledger" / "services" / "quantify" / "registry"
)
# An admitted behaviour's JSON and its claim's: bounded by the field bounds, whatever was sent.
MAX_BEHAVIOUR_BYTES = 4096
MAX_CLAIM_BYTES = 8192

VALID_EVENTS = [
    metro(),
    event("steps.daily", "440305", date="2026-10-09", steps=9000),
    event(
        "home.electricity", "440305", meter_id="m-1", date="2026-10-09", kwh="3.5", household_size=3
    ),
    event("travel.carpool", "440305", distance_km="12.5", passengers=3),
    event("ev.charge", "440305", kwh="20.25"),
    event("recycle.item", "440305", batch_id="b-1", material="paper", kg="2.5"),
]

NAMES = sorted({f.name for spec in CATALOGUE.values() for f in spec.fields} | {"region", "id"})
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=20)
    | st.decimals(allow_nan=False, allow_infinity=False).map(str)
    | st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31", "1E-999999", "\u0000", "NaN"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def decode(payload: bytes) -> ValidatedBehaviour | Rejection:
    """What ingest makes of a record: the behaviour, or the Rejection; anything else
    propagates and fails the property."""
    partner = "every-app" if b"every-app" in payload else "shenzhen-metro"
    try:
        return validate_event(
            payload, partner_id=partner, registry=REGISTRY, origin=ORIGIN, now=NOW
        )
    except Rejection as no:
        assert isinstance(no.reason, Reason) and no.message
        return no


def assert_sound(outcome: ValidatedBehaviour | Rejection) -> None:
    if isinstance(outcome, Rejection):
        return
    text = outcome.model_dump_json()
    assert len(text) <= MAX_BEHAVIOUR_BYTES
    assert ValidatedBehaviour.model_validate_json(text).model_dump_json() == text
    # Its data, as the record carries it, re-validates against the catalogue unchanged.
    carried = json.loads(text)["data"]
    again = validate_data(
        CATALOGUE[outcome.type], {**carried, "region": outcome.region}, outcome.time, NOW
    )
    assert outcome.model_copy(update={"data": again.fields}).model_dump_json() == text
    claim = quantify(outcome, METHODOLOGIES)
    assert len(claim.model_dump_json()) <= MAX_CLAIM_BYTES


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_are_admitted_soundly_or_rejected(payload: bytes) -> None:
    assert_sound(decode(payload))


@FUZZ
@given(json_values)
def test_arbitrary_json_is_admitted_soundly_or_rejected(document: Any) -> None:
    assert_sound(decode(json.dumps(document).encode()))


def _with(document: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    changed: dict[str, Any] = json.loads(json.dumps(document))
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


def _paths(document: dict[str, Any]) -> list[tuple[str, ...]]:
    found = [(k,) for k in document if k != "data"] + [("data", k) for k in document["data"]]
    return [*found, ("data", "extra"), ("extension",)]


@st.composite
def mutated_events(draw: st.DrawFn) -> bytes:
    """A valid event with one attribute or data field replaced by arbitrary JSON."""
    document = draw(st.sampled_from(VALID_EVENTS))
    path = draw(st.sampled_from(_paths(document)))
    return json.dumps(_with(document, path, draw(json_values))).encode()


@FUZZ
@given(mutated_events())
def test_mutated_valid_events_are_admitted_soundly_or_rejected(payload: bytes) -> None:
    assert_sound(decode(payload))


@FUZZ
@given(st.sampled_from(VALID_EVENTS), st.data())
def test_byte_level_mutations_are_admitted_soundly_or_rejected(
    document: dict[str, Any], data: st.DataObject
) -> None:
    payload = bytearray(raw(document))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(payload) - 1))
        payload[at : at + 1] = data.draw(st.binary(max_size=3))
    assert_sound(decode(bytes(payload)))


@FUZZ
@given(
    st.decimals(allow_nan=False, allow_infinity=False)
    | st.builds(
        lambda digits, exponent: Decimal(f"{digits}E{exponent}"),
        st.integers(1, 10**30),
        st.integers(-(10**9), 10**9),
    )
)
def test_any_decimal_distance_is_bounded_or_refused(distance: Decimal) -> None:
    """However precise or extreme, a distance is admitted within the bounds (and its
    claim stays small) or refused; never written out at length."""
    for as_sent in (str(distance), format(distance, "E")):
        outcome = decode(raw(metro(data_distance_km=as_sent)))
        assert_sound(outcome)
        if isinstance(outcome, ValidatedBehaviour):
            assert Decimal("0") < outcome.data["distance_km"] <= Decimal("200")


def test_the_valid_events_are_admitted() -> None:
    """The seeds of the mutations are themselves valid, or the fuzzing proves little."""
    for document in VALID_EVENTS:
        assert isinstance(decode(raw(document)), ValidatedBehaviour), document["type"]
