"""The ledger API's shape without PostgreSQL: nothing built on import, the same
operations and schemas as always, and the registry served from the lifespan."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

OPERATIONS = [
    ("get", "/healthz", "health-healthz"),
    ("get", "/readyz", "health-readyz"),
    ("get", "/v1/ledgers/personal/{subject}", "ledgers-personal_ledger"),
    ("get", "/v1/ledgers/enterprise/{partner}", "ledgers-enterprise_ledger"),
    ("get", "/v1/ledgers/employer/{employer}", "ledgers-employer_ledger"),
    ("get", "/v1/ledgers/family/{head}", "ledgers-family_ledger"),
    ("get", "/v1/ledgers/unit/{subject}", "ledgers-unit_ledger"),
    ("get", "/v1/consents/{subject}", "consents-consent_history"),
    ("get", "/v1/ledgers/government/{region}", "ledgers-government_ledger"),
    ("get", "/v1/claims/{source}/{event_id}", "claims-explain_claim"),
    ("get", "/v1/claims", "claims-explain_claim_by_query"),
    ("get", "/v1/methodologies", "methodologies-methodologies"),
    ("get", "/v1/methodologies/{methodology_id}/{version}", "methodologies-methodology"),
    ("get", "/v1/ledgers/totals", "ledgers-totals"),
    ("get", "/v1/registry/issuances", "registry-issuances"),
    ("get", "/v1/registry/issuances/{issuance_id}", "registry-issuance"),
    ("get", "/v1/registry/serials/{serial}", "registry-serial_lineage"),
    ("get", "/v1/registry/retirements", "registry-retirements"),
    ("get", "/v1/registry/accounts/{account}", "registry-account_balance"),
    ("get", "/v1/registry/proceeds/{account}", "registry-proceeds"),
    ("get", "/v1/registry/shortfalls", "registry-shortfalls"),
    ("get", "/v1/statistics/{region}", "statistics-statistics_of_region"),
    ("get", "/v1/statistics/{region}/csv", "statistics-statistics_csv"),
    ("get", "/v1/partners/{partner}/rejections", "partners-partner_rejections"),
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

    with TestClient(
        create_app(), client=("127.0.0.1", 50000)
    ) as client:  # the pool opens, but nothing here reads it
        listed = client.get("/v1/methodologies").json()
        one = client.get("/v1/methodologies/shenzhen-public-transport/1")
        missing = client.get("/v1/methodologies/shenzhen-public-transport/999")
    assert ("shenzhen-public-transport", "1") in {(m["id"], m["version"]) for m in listed}
    assert one.status_code == 200 and one.json()["factors"]
    assert missing.status_code == 404


@pytest.fixture()
def no_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """PostgreSQL where nothing listens, and a short wait for a connection (and a
    scratch run folder, for the development key the tokens are signed with)."""
    monkeypatch.setenv("CARBON_RUN_DIR", str(tmp_path))
    monkeypatch.setenv("CARBON_PG_PORT", str(_free_port()))
    monkeypatch.setenv("CARBON_API_DB_WAIT_SECONDS", "0.5")


def auditor() -> dict[str, str]:
    """A bearer token reading everything (the access rules are test_api_access's)."""
    from carbonledger.contracts.roles import Role
    from carbonledger.runtime.tokens import Grant, TokenSettings, mint_development_token

    return {
        "Authorization": f"Bearer {mint_development_token(TokenSettings(), Grant(Role.AUDITOR))}"
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_without_the_database_reads_are_503_with_retry_after_and_readyz_is_503(
    no_database: None,
) -> None:
    from carbonledger.services.ledger.entrypoints.api import create_app

    with TestClient(create_app(), client=("127.0.0.1", 50000)) as client:
        totals = client.get("/v1/ledgers/totals", headers=auditor())
        ready = client.get("/readyz")
        alive = client.get("/healthz")
    assert totals.status_code == 503 and totals.headers["retry-after"] == "5"
    assert "no database connection" in totals.json()["detail"]
    assert (ready.status_code, ready.json()) == (503, {"ready": False})
    assert alive.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/v1/claims/navi-maps/a%00b",
        "/v1/claims?source=navi-maps&id=a%00b",
        "/v1/claims?source=navi%0Amaps&id=a",
        "/v1/ledgers/personal/%7F",
        "/v1/ledgers/enterprise/navi%1Bmaps",
        "/v1/ledgers/government/%C2%85",  # C1 NEXT LINE
    ],
)
def test_control_characters_in_parameters_are_422_before_the_books_are_read(
    no_database: None, path: str
) -> None:
    from carbonledger.services.ledger.entrypoints.api import create_app

    with TestClient(create_app(), client=("127.0.0.1", 50000)) as client:
        answer = client.get(path)
    assert answer.status_code == 422 and "control character U+" in answer.json()["detail"]


