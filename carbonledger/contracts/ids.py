"""Deterministic identities: the same inputs always give the same id, so any stage
can be re-run, and any record redelivered, without creating a new identity."""

from __future__ import annotations

import hashlib
import uuid

NAMESPACE = uuid.UUID("6b1c3f0e-9d7a-5c43-8f2e-c0a2b0e1d1a7")

# uuid.uuid5 by hand, the same bits (tests/unit/test_contracts.py compares): the
# namespace's SHA-1 state is hashed once, and the version and variant are set on the
# integer, which is half of uuid5's cost on the hot path (an id per event and claim).
_NAMESPACE_SHA1 = hashlib.sha1(NAMESPACE.bytes, usedforsecurity=False)
_VERSION_VARIANT_BITS = (0xF000 << 64) | (0xC000 << 48)
_VERSION_5 = (5 << 76) | (0x8000 << 48)


def _derive(kind: str, *parts: object) -> uuid.UUID:
    digest = _NAMESPACE_SHA1.copy()
    digest.update("\x1f".join([kind, *map(str, parts)]).encode())
    bits = int.from_bytes(digest.digest()[:16], "big")
    return uuid.UUID(int=(bits & ~_VERSION_VARIANT_BITS) | _VERSION_5)


def event_id(source: str, partner_event_id: str) -> uuid.UUID:
    """One behaviour event, whatever topic, offset or delivery it came by."""
    return _derive("event", source, partner_event_id)


def claim_id(
    event: uuid.UUID, methodology_id: str | None, methodology_version: str | None
) -> uuid.UUID:
    """One quantification of one event under one methodology version."""
    return _derive("claim", event, methodology_id or "-", methodology_version or "-")


def decision_id(kind: str, claim: uuid.UUID, *qualifiers: object) -> uuid.UUID:
    """One dedupe decision about a claim (credit, reverse, duplicate, not_credited)."""
    return _derive("decision", kind, claim, *qualifiers)


def posting_id(decision: uuid.UUID, book: str) -> uuid.UUID:
    """One posting per decision and book: a decision can move each book only once."""
    return _derive("posting", decision, book)


def account_event_id(event: uuid.UUID) -> uuid.UUID:
    """One account event record per event: a resend or a redelivery is the same record."""
    return _derive("account_event", event)


def engagement_id(event: uuid.UUID) -> uuid.UUID:
    """One engagement record per event: a resend or a redelivery is the same record."""
    return _derive("engagement", event)


def dead_letter_id(topic: str, partition: int, offset: int) -> uuid.UUID:
    """One dead letter per consumed record, so a redelivered bad record is one entry."""
    return _derive("dead-letter", topic, partition, offset)
