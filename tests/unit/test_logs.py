"""JSON logs (CARBON_LOG_FORMAT=json): a line per processed batch and per HTTP request is
one JSON object with the documented fields; HTTP answers carry their request id."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from carbonledger.contracts.settings import Settings
from carbonledger.runtime.logs import log_batch, logging_config
from carbonledger.runtime.web import REQUEST_ID_HEADER, with_access_log

BATCH_FIELDS = {"stage", "topic", "partition", "first_offset", "offset", "records", "seconds"}
ACCESS_FIELDS = {"request_id", "method", "path", "status", "seconds", "partner", "client"}
EVERY_LINE = {"time", "level", "logger", "message", "service"}


@pytest.fixture()
def lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The process configured for JSON at INFO, its lines written here."""
    monkeypatch.setenv("CARBON_SERVICE", "ingest")
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logging.config.dictConfig(logging_config(Settings(log_format="json", log_level="INFO")))
    out = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)
    try:
        yield out
    finally:
        root.handlers[:], root.level = saved


def parsed(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


@dataclass
class Record:
    topic: str
    partition: int
    offset: int


def test_a_batch_is_one_json_line_per_partition_with_its_offsets(lines: io.StringIO) -> None:
    records = [Record("partner.a.events", 0, 5), Record("partner.a.events", 0, 6)]
    log_batch("ingest", [*records, Record("partner.a.events", 3, 40)], 0.0123)
    first, second = parsed(lines)
    assert first.keys() >= EVERY_LINE | BATCH_FIELDS
    assert (first["partition"], first["first_offset"], first["offset"], first["records"]) == (
        0,
        5,
        6,
        2,
    )
    assert (second["partition"], second["offset"], second["records"]) == (3, 40, 1)
    assert first["service"] == "ingest" and first["level"] == "INFO"
    assert first["logger"] == "carbonledger.batch" and first["stage"] == "ingest"


def test_the_level_setting_silences_info(lines: io.StringIO) -> None:
    logging.getLogger().setLevel("WARNING")
    log_batch("ingest", [Record("t", 0, 1)], 0.1)
    assert lines.getvalue() == ""


def app() -> FastAPI:
    made = FastAPI()

    @made.get("/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    with_access_log(made)
    return made


def test_a_request_is_one_json_line_and_its_answer_carries_the_id(lines: io.StringIO) -> None:
    client = TestClient(app())
    sent: httpx.Response = client.get("/ping", headers={REQUEST_ID_HEADER: "trace-42"})
    made: httpx.Response = client.get("/ping", headers={REQUEST_ID_HEADER: "bad id\n"})
    missing: httpx.Response = client.get("/nowhere")
    assert sent.headers[REQUEST_ID_HEADER] == "trace-42"
    assert len(made.headers[REQUEST_ID_HEADER]) == 32  # a new one: the sent one is not plain
    access = [line for line in parsed(lines) if line["logger"] == "carbonledger.access"]
    assert [(a["path"], a["status"]) for a in access] == [
        ("/ping", 200),
        ("/ping", 200),
        ("/nowhere", 404),
    ]
    assert all(a.keys() >= EVERY_LINE | ACCESS_FIELDS for a in access)
    assert access[0]["request_id"] == "trace-42"
    assert access[1]["request_id"] == made.headers[REQUEST_ID_HEADER]
    assert access[2]["request_id"] == missing.headers[REQUEST_ID_HEADER]


def test_text_stays_the_default() -> None:
    config = logging_config(Settings())
    assert "format" in config["formatters"]["default"]
    assert config["root"]["level"] == "INFO"
