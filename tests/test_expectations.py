"""Every expectation, positive and negative, on crafted facts run through the real GX suite.

The cases live in tests/cases/expectations.jsonl. Each case gets its own region
and documents, so all of them are validated in ONE GX run (a run costs seconds
whatever its size) without one case's facts meeting another's in the rules
across facts. A negative case names the fact that must fail, the status it must
get and the words of the message; a positive case's facts must all pass.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from expectations import custom
from expectations.facts_suite import SUITE_NAME, build_checks, validate_facts

CASES = [json.loads(line) for line in (Path(__file__).parent / "cases" / "expectations.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
BASE = dict(indicator="gdp", measure="level", value=100.0, unit="亿元", value_base=1e10, unit_base="CNY", period="2023",
            kind="actual", qualifier=None, start=0, end=0, rule="test", region_level="county", report_year=2024,
            preliminary=False, mojibake_overlap=False, raw_start=None, raw_end=None)


def _fact(case: str, i: int, spec: dict, prefix: str = "") -> dict:
    """A complete fact row from a case's partial spec: own region, own document, an evidence holding the value."""
    spec = dict(spec)
    doc = spec.pop("doc", "a")
    f = dict(BASE, **spec)
    f.setdefault("fact_id", f"{case}-{prefix}{i}")
    f["doc_id"] = f"{case}-{prefix}{doc}"
    f["region"] = f"{case}区"
    if "evidence" not in spec:
        f["evidence"] = f"{f['indicator']}为{f['value']:g}{f['unit']}"
    if "end" not in spec:
        f["end"] = f["start"] + len(f["evidence"])
    return f


@pytest.fixture(scope="module")
def outcome():
    """All cases validated together by the real suite."""
    facts, published, texts = [], [], {}
    for c in CASES:
        facts += [_fact(c["id"], i, s) for i, s in enumerate(c["facts"])]
        published += [_fact(c["id"], i, s, prefix="published-") for i, s in enumerate(c.get("published", []))]
        if "text" in c:
            texts[f"{c['id']}-a"] = c["text"]
    return validate_facts(pa.Table.from_pylist(facts), pd.DataFrame(published), texts)


@pytest.mark.parametrize("case", [c for c in CASES if c["flag"] is not None], ids=lambda c: c["id"])
def test_a_bad_fact_fails_its_expectation_with_the_expected_message(outcome, case):
    fid = _fact(case["id"], case["flag"], case["facts"][case["flag"]])["fact_id"]
    assert case["expectation"] in outcome.failed[fid], (outcome.failed[fid], outcome.messages[fid])
    assert outcome.status[fid] == case["status"]
    assert any(case["message"] in m for m in outcome.messages[fid]), outcome.messages[fid]


@pytest.mark.parametrize("case", [c for c in CASES if c["flag"] is None], ids=lambda c: c["id"])
def test_a_good_fact_passes_every_expectation(outcome, case):
    for i, spec in enumerate(case["facts"]):
        fid = _fact(case["id"], i, spec)["fact_id"]
        assert outcome.status[fid] == "passed", (fid, outcome.messages[fid])


def test_every_expectation_has_a_negative_and_a_positive_case():
    names = {c.expectation_type for c in custom.ALL_EXPECTATIONS}
    assert names == {c["expectation"] for c in CASES if c["flag"] is not None}
    assert names == {c["expectation"] for c in CASES if c["flag"] is None}
    assert names == {c.name for c in build_checks()}, "every expectation class is in the suite"


@pytest.mark.parametrize("cls", custom.ALL_EXPECTATIONS, ids=lambda c: c.__name__)
def test_expectations_are_sentences_with_a_description_and_a_severity(cls):
    assert re.fullmatch(r"expect_[a-z]+(_[a-z]+)*_to_[a-z]+(_[a-z]+)*", cls.expectation_type), cls.expectation_type
    description = cls.__fields__["description"].default
    assert description and len(description) > 20 and not description.startswith("expect_")
    assert custom.severity_word(cls.__fields__["severity"].default) in ("error", "warning")


def test_the_stored_configuration_keeps_bounds_severity_and_description():
    """GX drops class defaults when serializing; ours are written out so results and Data Docs stay faithful."""
    config = custom.ExpectStatedGrowthToMatchImpliedGrowth().configuration
    assert config.kwargs["column"] == "dq_growth_gap" and config.kwargs["max_value"] == 5
    assert config.severity.value == "warning"
    assert config.description.startswith("Stated growth")


