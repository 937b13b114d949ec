"""Consent history and family accounts, without a database: the entries the ledger
records from account events (and the ones it refuses), the consent in force, family
link intervals in any arrival order, and the writer reading both topics."""

from __future__ import annotations

import asyncio
import itertools
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import faust
import pytest
from aiokafka import TopicPartition

from carbonledger.contracts import ids, topics
from carbonledger.contracts.calendar import CST
from carbonledger.contracts.catalogue import (
    CONSENT_GRANTED,
    CONSENT_WITHDRAWN,
    FAMILY_LINKED,
    FAMILY_UNLINKED,
    Reason,
    Rejection,
)
from carbonledger.contracts.records import AccountEvent, Decision, EventRef
from carbonledger.contracts.settings import Settings
from carbonledger.runtime.batching import Output
from carbonledger.runtime.stage import Stage
from carbonledger.services.ledger.domain.batches import Applied, Offset
from carbonledger.services.ledger.domain.consent import (
    ConsentStep,
    Standing,
    consent_entry,
    in_force,
)
from carbonledger.services.ledger.domain.family import (
    HEAD,
    MEMBER,
    FamilyReport,
    Interval,
    changes_nothing,
    family_report,
    memberships,
    operator_reports,
)
from carbonledger.services.ledger.domain.rejections import RejectionEntry
from carbonledger.services.ledger.service import Postings
from tests.factories import NOW
from tests.unit.test_batching import Record
from tests.unit.test_ledger_planner import A, decided
from tests.unit.test_ledger_service import FakeBooks, Inline

T0 = datetime(2026, 10, 1, 8, 0, tzinfo=CST)
PARENT, OTHER_PARENT, CHILD = "1" * 64, "2" * 64, "3" * 64


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def account_event(
    type_: str, subject: str, when: datetime, source: str = "every-app", **data: Any
) -> AccountEvent:
    """An account event as dedupe passes it on (its id derived from the event's)."""
    name = f"{type_}/{subject[:6]}/{data.get('head', '')[:6]}/{when.isoformat()}"
    event = ids.event_id(source, name)
    return AccountEvent(
        account_event_id=ids.account_event_id(event),
        event_id=event,
        event=EventRef(source=source, id=name),
        type=type_,
        subject=subject,
        region="440304",
        time=when,
        natural_key=None,
        data=data,
        partner=source,
        received_at=NOW,
    )


def report(kind: str, by: str, head: str, member: str, hours: int) -> FamilyReport:
    type_ = FAMILY_LINKED if kind == "linked" else FAMILY_UNLINKED
    return family_report(account_event(type_, by, at(hours), head=head, member=member))


def linked(by: str, hours: int, head: str = PARENT, member: str = CHILD) -> FamilyReport:
    return report("linked", by, head, member, hours)


def unlinked(by: str, hours: int, head: str = PARENT, member: str = CHILD) -> FamilyReport:
    return report("unlinked", by, head, member, hours)


# --- family links ---------------------------------------------------------------------------


def test_a_link_is_in_force_from_the_later_report_until_either_side_unlinks() -> None:
    pair = memberships([linked(PARENT, 1), linked(CHILD, 3), unlinked(CHILD, 9)])[(PARENT, CHILD)]
    assert pair.intervals == [Interval(at(3), at(9))]
    assert not pair.in_force and pair.awaiting is None and pair.refused == []


def test_one_side_alone_links_nothing_and_says_whose_report_is_missing() -> None:
    pair = memberships([linked(PARENT, 1)])[(PARENT, CHILD)]
    assert pair.intervals == [] and pair.awaiting == MEMBER
    assert memberships([linked(CHILD, 1)])[(PARENT, CHILD)].awaiting == HEAD


def test_an_unlink_before_the_other_side_accepts_withdraws_the_pending_report() -> None:
    pair = memberships([linked(PARENT, 1), unlinked(PARENT, 2), linked(CHILD, 3)])
    assert pair[(PARENT, CHILD)].intervals == [] and pair[(PARENT, CHILD)].awaiting == HEAD


def test_a_pair_can_be_linked_again_and_repeated_reports_change_nothing() -> None:
    reports = [
        linked(PARENT, 1), linked(CHILD, 2), linked(CHILD, 4), unlinked(PARENT, 5),
        linked(CHILD, 10), linked(PARENT, 12),
    ]  # fmt: skip
    pair = memberships(reports)[(PARENT, CHILD)]
    assert pair.intervals == [Interval(at(2), at(5)), Interval(at(12), None)]
    assert (
        pair.in_force and pair.intervals[1].covers(at(100)) and not pair.intervals[0].covers(at(5))
    )


