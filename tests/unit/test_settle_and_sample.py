from datetime import UTC, datetime

from carbonledger.contracts.partners import load_registry
from carbonledger.contracts.settings import Settings
from carbonledger.sample import SAMPLE_FILE, generate
from carbonledger.settle import settle, source_of
from services.quantify.adapters.registry_files import load_methodologies


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


def test_sample_settles_to_equal_books_with_replays_and_rejections() -> None:
    lines = SAMPLE_FILE.read_bytes().splitlines()
    result = _settle(lines).as_json()
    totals = {book: sum(result[book].values()) for book in ("personal", "enterprise", "government")}
    assert len(set(totals.values())) == 1 and totals["personal"] > 0
    assert result["replays"] == 150
    assert result["rejected"] == 11
    assert result["credited"] + result["not_credited"] + result["rejected"] + result[
        "replays"
    ] == len(lines)
    assert result["postings"] == 3 * result["credited"]


def test_settle_is_independent_of_order_and_replays() -> None:
    lines = SAMPLE_FILE.read_bytes().splitlines()[:400]
    forward = _settle(lines).as_json()
    backward = _settle(lines[::-1] + lines[:50]).as_json()
    for book in ("personal", "enterprise", "government"):
        assert forward[book] == backward[book]
