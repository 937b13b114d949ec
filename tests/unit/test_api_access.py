"""Who may read each ledger route (DOMAIN §14), without PostgreSQL: a request the
token allows goes on to the books (503 here: nothing listens), one outside its scope
is 403, one without a token or with a bad one is 401 with WWW-Authenticate, and the
public routes answer without a token. Tokens are minted as `carbonledger token`
mints them, with the development key of a scratch run folder."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi.testclient import TestClient

from carbonledger.contracts.roles import POLICY, Reading, Role
from carbonledger.runtime.tokens import (
    DEVELOPMENT_ISSUER,
    Grant,
    TokenSettings,
    development_key,
    mint_development_token,
)

ME, OTHER = "a" * 64, "b" * 64
FORBIDDEN = 403


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture()
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("CARBON_RUN_DIR", str(tmp_path))
    monkeypatch.delenv("CARBON_TOKEN_ISSUER", raising=False)
    monkeypatch.setenv("CARBON_PG_PORT", str(_free_port()))
    monkeypatch.setenv("CARBON_API_DB_WAIT_SECONDS", "0.2")
    from carbonledger.services.ledger.entrypoints.api import create_app

    with TestClient(create_app(), client=("127.0.0.1", 50000)) as made:
        yield made


def bearer(role: Role, **scope: Any) -> dict[str, str]:
    token = mint_development_token(TokenSettings(), Grant(role, **scope))
    return {"Authorization": f"Bearer {token}"}


Caller = tuple[Role, dict[str, str]]
NOBODY: dict[str, str] = {}
PERSON = (Role.PERSON, {"subject": ME})
UNIT = (Role.UNIT, {"subject": ME})
OTHER_PERSON = (Role.PERSON, {"subject": OTHER})
PARTNER = (Role.PARTNER, {"partner": "navi-maps"})
OTHER_PARTNER = (Role.PARTNER, {"partner": "shenzhen-metro"})
DISTRICT = (Role.GOVERNMENT, {"region": "440305"})  # 南山区
CITY = (Role.GOVERNMENT, {"region": "440300"})  # 深圳市
PROVINCE = (Role.GOVERNMENT, {"region": "440000"})
NATION = (Role.GOVERNMENT, {"region": "000000"})
SIBLING = (Role.GOVERNMENT, {"region": "440304"})  # 福田区
ELSEWHERE = (Role.GOVERNMENT, {"region": "110000"})
AUDITOR: Caller = (Role.AUDITOR, NOBODY)
OPERATOR: Caller = (Role.OPERATOR, NOBODY)
REGISTRY: Caller = (Role.REGISTRY, NOBODY)

# (path, callers allowed, callers refused)
CASES: list[tuple[str, list[tuple[Role, dict[str, str]]], list[tuple[Role, dict[str, str]]]]] = [
    (
        f"/v1/ledgers/personal/{ME}",
        [PERSON, AUDITOR, OPERATOR],
        [OTHER_PERSON, UNIT, PARTNER, NATION, REGISTRY],
    ),
    (f"/v1/ledgers/unit/{ME}", [UNIT, AUDITOR], [PERSON, PARTNER, NATION, REGISTRY]),
    (
        f"/v1/registry/proceeds/{ME}",
        [PERSON, UNIT, AUDITOR, OPERATOR],
        [OTHER_PERSON, PARTNER, NATION, REGISTRY],
    ),
    (f"/v1/consents/{ME}", [PERSON, UNIT, AUDITOR], [OTHER_PERSON, PARTNER, NATION, REGISTRY]),
    (f"/v1/ledgers/family/{ME}", [PERSON, OPERATOR], [OTHER_PERSON, PARTNER, NATION]),
    (
        "/v1/ledgers/enterprise/navi-maps",
        [PARTNER, AUDITOR, OPERATOR],
        [OTHER_PARTNER, PERSON, NATION, REGISTRY],
    ),
    ("/v1/ledgers/employer/navi-maps", [PARTNER, AUDITOR], [OTHER_PARTNER, PERSON, CITY]),
    (
        "/v1/ledgers/government/440305",
        [DISTRICT, CITY, PROVINCE, NATION, AUDITOR],
        [SIBLING, ELSEWHERE, PERSON, PARTNER, REGISTRY],
    ),
    ("/v1/ledgers/government/440300", [CITY, NATION], [DISTRICT, SIBLING, ELSEWHERE]),
    ("/v1/ledgers/government/999999", [AUDITOR], [CITY]),
    ("/v1/ledgers/totals", [NATION, AUDITOR, OPERATOR], [PROVINCE, PERSON, PARTNER, REGISTRY]),
    (
        "/v1/statistics/440305?period=month&at=2026-05-03",
        [DISTRICT, CITY, PROVINCE, AUDITOR],
        [SIBLING, ELSEWHERE, PERSON, PARTNER, REGISTRY],
    ),
    ("/v1/statistics/440300/csv?from=2026-01-01&to=2026-03-31", [CITY], [DISTRICT, PARTNER]),
    (
        "/v1/claims/navi-maps/trip-1",
        [PARTNER, AUDITOR, OPERATOR],
        [OTHER_PARTNER, NATION, REGISTRY],
    ),
    ("/v1/claims?source=navi-maps&id=trip-1", [PARTNER], [OTHER_PARTNER, CITY]),
    (
        "/v1/partners/navi-maps/rejections",
        [PARTNER, AUDITOR, OPERATOR],
        [OTHER_PARTNER, PERSON, NATION, REGISTRY],
    ),
]


@pytest.mark.parametrize(("path", "allowed", "refused"), CASES, ids=[c[0] for c in CASES])
def test_each_route_answers_its_scope_and_refuses_the_rest(
    client: TestClient,
    path: str,
    allowed: list[tuple[Role, dict[str, str]]],
    refused: list[tuple[Role, dict[str, str]]],
) -> None:
    for role, scope in allowed:
        answer = client.get(path, headers=bearer(role, **scope))
        # Allowed: on to the books (503 here, nothing listens) or to the table (404).
        assert answer.status_code in (503, 404), (role, scope, answer.text)
    for role, scope in refused:
        answer = client.get(path, headers=bearer(role, **scope))
        assert answer.status_code == FORBIDDEN, (role, scope, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["detail"] == "outside this token's scope"


def test_a_government_outside_is_refused_alike_for_a_region_that_does_not_exist(
    client: TestClient,
) -> None:
    """403 for a code the table lacks and for a real region elsewhere: no existence test."""
    missing = client.get("/v1/ledgers/government/999999", headers=bearer(CITY[0], **CITY[1]))
    elsewhere = client.get("/v1/ledgers/government/110105", headers=bearer(CITY[0], **CITY[1]))
    assert missing.status_code == elsewhere.status_code == 403
    assert missing.json()["detail"] == elsewhere.json()["detail"]


def test_without_a_token_every_protected_route_is_401_with_a_bearer_challenge(
    client: TestClient,
) -> None:
    for path, _, _ in CASES:
        answer = client.get(path)
        assert answer.status_code == 401, path
        assert answer.headers["www-authenticate"] == 'Bearer realm="carbonledger"'
        assert answer.json()["title"] == "Unauthorized"


def _foreign_token(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256")


def test_an_expired_foreign_signed_misaddressed_or_malformed_token_is_401(
    client: TestClient,
) -> None:
    now = int(time.time())
    settings = TokenSettings()
    expired = mint_development_token(settings, Grant(Role.AUDITOR, ttl_seconds=60), now=now - 120)
    good = Grant(Role.AUDITOR).claims(DEVELOPMENT_ISSUER, "carbonledger", now)
    local = development_key(settings.development_key_file)
    elsewhere = Grant(Role.AUDITOR).claims(DEVELOPMENT_ISSUER, "someone-else", now)
    other_issuer = Grant(Role.AUDITOR).claims("https://evil.example", "carbonledger", now)
    no_role = {k: v for k, v in good.items() if k != "role"}
    for token, why in [
        (expired, "the token has expired"),
        (_foreign_token(good), "InvalidSignatureError"),
        (jwt.encode(elsewhere, local, algorithm="ES256"), "InvalidAudienceError"),
        (jwt.encode(other_issuer, local, algorithm="ES256"), "InvalidIssuerError"),
        (jwt.encode(no_role, local, algorithm="ES256"), "MissingRequiredClaimError"),
        (jwt.encode(good | {"role": "king"}, local, algorithm="ES256"), "no role"),
        ("not.a.jwt", "DecodeError"),
    ]:
        answer = client.get("/v1/ledgers/totals", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, why
        challenge = answer.headers["www-authenticate"]
        assert 'error="invalid_token"' in challenge and why in challenge, (why, challenge)
    fine = jwt.encode(good, local, algorithm="ES256")
    assert (
        client.get("/v1/ledgers/totals", headers={"Authorization": f"Bearer {fine}"}).status_code
        == 503
    )


def _signed_with_another_kind_of_key(claims: dict[str, Any]) -> list[tuple[str, str]]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return [
        (jwt.encode(claims, rsa_key, algorithm="RS256"), "RS256"),
        (jwt.encode(claims, rsa_key, algorithm="PS256"), "PS256"),
        (jwt.encode(claims, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA"), "EdDSA"),
        (
            jwt.encode(claims, "a shared secret of some thirty-two bytes", algorithm="HS256"),
            "HS256",
        ),
    ]


def test_a_token_whose_algorithm_does_not_fit_the_key_is_401_not_500(client: TestClient) -> None:
    good = Grant(Role.AUDITOR).claims(DEVELOPMENT_ISSUER, "carbonledger", int(time.time()))
    for token, alg in _signed_with_another_kind_of_key(good):
        answer = client.get("/v1/ledgers/totals", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, alg
        assert 'error="invalid_token"' in answer.headers["www-authenticate"], alg
        login = client.post(
            "/portal/session", content=f"token={token}", headers=FORM, follow_redirects=False
        )
        assert login.status_code == 303, alg
        assert login.headers["location"].startswith("/portal/login?problem="), alg
        assert "set-cookie" not in login.headers, alg


class _OneKeyJwks:
    """A JWKS client that answers every token with one JWK (no network)."""

    def __init__(self, jwk: dict[str, Any]) -> None:
        self.jwk = jwt.PyJWK(jwk)

    def get_signing_key_from_jwt(self, token: str) -> jwt.PyJWK:
        return self.jwk


def test_with_a_jwks_only_the_jwks_own_algorithm_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jwt.algorithms import ECAlgorithm, RSAAlgorithm

    from carbonledger.runtime.tokens import InvalidToken, TokenVerifier

    monkeypatch.setenv("CARBON_RUN_DIR", str(tmp_path))
    settings = TokenSettings(
        token_issuer="https://id.example", token_jwks_url="https://id.example/j"
    )
    claims = Grant(Role.AUDITOR).claims("https://id.example", "carbonledger", int(time.time()))
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_jwk = ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True)
    rsa_jwk = RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True)
    verifier = TokenVerifier(settings)
    verifier._jwks = _OneKeyJwks(ec_jwk)  # type: ignore[assignment]
    assert verifier.principal(jwt.encode(claims, ec_key, algorithm="ES256")).role == Role.AUDITOR
    for token, _alg in _signed_with_another_kind_of_key(claims):
        with pytest.raises(InvalidToken):
            verifier.principal(token)
    verifier._jwks = _OneKeyJwks(rsa_jwk)  # type: ignore[assignment]
    with pytest.raises(InvalidToken):  # an EC-signed token against an RSA JWK
        verifier.principal(jwt.encode(claims, ec_key, algorithm="ES256"))
    verifier._jwks = _OneKeyJwks(rsa_jwk | {"alg": "PS256"})  # type: ignore[assignment]
    assert verifier.principal(jwt.encode(claims, rsa_key, algorithm="PS256")).role == Role.AUDITOR
    with pytest.raises(InvalidToken):  # the JWK says PS256: RS256 is refused
        verifier.principal(jwt.encode(claims, rsa_key, algorithm="RS256"))


def test_a_token_of_a_scoped_role_must_name_its_scope() -> None:
    with pytest.raises(ValueError, match="names its subject"):
        mint_development_token(TokenSettings(), Grant(Role.PERSON))


def test_the_public_routes_answer_without_a_token(client: TestClient) -> None:
    for path in ("/healthz", "/metrics", "/v1/methodologies", "/v1/openapi.json", "/v1/docs"):
        assert client.get(path).status_code == 200, path
    assert client.get("/v1/methodologies/shenzhen-public-transport/1").status_code == 200
    assert client.get("/readyz").status_code == 503  # public, and not ready without books


def test_the_docs_load_their_assets_from_the_api_itself(client: TestClient) -> None:
    """Swagger UI and ReDoc name no CDN: each script and style they load is served here."""
    for page in ("/v1/docs", "/v1/redoc"):
        html = client.get(page).text
        assert "cdn." not in html and "https://" not in html.split("<body>")[0]
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
            if asset in html:
                assert client.get(f"/v1/docs-assets/{asset}").status_code == 200


def test_no_route_is_left_neither_public_nor_protected() -> None:
    from carbonledger.runtime.bearer import undeclared_routes
    from carbonledger.services.ledger.entrypoints.api import create_app

    assert undeclared_routes(create_app()) == []


def test_the_openapi_names_the_bearer_scheme_and_each_error_status() -> None:
    from carbonledger.services.ledger.entrypoints.api import create_app

    doc = create_app().openapi()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    personal = doc["paths"]["/v1/ledgers/personal/{subject}"]["get"]
    assert {"401", "403", "404", "422", "503"} <= set(personal["responses"])
    assert personal["security"] == [{"HTTPBearer": []}]
    assert "security" not in doc["paths"]["/v1/methodologies"]["get"]
    assert "Problem" in doc["components"]["schemas"]


def test_every_reading_is_someones_and_the_registry_reads_nothing_here() -> None:
    assert set().union(*POLICY.values()) == set(Reading)
    assert POLICY[Role.REGISTRY] == frozenset()


def test_production_refuses_to_start_without_an_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("CARBON_ENVIRONMENT", "production")
    monkeypatch.delenv("CARBON_TOKEN_ISSUER", raising=False)
    with pytest.raises(ValidationError, match="CARBON_TOKEN_ISSUER is required"):
        TokenSettings()
    monkeypatch.setenv("CARBON_TOKEN_ISSUER", "https://id.example.gov.cn")
    with pytest.raises(ValidationError, match="JWKS_URL or CARBON_TOKEN_PUBLIC_KEY_FILE"):
        TokenSettings()
    monkeypatch.setenv("CARBON_TOKEN_JWKS_URL", "https://id.example.gov.cn/jwks.json")
    assert not TokenSettings().trusts_development_key


def test_a_configured_issuer_accepts_its_key_and_not_the_development_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.hazmat.primitives import serialization

    from carbonledger.runtime.tokens import InvalidToken, TokenVerifier

    monkeypatch.setenv("CARBON_RUN_DIR", str(tmp_path))
    dev = mint_development_token(TokenSettings(), Grant(Role.AUDITOR))
    issuer_key = ec.generate_private_key(ec.SECP256R1())
    public_file = tmp_path / "issuer.pem"
    public_file.write_bytes(
        issuer_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    settings = TokenSettings(token_issuer="https://id.example", token_public_key_file=public_file)
    verifier = TokenVerifier(settings)
    theirs = Grant(Role.GOVERNMENT, region="440300").claims(
        "https://id.example", "carbonledger", int(time.time())
    )
    found = verifier.principal(jwt.encode(theirs, issuer_key, algorithm="ES256"))
    assert (found.role, found.region) == (Role.GOVERNMENT, "440300")
    with pytest.raises(InvalidToken):
        verifier.principal(dev)
    with pytest.raises(PermissionError):
        mint_development_token(settings, Grant(Role.AUDITOR))


FORM = {"content-type": "application/x-www-form-urlencoded"}


def test_the_portal_sends_an_anonymous_visitor_to_log_in(client: TestClient) -> None:
    for path in ("/portal", "/portal/region/440300", f"/portal/person/{ME}"):
        answer = client.get(path, follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (303, "/portal/login"), path
    login = client.get("/portal/login")
    assert login.status_code == 200 and 'id="development-login"' in login.text
    assert "https://" not in login.text  # nothing loaded from elsewhere


def test_the_development_login_sets_the_token_cookie_and_lands_on_the_roles_page(
    client: TestClient,
) -> None:
    made = client.post(
        "/portal/session/development", content="role=government&region=440300", headers=FORM,
        follow_redirects=False,
    )  # fmt: skip
    assert made.status_code == 303 and made.headers["location"] == "/portal"
    cookie = made.headers["set-cookie"]
    assert "carbon_token=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    home = client.get("/portal", follow_redirects=False)
    assert home.headers["location"] == "/portal/region/440300"
    outside = client.get("/portal/region/110000")  # checked before the books are read
    assert outside.status_code == 403 and "text/html" in outside.headers["content-type"]
    assert client.get("/v1/ledgers/government/110000").status_code == 403  # the cookie counts
    assert client.get("/portal/logout").status_code == 405  # a link cannot log out
    assert client.post("/portal/logout", follow_redirects=False).status_code == 303
    assert client.get("/portal", follow_redirects=False).headers["location"] == "/portal/login"


def test_a_pasted_token_logs_in_and_a_bad_one_is_sent_back_with_why(client: TestClient) -> None:
    token = bearer(Role.PARTNER, partner="navi-maps")["Authorization"][7:]
    good = client.post(
        "/portal/session", content=f"token={token}", headers=FORM, follow_redirects=False
    )
    assert "carbon_token=" in good.headers["set-cookie"]
    assert client.get("/portal", follow_redirects=False).headers["location"] == (
        "/portal/partner/navi-maps"
    )
    bad = client.post(
        "/portal/session", content="token=x.y.z", headers=FORM, follow_redirects=False
    )
    assert bad.headers["location"].startswith("/portal/login?problem=")
    refused = client.post(
        "/portal/session/development", content="role=person", headers=FORM, follow_redirects=False
    )
    assert "names+its+subject" in refused.headers["location"]


@pytest.fixture()
def remote(client: TestClient) -> Iterator[TestClient]:
    """The same app, reached from another host."""
    with TestClient(client.app, client=("203.0.113.7", 50000)) as made:
        yield made


def test_the_development_key_is_trusted_only_for_clients_on_this_host(
    remote: TestClient,
) -> None:
    answer = remote.get("/v1/ledgers/totals", headers=bearer(Role.AUDITOR))
    assert answer.status_code == 401
    assert "only for clients on this host" in answer.headers["www-authenticate"]
    login = remote.post(
        "/portal/session/development", content="role=auditor", headers=FORM,
        follow_redirects=False,
    )  # fmt: skip
    assert login.status_code == 403 and "set-cookie" not in login.headers
    token = bearer(Role.AUDITOR)["Authorization"][7:]
    pasted = remote.post(
        "/portal/session", content=f"token={token}", headers=FORM, follow_redirects=False
    )
    assert pasted.headers["location"].startswith("/portal/login?problem=")


def test_another_sites_form_may_not_log_in_or_out(client: TestClient) -> None:
    for foreign in (
        {"origin": "https://evil.example"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
    ):
        for path, body in (
            ("/portal/session/development", "role=auditor"),
            ("/portal/session", "token=x.y.z"),
            ("/portal/logout", ""),
        ):
            answer = client.post(path, content=body, headers=FORM | foreign, follow_redirects=False)
            assert answer.status_code == 403, (path, foreign)
            assert "set-cookie" not in answer.headers, (path, foreign)
    own = {"origin": str(client.base_url), "sec-fetch-site": "same-origin"}
    made = client.post(
        "/portal/session/development", content="role=auditor", headers=FORM | own,
        follow_redirects=False,
    )  # fmt: skip
    assert made.status_code == 303 and "carbon_token=" in made.headers["set-cookie"]


def test_a_login_form_past_the_limit_is_refused_without_reading_it_whole(
    client: TestClient,
) -> None:
    from carbonledger.services.ledger.entrypoints.api.portal.pages import FORM_LIMIT

    big = "token=" + "x" * FORM_LIMIT
    assert client.post("/portal/session", content=big, headers=FORM).status_code == 413

    def streamed() -> Iterator[bytes]:  # no content-length: read as it streams
        for _ in range(64):
            yield b"x" * 1024

    answer = client.post("/portal/session", content=streamed(), headers=FORM)
    assert answer.status_code == 413
