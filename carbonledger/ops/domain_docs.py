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
    Category,
    FieldSpec,
    Kind,
)
from carbonledger.contracts.methodology import Factor, IssuerKind, Methodology, in_force
from carbonledger.contracts.methodology_files import load_methodologies
from carbonledger.contracts.settings import ROOT, Settings
from carbonledger.ops.seed_coverage import (
    Coverage,
    Judged,
    SeedScheme,
    judge_all,
    load_seed_schemes,
    totals,
    unknown_types,
)

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
        (m for m in in_force(methodologies) if behaviour_type in m.behaviours),
        key=lambda m: (m.region_prefix, m.id),
    )
    return ", ".join(f"{m.ref} ({_where(m)})" for m in active) or "none yet"


def _where(m: Methodology) -> str:
    """Region, and the partners of a partner-scoped version."""
    partners = ", ".join(sorted(m.partners))
    return f"{m.region}; partners {partners}" if partners else m.region


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


def _names(behaviour: BehaviourType, required: bool) -> str:
    """Field names only, for the partners' overview (catalogue.md has the details)."""
    grouped = set(behaviour.one_of)
    names = [f.name for f in behaviour.fields if f.required is required and f.name not in grouped]
    if required and grouped:
        names.append(" or ".join(behaviour.one_of))
    return ", ".join(names) or "—"


def category_table() -> str:
    """The catalogue by category, in the order of `Category`: the partners' overview."""
    order = list(Category)
    rows = [
        [
            b.category.value,
            f"`{b.type}`",
            b.title,
            _names(b, required=True),
            _names(b, required=False),
            _natural_key(b),
        ]
        for b in sorted(CATALOGUE.values(), key=lambda b: order.index(b.category))
    ]
    header = ["category", "type", "what", "required `data`", "optional", "natural key"]
    return _table(header, rows)


# --- the shipped factors ----------------------------------------------------


def _shipped() -> list[Methodology]:
    return load_methodologies(SHIPPED_REGISTRY)


def _status(m: Methodology, shipped: list[Methodology]) -> str:
    by = sorted(n.ref for n in shipped if n.id == m.id and m.version in n.supersedes)
    if by:
        return f"superseded by {', '.join(by)}"
    return "active" if m.active else "inactive (reference)"


def _issuer(m: Methodology) -> str:
    if m.issuer_kind is IssuerKind.PARTNER:
        return f"partner: {', '.join(sorted(m.partners))}"
    return m.issuer_kind.value


def _period(m: Methodology, shipped: list[Methodology]) -> str:
    period = f"{m.valid_from} to {m.valid_to}" if m.valid_to else f"from {m.valid_from}"
    return period if m in in_force(shipped) else f"not applied ({period} in the file)"


def _applies_to(factor: Factor) -> str:
    conditions = [f"{k} = {str(v).lower()}" for k, v in factor.when.items() if k != "type"]
    conditions += [f"{k} ≥ {format(v, 'f')}" for k, v in factor.at_least.items()]
    what = str(factor.when.get("type", "every covered type"))
    counted = f", × `{factor.per}`" if factor.per else ""
    shared = f", ÷ `{factor.shared_by}`" if factor.shared_by else ""
    role = f" ({factor.role})" if factor.role else ""
    extra = f", {', '.join(conditions)}" if conditions else ""
    return f"`{what}`{extra}{counted}{shared}{role}"


def _value(factor: Factor) -> str:
    return "unset" if factor.value is None else format(factor.value, "f")


def factors_table(methodologies: Iterable[Methodology] | None = None) -> str:
    """Every factor of every shipped methodology version, with its provenance."""
    shipped = _ordered(methodologies)
    rows = [
        [
            f"`{m.id}@{m.version}`",
            _status(m, shipped),
            _issuer(m),
            m.region,
            f"{m.formula.value}, {_period(m, shipped)}",
            _applies_to(f),
            f"`{f.name}`",
            _value(f),
            f.unit,
            f.confidence,
            f.source,
        ]
        for m in shipped
        for f in m.factors
    ]
    header = ["methodology", "status", "issuer kind", "region", "formula, credits", "applies to"]
    header.append("factor")
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
    """The per-person caps of the shipped versions in force, by the key dedupe counts
    them under (the key is shared by a methodology's versions)."""
    rows = [
        [
            f"`{m.id}#{n}`",
            ", ".join(f"`{b}`" for b in sorted(cap.behaviours)),
            f"per person per {cap.period}{' per type' if cap.per_type else ''}",
            f"{format(cap.max_g, 'f')} g" if cap.max_g is not None else "—",
            str(cap.max_events) if cap.max_events is not None else "—",
        ]
        for m in in_force(_ordered(methodologies))
        for n, cap in enumerate(m.caps)
    ]
    return _table(["cap", "behaviours", "scope", "at most (amount)", "at most (events)"], rows)


def _ordered(methodologies: Iterable[Methodology] | None) -> list[Methodology]:
    chosen = methodologies if methodologies is not None else _shipped()
    return sorted(chosen, key=lambda m: (not m.active, m.id, m.version))


# --- the seed schemes' coverage -------------------------------------------------


class UnknownTypeError(ValueError):
    """The seed-scheme data names a type the catalogue does not accept."""


