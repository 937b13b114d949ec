"""A simulated city's partner traffic for the benchmark: deterministic for a seed.

People make activities now (metro, bus and bike trips in Shenzhen, daily steps and
online utility payments in Wuhan reported by Hankou Bank or Ant Forest, EV charging
in Shanghai reported by SPD Bank: types and partners the shipped methodologies
credit). About 30% of activities are reported by two or three of
the partners allowed to report them, each with its own slightly earlier view of
the times and distance, as the partners in docs/domain.md do. Some records are sent
again byte for byte (replays), some activities ended hours before they are sent
(late arrivals) and a few records are broken (dead letters).

A person's trips never overlap each other unless they are the same trip reported
twice: overlapping trips of one person are, by the dedupe rules, one trip.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from carbonledger.contracts.calendar import CST
from carbonledger.contracts.catalogue import CATALOGUE
from carbonledger.demo.sample import (
    CONSENTING,
    SHENZHEN_DISTRICTS,
    WUHAN_DISTRICTS,
    dumps,
    subject_of,
)

Record = tuple[str, bytes]
SHANGHAI_DISTRICTS = ("310104", "310112", "310115")
HANGZHOU_DISTRICTS = ("330106", "330108")
TAIYUAN_DISTRICTS = ("140105", "140106")
REPLAY_POOL = 5_000


@dataclass(frozen=True)
class Kind:
    """One kind of activity: its type, who may report it (strongest evidence first),
    where it happens, and its share of all activities."""

    behaviour: str
    partners: tuple[str, ...]
    regions: tuple[str, ...]
    share: float


MIX = (
    Kind("travel.metro", ("shenzhen-metro", "navi-maps", "green-bank"), SHENZHEN_DISTRICTS, 0.34),
    Kind("travel.bus", ("navi-maps", "green-bank", CONSENTING), SHENZHEN_DISTRICTS, 0.15),
    Kind("travel.bike_share", ("city-bikes", "navi-maps", CONSENTING), SHENZHEN_DISTRICTS, 0.17),
    # The banks' and Ant Forest's figures credit only their own events (partner scope).
    Kind("steps.daily", ("hankou-bank",), WUHAN_DISTRICTS, 0.15),
    Kind("payment.utility_online", ("hankou-bank", "ant-forest"), WUHAN_DISTRICTS, 0.08),
    Kind("ev.charge", ("spdb",), SHANGHAI_DISTRICTS, 0.05),
    # The rest of a whole scheme: Ant Forest's capped payments, recycling batches (a
    # global key: a second reporter is another person) and sign-ins (points only).
    Kind("payment.offline_mobile", ("ant-forest",), HANGZHOU_DISTRICTS, 0.03),
    Kind("recycle.item", ("recycle-station", "smart-bins"), TAIYUAN_DISTRICTS, 0.01),
    Kind("engage.sign_in", ("green-life",), TAIYUAN_DISTRICTS, 0.02),
)
TIMED = {"travel.metro", "travel.bus", "travel.bike_share", "ev.charge"}
# Reported, never in the books: no shipped methodology credits recycling, and
# engagement events earn points only.
UNCREDITED = {"recycle.item", "engage.sign_in"}
EACH_ITS_OWN = {"payment.utility_online", "payment.offline_mobile", "recycle.item"}
SPACING_CLASS = {"steps.daily": "steps", "ev.charge": "charge"}
TRIP_GAP = timedelta(minutes=90)  # longer than any trip or charge, drift included


@dataclass(frozen=True)
class CityProfile:
    people: int = 100_000
    seed: int = 2026
    duplicate_share: float = 0.30  # activities reported by two or three partners
    replay_share: float = 0.02  # records sent again, byte for byte
    late_share: float = 0.01  # activities that ended 1 to 48 hours before they are sent
    malformed_share: float = 0.002  # broken records: dead letters
    consentless_share: float = 0.1  # CITIC customers who never gave their consent
    tag: str = "bench"  # in subjects' numbers and event ids, so runs never collide


@dataclass
class Counts:
    activities: int = 0
    records: int = 0
    duplicates: int = 0  # extra reports of an activity already reported
    uncredited: int = 0  # activities of the UNCREDITED types
    uncredited_reports: int = 0  # their extra reports
    replays: int = 0
    late: int = 0
    malformed: int = 0
    consents: int = 0  # consent.granted records (CITIC Bank's customers)
    consentless: int = 0  # CITIC customers without one
    consentless_reports: int = 0  # CITIC's reports of them: not credited (no_consent)
    consentless_only: int = 0  # activities no one else reported: not credited at all
    by_behaviour_type: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {**vars(self), "by_behaviour_type": dict(sorted(self.by_behaviour_type.items()))}


def reporting_partners() -> tuple[str, ...]:
    """Every partner the city's traffic comes from, in the mix's order."""
    return tuple(dict.fromkeys(p for kind in MIX for p in kind.partners))


class CityTraffic:
    def __init__(self, profile: CityProfile) -> None:
        self.profile = profile
        self.rng = random.Random(profile.seed)
        self.counts = Counts()
        self.numbers: Counter[str] = Counter()
        # (person, class) -> the earliest and latest end of their activities so far
        self.spans: dict[tuple[int, str], tuple[datetime, datetime]] = {}
        self.sent: list[Record] = []
        self._subjects: dict[int, str] = {}
        self.consented: dict[int, bool] = {}  # CITIC customer -> whether they consented
        self._weights = [k.share for k in MIX]

    def batch(self, activities: int, now: datetime) -> list[Record]:
        """The records of the next `activities` activities, happening at `now` (late
        ones earlier), shuffled as partners' deliveries interleave."""
        records: list[Record] = []
        for _ in range(activities):
            records += self._activity(now)
            if self.rng.random() < self.profile.replay_share and self.sent:
                records.append(self.rng.choice(self.sent))
                self.counts.replays += 1
            if self._malformed_due():
                records.append(self._malformed())
        self.rng.shuffle(records)
        self.counts.records += len(records)
        self._remember(records)
        return records

    # --- one activity ------------------------------------------------------------

    def _activity(self, now: datetime) -> list[Record]:
        kind = self.rng.choices(MIX, self._weights)[0]
        late = self.rng.random() < self.profile.late_share
        wanted = now - timedelta(minutes=3)
        if late:
            wanted = now - timedelta(minutes=self.rng.randint(60, 48 * 60))
        person = self.rng.randrange(self.profile.people)
        ended = self._place(person, kind.behaviour, wanted)
        reporters = 1
        if len(kind.partners) > 1 and self.rng.random() < self.profile.duplicate_share:
            reporters = self.rng.randint(2, min(3, len(kind.partners)))
        partners = self.rng.sample(kind.partners, reporters)
        region = self.rng.choice(kind.regions)
        shape = self._shape(kind.behaviour, ended)
        self.counts.activities += 1
        self.counts.late += late
        self.counts.duplicates += reporters - 1
        if kind.behaviour in UNCREDITED:
            self.counts.uncredited += 1
            self.counts.uncredited_reports += reporters - 1
        self.counts.by_behaviour_type[kind.behaviour] += 1
        reports = [
            self._report(
                partner, kind.behaviour, self._reporter(kind, person, i), region, shape, i == 0
            )
            for i, partner in enumerate(partners)
        ]
        if CONSENTING in partners:
            reports += self._consent(person, region, ended)
            if not self.consented[person]:
                self.counts.consentless_reports += 1
                self.counts.consentless_only += reporters == 1
        return reports

    def _consent(self, person: int, region: str, ended: datetime) -> list[Record]:
        """A CITIC customer's consent, the first time CITIC reports them: granted a day
        before that trip (in the same delivery, so it may arrive after the trip, which
        is then credited when it comes), or never."""
        if person in self.consented:
            return []
        granted = self.rng.random() >= self.profile.consentless_share
        self.consented[person] = granted
        if not granted:
            self.counts.consentless += 1
            return []
        self.counts.consents += 1
        data: dict[str, object] = {
            "region": region,
            "scope": "carbon_account",
            "evidence_id": f"{self.profile.tag}-auth-{person}",
        }
        at = ended - timedelta(days=1)
        return [(CONSENTING, self._envelope(CONSENTING, "consent.granted", person, at, data))]

    def _reporter(self, kind: Kind, person: int, i: int) -> int:
        """Who reports: the person, except that a global-key batch's second reporter is
        someone else (two people claiming one batch)."""
        if i and CATALOGUE[kind.behaviour].global_key:
            return (person + i * 7919) % self.profile.people
        return person

    def _place(self, person: int, behaviour: str, wanted: datetime) -> datetime:
        """When this person's activity ended: as wanted, unless it would overlap one of
        their others of its class; then just before the earliest of those. A benchmark
        compresses a city's day into minutes, so busy people's activities go back in
        time (within the dedupe window) rather than overlap."""
        if behaviour in EACH_ITS_OWN:
            return wanted  # each bill, payment or batch is its own activity
        key = (person, SPACING_CLASS.get(behaviour, "trip"))
        span = self.spans.get(key)
        gap = timedelta(days=1) if behaviour == "steps.daily" else TRIP_GAP
        if span is None:
            self.spans[key] = (wanted, wanted)
            return wanted
        lowest, highest = span
        if wanted >= highest + gap:
            self.spans[key] = (lowest, wanted)
            return wanted
        ended = min(wanted, lowest - gap)
        self.spans[key] = (ended, highest)
        return ended

    def _shape(self, behaviour: str, ended: datetime) -> dict[str, Any]:
        """What all reporters of one activity agree on, before each one's own drift."""
        minutes = self.rng.randint(6, 75) if behaviour in TIMED else 0
        return {
            "ended": ended,
            "minutes": minutes,
            "km": Decimal(self.rng.randint(10, 300)) / 10,
            "steps": self.rng.randint(3_000, 16_000),
            "bill": f"{self.profile.tag}-bill-{self.counts.activities}",
            "kwh": Decimal(self.rng.randint(50, 600)) / 10,
            "cny": Decimal(self.rng.randint(100, 20000)) / 100,
            "kg": Decimal(self.rng.randint(5, 400)) / 10,
        }

    def _report(
        self,
        partner: str,
        behaviour: str,
        person: int,
        region: str,
        shape: dict[str, Any],
        first: bool,
    ) -> Record:
        """One partner's report; a second or third reporter's clock and distance drift."""
        drift = timedelta(minutes=0 if first else self.rng.randint(0, 2))
        ended: datetime = shape["ended"] - drift
        data: dict[str, object] = {"region": region}
        if behaviour in TIMED:
            started = shape["ended"] - timedelta(minutes=shape["minutes"]) - drift
            data |= {"started_at": started.isoformat(), "ended_at": ended.isoformat()}
        if behaviour.startswith("travel."):
            wobble = Decimal(0 if first else self.rng.randint(-3, 3)) / 10
            data["distance_km"] = max(shape["km"] + wobble, Decimal("0.5"))
        if behaviour == "travel.bus":
            data["electric"] = True
        elif behaviour == "steps.daily":
            data |= {"date": _walked_day(shape["ended"]), "steps": shape["steps"]}
        elif behaviour == "payment.utility_online":
            data |= {"bill_id": shape["bill"], "utility": "power"}
        elif behaviour == "ev.charge":
            data |= {"kwh": shape["kwh"], "amount_cny": shape["kwh"]}
        elif behaviour == "payment.offline_mobile":
            data |= {"transaction_id": shape["bill"], "amount_cny": shape["cny"]}
        elif behaviour == "recycle.item":
            data |= {"batch_id": shape["bill"], "material": "paper", "kg": shape["kg"]}
        elif behaviour == "engage.sign_in":
            data["date"] = ended.astimezone(CST).date().isoformat()
        return partner, self._envelope(partner, behaviour, person, ended, data)

    def _envelope(
        self, partner: str, behaviour: str, person: int, ended: datetime, data: dict[str, object]
    ) -> bytes:
        self.numbers[partner] += 1
        event: dict[str, object] = {
            "specversion": "1.0",
            "id": f"{self.profile.tag}-{partner}-{self.numbers[partner]}",
            "source": partner,
            "type": behaviour,
            "time": ended.isoformat(),
            "subject": self._subject(person),
            "datacontenttype": "application/json",
            "data": data,
        }
        return dumps(event).encode()

    def _subject(self, person: int) -> str:
        found = self._subjects.get(person)
        if found is None:
            found = self._subjects[person] = subject_of(f"+86-{self.profile.tag}-{person}")
        return found

    # --- replays and broken records ------------------------------------------------

    def _malformed_due(self) -> bool:
        """Every 1/share-th activity is followed by a broken record: at a fixed rate
        rather than by chance, so a short run has its dead letters too."""
        share = self.profile.malformed_share
        return share > 0 and self.counts.activities % max(1, round(1 / share)) == 0

    def _malformed(self) -> Record:
        """Not JSON, cut short, or a trip with a negative distance."""
        self.counts.malformed += 1
        partner = self.rng.choice(("navi-maps", "green-bank"))
        choice = self.rng.randrange(3)
        if choice == 0:
            return partner, b"this is not json"
        if choice == 1:
            return partner, b'{"specversion": "1.0", "id": "truncated'
        ended = datetime(2026, 11, 1, 8, tzinfo=CST)
        data: dict[str, object] = {
            "region": SHENZHEN_DISTRICTS[0],
            "started_at": (ended - timedelta(minutes=20)).isoformat(),
            "ended_at": ended.isoformat(),
            "distance_km": Decimal("-3.2"),
        }
        return partner, self._envelope(partner, "travel.bus", 0, ended, data)

    def _remember(self, records: list[Record]) -> None:
        """A bounded pool of recent records to replay from."""
        self.sent.extend(records)
        if len(self.sent) > 2 * REPLAY_POOL:
            del self.sent[:-REPLAY_POOL]


def _walked_day(sent: datetime) -> str:
    """Step counts are reported for a whole day: the day before the one sent on (CST)."""
    return (sent.astimezone(CST).date() - timedelta(days=1)).isoformat()
