"""Forgetting people who stop reporting: state expires after the window.

A person's entry is pruned whenever they have a new claim; someone who never
reports again would keep theirs forever. So each partition lists who may expire
on which day, and when the partition's watermark enters a new day the days now
past are swept: each person listed is pruned, and removed when nothing is left.
A stale listing (the person reported again since) costs one read and changes
nothing. These are the rules; where the listing is kept is the state adapter's
(services/dedupe/adapters/state.py), and the sweep is run by the Dedupe use case.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from carbonledger.contracts.calendar import CST
from carbonledger.services.dedupe.domain.person import PersonState, needed_until

# How far back the first sweep of a partition looks: further than any listing can be.
FIRST_SWEEP_LOOKBACK = timedelta(days=400)


def expires_on(state: PersonState, window: timedelta) -> date | None:
    """The local day from which everything the person's state can forget is past the
    window: then it is pruned to what it keeps for ever (the latest consent record per
    partner), or removed when that is nothing. None: nothing to forget."""
    last = needed_until(state)
    if last is None:
        return None
    return (last + window).astimezone(CST).date() + timedelta(days=1)


def days_to_sweep(watermark: datetime, swept_until: date | None) -> list[date]:
    """The local days a watermark has reached that are not swept yet, oldest first
    (none while the watermark stays in a day already swept)."""
    today = watermark.astimezone(CST).date()
    if swept_until is not None and swept_until >= today:
        return []
    day = swept_until + timedelta(days=1) if swept_until else today - FIRST_SWEEP_LOOKBACK
    days = []
    while day <= today:
        days.append(day)
        day += timedelta(days=1)
    return days