def _judged(methodologies: Iterable[Methodology] | None = None) -> list[Judged]:
    schemes = load_seed_schemes()
    unknown = unknown_types(schemes)
    if unknown:
        raise UnknownTypeError(f"seed-schemes.yaml names unknown types: {', '.join(unknown)}")
    return judge_all(schemes, methodologies if methodologies is not None else _shipped())


_COVERAGE_TEXT = {
    Coverage.SERVED: "credited by {}",
    Coverage.OPERATOR_PUBLISHES: "operator publishes a methodology",
    Coverage.ENGAGEMENT: "engagement event: points only, never credited",
    Coverage.NOT_REPRESENTABLE: "not representable: {}",
}


def _coverage_cell(j: Judged) -> str:
    text = _COVERAGE_TEXT[j.coverage]
    if j.coverage is Coverage.OPERATOR_PUBLISHES:
        return f"{text} ({_regional(j.detail)})" if j.detail else text
    return text.format(j.detail) if "{}" in text else text


def _regional(detail: str) -> str:
    """An operator-publishes detail: a selected version lacking figures, or where a
    national scheme's events are credited by regional versions only."""
    return detail if " unset" in detail else f"credited only regionally: {detail}"


def _scheme_title(s: SeedScheme) -> str:
    return f"{s.zh} — {s.en}"


def _counts(judged: Iterable[Judged]) -> list[str]:
    chosen = list(judged)
    return [str(sum(1 for j in chosen if j.coverage is c)) for c in Coverage]


def coverage_totals(methodologies: Iterable[Methodology] | None = None) -> str:
    """The totals of the coverage table, measured from it."""
    judged = _judged(methodologies)
    measured = totals(load_seed_schemes(), judged)
    rows = [
        ["systems", str(measured.systems)],
        ["behaviours (a system's rewarded behaviour, one row each)", str(measured.behaviours)],
        ["distinct catalogue types they map to", str(measured.types)],
        *([c.value, str(measured.counts[c])] for c in Coverage),
    ]
    day = load_seed_schemes().as_of.isoformat()
    return _table(["measure", "count"], rows) + f"\n\nJudged for events of {day} (CST)."


def coverage_systems(methodologies: Iterable[Methodology] | None = None) -> str:
    """One row per system: how many of its behaviours are served, and how."""
    judged = _judged(methodologies)
    rows = []
    for s in load_seed_schemes().systems:
        mine = [j for j in judged if j.scheme.partner == s.partner]
        rows.append([_scheme_title(s), f"`{s.partner}`", s.kind, s.region, str(len(mine))])
        rows[-1].extend(_counts(mine))
    header = ["system", "partner id", "kind", "region", "behaviours"]
    return _table([*header, *(c.value for c in Coverage)], rows)


def coverage_table(methodologies: Iterable[Methodology] | None = None) -> str:
    """Every behaviour of every system: its type and whether it is credited. The
    system is named on its first row only, so each system reads as one block."""
    rows, previous = [], ""
    for j in _judged(methodologies):
        system = _scheme_title(j.scheme) if j.scheme.partner != previous else ""
        previous = j.scheme.partner
        behaviour_type = f"`{j.behaviour.type}`" if j.behaviour.type else "—"
        note = f"; *{j.behaviour.note}*" if j.behaviour.note else ""
        behaviour = f"{j.behaviour.zh} / {j.behaviour.en}{note}"
        rows.append(
            [system, behaviour, behaviour_type, _coverage_cell(j), ", ".join(j.behaviour.refs)]
        )
    return _table(["system", "behaviour", "type", "coverage", "seeds"], rows)


def coverage_by_type(methodologies: Iterable[Methodology] | None = None) -> str:
    """For each type the systems name: which partners' events are credited and which wait."""
    judged = [j for j in _judged(methodologies) if j.behaviour.type is not None]
    rows = []
    for behaviour_type in sorted({j.behaviour.type for j in judged if j.behaviour.type}):
        mine = [j for j in judged if j.behaviour.type == behaviour_type]
        by = {
            c: sorted({f"`{j.scheme.partner}`" for j in mine if j.coverage is c}) for c in Coverage
        }
        rows.append(
            [
                f"`{behaviour_type}`",
                str(len({j.scheme.partner for j in mine})),
                ", ".join(by[Coverage.SERVED]) or "—",
                ", ".join(by[Coverage.OPERATOR_PUBLISHES] + by[Coverage.ENGAGEMENT]) or "—",
            ]
        )
    header = [
        "type",
        "systems",
        "credited for",
        "not credited for (operator publishes / engagement)",
    ]
    return _table(header, rows)


def coverage_not_counted() -> str:
    rows = [[f"{u.zh} — {u.en}", ", ".join(u.refs), u.why] for u in load_seed_schemes().not_counted]
    return _table(["scheme", "seeds", "why not counted"], rows)


# --- pages and markers --------------------------------------------------------

Renderer = Callable[[], str]

PAGES: dict[str, dict[str, Renderer]] = {
    "catalogue.md": {"catalogue": catalogue_table},
    "partners.md": {"catalogue-by-category": category_table},
    "factors.md": {
        "shipped-factors": factors_table,
        "shipped-parameters": parameters_table,
        "shipped-caps": caps_table,
    },
    "coverage.md": {
        "coverage-totals": coverage_totals,
        "coverage-systems": coverage_systems,
        "coverage": coverage_table,
        "coverage-by-type": coverage_by_type,
        "coverage-not-counted": coverage_not_counted,
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
