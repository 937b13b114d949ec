"""The ledger's batch planner (pure: no PostgreSQL): chains, balances, heads,
period deltas and outbox rows for credits and a reversal, checked by hand."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta, timezone

from carbonledger.contracts.records import (
    Decision,
    DecisionKind,
    EventRef,
    LedgerPosting,
    SubjectKind,
)
from carbonledger.contracts.regions import load_regions
from carbonledger.demo.sample import subject_of
from carbonledger.services.dedupe.domain.person import PersonState, observe
from carbonledger.services.ledger.domain.chain import (
    ENTRY_FIELDS,
    GENESIS,
    ChainedPosting,
    Head,
    entry_hash,
    verify_chain,
)
from carbonledger.services.ledger.domain.planner import accounts_moved, plan, reversal_refused
from carbonledger.services.ledger.domain.postings import postings_for
from carbonledger.services.quantify.domain.quantify import quantify
from tests.factories import admitted, metro, raw, reversal
from tests.unit.test_quantify import SHIPPED

A, B = subject_of("+86-plan-a"), subject_of("+86-plan-b")
METRO, DISTRICT = "shenzhen-metro", "440305"
TRIP = 467_000  # 10 km by metro
# The hash of the batch's first posting (A's first credit, from genesis), as the
# ledger computed it before the planner existed: hashes must never change.
FIRST_HASH = "31228e97e9c3b5d04a68089e2dd245ea6e8f2fa1c7dfc4405e5770870a0eb1e4"


def decided(subject: str, event_id: str, hours_later: int, **data: str) -> Decision:
    event = metro(hours_later, id=event_id, subject=subject, **data)
    claim = quantify(admitted(raw(event), METRO), SHIPPED)
    (decision,) = observe(PersonState(subject), claim, watermark=claim.ended_at).decisions
    return decision


def batch() -> list[Decision]:
    """A credited twice (10 and 11 October), B once, A's first trip reversed, and a
    trip in Beijing no methodology covers (a decision, but no postings)."""
    a1 = decided(A, "plan-a1", 0)
    uncredited = decided(A, "plan-beijing", 2, data_region="110105")
    assert uncredited.kind is DecisionKind.NOT_CREDITED
    return [a1, decided(B, "plan-b1", 1), uncredited, decided(A, "plan-a2", 24), reversal(a1)]


def places(postings: tuple[ChainedPosting, ...], book: str, account: str) -> list[tuple[int, int]]:
    """Chain index and running balance of each of the account's postings, in order."""
    return [
        (p.chain_index, p.balance_mg) for p in postings if p.account == account and p.book == book
    ]


def test_a_batch_chains_each_account_with_running_balances() -> None:
    planned = plan(batch(), {}, load_regions())
    assert len(planned.postings) == 12  # four posting decisions, three books each
    assert places(planned.postings, "personal", A) == [(1, TRIP), (2, 2 * TRIP), (3, TRIP)]
    assert places(planned.postings, "personal", B) == [(1, TRIP)]
    for book, account in (("enterprise", METRO), ("government", DISTRICT)):
        assert places(planned.postings, book, account) == [
            (1, TRIP), (2, 2 * TRIP), (3, 3 * TRIP), (4, 2 * TRIP),
        ]  # fmt: skip
    for book, account in accounts_moved(batch()):
        chain = [p.entry() for p in planned.postings if (p.book, p.account) == (book, account)]
        assert chain[0]["prev_hash"] == GENESIS
        assert list(verify_chain(book, account, chain)) == []


def test_the_new_heads_are_each_accounts_last_posting() -> None:
    planned = plan(batch(), {}, load_regions())
    last = {(str(p.book), p.account): p for p in planned.postings}
    assert set(planned.heads) == set(accounts_moved(batch())) == set(last)
    assert {a: (h.index, h.balance_mg) for a, h in planned.heads.items()} == {
        ("personal", A): (3, TRIP),
        ("personal", B): (1, TRIP),
        ("enterprise", METRO): (4, 2 * TRIP),
        ("government", DISTRICT): (4, 2 * TRIP),
    }
    assert all(planned.heads[a].hash == p.hash for a, p in last.items())


def test_a_chain_continues_from_the_head_it_is_given() -> None:
    stored = Head(5, 1_000, "ab" * 32)
    planned = plan(batch(), {("personal", B): stored}, load_regions())
    (b1,) = [p for p in planned.postings if p.account == B]
    assert (b1.chain_index, b1.balance_mg, b1.prev_hash) == (6, 1_000 + TRIP, "ab" * 32)
    assert planned.heads[("personal", B)] == b1.head


