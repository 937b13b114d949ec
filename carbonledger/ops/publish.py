"""Publishing partner records to partner topics, as a partner's producer would:
each partner's records with that partner's own Kafka principal."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable

from tenacity import RetryError, Retrying, retry_if_result, stop_after_attempt, wait_exponential

from carbonledger.contracts import access, topics
from carbonledger.contracts.envelope import source_of
from carbonledger.contracts.settings import Settings
from carbonledger.runtime.producers import Outgoing, producer, send_and_wait

log = logging.getLogger(__name__)


def route(raw: bytes, fallback_partner: str) -> str:
    """The partner a record belongs to: its own `source`, else the fallback."""
    return source_of(raw) or fallback_partner


def publish(settings: Settings, records: Iterable[tuple[str, bytes]], attempts: int = 5) -> int:
    """Send (partner, raw) records to their partner topics; returns how many were sent.

    A send the client reports failed (a broker error after its own retries) is sent
    again, after a short back-off: partner events are idempotent by `(source, id)`
    downstream, so a record that did land after all is a replay. Raises if a record
    still fails after `attempts` rounds.
    """
    pending = list(records)
    total = len(pending)

    def send_pending() -> list[tuple[str, bytes]]:
        nonlocal pending
        pending = _send(settings, pending)
        return pending

    rounds = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.2, max=5),
        retry=retry_if_result(bool),  # records still pending
        before_sleep=lambda state: log.warning(
            "%d records failed to send; sending them again (%d)",
            len(pending),
            state.attempt_number,
        ),
    )
    try:
        rounds(send_pending)
    except RetryError:
        raise RuntimeError(f"{len(pending)} records could not be published") from None
    return total


def _send(settings: Settings, records: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Send each partner's records as that partner; returns the records whose sends failed."""
    by_partner: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
    for record in records:
        by_partner[record[0]].append(record)
    failed = []
    for partner, own in by_partner.items():
        failed += _send_as(settings.as_principal(access.partner_principal_name(partner)), own)
    return failed


def _send_as(settings: Settings, records: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    p = producer(settings)  # a fresh one: a failed idempotent producer may be stuck
    try:
        outgoing = [Outgoing(topics.partner_topic(partner), raw) for partner, raw in records]
        failed = set(send_and_wait(p, outgoing, timeout=60, failures="return"))
        return [r for r, out in zip(records, outgoing, strict=True) if out in failed]
    finally:
        p.close()
