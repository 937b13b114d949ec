"""The whole pipeline as one batch over the same use cases as the stream stages.

`settle` is the reference the streaming pipeline must match: the demo and the
end-to-end tests compare the ledger in PostgreSQL against it, account by account.
Its books do not depend on the order of the input; `postings` counts the entries
made in this order, reversals included (the stream's order may need fewer or more).

Claims meet in dedupe groups as in the stream (a global natural key's claims in one
group, whoever reported them). Units' accounts are in the personal book like
people's and reported apart (`units`); engagement events are counted apart and
never touch a book. Consent records decide, as in the stream, which behaviours of a
partner that needs consent are credited: `consent_records` says how many there were,
`no_consent` how many claims were not credited for lack of one.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from carbonledger.contracts.catalogue import CONSENT_GRANTED, CONSENT_WITHDRAWN
from carbonledger.contracts.methodology import Methodology
from carbonledger.contracts.partners import PartnerRegistry
from carbonledger.contracts.records import (
    AccountEvent,
    Book,
    Decision,
    Engagement,
    ReductionClaim,
    SubjectKind,
    ValidatedBehaviour,
)
from carbonledger.services.dedupe.adapters.memory import MemoryState
from carbonledger.services.dedupe.domain.consent import refusals
from carbonledger.services.dedupe.domain.person import DEFAULT_WINDOW, PersonState
from carbonledger.services.dedupe.domain.resolve import Status, Why
from carbonledger.services.dedupe.service import (
    Dedupe,
    behaviour_clock,
    is_account,
    is_engagement,
    moves_watermark,
)
from carbonledger.services.ingest.service import PartnerRecord, admit_records
from carbonledger.services.ledger.domain.postings import postings_for
from carbonledger.services.quantify.service import quantify_behaviour


@dataclass
class Settlement:
    personal: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    enterprise: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    government: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    units: set[str] = field(default_factory=set)  # personal accounts that are units'
    engagements: Counter[str] = field(default_factory=Counter)  # records, by type
    account_events: Counter[str] = field(default_factory=Counter)  # consent, family: by type
    outcomes: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    postings: int = 0

    def book(self, name: str) -> dict[str, int]:
        return {
            "personal": self.personal,
            "enterprise": self.enterprise,
            "government": self.government,
        }[name]

    @property
    def consent_records(self) -> int:
        """Consent records taken in (grants and withdrawals, each once)."""
        return self.account_events[CONSENT_GRANTED] + self.account_events[CONSENT_WITHDRAWN]

    def personal_by_kind(self) -> dict[str, int]:
        """The personal book's total split into people's and units' accounts."""
        units = sum(v for a, v in self.personal.items() if a in self.units)
        return {"person": sum(self.personal.values()) - units, "unit": units}

    def as_json(self) -> dict[str, Any]:
        return {
            "personal": dict(sorted(self.personal.items())),
            "personal_by_kind": self.personal_by_kind(),
            "unit_accounts": sorted(self.units),
            "enterprise": dict(sorted(self.enterprise.items())),
            "government": dict(sorted(self.government.items())),
            "duplicates": self.outcomes[Status.DUPLICATE],
            "rejected": self.outcomes["rejected"],
            "late": self.outcomes["late"],
            "not_credited": self.outcomes[Status.NOT_CREDITED],
            "capped": self.outcomes["cap_applied"],
            "capped_to_zero": self.outcomes[Status.CAPPED],
            "replays": self.outcomes["replay"],
            "credited": self.outcomes[Status.CREDITED],
            "no_consent": self.outcomes[Why.NO_CONSENT],
            "consent_records": self.consent_records,
            "postings": self.postings,
            "engagements": dict(sorted(self.engagements.items())),
            "account_events": dict(sorted(self.account_events.items())),
        }


def settle(
    records: Iterable[tuple[str | None, bytes]],
    registry: PartnerRegistry,
    methodologies: Sequence[Methodology],
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
) -> Settlement:
    """Admit, quantify, dedupe, cap and post a batch of (authenticated partner, raw record).

    The stages' own use cases run here, with dedupe's state in memory and the batch
    as one partition. The dedupe window is measured against the newest behaviour in
    the batch (docs/dedupe.md): the claims are gathered first and the partition's
    watermark moved to the newest before any is observed.
    """
    result = Settlement()
    claims: list[ReductionClaim] = []
    arrivals = (
        PartnerRecord(partner_id, None, raw, "batch", 0, offset)
        for offset, (partner_id, raw) in enumerate(records)
    )
    for outcome in admit_records(arrivals, registry, now=now):
        if isinstance(outcome, ValidatedBehaviour):
            claims.append(quantify_behaviour(outcome, methodologies))
        else:
            result.outcomes["rejected"] += 1
            result.rejections[outcome.reason] += 1
    if not claims:
        return result
    people = MemoryState()
    dedupe = Dedupe(people, window, Outcomes(result))
    behaviours = [behaviour_clock(c) for c in claims if moves_watermark(c)]
    if behaviours:
        dedupe.advance(0, max(behaviours))
    posted: set[UUID] = set()  # as the ledger does: a re-emitted decision posts nothing
    engaged: dict[UUID, str] = {}  # as a subscriber does: idempotent by engagement id
    accounted: dict[UUID, str] = {}  # as the ledger does: idempotent by account event id
    for claim in claims:
        observed = dedupe.observe(0, claim)
        for decision in observed.decisions:
            if decision.decision_id not in posted:
                posted.add(decision.decision_id)
                _post(result, decision)
        engaged.update((e.engagement_id, e.type) for e in observed.engagements)
        accounted.update((a.account_event_id, a.type) for a in observed.accounts)
    result.engagements.update(engaged.values())
    result.account_events.update(accounted.values())
    for state in people.people():
        _count_outcomes(result, state)
    return result


def _count_outcomes(result: Settlement, state: PersonState) -> None:
    """Each claim's standing, and of the not credited those for lack of consent."""
    refused = refusals(state.claims.values())
    for key, position in state.positions.items():
        if is_engagement(state.claims[key]) or is_account(state.claims[key]):
            continue  # counted apart, in `engagements` and `account_events`
        result.outcomes[position.status.value] += 1
        result.outcomes["cap_applied"] += position.capped
        result.outcomes[Why.NO_CONSENT] += key in refused


class Outcomes:
    """Dedupe's Tally for a settlement: replays and late claims, in its outcomes."""

    def __init__(self, result: Settlement) -> None:
        self.result = result

    def claim(self, outcome: str) -> None:
        if outcome == "replay":
            self.result.outcomes["replay"] += 1
        elif outcome == "late":
            self.result.outcomes["late"] += 1
            self.result.outcomes["rejected"] += 1
            self.result.rejections[Why.LATE.value] += 1

    # What the stream counts for its operators says nothing about the books.
    def decision(self, decision: Decision) -> None:
        pass

    def engagement(self, record: Engagement) -> None:
        pass  # counted once per id by `settle`: a replay re-emits the same record

    def account(self, record: AccountEvent) -> None:
        pass  # counted once per id by `settle`, as engagement records are

    def stored(self, state_bytes: int) -> None:
        pass

    def pruned(self, claims: int) -> None:
        pass

    def expired(self, people: int) -> None:
        pass

    def watermark(self, partition: int, mark: datetime) -> None:
        pass


def _post(result: Settlement, decision: Decision) -> None:
    for p in postings_for(decision):
        result.book(p.book.value)[p.account] += p.content.amount_mg
        result.postings += 1
        if p.book is Book.PERSONAL and p.content.subject_kind is SubjectKind.UNIT:
            result.units.add(p.account)
