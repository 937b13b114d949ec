"""CloudEvents 1.0 as the ledger takes them, and as Kafka records in either content mode.

Structured mode puts the whole event in the record's value; binary mode puts each
attribute in a `ce_<name>` header and the event's `data` alone in the value (what
many CloudEvents SDKs send by default). Ingest admits both alike: same validation,
same ids. Either way the record's key is the subject, so that one person's events
keep their order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

SPECVERSION = "1.0"
_REQUIRED = ("specversion", "id", "source", "type", "time", "subject", "data")


def behaviour_event(
    *,
    partner: str,
    id: str,
    type: str,
    time: datetime,
    subject: str,
    data: dict[str, Any],
    subjectkind: Literal["person", "unit"] | None = None,
) -> dict[str, Any]:
    """One event; `time` is when the behaviour ended, with its offset."""
    if time.utcoffset() is None:
        raise ValueError("time needs an offset (RFC 3339): the ledger refuses naive times")
    event: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": id,
        "source": partner,
        "type": type,
        "time": time.isoformat(),
        "subject": subject,
        "datacontenttype": "application/json",
        "data": data,
    }
    if subjectkind is not None:
        event["subjectkind"] = subjectkind
    return event


def _default(value: object) -> object:
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError("times need an offset (RFC 3339)")
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def encode(document: Any) -> bytes:
    """UTF-8 JSON, compact: the bytes sent, and over HTTP the bytes signed. Decimal
    quantities are best given as strings ("10.4"): the ledger reads them digit for digit."""
    return json.dumps(
        document, ensure_ascii=False, separators=(",", ":"), default=_default
    ).encode()


@dataclass(frozen=True)
class KafkaRecord:
    """What to hand a producer: key, value and headers (empty in structured mode)."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def kafka_record(
    event: dict[str, Any], mode: Literal["structured", "binary"] = "structured"
) -> KafkaRecord:
    missing = [name for name in _REQUIRED if name not in event]
    if missing:
        raise ValueError(f"the event lacks {', '.join(missing)}")
    key = str(event["subject"]).encode()
    if mode == "structured":
        return KafkaRecord(key, encode(event), [])
    headers = [
        (f"ce_{name}", str(value).encode())
        for name, value in event.items()
        if name not in ("data", "datacontenttype") and value is not None
    ]
    headers.append(("content-type", b"application/json"))
    return KafkaRecord(key, encode(event["data"]), headers)
