"""The generated domain pages describe the catalogue and the registry as shipped."""

from __future__ import annotations

import re

import pytest

from carbonledger.contracts.catalogue import CATALOGUE, Category
from carbonledger.contracts.methodology_files import load_methodologies
from carbonledger.ops.domain_docs import (
    DOCS_DIR,
    SHIPPED_REGISTRY,
    MarkerError,
    catalogue_table,
    render,
    rendered_pages,
)

SHIPPED = load_methodologies(SHIPPED_REGISTRY)


def _rows(page: str) -> list[list[str]]:
    """The cells of every table row of a docs page."""
    text = (DOCS_DIR / page).read_text(encoding="utf-8")
    return [
        [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        for line in text.splitlines()
        if line.startswith("| ")
    ]


def test_generated_tables_are_current() -> None:
    for path, text in rendered_pages().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} is stale: run `python -m carbonledger.ops.domain_docs`"
        )


def test_every_shipped_factor_is_documented_with_its_value_and_source() -> None:
    rows = _rows("factors.md")
    for m in SHIPPED:
        for factor in (*m.factors, *m.parameters):
            value = "unset" if factor.value is None else format(factor.value, "f")
            matching = [
                r
                for r in rows
                if r[0] == f"`{m.id}@{m.version}`" and f"`{factor.name}`" in r and value in r
            ]
            assert matching, f"{m.id}@{m.version} {factor.name} = {value} not in factors.md"
            assert factor.source in matching[0], f"{factor.name}: source not documented"


def test_every_catalogue_type_is_documented_with_its_category_class_and_key() -> None:
    rows = {r[0]: r for r in _rows("catalogue.md")}
    for behaviour in CATALOGUE.values():
        row = rows[f"`{behaviour.type}`"]
        assert row[2] == f"`{behaviour.category.value}`"
        assert row[3] == f"`{behaviour.activity_class}`"
        assert ("(**global**)" in row[6]) is behaviour.global_key, behaviour.type
        for spec in behaviour.fields:
            assert f"`{spec.name}`" in row[4] + row[5], f"{behaviour.type}.{spec.name}"


def test_a_type_without_an_active_methodology_reads_none_yet() -> None:
    only_inactive = [m for m in SHIPPED if not m.active]
    rows = catalogue_table(only_inactive).splitlines()[2:]
    assert rows and all(row.endswith("| none yet |") for row in rows)


def test_render_replaces_only_between_the_markers() -> None:
    page = "intro\n<!-- generated:t begin (x) -->\nold\n<!-- generated:t end -->\noutro\n"
    assert render(page, "t", "new") == page.replace("old", "new")
    assert render(render(page, "t", "new"), "t", "new") == page.replace("old", "new")
    with pytest.raises(MarkerError):
        render(page, "other", "new")


def test_the_partners_overview_lists_every_type_under_its_category() -> None:
    rows = {r[1]: r for r in _rows("partners.md") if len(r) == 6 and r[1].startswith("`")}
    for behaviour in CATALOGUE.values():
        row = rows[f"`{behaviour.type}`"]
        assert row[0] == behaviour.category.value
        assert ("(**global**)" in row[5]) is behaviour.global_key, behaviour.type
    categories = [r[0] for r in rows.values()]
    assert categories == sorted(categories, key=[c.value for c in Category].index)
