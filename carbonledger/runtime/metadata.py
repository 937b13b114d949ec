"""Waiting for a stage's topics before its consumer joins its group.

A consumer that joins before the broker has metadata for a topic it subscribes to
is assigned none of that topic's partitions ("No partition metadata for topic"),
and hears of the topic only at its next metadata refresh; the group's leader then
rebalances. Until then the stage reads nothing and is never ready. Waiting here
until every source topic has all its partitions led makes the first assignment
the right one; `metadata_max_age_ms` (contracts/settings.py) bounds how late a
topic created afterwards is noticed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from aiokafka import AIOKafkaClient

log = logging.getLogger(__name__)

RECHECK_SECONDS = 0.5
WARN_EVERY_SECONDS = 10.0


def missing_topics(client: AIOKafkaClient, topics: Iterable[str]) -> list[str]:
    """The topics the client's metadata lacks, or holds with a partition without a leader."""
    missing = []
    for topic in topics:
        partitions = client.cluster.partitions_for_topic(topic)
        led = client.cluster.available_partitions_for_topic(topic)
        if not partitions or led != partitions:
            missing.append(topic)
    return missing


async def wait_for_topics(client: AIOKafkaClient, topics: Iterable[str]) -> None:
    """Until the broker's metadata has every topic with all its partitions led. A stage
    cannot work without its topics, so it waits for as long as it takes, and says so."""
    wanted = list(topics)
    for topic in wanted:
        client.add_topic(topic)
    started = last_warning = time.monotonic()
    while True:
        await client.force_metadata_update()
        missing = missing_topics(client, wanted)
        if not missing:
            return
        if time.monotonic() - last_warning >= WARN_EVERY_SECONDS:
            last_warning = time.monotonic()
            log.warning(
                "waiting %.0f s for topics %s to exist with led partitions",
                last_warning - started,
                ", ".join(missing),
            )
        await asyncio.sleep(RECHECK_SECONDS)
