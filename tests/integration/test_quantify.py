"""The quantify service and `carbonledger quantify` give the same result per event."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from carbonledger.contracts import topics
from carbonledger.contracts.calendar import CST
from carbonledger.contracts.records import ReductionClaim
from carbonledger.contracts.settings import Settings
from carbonledger.demo.sample import subject_of
from carbonledger.ops import stack
from carbonledger.ops.publish import publish
from carbonledger.reference.offline import result_of
from tests.integration.helpers import scan

pytestmark = pytest.mark.integration

# What the shipped partners may report, in regions where several methodologies apply.
MIX = [
    ("shenzhen-metro", "travel.metro", ["440304", "420102", "110105"]),
    ("navi-maps", "travel.bus", ["440304", "420102", "310115"]),
    ("navi-maps", "travel.bike_share", ["110105", "500103"]),
    ("navi-maps", "steps.daily", ["420102", "440304"]),
    ("green-bank", "payment.utility_online", ["420102", "310115"]),
]


def generated(count: int, seed: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    records = []
    for n in range(count):
        partner, kind, regions = rng.choice(MIX)
        # One week, like every test's traffic: the stack's dedupe window is shared.
        ended = datetime(2026, 10, 12, 7, tzinfo=CST) + timedelta(minutes=rng.randint(0, 8000))
        data: dict[str, Any] = {"region": rng.choice(regions)}
        if kind.startswith("travel."):
            data |= {
                "started_at": (ended - timedelta(minutes=15)).isoformat(),
                "ended_at": ended.isoformat(),
                "distance_km": f"{rng.randint(1, 3000) / 100:.2f}",
            }
            if kind == "travel.bus":
                data["electric"] = rng.random() < 0.5
        elif kind == "steps.daily":
            data |= {"date": ended.date().isoformat(), "steps": rng.randint(0, 30000)}
        else:
            data["bill_id"] = f"bill-{n}"
        event = {
            "specversion": "1.0",
            "id": f"cmp-{n}",
            "source": partner,
            "type": kind,
            "time": ended.isoformat(),
            "subject": subject_of(f"+86-cmp-{n % 500}"),
            "data": data,
        }
        records.append((partner, json.dumps(event).encode()))
    return records


def service_results(settings: Settings, wanted: int, timeout: float = 180) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for record in scan(settings, [topics.CLAIMS], lambda: len(found) >= wanted, timeout):
        # The topic is shared: other tests write poison to it, which this test skips;
        # a claim of its own that does not decode is missing and fails the comparison.
        if b'"cmp-' not in record.value:
            continue
        claim = ReductionClaim.model_validate_json(record.value)
        if claim.event.id.startswith("cmp-"):
            found[claim.event.id] = result_of(claim)
    return found


def test_service_and_offline_command_agree_on_10000_events(
    settings: Settings, running_stack: stack.Processes
) -> None:
    records = generated(10_000, seed=11)
    publish(settings, records)
    offline = subprocess.run(
        [sys.executable, "-m", "carbonledger.cli.main", "quantify"],
        input=b"\n".join(r for _, r in records),
        capture_output=True,
        check=True,
    )
    expected = {r["id"]: r for r in map(json.loads, offline.stdout.splitlines())}
    assert len(expected) == 10_000
    credited = sum(r["credited"] for r in expected.values())
    assert 0 < credited < 10_000  # the mix has both outcomes
    got = service_results(settings, len(expected))
    assert got == expected


def test_methodology_endpoints(running_stack: stack.Processes) -> None:
    base = f"http://127.0.0.1:{running_stack.port('ledger-api')}"
    listed = httpx.get(f"{base}/v1/methodologies").json()
    assert {m["id"] for m in listed} >= {"shenzhen-public-transport", "hankou-bank-2022"}
    one = httpx.get(f"{base}/v1/methodologies/hankou-bank-2022/1").json()
    assert one["caps"] == [
        {
            "behaviours": ["steps.daily"],
            "period": "day",
            "max_g": "200",
            "max_events": None,
            "per_type": False,
        }
    ]
    scoped = httpx.get(f"{base}/v1/methodologies/hankou-bank-2022/2").json()
    assert (scoped["issuer_kind"], scoped["partners"], scoped["supersedes"]) == (
        "partner",
        ["hankou-bank"],
        ["1"],
    )
    assert {f["source"] for f in one["factors"]} == {"seed 002"}
    assert httpx.get(f"{base}/v1/methodologies/hankou-bank-2022/9").status_code == 404
