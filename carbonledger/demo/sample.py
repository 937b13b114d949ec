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

from carbonledger.contracts.calendar import CST
from carbonledger.contracts.settings import ROOT

SAMPLE_FILE = ROOT / "deploy" / "sample" / "partner-traffic.jsonl"
# Stands in for the scheme-wide identity key operators hand to partners (docs/domain.md).
DEMO_IDENTITY_KEY = b"demo-scheme-identity-key"

SHENZHEN_DISTRICTS = ("440303", "440304", "440305", "440306", "440307", "440309")
OUTSIDE_SHENZHEN = ("440106", "110105")  # Guangzhou Tianhe, Beijing Chaoyang: no metro methodology
METRO_PARTNERS = ("shenzhen-metro", "navi-maps", "green-bank")


def subject_of(phone: str, key: bytes = DEMO_IDENTITY_KEY) -> str:
    """The pseudonymous subject a partner sends: HMAC-SHA256 of the E.164 number."""
    return hmac.new(key, phone.encode(), hashlib.sha256).hexdigest()


WUHAN_DISTRICTS = ("420102", "420106", "420111")  # Jiang'an, Wuchang, Hongshan: Hankou Bank rules
# How far each kind of partner's view of one trip drifts from the ticketing record.
_DRIFT_MINUTES = {"shenzhen-metro": 0, "navi-maps": 3, "green-bank": 1}


def _envelope(
    partner: str, n: int, behaviour: str, subject: str, ended: datetime, data: dict[str, object]
) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": f"{partner}-{n:06d}",
        "source": partner,
        "type": behaviour,
        "time": ended.isoformat(),
        "subject": subject,
        "datacontenttype": "application/json",
        "data": data,
    }


def trip_event(
    rng: random.Random,
    partner: str,
    n: int,
    subject: str,
    trip: tuple[datetime, int, Decimal, str],
    behaviour: str = "travel.metro",
) -> dict[str, object]:
    """One partner's report of a trip (start, minutes, km, region), as that partner sees it."""
    start, minutes, distance, region = trip
    drift = _DRIFT_MINUTES.get(partner, 2)
    begun = start + timedelta(minutes=rng.randint(-drift, drift))
    ended = start + timedelta(minutes=minutes + rng.randint(-drift, drift))
    seen = distance if partner == "shenzhen-metro" else distance + Decimal(rng.randint(-5, 5)) / 10
    data: dict[str, object] = {
        "region": region,
        "started_at": begun.isoformat(),
        "ended_at": ended.isoformat(),
        "distance_km": max(seen, Decimal("0.5")),
    }
    if behaviour == "travel.bus":
        data["electric"] = True
    else:
        data["line"] = f"L{rng.randint(1, 16)}"
    return _envelope(partner, n, behaviour, subject, ended, data)


def steps_event(partner: str, n: int, subject: str, day: datetime, steps: int) -> dict[str, object]:
    ended = day.replace(hour=23, minute=0)
    data = {"region": WUHAN_DISTRICTS[n % 3], "date": day.date().isoformat(), "steps": steps}
    return _envelope(partner, n, "steps.daily", subject, ended, data)


_NUMBER = re.compile(r'"#decimal:(-?[0-9]+(?:\.[0-9]+)?)"')


def dumps(event: dict[str, object]) -> str:
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


class _Numbering:
    def __init__(self) -> None:
        self.next: dict[str, int] = {}

    def __call__(self, partner: str) -> int:
        self.next[partner] = self.next.get(partner, 0) + 1
        return self.next[partner]


def _trips(
    rng: random.Random, subjects: list[str], count: int, first_day: datetime
) -> list[dict[str, object]]:
    """Trips in one week; about 30% are reported by two or three partners."""
    number, events = _Numbering(), []
    for _ in range(count):
        start = first_day + timedelta(days=rng.randint(0, 6), minutes=rng.randint(0, 16 * 60))
        roll = rng.random()
        region = (
            rng.choice(OUTSIDE_SHENZHEN)
            if roll < 0.03
            else rng.choice(WUHAN_DISTRICTS)
            if roll < 0.10
            else rng.choice(SHENZHEN_DISTRICTS)
        )
        behaviour = "travel.bus" if rng.random() < 0.15 else "travel.metro"
        trip = (start, rng.randint(6, 75), Decimal(rng.randint(10, 400)) / 10, region)
        reporters = 1 if rng.random() < 0.7 else rng.choice((2, 3))
        partners = rng.sample(
            METRO_PARTNERS if behaviour == "travel.metro" else METRO_PARTNERS[1:],
            min(reporters, 3 if behaviour == "travel.metro" else 2),
        )
        subject = rng.choice(subjects)
        for partner in partners:
            events.append(trip_event(rng, partner, number(partner), subject, trip, behaviour))
    return events


