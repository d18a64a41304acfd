"""The instrument: matching, the verbatim-value check, and the F1 goals on the gold answer key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from transforms.evaluate import F1_GOAL_INDICATOR, F1_GOAL_OVERALL, Score, evaluate, match_facts, value_is_written

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "tests" / "gold"
DOCS = ROOT / "seeds" / "reports"


def fact(**kw) -> dict:
    base = {"region": "凉州区", "indicator": "gdp", "measure": "growth", "period": "2023", "kind": "actual", "unit": "%", "value": 6.6}
    return dict(base, **kw)


def test_match_is_one_to_one_with_tolerance():
    gold = [fact(), fact()]
    got = [fact(value=6.6 + 1e-12), fact(value=6.7)]
    matches, misses, fps = match_facts(gold, got)
    assert len(matches) == 1 and len(misses) == 1 and fps == [got[1]]


@pytest.mark.parametrize("field,value", [("region", "凤泉区"), ("indicator", "retail_sales"), ("measure", "level"),
                                         ("period", "2024"), ("kind", "target"), ("unit", "个百分点")])
def test_every_key_field_matters(field, value):
    matches, misses, fps = match_facts([fact()], [fact(**{field: value})])
    assert not matches and len(misses) == 1 and len(fps) == 1


def test_scores():
    s = Score(tp=8, fp=2, fn=0)
    assert (s.precision, s.recall) == (0.8, 1.0)
    assert s.f1 == pytest.approx(2 * 0.8 / 1.8)
    assert Score().f1 == 1.0  # nothing to find, nothing found


@pytest.mark.parametrize("value,evidence,ok", [
    (425.16, "全年生产总值达到425.16亿元、增长6.6%", True),
    (-2.2, "同比下降2.2%", True),
    (2, "城镇新增就业两万人", True),
    (1200, "新增城镇就业一千二百人", True),
    (12.5, "增长１２．５％", True),
    (425.2, "全年生产总值达到425.16亿元", False),
    (6.6, "全年生产总值达到425.16亿元", False),
])
def test_value_is_written(value, evidence, ok):
    assert value_is_written({"value": value, "evidence": evidence, "start": 0, "end": len(evidence)}) is ok


def test_value_is_written_checks_offsets():
    text = "xx增长6.6%"
    assert value_is_written({"value": 6.6, "evidence": "增长6.6%", "start": 2, "end": 8}, text)
    assert not value_is_written({"value": 6.6, "evidence": "增长6.6%", "start": 1, "end": 7}, text)


def test_gold_goals_are_met():
    res = evaluate(GOLD, DOCS)
    assert res.documents == len(list(GOLD.glob("*.jsonl")))
    assert res.value_mismatches == []
    low = {k: round(s.f1, 3) for k, s in res.per_indicator.items() if s.f1 < F1_GOAL_INDICATOR}
    assert low == {}, f"indicators below {F1_GOAL_INDICATOR}: {low}; misses {res.misses} false positives {res.false_positives}"
    assert res.overall.f1 >= F1_GOAL_OVERALL
    assert res.goals_met


def test_misses_and_false_positives_are_listed(tmp_path):
    gold_dir = tmp_path / "gold"
    gold_dir.mkdir()
    src = GOLD / "004_120e032f470836ab.jsonl"
    lines = src.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first["value"] = 999.0  # a wrong gold value: one miss and one false positive
    (gold_dir / src.name).write_text("\n".join([json.dumps(first, ensure_ascii=False), *lines[1:]]) + "\n", encoding="utf-8")
    res = evaluate(gold_dir, DOCS)
    assert [m["value"] for m in res.misses] == [999.0]
    assert [(f["indicator"], f["value"]) for f in res.false_positives] == [(first["indicator"], 237.91)]
    assert res.false_positives[0]["evidence"]
    assert not res.goals_met or res.overall.f1 >= F1_GOAL_OVERALL


def test_missing_report_is_named(tmp_path):
    gold_dir = tmp_path / "gold"
    gold_dir.mkdir()
    shutil.copy(GOLD / "003_f97876cf5fb3a18d.jsonl", gold_dir)
    with pytest.raises(FileNotFoundError, match="003_f97876cf5fb3a18d"):
        evaluate(gold_dir, tmp_path)


def test_bad_gold_line_is_named(tmp_path):
    (tmp_path / "x.jsonl").write_text("{not json\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"x.jsonl:1"):
        evaluate(tmp_path, DOCS)


def test_qualifier_and_base_values_agree_with_the_gold():
    res = evaluate(GOLD, DOCS)
    assert res.detail_mismatches == []


def test_detail_mismatch_is_reported(tmp_path):
    gold_dir = tmp_path / "gold"
    gold_dir.mkdir()
    src = GOLD / "003_f97876cf5fb3a18d.jsonl"
    rows = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines()]
    target = next(r for r in rows if r["qualifier"] == "左右")
    target["qualifier"] = "以上"
    (gold_dir / src.name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    res = evaluate(gold_dir, DOCS)
    assert res.overall.f1 == 1.0
    assert [m["differs"] for m in res.detail_mismatches] == [["qualifier '左右' vs gold '以上'"]]


def test_gold_and_reports_may_share_a_directory(tmp_path):
    """tests/heldout/ keeps <name>.txt next to <name>.jsonl (and a README.md): the gold file is never read as the report."""
    stem = "004_120e032f470836ab"
    shutil.copy(DOCS / f"{stem}.txt", tmp_path)
    shutil.copy(GOLD / f"{stem}.jsonl", tmp_path)
    (tmp_path / "README.md").write_text("notes\n", encoding="utf-8")
    res = evaluate(tmp_path, tmp_path)
    assert res.documents == 1 and res.overall.f1 == 1.0


HELDOUT = ROOT / "tests" / "heldout"
HELDOUT_F1_FLOOR = 0.97  # 1.000 after the fixes; blind: round 1 0.979, round 2 0.766, round 3 0.973 (tests/heldout/README.md)


def test_heldout_reports_stay_above_the_floor():
    """Reports the extractor was not written from: other provinces, years, encodings, a term review, news pages."""
    res = evaluate(HELDOUT, HELDOUT)
    assert res.documents == len(list(HELDOUT.glob("*.jsonl"))) >= 10
    assert res.value_mismatches == []
    assert res.overall.f1 >= HELDOUT_F1_FLOOR, f"held-out F1 {res.overall.f1:.3f}; misses {res.misses} false positives {res.false_positives}"
    low = {k: round(s.f1, 3) for k, s in res.per_indicator.items() if s.f1 < F1_GOAL_INDICATOR}
    assert low == {}, f"indicators below {F1_GOAL_INDICATOR} on the held-out set: {low}"


def test_a_news_page_yields_nothing(tmp_path):
    """The holiday-tourism news page cites a work report but holds none: no facts, no crash."""
    for name in ("h6_news_ganzhou_2024.txt", "h6_news_ganzhou_2024.jsonl"):
        shutil.copy(HELDOUT / name, tmp_path)
    res = evaluate(tmp_path, tmp_path)
    assert res.documents == 1 and res.false_positives == [] and res.misses == []


REAL_GOLD = ROOT / "tests" / "gold" / "real"
REAL_DOCS = ROOT / "tests" / "corpus" / "real"
# Measured on the blind key (tests/gold/real/README.md): the extractor as handed over scored F1 0.467. The floors are
# the goals (F1 >= 0.95, precision >= 0.98), met after the rules were fixed against this key — so they show
# that the fixes hold; the held-out key (tests/gold/real_holdout) measures what they are worth on unseen reports.
REAL_FLOOR_F1, REAL_FLOOR_PRECISION = 0.95, 0.98


@pytest.fixture(scope="module")
def real():
    return evaluate(REAL_GOLD, REAL_DOCS)


def test_the_real_key_is_large_enough_and_covers_every_family(real):
    from transforms.evaluate import read_families

    assert real.documents >= 30
    assert real.overall.tp + real.overall.fn >= 600
    families = set(read_families(REAL_GOLD).values())
    assert set(real.per_family) == families and len(families) == 5


def test_every_real_document_is_identified_as_the_key_says(real):
    wrong = [(d["document"], d["got"], d["key"]["region"], d["key"]["report_year"]) for d in real.documents_checked
             if not all(d["right"].values())]
    assert len(real.documents_checked) == real.documents
    assert wrong == []


def test_real_reports_stay_above_the_floor(real):
    assert real.value_mismatches == []
    assert real.overall.f1 >= REAL_FLOOR_F1, (real.overall.precision, real.overall.recall)
    assert real.overall.precision >= REAL_FLOOR_PRECISION
    assert real.value_found and real.field_right["region"] == real.value_found  # never another region's figure


def test_eval_prints_families_fields_and_identity_for_both_keys():
    from typer.testing import CliRunner

    from govfacts.cli import app

    result = CliRunner().invoke(app, ["eval", "--show", "0"], env={"COLUMNS": "200"})
    assert "tests/gold vs" in result.output and "tests/gold/real vs" in result.output
    for text in ("per source family", "hailar_gbk", "per field", "region right", "document identity",
                 "documents with the region right: 34 of 34"):
        assert text in result.output, text
    assert result.exit_code == 0, result.output[-2000:]  # both keys' goals are met
    assert result.output.count("): met") == 2


def test_held_out_real_reports_measured_after_the_rules_were_fixed():
    """tests/gold/real_holdout: 10 reports keyed blind after this round's rules were written, never used to fix a rule.

    Measured once (F1 0.947, precision 0.975; the extractor as handed over: 0.453); the floor guards the figure.
    """
    res = evaluate(ROOT / "tests" / "gold" / "real_holdout", REAL_DOCS)
    assert res.documents == 10 and res.overall.tp + res.overall.fn >= 200
    assert all(all(d["right"].values()) for d in res.documents_checked)
    assert res.overall.f1 >= 0.94 and res.overall.precision >= 0.97, res.overall


def test_two_annotators_agree_on_the_doubly_keyed_reports():
    """tests/gold/real_second: four reports keyed again by a second, independent annotator."""
    from transforms.evaluate import read_gold

    first = second = agreed = 0
    for p in sorted((ROOT / "tests" / "gold" / "real_second").glob("*.jsonl")):
        a, b = read_gold(REAL_GOLD / p.name), read_gold(p)
        agreed += len(match_facts(a, b)[0])
        first, second = first + len(a), second + len(b)
    assert first >= 90 and 2 * agreed / (first + second) >= 0.95
