"""The gateway's request signature: hex HMAC-SHA256 of `<timestamp>.<body>`.

The secret never travels; the signature binds the exact body bytes and the time, and
each signature is accepted once inside the gateway's window (300 s by default). So
sign the very bytes you send, just before sending them.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

PARTNER_HEADER = "X-Carbon-Partner"
TIMESTAMP_HEADER = "X-Carbon-Timestamp"
SIGNATURE_HEADER = "X-Carbon-Signature"


def _bytes(secret: bytes | str) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: bytes | str, timestamp: str, body: bytes) -> str:
    return hmac.new(_bytes(secret), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signed_headers(
    partner: str, secret: bytes | str, body: bytes, now: float | None = None
) -> dict[str, str]:
    """The three headers of a request whose body is `body`."""
    stamp = str(int(time.time() if now is None else now))
    return {
        PARTNER_HEADER: partner,
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: sign(secret, stamp, body),
    }


if TYPE_CHECKING:
    import httpx

    _Auth = httpx.Auth
else:
    try:
        import httpx

        _Auth = httpx.Auth
    except ImportError:  # httpx is an optional extra: GatewaySignature needs it
        _Auth = object


class GatewaySignature(_Auth):
    """An httpx `Auth` signing each request's exact body: for httpx, and for a client
    generated from the gateway's OpenAPI (`httpx_args={"auth": GatewaySignature(...)}`)."""

    requires_request_body = True

    def __init__(self, partner: str, secret: bytes | str) -> None:
        self.partner, self.secret = partner, _bytes(secret)

    def auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        request.headers.update(signed_headers(self.partner, self.secret, request.content))
        yield request
