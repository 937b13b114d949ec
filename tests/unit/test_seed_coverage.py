"""The seed-scheme coverage page: its data names only accepted types, and it is current."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest

from carbonledger.contracts.catalogue import CATALOGUE
from carbonledger.contracts.methodology import (
    Factor,
    FormulaKind,
    GridDivision,
    GridRegion,
    IssuerKind,
    Methodology,
)
from carbonledger.contracts.methodology_files import load_methodologies
from carbonledger.contracts.partners import Partner
from carbonledger.ops.domain_docs import (
    DOCS_DIR,
    SHIPPED_REGISTRY,
    coverage_table,
    coverage_totals,
    rendered_pages,
)
from carbonledger.ops.seed_coverage import (
    Coverage,
    SeedBehaviour,
    SeedScheme,
    SeedSchemes,
    judge,
    judge_all,
    load_seed_schemes,
    totals,
    unknown_types,
)

SCHEMES = load_seed_schemes()
SHIPPED = load_methodologies(SHIPPED_REGISTRY)
DAY = date(2026, 10, 15)


def _page() -> str:
    return (DOCS_DIR / "coverage.md").read_text(encoding="utf-8")


def test_the_committed_page_is_what_the_generator_renders() -> None:
    path = DOCS_DIR / "coverage.md"
    assert _page() == rendered_pages()[path], (
        f"{path} is stale: run `python -m carbonledger.ops.domain_docs`"
    )


def test_every_type_the_data_names_is_a_catalogue_type() -> None:
    named = {b.type for s in SCHEMES.systems for b in s.behaviours if b.type is not None}
    assert named and named <= CATALOGUE.keys(), sorted(named - CATALOGUE.keys())
    assert unknown_types(SCHEMES) == []


def test_every_system_would_be_accepted_as_a_partner_of_its_types() -> None:
    for s in SCHEMES.systems:
        types = frozenset(b.type for b in s.behaviours if b.type is not None)
        Partner(id=s.partner, name=s.zh, kind=s.kind, behaviours=types)


def test_a_made_up_type_is_caught() -> None:
    scheme = _scheme("x-scheme", "national", _behaviour("travel.teleport"))
    assert unknown_types(SeedSchemes(as_of=DAY, systems=(scheme,))) == ["travel.teleport"]


def test_the_count_is_35_systems_with_distinct_partner_ids() -> None:
    assert len(SCHEMES.systems) == 35
    assert {"hankou-bank", "spdb", "ant-forest"} <= {s.partner for s in SCHEMES.systems}
    with pytest.raises(ValueError, match="listed twice"):
        SeedSchemes(as_of=DAY, systems=(SCHEMES.systems[0], SCHEMES.systems[0]))


def test_a_null_type_needs_a_reason_and_a_type_has_none() -> None:
    with pytest.raises(ValueError, match="why"):
        SeedBehaviour(zh="存款", en="deposit", type=None, refs=("S2:1255",))
    with pytest.raises(ValueError, match="why"):
        SeedBehaviour(zh="地铁", en="metro", type="travel.metro", refs=("S2:1",), why="x")


def test_the_totals_on_the_page_are_measured_from_the_table() -> None:
    measured = totals(SCHEMES, judge_all(SCHEMES, SHIPPED))
    rows = dict(re.findall(r"^\| ([^|]+?) \| (\d+) \|$", coverage_totals(), re.MULTILINE))
    assert rows["systems"] == "35"
    assert int(rows["served"]) == measured.counts[Coverage.SERVED]
    assert sum(measured.counts.values()) == measured.behaviours
    table = coverage_table().splitlines()[2:]
    assert len(table) == measured.behaviours
    served = [r for r in table if "| credited by " in r]
    assert len(served) == measured.counts[Coverage.SERVED]
    unrepresentable = [r for r in table if "| not representable: " in r]
    assert len(unrepresentable) == measured.counts[Coverage.NOT_REPRESENTABLE]


def _per_ride(
    mid: str, region: str, behaviour_type: str, value: str | None, valid_from: date = DAY
) -> Methodology:
    factor = Factor(
        name="per_ride", value=None if value is None else Decimal(value), unit="g/ride",
        source="test", confidence="V",
    )  # fmt: skip
    return Methodology(
        id=mid, version="1", title=mid, title_zh=mid, issuer="test", region=region,
        valid_from=valid_from, gases="CO2", behaviours=frozenset({behaviour_type}),
        formula=FormulaKind.PER_UNIT, factors=(factor,),
    )  # fmt: skip


def _behaviour(behaviour_type: str | None) -> SeedBehaviour:
    why = "" if behaviour_type else "no type"
    return SeedBehaviour(zh="行为", en="behaviour", type=behaviour_type, refs=("S2:1",), why=why)


def _scheme(partner: str, region: str, *behaviours: SeedBehaviour) -> SeedScheme:
    return SeedScheme(
        partner=partner, zh="系统", en="system", kind="bank", region=region,
        refs=("S2:1",), behaviours=behaviours,
    )  # fmt: skip


def test_a_regional_methodology_serves_its_region_and_not_a_national_scheme() -> None:
    wuhan = _per_ride("wuhan-bus", "4201", "travel.bus", "80")
    bus = _behaviour("travel.bus")
    served = judge(_scheme("a-bank", "4201", bus), bus, [wuhan], DAY)
    assert served.coverage is Coverage.SERVED
    assert served.detail == "wuhan-bus@1 (per_ride 80 g/ride, V)"
    national = judge(_scheme("a-bank", "national", bus), bus, [wuhan], DAY)
    assert national.coverage is Coverage.OPERATOR_PUBLISHES
    assert national.detail == "wuhan-bus@1 in 4201"
    elsewhere = judge(_scheme("a-bank", "31", bus), bus, [wuhan], DAY)
    assert (elsewhere.coverage, elsewhere.detail) == (Coverage.OPERATOR_PUBLISHES, "")


def test_a_methodology_not_yet_crediting_on_the_day_does_not_serve() -> None:
    later = _per_ride("later", "national", "travel.bus", "80", valid_from=date(2027, 1, 1))
    bus = _behaviour("travel.bus")
    judged = judge(_scheme("a-bank", "national", bus), bus, [later], DAY)
    assert judged.coverage is Coverage.OPERATOR_PUBLISHES


def test_an_unset_figure_means_the_operator_must_publish_one() -> None:
    unset = _per_ride("unset", "national", "travel.bus", None)
    bus = _behaviour("travel.bus")
    judged = judge(_scheme("a-bank", "national", bus), bus, [unset], DAY)
    assert judged.coverage is Coverage.OPERATOR_PUBLISHES
    assert judged.detail == "unset@1 applies with per_ride unset"


def test_engagement_and_unrepresentable_behaviours_are_never_credited() -> None:
    anything = [_per_ride("all", "national", "travel.bus", "80")]
    missing = _behaviour(None)
    scheme = _scheme("a-bank", "national", missing)
    assert judge(scheme, missing, anything, DAY).coverage is Coverage.NOT_REPRESENTABLE
    quiz = _behaviour("engage.quiz")
    assert CATALOGUE["engage.quiz"].engagement
    assert judge(scheme, quiz, anything, DAY).coverage is Coverage.ENGAGEMENT


def test_the_issue_s_three_runnable_schemes_are_served_for_their_core_behaviours() -> None:
    """Shenzhen's transit, Hello's bikes and 汉口银行's account run today (issue 19)."""
    judged = {(j.scheme.partner, j.behaviour.type): j for j in judge_all(SCHEMES, SHIPPED)}
    for key in [
        ("shenzhen-low-carbon-planet", "travel.metro"),
        ("hello", "travel.bike_share"),
        ("hankou-bank", "travel.bus"),
        ("hankou-bank", "payment.utility_online"),
    ]:
        assert judged[key].coverage is Coverage.SERVED, key


