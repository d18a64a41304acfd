"""Report region and level, report year and sections."""

from __future__ import annotations

import pytest

from tests.extract_cases import document, ids, load_cases
from transforms.extract.numbers import scan_text
from transforms.extract.reference import load_reference
from transforms.extract.regions import detect_report_region
from transforms.extract.sections import detect_report_year, find_sections, section_at

DETECT = [c for c in load_cases("regions") if c.get("detect")]
YEARS = [c for c in load_cases("sections") if "report_year" in c]


@pytest.mark.parametrize("case", DETECT, ids=ids(DETECT))
def test_detect_report_region(case):
    r = detect_report_region(scan_text(case["text"]), load_reference())
    got = (r.name, r.level) if r else (None, None)
    assert got == (case["region"], case["level"])


@pytest.mark.parametrize("case", YEARS, ids=ids(YEARS))
def test_detect_report_year(case):
    assert detect_report_year(scan_text(document(case)), load_reference()) == case["report_year"]


def test_sections_of_a_five_year_report():
    text = document({"context": "five_year", "text": "这五年,地区生产总值年均增长6.0%。"})
    ref = load_reference()
    secs = find_sections(text, detect_report_year(text, ref), ref)
    at = lambda s: section_at(secs, text.index(s))  # noqa: E731
    assert (at("刚刚过去").role, at("刚刚过去").period) == ("actual", "2021")
    assert (at("这五年").role, at("这五年").period, at("这五年").span) == ("actual", "2017-2021", True)


def test_sections_are_contiguous():
    text = document({"context": "target", "text": "地区生产总值增长6%。"})
    ref = load_reference()
    secs = find_sections(text, 2024, ref)
    assert secs[0].start == 0 and secs[-1].end == len(text)
    assert all(a.end == b.start for a, b in zip(secs, secs[1:]))
