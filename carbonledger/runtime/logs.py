"""Logs as operators' tools read them: one format for every process, plain text or JSON
(CARBON_LOG_FORMAT), at CARBON_LOG_LEVEL.

A JSON line has `time`, `level`, `logger`, `message` and `service`, plus the fields a
line carries as `extra`: a stage's batch line `stage`, `topic`, `partition`,
`first_offset`, `offset`, `records`, `seconds`; an HTTP access line `request_id`,
`method`, `path`, `status`, `seconds` (and the gateway's `partner`); a refused
record's `event_id`, `reason`, `partition`, `offset`. docs/operations.md lists them.
"""

from __future__ import annotations

import logging
import logging.config
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from carbonledger.contracts.settings import Settings

JSON_FORMATTER = "pythonjsonlogger.json.JsonFormatter"
JSON_FIELDS = "%(levelname)s %(name)s %(message)s"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
RENAMED = {"levelname": "level", "name": "logger"}

batch_log = logging.getLogger("carbonledger.batch")


def service_name() -> str:
    """The process's service, as `carbonledger up` names it (CARBON_SERVICE), else its program."""
    return os.environ.get("CARBON_SERVICE") or os.path.basename(sys.argv[0] or "python")


def logging_config(settings: Settings) -> dict[str, Any]:
    """The dictConfig of a process: one stdout handler at the configured level."""
    formatter: dict[str, Any] = (
        {
            "()": JSON_FORMATTER,
            "fmt": JSON_FIELDS,
            "rename_fields": RENAMED,
            "static_fields": {"service": service_name()},
            "timestamp": "time",  # ISO 8601, UTC
        }
        if settings.log_format == "json"
        else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"level": settings.log_level, "handlers": ["default"]},
    }


def configure(settings: Settings) -> None:
    """For a process that is not a faust worker (faust applies `logging_config` itself)."""
    logging.config.dictConfig(logging_config(settings))


def log_batch(stage: str, records: Sequence[Any], seconds: float) -> None:
    """One line per topic-partition of a processed batch: where it read, how much."""
    for (topic, partition), offsets in _by_partition(records).items():
        batch_log.info(
            "batch processed",
            extra={
                "stage": stage,
                "topic": topic,
                "partition": partition,
                "first_offset": min(offsets),
                "offset": max(offsets),
                "records": len(offsets),
                "seconds": round(seconds, 6),
            },
        )


def _by_partition(records: Iterable[Any]) -> dict[tuple[str, int], list[int]]:
    found: dict[tuple[str, int], list[int]] = {}
    for record in records:
        found.setdefault((record.topic, record.partition), []).append(record.offset)
    return found
