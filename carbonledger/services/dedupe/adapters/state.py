"""Dedupe's state as the stream keeps it: one mapping of bytes per claims partition
(the runtime's changelog-backed table, reached through the batch's open state
transaction), with every key and encoding in one place.

Keys, all in the partition of the claims they come from (a running stage restores
state written by earlier versions, so they do not change):

- `<subject>`: the person's state, JSON (`encode_person`);
- `~watermark/<partition>`: the newest behaviour end seen, ISO 8601;
- `~swept/<partition>`: the last local day swept for expired people, ISO date;
- `~expiry/<partition>/<day>/<bucket>`: JSON list of the people who may expire
  on that day; a day's list is split in buckets so that listing one person
  rewrites a small value.
"""

from __future__ import annotations

import zlib
from collections.abc import MutableMapping
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import orjson

from carbonledger.contracts.catalogue import local_day_bounds
from carbonledger.contracts.records import DecisionKind, ReductionClaim
from carbonledger.services.dedupe.domain.person import (
    Entry,
    PersonState,
    Position,
    complete_positions,
)
from carbonledger.services.dedupe.domain.resolve import Status

BUCKETS = 64
KNOWN_LISTINGS = 4096  # expiry listing buckets kept decoded beside their bytes


class PartitionTransaction(Protocol):
    """Mappings of bytes per partition whose writes are made durable (StateTransaction)."""

    def partition(self, number: int) -> MutableMapping[bytes, bytes]: ...


class TransactionalTable(Protocol):
    """State reached only through its open transaction (ChangelogTable)."""

    def current(self) -> PartitionTransaction: ...


class ChangelogState:
    """The Dedupe use case's StateStore over the stream's changelog table, in the
    transaction of the batch being worked on.

    The bytes in the table are the state. What is known of some of them is kept
    beside them: the decoded expiry listings (a listing's bytes decoded and encoded
    again for every person listed were 6% of dedupe's CPU), each valid only for the
    very bytes object it was made from (a discarded transaction or a restore leaves
    other bytes in the table, and the decoding is no longer used)."""

    def __init__(self, table: TransactionalTable) -> None:
        self.table = table
        self.listings: dict[bytes, tuple[bytes, set[str]]] = {}  # oldest first
        self.keys: dict[int, tuple[bytes, bytes]] = {}  # watermark and swept keys

    def partition(self, number: int) -> PartitionPeople:
        return PartitionPeople(self.table.current().partition(number), number, self)

    def partition_keys(self, number: int) -> tuple[bytes, bytes]:
        keys = self.keys.get(number)
        if keys is None:
            keys = self.keys[number] = (
                f"~watermark/{number}".encode(),
                f"~swept/{number}".encode(),
            )
        return keys


def _keep_recent(cache: dict[Any, Any], key: Any, value: Any, size: int) -> None:
    cache.pop(key, None)
    cache[key] = value
    while len(cache) > size:
        del cache[next(iter(cache))]


