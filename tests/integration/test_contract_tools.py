"""The contract documents through the ecosystem's own tools, as a partner would use them:
the official AsyncAPI parser (npm), an OpenAPI validator (PyPI), and a client generated
by openapi-python-client that posts a signed event to the gateway. The tools are pinned
and installed under .run/tools by deploy/local/contract-tools.sh (`make setup`)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from carbonledger_partner.signing import GatewaySignature
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from carbonledger.contracts.schemas import GATEWAY_EXAMPLE
from carbonledger.ops.contract_docs import CONTRACT_DIR
from carbonledger.services.ingest.config import IngestSettings
from carbonledger.services.ingest.entrypoints.gateway import create_app
from carbonledger.services.ingest.gateway_service import Gateway
from carbonledger.services.ledger.entrypoints.api.main import create_app as ledger_app
from tests.factories import registry

pytestmark = pytest.mark.integration

TOOLS = Path(__file__).resolve().parents[2] / "deploy" / "local" / "contract-tools.sh"
ASYNCAPI = CONTRACT_DIR / "asyncapi.yaml"
GATEWAY = CONTRACT_DIR / "gateway.openapi.json"


def tool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(TOOLS), *args], capture_output=True, text=True, check=False, cwd=cwd
    )


def test_the_asyncapi_parser_accepts_the_contract() -> None:
    parsed = tool("asyncapi", str(ASYNCAPI))
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr


def test_the_asyncapi_parser_refuses_an_unresolvable_reference(tmp_path: Path) -> None:
    """What the document once had: a pydantic `$defs` reference from inside a payload."""
    doc = yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8"))
    payload = doc["channels"]["claims"]["messages"]["record"]["payload"]
    payload["properties"]["methodology"] = {"$ref": "#/$defs/MethodologyRef"}
    broken = tmp_path / "asyncapi.yaml"
    broken.write_text(yaml.safe_dump(doc), encoding="utf-8")
    parsed = tool("asyncapi", str(broken))
    assert parsed.returncode != 0 and "invalid-ref" in parsed.stdout


def test_the_openapi_documents_validate() -> None:
    validate(json.loads(GATEWAY.read_text(encoding="utf-8")))
    validate(ledger_app().openapi())


class Received:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def send_all(self, topic: str, records: list[bytes]) -> None:
        self.sent += [(topic, r) for r in records]


@pytest.fixture()
def generated(tmp_path: Path) -> Iterator[str]:
    """A client generated from the committed OpenAPI, importable for the test."""
    config = tmp_path / "config.yaml"
    config.write_text("post_hooks: []\n", encoding="utf-8")
    made = tool(
        "openapi-client",
        "generate",
        "--path",
        str(GATEWAY),
        "--meta",
        "none",
        "--config",
        str(config),
        "--fail-on-warning",
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield "carbon_inclusion_ledger_partner_event_gateway_client"
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("carbon_inclusion_ledger")]:
            del sys.modules[name]


def test_a_generated_client_posts_a_signed_event(generated: str) -> None:
    client_module: Any = importlib.import_module(f"{generated}.client")
    post_events: Any = importlib.import_module(f"{generated}.api.events.post_events")
    models: Any = importlib.import_module(f"{generated}.models")
    app, received = create_app(), Received()
    app.state.gateway = Gateway(IngestSettings(environment="test"), registry(), received)
    http = TestClient(app)
    http.auth = GatewaySignature("shenzhen-metro", b"shenzhen-metro-dev-secret")
    client = client_module.Client(base_url="http://testserver").set_httpx_client(http)
    event = models.CloudEvent.from_dict(GATEWAY_EXAMPLE | {"id": "generated-1"})
    answer = post_events.sync_detailed(client=client, body=[event])
    assert answer.status_code == 200, answer.content
    assert answer.parsed.accepted == 1 and answer.parsed.results[0].id == "generated-1"
    [(topic, sent)] = received.sent
    assert topic == "partner.shenzhen-metro.events" and json.loads(sent)["id"] == "generated-1"
    unsigned = client_module.Client(base_url="http://testserver").set_httpx_client(TestClient(app))
    refused = post_events.sync_detailed(client=unsigned, body=event)
    assert refused.status_code == 401 and "X-Carbon-Partner" in refused.parsed.detail
