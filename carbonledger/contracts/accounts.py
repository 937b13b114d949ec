"""The rules of account events (DOMAIN §12) that more than one stage applies, so
they never disagree.

Consent holds for granted ≤ t < withdrawn: records are taken by the time the user
gave or withdrew consent, and at one instant the withdrawal comes after the grant,
so it decides. A last key (the event's, or its evidence id) makes the order total.
Dedupe credits by this order; the ledger's consent history says what is in force
by it.

A family link names two different subjects, a head and a member, and is reported
by one of them: ingest refuses any other, and the ledger (and its operator
command) guards the same rule.
"""

from __future__ import annotations

from datetime import datetime

from carbonledger.contracts.envelope import SUBJECT_PATTERN

ConsentOrder = tuple[datetime, int, str]


def consent_order(at: datetime, withdrawn: bool, tiebreak: str) -> ConsentOrder:
    return at, 1 if withdrawn else 0, tiebreak


def family_pair_fault(head: str, member: str, reported_by: str) -> str | None:
    """What is wrong with a family link's two subjects and its reporter, or None."""
    for name, value in (("head", head), ("member", member)):
        if not SUBJECT_PATTERN.match(value):
            return f"{name} must be a subject id (64 lowercase hex), not {value[:80]!r}"
    if head == member:
        return "a family link needs two different subjects"
    if reported_by not in (head, member):
        return "a family link is reported by its head or its member (subject)"
    return None
