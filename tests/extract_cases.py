"""Shared helpers for the extractor's case tables (tests/cases/*.jsonl).

A sentence case names a *context*: the minimal report around the sentence that
fixes the report region, the report year and the section (review, target, five-
year review, five-year goals …), so one sentence can be checked as the
extractor would read it inside a real report.
"""

from __future__ import annotations

import json
from pathlib import Path

from transforms.evaluate import value_is_written
from transforms.extract import extract_facts

CASES_DIR = Path(__file__).parent / "cases"

_DISTRICT_2024 = "2024年武威市凉州区政府工作报告\n——2024年1月5日在武威市凉州区第九届人民代表大会第三次会议上\n凉州区区长 崔振华\n各位代表:\n"
_DISTRICT_2022 = "工作报告——2022年4月20日在河南省新乡市凤泉区第十届人民代表大会第一次会议上\n各位代表:\n"
CONTEXTS = {
    "review": _DISTRICT_2024 + "2023年工作回顾\n{text}\n",
    "target": _DISTRICT_2024 + "2023年工作回顾\n经济平稳。\n2024年工作安排\n{text}\n",
    "targets_list": _DISTRICT_2024 + "2024年工作安排\n今年经济社会发展的主要预期目标是:{text}\n",
    "five_year": _DISTRICT_2022 + "一、2021年及过去五年工作回顾\n刚刚过去的2021年,经济平稳。\n过去的五年,是极不平凡的五年。\n{text}\n",
    "goals": _DISTRICT_2022 + "一、2021年工作回顾\n经济平稳。\n二、今后五年的奋斗目标\n{text}\n",
    "county_review": "2024年壶关县政府工作报告 2024年4月16日在壶关县第十七届人民代表大会第四次会议上 县长 李 杰 各位代表:\n一、2023年工作回顾\n{text}\n",
    "city_review": "2024年武威市政府工作报告\n——2024年1月10日在武威市第五届人民代表大会第四次会议上\n各位代表:\n2023年工作回顾\n{text}\n",
    "province_review": "2024年甘肃省政府工作报告\n——2024年1月24日在甘肃省第十四届人民代表大会第二次会议上\n各位代表:\n一、2023年工作回顾\n{text}\n",
    "raw": "{text}",
}
FACT_KEYS = ("indicator", "measure", "value", "unit", "period", "kind", "qualifier")


def load_cases(name: str) -> list[dict]:
    """The cases of ``tests/cases/<name>.jsonl`` (blank lines and // comments skipped)."""
    out = []
    for line in (CASES_DIR / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("//"):
            out.append(json.loads(line))
    return out


def ids(cases: list[dict]) -> list[str]:
    """pytest ids: the case ids."""
    return [c["id"] for c in cases]


def document(case: dict) -> str:
    """The text the case is read in."""
    return CONTEXTS[case.get("context", "review")].format(text=case["text"])


def project(fact, keys) -> tuple:
    d = fact if isinstance(fact, dict) else dict(fact.contract(), preliminary=fact.preliminary, region_level=fact.region_level)
    return tuple((k, round(d[k], 9) if isinstance(d.get(k), float) else d.get(k)) for k in keys)


def check_sentence_case(case: dict) -> None:
    """Extract the case's document and compare with its expected facts (order does not matter)."""
    text = document(case)
    facts = extract_facts(text, "case")
    for f in facts:
        assert text[f.start:f.end] == f.evidence, f"evidence is not text[start:end] for {f}"
        assert value_is_written(f), f"value {f.value} is not written in its evidence {f.evidence!r}"
    expected = case["facts"]
    keys = list(FACT_KEYS)
    for extra in ("preliminary", "region", "region_level"):
        if any(extra in e for e in expected):
            keys.append(extra)
    defaults = {"qualifier": None, "preliminary": False}
    want = sorted(project(dict(defaults, **e), keys) for e in expected)
    got = sorted(project(f, keys) for f in facts)
    assert got == want, f"\n text: {case['text']}\n got:  {got}\n want: {want}"
