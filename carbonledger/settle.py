"""The whole pipeline as one batch over the same domain code as the services.

`settle` is the reference the streaming pipeline must match: the demo and the
end-to-end tests compare the ledger in PostgreSQL against it, account by account.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from carbonledger.contracts.exact import loads_exact
from carbonledger.contracts.partners import PartnerRegistry
from carbonledger.contracts.records import Decision, DecisionKind, Origin, ValidatedBehaviour
from services.dedupe.domain.person import PersonState, observe
from services.ingest.domain.admission import admit
from services.ledger.domain.postings import postings_for
from services.quantify.domain.methodology import Methodology
from services.quantify.domain.quantify import quantify


@dataclass
class Settlement:
    personal: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    enterprise: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    government: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    outcomes: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    postings: int = 0

    def book(self, name: str) -> dict[str, int]:
        return {
            "personal": self.personal,
            "enterprise": self.enterprise,
            "government": self.government,
        }[name]

    def as_json(self) -> dict[str, Any]:
        return {
            "personal": dict(sorted(self.personal.items())),
            "enterprise": dict(sorted(self.enterprise.items())),
            "government": dict(sorted(self.government.items())),
            "duplicates": self.outcomes["duplicate"],
            "rejected": self.outcomes["rejected"],
            "not_credited": self.outcomes["not_credited"],
            "replays": self.outcomes["replay"],
            "credited": self.outcomes["credit"],
            "postings": self.postings,
        }


def envelope_attribute(raw: bytes, name: str) -> str | None:
    """A top-level string attribute of a record, or None (absent, or not a JSON object)."""
    try:
        doc = loads_exact(raw)
    except Exception:
        return None
    value = doc.get(name) if isinstance(doc, dict) else None
    return value if isinstance(value, str) else None


def source_of(raw: bytes) -> str | None:
    """The `source` a record claims, for routing a JSON line to its partner."""
    return envelope_attribute(raw, "source")


def settle(
    records: Iterable[tuple[str | None, bytes]],
    registry: PartnerRegistry,
    methodologies: Sequence[Methodology],
    now: datetime,
) -> Settlement:
    """Admit, quantify, dedupe and post a batch of (authenticated partner, raw record)."""
    result = Settlement()
    people: dict[str, PersonState] = {}
    decisions: dict[UUID, Decision] = {}
    for offset, (partner_id, raw) in enumerate(records):
        origin = Origin(topic="batch", partition=0, offset=offset)
        outcome = admit(raw, None, partner_id=partner_id, registry=registry, origin=origin, now=now)
        if not isinstance(outcome, ValidatedBehaviour):
            result.outcomes["rejected"] += 1
            result.rejections[outcome.reason] += 1
            continue
        claim = quantify(outcome, methodologies)
        state = people.setdefault(claim.subject, PersonState(claim.subject))
        changed, made = observe(state, claim)
        if not changed:
            result.outcomes["replay"] += 1
        for d in made:
            decisions.setdefault(d.decision_id, d)
    for d in decisions.values():
        result.outcomes[d.kind.value] += 1
        if d.kind in (DecisionKind.CREDIT, DecisionKind.REVERSE):
            for p in postings_for(d):
                result.book(p.book.value)[p.account] += p.amount_mg
                result.postings += 1
    return result
