"""Ingest's use case: partner records admitted as validated behaviours or dead
letters, whoever reads them (the stream stage from the partner topics, `settle`
from a batch). No Kafka here."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import Counter

from carbonledger.contracts.bounds import MAX_ID_LENGTH, text_fault
from carbonledger.contracts.catalogue import Reason, Rejection
from carbonledger.contracts.envelope import envelope_attribute
from carbonledger.contracts.partners import PartnerRegistry
from carbonledger.contracts.records import DeadLetter, Origin, ValidatedBehaviour
from carbonledger.runtime.dead_letters import stage_dead_letter
from carbonledger.services.ingest.domain.admission import MAX_RECORD_BYTES, admit, dead_letter
from carbonledger.services.ingest.domain.binary_mode import Headers, is_binary, structured_twin
from carbonledger.services.ingest.metrics import RECORDS, REJECTIONS

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PartnerRecord:
    """One record as a partner sent it, with where it was read."""

    partner_id: str | None  # the partner it is authenticated as; None: not a partner's
    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int
    # The record's Kafka headers: CloudEvents' binary mode puts the attributes there.
    headers: Headers = ()

    @property
    def origin(self) -> Origin:
        return Origin(topic=self.topic, partition=self.partition, offset=self.offset)


def admit_records(
    records: Iterable[PartnerRecord],
    registry: PartnerRegistry,
    *,
    now: datetime,
    max_bytes: int = MAX_RECORD_BYTES,
) -> Iterator[ValidatedBehaviour | DeadLetter]:
    """Each record, admitted as a validated behaviour or dead-lettered, counted by partner."""
    for record in records:
        outcome = _admit(record, registry, now, max_bytes)
        partner = record.partner_id or "unknown"
        if isinstance(outcome, DeadLetter):
            REJECTIONS.labels(partner, outcome.reason).inc()
            RECORDS.labels(partner, "rejected").inc()
            log.info("record refused", extra=_where(record, outcome.reason))
        else:
            _accepted(partner).inc()
            if log.isEnabledFor(logging.DEBUG):
                log.debug("record admitted", extra=_where(record, None, str(outcome.event_id)))
        yield outcome


# Each partner's `accepted` counter, found once: `labels()` checks and locks on every
# call, a cost per record for what is the same child object each time.
_ACCEPTED: dict[str, Counter] = {}


def _accepted(partner: str) -> Counter:
    found = _ACCEPTED.get(partner)
    if found is None:
        found = _ACCEPTED[partner] = RECORDS.labels(partner, "accepted")
    return found


def _where(
    record: PartnerRecord, reason: str | None, event_id: str | None = None
) -> dict[str, Any]:
    """A log line's fields: which record (the id it claims, if any), where, and why."""
    claimed = envelope_attribute(record.value or b"", "id") if event_id is None else None
    return {
        "partner": record.partner_id,
        "event_id": event_id,
        "source_id": claimed if claimed and _printable(claimed) else None,
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "reason": reason,
    }


def _admit(
    record: PartnerRecord, registry: PartnerRegistry, now: datetime, max_bytes: int
) -> ValidatedBehaviour | DeadLetter:
    try:
        value = record.value
        if is_binary(record.headers):
            try:
                value = structured_twin(record.headers, record.value)
            except Rejection as no:
                return _refused_binary(no, record, now)
        return admit(
            value,
            record.key,
            partner_id=record.partner_id,
            registry=registry,
            origin=record.origin,
            now=now,
            max_bytes=max_bytes,
        )
    except Exception as exc:  # a bug must not stop the stream; the record is kept
        log.exception("admission failed for %s", record.origin)
        return stage_dead_letter("ingest", Reason.PROCESSING_ERROR, repr(exc), record)


def _refused_binary(no: Rejection, record: PartnerRecord, now: datetime) -> DeadLetter:
    """A binary-mode record whose headers cannot make an event: its value kept as sent."""
    return dead_letter(
        no,
        record.value or b"",
        record.key,
        stage="ingest",
        partner_id=record.partner_id,
        origin=record.origin,
        now=now,
    )


def _printable(claimed: str) -> bool:
    # Only an id that is in bounds and printable is echoed into a log line.
    return len(claimed) <= MAX_ID_LENGTH and text_fault(claimed) is None