class RecordingBooks:
    """Books whose reads record which event was asked for, and find no decision."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    @contextmanager
    def reading(self) -> Iterator[Any]:
        yield self


@pytest.mark.parametrize(
    ("path", "event_id"),
    [
        ("/v1/claims/navi-maps/trip/42", "trip/42"),
        ("/v1/claims/navi-maps/trip%2F42", "trip/42"),
        ("/v1/claims?source=navi-maps&id=trip%2F42%3Fx%23y%25", "trip/42?x#y%"),
        ("/v1/claims?source=navi-maps&id=trip/", "trip/"),
    ],
)
def test_an_event_id_with_a_slash_can_be_explained(
    no_database: None, monkeypatch: pytest.MonkeyPatch, path: str, event_id: str
) -> None:
    from carbonledger.services.ledger.adapters import views
    from carbonledger.services.ledger.entrypoints.api import create_app, deps

    books = RecordingBooks()

    def decisions_of(conn: Any, source: str, asked: str) -> list[Any]:
        books.asked.append((source, asked))
        return []

    monkeypatch.setattr(views, "decisions_of", decisions_of)
    app = create_app()
    app.dependency_overrides[deps.books] = lambda: books
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        answer = client.get(path, headers=auditor())
    assert answer.status_code == 404 and "no decision recorded" in answer.json()["detail"]
    assert books.asked == [("navi-maps", event_id)]


def test_a_request_waits_a_bounded_time_for_a_connection() -> None:
    from psycopg_pool import PoolTimeout

    from carbonledger.services.ledger.entrypoints.api.deps import Books, BooksUnavailable

    class BusyPool:
        waited: float | None = None

        @contextmanager
        def connection(self, timeout: float) -> Iterator[Any]:
            self.waited = timeout
            raise PoolTimeout("all taken")
            yield

    pool = BusyPool()
    with pytest.raises(BooksUnavailable) as busy, Books(pool, 2.5, 7).reading():  # type: ignore[arg-type]
        pass
    assert pool.waited == 2.5 and busy.value.retry_after == 7


def test_requests_are_counted_by_route_template_never_by_path(no_database: None) -> None:
    from carbonledger.services.ledger.entrypoints.api import create_app
    from carbonledger.services.ledger.metrics import API_REQUESTS

    def count(route: str, status: str) -> float:
        return float(API_REQUESTS.labels(route, "GET", status)._value.get())

    claim, nowhere = "/v1/claims/{source}/{event_id}", "unmatched"
    before = count(claim, "422"), count(nowhere, "404"), count("/v1/ledgers/totals", "503")
    with TestClient(create_app(), client=("127.0.0.1", 50000)) as client:
        client.get("/v1/claims/navi-maps/trip/4%002")
        client.get("/nowhere")
        client.get("/v1/ledgers/totals", headers=auditor())
    after = count(claim, "422"), count(nowhere, "404"), count("/v1/ledgers/totals", "503")
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]
