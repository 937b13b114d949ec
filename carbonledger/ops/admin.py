"""Creating the topic map on a broker (kafka-python admin client)."""

from __future__ import annotations

import logging
import time
from typing import Any

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from carbonledger.contracts import topics
from carbonledger.contracts.partners import PartnerRegistry
from carbonledger.contracts.settings import Settings
from carbonledger.contracts.topics import TopicSpec

log = logging.getLogger(__name__)


def topic_map(settings: Settings, registry: PartnerRegistry) -> list[TopicSpec]:
    """Every topic this deployment needs: the pipeline's and one per registered partner."""
    return [
        *topics.pipeline_topics(settings.topic_partitions),
        *(topics.partner_topic_spec(p, settings.partner_topic_partitions) for p in registry.ids),
    ]


def admin_client(settings: Settings) -> KafkaAdminClient:
    return KafkaAdminClient(
        **settings.plain_client_config(),
        client_id="carbonledger-admin",
        request_timeout_ms=30000,
    )


def committed_offsets(admin: KafkaAdminClient, group: str) -> dict[TopicPartition, int]:
    """The group's committed offsets; partitions it never committed are absent."""
    offsets = admin.list_group_offsets(group).get(group, {})
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


def durability(settings: Settings) -> dict[str, str]:
    """With copies on several brokers, a write is acknowledged once two hold it."""
    if settings.topic_replication_factor < 2:
        return {}
    return {"min.insync.replicas": "2"}


def ensure_topics(settings: Settings, specs: list[TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet; returns the names created.

    An existing topic with fewer partitions than the map asks for is reported,
    not silently changed: adding partitions moves keys between partitions.
    """
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        created = []
        for spec in missing:
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            spec.name,
                            spec.partitions,
                            settings.topic_replication_factor,
                            topic_configs=spec.config() | durability(settings),
                        )
                    ]
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
        _warn_on_partition_drift(admin, [s for s in specs if s.name in existing])
        if created:
            _wait_until_led(admin, created)
        return created
    finally:
        admin.close()


def _wait_until_led(admin: KafkaAdminClient, names: list[str], timeout: float = 60.0) -> None:
    """Until the broker's metadata has every partition of these new topics with a leader.

    Creation returns once the controller has recorded the topics; a consumer that
    joins its group before the broker's metadata has them is assigned none of their
    partitions (issue 18: the ledger writer and dedupe.decisions)."""
    deadline = time.monotonic() + timeout
    while True:
        described = admin.describe_topics(names)
        unled = sorted(
            str(t["name"])
            for t in described
            if t["error_code"] or not t["partitions"] or any(_unled(p) for p in t["partitions"])
        )
        if not unled and len(described) == len(names):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics without led partitions after {timeout:.0f} s: {unled}")
        time.sleep(0.2)


def _unled(partition: dict[str, Any]) -> bool:
    return bool(partition["error_code"]) or int(partition["leader_id"]) < 0


def _warn_on_partition_drift(admin: KafkaAdminClient, specs: list[TopicSpec]) -> None:
    if not specs:
        return
    described = {
        t["name"]: len(t["partitions"]) for t in admin.describe_topics([s.name for s in specs])
    }
    for spec in specs:
        if described.get(spec.name, spec.partitions) != spec.partitions:
            log.warning(
                "topic %s has %s partitions; the map asks for %s",
                spec.name,
                described[spec.name],
                spec.partitions,
            )
