"""The shipped GB/T 2260 table: its shape, its parent chains, and region validation."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

from carbonledger.contracts.catalogue import Reason, Rejection, validate_region
from carbonledger.contracts.regions import (
    NATIONAL,
    Level,
    Region,
    RegionTable,
    load_regions,
)

TABLE = load_regions()


def test_table_loads_once_and_is_plausibly_complete() -> None:
    assert load_regions() is TABLE
    assert len(TABLE) > 3000
    counts = {level: sum(r.level is level for r in TABLE) for level in Level}
    assert counts[Level.PROVINCE] == 34
    assert counts[Level.CITY] > 300
    assert counts[Level.DISTRICT] > 2800


def test_every_province_level_unit_is_present() -> None:
    provinces = {r.code[:2] for r in TABLE.children(NATIONAL)}
    # GB/T 2260's 34 province-level units, Taiwan, Hong Kong and Macao included.
    assert provinces == {
        *map(str, range(11, 16)),
        *map(str, range(21, 24)),
        *map(str, range(31, 38)),
        *map(str, range(41, 47)),
        *map(str, range(50, 55)),
        *map(str, range(61, 66)),
        *("71", "81", "82"),
    }
    assert all(r.code.endswith("0000") and r.parent is None for r in TABLE.children(NATIONAL))


def test_every_code_is_six_ascii_digits_and_the_national_key_is_not_a_region() -> None:
    assert all(re.fullmatch(r"[0-9]{6}", r.code) for r in TABLE)
    assert NATIONAL not in TABLE


def test_every_parent_exists_with_a_level_that_may_enclose_the_child() -> None:
    for region in TABLE:
        if region.level is Level.PROVINCE:
            assert region.parent is None, region
            continue
        assert region.parent is not None, region
        parent = TABLE.get(region.parent)
        assert parent is not None, region
        assert parent.code[:2] == region.code[:2], region
        if region.level is Level.CITY:
            assert parent.level is Level.PROVINCE, region
        else:
            assert parent.level in (Level.CITY, Level.PROVINCE), region
            # A district skips the city level only where the source has no such city.
            assert (parent.level is Level.CITY) == (region.code[:4] + "00" in TABLE), region


def test_the_file_is_sorted_utf8_with_a_trailing_newline() -> None:
    raw = files("carbonledger.contracts").joinpath("data").joinpath("regions.csv").read_bytes()
    assert raw.endswith(b"\n") and not raw.endswith(b"\n\n")
    lines = raw.decode("utf-8").splitlines()
    assert lines[0] == "code,name,level,parent"
    codes = [line.split(",", 1)[0] for line in lines[1:]]
    assert codes == sorted(codes)


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("440303", "罗湖区"),
        ("440304", "福田区"),
        ("440305", "南山区"),
        ("440306", "宝安区"),
        ("440307", "龙岗区"),
        ("440309", "龙华区"),
        ("440310", "坪山区"),
        ("440311", "光明区"),
        ("440106", "天河区"),
        ("420102", "江岸区"),
        ("420106", "武昌区"),
        ("420111", "洪山区"),
        ("110105", "朝阳区"),
        ("310115", "浦东新区"),
        ("500103", "渝中区"),
    ],
)
def test_codes_used_by_the_sample_and_tests_are_districts(code: str, name: str) -> None:
    assert TABLE.get(code) == Region(code, name, Level.DISTRICT, TABLE.lineage(code)[1])


@pytest.mark.parametrize(
    ("code", "lineage"),
    [
        ("440305", ("440305", "440300", "440000")),  # Shenzhen Nanshan
        ("420106", ("420106", "420100", "420000")),  # Wuhan Wuchang
        ("110105", ("110105", "110000")),  # Beijing Chaoyang: a municipality has no city row
        ("429004", ("429004", "420000")),  # Xiantao, administered by Hubei directly
        ("440300", ("440300", "440000")),
        ("440000", ("440000",)),
    ],
)
def test_lineage_and_rollup_keys(code: str, lineage: tuple[str, ...]) -> None:
    assert TABLE.lineage(code) == lineage
    assert TABLE.rollup_keys(code) == (*lineage, NATIONAL)
    province = TABLE.province_of(code)
    assert province.code == lineage[-1] and province.level is Level.PROVINCE


def test_children_are_the_direct_units_in_code_order() -> None:
    shenzhen = TABLE.children("440300")
    assert "440305" in {r.code for r in shenzhen}
    assert all(r.parent == "440300" and r.level is Level.DISTRICT for r in shenzhen)
    assert [r.code for r in shenzhen] == sorted(r.code for r in shenzhen)
    hubei = {r.code for r in TABLE.children("420000")}
    assert {"420100", "429004", "429021"} <= hubei
    assert "420106" not in hubei
    assert TABLE.children("440305") == ()


def test_unknown_codes_raise_key_error_from_tree_queries() -> None:
    assert TABLE.get("999999") is None
    assert "999999" not in TABLE
    for query in (TABLE.lineage, TABLE.rollup_keys, TABLE.children, TABLE.province_of):
        with pytest.raises(KeyError):
            query("999999")


@pytest.mark.parametrize("code", ["440305", "440300", "440000", "429004", "710000"])
def test_validate_region_admits_codes_in_the_table(code: str) -> None:
    assert validate_region(code) == code


@pytest.mark.parametrize("code", ["999999", "990101", "440399", "110100", "429000", "000000"])
def test_validate_region_rejects_well_formed_codes_not_in_the_table(code: str) -> None:
    with pytest.raises(Rejection) as caught:
        validate_region(code)
    assert caught.value.reason is Reason.INVALID_REGION
    assert caught.value.message == f"region {code} is not a GB/T 2260 code in the shipped table"


@pytest.mark.parametrize(
    "value",
    ["440", "99999", "4403050", "44030a", "", " 440305", "440305\n", "٤٤٠٣٠٥", 440305, None],
)
def test_validate_region_rejects_malformed_codes(value: object) -> None:
    with pytest.raises(Rejection) as caught:
        validate_region(value)
    assert caught.value.reason is Reason.INVALID_REGION
    assert "six-digit" in caught.value.message


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        (
            "440000,广东省,province,\n440300,深圳市,city,440000\n440300,深圳市,city,440000\n",
            "twice",
        ),
        ("440300,深圳市,city,\n", "needs a parent"),
        ("440305,南山区,district,440300\n", "no valid parent"),
        ("440000,广东省,province,\n440300,深圳市,city,440000\n440000X,x,district,440300\n", "six"),
        (
            "420000,湖北省,province,\n440000,广东省,province,\n440305,南山区,district,420000\n",
            "outside",
        ),
    ],
)
def test_an_inconsistent_table_is_refused_at_load(rows: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        RegionTable.from_csv("code,name,level,parent\n" + rows)
