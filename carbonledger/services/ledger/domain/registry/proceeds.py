"""Proceeds back to the people: a sale's price × units, in fen, shared by the
contributions behind the units sold.

Each issuance snapshots its contributors' net mg in the vintage (personal and unit
accounts). A sale's proceeds are split per issuance (price × that issuance's units
sold), then across its contributors pro rata by the largest remainder method
(Hamilton): everyone gets the floor of their exact share, and the fen left over go
one each to the largest fractional parts, ties to the lower account id. So the
allocations are integers that sum exactly to the proceeds, and the same sale always
allocates the same way.
"""

from __future__ import annotations

from collections.abc import Mapping


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