def test_the_configuration_is_served_from_a_cache_that_a_changed_field_invalidates():
    """GX asks for it ≈150 times a validation: kept between calls, a new object each time, fresh after a change."""
    e = custom.ExpectSharesToBePercentages(min_value=-5, max_value=30)
    first, again = e.configuration, e.configuration
    assert first is not again and first.kwargs is not again.kwargs and first.to_json_dict() == again.to_json_dict()
    first.kwargs["max_value"] = 99  # whoever changes the object it got changes nothing for the next caller
    assert e.configuration.kwargs["max_value"] == 30
    e.max_value = 40
    e.meta = {"scope": "indicator gdp"}
    changed = e.configuration
    assert changed.kwargs["max_value"] == 40 and changed.meta == {"scope": "indicator gdp"}


def test_gx_sees_every_column_the_suite_reads_and_not_the_message_columns():
    from expectations.facts_suite import gx_columns

    checks = build_checks()
    cols = set(gx_columns(checks))
    assert {c.expectation.column for c in checks} | {"fact_id", "measure", "unit", "kind"} <= cols
    assert not cols & {"evidence", "doc_id", "dq_conflict_with", "dq_growth_levels", "dq_expected_unit_base"}


def test_results_cover_every_expectation_and_name_the_failed_facts(outcome):
    assert len(outcome.results) == len(build_checks())
    assert {r["suite"] for r in outcome.results} == {SUITE_NAME}
    growth = [r for r in outcome.results if r["expectation"] == "expect_growth_rates_to_be_in_range" and r["scope"] == "indicator gdp"]
    assert len(growth) == 1 and not growth[0]["success"]
    bad = json.loads(growth[0]["unexpected_fact_ids"])
    assert bad == ["growth_66_percent-0"]
    assert json.loads(growth[0]["unexpected_messages"])["growth_66_percent-0"].startswith("gdp growth 66%")
    assert json.loads(growth[0]["gx_result"])["expectation_config"]["type"] == "expect_growth_rates_to_be_in_range"


def test_conflicts_are_listed_with_both_evidences(outcome):
    c = outcome.conflicts
    row = c[c["region"] == "documents_disagree区"].iloc[0]
    assert {row["left_value"], row["right_value"]} == {425.16, 452.16}
    assert {row["left_evidence"], row["right_evidence"]} == {"全年生产总值达到425.16亿元", "2023年生产总值452.16亿元"}


def test_an_empty_run_reports_every_expectation_with_nothing_checked():
    from transforms.schema import FACT_SCHEMA

    empty = FACT_SCHEMA.empty_table().append_column("fact_id", pa.array([], pa.string()))
    v = validate_facts(empty)
    assert len(v.results) == len(build_checks()) and all(r["success"] and r["element_count"] == 0 for r in v.results)


def test_row_conditions_evaluated_once_give_gx_the_same_results_as_gx_alone():
    """The memo of row masks (expectations/row_filters.py) changes how often a condition is evaluated, never a result:
    the suite run on every case's facts by GX as shipped and with the memo gives the same JSON, failing ids included."""
    from expectations.facts_suite import _validator, frame_for_gx
    from expectations.row_filters import memoized_row_filters

    facts = pa.Table.from_pylist([_fact(c["id"], i, s) for c in CASES for i, s in enumerate(c["facts"])])
    df, _ = frame_for_gx(facts)
    vd, _, _, columns = _validator()
    fmt = {"result_format": "COMPLETE", "unexpected_index_column_names": ["fact_id"]}

    def results() -> list[dict]:
        out = vd.run(batch_parameters={"dataframe": df[columns]}, result_format=fmt).to_json_dict()["results"]
        return sorted((json.dumps(r, sort_keys=True, default=str) for r in out))

    shipped = results()
    with memoized_row_filters():
        memoized = results()
    assert memoized == shipped
    assert sum('"success": false' in r for r in shipped) >= 20  # the cases make most expectations fail: the comparison has teeth


@pytest.mark.parametrize("order", ["as built", "shuffled labels"])
def test_failing_rows_named_by_column_give_gx_the_same_results_as_gx_alone(order):
    """GX's entries of failing rows built by column (expectations/unexpected_rows.py) are its own entries, keys,
    order and values: the suite on every case's facts, as shipped and with the shortcut, gives the same JSON — also
    when the frame's labels are not its positions, and when a named index column does not exist (GX's error)."""
    from expectations.facts_suite import _validator, frame_for_gx
    from expectations.row_filters import memoized_row_filters
    from expectations.unexpected_rows import named_unexpected_rows

    facts = pa.Table.from_pylist([_fact(c["id"], i, s) for c in CASES for i, s in enumerate(c["facts"])])
    df, _ = frame_for_gx(facts)
    vd, _, _, columns = _validator()
    frame = df[columns] if order == "as built" else df[columns].sample(frac=1.0, random_state=3)

    def results(names: list[str]) -> list[str]:
        fmt = {"result_format": "COMPLETE", "unexpected_index_column_names": names}
        with memoized_row_filters():
            out = vd.run(batch_parameters={"dataframe": frame}, result_format=fmt).to_json_dict()["results"]
        for r in out:  # where the error was raised (a traceback through the shortcut) is not part of the result
            for info in (r.get("exception_info") or {}).values():
                if isinstance(info, dict):
                    info.pop("exception_traceback", None)
        return sorted((json.dumps(r, sort_keys=True, default=str) for r in out))

    shipped = results(["fact_id"])
    with named_unexpected_rows():
        by_column = results(["fact_id"])
    assert by_column == shipped
    assert sum('"fact_id": "' in r for r in shipped) >= 20  # most rules name failing facts: the comparison has teeth
    with named_unexpected_rows():
        missing = results(["no_such_column"])
    assert missing == results(["no_such_column"])
    assert any("no_such_column" in r and "does not exist" in r for r in missing)


