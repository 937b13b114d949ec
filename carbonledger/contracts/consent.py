"""The consent rule's order (DOMAIN §12), shared by dedupe (which credits by it) and
the ledger (whose consent history says what is in force by it), so the two never
disagree.

Consent holds for granted ≤ t < withdrawn: records are taken by the time the user
gave or withdrew consent, and at one instant the withdrawal comes after the grant,
so it decides. A last key (the event's, or its evidence id) makes the order total.
"""

from __future__ import annotations

from datetime import datetime

ConsentOrder = tuple[datetime, int, str]


def consent_order(at: datetime, withdrawn: bool, tiebreak: str) -> ConsentOrder:
    return at, 1 if withdrawn else 0, tiebreak
