"""The HTTP door for partners that cannot run a Kafka producer: authentication and batches.

A request is signed with the partner's secret: `X-Carbon-Signature` is the hex
HMAC-SHA256 of `<X-Carbon-Timestamp>.<raw body>`. HMAC rather than an API key
because the secret never travels, the signature binds the exact bytes (nothing
can be altered in transit) and the timestamp bounds replays: a request older
or newer than the window is refused, and a signature seen inside the window is
refused again. Each event of a batch is then validated exactly as ingest does,
and the answer says, per event, accepted or rejected with the reason.

A signature is 64 hex digits, in either case: hex spells bytes, and the replay
cache remembers the 32 bytes, so an upper-cased (or partly upper-cased) copy of a
seen signature is the same signature, refused as a replay. Anything else (other
lengths, blanks, `0x`) is refused before the body is read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal

from carbonledger.contracts.strict_json import value_end


class Unauthorised(Exception):
    """A request that does not prove which partner sent it (HTTP 401)."""


class BrokerUnavailable(Exception):
    """The broker did not acknowledge the accepted events (HTTP 503: send them again)."""


class BadBatch(Exception):
    """A body that is not one JSON event or a JSON array of them (HTTP 400/413)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


_HEX_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def canonical_signature(signature: str) -> bytes:
    """The 32 bytes a signature spells: what is compared and what the replay cache keys on."""
    if not _HEX_SIGNATURE.fullmatch(signature):
        raise Unauthorised("X-Carbon-Signature must be 64 hex digits (HMAC-SHA256)")
    return bytes.fromhex(signature)


@dataclass
class ReplayGuard:
    """Signatures accepted within the window; each may be used once."""

    window_seconds: int = 300
    capacity: int = 1_000_000

    def __post_init__(self) -> None:
        self.seen: OrderedDict[bytes, float] = OrderedDict()

    def check_headers(
        self, secret: bytes | None, timestamp: str, signature: str, now: float
    ) -> bytes:
        """What can be refused before the body is read: no secret, a timestamp outside
        the window, a malformed or already used signature. Returns the signature's bytes."""
        if secret is None:
            raise Unauthorised("unknown partner, or no credentials configured for it")
        sent = _seconds(timestamp)
        if abs(now - sent) > self.window_seconds:
            raise Unauthorised(f"timestamp outside the {self.window_seconds} s window")
        key = canonical_signature(signature)
        self._forget_before(now - self.window_seconds)
        if key in self.seen:
            raise Unauthorised("this signature was already used (replayed request)")
        return key

    def check(
        self, secret: bytes | None, timestamp: str, signature: str, body: bytes, now: float
    ) -> None:
        """The whole proof, body included; a signature that passes is used up."""
        key = self.check_headers(secret, timestamp, signature, now)
        assert secret is not None  # check_headers refused a missing one
        expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, key):
            raise Unauthorised("signature does not match the body and timestamp")
        self.seen[key] = _seconds(timestamp)
        while len(self.seen) > self.capacity:
            self.seen.popitem(last=False)

    def _forget_before(self, horizon: float) -> None:
        while self.seen and next(iter(self.seen.values())) < horizon:
            self.seen.popitem(last=False)


def _seconds(timestamp: str) -> int:
    # ASCII digits only: int() would also take "１２", " 12" or "1_2".
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise Unauthorised("X-Carbon-Timestamp must be Unix seconds")
    return int(timestamp)


_DECODER = json.JSONDecoder(parse_float=Decimal)


def split_batch(body: bytes, max_events: int) -> list[bytes]:
    """The events of a body, each as the exact bytes the partner sent."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBatch("body is not UTF-8") from None
    start = len(text) - len(text.lstrip())
    if text[start : start + 1] != "[":
        return [body]
    events, i = [], _skip(text, start + 1)
    while text[i : i + 1] != "]":
        end = _event_end(text, i)
        events.append(text[i:end].encode())
        if len(events) > max_events:
            raise BadBatch(f"at most {max_events} events per request", status=413)
        i = _skip(text, end)
        if text[i : i + 1] == ",":
            i = _skip(text, i + 1)
        elif text[i : i + 1] != "]":
            raise BadBatch(f"expected ',' or ']' at {i}")
    if text[i + 1 :].strip():
        raise BadBatch("data after the end of the array")
    return events


def _event_end(text: str, i: int) -> int:
    """Where the event starting at `i` ends. The parser finds it for any event it can
    read; one nested too deep for its recursion is delimited by a bracket scan
    instead, so that only that event is refused (too_deep), not the batch."""
    try:
        _, end = _DECODER.raw_decode(text, i)
    except json.JSONDecodeError as exc:
        raise BadBatch(f"not a JSON array of events: {exc.msg} at {exc.pos}") from None
    except RecursionError:
        try:
            end = value_end(text, i)
        except ValueError as exc:
            raise BadBatch(f"not a JSON array of events: {exc}") from None
    return end


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i
