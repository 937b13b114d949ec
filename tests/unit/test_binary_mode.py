"""CloudEvents binary content mode on Kafka: admitted exactly like its structured twin.

The binary records here are made by the CloudEvents SDK partners use (`cloudevents` on
PyPI, its Kafka binding) and by the partner SDK."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from carbonledger_partner import kafka_record
from cloudevents.core.bindings.kafka import to_binary_event
from cloudevents.core.v1.event import CloudEvent

from carbonledger.contracts.records import DeadLetter, ValidatedBehaviour
from carbonledger.services.ingest.domain.binary_mode import is_binary, structured_twin
from carbonledger.services.ingest.service import PartnerRecord, admit_records
from tests.factories import metro, raw, registry

NOW = datetime(2026, 10, 11, tzinfo=UTC)
TOPIC = "partner.shenzhen-metro.events"


def admitted(value: bytes | None, headers: tuple[tuple[str, bytes | None], ...] = ()) -> Any:
    """The one outcome of one record (a ValidatedBehaviour or a DeadLetter)."""
    record = PartnerRecord("shenzhen-metro", b"k", value, TOPIC, 0, 7, headers)
    [outcome] = admit_records([record], registry(), now=NOW)
    return outcome


Headers = tuple[tuple[str, bytes | None], ...]


def sdk_binary(event: dict[str, Any]) -> tuple[Headers, bytes]:
    attributes = {k: v for k, v in event.items() if k != "data"}
    attributes["time"] = datetime.fromisoformat(event["time"])  # the SDK takes a datetime
    message = to_binary_event(CloudEvent(attributes=attributes, data=event["data"]))
    return tuple(message.headers.items()), message.value


def test_a_binary_event_from_the_cloudevents_sdk_is_its_structured_twin() -> None:
    event = metro(id="bin-1")
    headers, value = sdk_binary(event)
    assert is_binary(headers) and b"specversion" not in value
    binary, structured = admitted(value, headers), admitted(raw(event))
    assert isinstance(binary, ValidatedBehaviour) and binary == structured


def test_a_binary_event_from_the_partner_sdk_is_its_structured_twin() -> None:
    event = metro(id="bin-2", subjectkind="person")
    record = kafka_record(event, mode="binary")
    assert admitted(record.value, tuple(record.headers)) == admitted(raw(event))


def test_binary_data_goes_through_the_strict_parser() -> None:
    headers, _ = sdk_binary(metro(id="bin-3"))
    twice = b'{"region":"440305","region":"440305"}'
    refused = admitted(twice, headers)
    assert isinstance(refused, DeadLetter) and refused.reason == "duplicate_key"


def test_a_binary_event_that_breaks_a_rule_is_refused_for_the_same_reason() -> None:
    far = metro(id="bin-4", data_distance_km="900")
    headers, value = sdk_binary(far)
    binary, structured = admitted(value, headers), admitted(raw(far))
    assert isinstance(binary, DeadLetter) and binary.reason == structured.reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"content-type": b"text/plain"}, "invalid_envelope"),
        ({"ce_data": b"{}"}, "invalid_envelope"),
        ({"ce_id": b"\xff"}, "not_utf8"),
    ],
)
def test_headers_that_cannot_make_an_event_are_refused(
    change: dict[str, bytes], reason: str
) -> None:
    headers, value = sdk_binary(metro(id="bin-5"))
    replaced: Headers = tuple((n, change.pop(n, v)) for n, v in headers)
    changed: Headers = replaced + tuple(change.items())
    refused = admitted(value, changed)
    assert isinstance(refused, DeadLetter) and refused.reason == reason


def test_the_same_header_twice_is_a_duplicate_key() -> None:
    headers, value = sdk_binary(metro(id="bin-6"))
    refused = admitted(value, (*headers, ("ce_id", b"other")))
    assert isinstance(refused, DeadLetter) and refused.reason == "duplicate_key"


def test_a_binary_record_without_data_is_refused_as_an_invalid_envelope() -> None:
    headers, _ = sdk_binary(metro(id="bin-7"))
    refused = admitted(None, headers)
    assert isinstance(refused, DeadLetter) and refused.reason == "invalid_envelope"


def test_other_headers_leave_a_structured_record_as_it_is() -> None:
    event = metro(id="bin-8")
    assert not is_binary((("traceparent", b"00-ab"),))
    assert admitted(raw(event), (("traceparent", b"00-ab"),)) == admitted(raw(event))


def test_the_twin_holds_the_data_bytes_verbatim() -> None:
    twin = structured_twin((("ce_specversion", b"1.0"), ("ce_id", b"x")), b'{"a":10.40}')
    assert (
        twin
        == b'{"specversion":"1.0","id":"x","datacontenttype":"application/json","data":{"a":10.40}}'
    )


def test_a_refused_record_is_logged_with_the_id_it_claims_and_where(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("INFO", logger="carbonledger.services.ingest.service"):
        admitted(raw(metro(id="logged-1", data_distance_km="900")))
    [line] = [r for r in caplog.records if r.getMessage() == "record refused"]
    fields = vars(line)
    assert (fields["source_id"], fields["reason"]) == ("logged-1", "out_of_bounds")
    assert (fields["topic"], fields["partition"], fields["offset"]) == (TOPIC, 0, 7)
