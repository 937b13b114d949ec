"""The ledger's use cases: recording a batch of decisions in the books, and relaying
the outbox to the broker.

`Postings` is the writer's sink: the decisions and account events of the batch in
hand, applied with the batch's offsets in one transaction, then the metrics of what
was recorded for the first time. `OutboxRelay` is the publisher's leader loop, one step at a time:
the oldest outbox rows are sent and deleted only once the broker acknowledged every
one (in the transaction that locked them), with the backlog and the book totals
reported now and then. Both know the database and the broker only through ports
(`Ledger`, `OutboxRows`, `Publish`, `DbThread`); the entrypoints wire them to
PostgreSQL, Kafka and the runtime's stage kit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

from carbonledger.contracts import metrics, topics
from carbonledger.contracts.catalogue import is_consent_type
from carbonledger.contracts.records import (
    AccountEvent,
    DeadLetter,
    Decision,
    DecisionKind,
    ReductionClaim,
)
from carbonledger.contracts.regions import RegionTable
from carbonledger.services.ledger.domain.batches import Applied, Offset
from carbonledger.services.ledger.domain.consent import ConsentEntry, consent_entry
from carbonledger.services.ledger.domain.family import (
    FamilyReport,
    Membership,
    changes_nothing,
    family_report,
    operator_reports,
)
from carbonledger.services.ledger.domain.outbox import Publish
from carbonledger.services.ledger.domain.rejections import RejectionEntry, rejection_entry
from carbonledger.services.ledger.metrics import (
    ACCOUNT_EVENTS,
    ACTIVE,
    APPLIED,
    BACKLOG,
    BATCH_SECONDS,
    BATCHES,
    BOOK_BALANCE,
    CREDITED,
    EVENT_TO_POSTING,
    INGEST_TO_POSTING,
    PERSONAL_BALANCE,
    POSTINGS,
    PUBLISHED,
    REGISTRY_SHORTFALL,
    REGISTRY_SHORTFALL_SERIES,
    REVERSED,
    WRITE_SECONDS,
)

if TYPE_CHECKING:  # only the type: the use cases import nothing of Kafka
    from carbonledger.runtime.batching import Output
    from carbonledger.runtime.commits import Offsets

log = logging.getLogger("ledger.publisher")

P = ParamSpec("P")
T = TypeVar("T")

_MOVING = (DecisionKind.CREDIT, DecisionKind.REVERSE)
BACKLOG_SECONDS = 5.0  # how often the active publisher counts the outbox


class DbThread(Protocol):
    """Runs blocking database work off the event loop, one call at a time."""

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T: ...


class Ledger(Protocol):
    """The books as the writer needs them (adapters/books.py)."""

    @property
    def regions(self) -> RegionTable: ...

    def apply(
        self,
        decisions: list[Decision],
        group_id: str,
        offsets: list[Offset],
        accounts: Sequence[ConsentEntry | FamilyReport | RejectionEntry],
    ) -> Applied: ...

    def offsets(self, group_id: str, topic: str) -> dict[int, int]: ...


class OutboxRows(Protocol):
    """The outbox as the publisher needs it (adapters/outbox.py)."""

    def lead(self) -> bool: ...

    def publish_oldest(self, limit: int, publish: Publish) -> int: ...

    def backlog(self) -> int: ...

    def book_totals(self) -> tuple[dict[str, int], dict[str, int]]: ...

    def registry_shortfalls(self) -> list[int]: ...


# --- recording decisions ----------------------------------------------------------------------


def observe(applied: Applied, regions: RegionTable, now: datetime) -> None:
    """Metrics of the decisions and account events a batch recorded for the first time."""
    for type_, count in applied.accounts.items():
        ACCOUNT_EVENTS.labels(type_).inc(count)
    for d in applied.fresh:
        APPLIED.labels(d.kind.value).inc()
        if d.kind not in _MOVING:
            continue
        claim = d.claim
        province = regions.province_of(claim.region).code if claim.region in regions else "unknown"
        mass = CREDITED if d.amount_mg >= 0 else REVERSED
        mass.labels(claim.type, province).inc(metrics.grams(abs(d.amount_mg)))
        if d.kind is DecisionKind.CREDIT and d.sequence == 0:
            # Only the decision made when the claim arrived: a reversal or a later
            # credit of an older claim is timed by the claim that caused it, not this one.
            _latency(claim, now)


def _latency(claim: ReductionClaim, now: datetime) -> None:
    EVENT_TO_POSTING.observe(max(0.0, (now - claim.time).total_seconds()))
    if claim.received_at is not None:
        INGEST_TO_POSTING.observe(max(0.0, (now - claim.received_at).total_seconds()))


class Postings:
    """The books as the writer's sink: the decisions and account events of the batch
    in hand, recorded with the batch's offsets in one transaction (an `OffsetStore`)."""

    def __init__(self, books: Ledger, group: str, db: DbThread) -> None:
        self.books, self.group, self.db = books, group, db
        self.decisions: list[Decision] = []
        self.accounts: list[ConsentEntry | FamilyReport | RejectionEntry] = []

    def take(self, record: Any, decision: Decision) -> Iterator[Output]:
        """The batch handler's part: keep the decision for `write` (it sends nothing)."""
        self.decisions.append(decision)
        return iter(())

    def take_account(self, record: Any, event: AccountEvent) -> Iterator[Output]:
        """Keep an account event's history entry or family report for `write`. One the
        ledger cannot record (no evidence, a link of a subject to itself, ...) raises
        `Rejection` before anything is kept: the stage dead-letters it."""
        entry = consent_entry(event) if is_consent_type(event.type) else family_report(event)
        self.accounts.append(entry)
        return iter(())

    def take_rejection(self, record: Any, letter: DeadLetter) -> Iterator[Output]:
        """Keep a partner's dead letter for `write` (for the partner to read its own
        rejections); a letter naming no partner is the operator's, and passes."""
        entry = rejection_entry(letter)
        if entry is not None:
            self.accounts.append(entry)
        return iter(())

    async def stored(self, topic: str) -> dict[int, int]:
        return await self.db.call(self.books.offsets, self.group, topic)

    def discard(self) -> None:
        """A failed attempt's decisions: gone (its transaction, if it began, was rolled
        back), so the records worked again in parts are not taken twice."""
        self.decisions, self.accounts = [], []

    async def write(self, offsets: Offsets) -> None:
        decisions, self.decisions = self.decisions, []
        accounts, self.accounts = self.accounts, []
        stored = [Offset(tp.topic, tp.partition, o) for tp, o in offsets.items()]
        await self.db.call(self.record, decisions, stored, accounts)

    def record(
        self,
        decisions: list[Decision],
        offsets: list[Offset],
        accounts: Sequence[ConsentEntry | FamilyReport | RejectionEntry] = (),
    ) -> None:
        """Apply the decisions and account events and the offsets they bring the books
        to, then count."""
        started = time.perf_counter()
        applied = self.books.apply(decisions, self.group, offsets, accounts)
        WRITE_SECONDS.observe(time.perf_counter() - started)
        POSTINGS.inc(applied.postings)
        BATCHES.observe(len(decisions))
        observe(applied, self.books.regions, datetime.now(UTC))


