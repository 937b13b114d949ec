"""A client of the HTTP gateway (`POST /v1/events`), on the standard library alone.

Each request is signed (signing.py). The answer has one result per event, in order:
accepted, or rejected with the reason code of docs/partners.md. A 503 means the broker
did not take the batch: send it again, the same ids are never credited twice.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from carbonledger_partner.events import encode
from carbonledger_partner.signing import SIGNATURE_HEADER, signed_headers


class GatewayError(Exception):
    """The gateway refused the whole request (401, 413, 400, 503...)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status, self.detail = status, detail


class GatewayClient:
    def __init__(
        self, base_url: str, partner: str, secret: bytes | str, timeout: float = 30
    ) -> None:
        self.base_url, self.partner, self.secret = base_url.rstrip("/"), partner, secret
        self.timeout = timeout
        self._last_signature: str | None = None

    def send(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        """Posts a batch; returns the gateway's answer (accepted, rejected, results)."""
        return self._post("/v1/events", encode(events))

    def check(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        """The answer `send` would get, event by event, with nothing published (the
        gateway's dry run): to check events before sending them, over HTTP or Kafka."""
        return self._post("/v1/events/dry-run", encode(events))

    def _post(self, path: str, body: bytes) -> dict[str, Any]:
        headers = self._fresh_headers(body)
        headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            self.base_url + path, data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                found: dict[str, Any] = json.loads(answer.read())
                return found
        except urllib.error.HTTPError as refused:
            raise GatewayError(refused.code, _detail(refused.read())) from None

    def _fresh_headers(self, body: bytes) -> dict[str, str]:
        """Signed headers never used before: the gateway accepts a signature once, and
        the same body signed in the same second (a check, then the send) would repeat
        it, so the second one waits for the next second."""
        headers = signed_headers(self.partner, self.secret, body)
        while headers[SIGNATURE_HEADER] == self._last_signature:
            time.sleep(1.0 - time.time() % 1.0)
            headers = signed_headers(self.partner, self.secret, body)
        self._last_signature = headers[SIGNATURE_HEADER]
        return headers


def _detail(body: bytes) -> str:
    try:
        found = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")
    if isinstance(found, dict):
        return str(found.get("detail") or found.get("title") or found)
    return str(found)
