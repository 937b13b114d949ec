import random
from datetime import UTC, datetime

from carbonledger.contracts.envelope import source_of
from carbonledger.contracts.methodology_files import load_methodologies
from carbonledger.contracts.partners import load_registry
from carbonledger.contracts.settings import Settings
from carbonledger.demo.sample import SAMPLE_FILE, generate
from carbonledger.reference.settle import settle


def _settle(lines: list[bytes]):  # type: ignore[no-untyped-def]
    s = Settings()
    return settle(
        ((source_of(x), x) for x in lines),
        load_registry(s.partners_file),
        load_methodologies(s.methodology_dir),
        datetime(2026, 11, 22, tzinfo=UTC),
    )


def test_bundled_sample_is_what_the_generator_makes() -> None:
    assert SAMPLE_FILE.read_text(encoding="utf-8").splitlines() == generate()


def test_sample_settles_to_equal_books_with_every_record_accounted_for() -> None:
    lines = SAMPLE_FILE.read_bytes().splitlines()
    result = _settle(lines).as_json()
    totals = {book: sum(result[book].values()) for book in ("personal", "enterprise", "government")}
    assert len(set(totals.values())) == 1 and totals["personal"] > 0
    assert (result["replays"], result["rejected"], result["late"]) == (150, 11, 0)
    # Capped: hankou-bank's steps (200 g a day) and Ant Forest's offline payments (10
    # a day: one shopper's 11th and 12th are capped to nothing).
    assert result["duplicates"] > 500 and result["capped"] > 50
    assert result["capped_to_zero"] == 2
    outcomes = ("credited", "duplicates", "not_credited", "capped_to_zero", "rejected", "replays")
    engagements = sum(result["engagements"].values())
    assert engagements == 6  # five sign-ins and a quiz: points only, never in a book
    accounts = result["account_events"]  # 中信's customers' consent, two sides of a link
    assert accounts == {"consent.granted": 4, "consent.withdrawn": 1, "family.linked": 2}
    assert sum(result[k] for k in outcomes) + engagements + sum(accounts.values()) == len(lines)
    # A company's fleet charging with 浦发 is a unit, reported apart from people.
    assert len(result["unit_accounts"]) == 1 and result["personal_by_kind"]["unit"] > 0


def test_settle_is_independent_of_order_and_replays() -> None:
    lines = SAMPLE_FILE.read_bytes().splitlines()
    forward = _settle(lines).as_json()
    for seed in range(3):
        shuffled = lines[:]
        random.Random(seed).shuffle(shuffled)
        again = _settle(shuffled + shuffled[:300]).as_json()
        for book in ("personal", "enterprise", "government"):
            assert again[book] == forward[book]
        assert again["duplicates"] == forward["duplicates"]
