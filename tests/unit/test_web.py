"""The health and metrics answers shared by every process, and their FastAPI router."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from carbonledger.contracts.metrics import exposition
from carbonledger.contracts.settings import Settings
from carbonledger.runtime.stage import _credentials
from carbonledger.runtime.web import alive, health_router, readiness_status


def open_doors(request: Request) -> dict[str, bool]:
    return {"ready": getattr(request.app.state, "doors_open", False)}


def client(*, documented: bool) -> TestClient:
    app = FastAPI()
    app.include_router(health_router(open_doors, documented=documented, tags=["health"]))
    return TestClient(app)


def get(served: TestClient, path: str) -> httpx.Response:
    # starlette's TestClient subclasses httpx2's Client if it can, so mypy sees no types on it.
    answer: httpx.Response = served.get(path)
    return answer


def test_readyz_answers_the_readiness_body_which_may_ask_for_the_request() -> None:
    served = client(documented=False)
    closed = get(served, "/readyz")
    served.app.state.doors_open = True  # type: ignore[attr-defined]
    opened = get(served, "/readyz")
    # 503 while not ready, so a balancer (and `carbonledger up`) waits, as for a stage.
    assert (closed.status_code, closed.json()) == (503, {"ready": False})
    assert (opened.status_code, opened.json()) == (200, {"ready": True})


def test_healthz_and_metrics_answer_what_the_shared_functions_say() -> None:
    served = client(documented=False)
    health, scraped = get(served, "/healthz"), get(served, "/metrics")
    assert health.json() == alive() == {"status": "alive"}
    assert scraped.headers["content-type"] == exposition()[1]
    assert b"# TYPE" in scraped.content


@pytest.mark.parametrize("documented", [True, False])
def test_only_a_documented_router_shows_healthz_and_readyz_never_metrics(documented: bool) -> None:
    doc = client(documented=documented).app.openapi()  # type: ignore[attr-defined]
    paths = sorted(doc.get("paths", {}))
    assert paths == (["/healthz", "/readyz"] if documented else [])
    if documented:
        ready = doc["paths"]["/readyz"]["get"]
        schema = ready["responses"]["200"]["content"]["application/json"]["schema"]
        assert ready["tags"] == ["health"] and schema["additionalProperties"] == {"type": "boolean"}


def test_a_stage_that_is_not_ready_answers_503() -> None:
    assert readiness_status({"ready": True, "lag_records": 0}) == 200
    assert readiness_status({"ready": False, "lag_records": 9000}) == 503


def test_a_stream_stage_speaks_sasl_ssl_with_the_settings_context() -> None:
    """faust takes SASL_SSL only as SASL credentials that carry an SSL context."""
    settings = Settings(kafka_security_protocol="SASL_SSL")
    credentials = _credentials(settings)
    assert credentials is not None and credentials.protocol.value == "SASL_SSL"
    assert credentials.ssl_context is settings.kafka_ssl_context()
    plain = _credentials(Settings())
    assert plain is not None and plain.protocol.value == "SASL_PLAINTEXT"
