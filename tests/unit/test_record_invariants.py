"""Defence in depth: what a stage consumes from an internal topic is checked, and a
record that decodes but breaks an invariant is dead-lettered as `invalid_record`
(never passed on), one that is not the record at all as `undecodable_record`."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import faust
import pytest

from carbonledger.contracts import topics
from carbonledger.contracts.records import (
    MAX_AMOUNT_MG,
    Decision,
    DecisionKind,
    ReductionClaim,
    ValidatedBehaviour,
)
from carbonledger.contracts.settings import Settings
from carbonledger.runtime.batching import Output
from carbonledger.runtime.stage import Stage
from carbonledger.services.quantify.service import check_consumed, quantify_behaviour
from tests.factories import admitted, claim, metro, raw
from tests.unit.test_quantify import SHIPPED


@dataclass
class Message:
    topic: str
    value: bytes
    partition: int = 0
    offset: int = 5
    key: bytes | None = b"k"


def as_json(record: ReductionClaim | Decision | ValidatedBehaviour) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(record.to_bytes())
    return body


def credit(mg: int = 1_000) -> Decision:
    made = claim("every-app", "e-1", 0, mg=mg)
    return Decision(decision_id=made.claim_id, kind=DecisionKind.CREDIT, amount_mg=mg, claim=made)


def reason_of(out: Any) -> str:
    assert isinstance(out, Output) and out.topic == topics.REJECTED and out.value is not None
    return str(json.loads(out.value)["reason"])


def decoded(model: type[Any], body: dict[str, Any] | bytes, topic: str) -> Any:
    value = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Stage("test", faust.App("invariants-test"), Settings()).decode(
        Message(topic, value), model
    )


def claim_with(**changes: Any) -> dict[str, Any]:
    body = as_json(claim("every-app", "e-1", 0))
    for path, value in changes.items():
        *outer, name = path.split("__")
        target = body
        for part in outer:
            target = target[part]
        target[name] = value
    return body


@pytest.mark.parametrize(
    "changes",
    [
        {"reduction_mg": -(10**12)},  # a negative claim would drive the books below zero
        {"reduction_mg": MAX_AMOUNT_MG + 1},
        {"reduction_mg": 2**70},  # beyond 64 bits: orjson and bigint cannot hold it
        {"region": "999999"},  # six digits, but no division of the table
        {"event__id": "trip\u00001"},  # PostgreSQL text cannot hold a NUL
        {"subject": "a\nb"},
        {"event__id": "x" * 257},
        {"evidence_rank": -1},
        {"ended_at": "0001-01-01T00:00:00+14:00"},  # overflows in UTC and date arithmetic
        {"started_at": "1999-12-31T23:59:59+00:00"},  # before the calendar booked
    ],
)
def test_a_claim_breaking_an_invariant_is_an_invalid_record(changes: dict[str, Any]) -> None:
    assert reason_of(decoded(ReductionClaim, claim_with(**changes), topics.CLAIMS)) == (
        "invalid_record"
    )


@pytest.mark.parametrize(
    "body", [b"{not json", json.dumps({"schema": "carbonledger.claim/1"}).encode()]
)
def test_what_is_not_a_claim_at_all_is_undecodable(body: bytes) -> None:
    assert reason_of(decoded(ReductionClaim, body, topics.CLAIMS)) == "undecodable_record"


def test_a_valid_claim_and_decision_decode() -> None:
    assert isinstance(decoded(ReductionClaim, claim_with(), topics.CLAIMS), ReductionClaim)
    assert isinstance(decoded(Decision, as_json(credit()), topics.DECISIONS), Decision)


@pytest.mark.parametrize(
    "changes",
    [
        {"amount_mg": 2**70},
        {"amount_mg": -5},  # a negative credit
        {"kind": "reverse"},  # positive, and names no credit
        {"kind": "reverse", "amount_mg": -1_000},  # names no credit
        {"kind": "duplicate"},  # a duplicate moves nothing
        {"claim": claim_with(region="999999")},
        {"sequence": 2**64},
    ],
)
def test_a_decision_breaking_an_invariant_is_an_invalid_record(changes: dict[str, Any]) -> None:
    body = as_json(credit()) | changes
    assert reason_of(decoded(Decision, body, topics.DECISIONS)) == "invalid_record"


def behaviour_record(**data: Any) -> Message:
    body = as_json(admitted(raw(metro()), "shenzhen-metro"))
    for name, value in data.items():
        if value is None:
            body["data"].pop(name)
        else:
            body["data"][name] = value
    return Message(topics.VALIDATED, json.dumps(body).encode())


def test_quantify_refuses_a_behaviour_its_catalogue_type_refuses() -> None:
    stage = Stage("quantify", faust.App("quantify-invariants-test"), Settings())

    def claim_of(record: Any, behaviour: ValidatedBehaviour) -> Iterator[Output]:
        made = quantify_behaviour(check_consumed(behaviour), SHIPPED)
        yield Output(topics.CLAIMS, b"k", made.to_bytes())

    records = [
        behaviour_record(distance_km="abc"),
        behaviour_record(distance_km=None),
        behaviour_record(),  # the control
        behaviour_record(distance_km="0.5", surprise=1),
    ]
    outputs = list(stage.each(ValidatedBehaviour, claim_of)(records))
    assert [o.topic for o in outputs] == [
        topics.REJECTED,
        topics.REJECTED,
        topics.CLAIMS,
        topics.REJECTED,
    ]
    letters = [json.loads(o.value or b"") for o in outputs if o.topic == topics.REJECTED]
    assert [letter["reason"] for letter in letters] == ["invalid_record"] * 3
    assert letters[0]["message"].startswith("invalid_field: distance_km")
    assert letters[1]["message"].startswith("missing_field:")
    assert base64.b64decode(letters[0]["payload_b64"]) == records[0].value
