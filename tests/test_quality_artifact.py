"""The run's Prefect artifact and the merge of results validated in groups."""

from __future__ import annotations

import json

from expectations.artifact import by_expectation, validation_markdown
from expectations.facts_suite import merge_result_rows


def _row(expectation, scope, checked, bad: dict, severity="error"):
    gx = {"success": not bad, "result": {"element_count": checked, "unexpected_count": len(bad), "missing_count": 0,
                                         "unexpected_index_list": [{"fact_id": f} for f in bad]}}
    return dict(suite="govfacts_facts", expectation=expectation, description="d", severity=severity, scope=scope,
                success=not bad, element_count=checked, unexpected_count=len(bad), unexpected_fact_ids=json.dumps(list(bad)),
                unexpected_messages=json.dumps(bad, ensure_ascii=False), gx_result=json.dumps(gx))


SUMMARY = dict(run_id="r1", files_in=7, documents=6, skipped=0, duplicates=0, files_quarantined=1, facts_extracted=10,
               facts_published=9, facts_warned=1, facts_quarantined=1, snapshot_id=3,
               quarantined=[dict(source_path="in/broken.txt", reason="undecodable", detail="in/broken.txt is not text")])


def test_groups_merge_into_one_row_per_expectation():
    merged = merge_result_rows([[_row("expect_a", "indicator gdp", 5, {"f1": "gdp growth 66%"})],
                                [_row("expect_a", "indicator gdp", 7, {"f9": "gdp growth 70%"})],
                                [_row("expect_a", "indicator gdp", 3, {})]])
    assert len(merged) == 1
    m = merged[0]
    assert (m["element_count"], m["unexpected_count"], m["success"]) == (15, 2, False)
    assert json.loads(m["unexpected_fact_ids"]) == ["f1", "f9"]
    assert json.loads(m["unexpected_messages"]) == {"f1": "gdp growth 66%", "f9": "gdp growth 70%"}
    gx = json.loads(m["gx_result"])
    assert gx["result"]["element_count"] == 15 and [u["fact_id"] for u in gx["result"]["unexpected_index_list"]] == ["f1", "f9"]


def test_the_table_artifact_adds_up_instances_and_lists_failures_first():
    rows = by_expectation([_row("expect_b", "all facts", 10, {}), _row("expect_a", "indicator gdp", 4, {"f1": "x"}),
                           _row("expect_a", "indicator cpi", 6, {})])
    assert [r["expectation"] for r in rows] == ["expect_a", "expect_b"]
    assert rows[0] == dict(expectation="expect_a", severity="error", instances=2, checked=10, failed=1, success=False, pass_rate=90.0)


def test_the_markdown_shows_counts_in_and_out_and_why_facts_failed():
    md = validation_markdown(SUMMARY, [_row("expect_growth_rates_to_be_in_range", "indicator gdp", 4, {"f1": "gdp growth 66% is out"}),
                                       _row("expect_facts_to_agree_across_documents", "across documents", 2, {"f2": "disagrees"}, "warning")])
    assert "**files in 7** = documents 6 + already loaded 0 + duplicate names 0 + quarantined files 1 → reconciles ✅" in md
    assert "quarantined file `in/broken.txt`: undecodable" in md
    assert "| ❌ | `expect_growth_rates_to_be_in_range` | error | 1 | 4 | 1 | 75.0% |" in md
    assert "| ⚠️ | `expect_facts_to_agree_across_documents` | warning |" in md
    assert "- gdp growth 66% is out" in md


def test_the_markdown_says_when_counts_do_not_reconcile():
    assert "DOES NOT reconcile ❌" in validation_markdown(dict(SUMMARY, documents=5), [])
