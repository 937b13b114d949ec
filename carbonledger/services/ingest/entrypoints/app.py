"""Ingest worker: partner topics -> behaviour.validated | behaviour.rejected.

Run: python -m carbonledger.services.ingest.entrypoints.app (a faust worker; any
arguments go to faust's CLI, `worker -l info` without). Importing it builds nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import faust

from carbonledger.contracts import topics
from carbonledger.contracts.partners import PartnerRegistry, load_registry
from carbonledger.contracts.records import DeadLetter
from carbonledger.runtime.batching import Handler, Output
from carbonledger.runtime.dead_letters import now_utc
from carbonledger.runtime.process import run_worker
from carbonledger.runtime.stage import Stage, make_app
from carbonledger.services.ingest.config import IngestSettings
from carbonledger.services.ingest.service import PartnerRecord, admit_records


def partner_record(message: Any) -> PartnerRecord:
    return PartnerRecord(
        _partner_of(message.topic),
        message.key,
        message.value,
        message.topic,
        message.partition,
        message.offset,
        tuple(message.headers or ()),
    )


# Topic -> partner, worked out once per topic (a regex match per record otherwise).
_PARTNERS: dict[str, str | None] = {}


def _partner_of(topic: str) -> str | None:
    if topic not in _PARTNERS:
        _PARTNERS[topic] = topics.partner_of_topic(topic)
    return _PARTNERS[topic]


def admit_partner_records(
    stage: Stage, registry: PartnerRegistry, settings: IngestSettings
) -> Handler:
    def handle(records: list[Any]) -> Iterator[Output]:
        """Each partner record, admitted as a validated behaviour or dead-lettered."""
        admitted = admit_records(
            map(partner_record, records),
            registry,
            now=now_utc(),  # one arrival time per batch: its records arrived together
            max_bytes=settings.ingest_max_record_bytes,
        )
        for outcome in admitted:
            if isinstance(outcome, DeadLetter):
                yield stage.dead_letter_output(outcome)
            else:
                yield Output(topics.VALIDATED, outcome.subject.encode(), outcome.to_bytes())

    return handle


def bootstrap(settings: IngestSettings) -> faust.App:
    """The stage's faust app, reading the partner topics in batches."""
    registry = load_registry(settings.partners_file)
    app = make_app(topics.INGEST_APP_ID, settings.ingest_web_port, settings)
    # The dead-letter backlog gauge is ingest's to report.
    stage = Stage("ingest", app, settings, watch_dead_letters=True)
    # Explicit topics, not a regex subscription: the registry is read at start-up, so a
    # new partner means restarting ingest (docs/operations.md).
    partner_topics = tuple(topics.partner_topic(p) for p in registry.ids)
    stage.batches(partner_topics, admit_partner_records(stage, registry, settings))
    return app


def main() -> None:
    run_worker(bootstrap(IngestSettings()))


if __name__ == "__main__":
    main()
