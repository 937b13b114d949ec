"""Family accounts (1+N, DOMAIN §12; 88碳账户's parent and child accounts): which
links between a head and a member are in force, and when.

Each side reports: a `family.linked` event whose subject is the head, and one whose
subject is the member (by their partners, or both by an operator command). A link is
in force from the moment both sides have reported it (the later of the two times)
until either side reports `family.unlinked`; it may be linked again later, so a pair
has a list of half-open intervals [start, end).

A member is in at most one family at a time: a link that would start while the
member is in another head's family does not take effect. It is refused (with the
reason), and both sides' reports of it are spent: once the member has left the other
family, the link is reported again. An unlink withdraws a side's pending report too.

Everything follows from the reports' times, never from the order they arrived in:
per member, reports are swept in time order (at one instant unlinks before links,
since intervals are half-open; then by id), so the same reports in any order give
the same intervals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from carbonledger.contracts import ids
from carbonledger.contracts.accounts import family_pair_fault
from carbonledger.contracts.catalogue import FAMILY_LINKED, FAMILY_UNLINKED, Reason, Rejection
from carbonledger.contracts.records import AccountEvent

LINKED, UNLINKED = "linked", "unlinked"
_TYPES = {FAMILY_LINKED: LINKED, FAMILY_UNLINKED: UNLINKED}
HEAD, MEMBER = "head", "member"  # the two sides of a link
OPERATOR = "operator"  # the partner and source of links recorded by the operator command

Pair = tuple[str, str]  # (head, member)


@dataclass(frozen=True)
class FamilyReport:
    """One side's report of a link or an unlink (table family_events)."""

    account_event_id: UUID
    reported_by: str  # the event's subject: the head or the member
    head: str
    member: str
    partner: str
    type: str  # linked or unlinked
    time: datetime
    evidence_id: str | None
    event_source: str
    event_id: str

    @property
    def side(self) -> str:
        return HEAD if self.reported_by == self.head else MEMBER


def _refuse(event_id: object, why: str) -> Rejection:
    return Rejection(Reason.INVALID_RECORD, f"account event {event_id}: {why}")


def family_report(event: AccountEvent) -> FamilyReport:
    """The report of a family event; one whose head or member is not a subject id,
    whose subject is neither of them, or that links a subject to itself is refused
    as an invalid record (ingest refuses them too: this is the ledger's own guard)."""
    kind = _TYPES.get(event.type)
    head, member = event.data.get("head"), event.data.get("member")
    evidence = event.data.get("evidence_id")
    if kind is None or not isinstance(head, str) or not isinstance(member, str):
        raise _refuse(event.account_event_id, "not a family event with head and member")
    check_pair(head, member, event.subject, event.account_event_id)
    return FamilyReport(
        account_event_id=event.account_event_id,
        reported_by=event.subject,
        head=head,
        member=member,
        partner=event.partner,
        type=kind,
        time=event.time,
        evidence_id=evidence if isinstance(evidence, str) else None,
        event_source=event.event.source,
        event_id=event.event.id,
    )


def check_pair(head: str, member: str, reported_by: str, event_id: object) -> None:
    fault = family_pair_fault(head, member, reported_by)
    if fault is not None:
        raise _refuse(event_id, fault)


def operator_reports(
    kind: str, head: str, member: str, at: datetime, evidence_id: str | None
) -> tuple[FamilyReport, FamilyReport]:
    """Both sides' reports of an operator's link or unlink, with ids derived from
    what the operator said (the same command, the same ids: recorded once)."""

    def side(reported_by: str, name: str) -> FamilyReport:
        # In UTC: one instant written with another offset is the same command.
        event_id = f"family.{kind}/{head}/{member}/{name}/{at.astimezone(UTC).isoformat()}"
        derived = ids.event_id(OPERATOR, event_id)
        return FamilyReport(
            account_event_id=ids.account_event_id(derived),
            reported_by=reported_by,
            head=head,
            member=member,
            partner=OPERATOR,
            type=kind,
            time=at,
            evidence_id=evidence_id,
            event_source=OPERATOR,
            event_id=event_id,
        )

    check_pair(head, member, head, f"family.{kind}")
    return side(head, HEAD), side(member, MEMBER)


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime | None  # None: in force now

    def covers(self, moment: datetime) -> bool:
        return self.start <= moment and (self.end is None or moment < self.end)


@dataclass(frozen=True)
class Refusal:
    at: datetime
    reason: str


@dataclass
class Membership:
    """A pair's history: when its link was in force, which links were refused, and
    which side (if any) has reported a link the other side has not yet."""

    head: str
    member: str
    intervals: list[Interval] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    awaiting: str | None = None  # the side whose report is still missing

    @property
    def in_force(self) -> bool:
        return bool(self.intervals) and self.intervals[-1].end is None


def _order(report: FamilyReport) -> tuple[datetime, bool, str]:
    return report.time, report.type == LINKED, str(report.account_event_id)


def memberships(reports: Iterable[FamilyReport]) -> dict[Pair, Membership]:
    """Every pair's membership from the reports about its member (all of them: the
    member's other families decide whether a link takes effect)."""
    by_member: dict[str, list[FamilyReport]] = {}
    for report in reports:
        by_member.setdefault(report.member, []).append(report)
    found: dict[Pair, Membership] = {}
    for member, theirs in sorted(by_member.items()):
        found |= _sweep(member, sorted(theirs, key=_order))
    return found


def _sweep(member: str, reports: list[FamilyReport]) -> dict[Pair, Membership]:
    """One member's reports in time order: pending sides per head, the family the
    member is in (head and since when), and each pair's membership."""
    pairs: dict[Pair, Membership] = {}
    pending: dict[str, set[str]] = {}
    current: tuple[str, datetime] | None = None
    for r in reports:
        pair = pairs.setdefault((r.head, member), Membership(r.head, member))
        if r.type == UNLINKED:
            pending.pop(r.head, None)
            if current is not None and current[0] == r.head:
                pair.intervals.append(Interval(current[1], r.time))
                current = None
            continue
        if current is not None and current[0] == r.head:
            continue  # in force already: a repeated report changes nothing
        sides = pending.setdefault(r.head, set())
        sides.add(r.side)
        if len(sides) < 2:
            continue
        del pending[r.head]
        if current is None:
            current = (r.head, r.time)
        else:
            since = current[1].isoformat()
            pair.refused.append(
                Refusal(r.time, f"member is in the family of {current[0]} since {since}")
            )
    if current is not None:
        pairs[(current[0], member)].intervals.append(Interval(current[1], None))
    for head, sides in pending.items():
        (reported,) = sides
        pairs[(head, member)].awaiting = MEMBER if reported == HEAD else HEAD
    return pairs


def changes_nothing(kind: str, pair: Membership | None) -> bool:
    """Whether an operator's link (unlink) without a time of its own would change
    nothing now: the link is in force already (nothing is in force or pending), so
    the same command given twice records once."""
    if kind == LINKED:
        return pair is not None and pair.in_force
    return pair is None or (not pair.in_force and pair.awaiting is None)


@dataclass(frozen=True)
class MemberTotal:
    """A member's part of a family view: the membership and what they reduced while
    linked (net mg and postings of their personal account inside its intervals)."""

    membership: Membership
    net_mg: int
    postings: int


@dataclass(frozen=True)
class FamilyView:
    """A family account: the head's own balance and its members' parts. A view of
    the personal book, never added to any book's total."""

    head: str
    head_own_mg: int
    members: list[MemberTotal]

    @property
    def total_mg(self) -> int:
        return self.head_own_mg + sum(m.net_mg for m in self.members)
