"""What the outbox holds: postings committed with the books, waiting to be published
on ledger.postings (keyed by `book:account`), and how a batch of them is handed over."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OutboxPosting:
    id: int
    key: str  # book:account
    payload: bytes


Publish = Callable[[list[OutboxPosting]], None]  # returns once the broker acknowledged all