class PartitionPeople:
    """One partition's people, watermark and expiry listing, as its mapping holds them."""

    def __init__(
        self, mapping: MutableMapping[bytes, bytes], number: int, known: ChangelogState
    ) -> None:
        self.mapping, self.number, self.known = mapping, number, known
        self.watermark_key, self.swept_key = self.known.partition_keys(number)

    def watermark(self) -> datetime | None:
        raw = self.mapping.get(self.watermark_key)
        return datetime.fromisoformat(raw.decode()) if raw is not None else None

    def keep_watermark(self, mark: datetime) -> None:
        self.mapping[self.watermark_key] = mark.isoformat().encode()

    def person(self, subject: str) -> PersonState | None:
        raw = self.mapping.get(subject.encode())
        return decode_person(raw) if raw is not None else None

    def keep_person(self, state: PersonState) -> int:
        stored = encode_person(state)
        self.mapping[state.subject.encode()] = stored
        return len(stored)

    def forget_person(self, subject: str) -> None:
        del self.mapping[subject.encode()]

    def swept_until(self) -> date | None:
        raw = self.mapping.get(self.swept_key)
        return date.fromisoformat(raw.decode()) if raw is not None else None

    def keep_swept_until(self, day: date) -> None:
        self.mapping[self.swept_key] = day.isoformat().encode()

    def list_for_expiry(self, day: date, subject: str) -> None:
        key = self._expiry_key(day, zlib.crc32(subject.encode()) % BUCKETS)
        raw = self.mapping.get(key)
        known = self.known.listings.get(key)
        if raw is not None and known is not None and known[0] is raw:
            # Bytes this adapter wrote, orjson's of a list of strings: the list with
            # one more is the same bytes with it appended.
            members = known[1]
            if subject in members:
                return
            stored = raw[:-1] + b"," + orjson.dumps(subject) + b"]"
        else:
            listed: list[str] = orjson.loads(raw) if raw is not None else []
            members = set(listed)
            if subject in members:
                return
            stored = orjson.dumps([*listed, subject])
        members.add(subject)
        self.mapping[key] = stored
        _keep_recent(self.known.listings, key, (stored, members), KNOWN_LISTINGS)

    def take_expiring(self, day: date) -> list[str]:
        subjects: list[str] = []
        # A partition's first sweep reads 400 days of buckets: the day's part is made once.
        day_key = self._expiry_day(day)
        for bucket in range(BUCKETS):
            key = day_key + b"%d" % bucket
            raw = self.mapping.get(key)
            if raw is not None:
                subjects.extend(orjson.loads(raw))
                del self.mapping[key]
                self.known.listings.pop(key, None)
        return subjects

    def _expiry_day(self, day: date) -> bytes:
        return f"~expiry/{self.number}/{day.isoformat()}/".encode()

    def _expiry_key(self, day: date, bucket: int) -> bytes:
        return self._expiry_day(day) + b"%d" % bucket


# --- a person's state, encoded ------------------------------------------------------


def encode_person(state: PersonState) -> bytes:
    """A person's state as JSON. Each claim is pydantic's own JSON of it
    (`to_bytes`, what the topics carry, written by pydantic's serializer in one
    step): the values of its model_dump, which decode_person validates (orjson and
    pydantic could differ only in the digits of a float, never in its value)."""
    return orjson.dumps(
        {
            "subject": state.subject,
            "claims": {k: orjson.Fragment(c.to_bytes()) for k, c in state.claims.items()},
            "positions": {k: _position_doc(p) for k, p in state.positions.items()},
            "caused": state.caused,
            "superseded": {k: orjson.Fragment(c.to_bytes()) for k, c in state.superseded.items()},
        }
    )


def decode_person(raw: bytes) -> PersonState:
    """A person's state, as any version of dedupe stored it (the first kept claims only)."""
    doc = orjson.loads(raw)
    state = PersonState(
        doc["subject"],
        {k: as_now_defined(ReductionClaim.model_validate(c)) for k, c in doc["claims"].items()},
        {k: _position_from(p) for k, p in doc.get("positions", {}).items()},
        {k: [(c, s) for c, s in v] for k, v in doc.get("caused", {}).items()},
        {k: ReductionClaim.model_validate(c) for k, c in doc.get("superseded", {}).items()},
    )
    return complete_positions(state)


def as_now_defined(claim: ReductionClaim) -> ReductionClaim:
    """A claim stored by an earlier version, as the catalogue now defines it, so that
    it still meets the new claims of its activity: food.no_cutlery's class was
    `order`, and a dated behaviour's interval ended at the next midnight (its cap
    day was the day after)."""
    update: dict[str, Any] = {}
    if claim.type == "food.no_cutlery" and claim.activity_class == "order":
        update["activity_class"] = "no_cutlery"
    day = claim.data.get("date")
    if isinstance(day, str) and "started_at" not in claim.data:
        first, last = local_day_bounds(day)
        if claim.ended_at == first + timedelta(days=1):
            update["ended_at"] = last
    return claim.model_copy(update=update) if update else claim


def _position_doc(p: Position) -> dict[str, Any]:
    return {
        "status": p.status.value,
        "amount_mg": p.amount_mg,
        "credit": p.credit,
        "winner": p.winner,
        "credit_claim": p.credit_claim,
        "history": [
            [e.kind.value, e.amount_mg, e.winner, e.reverses, e.reason, e.detail, e.claim]
            for e in p.history
        ],
    }


def _position_from(doc: dict[str, Any]) -> Position:
    return Position(
        Status(doc["status"]),
        doc["amount_mg"],
        doc["credit"],
        doc["winner"],
        [Entry(DecisionKind(h[0]), *h[1:]) for h in doc["history"]],
        doc.get("credit_claim"),
    )
