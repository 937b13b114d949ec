"""Ingest worker: partner topics -> behaviour.validated | behaviour.rejected.

Run: faust -A carbonledger.services.ingest.entrypoints.app worker
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from carbonledger.contracts import metrics, topics
from carbonledger.contracts.catalogue import Reason
from carbonledger.contracts.partners import load_registry
from carbonledger.contracts.records import DeadLetter
from carbonledger.runtime.batching import Output
from carbonledger.runtime.dead_letters import now_utc, origin_of, stage_dead_letter
from carbonledger.runtime.stage import Stage, make_app
from carbonledger.services.ingest.config import IngestSettings
from carbonledger.services.ingest.domain.admission import admit

log = logging.getLogger(__name__)
settings = IngestSettings()
registry = load_registry(settings.partners_file)

app = make_app(topics.INGEST_APP_ID, settings.ingest_web_port, settings)
# The dead-letter backlog gauge is ingest's to report.
stage = Stage("ingest", app, settings, watch_dead_letters=True)
# Explicit topics, not a regex subscription: the registry is read at start-up, so a
# new partner means restarting ingest (docs/operations.md).
PARTNER_TOPICS = tuple(topics.partner_topic(p) for p in registry.ids)

RECORDS = metrics.counter(
    "ingest",
    "records_total",
    "Partner records consumed, by partner and outcome",
    ("partner", "outcome"),
)
REJECTIONS = metrics.counter(
    "ingest",
    "rejections_total",
    "Partner records dead-lettered, by partner and reason",
    ("partner", "reason"),
)


def _admit(message: Any, now: datetime) -> Any:
    partner_id = topics.partner_of_topic(message.topic)
    try:
        return admit(
            message.value,
            message.key,
            partner_id=partner_id,
            registry=registry,
            origin=origin_of(message),
            now=now,
            max_bytes=settings.ingest_max_record_bytes,
        )
    except Exception as exc:  # a bug must not stop the stream; the record is kept
        log.exception("admission failed for %s", origin_of(message))
        return stage_dead_letter("ingest", Reason.PROCESSING_ERROR, repr(exc), message)


def admit_partner_records(records: list[Any]) -> Iterator[Output]:
    """Each partner record, admitted as a validated behaviour or dead-lettered."""
    now = now_utc()  # one arrival time per batch: its records arrived together
    for record in records:
        outcome = _admit(record, now)
        partner = topics.partner_of_topic(record.topic) or "unknown"
        if isinstance(outcome, DeadLetter):
            REJECTIONS.labels(partner, outcome.reason).inc()
            RECORDS.labels(partner, "rejected").inc()
            yield stage.dead_letter_output(outcome)
        else:
            RECORDS.labels(partner, "accepted").inc()
            yield Output(topics.VALIDATED, outcome.subject.encode(), outcome.to_bytes())


batches = stage.batches(PARTNER_TOPICS, admit_partner_records)
