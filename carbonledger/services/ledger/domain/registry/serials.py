"""Units and their serial numbers.

One unit is one tonne of CO2e (10^9 mg). Units are numbered per unit type (a
scheme's `CIER`, `PHCER`, `CDCER`...), from 1, with no number ever given twice.
An issuance gets one contiguous run of numbers, written as a serial block

    CN-{unit_type}-{region}-{methodology}-{vintage_year}-{first:09d}-{last:09d}

and a single unit's serial is the block of one (first = last). Methodology ids
contain hyphens, so a serial is read from both ends: the unit type and region
from the left, the year and the two numbers from the right.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UNIT_MG = 10**9  # 1 unit = 1 tCO2e
SEQUENCE_DIGITS = 9
MAX_SEQUENCE = 10**SEQUENCE_DIGITS - 1
UNIT_TYPE = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")
DEFAULT_UNIT_TYPE = "CIER"
_SERIAL = re.compile(
    r"^CN-(?P<unit_type>[A-Z][A-Z0-9]{1,9})-(?P<region>[0-9]{6})-(?P<methodology>.+)"
    r"-(?P<vintage>[0-9]{4})-(?P<first>[0-9]{9})-(?P<last>[0-9]{9})$"
)


@dataclass(frozen=True, order=True)
class Range:
    """Consecutive sequence numbers first..last (both included)."""

    first: int
    last: int

    def __post_init__(self) -> None:
        if not 1 <= self.first <= self.last <= MAX_SEQUENCE:
            raise ValueError(f"not a range of sequence numbers: {self.first}..{self.last}")

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def __contains__(self, other: object) -> bool:
        return isinstance(other, Range) and self.first <= other.first <= other.last <= self.last

    def overlaps(self, other: Range) -> bool:
        return self.first <= other.last and other.first <= self.last

    def head(self, units: int) -> Range:
        """The lowest `units` numbers of the range."""
        if not 1 <= units <= self.size:
            raise ValueError(f"cannot take {units} of {self.size} units")
        return Range(self.first, self.first + units - 1)

    def without(self, part: Range) -> tuple[Range, ...]:
        """What is left of the range once `part` (inside it) is cut out: 0, 1 or 2 runs."""
        if part not in self:
            raise ValueError(f"{part} is not inside {self}")
        left = (Range(self.first, part.first - 1),) if part.first > self.first else ()
        right = (Range(part.last + 1, self.last),) if part.last < self.last else ()
        return left + right


@dataclass(frozen=True)
class Serial:
    """A serial block: what the numbers of one issuance's units are called."""

    unit_type: str
    region: str
    methodology: str
    vintage: int
    range: Range

    def __str__(self) -> str:
        return (
            f"CN-{self.unit_type}-{self.region}-{self.methodology}-{self.vintage:04d}"
            f"-{self.range.first:09d}-{self.range.last:09d}"
        )

    def part(self, numbers: Range) -> Serial:
        """The serial of some of this block's units."""
        if numbers not in self.range:
            raise ValueError(f"{numbers} is not inside {self}")
        return Serial(self.unit_type, self.region, self.methodology, self.vintage, numbers)

    @classmethod
    def parse(cls, text: str) -> Serial:
        """A serial as written; ValueError naming what is wrong with it."""
        found = _SERIAL.match(text.strip())
        if found is None:
            raise ValueError(
                f"{text!r} is not a serial: CN-<unit type>-<region>-<methodology>-<year>"
                "-<first, 9 digits>-<last, 9 digits>"
            )
        numbers = Range(int(found["first"]), int(found["last"]))
        return cls(
            found["unit_type"],
            found["region"],
            found["methodology"],
            int(found["vintage"]),
            numbers,
        )
