"""The broker's own door: SASL/SCRAM users and ACLs, enforced by the real broker."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from pydantic import SecretStr

from carbonledger.contracts import access, topics
from carbonledger.contracts.settings import Settings
from carbonledger.demo.sample import subject_of
from carbonledger.ops import stack
from carbonledger.runtime.producers import producer

pytestmark = pytest.mark.integration
REFUSED = "due to invalid credentials with SASL mechanism SCRAM-SHA-512"


def send_as(settings: Settings, principal: str, topic: str, value: bytes) -> None:
    """Send one record as a principal; raises the broker's refusal."""
    p = KafkaProducer(
        **settings.as_principal(principal).kafka_client_config(),
        acks="all",
        retries=0,
        max_block_ms=10000,
    )
    try:
        p.send(topic, value=value).get(timeout=15)
    finally:
        p.close(timeout=5)


def event(source: str) -> bytes:
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": f"acl-{uuid.uuid4()}",
        "source": source,
        "type": "travel.metro",
        "time": "2026-10-14T08:30:00+08:00",
        "subject": subject_of("+86-acl"),
        "data": {
            "region": "440305",
            "started_at": "2026-10-14T08:10:00+08:00",
            "ended_at": "2026-10-14T08:30:00+08:00",
            "distance_km": "7.5",
        },
    }
    return json.dumps(body).encode()


def test_a_partner_may_write_its_own_topic(
    settings: Settings, running_stack: stack.Processes
) -> None:
    partner = access.partner_principal_name("navi-maps")
    send_as(settings, partner, topics.partner_topic("navi-maps"), event("navi-maps"))


def test_a_partner_writing_another_partners_topic_is_refused_by_kafka(
    settings: Settings, running_stack: stack.Processes
) -> None:
    intruder = access.partner_principal_name("navi-maps")
    with pytest.raises(KafkaError) as refused:
        send_as(settings, intruder, topics.partner_topic("shenzhen-metro"), event("shenzhen-metro"))
    assert "Authorization" in type(refused.value).__name__, refused.value


def test_a_partner_cannot_read_any_topic(
    settings: Settings, running_stack: stack.Processes
) -> None:
    partner = settings.as_principal(access.partner_principal_name("navi-maps"))
    consumer = KafkaConsumer(**partner.kafka_client_config(), consumer_timeout_ms=3000)
    try:
        tp = TopicPartition(topics.partner_topic("navi-maps"), 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        with pytest.raises(KafkaError) as refused:
            consumer.poll(timeout_ms=5000)
            consumer.position(tp)
        assert "Authorization" in type(refused.value).__name__, refused.value
    finally:
        consumer.close()


def test_a_wrong_secret_is_refused(settings: Settings, running_stack: stack.Processes) -> None:
    partner = settings.as_principal(access.partner_principal_name("navi-maps"))
    producer(partner).close(timeout=5)  # the right secret connects
    broker_log = settings.run_dir / "kafka" / "kafka.out"
    refusals = broker_log.read_text().count(REFUSED)
    impostor = partner.model_copy(update={"kafka_password": SecretStr("not-the-secret")})
    with pytest.raises(KafkaError):
        producer(impostor).close(timeout=5)
    assert broker_log.read_text().count(REFUSED) > refusals


def test_a_service_may_only_write_its_own_outputs(
    settings: Settings, running_stack: stack.Processes
) -> None:
    # (That it may write its own outputs, every pipeline test shows.)
    quantify = access.service_principal_name("quantify")
    with pytest.raises(KafkaError) as refused:
        send_as(settings, quantify, topics.DECISIONS, b"{}")  # dedupe's output
    assert "Authorization" in type(refused.value).__name__, refused.value


def test_the_gateway_may_write_partner_topics_but_not_the_pipeline(
    settings: Settings, running_stack: stack.Processes
) -> None:
    gateway = access.service_principal_name("gateway")
    send_as(settings, gateway, topics.partner_topic("green-bank"), event("green-bank"))
    with pytest.raises(KafkaError):
        send_as(settings, gateway, topics.VALIDATED, event("green-bank"))
