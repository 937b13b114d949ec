"""The chaos suite's tables make the bytes they say, and its verdicts judge as documented."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from carbonledger.bench.chaos import faults, hostile, poison
from carbonledger.bench.chaos.attack import _event_id_in, _note_letter
from carbonledger.bench.chaos.verdict import (
    ALONE,
    WITH_CONTROL,
    Attempt,
    Observed,
    judge,
    restarted,
    table,
)
from carbonledger.contracts import topics
from carbonledger.contracts.catalogue import Reason
from carbonledger.contracts.partners import load_registry
from carbonledger.contracts.records import DeadLetter, Origin, ValidatedBehaviour
from carbonledger.contracts.settings import Settings
from carbonledger.services.ingest.domain.admission import admit

CRAFTING = hostile.Crafting("t0", datetime(2026, 10, 20, 8, 30, tzinfo=UTC))
NOW = datetime(2026, 12, 1, tzinfo=UTC)
ISSUE_18 = {  # every input issue 18 names is in the table
    "id-nul",
    "time-year-one",
    "interval-year-one",
    "distance-1e-999999999",
    "distance-text-1E-999999",
    "steps-date-9999-12-31",
    "nested-2000-in-data",
    "duplicate-key-in-data",
    "duplicate-subject",
}
INTERNAL_18 = {
    "claims-reduction-minus-10-12",
    "claims-reduction-2-to-the-70",
    "claims-region-999999",
    "decisions-reverse-of-nothing",
    "decisions-amount-2-to-the-70",
    "validated-distance-abc",
    "validated-missing-subject",
    "validated-id-nul",
}


def built(name: str) -> bytes:
    return hostile.CASES[name].build(CRAFTING, CRAFTING.event_id(name, "x"))


def text_of(name: str) -> str:
    return built(name).decode()


def test_the_tables_hold_every_named_input_and_more_with_known_reasons() -> None:
    assert len(hostile.HOSTILE) >= 30 and hostile.CASES.keys() >= ISSUE_18
    assert poison.CASES.keys() >= INTERNAL_18
    assert len(hostile.CASES) == len(hostile.HOSTILE) and len(poison.CASES) == len(poison.POISON)
    codes = {r.value for r in Reason}
    for name, reasons in [(c.name, c.reasons) for c in hostile.HOSTILE] + [
        (c.name, c.reasons) for c in poison.POISON
    ]:
        assert reasons <= codes, name
    assert {p.topic for p in poison.POISON} == {topics.VALIDATED, topics.CLAIMS, topics.DECISIONS}


def test_the_valid_events_the_cases_start_from_are_admitted() -> None:
    registry = load_registry(Settings().partners_file)
    origin = Origin(topic="t", partition=0, offset=0)
    for raw in (
        hostile.encode(CRAFTING.trip("t0-a")),
        hostile.encode(CRAFTING.steps("t0-b")),
        hostile.control(CRAFTING, "case", "phase"),
        built("id-4-byte-chars"),
    ):
        got = admit(
            raw, None, partner_id=hostile.PARTNER, registry=registry, origin=origin, now=NOW
        )
        assert isinstance(got, ValidatedBehaviour), got


@pytest.mark.parametrize(
    ("name", "wanted"),
    [
        ("id-nul", lambda d: d["id"].endswith("\u0000")),
        ("time-year-one", lambda d: d["time"] == hostile.YEAR_ONE),
        ("interval-year-one", lambda d: d["data"]["started_at"] == hostile.YEAR_ONE),
        ("distance-text-1E-999999", lambda d: d["data"]["distance_km"] == "1E-999999"),
        ("steps-date-9999-12-31", lambda d: d["data"]["date"] == "9999-12-31"),
        ("source-control-char", lambda d: d["source"] == "navi-maps\u0007"),
        ("id-4-byte-chars", lambda d: "\U0001f687" in d["id"]),
        ("subject-upper-hex", lambda d: re.fullmatch("[0-9A-F]{64}", d["subject"])),
        ("data-array", lambda d: d["data"] == []),
    ],
)
def test_each_builder_changes_what_its_name_says(name: str, wanted: Any) -> None:
    assert wanted(json.loads(built(name)))


def test_raw_numbers_and_duplicate_keys_are_in_the_bytes_exactly() -> None:
    assert '"distance_km": 1e-999999999' in text_of("distance-1e-999999999")
    assert '"distance_km": 12.5, "distance_km": 199.9' in text_of("duplicate-key-in-data")
    assert text_of("duplicate-subject").count('"subject":') == 2
    assert '"steps": 1180591620717411303424' in text_of("steps-2-to-the-70")
    assert '"distance_km": NaN' in text_of("distance-NaN-literal")
    assert '"id": "lone-\\ud800"' in text_of("id-lone-surrogate")
    nested = text_of("nested-2000-in-data")
    assert "[" * hostile.DEEP + "]" * hostile.DEEP in nested
    assert built("nested-2000-event") == b"[" * 2000 + b"]" * 2000


def test_byte_level_cases_are_the_bytes_they_name() -> None:
    assert built("empty") == b""
    assert built("byte-order-mark").startswith(b"\xef\xbb\xbf{")
    assert built("not-utf8").startswith(b"\xff\xfe")
    assert built("surrogate-bytes").endswith(b"\xed\xa0\x80")
    assert len(built("one-mib-plus-one")) == hostile.MAX_RECORD_BYTES + 1
    assert json.loads(built("one-mib-plus-one"))["data"]["note"]  # still one JSON object
    assert isinstance(json.loads(built("event-in-array")), list)
    with pytest.raises(ValueError):
        json.loads(built("truncated"))


def test_each_case_is_built_around_its_own_event_id() -> None:
    for case in hostile.HOSTILE:
        if case.name in ("empty", "nested-2000-event", "id-empty", "id-lone-surrogate"):
            continue
        event_id = CRAFTING.event_id(case.name, "x")
        assert event_id.encode() in case.build(CRAFTING, event_id), case.name
    # A control's id never extends a case's own (a case may append to its id).
    assert not CRAFTING.control_id("a", "p").startswith(CRAFTING.event_id("a", "p"))


def upstream_of(name: str) -> tuple[poison.Upstream, dict[str, Any]]:
    event_id = CRAFTING.event_id(name, "p")
    records = poison.upstream(Settings(), CRAFTING, event_id)
    return records, orjson.loads(poison.CASES[name].build(records))


def test_poison_starts_from_the_stages_own_records_with_one_thing_broken() -> None:
    records, claim = upstream_of("claims-reduction-minus-10-12")
    assert records.claim.credited and records.credit.amount_mg == records.claim.reduction_mg > 0
    assert claim["reduction_mg"] == -(10**12)
    assert {k: v for k, v in claim.items() if k != "reduction_mg"} == {
        k: v for k, v in orjson.loads(records.claim.to_bytes()).items() if k != "reduction_mg"
    }
    _, big = upstream_of("decisions-amount-2-to-the-70")
    assert big["amount_mg"] == 2**70
    _, reverse = upstream_of("decisions-reverse-of-nothing")
    assert reverse["kind"] == "reverse" and reverse["amount_mg"] < 0 and reverse["reverses"]
    _, abc = upstream_of("validated-distance-abc")
    assert abc["data"]["distance_km"] == "abc"
    _, missing = upstream_of("validated-missing-subject")
    assert "subject" not in missing
    _, alone = upstream_of("reduction.claims-id-alone")
    assert alone == {"id": CRAFTING.event_id("reduction.claims-id-alone", "p")}


def test_a_letter_is_traced_to_the_event_of_any_record() -> None:
    records, _ = upstream_of("validated-distance-abc")
    event_id = records.claim.event.id
    for record in (records.behaviour, records.claim, records.credit):
        assert _event_id_in(record.to_bytes()) == event_id
    assert _event_id_in(hostile.encode(CRAFTING.trip("t0-z"))) == "t0-z"
    assert _event_id_in(b"\xff not json") is None


# --- verdicts ---------------------------------------------------------------------------


def attempt(**changes: Any) -> Attempt:
    base: dict[str, Any] = {
        "case": "c",
        "channel": "kafka",
        "phase": WITH_CONTROL,
        "event_id": "t0-c-kafka",
        "raw": b"poison",
        "reasons": frozenset({"too_deep"}),
        "control_id": "t0-control-c",
    }
    return Attempt(**(base | changes))


def test_a_dead_lettered_input_with_its_control_credited_passes() -> None:
    seen = Observed(letters={b"poison": "too_deep"}, postings={"t0-control-c": 3})
    verdict = judge(attempt(), seen)
    assert verdict.ok and verdict.outcome == "dead-lettered too_deep"


def test_a_letter_found_by_event_id_from_a_later_stage_counts() -> None:
    seen = Observed(letters_by_event={"t0-c-kafka\u0000": "too_deep"}, postings={"t0-control-c": 3})
    assert judge(attempt(), seen).ok


@pytest.mark.parametrize(
    ("seen", "problem"),
    [
        (Observed(letters={b"poison": "processing_error"}, postings={"t0-control-c": 3}), "wanted"),
        (Observed(postings={"t0-control-c": 3, "t0-c-kafka": 3}), "postings made"),
        (Observed(letters={b"poison": "too_deep"}), "control event was not credited"),
    ],
)
def test_a_wrong_reason_a_posting_or_a_stuck_control_fails(seen: Observed, problem: str) -> None:
    verdict = judge(attempt(), seen)
    assert not verdict.ok and any(problem in p for p in verdict.problems), verdict


def test_over_http_the_event_is_rejected_and_the_rest_of_the_batch_accepted() -> None:
    results = ({"status": "rejected", "reason": "too_deep"}, {"status": "accepted"})
    seen = Observed(postings={"t0-control-c": 3})
    good = attempt(channel="http", http_status=200, http_results=results)
    assert judge(good, seen).ok
    refused_batch = attempt(channel="http", http_status=500, http_results=())
    assert not judge(refused_batch, seen).ok
    both_refused = attempt(
        channel="http", http_status=200, http_results=(results[0], {"status": "rejected"})
    )
    assert "its control event was refused with it" in judge(both_refused, seen).problems


def test_only_a_whole_body_case_may_be_refused_with_a_4xx() -> None:
    seen = Observed(postings={"t0-control-c": 3})
    assert judge(attempt(channel="http", http_status=400, whole_body=True), seen).ok
    assert not judge(attempt(channel="http", http_status=400), seen).ok
    # A 401 refuses the credentials, not the input; a 5xx is the gateway failing.
    for status in (401, 500, None):
        assert not judge(attempt(channel="http", http_status=status, whole_body=True), seen).ok


def test_a_valid_looking_case_must_be_credited() -> None:
    valid = attempt(reasons=frozenset(), phase=ALONE, control_id=None)
    assert judge(valid, Observed(postings={"t0-c-kafka-\U0001f687": 3})).ok
    assert not judge(valid, Observed(letters={b"poison": "invalid_envelope"})).ok


def test_restarts_are_start_times_that_moved_or_vanished() -> None:
    before = {"ingest-0": 1.0, "quantify-0": 2.0, "dedupe-0": 3.0}
    assert restarted(before, {"ingest-0": 1.0, "quantify-0": 9.0}) == ["dedupe-0", "quantify-0"]
    assert restarted(before, dict(before)) == []


def test_the_table_names_each_failing_case_and_why() -> None:
    lines = table([judge(attempt(), Observed())]).splitlines()
    assert lines[0].startswith("FAIL c ") and "no dead letter" in lines[0]
    assert "control event was not credited" in lines[0]


def test_a_fault_run_is_ok_only_if_it_struck_and_nothing_was_lost_or_doubled() -> None:
    assert faults.FaultRun("sigkill:dedupe", faults=1, records=10, events=9, verify_ok=True).ok
    assert not faults.FaultRun("sigkill:dedupe", faults=0).ok  # a fault that never struck
    assert not faults.FaultRun("restart:kafka", faults=1, lost=1).ok
    assert not faults.FaultRun("restart:kafka", faults=1, doubled=1).ok
    with pytest.raises(ValueError):
        faults.strike(Settings(), "unplug:everything", 0)


def test_admitted_events_are_the_distinct_events_ingest_admits() -> None:
    good = hostile.encode(CRAFTING.trip("t0-a"))
    records = [("navi-maps", good), ("navi-maps", good), ("navi-maps", b"{oops")]
    assert faults.admitted_events(Settings(), records, NOW) == {("navi-maps", "t0-a")}


def test_dead_letters_carry_what_the_tables_match_on() -> None:
    letter = DeadLetter.of(
        stage="ingest",
        reason="not_json",
        message="m",
        partner="navi-maps",
        origin=Origin(topic="t", partition=0, offset=1),
        key=None,
        payload=b"{oops",
        received_at=NOW,
    )
    seen = Observed()
    _note_letter(letter.to_bytes(), seen)
    assert seen.letters == {b"{oops": "not_json"}
