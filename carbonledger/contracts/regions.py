"""GB/T 2260 administrative divisions: the shipped table behind `region` codes.

Partners report the six-digit code of the district or county where a behaviour
happened. Ingest admits only codes in this table, and the ledger rolls a
district's totals up to its city, its province and the nation, so every code
here has a chain of parents ending at a province.

The table is `data/regions.csv` (code, name, level, parent), derived from the
Ministry of Civil Affairs list of county-level-and-above codes; its source,
year and the rules used to fill `parent` are in `data/README.md`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib.resources import files
from typing import TypeVar

# The roll-up key above every province. It is all zeros because GB/T 2260 never
# assigns that code, so it cannot collide with a real division.
NATIONAL = "000000"

_CODE = re.compile(r"[0-9]{6}")
_HEADER = ["code", "name", "level", "parent"]
T = TypeVar("T")


class Level(StrEnum):
    PROVINCE = "province"
    CITY = "city"
    # County level: urban districts, counties, county-level cities, banners.
    DISTRICT = "district"


# Which levels may enclose each level. A district may sit directly under its
# province: municipalities have no prefecture level in GB/T 2260, and some
# county-level cities (e.g. Hubei's 4290xx) are administered by the province.
_PARENT_LEVELS: dict[Level, frozenset[Level]] = {
    Level.PROVINCE: frozenset(),
    Level.CITY: frozenset({Level.PROVINCE}),
    Level.DISTRICT: frozenset({Level.CITY, Level.PROVINCE}),
}


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    level: Level
    parent: str | None  # None only for provinces


class RegionTable:
    """An immutable, consistency-checked view of the division table."""

    def __init__(self, regions: Iterable[Region]) -> None:
        by_code: dict[str, Region] = {}
        for region in regions:
            if not _CODE.fullmatch(region.code) or region.code == NATIONAL:
                raise ValueError(f"{region.code!r} is not a six-digit division code")
            if region.code in by_code:
                raise ValueError(f"{region.code} appears twice")
            by_code[region.code] = region
        children: dict[str, list[Region]] = {NATIONAL: []}
        # Checked once here so that lineage() can trust every link: a bad edit
        # to the CSV must fail loudly at load, not silently misroute totals.
        for region in by_code.values():
            parent = by_code.get(region.parent) if region.parent is not None else None
            allowed = _PARENT_LEVELS[region.level]
            if region.parent is None and allowed:
                raise ValueError(f"{region.code} ({region.level}) needs a parent")
            if region.parent is not None and (parent is None or parent.level not in allowed):
                raise ValueError(f"{region.code} has no valid parent {region.parent!r}")
            if region.parent is not None and region.parent[:2] != region.code[:2]:
                raise ValueError(f"{region.code} lies outside its parent {region.parent}")
            children.setdefault(region.parent or NATIONAL, []).append(region)
        self._by_code = dict(sorted(by_code.items()))
        self._children = {
            code: tuple(sorted(kids, key=lambda r: r.code)) for code, kids in children.items()
        }
        # Each code's lineage, walked once here: the writer asks it of every posting and
        # every credit's statistics, and the table never changes.
        self._lineages = {code: self._walk(code) for code in self._by_code}
        self._rollups = {code: (*lineage, NATIONAL) for code, lineage in self._lineages.items()}

    @classmethod
    def from_csv(cls, text: str) -> RegionTable:
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if header != _HEADER:
            raise ValueError(f"region table header must be {','.join(_HEADER)}, got {header}")
        return cls(
            Region(code, name, Level(level), parent or None) for code, name, level, parent in reader
        )

    def __len__(self) -> int:
        return len(self._by_code)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code in self._by_code

    def __iter__(self) -> Iterator[Region]:
        return iter(self._by_code.values())

    def get(self, code: str) -> Region | None:
        return self._by_code.get(code)

    def _require(self, code: str) -> Region:
        return _known(self._by_code, code)

    def lineage(self, code: str) -> tuple[str, ...]:
        """The code itself, then each enclosing unit up to its province."""
        return _known(self._lineages, code)

    def _walk(self, code: str) -> tuple[str, ...]:
        chain = [self._by_code[code]]
        while (parent := chain[-1].parent) is not None:
            chain.append(self._by_code[parent])
        return tuple(r.code for r in chain)

    def rollup_keys(self, code: str) -> tuple[str, ...]:
        """Every key a total reported for `code` is added to, ending with NATIONAL."""
        return _known(self._rollups, code)

    def children(self, code: str) -> tuple[Region, ...]:
        """The units directly under `code`; under NATIONAL, the provinces."""
        if code != NATIONAL:
            self._require(code)
        return self._children.get(code, ())

    def province_of(self, code: str) -> Region:
        return self._by_code[self.lineage(code)[-1]]


def _known(table: Mapping[str, T], code: str) -> T:
    """What `table` holds for a code of the region table (KeyError naming the code)."""
    found = table.get(code)
    if found is None:
        raise KeyError(f"{code!r} is not in the region table")
    return found


@cache
def load_regions() -> RegionTable:
    """The packaged table, read and checked on first use, then shared."""
    resource = files("carbonledger.contracts").joinpath("data").joinpath("regions.csv")
    return RegionTable.from_csv(resource.read_text(encoding="utf-8"))