def _steps(rng: random.Random, subjects: list[str], first_day: datetime) -> list[dict[str, object]]:
    """Daily step counts of Wuhan walkers, from 汉口银行 (whose figure credits only its own
    events): some above its 200 g (10,000 step) daily cap."""
    events = []
    for i, subject in enumerate(subjects):
        for day in range(7):
            if rng.random() < 0.7:
                steps = rng.randint(2_000, 18_000)
                events.append(
                    steps_event(
                        "hankou-bank",
                        10_000 + i * 7 + day,
                        subject,
                        first_day + timedelta(days=day),
                        steps,
                    )
                )
    return events


FIRST_DAY = datetime(2026, 10, 12, 6, 0, tzinfo=CST)


def week_of_traffic(
    seed: int, subjects: list[str], trips: int, walkers: int = 40
) -> list[dict[str, object]]:
    """Valid partner events of one week: trips (about 30% reported by two or three
    partners, each with its own view of times and distance) and daily step counts."""
    rng = random.Random(seed)
    return _trips(rng, subjects, trips, FIRST_DAY) + _steps(rng, subjects[:walkers], FIRST_DAY)


CUSTOMERS = slice(300, 305)  # which of the sample's people are 中信's customers


def sample_subjects(people: int = 400) -> list[str]:
    return [subject_of(f"+86138{i:08d}") for i in range(people)]


# The head of the sample's family: 中信's first customer, who linked the second.
FAMILY_HEAD = sample_subjects()[CUSTOMERS][0]


def generate(
    seed: int = 2026, people: int = 400, trips: int = 2200, replays: int = 150
) -> list[str]:
    """The bundled sample: a week of traffic plus replays and malformed records, shuffled."""
    rng = random.Random(seed)
    subjects = sample_subjects(people)
    events = week_of_traffic(seed, subjects, trips) + scheme_week(rng, subjects, FIRST_DAY)
    consenting, last = _consenting_customers(rng, subjects, FIRST_DAY)
    events += consenting
    lines = [dumps(e) for e in events]
    valid = len(lines)
    ticketed = next(e for e in events if e["source"] == "shenzhen-metro")
    lines += [dumps(e) for e in _broken_variants(ticketed)]
    lines += [rng.choice(lines[:valid]) for _ in range(replays)]
    rng.shuffle(lines)
    # Consent records that arrive after the behaviours they decide: a late grant and a
    # late withdrawal. Malformed lines that are not JSON are kept apart so they still
    # route to a partner.
    return lines + [dumps(e) for e in last] + MALFORMED


HANGZHOU, SHANGHAI, TAIYUAN = "330106", "310104", "140105"
# A unit (an organisation) is named by the HMAC of its unified social credit code.
DEMO_UNIT = subject_of("91310104MA1FL0000X")


def _dated(
    partner: str, n: int, behaviour: str, subject: str, at: datetime, **data: object
) -> dict[str, object]:
    return _envelope(partner, n, behaviour, subject, at, {"region": TAIYUAN, **data})


def _offline_payments(
    rng: random.Random, subjects: list[str], first_day: datetime
) -> list[dict[str, object]]:
    """Ant Forest's offline payments in Hangzhou (5 g each, from 1 yuan, at most 10 a
    day): one shopper pays 12 times on one day, and one payment is below 1 yuan."""
    events = []
    for n in range(1, 41):
        shopper = subjects[0] if n <= 12 else rng.choice(subjects[1:60])
        at = first_day + timedelta(days=0 if n <= 12 else rng.randint(0, 6), minutes=20 * n)
        amount = Decimal("0.50") if n == 40 else Decimal(rng.randint(100, 30000)) / 100
        data = {"region": HANGZHOU, "transaction_id": f"alipay-{n:05d}", "amount_cny": amount}
        events.append(_envelope("ant-forest", n, "payment.offline_mobile", shopper, at, data))
    return events


def _charging(
    rng: random.Random, subjects: list[str], first_day: datetime
) -> list[dict[str, object]]:
    """浦发's EV charging in Shanghai (1094 g per yuan): people's, and a company fleet's
    (a unit subject, reported apart from people in every total)."""
    events = []
    for n in range(1, 13):
        ended = first_day + timedelta(days=n % 7, hours=n)
        data = {
            "region": SHANGHAI,
            "started_at": (ended - timedelta(minutes=50)).isoformat(),
            "ended_at": ended.isoformat(),
            "amount_cny": Decimal(rng.randint(1000, 8000)) / 100,
        }
        event = _envelope(
            "spdb", n, "ev.charge", subjects[100 + n] if n > 4 else DEMO_UNIT, ended, data
        )
        if n <= 4:
            event["subjectkind"] = "unit"
        events.append(event)
    return events


