"""Start-up order: a consumer started before its topics exist still gets their
partitions within seconds of their creation (the ledger writer once joined before
the broker had metadata for dedupe.decisions, was assigned [] and never got it)."""

from __future__ import annotations

import asyncio
import time
import uuid

import faust
import pytest
from aiokafka import AIOKafkaConsumer

from carbonledger.contracts.settings import Settings
from carbonledger.contracts.topics import TopicSpec
from carbonledger.ops import stack
from carbonledger.ops.admin import admin_client, ensure_topics
from carbonledger.runtime.batching import BatchLoop, Output

pytestmark = pytest.mark.integration

PARTITIONS = 4
WITHIN_SECONDS = 30  # metadata_max_age_ms is 10 s; the margin is for a starved machine


def _spec(name: str) -> TopicSpec:
    return TopicSpec(name, PARTITIONS, 3_600_000, "-", "-", "test", "test")


def _nothing(records: list[object]) -> list[Output]:
    return []


async def _assigned_within(consumer: AIOKafkaConsumer, seconds: float) -> float:
    started = time.monotonic()
    while len(consumer.assignment()) < PARTITIONS:
        assert time.monotonic() - started < seconds, f"assigned {consumer.assignment()}"
        await asyncio.sleep(0.2)
    return time.monotonic() - started


def test_a_batch_loop_started_before_its_topic_gets_all_partitions_once_it_exists(
    settings: Settings, running_stack: stack.Processes
) -> None:
    topic = f"test.late.{uuid.uuid4().hex[:8]}"
    loop = BatchLoop("late", faust.App(f"late-{topic}"), settings, (topic,), _nothing)

    async def scenario() -> float:
        starting = asyncio.create_task(loop.on_start())
        await asyncio.sleep(3)
        assert not starting.done()  # waiting for the topic, not subscribed to nothing
        ensure_topics(settings, [_spec(topic)])
        await asyncio.wait_for(starting, WITHIN_SECONDS)
        assert loop.consumer is not None
        try:
            return await _assigned_within(loop.consumer, WITHIN_SECONDS)
        finally:
            await loop.on_stop()

    try:
        print(f"assigned {asyncio.run(scenario()):.1f} s after start-up went on")
    finally:
        _delete(settings, topic)


def test_a_consumer_subscribed_before_its_topic_exists_picks_it_up(
    settings: Settings, running_stack: stack.Processes
) -> None:
    topic = f"test.late.{uuid.uuid4().hex[:8]}"

    async def scenario() -> float:
        group = f"late-{topic}"
        consumer = AIOKafkaConsumer(**settings.pipeline_consumer_config(group, group))
        await consumer.start()
        # Subscribed after start: start() itself would wait for the topic (and fail
        # after request_timeout_ms); now the group is joined with nothing to assign.
        consumer.subscribe([topic])
        try:
            await asyncio.sleep(3)
            assert consumer.assignment() == set()
            ensure_topics(settings, [_spec(topic)])
            return await _assigned_within(consumer, WITHIN_SECONDS)
        finally:
            await consumer.stop()

    try:
        print(f"assigned {asyncio.run(scenario()):.1f} s after the topic was created")
    finally:
        _delete(settings, topic)


def _delete(settings: Settings, topic: str) -> None:
    admin = admin_client(settings)
    try:
        admin.delete_topics([topic])
    finally:
        admin.close()
