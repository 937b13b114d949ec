"""Proceeds back to the people: a sale's price × units, in fen, shared by the
contributions behind the units sold.

Each issuance snapshots its contributors' net mg in the vintage (personal and unit
accounts). A sale's proceeds are split per issuance (price × that issuance's units
sold), then across its contributors pro rata by the largest remainder method
(Hamilton): everyone gets the floor of their exact share, and the fen left over go
one each to the largest fractional parts, ties to the lower account id. So the
allocations are integers that sum exactly to the proceeds, and the same sale always
allocates the same way.

Units whose issuance has no contributor with a positive net (units issued from
remainders carried in or amounts given back, with no net of their own) have no one
to pay: a sale of them at a price is refused rather than leave its fen unallocated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from uuid import UUID

from carbonledger.services.ledger.domain.registry.holdings import Moved, Refused


def largest_remainder(total: int, weights: Mapping[str, int]) -> dict[str, int]:
    """`total` (>= 0) shared by positive integer weights; every key appears, amounts
    sum to `total`. ValueError for no weight or one not positive."""
    if total < 0:
        raise ValueError("a negative amount to share")
    if not weights or any(w <= 0 for w in weights.values()):
        raise ValueError("shares need at least one weight, every weight positive")
    whole = sum(weights.values())
    shares = {k: total * w // whole for k, w in weights.items()}
    left = total - sum(shares.values())
    # The exact fractional part of key k's share is (total*w mod whole)/whole.
    order = sorted(weights, key=lambda k: (-(total * weights[k] % whole), k))
    for key in order[:left]:
        shares[key] += 1
    return shares


def units_by_issuance(moved: Iterable[Moved]) -> dict[UUID, int]:
    """How many of the runs' units each issuance had."""
    counted: dict[UUID, int] = {}
    for m in moved:
        counted[m.issuance] = counted.get(m.issuance, 0) + m.range.size
    return counted


def allocate(
    snapshot: Mapping[str, tuple[str, int]], amount_fen: int, issuance: UUID | None = None
) -> dict[str, tuple[str, int]]:
    """A vintage's share of a sale, by largest remainder over its snapshot (account:
    (subject kind, mg)). Refused when there is an amount and no contributor."""
    if not amount_fen:
        return {}
    if not snapshot:
        raise Refused(
            f"issuance {issuance} has no contributor to share {amount_fen} fen of proceeds:"
            " sell its units at price 0, or sell other units"
        )
    shares = largest_remainder(amount_fen, {a: mg for a, (_, mg) in snapshot.items()})
    return {a: (snapshot[a][0], fen) for a, fen in shares.items()}
