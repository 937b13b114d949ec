"""The published contract documents are what the code enforces, and stay so."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from carbonledger.contracts.schemas import behaviour_schemas
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


def test_asyncapi_names_every_behaviour_and_the_partner_topic() -> None:
    doc = yaml.safe_load((CONTRACT_DIR / "asyncapi.yaml").read_text(encoding="utf-8"))
    assert doc["asyncapi"] == "3.0.0"
    channel = doc["channels"]["partnerEvents"]
    assert channel["address"] == "partner.{partnerId}.events"
    assert {m["name"] for m in channel["messages"].values()} == set(VALID)
