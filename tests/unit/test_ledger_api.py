"""The ledger API's shape without PostgreSQL: nothing built on import, the same
operations and schemas as always, and the registry served from the lifespan."""

from __future__ import annotations

import json
import subprocess
import sys

from fastapi.testclient import TestClient

OPERATIONS = [
    ("get", "/healthz", "health-healthz"),
    ("get", "/readyz", "health-readyz"),
    ("get", "/v1/ledgers/personal/{subject}", "ledgers-personal_ledger"),
    ("get", "/v1/ledgers/enterprise/{partner}", "ledgers-enterprise_ledger"),
    ("get", "/v1/ledgers/employer/{employer}", "ledgers-employer_ledger"),
    ("get", "/v1/ledgers/government/{region}", "ledgers-government_ledger"),
    ("get", "/v1/claims/{source}/{event_id}", "claims-explain_claim"),
    ("get", "/v1/claims", "claims-explain_claim_by_query"),
    ("get", "/v1/methodologies", "methodologies-methodologies"),
    ("get", "/v1/methodologies/{methodology_id}/{version}", "methodologies-methodology"),
    ("get", "/v1/ledgers/totals", "ledgers-totals"),
]


def test_importing_the_api_builds_no_app_and_no_other_service() -> None:
    probe = (
        "import json, sys; import carbonledger.services.ledger.entrypoints.api as api; "
        "print(json.dumps(['app' in vars(api), sorted(m for m in sys.modules "
        "if m.startswith('carbonledger.services.') and '.ledger' not in m)]))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [False, []]


def test_the_openapi_document_keeps_every_operation_and_schema() -> None:
    from carbonledger.services.ledger.entrypoints.api import create_app

    doc = create_app().openapi()
    found = [(m, p, op["operationId"]) for p, ops in doc["paths"].items() for m, op in ops.items()]
    assert sorted(found) == sorted(OPERATIONS)
    schemas = set(doc["components"]["schemas"])
    assert {"PersonalLedger", "ClaimExplanation", "Methodology", "BookTotals"} <= schemas
    assert doc["info"]["title"] == "Carbon inclusion ledger"
    personal = doc["paths"]["/v1/ledgers/personal/{subject}"]["get"]
    assert [p["name"] for p in personal["parameters"]] == ["subject", "limit", "before"]


def test_methodologies_are_served_from_the_registry_the_lifespan_loads() -> None:
    from carbonledger.services.ledger.entrypoints.api import create_app

    with TestClient(create_app()) as client:  # the pool opens, but nothing here reads it
        listed = client.get("/v1/methodologies").json()
        one = client.get("/v1/methodologies/shenzhen-public-transport/1")
        missing = client.get("/v1/methodologies/shenzhen-public-transport/999")
    assert ("shenzhen-public-transport", "1") in {(m["id"], m["version"]) for m in listed}
    assert one.status_code == 200 and one.json()["factors"]
    assert missing.status_code == 404