# --- the operator's family links -------------------------------------------------------------


class FamilyBook(Protocol):
    """The family reports as the operator's command needs them (adapters/books.py)."""

    def transaction(self) -> AbstractContextManager[Any]: ...

    def membership(self, head: str, member: str) -> Membership | None: ...

    def record_family(self, reports: Sequence[FamilyReport]) -> int: ...


def operator_family(
    books: FamilyBook,
    kind: str,
    change: tuple[str, str],
    at: datetime | None,
    evidence_id: str | None,
) -> tuple[int, Membership | None]:
    """The operator's link or unlink of a (head, member) pair, both sides' acceptance
    at once (partner `operator`), at `at`, or now unless that would change nothing
    (so the same command given twice records once). Read and written in one
    transaction; returns the reports recorded and the pair's membership after."""
    head, member = change
    with books.transaction():
        pair = books.membership(head, member)
        if at is None and changes_nothing(kind, pair):
            return 0, pair
        reports = operator_reports(kind, head, member, at or datetime.now(UTC), evidence_id)
        recorded = books.record_family(reports)
        return recorded, books.membership(head, member)


# --- relaying the outbox ----------------------------------------------------------------------


class OutboxRelay:
    """One publisher's part: standby until it leads, then the outbox, batch by batch.

    Its methods block (they run on the database's thread); the loop that calls them,
    and waits in between, is the entrypoint's.
    """

    def __init__(
        self,
        outbox: OutboxRows,
        send: Publish,
        batch_max: int,
        book_totals_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.outbox, self.send, self.batch_max = outbox, send, batch_max
        self.book_totals_seconds, self.clock = book_totals_seconds, clock
        self.role: str | None = None  # standby or active, once known
        self._counted: float | None = None  # when the backlog, the book totals were last
        self._totalled: float | None = None  # reported; None: not yet, so at the first step

    def readiness(self) -> dict[str, Any]:
        """Ready as soon as it knows its role: a standby is ready to take over."""
        if self.role is None:
            return {"ready": False}
        return {"ready": True, "role": self.role}

    def try_lead(self) -> bool:
        """Take the leader lock if no other publisher holds it; whether this one leads."""
        if self.outbox.lead():
            ACTIVE.set(1)
            self.role = "active"
            log.info("publishing the outbox to %s", topics.POSTINGS)
            return True
        ACTIVE.set(0)
        self.role = "standby"  # another publisher holds the lock
        return False

    def step(self) -> bool:
        """Publish the oldest batch and make the reports that are due; whether the
        outbox held a full batch (so the next step need not wait)."""
        started = time.perf_counter()
        sent = self.outbox.publish_oldest(self.batch_max, self.send)
        if sent:
            PUBLISHED.inc(sent)
            BATCH_SECONDS.observe(time.perf_counter() - started)
        if self._due(self._counted, BACKLOG_SECONDS):
            BACKLOG.set(self.outbox.backlog())
            self._counted = self.clock()
        if self.book_totals_seconds and self._due(self._totalled, self.book_totals_seconds):
            self.report_books()
            self._totalled = self.clock()
        return sent >= self.batch_max

    def report_books(self) -> None:
        """The three books must hold the same total; the personal one is people's and
        units' accounts, reported apart (a gauge of its own, so the books' gauge
        holds only the three that must be equal)."""
        books, personal = self.outbox.book_totals()
        for book, total_mg in books.items():
            BOOK_BALANCE.labels(book).set(metrics.grams(total_mg))
        for kind, total_mg in personal.items():
            PERSONAL_BALANCE.labels(kind).set(metrics.grams(total_mg))
        owed = self.outbox.registry_shortfalls()  # the registry's issued units, checked
        REGISTRY_SHORTFALL.set(metrics.grams(sum(owed)))
        REGISTRY_SHORTFALL_SERIES.set(len(owed))

    def _due(self, last: float | None, every: float) -> bool:
        return last is None or self.clock() - last > every
