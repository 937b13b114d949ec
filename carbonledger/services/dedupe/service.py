"""Dedupe's use case: a claim, observed against its group's state, in its partition.

Claims are keyed by dedupe group (contracts/groups.py: the subject, or a global
natural key's group), so all claims of one person, or of one recycling batch
whoever reports it, arrive in one partition and meet in one state entry. Each
partition keeps its own watermark (the newest behaviour end it has seen,
docs/dedupe.md), its expiry listing and its people in its own state, so they move
together on a rebalance. The use case knows the state only through `StateStore`:
the stream's is a changelog-backed mapping of bytes in the batch's state
transaction (adapters/state.py), the batch reference's lives in memory
(adapters/memory.py).
No Kafka here; what it counts goes to a `Tally`.

Engagement events (`engage.*`) are observed like any claim (a replay of one is
recognised by its `(source, id)`), but what comes of them is an `Engagement`
record for incentive systems instead of decisions: they never reach the books.
Consent records are kept in their subject's state, where they decide which of the
subject's behaviours are credited (domain/consent.py); family links decide nothing
here, so they are passed on as account events without touching any state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from carbonledger.contracts.calendar import CST
from carbonledger.contracts.catalogue import is_account_type, is_consent_type, is_engagement_type
from carbonledger.contracts.groups import dedupe_group
from carbonledger.contracts.records import AccountEvent, Decision, Engagement, ReductionClaim
from carbonledger.services.dedupe.domain.expiry import days_to_sweep, expires_on
from carbonledger.services.dedupe.domain.person import Observation, PersonState, observe, prune


class PartitionState(Protocol):
    """The dedupe state of one claims partition."""

    def watermark(self) -> datetime | None: ...

    def keep_watermark(self, mark: datetime) -> None: ...

    def person(self, subject: str) -> PersonState | None: ...

    def keep_person(self, state: PersonState) -> int | None:
        """Store the person's state; the size it takes, if the store encodes it."""
        ...

    def forget_person(self, subject: str) -> None: ...

    def swept_until(self) -> date | None: ...

    def keep_swept_until(self, day: date) -> None: ...

    def list_for_expiry(self, day: date, subject: str) -> None: ...

    def take_expiring(self, day: date) -> list[str]:
        """The people listed under a day, the listing removed."""
        ...


class StateStore(Protocol):
    def partition(self, number: int) -> PartitionState: ...


class Tally(Protocol):
    """What dedupe counts as it goes (the stream's are its Prometheus metrics)."""

    def claim(self, outcome: str) -> None:
        """One claim taken: "new", "replay", "late", or "account" (a family link,
        passed on without state)."""
        ...

    def decision(self, decision: Decision) -> None: ...

    def engagement(self, record: Engagement) -> None: ...

    def account(self, record: AccountEvent) -> None: ...

    def stored(self, state_bytes: int) -> None: ...

    def pruned(self, claims: int) -> None: ...

    def expired(self, people: int) -> None: ...

    def watermark(self, partition: int, mark: datetime) -> None: ...


def behaviour_clock(claim: ReductionClaim) -> datetime:
    """How far a claim moves its partition's watermark: its behaviour's end, but never
    past its `time` (which ingest holds to the present). A dated act (a sign-in at
    09:00) counts on its whole day, ending at 23:59:59.999999; moving the watermark
    there would make other people's claims late up to 15 hours early."""
    return min(claim.ended_at, claim.time)


def moves_watermark(claim: ReductionClaim) -> bool:
    """Whether the claim is a behaviour, whose end moves its partition's watermark
    (account events, consent and family links, are not)."""
    return not is_account_type(claim.type)


def outcome_of(seen: Observation) -> str:
    return "late" if seen.late else "new" if seen.new else "replay"


def is_engagement(claim: ReductionClaim) -> bool:
    return is_engagement_type(claim.type)


def is_account(claim: ReductionClaim) -> bool:
    return is_account_type(claim.type)


def is_family(claim: ReductionClaim) -> bool:
    """A family link: an account event that decides nothing in dedupe."""
    return is_account(claim) and not is_consent_type(claim.type)


@dataclass(frozen=True)
class Observed:
    """What a claim's arrival makes: its decisions for the ledger, or, for an
    engagement event, its engagement record (none when it came too late); for an
    account event (consent, family link), its account event record."""

    seen: Observation
    decisions: list[Decision]
    engagements: list[Engagement]
    accounts: list[AccountEvent]

    @property
    def new(self) -> bool:
        return self.seen.new

    @property
    def late(self) -> bool:
        return self.seen.late


