"""The generated parts of docs/catalogue.md and docs/factors.md.

The behaviour catalogue and the shipped methodology registry are data in the
code; the tables that describe them are rendered from that data, so the
documentation cannot drift from what ingest and quantify apply. Each table sits
between two markers in its page and the prose around it is written by hand:

    <!-- generated:NAME begin ... -->
    ...
    <!-- generated:NAME end -->

`python -m carbonledger.ops.domain_docs` rewrites the tables; a unit test fails
when a committed page differs from what this module renders.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

from carbonledger.contracts.catalogue import (
    CATALOGUE,
    MAX_PERIOD_DAYS,
    BehaviourType,
    FieldSpec,
    Kind,
)
from carbonledger.contracts.methodology import Factor, Methodology
from carbonledger.contracts.methodology_files import load_methodologies
from carbonledger.contracts.settings import ROOT, Settings

DOCS_DIR = ROOT / "docs"
# The registry as shipped, not whatever CARBON_METHODOLOGY_DIR points at here.
SHIPPED_REGISTRY = Path(Settings.model_fields["methodology_dir"].default)


class MarkerError(ValueError):
    """A page lacks the begin/end markers of a generated table."""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _table(header: list[str], rows: Iterable[list[str]]) -> str:
    lines = [_row(header), _row("---" for _ in header), *(_row(r) for r in rows)]
    return "\n".join(lines)


# --- the behaviour catalogue -------------------------------------------------


def _bounds(spec: FieldSpec) -> str:
    low, high = spec.minimum, spec.maximum
    if low is None and high is None:
        return ""
    if spec.exclusive_minimum:
        return f"> {low}, ≤ {high}" if high is not None else f"> {low}"
    if low is not None and high is not None:
        return f"{low}–{high}"
    return f"≥ {low}" if low is not None else f"≤ {high}"


_KIND_NAMES = {Kind.DATETIME: "RFC 3339 time", Kind.DATE: "CST date"}


def _field(spec: FieldSpec) -> str:
    """One field as `name` (kind, unit, bounds or choices, default)."""
    details: list[str] = []
    if spec.kind is Kind.CHOICE:
        details.append(" / ".join(spec.choices))
    else:
        details.append(_KIND_NAMES.get(spec.kind, spec.kind.value))
    details.extend(d for d in (spec.unit, _bounds(spec)) if d)
    if spec.default is not None:
        details.append(f"default {str(spec.default).lower()}")
    return f"`{spec.name}` ({', '.join(details)})"


def _fields(behaviour: BehaviourType, required: bool) -> str:
    """The required fields (with any one-of group) or the truly optional ones."""
    grouped = set(behaviour.one_of)
    chosen = [f for f in behaviour.fields if f.required is required and f.name not in grouped]
    parts = [_field(f) for f in chosen]
    if required and grouped:
        group = [_field(f) for f in behaviour.fields if f.name in grouped]
        parts.append("at least one of " + " or ".join(group))
    return "; ".join(parts) or "—"


def _interval(behaviour: BehaviourType) -> str:
    names = {f.name for f in behaviour.fields}
    if "started_at" in names:
        longest = behaviour.max_duration
        limit = f", at most {int(longest.total_seconds() // 3600)} h" if longest else ""
        return f"`started_at`–`ended_at`{limit}"
    if "period_start" in names:
        return f"CST days `period_start`–`period_end`, at most {MAX_PERIOD_DAYS} days"
    if "date" in names:
        return "the CST day of `date`"
    return "the instant `time`"


def _natural_key(behaviour: BehaviourType) -> str:
    """The key's fields; a global key is one activity whoever reports it."""
    key = " + ".join(f"`{k}`" for k in behaviour.natural_key) or "—"
    return f"{key} (**global**)" if behaviour.global_key else key


def _credited_by(behaviour_type: str, methodologies: Iterable[Methodology]) -> str:
    active = sorted(
        (m for m in methodologies if m.active and behaviour_type in m.behaviours),
        key=lambda m: (m.region_prefix, m.id),
    )
    return ", ".join(f"{m.id}@{m.version} ({m.region})" for m in active) or "none yet"


def catalogue_table(methodologies: Iterable[Methodology] | None = None) -> str:
    """Every behaviour type of the catalogue, one row each."""
    shipped = list(methodologies if methodologies is not None else _shipped())
    rows = [
        [
            f"`{b.type}`",
            b.title,
            f"`{b.category.value}`",
            f"`{b.activity_class}`",
            _fields(b, required=True),
            _fields(b, required=False),
            _natural_key(b),
            _interval(b),
            _credited_by(b.type, shipped),
        ]
        for b in CATALOGUE.values()
    ]
    header = ["type", "title", "category", "class", "required `data`", "optional", "natural key"]
    return _table([*header, "interval", "active methodologies (region)"], rows)


