"""Hash chains and period roll-ups of the ledger (pure rules)."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from datetime import UTC, date, datetime
from typing import Any

from carbonledger.contracts.records import Book
from carbonledger.contracts.regions import load_regions
from carbonledger.services.ledger.domain.aggregates import period_deltas, periods, rollup_accounts
from carbonledger.services.ledger.domain.chain import (
    GENESIS,
    ChainedPosting,
    Head,
    Shared,
    entry_hash,
    verify_chain,
)


def content(amount: int, n: int = 0) -> Shared:
    """A decision's content, as `postings_for` makes it for its postings."""
    return Shared(
        decision_id=uuid.uuid5(uuid.NAMESPACE_URL, f"d{n}"),
        claim_id=uuid.uuid5(uuid.NAMESPACE_URL, f"c{n}"),
        amount_mg=amount,
        behaviour_type="travel.metro",
        region="440305",
        partner="shenzhen-metro",
        methodology_id="shenzhen-public-transport",
        methodology_version="1",
        behaviour_time=datetime(2026, 10, 31, 17, 30, tzinfo=UTC),
    )


def postings_of(amounts: list[int]) -> list[ChainedPosting]:
    """One government account's postings of these amounts, each placed after the last."""
    head, chain = Head(), []
    for n, a in enumerate(amounts):
        posting_id = uuid.uuid5(uuid.NAMESPACE_URL, f"p{n}")
        posting = content(a, n).placed(head, posting_id, Book.GOVERNMENT, "440305")
        head = posting.head
        chain.append(posting)
    return chain


def chain_of(amounts: list[int]) -> list[dict[str, Any]]:
    return [p.entry() for p in postings_of(amounts)]


def test_a_chain_links_each_posting_to_the_one_before_with_running_balances() -> None:
    chain = chain_of([500, 700, -500])
    assert chain[0]["prev_hash"] == GENESIS
    assert [e["chain_index"] for e in chain] == [1, 2, 3]
    assert [e["balance_mg"] for e in chain] == [500, 1200, 700]
    assert all(
        later["prev_hash"] == earlier["hash"] for earlier, later in itertools.pairwise(chain)
    )
    assert list(verify_chain("government", "440305", chain)) == []


def test_the_hash_is_the_documented_formula() -> None:
    e = chain_of([500])[0]
    canonical = "|".join(
        [
            str(e["posting_id"]), str(e["decision_id"]), str(e["claim_id"]), "government",
            "440305", "1", "500", "500", "travel.metro", "440305", "shenzhen-metro",
            "shenzhen-public-transport", "1", "2026-10-31T17:30:00.000000Z",
        ]
    )  # fmt: skip

    assert e["hash"] == hashlib.sha256(f"{GENESIS}\n{canonical}".encode()).hexdigest()
    assert e["hash"] == entry_hash(GENESIS, e)


def test_an_altered_amount_is_reported_at_its_posting_only_once() -> None:
    chain = chain_of([500, 700, 900])
    chain[1] = {**chain[1], "amount_mg": 7000}
    breaks = list(verify_chain("government", "440305", chain))
    assert {b.posting_id for b in breaks} == {str(chain[1]["posting_id"])}


def test_a_removed_posting_breaks_the_chain() -> None:
    chain = chain_of([500, 700, 900])
    del chain[1]
    assert any("index" in b.problem for b in verify_chain("government", "440305", chain))


def test_a_stretch_verifies_from_its_anchor() -> None:
    chain = chain_of([500, 700, 900, 100])
    start = Head(2, chain[1]["balance_mg"], chain[1]["hash"])
    assert list(verify_chain("government", "440305", chain[2:], start)) == []


def test_periods_are_china_standard_time_days_and_months() -> None:
    # 17:30 UTC on 31 October is 01:30 on 1 November in Shenzhen.
    day, month = periods(datetime(2026, 10, 31, 17, 30, tzinfo=UTC))
    assert day == ("day", date(2026, 11, 1))
    assert month == ("month", date(2026, 11, 1))


def test_a_district_posting_rolls_up_to_city_province_and_nation_and_nowhere_else() -> None:
    regions = load_regions()
    assert rollup_accounts("government", "440305", regions) == (
        "440305",
        "440300",
        "440000",
        "000000",
    )
    assert rollup_accounts("personal", "abc", regions) == ("abc",)
    deltas = period_deltas(postings_of([500, 700]), regions)
    months = {k[1]: v for k, v in deltas.items() if k[2] == "month"}
    assert months == {a: (1200, 2) for a in ("440305", "440300", "440000", "000000")}
