"""People who stop reporting are forgotten once the window has passed."""

from __future__ import annotations

from datetime import timedelta

from carbonledger.services.dedupe.domain.expiry import expires_on, register, sweep
from carbonledger.services.dedupe.domain.person import PersonState, observe
from tests.factories import claim

WINDOW = timedelta(days=7)


def remember(table: dict[bytes, bytes], subject: str, day: int) -> None:
    c = claim("a", f"{subject}-{day}", 0, 30, subject=subject, day=day)
    raw = table.get(subject.encode())
    state = PersonState.from_bytes(raw) if raw else PersonState(subject)
    before = expires_on(state, WINDOW)
    observe(state, c, watermark=c.ended_at, window=WINDOW)
    table[subject.encode()] = state.to_bytes()
    register(table, 0, state, WINDOW, before)


def test_idle_people_expire_and_active_ones_stay() -> None:
    table: dict[bytes, bytes] = {}
    idle, active = "1" * 64, "2" * 64
    remember(table, idle, 1)
    remember(table, active, 1)
    later = claim("a", "x", 0, 30, day=9).ended_at
    assert sweep(table, 0, later, WINDOW) == 0  # day 1 + 48 h + 7 days not yet past
    remember(table, active, 12)
    now = claim("a", "y", 0, 30, day=14).ended_at
    assert sweep(table, 0, now, WINDOW) == 1
    assert idle.encode() not in table and active.encode() in table
    assert len(PersonState.from_bytes(table[active.encode()]).claims) == 1  # day 1 pruned
    assert sweep(table, 0, now, WINDOW) == 0  # once per day
    assert not [k for k in table if k.startswith(b"~expiry/0/2026-10-1")]


def test_nothing_expires_early_whatever_the_order_of_sweeps() -> None:
    table: dict[bytes, bytes] = {}
    remember(table, "3" * 64, 5)
    for day in range(5, 14):
        sweep(table, 0, claim("a", "z", 0, 30, day=day).ended_at, WINDOW)
    assert ("3" * 64).encode() in table
    sweep(table, 0, claim("a", "z", 0, 30, day=20).ended_at, WINDOW)
    assert ("3" * 64).encode() not in table
