"""Builders of partner events and records for tests (no I/O)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from carbonledger.contracts import ids
from carbonledger.contracts.calendar import CST
from carbonledger.contracts.catalogue import CATALOGUE
from carbonledger.contracts.partners import PartnerRegistry, parse_registry
from carbonledger.contracts.records import (
    CapUse,
    Decision,
    DecisionKind,
    EventRef,
    MethodologyRef,
    Origin,
    ReductionClaim,
    ValidatedBehaviour,
)
from carbonledger.demo.sample import subject_of
from carbonledger.services.ingest.domain.admission import admit

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ORIGIN = Origin(topic="partner.shenzhen-metro.events", partition=0, offset=7)


def registry() -> PartnerRegistry:
    return parse_registry(
        {
            "partners": [
                {
                    "id": "shenzhen-metro",
                    "name": "Metro",
                    "kind": "transit_operator",
                    "behaviours": ["travel.metro"],
                    "evidence_rank": {"trip": 30},
                },
                {
                    "id": "navi-maps",
                    "name": "Maps",
                    "kind": "navigation_app",
                    "behaviours": ["travel.metro", "travel.bus", "steps.daily"],
                    "evidence_rank": {"trip": 20},
                },
                {
                    "id": "closed-app",
                    "name": "Closed",
                    "kind": "bike_share",
                    "behaviours": ["travel.bike_share"],
                    "enabled": False,
                },
                {
                    "id": "every-app",
                    "name": "Everything",
                    "kind": "test",
                    "behaviours": sorted(CATALOGUE),
                },
            ]
        }
    )


def admitted(payload: bytes, partner: str) -> ValidatedBehaviour:
    """A test event through ingest's admission, which it must pass."""
    outcome = admit(payload, None, partner_id=partner, registry=registry(), origin=ORIGIN, now=NOW)
    assert isinstance(outcome, ValidatedBehaviour), outcome
    return outcome


def event(
    behaviour_type: str, region: str, ended: datetime | None = None, minutes: int = 20, **data: Any
) -> dict[str, Any]:
    """A valid event of any type from the test partner that may report everything."""
    end = ended or datetime(2026, 10, 10, 8, 30, tzinfo=CST)
    fields: dict[str, Any] = {"region": region, **data}
    if CATALOGUE[behaviour_type].field("started_at"):
        fields.setdefault("started_at", (end - timedelta(minutes=minutes)).isoformat())
        fields.setdefault("ended_at", end.isoformat())
    return {
        "specversion": "1.0",
        "id": f"{behaviour_type}-{region}-{end.isoformat()}",
        "source": "every-app",
        "type": behaviour_type,
        "time": end.isoformat(),
        "subject": subject_of("+8613900000002"),
        "data": fields,
    }


def metro(hours_later: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid Shenzhen metro event (`hours_later` moves the trip); `data_*` keys override data."""
    ended = datetime(2026, 10, 10, 8, 30, tzinfo=CST) + timedelta(hours=hours_later)
    data: dict[str, Any] = {
        "region": "440305",
        "started_at": (ended - timedelta(minutes=25)).isoformat(),
        "ended_at": ended.isoformat(),
        "distance_km": "10.0",
    }
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": "trip-1",
        "source": "shenzhen-metro",
        "type": "travel.metro",
        "time": ended.isoformat(),
        "subject": subject_of("+8613900000001"),
        "data": data,
    }
    for key, value in overrides.items():
        if key.startswith("data_"):
            name = key[5:]
            if value is None:
                data.pop(name, None)
            else:
                data[name] = value
        else:
            event[key] = value
    return event


NUMBER = "#number"


def raw(event: dict[str, Any], number_text: str | None = None) -> bytes:
    """JSON bytes; a field set to NUMBER is written as the bare JSON number `number_text`."""
    text = json.dumps(event)
    if number_text is not None:
        text = text.replace(json.dumps(NUMBER), number_text)
    return text.encode()


def claim(
    source: str,
    event_id: str,
    start_minute: int,
    minutes: int = 30,
    *,
    mg: int = 1_000,
    rank: int = 0,
    subject: str = "a" * 64,
    activity_class: str = "trip",
    behaviour_type: str = "travel.metro",
    natural_key: str | None = None,
    caps: tuple[CapUse, ...] = (),
    credited: bool = True,
    day: int = 10,
) -> ReductionClaim:
    """A reduction claim built directly, for dedupe rules (times are minutes into a day)."""
    start = datetime(2026, 10, day, 0, 0, tzinfo=CST) + timedelta(minutes=start_minute)
    end = start + timedelta(minutes=minutes)
    event = ids.event_id(source, event_id)
    return ReductionClaim(
        claim_id=ids.claim_id(event, "m", "1"),
        event_id=event,
        event=EventRef(source=source, id=event_id),
        type=behaviour_type,
        activity_class=activity_class,
        subject=subject,
        time=end,
        region="440305",
        started_at=start,
        ended_at=end,
        natural_key=natural_key,
        evidence_rank=rank,
        credited=credited,
        reduction_mg=mg if credited else 0,
        reason=None if credited else "no_applicable_methodology",
        methodology=MethodologyRef(id="m", version="1") if credited else None,
        caps=caps,
    )


def reversal(d: Decision) -> Decision:
    """The reversal of a decision, as dedupe would make it (its own deterministic id)."""
    return d.model_copy(
        update={
            "decision_id": uuid.uuid5(d.decision_id, "test-reversal"),
            "kind": DecisionKind.REVERSE,
            "amount_mg": -d.amount_mg,
            "reverses": d.decision_id,
        }
    )