def test_failing_facts_read_on_demand_are_the_frames_records():
    """``FailingFacts`` reads a failing fact's fields when a message names them; each is what ``to_dict("records")``
    gives (Python scalars, None/NaN as pandas returns them), and a field the frame lacks is missing, not invented."""
    from expectations.facts_suite import FailingFacts, frame_for_gx

    facts = pa.Table.from_pylist([_fact(c["id"], i, s) for c in CASES for i, s in enumerate(c["facts"])])
    df, _ = frame_for_gx(facts)
    records = df.to_dict("records")
    got = FailingFacts(df)
    assert len(records) > 20
    for record in records:
        fields = got[record["fact_id"]]
        assert json.dumps(dict(fields), sort_keys=True, default=repr) == json.dumps(record, sort_keys=True, default=repr)
        assert [type(fields[k]) for k in record] == [type(v) for v in record.values()]
    with pytest.raises(KeyError):
        got[records[0]["fact_id"]]["no_such_field"]


def test_per_indicator_rows_are_what_one_expectation_per_indicator_would_report():
    """GX checks each per-indicator rule once for every indicator; each indicator's row must still say exactly what its
    own expectation said: the facts of that indicator the rule reads, those outside its range (or family) and their values."""
    import random

    from expectations.derive import allowed_units
    from transforms.seeds import indicators_by_code

    inds, rnd = indicators_by_code(), random.Random(16)
    codes = sorted(inds)[:8]
    facts = []
    for i in range(400):
        code = rnd.choice(codes)
        kind, measure = rnd.choice(["actual", "target", "change_vs_base"]), rnd.choice(["growth", "growth", "level"])
        unit = rnd.choice(["%", "%", "亿元", "万人", "吨", None]) if measure == "growth" else rnd.choice(["亿元", "万人", "吨", "%", None])
        value = rnd.choice([None, round(rnd.uniform(-60, 160), 1)])
        facts.append(_fact(f"range{i}", 0, dict(indicator=code, measure=measure, kind=kind, unit=unit, value=value if value is not None else 1.0)))
        if value is None:
            facts[-1]["value"] = None
    got = validate_facts(pa.Table.from_pylist(facts))
    rows = {(r["expectation"], r["scope"]): r for r in got.results}

    def bound(ind: dict, key: str) -> float | None:
        return float(ind[key]) if ind.get(key) not in ("", None) else None

    for code in codes:
        ind = inds[code]
        rules = [("expect_growth_rates_to_be_in_range", "growth_min", "growth_max", lambda f: f["kind"] not in ("target", "change_vs_base")),
                 ("expect_growth_targets_to_be_in_range", "target_growth_min", "target_growth_max", lambda f: f["kind"] == "target")]
        for name, low, high, kind_ok in rules:
            lo, hi = bound(ind, low), bound(ind, high)
            if lo is None or hi is None:
                assert (name, f"indicator {code}") not in rows
                continue
            scope = [f for f in facts if f["indicator"] == code and f["measure"] == "growth" and f["unit"] == "%" and kind_ok(f)
                     and f["value"] is not None]
            bad = [f for f in scope if not lo <= f["value"] <= hi]
            row = rows[(name, f"indicator {code}")]
            assert (row["element_count"], row["success"]) == (len(scope), not bad)
            assert set(json.loads(row["unexpected_fact_ids"])) == {f["fact_id"] for f in bad}
            stored = json.loads(row["gx_result"])
            assert sorted(stored["result"]["unexpected_list"]) == sorted(f["value"] for f in bad)
            assert stored["expectation_config"]["meta"]["scope"] == f"indicator {code}" and stored["success"] == (not bad)
        scope = [f for f in facts if f["indicator"] == code and f["unit"] is not None]
        bad = [f for f in scope if f["unit"] not in allowed_units(code)]
        row = rows[("expect_units_to_match_the_indicator_family", f"indicator {code}")]
        assert (row["element_count"], row["unexpected_count"]) == (len(scope), len(bad))
        assert sorted(json.loads(row["gx_result"])["result"]["unexpected_list"]) == sorted(f["unit"] for f in bad)
