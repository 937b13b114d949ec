"""What the outbox holds: postings committed with the books, waiting to be published
on ledger.postings (keyed by `book:account`), and registry events committed with the
registry (on registry.events), and how a batch of them is handed over."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from carbonledger.contracts import topics


@dataclass(frozen=True, slots=True)
class OutboxPosting:
    id: int
    key: str  # book:account (a registry event: `registry` or the contributor's account)
    payload: bytes
    topic: str = topics.POSTINGS


Publish = Callable[[list[OutboxPosting]], None]  # returns once the broker acknowledged all
