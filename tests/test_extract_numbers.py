"""Numbers as written (Arabic, full-width, Chinese, mixed) and quantities with units."""

from __future__ import annotations

import pytest

from tests.extract_cases import ids, load_cases
from transforms.extract.numbers import parse_number, scan_text
from transforms.extract.reference import load_reference
from transforms.extract.units import base_value, find_quantities

NUMBER_CASES = load_cases("numbers")
UNIT_CASES = load_cases("units")


@pytest.mark.parametrize("case", NUMBER_CASES, ids=ids(NUMBER_CASES))
def test_parse_number(case):
    got = parse_number(case["text"])
    if case["value"] is None:
        assert got is None
    else:
        assert got == pytest.approx(case["value"], rel=1e-12)


@pytest.mark.parametrize("case", UNIT_CASES, ids=ids(UNIT_CASES))
def test_quantity_unit_and_base(case):
    ref = load_reference()
    qs = find_quantities(scan_text(case["text"]), ref)
    if case["value"] is None:
        assert qs == []
        return
    assert qs, f"no quantity found in {case['text']!r}"
    q = qs[0]
    assert (q.value, q.unit, q.qualifier) == (pytest.approx(case["value"]), case["unit"], case["qualifier"])
    vb, ub = base_value(q.value, q.unit, ref)
    assert (vb, ub) == (case["value_base"], case["unit_base"])


def test_scan_text_keeps_offsets():
    text = "增长５．５％，总量１２３亿元"
    assert len(scan_text(text)) == len(text)
    assert scan_text(text).startswith("增长5.5%")


def test_every_unit_family_has_one_base_unit():
    ref = load_reference()
    bases: dict[str, set[str]] = {}
    for u in ref.units.values():
        bases.setdefault(u.family, set()).add(u.base_unit)
    assert {f: b for f, b in bases.items() if len(b) > 1} == {}


def test_indicator_unit_families_exist():
    ref = load_reference()
    families = {u.family for u in ref.units.values()}
    for ind in ref.indicators.values():
        assert set(ind.unit_families) <= families, f"{ind.code} names unknown unit families"


def test_reference_rejects_a_misspelt_lexicon_category(tmp_path):
    import shutil

    from transforms.extract.reference import SEEDS_DIR, build_reference

    for name in ("indicators.csv", "units.csv", "regions.csv", "sections.csv", "lexicon.csv"):
        shutil.copy(SEEDS_DIR / name, tmp_path / name)
    with (tmp_path / "lexicon.csv").open("a", encoding="utf-8") as fh:
        fh.write("ligth,达到,,\n")
    with pytest.raises(ValueError, match="lexicon.csv: unknown categories"):
        build_reference(tmp_path)


def test_reference_rejects_an_alias_of_two_indicators(tmp_path):
    import shutil

    from transforms.extract.reference import SEEDS_DIR, build_reference

    for name in ("units.csv", "regions.csv", "sections.csv", "lexicon.csv"):
        shutil.copy(SEEDS_DIR / name, tmp_path / name)
    text = (SEEDS_DIR / "indicators.csv").read_text(encoding="utf-8").replace("建筑业增加值,money", "建筑业增加值|生产总值,money")
    (tmp_path / "indicators.csv").write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="names both"):
        build_reference(tmp_path)
