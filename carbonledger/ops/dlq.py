"""`carbonledger dlq`: inspect dead letters and submit them again after a fix.

Every refused record is on `behaviour.rejected` with its original bytes, where
it was read (topic, partition, offset), a reason code and a message. Replaying
sends the original bytes and key back to the topic they were read from, so they
take the whole path again: a record that is still wrong is dead-lettered again
(a new letter), a fixed one is admitted. Replaying twice is harmless: the event
keeps its `(source, id)`, which dedupe recognises as a replay.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from pydantic import ValidationError

from carbonledger.contracts import topics
from carbonledger.contracts.records import DeadLetter
from carbonledger.contracts.settings import Settings
from carbonledger.runtime.producers import producer


@dataclass(frozen=True)
class Selection:
    ids: frozenset[str] = frozenset()
    partner: str | None = None
    reason: str | None = None
    stage: str | None = None

    def matches(self, letter: DeadLetter) -> bool:
        return (
            (not self.ids or str(letter.dead_letter_id) in self.ids)
            and self.partner in (None, letter.partner)
            and self.reason in (None, letter.reason)
            and self.stage in (None, letter.stage)
        )


def dead_letters(settings: Settings) -> Iterator[DeadLetter]:
    """Every dead letter on the topic now, oldest first per partition."""
    consumer = KafkaConsumer(
        **settings.kafka_client_config(),
        enable_auto_commit=False,
        max_partition_fetch_bytes=topics.REJECTED_MAX_BYTES,
        fetch_max_bytes=topics.REJECTED_MAX_BYTES,
    )
    try:
        partitions = [
            TopicPartition(topics.REJECTED, p)
            for p in sorted(consumer.partitions_for_topic(topics.REJECTED) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            for tp, records in consumer.poll(timeout_ms=1000).items():
                for record in records:
                    if record.offset >= ends[tp]:
                        break
                    letter = _decode(record.value)
                    if letter is not None:
                        yield letter
                if consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        consumer.close()


def _decode(raw: bytes) -> DeadLetter | None:
    try:
        return DeadLetter.model_validate_json(raw)
    except ValidationError:
        return None


def summary_line(letter: DeadLetter) -> str:
    o = letter.origin
    return (
        f"{letter.dead_letter_id}  {letter.received_at:%Y-%m-%d %H:%M:%S}  "
        f"{letter.partner or '-':<16} {letter.reason:<22} {o.topic}[{o.partition}]@{o.offset}  "
        f"{letter.message[:80]}"
    )


def details(letter: DeadLetter) -> str:
    """The whole letter, with the original payload as text when it is UTF-8."""
    doc = letter.model_dump(mode="json")
    payload = base64.b64decode(letter.payload_b64)
    try:
        doc["payload_text"] = payload.decode("utf-8")[:100_000]
    except UnicodeDecodeError:
        doc["payload_text"] = None
    doc["payload_bytes"] = len(payload)
    return json.dumps(doc, ensure_ascii=False, indent=2)


def replay(
    settings: Settings,
    letters: Iterable[DeadLetter],
    progress: Callable[[int, int | None], None] | None = None,
) -> int:
    """Send each letter's original bytes and key back to where they were read;
    `progress` hears (letters sent, letters to send when known)."""
    total = len(letters) if isinstance(letters, Sized) else None
    p = producer(settings)
    sent = 0
    try:
        for letter in letters:
            key = base64.b64decode(letter.key_b64) if letter.key_b64 is not None else None
            p.send(letter.origin.topic, key=key, value=base64.b64decode(letter.payload_b64))
            sent += 1
            if progress:
                progress(sent, total)
        p.flush(timeout=60)
    finally:
        p.close()
    return sent
