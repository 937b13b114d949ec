"""Recommended producer settings: idempotent, every replica acknowledging, SCRAM-SHA-512.

The broker authenticates a partner as the principal `partner-<partner-id>`, which may
write its own topic `partner.<partner-id>.events` and nothing else. In production the
connection is SASL_SSL (TLS, the broker's certificate checked against the operator's
CA file); SASL_PLAINTEXT is for the loopback development stack only.
"""

from __future__ import annotations

from typing import Any, Literal

Protocol = Literal["SASL_SSL", "SASL_PLAINTEXT"]


def partner_topic(partner: str) -> str:
    return f"partner.{partner}.events"


def principal(partner: str) -> str:
    return f"partner-{partner}"


def kafka_python_settings(
    partner: str,
    secret: str,
    bootstrap_servers: str,
    *,
    security_protocol: Protocol = "SASL_SSL",
    ca_file: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments of kafka-python's `KafkaProducer`."""
    settings: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "security_protocol": security_protocol,
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": principal(partner),
        "sasl_plain_password": secret,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 20,
        "compression_type": "gzip",
    }
    if security_protocol == "SASL_SSL" and ca_file:
        settings["ssl_cafile"] = ca_file
    return settings


def confluent_settings(
    partner: str,
    secret: str,
    bootstrap_servers: str,
    *,
    security_protocol: Protocol = "SASL_SSL",
    ca_file: str | None = None,
) -> dict[str, Any]:
    """The configuration of confluent-kafka's (librdkafka's) `Producer`."""
    settings: dict[str, Any] = {
        "bootstrap.servers": bootstrap_servers,
        "security.protocol": security_protocol,
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": principal(partner),
        "sasl.password": secret,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 20,
        "compression.type": "gzip",
    }
    if security_protocol == "SASL_SSL" and ca_file:
        settings["ssl.ca.location"] = ca_file
    return settings