def test_period_deltas_count_each_posting_in_its_day_month_and_roll_ups() -> None:
    deltas = plan(batch(), {}, load_regions()).period_deltas
    october, tenth, eleventh = date(2026, 10, 1), date(2026, 10, 10), date(2026, 10, 11)

    def moved(book: str, account: str, period: str, start: date) -> tuple[int, int]:
        return deltas[(book, account, period, start, "travel.metro", DISTRICT)]

    assert moved("personal", A, "month", october) == (TRIP, 3)
    assert moved("personal", A, "day", tenth) == (0, 2)  # the credit and its reversal
    assert moved("personal", A, "day", eleventh) == (TRIP, 1)
    assert moved("personal", B, "month", october) == (TRIP, 1)
    assert moved("enterprise", METRO, "month", october) == (2 * TRIP, 4)
    for region in (DISTRICT, "440300", "440000", "000000"):
        assert moved("government", region, "month", october) == (2 * TRIP, 4)
        assert moved("government", region, "day", tenth) == (TRIP, 3)
    # A month and two days per account (B: one day), the government's in four regions.
    assert len(deltas) == 3 + 2 + 3 + 4 * 3


def test_the_outbox_carries_each_posting_keyed_by_book_and_account() -> None:
    decisions = batch()
    planned = plan(decisions, {}, load_regions())
    assert [r.posting_id for r in planned.outbox] == [p.posting_id for p in planned.postings]
    kinds = {d.decision_id: d.kind for d in decisions}
    for row, posting in zip(planned.outbox, planned.postings, strict=True):
        assert row.key == f"{posting.book}:{posting.account}"
        published = LedgerPosting.model_validate_json(row.payload)
        assert published.decision_kind is kinds[posting.decision_id]
        assert published.event.id.startswith("plan-")
        assert {f: getattr(published, f) for f in ENTRY_FIELDS if hasattr(published, f)} == {
            f: getattr(posting, f) for f in ENTRY_FIELDS if hasattr(published, f)
        }
        assert (published.methodology and published.methodology.id) == posting.methodology_id


def test_planning_the_same_batch_twice_gives_equal_postings() -> None:
    heads = {("enterprise", METRO): Head(2, 5, "cd" * 32)}
    assert plan(batch(), heads, load_regions()) == plan(batch(), heads, load_regions())


def test_hashes_are_those_of_the_documented_dict_form() -> None:
    first = plan(batch(), {}, load_regions()).postings[0]
    assert (first.book, first.account, first.chain_index) == ("personal", A, 1)
    d = batch()[0]
    # The posting as the ledger always hashed it: content, then its place in the chain.
    today = {
        "posting_id": first.posting_id,
        "decision_id": d.decision_id,
        "claim_id": d.claim.claim_id,
        "book": "personal",
        "account": A,
        "amount_mg": TRIP,
        "behaviour_type": "travel.metro",
        "region": DISTRICT,
        "partner": METRO,
        "methodology_id": "shenzhen-public-transport",
        "methodology_version": "1",
        "behaviour_time": d.claim.ended_at,
        "chain_index": 1,
        "balance_mg": TRIP,
        "prev_hash": GENESIS,
    }
    assert first.hash == entry_hash(GENESIS, today) == FIRST_HASH
    # Whose behaviour it is stays outside the hashed text (old chains verify unchanged).
    assert first.entry() == today | {"hash": FIRST_HASH, "subject_kind": SubjectKind.PERSON}


def test_a_chained_posting_declares_its_fields_in_the_canonical_order() -> None:
    assert tuple(f.name for f in dataclasses.fields(ChainedPosting)) == ENTRY_FIELDS


def test_a_reversal_is_taken_only_of_a_credit_held_and_not_yet_reversed() -> None:
    credit = decided(A, "refuse-a1", 0)
    undo = reversal(credit)
    assert reversal_refused([credit, undo], {}, set()) is None  # credited in the same batch
    assert reversal_refused([undo], {credit.decision_id: credit.amount_mg}, set()) is None
    missing = reversal_refused([undo], {}, set())
    assert missing is not None and missing[0] is undo and "do not hold" in missing[1]
    again = reversal_refused([undo], {credit.decision_id: TRIP}, {credit.decision_id})
    assert again is not None and "already reversed" in again[1]
    twice = reversal_refused([credit, undo, undo.model_copy(update={"sequence": 9})], {}, set())
    assert twice is not None and twice[0].sequence == 9
    more = reversal_refused([undo], {credit.decision_id: credit.amount_mg - 1}, set())
    assert more is not None and "which credited" in more[1]


