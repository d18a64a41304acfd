"""Pinyin annotation stripping: the case table (positives and must-stay negatives)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from transforms.normalize import normalize_text
from transforms.pinyin import annotation_spans, is_syllable, may_expose_annotation, orphan_spans

CASES = [json.loads(line) for line in (Path(__file__).parent / "cases" / "pinyin.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]


def _strip(text: str, spans: list[tuple[int, int]]) -> str:
    out, pos = [], 0
    for s, e in spans:
        out.append(text[pos:s])
        pos = e
    return "".join(out) + text[pos:]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_pinyin_case(case):
    assert _strip(case["text"], annotation_spans(case["text"])) == case["expected"]


def test_case_table_has_negatives():
    assert sum(c["text"] == c["expected"] for c in CASES) >= 10


def test_seed_004_has_over_1200_annotations_and_none_survive():
    text = (Path(__file__).parent.parent / "seeds" / "reports" / "004_120e032f470836ab.txt").read_text(encoding="utf-8")
    spans = annotation_spans(text)
    assert len(spans) > 1200
    rest = _strip(text, spans)
    assert not annotation_spans(rest)
    for real in ("(廣東省)", "(湞江段)", "(犁市當鋪)", "(2021-2035年)", "(一期)", "(街)", "(含基本滿意率)"):
        assert real in rest, f"{real} is a real parenthesis and must survive"


def test_orphan_remnant_after_mojibake_question_mark():
    text = "魚龜?shù)戎鲗?dǎo)產"
    assert _strip(text, orphan_spans(text)) == "魚龜?戎鲗?產"


@pytest.mark.parametrize("word,ok", [("guān", True), ("zhuàng", True), ("lǜ", True), ("guan1", True), ("gdp", False), ("ppp", False), ("x", False)])
def test_is_syllable(word, ok):
    assert is_syllable(word) is ok


@pytest.mark.parametrize(
    ("text", "expected", "removed"),
    [
        ("韶(sháo)(guān)关", "韶关", 2),  # the second is exposed only once the first is gone
        ("韶(sháo) (guān)关市", "韶关市", 2),  # ... also across a space
        ("韶(sháo)　(guān)关", "韶关", 2),  # ... and an ideographic space
        ("韶(sháo)关(guān)市", "韶关市", 2),  # side by side: one pass finds both
        ("韶(sháo)(2021年)", "韶(2021年)", 1),  # what follows is real text, not exposed
    ],
)
def test_annotations_exposed_by_a_removal_go_too(text, expected, removed):
    norm = normalize_text(text)
    assert (norm.text, norm.report.pinyin_removed) == (expected, removed)


def test_may_expose_annotation_only_when_a_paren_or_space_follows():
    text = "韶(sháo)(guān)关(guān)市"
    spans = annotation_spans(text)
    assert may_expose_annotation(text, spans[:1])
    assert not may_expose_annotation(text, spans[-1:])
    assert not may_expose_annotation("街(jiē)(街)", annotation_spans("街(jiē)(街)"))  # Han in the next parens: nothing to expose
