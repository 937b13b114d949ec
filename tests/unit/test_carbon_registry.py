"""The carbon asset registry's rules (services/ledger/domain/registry): serials,
lowest-first moves and block splitting, issuance arithmetic and periods, the
largest-remainder allocation and the registry's hash chain."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonledger.services.ledger.domain.registry.holdings import (
    Block,
    Holdings,
    Moved,
    Refused,
    choose,
    first_retired,
)
from carbonledger.services.ledger.domain.registry.issuance import (
    Issued,
    Period,
    Vintage,
    adjustment,
    outstanding_shortfall,
    period_refused,
    units_of,
)
from carbonledger.services.ledger.domain.registry.proceeds import (
    allocate,
    largest_remainder,
    units_by_issuance,
)
from carbonledger.services.ledger.domain.registry.serials import UNIT_MG, Range, Serial
from carbonledger.services.ledger.domain.registry.transactions import (
    Content,
    Kind,
    Transaction,
    parse_moved,
    replay,
    verify_chain,
)
from carbonledger.services.ledger.registry_service import sign_off_time

ISSUANCE = uuid.UUID(int=1)
AT = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def test_a_serial_reads_back_whatever_hyphens_the_methodology_has() -> None:
    s = Serial("CIER", "440305", "shenzhen-public-transport", 2026, Range(1, 8026))
    assert str(s) == "CN-CIER-440305-shenzhen-public-transport-2026-000000001-000008026"
    assert Serial.parse(str(s)) == s
    assert str(s.part(Range(7, 7))).endswith("-2026-000000007-000000007")
    with pytest.raises(ValueError, match="not a serial"):
        Serial.parse("CN-CIER-440305-2026-1-2")
    with pytest.raises(ValueError):
        Range(5, 4)


def test_a_transfer_takes_the_lowest_serials_and_splits_the_block_it_ends_in() -> None:
    h = Holdings()
    h.issue("CIER", 10, ISSUANCE, "holding-440305")
    second = uuid.UUID(int=2)
    h.issue("CIER", 5, second, "holding-440305")
    moved = h.transfer("holding-440305", "buyer", 12)
    assert moved == [
        Moved("CIER", Range(1, 10), ISSUANCE),
        Moved("CIER", Range(11, 12), second),
    ]
    assert [(b.range, b.account) for b in h.blocks] == [
        (Range(1, 10), "buyer"),
        (Range(11, 12), "buyer"),
        (Range(13, 15), "holding-440305"),
    ]
    with pytest.raises(Refused, match="holds 3 units"):
        h.transfer("holding-440305", "buyer", 4)


def test_retired_units_never_move_and_a_retired_serial_is_found() -> None:
    h = Holdings()
    h.issue("CIER", 10, ISSUANCE, "buyer")
    retirement = uuid.UUID(int=9)
    assert h.retire("buyer", 3, retirement, within=("CIER", Range(4, 8))) == [
        Moved("CIER", Range(4, 6), ISSUANCE)
    ]
    assert h.transfer("buyer", "other", 7) == [
        Moved("CIER", Range(1, 3), ISSUANCE),
        Moved("CIER", Range(7, 10), ISSUANCE),
    ]
    found = first_retired(h.of("buyer"), "CIER", Range(5, 5))
    assert found is not None and found.retired_by == retirement
    with pytest.raises(Refused, match="holds 0 units"):
        choose(h.of("buyer"), 1)
    with pytest.raises(Refused, match="retired"):
        h.move("buyer", [Moved("CIER", Range(5, 5), ISSUANCE)], "other")


def test_issuance_takes_the_floor_and_carries_the_exact_remainder() -> None:
    first = units_of(8026 * UNIT_MG + 123_456_789, 0, 0)
    assert (first.units, first.carried_mg) == (8026, 123_456_789)
    second = units_of(900_000_000, first.carried_mg, 0)
    assert (second.units, second.carried_mg) == (1, 23_456_789)
    short = units_of(UNIT_MG // 2, 0, -2 * UNIT_MG)
    assert (short.units, short.carried_mg, short.shortfall_mg) == (0, -3 * UNIT_MG // 2, 1500000000)


def test_a_shortfall_is_deducted_once_and_given_back_at_most_to_the_issued_net() -> None:
    v = Vintage(ISSUANCE, net_mg=10 * UNIT_MG, accounted_mg=10 * UNIT_MG)
    assert adjustment(v, 9 * UNIT_MG) == -UNIT_MG
    deducted = replace(v, accounted_mg=9 * UNIT_MG)
    assert adjustment(deducted, 9 * UNIT_MG) == 0
    assert adjustment(deducted, 12 * UNIT_MG) == UNIT_MG  # back, not the late credit
    assert outstanding_shortfall(300, [-UNIT_MG]) == UNIT_MG - 300
    assert outstanding_shortfall(300, [0]) == 0


def test_periods_repeat_overlap_nest_and_stay_in_one_year() -> None:
    october = Period(date(2026, 10, 1), date(2026, 10, 31))
    done = [Issued(ISSUANCE, "440305", "m", october)]
    nested = {"440300": frozenset({"440300", "440305", "440000"})}
    assert "already issued" in str(period_refused("440305", "m", october, done, {}))
    late = Period(date(2026, 10, 31), date(2026, 11, 30))
    assert "overlaps" in str(period_refused("440305", "m", late, done, {}))
    assert "overlaps" in str(period_refused("440300", "m", october, done, nested))
    assert period_refused("440305", "other", october, done, {}) is None
    assert (
        period_refused("440305", "m", Period(date(2026, 11, 1), date(2026, 11, 30)), done, {})
        is None
    )
    spanning = Period(date(2026, 12, 1), date(2027, 1, 31))
    assert "one calendar year" in str(period_refused("440305", "m", spanning, [], {}))


def test_largest_remainder_sums_exactly_and_breaks_ties_by_account() -> None:
    assert largest_remainder(100, {"b": 1, "a": 1, "c": 1}) == {"a": 34, "b": 33, "c": 33}
    assert largest_remainder(0, {"a": 5}) == {"a": 0}
    with pytest.raises(ValueError):
        largest_remainder(5, {"a": 0})


def test_a_sale_of_units_with_no_contributor_is_refused_not_left_unallocated() -> None:
    snapshot = {"b": ("person", 3 * UNIT_MG), "a": ("unit", UNIT_MG)}
    assert allocate(snapshot, 101) == {"a": ("unit", 25), "b": ("person", 76)}
    assert allocate({}, 0) == {}  # a gift at price 0 pays no one, and owes no one
    with pytest.raises(Refused, match="no contributor to share 100 fen"):
        allocate({}, 100, ISSUANCE)
    runs = [Moved("CIER", Range(1, 3), ISSUANCE), Moved("CIER", Range(7, 7), ISSUANCE)]
    assert units_by_issuance(runs) == {ISSUANCE: 4}


@given(
    st.integers(min_value=0, max_value=10**15),
    st.dictionaries(
        st.text("abcdef", min_size=1, max_size=4), st.integers(1, 10**12), min_size=1, max_size=30
    ),
)
def test_allocations_always_sum_to_the_proceeds_and_stay_within_one_fen_of_pro_rata(
    total: int, weights: dict[str, int]
) -> None:
    shares = largest_remainder(total, weights)
    assert sum(shares.values()) == total
    whole = sum(weights.values())
    for key, w in weights.items():
        assert total * w // whole <= shares[key] <= total * w // whole + 1


def _chain(contents: list[Content]) -> list[Transaction]:
    chain, index, prev = [], 0, "0" * 64
    for c in contents:
        tx = Transaction.after(index, prev, c)
        chain.append(tx)
        index, prev = tx.chain_index, tx.hash
    return chain


def test_the_chain_names_an_altered_transaction_once_and_replay_rebuilds_holdings() -> None:
    issue = Content(
        uuid.uuid4(),
        Kind.ISSUE,
        "holding-440305",
        AT,
        moved=(Moved("CIER", Range(1, 5), ISSUANCE),),
    )
    sale = Content(
        uuid.uuid4(), Kind.TRANSFER, "holding-440305", AT, "buyer",
        parse_moved(f"CIER:{ISSUANCE}:1-2"), {"price_fen": 3500, "venue": "广州碳排放权交易所"},
    )  # fmt: skip
    chain = _chain([issue, sale])
    assert list(verify_chain(chain)) == []
    holdings, problems = replay(chain)
    assert problems == [] and [b.account for b in holdings.blocks] == ["buyer", "holding-440305"]
    altered = replace(chain[1], content=replace(sale, details={"price_fen": 1}))
    assert list(verify_chain([chain[0], altered])) == [
        f"registry transaction 2 ({sale.tx_id}): hash does not match the transaction's content"
    ]
    resold = Content(uuid.uuid4(), Kind.TRANSFER, "nobody", AT, "buyer", sale.moved)
    assert "not in one held block" in replay(_chain([issue, resold]))[1][0]


@st.composite
def operations(draw: st.DrawFn) -> list[tuple[str, int, int, int]]:
    kinds = st.sampled_from(["issue", "transfer", "retire"])
    return draw(
        st.lists(
            st.tuples(kinds, st.integers(0, 3), st.integers(0, 3), st.integers(1, 40)), max_size=40
        )
    )


@settings(max_examples=150, deadline=None)
@given(operations())
def test_random_issue_transfer_retire_sequences_keep_every_unit_in_one_place(
    ops: list[tuple[str, int, int, int]],
) -> None:
    accounts = ["holding-440305", "a", "b", "c"]
    h = Holdings()
    retired: dict[int, str] = {}  # serial -> its account when retired
    issued = 0
    held: dict[str, int] = dict.fromkeys(accounts, 0)
    contributors: dict[uuid.UUID, dict[str, int]] = {}  # each issuance's snapshot (mg)
    for n, (kind, source, target, units) in enumerate(ops):
        try:
            if kind == "issue":
                issuance = uuid.UUID(int=n + 1)
                h.issue("CIER", units, issuance, accounts[source])
                contributors[issuance] = {f"p{i}": (n + 1) * (i + 3) ** 3 for i in range(n % 5 + 1)}
                issued += units
                held[accounts[source]] += units
            elif kind == "transfer":
                sold = h.transfer(accounts[source], accounts[target], units)
                price = 3464 + n
                paid = sum(
                    sum(largest_remainder(price * m.range.size, contributors[m.issuance]).values())
                    for m in sold
                )
                assert paid == price * units  # a sale's proceeds allocated exactly
                held[accounts[source]] -= units
                held[accounts[target]] += units
            else:
                for m in h.retire(accounts[source], units, uuid.UUID(int=10_000 + n)):
                    retired.update(
                        dict.fromkeys(range(m.range.first, m.range.last + 1), accounts[source])
                    )
        except Refused:
            pass  # more than held: refused, and nothing changed
        seen: dict[int, Block] = {}
        for b in h.blocks:
            for serial in range(b.range.first, b.range.last + 1):
                assert serial not in seen, f"serial {serial} in two places"
                seen[serial] = b
        assert sorted(seen) == list(range(1, issued + 1))
        for serial, account in retired.items():
            assert seen[serial].retired_by is not None and seen[serial].account == account
        for account in accounts:
            assert sum(b.units for b in h.of(account)) == held[account]


def test_the_verifiers_sign_off_time_is_now_by_default_china_time_without_a_zone() -> None:
    before = datetime.now(UTC)
    assert before <= sign_off_time(None) <= datetime.now(UTC)
    naive = datetime(2026, 11, 1, 10, 0)
    assert sign_off_time(naive) == datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    with pytest.raises(Refused, match="in the future"):
        sign_off_time(datetime(2999, 1, 1, tzinfo=UTC))