def test_a_member_in_another_family_is_refused_and_must_be_linked_again_after_leaving() -> None:
    reports = [
        linked(PARENT, 1), linked(CHILD, 1),
        linked(OTHER_PARENT, 2, OTHER_PARENT), linked(CHILD, 3, OTHER_PARENT),  # refused at 3
        unlinked(PARENT, 6),
        linked(OTHER_PARENT, 7, OTHER_PARENT), linked(CHILD, 8, OTHER_PARENT),
    ]  # fmt: skip
    found = memberships(reports)
    first, second = found[(PARENT, CHILD)], found[(OTHER_PARENT, CHILD)]
    assert first.intervals == [Interval(at(1), at(6))]
    (refusal,) = second.refused
    assert refusal.at == at(3) and PARENT in refusal.reason and at(1).isoformat() in refusal.reason
    assert second.intervals == [Interval(at(8), None)]


def test_leaving_and_joining_at_one_instant_moves_the_member() -> None:
    reports = [
        linked(PARENT, 1), linked(CHILD, 1), unlinked(CHILD, 5),
        linked(OTHER_PARENT, 5, OTHER_PARENT), linked(CHILD, 5, OTHER_PARENT),
    ]  # fmt: skip
    found = memberships(reports)
    assert found[(PARENT, CHILD)].intervals == [Interval(at(1), at(5))]
    assert found[(OTHER_PARENT, CHILD)].intervals == [Interval(at(5), None)]


def test_family_links_do_not_depend_on_the_order_reports_arrive_in() -> None:
    reports = [
        linked(PARENT, 1), linked(CHILD, 2), unlinked(PARENT, 4), linked(PARENT, 5),
        linked(OTHER_PARENT, 3, OTHER_PARENT), linked(CHILD, 6, OTHER_PARENT),
        linked(CHILD, 7), unlinked(CHILD, 9, OTHER_PARENT), linked(CHILD, 9),
    ]  # fmt: skip
    want = memberships(reports)
    rng = random.Random(20)
    for _ in range(200):
        shuffled = reports[:]
        rng.shuffle(shuffled)
        assert memberships(shuffled) == want
    assert memberships(reports + reports) == want  # a replay changes nothing
    assert want[(OTHER_PARENT, CHILD)].intervals == [Interval(at(6), at(9))]
    # The head's report at 5 and the member's at 7 came while the member was in the
    # other family: refused and spent; the member's report at 9 awaits the head's.
    parent = want[(PARENT, CHILD)]
    assert parent.intervals == [Interval(at(2), at(4))]
    assert [r.at for r in parent.refused] == [at(7)] and parent.awaiting == HEAD


def test_the_ledger_refuses_a_family_event_it_could_not_account_for() -> None:
    with pytest.raises(Rejection) as refused:
        family_report(account_event(FAMILY_LINKED, PARENT, T0, head=PARENT, member=PARENT))
    assert refused.value.reason is Reason.INVALID_RECORD
    with pytest.raises(Rejection):  # reported by neither side
        family_report(account_event(FAMILY_LINKED, OTHER_PARENT, T0, head=PARENT, member=CHILD))
    with pytest.raises(Rejection):
        family_report(account_event(FAMILY_LINKED, PARENT, T0, head=PARENT, member="child"))
    with pytest.raises(Rejection):
        family_report(account_event(CONSENT_GRANTED, PARENT, T0, head=PARENT, member=CHILD))


def test_an_operator_records_both_sides_with_ids_of_what_it_said() -> None:
    head_side, member_side = operator_reports("linked", PARENT, CHILD, at(1), "form-7")
    assert (head_side.side, member_side.side) == (HEAD, MEMBER)
    assert {head_side.partner, member_side.partner} == {"operator"}
    again = operator_reports("linked", PARENT, CHILD, at(1), "form-7")
    assert [r.account_event_id for r in again] == [
        head_side.account_event_id,
        member_side.account_event_id,
    ]
    later = operator_reports("linked", PARENT, CHILD, at(2), "form-7")
    assert later[0].account_event_id != head_side.account_event_id
    assert memberships([head_side, member_side])[(PARENT, CHILD)].intervals == [
        Interval(at(1), None)
    ]


