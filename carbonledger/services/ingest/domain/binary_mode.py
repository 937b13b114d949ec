"""CloudEvents' Kafka binary content mode, read as its structured twin.

In binary mode (what many CloudEvents SDKs send to Kafka by default) each attribute
is a `ce_<name>` header, `datacontenttype` is the `content-type` header, and the value
is the event's `data` alone. Ingest admits such a record as the structured event it
stands for: the attributes as JSON strings, then `"data":` followed by the value's
bytes verbatim. So the data goes through the same strict parser (duplicate keys,
depth, decimals read digit for digit) and the event gets the same ids and the same
credit as its structured twin; a refused one is dead-lettered as that twin, which
an operator can read and replay like any other.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from carbonledger.contracts.catalogue import Reason, Rejection

CE_PREFIX = "ce_"
CONTENT_TYPE = "content-type"
JSON_MEDIA_TYPES = ("application/json", "application/cloudevents+json")

Headers = Sequence[tuple[str, bytes | None]]


def is_binary(headers: Headers) -> bool:
    """A record is in binary mode when it carries the `ce_specversion` header."""
    return any(name.lower() == f"{CE_PREFIX}specversion" for name, _ in headers)


def structured_twin(headers: Headers, value: bytes | None) -> bytes:
    """The structured event a binary-mode record stands for (Rejection if it cannot be)."""
    attributes = _attributes(headers)
    media = attributes.pop("datacontenttype", "application/json")
    if media.split(";")[0].strip().lower() not in JSON_MEDIA_TYPES:
        raise Rejection(Reason.INVALID_ENVELOPE, f"content-type {media!r}: data must be JSON")
    fields = [f"{json.dumps(k)}:{json.dumps(v, ensure_ascii=False)}" for k, v in attributes.items()]
    fields.append('"datacontenttype":"application/json"')
    head = ("{" + ",".join(fields)).encode()
    if not value:
        return head + b"}"  # no data: refused for its missing `data`, as in structured mode
    return head + b',"data":' + value + b"}"


def _attributes(headers: Headers) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, raw in headers:
        lower = name.lower()
        if lower == CONTENT_TYPE:
            attribute = "datacontenttype"
        elif lower.startswith(CE_PREFIX):
            attribute = lower.removeprefix(CE_PREFIX)
        else:
            continue  # other headers (tracing, the producer's own) are not the event's
        if attribute in ("data", "data_base64") or (
            attribute == "datacontenttype" and lower != CONTENT_TYPE
        ):
            raise Rejection(Reason.INVALID_ENVELOPE, f"header {name!r} has no place in binary mode")
        if attribute in found:
            raise Rejection(Reason.DUPLICATE_KEY, f"the event's {attribute!r} header twice")
        found[attribute] = _text(name, raw)
    return found


def _text(name: str, raw: bytes | None) -> str:
    try:
        return (raw or b"").decode("utf-8")
    except UnicodeDecodeError:
        raise Rejection(Reason.NOT_UTF8, f"header {name!r} is not UTF-8") from None
