"""The whole pipeline over SASL_SSL, as in production: a second stack whose broker also
listens with SASL_SSL (a certificate from a CA made by deploy/local/kafka.sh), and every
Kafka client of the platform (stream stages, ledger writer, publisher, gateway, admin
and test clients) connecting there with the CA file. The plaintext listener remains
only for the broker's own traffic."""

from __future__ import annotations

import os
import shutil
import ssl
import urllib.request
from collections.abc import Iterator

import psycopg
import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaError

from carbonledger.contracts.settings import ROOT, Settings
from carbonledger.ops import lifecycle
from carbonledger.ops.publish import publish
from tests.integration.helpers import expected, trips, wait_for_balances

pytestmark = pytest.mark.integration

# Half-way between this checkout's slot and the next one's: ports of neither stack.
_SLOT = int(os.environ.get("CARBON_TEST_SLOT", "0"))
_SHIFT = 100 * _SLOT + 50
RUN_DIR = ROOT / ".run" / f"test-stack-tls-{_SLOT}"
TLS_PORT = 29094 + _SHIFT
JMX_PORT = 29095 + _SHIFT
TLS_ENV = {
    "CARBON_ENVIRONMENT": "test",
    "CARBON_RUN_DIR": str(RUN_DIR),
    "CARBON_KAFKA_PORT": str(29092 + _SHIFT),
    "CARBON_KAFKA_CONTROLLER_PORT": str(29093 + _SHIFT),
    "CARBON_KAFKA_TLS_PORT": str(TLS_PORT),
    # This broker also runs the JMX exporter's agent (deploy/kafka/jmx-exporter.yml).
    "CARBON_KAFKA_JMX_PORT": str(JMX_PORT),
    "CARBON_KAFKA_BOOTSTRAP": f"127.0.0.1:{TLS_PORT}",
    "CARBON_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "CARBON_KAFKA_SSL_CAFILE": str(RUN_DIR / "kafka" / "tls" / "ca.pem"),
    "CARBON_PG_PORT": str(25432 + _SHIFT),
    "CARBON_PORT_OFFSET": str(1000 + _SHIFT),
}


@pytest.fixture(scope="module")
def tls_settings() -> Iterator[Settings]:
    saved = {k: os.environ.get(k) for k in TLS_ENV}
    os.environ.update(TLS_ENV)  # the services the stack starts inherit it
    settings = Settings()
    try:
        lifecycle.down(settings)
        shutil.rmtree(RUN_DIR, ignore_errors=True)
        lifecycle.up(settings)
        yield settings
    finally:
        if not os.environ.get("CARBON_KEEP_TEST_STACK"):
            lifecycle.down(settings)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_the_pipeline_credits_over_sasl_ssl(tls_settings: Settings) -> None:
    records = trips("tls", 24, people=4, seed=23)
    assert publish(tls_settings, records) == len(records)
    want = dict(expected(tls_settings, records).personal)
    with psycopg.connect(tls_settings.pg_conninfo, autocommit=True) as db:
        assert want and wait_for_balances(tls_settings, db, want) == want


def test_a_client_that_does_not_trust_the_ca_is_refused(tls_settings: Settings) -> None:
    """The listener really is TLS with the local CA: the system's trust store fails it."""
    config = tls_settings.kafka_client_config() | {"ssl_context": ssl.create_default_context()}
    with pytest.raises(KafkaError):
        KafkaProducer(**config, max_block_ms=5000).partitions_for("behaviour.validated")


def test_the_broker_exports_its_jmx_beans_in_the_conventional_names(
    tls_settings: Settings,
) -> None:
    """The broker that carried the pipeline above, through the JMX exporter's agent."""
    with urllib.request.urlopen(f"http://127.0.0.1:{JMX_PORT}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    assert "kafka_server_brokertopicmetrics_messagesinpersec_total" in text
    assert 'topic="behaviour.validated"' in text
