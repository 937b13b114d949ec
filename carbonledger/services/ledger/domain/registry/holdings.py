"""Who holds which units: blocks of consecutive serials, moved lowest first.

A block is a run of one issuance's units in one account, held or retired. A
transfer or a retirement takes the lowest serials the account holds (retired ones
never move), splitting a block where the count ends inside it; the pieces keep
their issuance, so every unit's vintage and contributors stay known.

`Holdings` is the whole registry's state as a value: `carbonledger verify` replays
the recorded transactions through it (and compares with the holdings table), and
the property tests drive it with random sequences. The PostgreSQL adapter uses the
same `choose` and `carve` on the rows it locked.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from uuid import UUID

from carbonledger.services.ledger.domain.registry.serials import Range


class Refused(Exception):
    """A registry operation the rules do not allow; the message says why."""


@dataclass(frozen=True, order=True)
class Block:
    """Units first..last of one issuance (of one unit type), in one account; retired
    by the retirement `retired_by` if that is set."""

    unit_type: str
    range: Range
    issuance: UUID
    account: str
    retired_by: UUID | None = None

    @property
    def units(self) -> int:
        return self.range.size


@dataclass(frozen=True, order=True)
class Moved:
    """Units a transaction moved (or retired, or issued): one issuance's run."""

    unit_type: str
    range: Range
    issuance: UUID


def choose(
    blocks: Iterable[Block], units: int, within: tuple[str, Range] | None = None
) -> list[Moved]:
    """The `units` lowest serials of the held (not retired) blocks given (an account's),
    optionally only inside `within` (a unit type's numbers); Refused if they hold fewer."""
    if units < 1:
        raise Refused("the number of units must be at least 1")
    picked: list[Moved] = []
    wanted = units
    for block in sorted(b for b in blocks if b.retired_by is None):
        if within is not None and block.unit_type != within[0]:
            continue
        numbers = _inside(block.range, within[1] if within else None)
        if numbers is None:
            continue
        take = numbers.head(min(wanted, numbers.size))
        picked.append(Moved(block.unit_type, take, block.issuance))
        wanted -= take.size
        if not wanted:
            return picked
    raise Refused(f"holds {units - wanted} units that can move, fewer than {units}")


def _inside(numbers: Range, within: Range | None) -> Range | None:
    if within is None:
        return numbers
    if not numbers.overlaps(within):
        return None
    return Range(max(numbers.first, within.first), min(numbers.last, within.last))


def carve(
    blocks: Sequence[Block], moved: Iterable[Moved], account: str, retired_by: UUID | None = None
) -> tuple[list[Block], list[Block]]:
    """How moving these units to `account` (retired by `retired_by`, if set) changes the
    blocks they are in: (blocks removed, blocks added). Each moved run must lie inside
    one held block of its issuance; Refused otherwise."""
    removed: list[Block] = []
    added: list[Block] = []
    pieces = list(blocks)
    for move in moved:
        block = _holding(pieces, move)
        pieces.remove(block)
        rest = [replace(block, range=r) for r in block.range.without(move.range)]
        pieces += rest
        if block in added:
            added.remove(block)  # a piece cut again in the same transaction
        else:
            removed.append(block)
        added += rest
        added.append(Block(move.unit_type, move.range, move.issuance, account, retired_by))
        pieces.append(added[-1])
    return removed, added


def first_retired(blocks: Iterable[Block], unit_type: str, numbers: Range) -> Block | None:
    """The lowest retired block holding any of these numbers, if one does."""
    retired = [
        b
        for b in blocks
        if b.retired_by is not None and b.unit_type == unit_type and b.range.overlaps(numbers)
    ]
    return min(retired, default=None)


def _holding(blocks: Iterable[Block], move: Moved) -> Block:
    for block in blocks:
        if block.unit_type == move.unit_type and move.range in block.range:
            if block.issuance != move.issuance:
                raise Refused(f"units {move.range} are not of issuance {move.issuance}")
            if block.retired_by is not None:
                raise Refused(f"units {move.range} are retired")
            return block
    raise Refused(f"units {move.range} of {move.unit_type} are not in one held block")


class Holdings:
    """Every block of every account, kept sorted by unit type and first serial."""

    def __init__(self, blocks: Iterable[Block] = ()) -> None:
        self._blocks: list[Block] = sorted(blocks)
        self.next_sequence: dict[str, int] = {}
        for b in self._blocks:
            self.next_sequence[b.unit_type] = max(
                self.next_sequence.get(b.unit_type, 1), b.range.last + 1
            )

    @property
    def blocks(self) -> tuple[Block, ...]:
        return tuple(self._blocks)

    def of(self, account: str) -> list[Block]:
        return [b for b in self._blocks if b.account == account]

    def issue(self, unit_type: str, units: int, issuance: UUID, account: str) -> Moved:
        """The next `units` numbers of the unit type, issued to `account`."""
        first = self.next_sequence.get(unit_type, 1)
        move = Moved(unit_type, Range(first, first + units - 1), issuance)
        self.record_issue(move, account)
        return move

    def record_issue(self, move: Moved, account: str) -> None:
        """An issuance as recorded: it must start at the unit type's next number."""
        expected = self.next_sequence.get(move.unit_type, 1)
        if move.range.first != expected:
            raise Refused(
                f"issuance {move.issuance} starts at {move.range.first}, expected {expected}"
            )
        self._add([Block(move.unit_type, move.range, move.issuance, account)])
        self.next_sequence[move.unit_type] = move.range.last + 1

    def move(
        self, source: str, moved: Sequence[Moved], account: str, retired_by: UUID | None = None
    ) -> None:
        """Units of `source` to `account` (or retired in it): as recorded, checked."""
        removed, added = carve(self.of(source), moved, account, retired_by)
        for block in removed:
            self._blocks.remove(block)
        self._add(added)

    def transfer(self, source: str, target: str, units: int) -> list[Moved]:
        moved = choose(self.of(source), units)
        self.move(source, moved, target)
        return moved

    def retire(
        self, account: str, units: int, retirement: UUID, within: tuple[str, Range] | None = None
    ) -> list[Moved]:
        moved = choose(self.of(account), units, within)
        self.move(account, moved, account, retired_by=retirement)
        return moved

    def _add(self, blocks: Iterable[Block]) -> None:
        for block in blocks:
            bisect.insort(self._blocks, block)
