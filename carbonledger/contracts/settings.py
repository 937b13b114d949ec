"""Configuration from environment variables (prefix CARBON_), shared by every process."""

from __future__ import annotations

import logging
import os
import ssl
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from carbonledger.contracts import access

DEV_PASSWORD = "carbon-dev-only"
PIPELINE_METADATA_MAX_AGE_MS = 10_000
# kafka-python backs reconnect attempts off exponentially to 30 s by default: after a
# 20 s broker outage its clients (partner traffic, the gateway, the outbox relay, the
# bench) waited up to half a minute more. aiokafka retries every retry_backoff_ms.
PLAIN_RECONNECT_BACKOFF_MAX_MS = 1_000

# kafka-python warns on every SASL_PLAINTEXT connection. SCRAM never sends the
# password itself; the local stack is loopback only, and production sets SASL_SSL.
logging.getLogger("kafka.net.sasl.scram").setLevel(logging.ERROR)
ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Settings every service reads. See docs/configuration.md for each variable."""

    model_config = SettingsConfigDict(env_prefix="CARBON_", env_ignore_empty=True, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    run_dir: Path = ROOT / ".run"

    kafka_host: str = "127.0.0.1"
    kafka_port: int = 19092
    kafka_bootstrap: str | None = None
    # Every client authenticates as one principal (carbonledger/contracts/access.py).
    # Its secret is CARBON_KAFKA_PASSWORD, else CARBON_KAFKA_SECRET_<USERNAME>.
    kafka_security_protocol: Literal["SASL_PLAINTEXT", "SASL_SSL", "PLAINTEXT"] = "SASL_PLAINTEXT"
    # PLAIN is for brokers whose super user is a static login (docker-compose's admin).
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_username: str = access.ADMIN
    kafka_password: SecretStr | None = None
    # SASL_SSL: the CA that signed the brokers' certificates (PEM); unset, the system's
    # trust store. Hostnames are always checked.
    kafka_ssl_cafile: Path | None = None
    topic_partitions: int = 8
    partner_topic_partitions: int = 4
    # Copies of each topic the project creates (and of faust's changelogs): 1 on one
    # broker, 3 on a production cluster, where min.insync.replicas becomes 2.
    topic_replication_factor: int = Field(default=1, ge=1)

    pg_host: str = "127.0.0.1"
    pg_port: int = 15432
    pg_user: str = "carbon"
    pg_password: SecretStr = SecretStr(DEV_PASSWORD)
    pg_database: str = "carbonledger"

    # Added to every service's HTTP port, so a second stack (the tests') can run beside one.
    port_offset: int = 0

    # Where the alerts' runbooks are published (docs/runbooks/ of this repository): the
    # absolute base of every runbook_url, the external label `runbook_base` of Prometheus.
    runbook_base_url: str = "https://carbonledger.example/docs/runbooks"

    # Every process's log lines (runtime/logs.py): plain text, or one JSON object a line.
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Where every service's HTTP port listens: loopback on one machine, 0.0.0.0 in a
    # container so that Prometheus and the orchestrator's probes can reach it.
    web_host: str = "127.0.0.1"
    # The local Prometheus (`carbonledger monitoring start`), plus port_offset.
    prometheus_port: int = 9090
    # /readyz answers 503 while this process's consumer lag is above this many records.
    ready_max_lag: int = 100_000

    # How long a stream stage's producer waits to fill a batch (latency for CPU).
    stream_linger_ms: int = 5
    # How long a pipeline consumer's fetch may wait for more records (up to
    # stream_fetch_min_bytes). With the broker's default of one byte, a stage that
    # keeps up re-fetches as soon as each answer lands, a few records at a time, and
    # the per-batch costs (fetch, produce, commit) outgrow the records' own.
    stream_fetch_min_bytes: int = 65_536
    stream_fetch_max_wait_ms: int = 50
    # How often a stage commits its consumed offsets to Kafka (runtime/commits.py):
    # held offsets are all acknowledged, so a longer interval costs only re-reading
    # after a crash, never a record.
    stream_commit_interval_ms: int = 1_000

    # Dedupe keeps claims this long in event time (docs/dedupe.md); `settle` uses it too.
    dedupe_window: timedelta = timedelta(days=7)

    partners_file: Path = ROOT / "deploy" / "partners.yaml"
    methodology_dir: Path = ROOT / "carbonledger" / "services" / "quantify" / "registry"

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Settings:
        if self.production:
            self._refuse_weak_secrets()
        if self.production and self.kafka_security_protocol == "PLAINTEXT":
            raise ValueError("CARBON_KAFKA_SECURITY_PROTOCOL=PLAINTEXT is refused in production")
        return self

    def _refuse_weak_secrets(self) -> None:
        """Development and example values are public, and short ones guessable: refused
        even when set on purpose (access.weak_secret)."""
        access.refuse_weak("CARBON_PG_PASSWORD", self.pg_password.get_secret_value())
        if self.kafka_password is not None:
            access.refuse_weak("CARBON_KAFKA_PASSWORD", self.kafka_password.get_secret_value())
        for name, value in sorted(os.environ.items()):
            if name.startswith(access.SECRET_ENV_PREFIX) and value:
                access.refuse_weak(name, value)

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap or f"{self.kafka_host}:{self.kafka_port}"

    @property
    def production(self) -> bool:
        return self.environment == "production"

    def kafka_secret(self) -> str:
        if self.kafka_password is not None:
            return self.kafka_password.get_secret_value()
        return access.secret_of(self.kafka_username, os.environ, self.production)

    def kafka_client_config(self) -> dict[str, Any]:
        """Connection and SASL options; the same keys for kafka-python and aiokafka."""
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol != "PLAINTEXT":
            config |= {
                "sasl_mechanism": self.kafka_sasl_mechanism,
                "sasl_plain_username": self.kafka_username,
                "sasl_plain_password": self.kafka_secret(),
            }
        if self.kafka_security_protocol == "SASL_SSL":
            # An SSLContext, not ssl_cafile: aiokafka (and so faust) takes only a context,
            # kafka-python takes either.
            config["ssl_context"] = self.kafka_ssl_context()
        return config

    def kafka_ssl_context(self) -> ssl.SSLContext:
        """TLS to the brokers: their certificates checked against kafka_ssl_cafile."""
        return _ssl_context(str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None)

    def plain_client_config(self) -> dict[str, Any]:
        """kafka_client_config for kafka-python's clients (admin, plain producers and
        consumers): reconnecting at least once a second while the broker is away."""
        return self.kafka_client_config() | {
            "reconnect_backoff_max_ms": PLAIN_RECONNECT_BACKOFF_MAX_MS
        }

    def pipeline_consumer_config(self, group: str, client_id: str) -> dict[str, Any]:
        """A pipeline stage's consumer: it commits its own offsets, starts a new group
        at the beginning, and batches its fetches. The same keys for both clients."""
        return self.kafka_client_config() | {
            "group_id": group,
            "client_id": client_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "session_timeout_ms": 10_000,
            "heartbeat_interval_ms": 3_000,
            # How late a subscribed topic created (or grown) after the consumer joined is
            # noticed and rebalanced onto: aiokafka's default is 5 minutes.
            "metadata_max_age_ms": PIPELINE_METADATA_MAX_AGE_MS,
            "fetch_min_bytes": self.stream_fetch_min_bytes,
            "fetch_max_wait_ms": self.stream_fetch_max_wait_ms,
        }

    def as_principal(self, name: str) -> Settings:
        """These settings, connecting as another Kafka principal (with its own secret)."""
        if name == self.kafka_username:
            return self
        return self.model_copy(update={"kafka_username": name, "kafka_password": None})

    @property
    def pg_conninfo(self) -> str:
        return (
            f"host={self.pg_host} port={self.pg_port} user={self.pg_user} "
            f"password={self.pg_password.get_secret_value()} dbname={self.pg_database}"
        )


def load_settings() -> Settings:
    return Settings()


@lru_cache(maxsize=8)
def _ssl_context(cafile: str | None) -> ssl.SSLContext:
    # One context per CA file: a context loads its CA once and is safe to share.
    return ssl.create_default_context(cafile=cafile)
