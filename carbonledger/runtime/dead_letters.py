"""Dead letters of the stream stages: the record a stage could not process, with
its reason and original bytes, and how many the dead-letter topic holds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from carbonledger.contracts import topics
from carbonledger.contracts.catalogue import Reason
from carbonledger.contracts.records import DeadLetter, Origin
from carbonledger.contracts.settings import Settings


def now_utc() -> datetime:
    return datetime.now(UTC)


def origin_of(message: Any) -> Origin:
    return Origin(topic=message.topic, partition=message.partition, offset=message.offset)


def stage_dead_letter(stage: str, reason: Reason, message: str, record: Any) -> DeadLetter:
    """A dead letter for a record an internal stage could not process."""
    return DeadLetter.of(
        stage=stage,
        reason=reason.value,
        message=message[:2000],
        partner=None,
        origin=origin_of(record),
        key=record.key,
        payload=record.value or b"",
        received_at=now_utc(),
    )


def backlog(settings: Settings) -> int:
    """Records held on the dead-letter topic: end minus beginning offset, summed."""
    consumer = KafkaConsumer(**settings.kafka_client_config(), enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(topics.REJECTED, p)
            for p in sorted(consumer.partitions_for_topic(topics.REJECTED) or ())
        ]
        if not partitions:
            return 0
        ends = consumer.end_offsets(partitions)
        starts = consumer.beginning_offsets(partitions)
        return sum(ends[tp] - starts[tp] for tp in partitions)
    finally:
        consumer.close()
