"""The pure functions behind the rules across facts: agreement of two statements, sector ratios, implied growth."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from expectations.derive import _sector_terms, comparable_places, decimals, derive, find_conflicts, values_agree


def _f(value, unit="亿元", qualifier=None, base=None):
    factor = {"亿元": 1e8, "万元": 1e4, "%": 1.0}[unit]
    return dict(value=value, unit=unit, value_base=value * factor if base is None else base, qualifier=qualifier)


@pytest.mark.parametrize("x, places", [(425.16, 2), (7.0, 0), (6.6, 1), (0.125, 3), (100, 0)], ids=str)
def test_decimals_counts_the_precision_written(x, places):
    assert decimals(x) == places


@pytest.mark.parametrize("a, b, agree", [
    (_f(425.16), _f(425.2), True),            # same number, coarser rounding
    (_f(425.16), _f(425.1), False),           # 425.16 rounds to 425.2, not 425.1
    (_f(6.6, "%"), _f(6.62, "%"), True),
    (_f(6.6, "%"), _f(6.5, "%"), False),
    (_f(425.16), _f(4251600, "万元"), True),   # other unit: compared in base units
    (_f(425.16), _f(4300000, "万元"), False),
    (_f(400, qualifier="超"), _f(425.16), True),    # 超400亿元 is a lower bound
    (_f(500, qualifier="超"), _f(425.16), False),
    (_f(3, "%", qualifier="以内"), _f(2.5, "%"), True),  # a cap
    (_f(500, qualifier="近"), _f(480), True),        # within 5 %
    (_f(500, qualifier="约"), _f(450), False),
], ids=lambda v: str(v.get("value")) + (v.get("qualifier") or "") if isinstance(v, dict) else str(v))
def test_values_agree_to_the_precision_and_bounds_written(a, b, agree):
    assert values_agree(a, b) is agree and values_agree(b, a) is agree


@pytest.mark.parametrize("evidence, first, terms", [
    ("全县三次产业结构优化为11.1:47.7:41.2", 11.1, [11.1, 47.7, 41.2]),
    ("三次产业结构由12.6:45.4:42调整为11.1:47.7:41.2", 11.1, [11.1, 47.7, 41.2]),
    ("三次产业结构比为11.1：47.7：41.2", 11.1, [11.1, 47.7, 41.2]),
    ("三次产业结构为11.1:47.7", 11.1, [11.1, 47.7]),
    ("结构持续优化", 11.1, []),
], ids=["ascii", "adjusted-to", "fullwidth", "two-terms", "none"])
def test_sector_ratio_is_read_from_the_evidence(evidence, first, terms):
    assert _sector_terms(evidence, first)[0] == terms


def _fact(fid, doc, indicator, measure, value, period, unit="亿元", kind="actual", **kw):
    factor = {"亿元": 1e8, "%": 1.0, "元": 1.0}[unit]
    row = dict(fact_id=fid, doc_id=doc, region="甲县", indicator=indicator, measure=measure, value=value, unit=unit,
               value_base=value * factor, unit_base={"亿元": "CNY", "元": "CNY", "%": "%"}[unit], period=period, kind=kind,
               qualifier=None, evidence=f"{indicator}{value:g}{unit}", start=0, end=5, report_year=int(period[:4]) + 1)
    row.update(kw)
    return row


def test_implied_growth_uses_the_previous_years_level_from_the_warehouse():
    run = pd.DataFrame([_fact("g", "d2", "gdp", "growth", 6.0, "2023", "%"), _fact("l", "d2", "gdp", "level", 120.0, "2023")])
    published = pd.DataFrame([_fact("p", "d1", "gdp", "level", 100.0, "2022")])
    out, _ = derive(run, published)
    g = out.set_index("fact_id").loc["g"]
    assert g["dq_implied_growth"] == 20.0 and g["dq_growth_gap"] == 14.0 and g["dq_stated_growth"] == 6.0
    assert pd.isna(out.set_index("fact_id").loc["l", "dq_growth_gap"])  # the growth fact carries the warning


def test_published_facts_of_a_reloaded_document_are_not_compared_with_themselves():
    run = pd.DataFrame([_fact("new", "d1", "gdp", "level", 101.0, "2023")])
    published = pd.DataFrame([_fact("old", "d1", "gdp", "level", 100.0, "2023")])  # same document, older version
    out, conflicts = derive(run, published)
    assert conflicts.empty and pd.isna(out.loc[0, "dq_conflicts"])


def test_cross_ratios_take_the_worst_pair_and_skip_other_years():
    run = pd.DataFrame([_fact("gdp", "d", "gdp", "level", 100.0, "2023"),
                        _fact("rev", "d", "general_budget_revenue", "level", 8.0, "2023"),
                        _fact("rev22", "d", "general_budget_revenue", "level", 300.0, "2022")])
    out, _ = derive(run)
    ratio = out.set_index("fact_id")["dq_revenue_to_gdp"]
    assert ratio["gdp"] == 0.08 and ratio["rev"] == 0.08 and pd.isna(ratio["rev22"])


def test_conflicts_pair_each_disagreement_once_with_both_evidences():
    pool = pd.DataFrame([_fact("a", "d1", "gdp", "level", 100.0, "2023", evidence="甲"),
                         _fact("b", "d2", "gdp", "level", 90.0, "2023", evidence="乙"),
                         _fact("c", "d3", "gdp", "level", 100.0, "2023", evidence="丙")])
    c = find_conflicts(pool)
    assert sorted(zip(c["left_fact_id"], c["right_fact_id"])) == [("a", "b"), ("b", "c")]
    assert set(c["left_evidence"]) | set(c["right_evidence"]) == {"甲", "乙", "丙"}


_statement = st.tuples(st.sampled_from(["d1", "d2", "d3"]), st.sampled_from(["2022", "2023"]),
                       st.sampled_from([100.0, 100.04, 99.96, 90.0, 425.16, 425.2]), st.sampled_from(["亿元", "万元"]),
                       st.sampled_from([None, "超", "以内", "约"]))


@settings(max_examples=60, deadline=None)
@given(st.lists(_statement, min_size=2, max_size=9))
def test_conflicts_are_exactly_the_disagreeing_pairs_of_different_documents(statements):
    """find_conflicts reads whole columns; it must list what values_agree says pair by pair, no more, no less."""
    facts = []
    for i, (doc, period, value, unit, qualifier) in enumerate(statements):
        fact = dict(_fact(f"f{i:02d}", doc, "gdp", "level", value, period), unit=unit, qualifier=qualifier)
        fact["value_base"] = value * (1e8 if unit == "亿元" else 1e4)
        facts.append(fact)
    expected = sorted((a["fact_id"], b["fact_id"]) for a in facts for b in facts
                      if a["fact_id"] < b["fact_id"] and a["doc_id"] != b["doc_id"] and a["period"] == b["period"]
                      and not values_agree(a, b))
    found = find_conflicts(pd.DataFrame(facts))
    assert sorted(zip(found["left_fact_id"], found["right_fact_id"])) == expected
    by_id = {f["fact_id"]: f for f in facts}
    for row in found.to_dict("records"):
        assert (row["left_value"], row["right_unit"]) == (by_id[row["left_fact_id"]]["value"], by_id[row["right_fact_id"]]["unit"])


_placed = st.tuples(st.sampled_from(["甲县", "甲县", "乙县"]), st.sampled_from(["gdp", "gdp", "general_budget_revenue"]),
                    st.sampled_from(["level", "growth"]), st.sampled_from(["2021", "2022", "2023", "2025", "2021-2025"]),
                    st.sampled_from([5.0, 6.5, 100.0, 120.0, 300.0]), st.sampled_from(["d1", "d2", "d3"]))


@settings(max_examples=150, deadline=None)
@given(st.lists(_placed, min_size=1, max_size=6), st.lists(_placed, min_size=0, max_size=12))
@example(mine=[("甲县", "gdp", "level", "2023", 120.0, "d1")],  # a level whose growth and previous year are elsewhere
         others=[("甲县", "gdp", "growth", "2023", 6.5, "d2"), ("甲县", "gdp", "level", "2022", 100.0, "d3")])
@example(mine=[("甲县", "gdp", "level", "2022", 100.0, "d1")],  # a previous year's level
         others=[("甲县", "gdp", "growth", "2023", 6.5, "d2"), ("甲县", "gdp", "level", "2023", 120.0, "d3")])
def test_other_facts_away_from_the_groups_places_never_change_what_derive_finds(mine, others):
    """A validation group is compared only with published facts at ``comparable_places`` of its own facts: the
    same region and period, and a single year's neighbours. Every dq_* column and every conflict must be what the
    whole of the published facts gives."""
    def facts(rows, prefix):
        out = []
        for i, (region, indicator, measure, period, value, doc) in enumerate(rows):
            unit = "%" if measure == "growth" else "亿元"
            out.append(_fact(f"{prefix}{i:02d}", f"{prefix}{doc}", indicator, measure, value, period, unit=unit, region=region))
        return pd.DataFrame(out)

    run, published = facts(mine, "r"), facts(others, "p")
    places = set(zip(*comparable_places(run["region"].tolist(), run["period"].tolist())))
    near = published[[at in places for at in zip(published["region"], published["period"])]] if len(published) else published
    whole, whole_conflicts = derive(run, published if len(published) else None)
    narrowed, narrowed_conflicts = derive(run, near if len(near) else None)
    pd.testing.assert_frame_equal(whole, narrowed)
    assert len(whole_conflicts) == len(narrowed_conflicts)
    if len(whole_conflicts):  # (an empty frame's column types depend on what was filtered away)
        pd.testing.assert_frame_equal(whole_conflicts.reset_index(drop=True), narrowed_conflicts.reset_index(drop=True))


def test_comparable_places_reach_a_single_years_neighbours_only():
    regions, periods = comparable_places(["甲县", "甲县", "乙县", None], ["2023", "2021-2025", "2023", "2023"])
    assert list(zip(regions, periods)) == [("乙县", "2022"), ("乙县", "2023"), ("乙县", "2024"),
                                           ("甲县", "2021-2025"), ("甲县", "2022"), ("甲县", "2023"), ("甲县", "2024")]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(_statement, st.booleans()), min_size=2, max_size=12))
def test_conflicts_anchored_on_the_run_are_the_whole_pools_conflicts_that_touch_the_run(statements):
    """derive pairs a group's facts with everything published before them, never published with published; the
    pairs it finds must be exactly find_conflicts' pairs of the whole pool that have a fact of the run."""
    from expectations.derive import _conflict_rows, _disagreeing_pairs

    facts = []
    for i, ((doc, period, value, unit, qualifier), in_run) in enumerate(statements):
        fact = dict(_fact(f"f{i:02d}", doc, "gdp", "level", value, period), unit=unit, qualifier=qualifier, in_run=in_run)
        fact["value_base"] = value * (1e8 if unit == "亿元" else 1e4)
        facts.append(fact)
    pool = pd.DataFrame(facts)
    run = set(pool.loc[pool["in_run"], "fact_id"])
    whole = find_conflicts(pool.drop(columns="in_run"))
    expected = whole[whole["left_fact_id"].isin(run) | whole["right_fact_id"].isin(run)].reset_index(drop=True)
    anchored = _conflict_rows(_disagreeing_pairs(pool, anchored=True))
    assert len(anchored) == len(expected)
    if len(expected):
        pd.testing.assert_frame_equal(anchored, expected, check_dtype=False)