def test_a_partner_s_own_figure_serves_that_partner_alone() -> None:
    """汉口银行's 80 g credits hankou-bank's Wuhan ride, not another Wuhan partner's."""
    own = _per_ride("bank-own", "4201", "travel.bus", "80").model_copy(
        update={"issuer_kind": IssuerKind.PARTNER, "partners": frozenset({"hankou-bank"})}
    )
    bus = _behaviour("travel.bus")
    mine = judge(_scheme("hankou-bank", "4201", bus), bus, [own], DAY)
    assert mine.coverage is Coverage.SERVED
    assert mine.detail == "bank-own@1, the partner's own figures (per_ride 80 g/ride, V)"
    other = judge(_scheme("other-bank", "4201", bus), bus, [own], DAY)
    assert other.coverage is Coverage.OPERATOR_PUBLISHES


def test_a_grid_factor_is_the_one_of_the_scheme_s_grid() -> None:
    grid = GridDivision(
        source="test",
        regions=(
            GridRegion(name="south", name_zh="南方", prefixes=("44",)),
            GridRegion(name="north", name_zh="华北", prefixes=("11",)),
        ),
    )
    factors = tuple(
        Factor(
            name=f"{name}_grid",
            value=Decimal(value),
            unit="kgCO2/kWh",
            source="test",
            confidence="S",
            when={"grid": name},
            per="kwh",
        )
        for name, value in (("south", "0.3869"), ("north", "0.6776"))
    )
    pv = Methodology(
        id="pv", version="1", title="pv", title_zh="pv", issuer="test", region="national",
        valid_from=DAY, gases="CO2", behaviours=frozenset({"home.pv_generation"}),
        formula=FormulaKind.PER_KWH_GRID, grid=grid, factors=factors,
    )  # fmt: skip
    meter = _behaviour("home.pv_generation")
    shenzhen = judge(_scheme("a-bank", "4403", meter), meter, [pv], DAY)
    assert shenzhen.detail == "pv@1 (south_grid 0.3869 kgCO2/kWh × kwh when grid = south, S)"
    nationwide = judge(_scheme("a-bank", "national", meter), meter, [pv], DAY)
    assert "south_grid" in nationwide.detail and "north_grid" in nationwide.detail
    nowhere = judge(_scheme("a-bank", "62", meter), meter, [pv], DAY)
    assert nowhere.coverage is Coverage.OPERATOR_PUBLISHES


def test_a_government_version_in_part_of_the_region_is_named_as_applying_there() -> None:
    """Ant Forest's metro figure is national, but Shenzhen's methodology wins in 4403."""
    own = _per_ride("forest", "national", "travel.metro", "52").model_copy(
        update={"issuer_kind": IssuerKind.PARTNER, "partners": frozenset({"ant-forest"})}
    )
    shenzhen = _per_ride("shenzhen", "4403", "travel.metro", "467")
    metro = _behaviour("travel.metro")
    judged = judge(_scheme("ant-forest", "national", metro), metro, [own, shenzhen], DAY)
    assert judged.coverage is Coverage.SERVED
    assert judged.detail.endswith("; in 4403 shenzhen@1 applies instead")
    alone = judge(_scheme("ant-forest", "national", metro), metro, [own], DAY)
    assert not alone.detail.endswith("applies instead")


def test_every_partner_a_shipped_methodology_is_scoped_to_is_a_seed_system() -> None:
    """So a partner's own figures are judged for that partner's scheme, not lost."""
    scoped = {p for m in SHIPPED for p in m.partners}
    assert scoped and scoped <= {s.partner for s in SCHEMES.systems}
