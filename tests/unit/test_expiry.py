"""People who stop reporting are forgotten once the window has passed."""

from __future__ import annotations

import zlib
from datetime import date, timedelta

import orjson

from carbonledger.contracts.settings import Settings
from carbonledger.runtime.changelog import ChangelogTable
from carbonledger.services.dedupe.adapters.state import BUCKETS, ChangelogState, PartitionPeople
from carbonledger.services.dedupe.domain.expiry import expires_on
from carbonledger.services.dedupe.domain.person import PersonState, observe
from carbonledger.services.dedupe.metrics import DedupeMetrics
from carbonledger.services.dedupe.service import Dedupe
from tests.factories import claim

WINDOW = timedelta(days=7)


def stage() -> tuple[Dedupe, ChangelogTable]:
    table = ChangelogTable("people-changelog", Settings())
    table.begin()  # as the batch loop opens one per batch
    return Dedupe(ChangelogState(table), WINDOW, DedupeMetrics()), table


def remember(people: PartitionPeople, subject: str, day: int) -> None:
    """A claim of the person taken in, and listed for expiry, without a sweep."""
    c = claim("a", f"{subject}-{day}", 0, 30, subject=subject, day=day)
    state = people.person(subject) or PersonState(subject)
    before = expires_on(state, WINDOW)
    observe(state, c, watermark=c.ended_at, window=WINDOW)
    people.keep_person(state)
    expiring = expires_on(state, WINDOW)
    if expiring is not None and expiring != before:
        people.list_for_expiry(expiring, subject)


def test_idle_people_expire_and_active_ones_stay() -> None:
    dedupe, table = stage()
    people = ChangelogState(table).partition(0)
    idle, active = "1" * 64, "2" * 64
    remember(people, idle, 1)
    remember(people, active, 1)
    later = claim("a", "x", 0, 30, day=9).ended_at
    assert dedupe.sweep(0, later) == 0  # day 1 + 48 h + 7 days not yet past
    remember(people, active, 12)
    now = claim("a", "y", 0, 30, day=14).ended_at
    assert dedupe.sweep(0, now) == 1
    held = dict(table.current().partition(0))
    assert idle.encode() not in held and active.encode() in held
    assert len(people.person(active).claims) == 1  # type: ignore[union-attr]  # day 1 pruned
    assert dedupe.sweep(0, now) == 0  # once per day
    assert not [k for k in held if k.startswith(b"~expiry/0/2026-10-1")]


def test_nothing_expires_early_whatever_the_order_of_sweeps() -> None:
    dedupe, table = stage()
    remember(ChangelogState(table).partition(0), "3" * 64, 5)
    for day in range(5, 14):
        dedupe.sweep(0, claim("a", "z", 0, 30, day=day).ended_at)
    assert ("3" * 64).encode() in table.current().partition(0)
    dedupe.sweep(0, claim("a", "z", 0, 30, day=20).ended_at)
    assert ("3" * 64).encode() not in table.current().partition(0)


def test_a_listing_kept_decoded_is_the_bytes_a_listing_decoded_each_time_would_be() -> None:
    """Listing someone appends to the bytes the adapter wrote: the same bytes as the
    list decoded, extended and encoded again; bytes it did not write are decoded."""
    table = ChangelogTable("people-changelog", Settings())
    subjects = [f"{n:064x}" for n in range(300)] + ["李雷", 'quo"te']
    with table.transaction() as tx:
        people = ChangelogState(table).partition(0)
        for subject in subjects + subjects[:50]:
            people.list_for_expiry(date(2026, 5, 5), subject)
        written = dict(tx.partition(0))
    expected: dict[bytes, list[str]] = {}
    for subject in subjects:
        key = people._expiry_key(date(2026, 5, 5), zlib.crc32(subject.encode()) % BUCKETS)
        expected.setdefault(key, []).append(subject)
    assert written == {key: orjson.dumps(listed) for key, listed in expected.items()}
    with table.transaction() as tx:  # another state, over bytes written elsewhere
        again = ChangelogState(table).partition(0)
        again.list_for_expiry(date(2026, 5, 5), "someone else")
        assert sorted(again.take_expiring(date(2026, 5, 5))) == sorted([*subjects, "someone else"])
