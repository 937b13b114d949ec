"""A deterministic sample of partner traffic: the bundled demo input and test data."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from carbonledger.contracts.catalogue import CST
from carbonledger.contracts.settings import ROOT

SAMPLE_FILE = ROOT / "deploy" / "sample" / "partner-traffic.jsonl"
# Stands in for the scheme-wide identity key operators hand to partners (DOMAIN.md §3).
DEMO_IDENTITY_KEY = b"demo-scheme-identity-key"

SHENZHEN_DISTRICTS = ("440303", "440304", "440305", "440306", "440307", "440309")
OUTSIDE_SHENZHEN = ("440106", "110105")  # Guangzhou Tianhe, Beijing Chaoyang: no metro methodology
METRO_PARTNERS = ("shenzhen-metro", "navi-maps", "green-bank")


def subject_of(phone: str, key: bytes = DEMO_IDENTITY_KEY) -> str:
    """The pseudonymous subject a partner sends: HMAC-SHA256 of the E.164 number."""
    return hmac.new(key, phone.encode(), hashlib.sha256).hexdigest()


def metro_event(
    rng: random.Random, partner: str, n: int, subject: str, start: datetime, region: str
) -> dict[str, object]:
    minutes = rng.randint(6, 75)
    distance = Decimal(rng.randint(10, 400)) / 10
    ended = start + timedelta(minutes=minutes)
    return {
        "specversion": "1.0",
        "id": f"{partner}-{n:06d}",
        "source": partner,
        "type": "travel.metro",
        "time": ended.isoformat(),
        "subject": subject,
        "datacontenttype": "application/json",
        "data": {
            "region": region,
            "started_at": start.isoformat(),
            "ended_at": ended.isoformat(),
            "distance_km": distance,
            "line": f"L{rng.randint(1, 16)}",
        },
    }


_NUMBER = re.compile(r'"#decimal:(-?[0-9]+(?:\.[0-9]+)?)"')


def _dumps(event: dict[str, object]) -> str:
    """JSON with Decimals written as JSON numbers, digit for digit (as partners send them)."""
    text = json.dumps(event, ensure_ascii=False, default=lambda d: f"#decimal:{d}")
    return _NUMBER.sub(r"\1", text)


MALFORMED = [
    "this is not json",
    '{"specversion": "1.0", "id": "truncated',
    "[1, 2, 3]",
]


_MUTATIONS: tuple[Callable[[dict[str, Any]], object], ...] = (
    lambda d: d.update(distance_km=Decimal("-3.2")),
    lambda d: d.update(distance_km=Decimal("900")),
    lambda d: d.pop("distance_km"),
    lambda d: d.update(ended_at=d["started_at"], started_at=d["ended_at"]),
    lambda d: d.update(region="999999"),
    lambda d: d.update(platform="ios"),
)


def _broken_variants(base: dict[str, Any]) -> list[dict[str, Any]]:
    """Invalid copies of a valid event, one per way a partner gets it wrong."""
    data = dict(base["data"])
    variants: list[dict[str, Any]] = []
    for mutate in _MUTATIONS:
        changed = dict(data)
        mutate(changed)
        variants.append({**base, "id": f"{base['id']}-bad{len(variants)}", "data": changed})
    variants.append({**base, "id": f"{base['id']}-badsubject", "subject": "+8613800000000"})
    variants.append({**base, "id": f"{base['id']}-badtype", "type": "travel.bike_share"})
    return variants


def generate(
    seed: int = 2026, people: int = 400, trips: int = 2700, replays: int = 150
) -> list[str]:
    """Metro trips in October 2026 from three partners, with replays and malformed records."""
    rng = random.Random(seed)
    subjects = [subject_of(f"+86138{i:08d}") for i in range(people)]
    first_day = datetime(2026, 10, 1, 6, 0, tzinfo=CST)
    events = []
    for n in range(trips):
        partner = rng.choice(METRO_PARTNERS)
        region = (
            rng.choice(OUTSIDE_SHENZHEN) if rng.random() < 0.03 else rng.choice(SHENZHEN_DISTRICTS)
        )
        start = first_day + timedelta(days=rng.randint(0, 30), minutes=rng.randint(0, 16 * 60))
        events.append(metro_event(rng, partner, n, rng.choice(subjects), start, region))
    lines = [_dumps(e) for e in events]
    lines += [_dumps(e) for e in _broken_variants(events[0])]
    lines += [rng.choice(lines[:trips]) for _ in range(replays)]
    rng.shuffle(lines)
    # Malformed lines that are not JSON are kept apart so they still route to a partner.
    return lines + MALFORMED


def write_sample(path: Path = SAMPLE_FILE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(generate()) + "\n", encoding="utf-8")
    return path
