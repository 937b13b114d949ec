"""The SDK alone: subjects, events, Kafka records in both modes, settings, signatures.

These run in a fresh virtual environment with only the SDK installed (the platform's
tests/integration/test_sdk.py does that, and also produces to the broker and posts to
the gateway with it)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from carbonledger_partner import (
    GatewayClient,
    behaviour_event,
    confluent_settings,
    encode,
    kafka_python_settings,
    kafka_record,
    partner_topic,
    person_subject,
    sign,
    signed_headers,
    unit_subject,
)
from carbonledger_partner.records import LedgerPosting

KEY = b"demo-scheme-identity-key"
ENDED = datetime(2026, 10, 17, 21, 58, tzinfo=timezone(timedelta(hours=8)))


def trip(**changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "partner": "shenzhen-metro",
        "id": "trip-1",
        "type": "travel.metro",
        "time": ENDED,
        "subject": person_subject(KEY, "+8613800000001"),
        "data": {"region": "440304", "distance_km": "7.5"},
    }
    return behaviour_event(**(fields | changes))  # type: ignore[arg-type]


def test_a_person_is_the_hmac_of_the_e164_number() -> None:
    expected = hmac.new(KEY, b"+8613800000001", hashlib.sha256).hexdigest()
    assert person_subject(KEY, "+8613800000001") == expected
    assert person_subject(KEY.decode(), "+8613800000001") == expected  # a text key too


@pytest.mark.parametrize("phone", ["13800000001", "+86 138 0000 0001", "+0123456789", ""])
def test_a_number_not_in_e164_form_is_refused(phone: str) -> None:
    with pytest.raises(ValueError, match=r"E\.164"):
        person_subject(KEY, phone)


def test_a_unit_is_the_hmac_of_its_credit_code() -> None:
    code = "91440300MA5F0XXX1K".replace("X", "0")
    assert unit_subject(KEY, code) == hmac.new(KEY, code.encode(), hashlib.sha256).hexdigest()
    with pytest.raises(ValueError):
        unit_subject(KEY, code.lower())


def test_an_event_is_a_cloudevent_with_its_offset() -> None:
    event = trip(subjectkind="unit")
    assert event["specversion"] == "1.0" and event["source"] == "shenzhen-metro"
    assert event["time"] == "2026-10-17T21:58:00+08:00"
    assert event["subjectkind"] == "unit"
    with pytest.raises(ValueError, match="offset"):
        trip(time=datetime(2026, 10, 17, 21, 58))


def test_encoding_is_compact_utf8_json() -> None:
    body = encode([{"line": "罗宝线", "at": ENDED}])
    assert body == '[{"line":"罗宝线","at":"2026-10-17T21:58:00+08:00"}]'.encode()


def test_a_structured_record_is_the_whole_event_keyed_by_subject() -> None:
    event = trip()
    record = kafka_record(event)
    assert record.key == str(event["subject"]).encode()
    assert json.loads(record.value) == event and record.headers == []


def test_a_binary_record_has_ce_headers_and_the_data_alone() -> None:
    event = trip(subjectkind="person")
    record = kafka_record(event, mode="binary")
    headers = dict(record.headers)
    assert headers["ce_id"] == b"trip-1" and headers["ce_type"] == b"travel.metro"
    assert headers["ce_subjectkind"] == b"person"
    assert headers["ce_time"] == b"2026-10-17T21:58:00+08:00"
    assert headers["content-type"] == b"application/json"
    assert "ce_data" not in headers
    assert json.loads(record.value) == event["data"]


def test_an_incomplete_event_is_not_made_a_record() -> None:
    event = trip()
    del event["subject"]
    with pytest.raises(ValueError, match="subject"):
        kafka_record(event)


def test_the_signature_is_hmac_of_timestamp_and_body() -> None:
    body = b'{"a":1}'
    assert (
        sign(b"s", "1700000000", body)
        == hmac.new(b"s", b"1700000000." + body, hashlib.sha256).hexdigest()
    )
    headers = signed_headers("navi-maps", "s", body, now=1700000000.9)
    assert headers == {
        "X-Carbon-Partner": "navi-maps",
        "X-Carbon-Timestamp": "1700000000",
        "X-Carbon-Signature": sign(b"s", "1700000000", body),
    }


def test_producer_settings_are_idempotent_scram_over_tls() -> None:
    plain = kafka_python_settings("navi-maps", "pw", "k:9093", ca_file="/ca.pem")
    assert plain["security_protocol"] == "SASL_SSL" and plain["ssl_cafile"] == "/ca.pem"
    assert plain["sasl_plain_username"] == "partner-navi-maps"
    assert plain["acks"] == "all" and plain["enable_idempotence"] is True
    rd = confluent_settings("navi-maps", "pw", "k:9093", ca_file="/ca.pem")
    assert rd["ssl.ca.location"] == "/ca.pem" and rd["sasl.mechanism"] == "SCRAM-SHA-512"
    assert rd["enable.idempotence"] is True
    local = kafka_python_settings("navi-maps", "pw", "k:1", security_protocol="SASL_PLAINTEXT")
    assert "ssl_cafile" not in local
    assert partner_topic("navi-maps") == "partner.navi-maps.events"


def test_a_posting_is_read_and_an_unknown_field_refused() -> None:
    posting = {
        "schema": "carbonledger.ledger_posting/1",
        "posting_id": "00000000-0000-0000-0000-000000000001",
        "decision_id": "00000000-0000-0000-0000-000000000002",
        "decision_kind": "credit",
        "claim_id": "00000000-0000-0000-0000-000000000003",
        "event": {"source": "shenzhen-metro", "id": "trip-1"},
        "book": "personal",
        "account": "ab" * 32,
        "chain_index": 1,
        "amount_mg": 95000,
        "balance_mg": 95000,
        "behaviour_type": "travel.metro",
        "region": "440304",
        "partner": "shenzhen-metro",
        "methodology": {"id": "shenzhen-public-transport", "version": "1"},
        "behaviour_time": "2026-10-17T13:58:00Z",
        "prev_hash": "0" * 64,
        "hash": "f" * 64,
    }
    read = LedgerPosting.model_validate_json(json.dumps(posting))
    assert read.amount_mg == 95000 and read.behaviour_time.tzinfo is not None
    assert read.behaviour_time == datetime(2026, 10, 17, 13, 58, tzinfo=UTC)
    with pytest.raises(ValueError):
        LedgerPosting.model_validate_json(json.dumps(posting | {"bonus": 1}))


def test_the_gateway_client_never_repeats_a_signature() -> None:
    """A check then a send of the same body inside one second would repeat the signature,
    which the gateway accepts once: the client waits for the next second instead."""
    client = GatewayClient("http://gateway.invalid", "navi-maps", "s")
    first = client._fresh_headers(b"[]")
    second = client._fresh_headers(b"[]")
    assert first["X-Carbon-Signature"] != second["X-Carbon-Signature"]
    assert int(second["X-Carbon-Timestamp"]) > int(first["X-Carbon-Timestamp"])
