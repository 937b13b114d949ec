"""Ingest worker: partner topics -> behaviour.validated | behaviour.rejected.

Run: faust -A services.ingest.entrypoints.app worker
"""

from __future__ import annotations

import logging
from typing import Any

from carbonledger.contracts import metrics, topics
from carbonledger.contracts.catalogue import Reason
from carbonledger.contracts.partners import load_registry
from carbonledger.contracts.records import DeadLetter
from carbonledger.streaming import (
    RAW,
    Stage,
    make_app,
    now_utc,
    origin_of,
    stage_dead_letter,
)
from services.ingest.config import IngestSettings
from services.ingest.domain.admission import admit

log = logging.getLogger(__name__)
settings = IngestSettings()
registry = load_registry(settings.partners_file)

app = make_app(topics.INGEST_APP_ID, settings.ingest_web_port, settings)
stage = Stage(
    "ingest",
    app,
    settings,
    sources=tuple(topics.partner_topic(p) for p in registry.ids),
    watch_dead_letters=True,
)
# Explicit topics, not a regex subscription: faust 0.15 on aiokafka 0.14 crashes
# subscribing by pattern. The registry is read at start-up, so a new partner
# means restarting ingest (docs/operations.md).
partner_events = app.topic(*(topics.partner_topic(p) for p in registry.ids), **RAW)
validated = app.topic(topics.VALIDATED, **RAW)

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


def _admit(message: Any) -> Any:
    partner_id = topics.partner_of_topic(message.topic)
    try:
        return admit(
            message.value,
            message.key,
            partner_id=partner_id,
            registry=registry,
            origin=origin_of(message),
            now=now_utc(),
            max_bytes=settings.ingest_max_record_bytes,
        )
    except Exception as exc:  # a bug must not stop the stream; the record is kept
        log.exception("admission failed for %s", origin_of(message))
        return stage_dead_letter("ingest", Reason.PROCESSING_ERROR, repr(exc), message)


@app.agent(partner_events)
async def admit_partner_events(stream: Any) -> None:
    async for event in stage.events(stream):
        outcome = _admit(event.message)
        partner = topics.partner_of_topic(event.message.topic) or "unknown"
        if isinstance(outcome, DeadLetter):
            REJECTIONS.labels(partner, outcome.reason).inc()
            RECORDS.labels(partner, "rejected").inc()
            await stage.dead_letter(outcome)
        else:
            RECORDS.labels(partner, "accepted").inc()
            await stage.send(validated, outcome.subject.encode(), outcome.to_bytes())