def test_statistics_count_each_level_once_and_a_reversal_takes_the_action_back() -> None:
    from carbonledger.services.ledger.domain.statistics import period_start, statistics_deltas

    event = metro(0, id="stats-1", subject=subject_of("+86-stats-plan"))
    claim = quantify(admitted(raw(event), "shenzhen-metro"), SHIPPED)
    (credit,) = observe(PersonState(claim.subject), claim, watermark=claim.ended_at).decisions
    figures, people = statistics_deltas([credit], load_regions())
    assert sorted({k[0] for k in figures}) == ["000000", "440000", "440300", "440305"]
    assert {v for v in figures.values()} == {(credit.amount_mg, 1)}
    # one row per period, each 4 levels x (the total, its category, its type, its partner)
    assert sorted(k[0] for k in people) == ["day", "month", "quarter", "year"]
    assert {k[2] for k in people} == {claim.subject}
    assert all(len(row) == 4 * 4 and set(row.values()) == {1} for row in people.values())
    assert {(b[1], b[2]) for row in people.values() for b in row} == {
        ("total", ""),
        ("category", "travel"),
        ("behaviour_type", claim.type),
        ("partner", "shenzhen-metro"),
    }
    back, gone = statistics_deltas([reversal(credit)], load_regions())
    assert set(back) == set(figures) and {v for v in back.values()} == {(-credit.amount_mg, -1)}
    assert set(gone) == set(people)
    assert all(gone[k] == {b: -1 for b in row} for k, row in people.items())
    assert period_start("quarter", date(2026, 8, 31)) == date(2026, 7, 1)
    assert period_start("year", date(2026, 8, 31)) == date(2026, 1, 1)


def odd(decision: Decision) -> Decision:
    """The decision with what escapes or formats differently: quotes, a backslash and
    characters beyond ASCII in the event's id, a unit, a time at +08:00 with
    microseconds, no methodology."""
    claim = decision.claim
    cst = timezone(timedelta(hours=8))
    ended = claim.ended_at.astimezone(cst).replace(microsecond=120)
    changed = claim.model_copy(
        update={
            "event": EventRef(source=claim.event.source, id='odd "id" \\ 中文 😀 /'),
            "subject_kind": SubjectKind.UNIT,
            "ended_at": ended,
            "methodology": None,
        }
    )
    return decision.model_copy(update={"claim": changed})


def test_postings_are_those_postings_for_makes_placed_in_their_chains() -> None:
    decisions = [*batch(), odd(batch()[0])]
    planned = plan(decisions, {}, load_regions())
    made = [(d, p) for d in decisions for p in postings_for(d)]
    assert len(made) == len(planned.postings)
    for (decision, to_post), chained in zip(made, planned.postings, strict=True):
        assert (chained.posting_id, chained.book, chained.account) == (
            to_post.posting_id, to_post.book, to_post.account,
        )  # fmt: skip
        # The content is the decision's, read here from the decision itself.
        claim, m = decision.claim, decision.claim.methodology
        assert (chained.decision_id, chained.claim_id, chained.amount_mg) == (
            decision.decision_id, claim.claim_id, decision.amount_mg,
        )  # fmt: skip
        assert (chained.behaviour_type, chained.region, chained.partner) == (
            claim.type, claim.region, claim.event.source,
        )  # fmt: skip
        assert (chained.methodology_id, chained.methodology_version) == (
            (m.id, m.version) if m else (None, None)
        )
        assert (chained.behaviour_time, chained.subject_kind) == (
            claim.ended_at, claim.subject_kind,
        )  # fmt: skip
        assert chained.hash == entry_hash(chained.prev_hash, chained.entry())


def published(decision: Decision, p: ChainedPosting) -> bytes:
    """The posting as the record's model publishes it: the oracle the planner's
    outbox JSON, written from pieces, must equal byte for byte."""
    claim = decision.claim
    record = LedgerPosting(
        posting_id=p.posting_id,
        decision_id=decision.decision_id,
        decision_kind=decision.kind,
        claim_id=claim.claim_id,
        event=claim.event,
        book=p.book,
        account=p.account,
        chain_index=p.chain_index,
        amount_mg=p.amount_mg,
        balance_mg=p.balance_mg,
        behaviour_type=p.behaviour_type,
        region=p.region,
        partner=p.partner,
        methodology=claim.methodology,
        behaviour_time=p.behaviour_time,
        prev_hash=p.prev_hash,
        hash=p.hash,
        subject_kind=p.subject_kind,
    )
    return record.to_bytes()


def test_the_outbox_payload_is_the_models_json_byte_for_byte() -> None:
    decisions = [*batch(), odd(batch()[1])]
    planned = plan(decisions, {}, load_regions())
    # In decision order, three books each (the odd one shares its ids with another).
    posting = [d for d in decisions for _ in postings_for(d)]
    rows = zip(posting, planned.postings, planned.outbox, strict=True)
    for decision, chained, row in rows:
        assert row.payload == published(decision, chained)
