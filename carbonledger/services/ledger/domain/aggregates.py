"""Per-period totals the ledger keeps beside its postings (docs/domain.md).

Periods are days and months of China Standard Time, by behaviour time. A
government posting counts in its region and in every enclosing unit up to the
national total, so a province's figure is one read, never a scan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from typing import Protocol

from carbonledger.contracts.calendar import local_date
from carbonledger.contracts.regions import NATIONAL, RegionTable

# (book, account, period, period_start, behaviour_type, region)
Key = tuple[str, str, str, date, str, str]


def periods(behaviour_time: datetime) -> tuple[tuple[str, date], tuple[str, date]]:
    day = local_date(behaviour_time)
    return ("day", day), ("month", day.replace(day=1))


def rollup_accounts(book: str, account: str, regions: RegionTable) -> tuple[str, ...]:
    """The accounts a posting counts in: itself, plus enclosing regions for government."""
    if book != "government":
        return (account,)
    if account in regions:
        return regions.rollup_keys(account)
    return (account, NATIONAL)  # a code the table does not know still reaches the nation


class Counted(Protocol):
    """What the period totals read of a posting."""

    @property
    def book(self) -> str: ...
    @property
    def account(self) -> str: ...
    @property
    def amount_mg(self) -> int: ...
    @property
    def behaviour_type(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def behaviour_time(self) -> datetime: ...


def period_deltas(postings: Iterable[Counted], regions: RegionTable) -> dict[Key, tuple[int, int]]:
    """How a batch of postings moves the period totals: amount and count per key."""
    moved: dict[Key, list[int]] = defaultdict(lambda: [0, 0])
    # A decision's three postings share their behaviour time: its periods, made once.
    seen: dict[datetime, tuple[tuple[str, date], tuple[str, date]]] = {}
    for p in postings:
        book = str(p.book)  # a Book is a str; the key holds the plain text the table stores
        at = p.behaviour_time
        spans = seen.get(at)
        if spans is None:
            spans = seen[at] = periods(at)
        for account in rollup_accounts(book, p.account, regions):
            for period, start in spans:
                key = (book, account, period, start, p.behaviour_type, p.region)
                moved[key][0] += p.amount_mg
                moved[key][1] += 1
    return {key: (amount, count) for key, (amount, count) in moved.items()}