def split(seen: Observation) -> Observed:
    """The decisions about engagement events become their engagement records, those
    about account events their account event records: one per event (a replay
    re-emits the same record, as it re-emits decisions). An account event is never
    late: a consent or a link holds from its time, however late it is reported."""
    decisions: list[Decision] = []
    engagements: list[Engagement] = []
    accounts: list[AccountEvent] = []
    for decision in seen.decisions:
        claim = decision.claim
        if is_account(claim):
            if all(a.event_id != claim.event_id for a in accounts):
                accounts.append(AccountEvent.of(claim))
        elif not is_engagement(claim):
            decisions.append(decision)
        elif not seen.late and all(e.event_id != claim.event_id for e in engagements):
            engagements.append(Engagement.of(claim))
    return Observed(seen, decisions, engagements, accounts)


class Dedupe:
    """Observe claims partition by partition, as they arrived in each."""

    def __init__(self, store: StateStore, window: timedelta, tally: Tally) -> None:
        self.store, self.window, self.tally = store, window, tally

    def observe(self, partition: int, claim: ReductionClaim) -> Observed:
        """The claim taken into its group's state: its decisions, in order (or its
        engagement record)."""
        if is_family(claim):
            return self._pass_on(claim)
        state = self.store.partition(partition)
        watermark = self._watermark(state, partition, claim)
        self.tally.expired(self._sweep(state, watermark))
        group = dedupe_group(claim)
        person = state.person(group) or PersonState(group)
        expiring = expires_on(person, self.window)
        seen = observe(person, claim, watermark=watermark, window=self.window)
        if seen.new and not seen.late:
            size = state.keep_person(person)
            self._list(state, person, expiring, watermark)
            if size is not None:
                self.tally.stored(size)
        self.tally.pruned(seen.pruned)
        self.tally.claim(outcome_of(seen))
        observed = split(seen)
        for decision in observed.decisions:
            self.tally.decision(decision)
        for record in observed.engagements:
            self.tally.engagement(record)
        for account in observed.accounts:
            self.tally.account(account)
        return observed

    def _pass_on(self, claim: ReductionClaim) -> Observed:
        """A family link's account event, whether first sent or a replay (the same
        record by its id: the ledger keeps it once), keeping nothing in the state."""
        self.tally.claim("account")
        record = AccountEvent.of(claim)
        self.tally.account(record)
        return Observed(Observation(True, False, []), [], [], [record])

    def _watermark(self, state: PartitionState, partition: int, claim: ReductionClaim) -> datetime:
        """The partition's watermark with this claim taken in. A consent record is not
        a behaviour: the time someone gave consent (often just now) must not make
        other people's behaviours late, so it leaves the watermark where it is."""
        if not moves_watermark(claim):
            return state.watermark() or behaviour_clock(claim)
        return self._advance(state, partition, behaviour_clock(claim))

    def advance(self, partition: int, behaviour_end: datetime) -> datetime:
        """Move a partition's watermark to a behaviour end, if newer; the watermark."""
        return self._advance(self.store.partition(partition), partition, behaviour_end)

    def sweep(self, partition: int, watermark: datetime) -> int:
        """Forget the expired people of a partition the watermark has reached; how many."""
        removed = self._sweep(self.store.partition(partition), watermark)
        self.tally.expired(removed)
        return removed

    def _advance(self, state: PartitionState, partition: int, behaviour_end: datetime) -> datetime:
        stored = state.watermark()
        mark = behaviour_end if stored is None else max(behaviour_end, stored)
        # Kept as written last: an equal time in another offset is written again,
        # as the stage always did (a late claim's reason quotes the cutoff's offset).
        # (Another instant is another text: only an equal one needs its text compared.)
        if stored is None or (
            mark is not stored and (mark != stored or mark.isoformat() != stored.isoformat())
        ):
            state.keep_watermark(mark)
        self.tally.watermark(partition, mark)
        return mark

    def _list(
        self, state: PartitionState, person: PersonState, before: date | None, watermark: datetime
    ) -> None:
        """List the person under the day their state may expire, if that day moved.

        A consent record older than the window can put that day in the past, among
        days already swept: it is then listed under the next day to be swept."""
        day = expires_on(person, self.window)
        if day is not None and day != before:
            first_unswept = watermark.astimezone(CST).date() + timedelta(days=1)
            state.list_for_expiry(max(day, first_unswept), person.subject)

    def _sweep(self, state: PartitionState, watermark: datetime) -> int:
        """Prune everyone listed under days the watermark has passed; people removed
        (each day is swept once: when the watermark first enters it)."""
        days = days_to_sweep(watermark, state.swept_until())
        if not days:
            return 0
        cutoff, removed = watermark - self.window, 0
        for day in days:
            for subject in state.take_expiring(day):
                removed += self._expire(state, subject, cutoff)
        state.keep_swept_until(days[-1])
        return removed

    @staticmethod
    def _expire(state: PartitionState, subject: str, cutoff: datetime) -> int:
        person = state.person(subject)
        if person is None or prune(person, cutoff) == 0:
            return 0
        if person.claims:
            state.keep_person(person)
            return 0
        state.forget_person(subject)
        return 1
