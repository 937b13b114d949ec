"""The Kafka access map: least privilege for partners and services, secrets from the environment."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from carbonledger.contracts import access, topics
from carbonledger.contracts.access import Grant, Operation, Principal, Resource
from carbonledger.contracts.partners import parse_registry
from carbonledger.contracts.settings import Settings
from carbonledger.ops.admin import durability
from carbonledger.ops.kafka_access import acls_of, scram_mechanism

PARTNERS = ("shenzhen-metro", "navi-maps")


def by_name() -> dict[str, Principal]:
    return {p.name: p for p in access.principals(PARTNERS, "ledger-group")}


def topic_rights(principal: Principal, operation: Operation) -> set[tuple[str, bool]]:
    return {
        (g.name, g.prefixed)
        for g in principal.grants
        if g.resource is Resource.TOPIC and operation in g.operations
    }


def test_a_partner_may_write_only_its_own_topic_and_read_nothing() -> None:
    metro = by_name()["partner-shenzhen-metro"]
    assert topic_rights(metro, Operation.WRITE) == {("partner.shenzhen-metro.events", False)}
    assert topic_rights(metro, Operation.READ) == set()
    assert all(g.resource is Resource.TOPIC for g in metro.grants)


def test_only_ingest_reads_partner_topics_and_only_the_gateway_writes_all_of_them() -> None:
    principals = by_name()
    readers = {
        n for n, p in principals.items() if ("partner.", True) in topic_rights(p, Operation.READ)
    }
    writers = {
        n for n, p in principals.items() if ("partner.", True) in topic_rights(p, Operation.WRITE)
    }
    assert readers == {"svc-ingest"}
    assert writers == {"svc-gateway"}


@pytest.mark.parametrize(
    ("service", "reads", "writes"),
    [
        ("ingest", {"partner."}, {topics.VALIDATED, topics.REJECTED}),
        ("quantify", {topics.VALIDATED}, {topics.CLAIMS, topics.REJECTED}),
        (
            "dedupe",
            {topics.CLAIMS},
            {topics.DECISIONS, topics.ENGAGEMENT, topics.ACCOUNTS, topics.REJECTED, topics.CLAIMS},
        ),
        # It reads partners' dead letters too, for each partner to read its own.
        ("ledger-writer", {topics.DECISIONS, topics.ACCOUNTS, topics.REJECTED}, {topics.REJECTED}),
        ("ledger-publisher", set(), {topics.POSTINGS, topics.REGISTRY}),
    ],
)
def test_each_stage_reads_its_input_and_writes_its_outputs(
    service: str, reads: set[str], writes: set[str]
) -> None:
    principal = by_name()[access.service_principal_name(service)]
    internal = {n for n, prefixed in topic_rights(principal, Operation.CREATE) if prefixed}
    assert {n for n, _ in topic_rights(principal, Operation.READ)} - internal == reads
    assert {n for n, _ in topic_rights(principal, Operation.WRITE)} - internal == writes
    # The only topics it may create are its own faust internals, named by its app id.
    assert all(n.startswith("carbon-") and n.endswith("-") for n in internal)


def test_only_the_dedupe_stage_may_create_its_changelog() -> None:
    creators = {
        n
        for n, p in by_name().items()
        for name, prefixed in topic_rights(p, Operation.CREATE)
        if topics.DEDUPE_CHANGELOG.startswith(name) and prefixed
    }
    assert creators == {"svc-dedupe"}


def test_acls_expand_every_operation_of_every_grant() -> None:
    principal = Principal(
        "svc-x", (Grant(Resource.GROUP, "g", (Operation.READ, Operation.DESCRIBE)),)
    )
    acls = acls_of(principal)
    assert len(acls) == 2
    assert {a.principal for a in acls} == {"User:svc-x"}


def test_secrets_come_from_the_environment_and_dev_defaults_are_refused_in_production() -> None:
    assert access.secret_env("partner-navi-maps") == "CARBON_KAFKA_SECRET_PARTNER_NAVI_MAPS"
    env = {"CARBON_KAFKA_SECRET_SVC_INGEST": "s3cret-of-ingest-2026"}
    assert access.secret_of("svc-ingest", env, production=True) == "s3cret-of-ingest-2026"
    assert access.secret_of("svc-dedupe", env, production=False) == "svc-dedupe-dev-only"
    with pytest.raises(access.MissingSecret):
        access.secret_of("svc-dedupe", env, production=True)


def test_client_config_carries_the_principal_and_its_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CARBON_KAFKA_SECRET_PARTNER_NAVI_MAPS", "navi-secret")
    config = Settings().as_principal("partner-navi-maps").kafka_client_config()
    assert config["security_protocol"] == "SASL_PLAINTEXT"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (config["sasl_plain_username"], config["sasl_plain_password"]) == (
        "partner-navi-maps",
        "navi-secret",
    )


def test_sasl_ssl_gives_every_client_a_context_that_trusts_the_ca_file(tmp_path: Path) -> None:
    """An ssl.SSLContext, the one form both kafka-python and aiokafka (faust) take."""
    ca = trustme.CA()
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_ssl_cafile=cafile)
    config = settings.kafka_client_config()
    assert config["security_protocol"] == "SASL_SSL" and config["sasl_mechanism"] == "SCRAM-SHA-512"
    context = config["ssl_context"]
    assert isinstance(context, ssl.SSLContext) and context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert len(context.get_ca_certs()) == 1
    assert "ssl_context" not in Settings().kafka_client_config()  # SASL_PLAINTEXT: none


def test_production_refuses_an_unauthenticated_broker_connection() -> None:
    with pytest.raises(ValueError, match="PLAINTEXT"):
        Settings(
            environment="production",
            pg_password="a-real-database-password",
            kafka_security_protocol="PLAINTEXT",
        )


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("admin-dev-only", "a development secret"),
        ("svc-ingest-DEV-ONLY", "a development secret"),
        ("navi-maps-dev-secret", "a development secret"),
        ("carbon", "an example value"),
        ("change-me", "an example value"),
        ("PLACEHOLDER-CHANGE-ME", "an example value"),
        ("fifteen-chars-x", "shorter than 16"),
    ],
)
def test_production_refuses_development_example_and_short_secrets(
    monkeypatch: pytest.MonkeyPatch, value: str, why: str
) -> None:
    assert access.weak_secret(value) is not None and why in str(access.weak_secret(value))
    env = {"CARBON_KAFKA_SECRET_ADMIN": value}
    with pytest.raises(access.WeakSecret, match="CARBON_KAFKA_SECRET_ADMIN"):
        access.secret_of("admin", env, production=True)
    assert access.secret_of("admin", env, production=False) == value  # development: as set
    strong = "a-real-database-password"
    monkeypatch.setenv("CARBON_KAFKA_SECRET_ADMIN", value)
    with pytest.raises(ValueError, match="CARBON_KAFKA_SECRET_ADMIN"):
        Settings(environment="production", pg_password=strong)
    monkeypatch.delenv("CARBON_KAFKA_SECRET_ADMIN")
    with pytest.raises(ValueError, match="CARBON_PG_PASSWORD"):
        Settings(environment="production", pg_password=value)
    with pytest.raises(ValueError, match="CARBON_KAFKA_PASSWORD"):
        Settings(environment="production", pg_password=strong, kafka_password=value)
    assert Settings(environment="development", pg_password=value).pg_password


def test_production_takes_secrets_of_sixteen_characters_and_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CARBON_KAFKA_SECRET_ADMIN", "x" * access.MIN_SECRET_LENGTH)
    settings = Settings(environment="production", pg_password="p" * access.MIN_SECRET_LENGTH)
    assert settings.kafka_secret() == "x" * access.MIN_SECRET_LENGTH


def test_production_has_no_signing_secret_for_a_weak_one() -> None:
    entry = {"id": "a-app", "name": "A", "kind": "x", "behaviours": ["travel.metro"]}
    credentials = {"hmac_secret_env": "A_APP_SIGNING_SECRET"}
    partner = parse_registry({"partners": [{**entry, "credentials": credentials}]}).partners[0]
    weak = {"A_APP_SIGNING_SECRET": "a-app-dev-secret"}
    assert partner.signing_secret(weak, production=True) is None
    assert partner.signing_secret(weak, production=False) == b"a-app-dev-secret"
    strong = "a-signing-secret-of-the-partner"
    assert partner.signing_secret({"A_APP_SIGNING_SECRET": strong}, production=True) == (
        strong.encode()
    )


@pytest.mark.parametrize(
    ("login", "users"),
    [
        ("SCRAM-SHA-256", "SCRAM-SHA-256"),
        ("SCRAM-SHA-512", "SCRAM-SHA-512"),
        ("PLAIN", "SCRAM-SHA-512"),
    ],
)
def test_users_get_a_scram_secret_even_when_the_admin_logs_in_with_plain(
    login: str, users: str
) -> None:
    assert scram_mechanism(Settings(kafka_sasl_mechanism=login)) == users


def test_replicated_topics_require_two_in_sync_copies() -> None:
    assert durability(Settings()) == {}
    assert durability(Settings(topic_replication_factor=3)) == {"min.insync.replicas": "2"}
    with pytest.raises(ValueError):
        Settings(topic_replication_factor=0)


def test_only_the_publisher_writes_registry_events_and_subscribers_read_them() -> None:
    principals = by_name()
    writers = {
        n
        for n, p in principals.items()
        if (topics.REGISTRY, False) in topic_rights(p, Operation.WRITE)
    }
    readers = {
        n
        for n, p in principals.items()
        if (topics.REGISTRY, False) in topic_rights(p, Operation.READ)
    }
    assert writers == {"svc-ledger-publisher"}
    assert readers == {"incentive-points"}
