"""The extract stage on whole documents: the samples, offsets, mojibake flags, odd pages, and a property test."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transforms.evaluate import value_is_written
from transforms.extract import extract_document, extract_facts
from transforms.normalize import normalize_report, normalize_text
from transforms.schema import KINDS, MEASURES, QUALIFIERS, facts_to_table

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "seeds" / "reports").glob("*.txt"))


def _facts(stem: str):
    path = next(p for p in SAMPLES if p.name.startswith(stem))
    data = path.read_bytes()
    norm = normalize_report(data, str(path))
    return norm, extract_document(norm, hashlib.sha256(data).hexdigest())


def _has(facts, **kw) -> bool:
    return any(all(getattr(f, k) == v for k, v in kw.items()) for f in facts)


@pytest.mark.parametrize("stem,facts", [
    ("000", [dict(region="凉州区", indicator="gdp", measure="level", value=425.16, unit="亿元", period="2023", kind="actual"),
             dict(region="凉州区", indicator="gdp", measure="growth", value=6.6, unit="%", period="2023", kind="actual")]),
    ("001", [dict(region="凤泉区", indicator="gdp", measure="level", value=83.18, unit="亿元", period="2021", kind="actual"),
             dict(region="凤泉区", indicator="gdp", measure="growth", value=4.4, unit="%", period="2021", kind="actual")]),
    ("004", [dict(region="浈江区", indicator="gdp", measure="level", value=237.91, unit="亿元", period="2023", kind="actual"),
             dict(region="浈江区", indicator="gdp", measure="growth", value=4.5, unit="%", period="2023", kind="actual")]),
    ("003", [dict(region="壶关县", indicator="gdp", measure="growth", value=6.0, unit="%", period="2024", kind="target", qualifier="左右")]),
], ids=["000", "001", "004", "003"])
def test_headline_facts_of_the_samples(stem, facts):
    _norm, got = _facts(stem)
    for want in facts:
        assert _has(got, **want), f"missing {want}"


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name[:3] for p in SAMPLES])
def test_document_invariants(path):
    norm, facts = _facts(path.name[:3])
    assert facts
    for f in facts:
        assert norm.text[f.start:f.end] == f.evidence
        assert value_is_written(f, norm.text)
        assert f.measure in MEASURES and f.kind in KINDS and (f.qualifier is None or f.qualifier in QUALIFIERS)
        assert f.rule and f.region_level in ("province", "city", "county", "district") and f.report_year
        assert normalize_text(norm.raw_text[f.raw_start:f.raw_end]).text == f.evidence
        assert f.mojibake_overlap is False
    assert facts_to_table(facts).num_rows == len(facts)
    keys = [(f.indicator, f.measure, f.period, f.kind, f.value, f.unit) for f in facts]
    assert len(keys) == len(set(keys)), "a number stated twice is one fact"


def test_mojibake_overlap_is_flagged():
    norm, facts = _facts("000")
    gdp = next(f for f in facts if f.indicator == "gdp" and f.measure == "level")
    norm.report.unrepaired_spans = [(gdp.start + 2, gdp.start + 3)]
    flagged = extract_document(norm, "x")
    assert next(f for f in flagged if f.indicator == "gdp" and f.measure == "level").mojibake_overlap is True
    assert not next(f for f in flagged if f.indicator == "cpi").mojibake_overlap


def test_facts_carry_doc_id():
    assert {f.doc_id for f in extract_facts("2024年易县政府工作报告\n2023年工作回顾\n地区生产总值增长5%。", "abc")} == {"abc"}


REPORTISH = [
    "2024年武威市凉州区政府工作报告\n", "2023年工作回顾\n", "过去五年,", "今年经济社会发展的主要预期目标是:", "到2026年,",
    "地区生产总值", "城乡居民人均可支配收入", "接待游客", "旅游综合收入", "三次产业结构", "民生支出占一般公共预算支出的", "固定资产投资",
    "增长", "下降", "年均增长", "累计完成", "较2017年", "分别", "均", "达到", "由", "提高到", "其中", "全省", "预计", "力争",
    "6.6%", "425.16亿元", "1.39万户", "两万人", "一千二百人", "11.1:47.7:41.2", "5％～5.5％", "１２．５％", "千亿元", "个百分点",
    "以上", "左右", "以内", "近", "突破", "超", "约", "、", "和", ",", "，", ";", "。", "\n", "第", "十四五", "末",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(REPORTISH), st.text(max_size=6)), max_size=40))
def test_any_text_never_raises_and_evidence_holds(parts):
    text = "".join(parts)
    for f in extract_facts(text, "h"):
        assert text[f.start:f.end] == f.evidence
        assert value_is_written(f, text)
        assert f.measure in MEASURES and f.kind in KINDS


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_unicode_never_raises(text):
    extract_facts(text, "h")


@pytest.mark.parametrize("body", ["一" * 50_000, "9" * 50_000 + "亿元", "地区生产总值" * 5_000, "增长6%、" * 5_000,
                                  "城乡居民人均可支配收入分别达到" + "1元、" * 5_000, "地区生产总值增长6%," * 3_000],
                         ids=["cn-digit-run", "arabic-digit-run", "aliases-only", "numbers-only", "huge-list", "one-giant-sentence"])
def test_pathological_pages_do_not_crash(body):
    text = "2024年武威市凉州区政府工作报告\n2023年工作回顾\n" + body
    for f in extract_facts(text, "p"):
        assert text[f.start:f.end] == f.evidence


@pytest.mark.parametrize("encoding", ["gb18030", "big5"])
def test_same_facts_from_a_legacy_encoding(encoding):
    path = next(p for p in SAMPLES if p.name.startswith("003"))
    text = path.read_text(encoding="utf-8")
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        data = text.encode(encoding, errors="ignore")
    want = {(f.indicator, f.measure, f.value, f.unit, f.period, f.kind) for f in _facts("003")[1]}
    got = {(f.indicator, f.measure, f.value, f.unit, f.period, f.kind) for f in extract_document(normalize_report(data, f"003.{encoding}"), "x")}
    assert got == want
