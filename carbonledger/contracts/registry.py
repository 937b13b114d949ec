"""What the carbon asset registry publishes on `registry.events` (DOMAIN.md §13):
every registry transaction, and every allocation of a sale's proceeds to a
contributor, for incentive systems (who pay them out as tickets, points or cash).

Two record types share the topic; a subscriber tells them by `schema`. Delivery is
at least once: a subscriber is idempotent by `tx_id` and by `allocation_id`.
Transactions are keyed `registry` (one partition, so in chain order); allocations by
the contributor's personal-book account.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from carbonledger.contracts.records import Count, Id, Moment, Record, SubjectKind

TRANSACTION_KEY = "registry"
CURRENCY: Literal["CNY"] = "CNY"  # amounts in fen (0.01 yuan), integers


class RegistryTransaction(Record):
    """One registry transaction: an account opened, an issuance, a transfer (sale) or a
    retirement, with its place in the registry's hash chain."""

    schema_: Literal["carbonledger.registry_transaction/1"] = Field(
        "carbonledger.registry_transaction/1", alias="schema"
    )
    tx_id: UUID
    chain_index: Count
    kind: Literal["open", "issue", "transfer", "retire"]
    account: Id
    counterparty: Id | None = None
    units: Count
    serials: list[str] = Field(description="the serial blocks moved, lowest first")
    details: dict[str, Any] = Field(
        description="issue: region, methodology, period, vintage, figures in mg, verifier; "
        "transfer: price_fen, venue, date; retire: beneficiary, purpose, emissions period"
    )
    occurred_at: Moment
    prev_hash: str
    hash: str


class ProceedsAllocation(Record):
    """One contributor's share of a sale's proceeds: a posting in the proceeds book
    (money, never tonnes), allocated by the largest remainder method."""

    schema_: Literal["carbonledger.proceeds_allocation/1"] = Field(
        "carbonledger.proceeds_allocation/1", alias="schema"
    )
    allocation_id: UUID
    tx_id: UUID = Field(description="the sale (a transfer from a holding account)")
    issuance_id: UUID
    account: Id = Field(description="the contributor's personal-book account (subject)")
    subject_kind: SubjectKind
    amount_fen: Count
    currency: Literal["CNY"] = CURRENCY
    sale_date: date
    occurred_at: Moment
