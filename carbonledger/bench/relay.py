"""The ceiling to compare the pipeline with: the same records through the same number
of Kafka hops, on the same broker, by plain aiokafka consume -> produce, no logic.

    python -m carbonledger.bench.relay hop SOURCE TARGET GROUP
    python -m carbonledger.bench.relay sink SOURCE GROUP COUNT

A hop forwards every record (key and value unchanged) and commits after the batch
is acknowledged, like a stage. The sink counts records and prints, as JSON, when
the first and the last arrived.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from carbonledger.contracts.settings import Settings

BATCH = 2000


def _client(settings: Settings) -> dict[str, Any]:
    return settings.kafka_client_config()


def _consumer(settings: Settings, source: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        source,
        **settings.pipeline_consumer_config(group, group),  # as the pipeline's consumers
        max_poll_records=BATCH,
    )


async def hop(settings: Settings, source: str, target: str, group: str) -> None:
    consumer = _consumer(settings, source, group)
    producer = AIOKafkaProducer(**_client(settings), acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        while True:
            polled = await consumer.getmany(timeout_ms=200, max_records=BATCH)
            sends = [
                await producer.send(target, key=r.key, value=r.value)
                for records in polled.values()
                for r in records
            ]
            if sends:
                await asyncio.gather(*sends)
                await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


async def sink(settings: Settings, source: str, group: str, count: int) -> dict[str, float]:
    consumer = _consumer(settings, source, group)
    await consumer.start()
    seen, first, last = 0, 0.0, 0.0
    try:
        while seen < count:
            polled = await consumer.getmany(timeout_ms=200, max_records=BATCH)
            got = sum(len(records) for records in polled.values())
            if got:
                last = time.time()
                first = first or last
                seen += got
                await consumer.commit()
    finally:
        await consumer.stop()
    return {"first": first, "last": last, "count": seen}


def main(argv: list[str]) -> int:
    settings = Settings()
    if argv[0] == "hop":
        asyncio.run(hop(settings, argv[1], argv[2], argv[3]))
    elif argv[0] == "sink":
        print(json.dumps(asyncio.run(sink(settings, argv[1], argv[2], int(argv[3])))), flush=True)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