def _green_life(subjects: list[str], first_day: datetime) -> list[dict[str, object]]:
    """A province's green-life app (三晋绿色生活-like): behaviours no shipped methodology
    credits yet (an operator publishes one), sign-ins and quizzes (points only), and one
    recycling batch and one clothes batch reported by two people through two partners
    (global keys: one activity whoever reports it)."""
    day = first_day.date().isoformat()
    at = first_day + timedelta(hours=6)
    events = [
        _dated("green-life", n, "food.clean_plate", subjects[200 + n], at, date=day, meal="lunch")
        for n in range(1, 6)
    ]
    events += [
        _dated("green-life", 10 + n, "engage.sign_in", subjects[200 + n], at, date=day)
        for n in range(1, 6)
    ]
    events.append(
        _dated(
            "green-life", 20, "engage.quiz", subjects[201], at, quiz_id="quiz-2026-41", correct=True
        )
    )
    batch = {"batch_id": "TY-2026-10-0001", "material": "paper", "kg": Decimal("12.5")}
    events.append(_dated("recycle-station", 1, "recycle.item", subjects[210], at, **batch))
    events.append(_dated("smart-bins", 1, "recycle.item", subjects[211], at, **batch))
    clothes = {"batch_id": "TY-CL-0001", "kg": Decimal("8")}
    events.append(_dated("green-life", 30, "goods.clothes_donation", subjects[212], at, **clothes))
    events.append(
        _dated("recycle-station", 2, "goods.clothes_donation", subjects[213], at, **clothes)
    )
    return events


CONSENTING = "citic-bank"  # consent_required in deploy/partners.yaml
_CONSENT_DATA = {"region": SHENZHEN_DISTRICTS[0], "scope": "carbon_account"}


def _consent(n: int, granted: bool, subject: str, at: datetime) -> dict[str, object]:
    kind = "consent.granted" if granted else "consent.withdrawn"
    data: dict[str, object] = {**_CONSENT_DATA, "evidence_id": f"citic-auth-{n:04d}"}
    return _envelope(CONSENTING, 9000 + n, kind, subject, at, data)


def _family(
    n: int, linked: bool, reporter: str, head: str, member: str, at: datetime
) -> dict[str, object]:
    kind = "family.linked" if linked else "family.unlinked"
    data: dict[str, object] = {"region": SHENZHEN_DISTRICTS[0], "head": head, "member": member}
    return _envelope(CONSENTING, 9500 + n, kind, reporter, at, data)


def _consenting_customers(
    rng: random.Random, subjects: list[str], first_day: datetime
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """中信碳账户's bus rides in Shenzhen, credited only with each customer's consent
    (in force at the ride's end), and two customers' family link. Customers: 0 granted
    before riding; 1 granted at the start of the week, but the grant arrives after
    the rides (a late grant: credited when it comes); 2 withdrew mid-week, the
    withdrawal arriving last (a late withdrawal: the later rides are reversed);
    3 never consented (the same rides reported by green-bank, which needs no consent,
    are credited from there); 4 granted on the third day (not retroactive).

    Returns (records in any order, records to send last)."""
    customers = subjects[CUSTOMERS]
    start = first_day.replace(hour=0)
    events: list[dict[str, object]] = []
    for i, customer in enumerate(customers):
        for day in range(7):
            for ride in range(2):
                begun = first_day + timedelta(days=day, hours=2 + 9 * ride, minutes=7 * i)
                trip = (begun, rng.randint(10, 40), Decimal(rng.randint(20, 120)) / 10, "440304")
                n = 8000 + i * 100 + day * 2 + ride
                events.append(trip_event(rng, CONSENTING, n, customer, trip, "travel.bus"))
                if i == 3:  # also reported by a bank that needs no consent: credited there
                    events.append(trip_event(rng, "green-bank", n, customer, trip, "travel.bus"))
    events += [
        _consent(0, True, customers[0], start),
        _consent(2, True, customers[2], start),
        _consent(4, True, customers[4], start + timedelta(days=2)),
        _family(0, True, customers[0], customers[0], customers[1], start + timedelta(days=1)),
        _family(1, True, customers[1], customers[0], customers[1], start + timedelta(days=1)),
    ]
    last = [
        _consent(1, True, customers[1], start),
        _consent(3, False, customers[2], start + timedelta(days=3, hours=12)),
    ]
    return events, last


def scheme_week(
    rng: random.Random, subjects: list[str], first_day: datetime
) -> list[dict[str, object]]:
    """The rest of a whole scheme's week: partner-scoped figures with caps, a unit,
    uncredited types, engagement events and global-key batches across people."""
    return (
        _offline_payments(rng, subjects, first_day)
        + _charging(rng, subjects, first_day)
        + _green_life(subjects, first_day)
    )


def write_sample(path: Path = SAMPLE_FILE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(generate()) + "\n", encoding="utf-8")
    return path