# --- the shipped factors ----------------------------------------------------


def _shipped() -> list[Methodology]:
    return load_methodologies(SHIPPED_REGISTRY)


def _status(m: Methodology) -> str:
    return "active" if m.active else "inactive (reference)"


def _period(m: Methodology) -> str:
    period = f"{m.valid_from} to {m.valid_to}" if m.valid_to else f"from {m.valid_from}"
    return period if m.active else f"not applied ({period} in the file)"


def _applies_to(factor: Factor) -> str:
    conditions = [f"{k} = {str(v).lower()}" for k, v in factor.when.items() if k != "type"]
    what = str(factor.when.get("type", "every covered type"))
    counted = f", × `{factor.per}`" if factor.per else ""
    role = f" ({factor.role})" if factor.role else ""
    extra = f", {', '.join(conditions)}" if conditions else ""
    return f"`{what}`{extra}{counted}{role}"


def _value(factor: Factor) -> str:
    return "unset" if factor.value is None else format(factor.value, "f")


def factors_table(methodologies: Iterable[Methodology] | None = None) -> str:
    """Every factor of every shipped methodology version, with its provenance."""
    rows = [
        [
            f"`{m.id}@{m.version}`",
            _status(m),
            m.region,
            _period(m),
            _applies_to(f),
            f"`{f.name}`",
            _value(f),
            f.unit,
            f.confidence,
            f.source,
        ]
        for m in _ordered(methodologies)
        for f in m.factors
    ]
    header = ["methodology", "status", "region", "credits", "applies to", "factor"]
    return _table([*header, "value", "unit", "conf.", "source"], rows)


def parameters_table(methodologies: Iterable[Methodology] | None = None) -> str:
    """Operator parameters of the shipped versions; unset ones credit nothing."""
    rows = [
        [f"`{m.id}@{m.version}`", f"`{p.name}`", _value(p), p.unit, p.confidence, p.source]
        for m in _ordered(methodologies)
        for p in m.parameters
    ]
    return _table(["methodology", "parameter", "value", "unit", "conf.", "source"], rows)


def caps_table(methodologies: Iterable[Methodology] | None = None) -> str:
    """The per-person caps of the shipped versions, by the key dedupe counts them under."""
    rows = [
        [
            f"`{m.id}#{n}`",
            ", ".join(f"`{b}`" for b in sorted(cap.behaviours)),
            f"per person per {cap.period}",
            f"{format(cap.max_g, 'f')} g" if cap.max_g is not None else "—",
            str(cap.max_events) if cap.max_events is not None else "—",
        ]
        for m in _ordered(methodologies)
        for n, cap in enumerate(m.caps)
    ]
    return _table(["cap", "behaviours", "scope", "at most (amount)", "at most (events)"], rows)


def _ordered(methodologies: Iterable[Methodology] | None) -> list[Methodology]:
    chosen = methodologies if methodologies is not None else _shipped()
    return sorted(chosen, key=lambda m: (not m.active, m.id, m.version))


# --- pages and markers --------------------------------------------------------

Renderer = Callable[[], str]

PAGES: dict[str, dict[str, Renderer]] = {
    "catalogue.md": {"catalogue": catalogue_table},
    "factors.md": {
        "shipped-factors": factors_table,
        "shipped-parameters": parameters_table,
        "shipped-caps": caps_table,
    },
}


def _markers(name: str) -> re.Pattern[str]:
    tag = re.escape(name)
    begin, end = rf"<!-- generated:{tag} begin[^\n]*-->\n", rf"<!-- generated:{tag} end -->"
    return re.compile(rf"({begin})(.*?)({end})", re.DOTALL)


def render(text: str, name: str, body: str) -> str:
    """`text` with the table between NAME's markers replaced by `body`."""
    pattern = _markers(name)
    if pattern.search(text) is None:
        raise MarkerError(f"no <!-- generated:{name} begin/end --> markers")
    return pattern.sub(lambda m: f"{m.group(1)}{body}\n{m.group(3)}", text, count=1)


def rendered_pages(folder: Path = DOCS_DIR) -> dict[Path, str]:
    """Each page with generated tables, as it should read now."""
    pages = {}
    for page, tables in PAGES.items():
        path = folder / page
        text = path.read_text(encoding="utf-8")
        for name, renderer in tables.items():
            text = render(text, name, renderer())
        pages[path] = text
    return pages


def write(folder: Path = DOCS_DIR) -> list[Path]:
    """Rewrite the pages whose generated tables are stale; returns those written."""
    written = []
    for path, text in rendered_pages(folder).items():
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def main() -> None:
    for path in write():
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
