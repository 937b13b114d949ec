"""The published contract documents are what the code enforces, and stay so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import yaml

from carbonledger.contracts.schemas import GATEWAY_EXAMPLE, behaviour_schemas
from carbonledger.contracts.settings import ROOT
from carbonledger.ops.contract_docs import CONTRACT_DIR, contract_files
from tests.factories import event
from tests.unit.test_catalogue_batch import BAD, VALID, _record

SCHEMAS = behaviour_schemas()


def test_committed_documents_equal_what_the_code_generates() -> None:
    for relative, text in contract_files().items():
        path = CONTRACT_DIR / relative
        assert path.exists(), f"{path} missing: run `carbonledger schemas`"
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} is stale: run `carbonledger schemas`"
        )


@pytest.mark.parametrize("behaviour_type", sorted(VALID))
def test_every_valid_event_matches_its_schema(behaviour_type: str) -> None:
    region, data = VALID[behaviour_type]
    jsonschema.validate(event(behaviour_type, region, **data), SCHEMAS[behaviour_type])


def _decimal_text(value: object) -> bool:
    return isinstance(value, str) and value.lstrip("-").replace(".", "", 1).isdigit()


def test_schema_refuses_what_its_bounds_and_types_can_express() -> None:
    """Bounds on numbers sent as decimal text, and rules across fields (interval order,
    duration, known provinces, a family link's sides), are beyond JSON Schema: ingest
    checks them."""
    checkable = {"out_of_bounds", "missing_field", "unknown_field", "invalid_field"}
    refused = 0
    for n, (behaviour_type, changes, reason) in enumerate(BAD):
        if reason not in checkable or any(_decimal_text(v) for v in changes.values()):
            continue
        if {"started_at", "ended_at"} & changes.keys():
            continue
        if {"head", "member"} & changes.keys():
            continue  # a family link's two subjects and who reports it: ingest checks them
        document = json.loads(_record(behaviour_type, n, changes))
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(
                document, SCHEMAS[behaviour_type], format_checker=jsonschema.FormatChecker()
            )
        refused += 1
    assert refused >= 20


ASYNCAPI = yaml.safe_load((CONTRACT_DIR / "asyncapi.yaml").read_text(encoding="utf-8"))


def _resolve(doc: Any, ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} is not inside the document"
    node = doc
    for part in ref[2:].split("/"):
        assert part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def test_asyncapi_names_every_behaviour_and_the_partner_topic() -> None:
    assert ASYNCAPI["asyncapi"] == "3.1.0"
    channel = ASYNCAPI["channels"]["partnerEvents"]
    assert channel["address"] == "partner.{partnerId}.events"
    messages = [_resolve(ASYNCAPI, m["$ref"]) for m in channel["messages"].values()]
    assert {m["name"] for m in messages} == set(VALID)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_asyncapi_reference_resolves_inside_the_document() -> None:
    refs = set(_refs(ASYNCAPI))
    assert "#/components/schemas/ReductionClaim" in refs  # a record hoisted from $defs
    for ref in refs:
        _resolve(ASYNCAPI, ref)
    assert "$defs" not in json.dumps(ASYNCAPI)


def test_asyncapi_examples_are_valid_events_of_their_type() -> None:
    examples = 0
    for message in ASYNCAPI["components"]["messages"].values():
        schema = SCHEMAS[message["name"]]
        for example in message.get("examples", []):
            jsonschema.validate(example["payload"], schema)
            examples += 1
    assert examples >= 10


def test_asyncapi_has_scram_over_tls_and_kafka_keys() -> None:
    production = ASYNCAPI["servers"]["production"]
    assert production["protocol"] == "kafka-secure"
    [scheme] = [_resolve(ASYNCAPI, s["$ref"]) for s in production["security"]]
    assert scheme["type"] == "scramSha512"
    metro = ASYNCAPI["components"]["messages"]["travel_metro"]
    assert metro["bindings"]["kafka"]["key"]["pattern"] == "^[0-9a-f]{64}$"
    assert ASYNCAPI["channels"]["partnerEvents"]["bindings"]["kafka"]["partitions"] == 4


def test_the_gateway_example_is_an_event_of_the_sample() -> None:
    sample = (ROOT / "deploy" / "sample" / "partner-traffic.jsonl").read_text(encoding="utf-8")
    assert json.dumps(GATEWAY_EXAMPLE, ensure_ascii=False) in sample.splitlines()
    jsonschema.validate(GATEWAY_EXAMPLE, SCHEMAS["travel.metro"])
