"""Page furniture removal: the case table runs through the whole normalize stage."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from transforms.furniture import FURNITURE_CSV, _lines_at, furniture_spans, load_patterns, page_metadata
from transforms.normalize import normalize_text

CASES = [json.loads(line) for line in (Path(__file__).parent / "cases" / "furniture.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_furniture_case(case):
    assert normalize_text(case["text"]).text == case["expected"]


def test_case_table_has_negatives():
    assert sum(c["id"].startswith("neg-") for c in CASES) >= 6


def test_patterns_are_data_and_compile():
    with FURNITURE_CSV.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["scope"] for r in rows} <= {"line", "inline", "block"}
    assert len(load_patterns()) == len(rows)
    for r in rows:
        re.compile(r["pattern"])
        assert r["note"], f"pattern {r['name']} needs a note saying where it was seen"


def test_metadata_survives_removal():
    text = "信息来源: 甘肃日报 发布日期: 2021-12-03 09:06 浏览次数:\n正文。"
    spans = furniture_spans(text)
    assert page_metadata(text, spans) == ("2021-12-03", "甘肃日报")
    norm = normalize_text(text)
    assert (norm.report.published, norm.report.source) == ("2021-12-03", "甘肃日报")
    assert norm.report.furniture_lines_removed == 1 and norm.report.furniture_patterns == ["page_meta"]


def test_a_line_left_by_an_inline_note_is_removed_in_another_round():
    """The forum note is inline; what remains of its line is a view counter, furniture in its own right."""
    norm = normalize_text("本帖最后由 老王 于 2021-3-1 10:00 编辑阅读量:100\n正文。")
    assert norm.text == "正文。"
    assert norm.report.furniture_lines_removed == 2
    assert norm.report.furniture_patterns == ["forum_edit_note", "page_meta"]


def test_removing_whole_lines_needs_no_second_round(monkeypatch):
    import transforms.normalize as normalize

    calls = []
    real = normalize.furniture_spans
    monkeypatch.setattr(normalize, "furniture_spans", lambda text, **kw: calls.append(text) or real(text, **kw))
    assert normalize_text("扫一扫在手机打开当前页\n正文。").text == "正文。"
    assert len(calls) == 1


SAMPLE_TEXTS = [p.read_text(encoding="utf-8") for p in sorted((Path(__file__).parent.parent / "seeds" / "reports").glob("*.txt"))]


@pytest.mark.parametrize("text", [c["text"] for c in CASES] + SAMPLE_TEXTS)
def test_later_rounds_trying_only_edited_lines_find_what_a_full_rescan_finds(text, monkeypatch):
    """After a round, line patterns are tried only on the lines an edit touched: same result as trying all."""
    import transforms.normalize as normalize

    fast = normalize_text(text)
    real = normalize.furniture_spans
    monkeypatch.setattr(normalize, "furniture_spans", lambda t, lines_at=None: real(t))
    full = normalize_text(text)
    assert (fast.text, fast.report.furniture_lines_removed) == (full.text, full.report.furniture_lines_removed)


def test_lines_at_reads_the_lines_holding_the_offsets():
    text = "一行\n二行\n三行"
    assert furniture_spans(text, lines_at=[]) == []
    lines = dict(_lines_at(text, [0, 3, 4, 99]))
    assert lines == {0: "一行", 3: "二行", 6: "三行"}
