"""The benchmark's simulated city: deterministic, valid, and duplicated as configured."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from carbonledger.bench.traffic import CityProfile, CityTraffic, reporting_partners
from carbonledger.contracts.settings import Settings
from carbonledger.reference.reconcile import expected_from

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def traffic(activities: int, **profile: object) -> tuple[CityTraffic, list[tuple[str, bytes]]]:
    city = CityTraffic(CityProfile(**{"people": 5_000, "tag": "t", **profile}))  # type: ignore[arg-type]
    records = []
    for n in range(0, activities, 500):
        records += city.batch(min(500, activities - n), NOW + timedelta(seconds=n // 500))
    return city, records


def test_the_same_profile_and_clock_give_the_same_bytes() -> None:
    assert traffic(1_000)[1] == traffic(1_000)[1]
    assert traffic(1_000)[1] != traffic(1_000, seed=7)[1]


def test_event_ids_are_unique_except_for_replays() -> None:
    city, records = traffic(3_000)
    ids = [
        json.loads(raw)["id"] for _, raw in records if raw.startswith(b"{") and raw.endswith(b"}")
    ]
    assert len(ids) - len(set(ids)) == city.counts.replays


def test_shares_are_roughly_as_configured() -> None:
    city, records = traffic(10_000)
    counts = city.counts
    assert counts.activities == 10_000 and counts.records == len(records)
    # Only types with two or more allowed reporters can be duplicated (about 80% of the mix).
    assert 0.18 < counts.duplicates / counts.activities < 0.36
    assert 0.01 < counts.replays / counts.activities < 0.03
    assert 0.004 < counts.late / counts.activities < 0.02
    assert 0 < counts.malformed / counts.activities < 0.005
    assert counts.by_behaviour_type["travel.metro"] > counts.by_behaviour_type["ev.charge"]


def test_settle_credits_every_activity_once_and_finds_every_duplicate() -> None:
    city, records = traffic(2_000)
    settled = expected_from(Settings(), records)
    counts = city.counts
    unconsented = counts.consentless_reports
    assert unconsented > 0 and counts.consents > 0
    assert settled.outcomes["no_consent"] == unconsented
    assert settled.as_json()["consent_records"] == counts.consents
    credited = counts.activities - counts.uncredited - counts.consentless_only
    assert settled.outcomes["credited"] == credited
    # A report without consent takes part in no cluster: it is no duplicate.
    duplicates = counts.duplicates - counts.uncredited_reports
    assert settled.outcomes["duplicate"] == duplicates - (unconsented - counts.consentless_only)
    refused = sum(settled.rejections.values())
    assert refused >= city.counts.malformed  # a replayed broken record is refused again
    assert settled.outcomes["replay"] + refused == city.counts.replays + city.counts.malformed


def test_the_partners_connected_first_are_every_partner_the_traffic_comes_from() -> None:
    _, records = traffic(3_000)
    partners = reporting_partners()
    assert len(set(partners)) == len(partners)
    assert {partner for partner, _ in records} <= set(partners)