def test_an_operator_command_without_a_time_records_only_what_changes_something() -> None:
    in_force = memberships([linked(PARENT, 1), linked(CHILD, 1)])[(PARENT, CHILD)]
    pending = memberships([linked(PARENT, 1)])[(PARENT, CHILD)]
    ended = memberships([linked(PARENT, 1), linked(CHILD, 1), unlinked(PARENT, 2)])
    assert changes_nothing("linked", in_force) and not changes_nothing("linked", pending)
    assert not changes_nothing("linked", None) and not changes_nothing("unlinked", in_force)
    assert not changes_nothing("unlinked", pending) and changes_nothing("unlinked", None)
    assert changes_nothing("unlinked", ended[(PARENT, CHILD)])


# --- consent ------------------------------------------------------------------------------


def step(partner: str, type_: str, hours: int, evidence: str = "e") -> ConsentStep:
    return ConsentStep(partner, type_, at(hours), evidence)


def test_the_consent_in_force_is_the_last_given_and_a_renewal_keeps_its_since() -> None:
    history = [
        step("bank", "granted", 1, "a"), step("bank", "granted", 3, "b"),
        step("metro", "granted", 1), step("metro", "withdrawn", 2),
        step("maps", "granted", 50),  # given after now: not in force yet
    ]  # fmt: skip
    assert in_force(history, at(10)) == {
        "bank": Standing("bank", "granted", at(1), "a"),
        "metro": Standing("metro", "withdrawn", at(2), "e"),
    }


def test_at_one_instant_a_withdrawal_wins_in_any_order() -> None:
    history = [step("bank", "granted", 1), step("bank", "withdrawn", 1), step("bank", "granted", 0)]
    for order in itertools.permutations(history):
        assert in_force(order, at(5))["bank"].state == "withdrawn"


def test_a_consent_event_becomes_its_history_entry_or_is_refused() -> None:
    granted = account_event(
        CONSENT_GRANTED, CHILD, at(1), source="green-bank", scope="carbon_account", evidence_id="x"
    )
    entry = consent_entry(granted)
    assert (entry.type, entry.partner, entry.given_at, entry.evidence_id) == (
        "granted", "green-bank", at(1), "x",
    )  # fmt: skip
    assert entry.account_event_id == granted.account_event_id
    withdrawn = account_event(CONSENT_WITHDRAWN, CHILD, at(2), scope="carbon_account")
    with pytest.raises(Rejection):  # no evidence
        consent_entry(withdrawn)


# --- the writer reads decisions and account events ---------------------------------------------


@dataclass
class AccountBooks(FakeBooks):
    """Fake books that also keep the account entries each batch brought."""

    accounts: list[Any] = field(default_factory=list)

    def apply(
        self, decisions: list[Decision], group_id: str, offsets: list[Offset], accounts: Any = ()
    ) -> Applied:
        self.accounts += list(accounts)
        return super().apply(decisions, group_id, offsets)


def test_the_writer_decodes_each_record_by_its_topic_and_dead_letters_what_it_cannot_keep() -> None:
    books = AccountBooks()
    postings = Postings(books, "ledger-writer", Inline())
    stage = Stage("ledger", faust.App("accounts-dispatch-test"), Settings())
    handle = stage.by_topic(
        {
            topics.DECISIONS: stage.each(Decision, postings.take),
            topics.ACCOUNTS: stage.each(AccountEvent, postings.take_account),
        }
    )
    decision: Decision = decided(A, "svc-a1", 0)
    consent = account_event(CONSENT_GRANTED, A, at(1), scope="carbon_account", evidence_id="auth-1")
    selfish = account_event(FAMILY_LINKED, A, at(1), head=A, member=A)
    records = [
        Record(topics.ACCOUNTS, 0, 0, value=consent.to_bytes()),
        Record(topics.DECISIONS, 0, 0, value=decision.to_bytes()),
        Record(topics.ACCOUNTS, 0, 1, value=b"{not json"),
        Record(topics.ACCOUNTS, 0, 2, value=selfish.to_bytes()),
    ]
    outputs = list(handle(records))
    assert len(outputs) == 2 and all(isinstance(o, Output) for o in outputs)
    assert len(postings.accounts) == 1
    assert [a.account_event_id for a in postings.accounts if not isinstance(a, RejectionEntry)] == [
        consent.account_event_id
    ]
    asyncio.run(postings.write({TopicPartition(topics.ACCOUNTS, 0): 3}))
    assert books.applied == [([decision], "ledger-writer", [Offset(topics.ACCOUNTS, 0, 3)])]
    assert [a.account_event_id for a in books.accounts] == [consent.account_event_id]
    assert postings.accounts == [] and postings.decisions == []
