"""The normalize stage on the five samples: golden texts, canonical-form guarantees, provenance, report."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests.golden_util import assert_golden
from transforms.canonical import sentence_spans
from transforms.errors import InputRejected
from transforms.mojibake import LOST
from transforms.normalize import Normalized, converter, normalize_report, normalize_text
from transforms.pinyin import annotation_spans
from transforms.script import opencc_converter

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "seeds" / "reports").glob("*.txt"))
IDS = [p.stem for p in SAMPLES]
_NORMALIZED: dict[str, Normalized] = {}


def normalized(path: Path) -> Normalized:
    if path.stem not in _NORMALIZED:
        _NORMALIZED[path.stem] = normalize_report(path.read_bytes(), path.name)
    return _NORMALIZED[path.stem]


@pytest.mark.parametrize("path", SAMPLES, ids=IDS)
def test_golden_normalized_text(path):
    assert_golden(f"normalized/{path.stem}.txt", normalized(path).text)


@pytest.mark.parametrize("path", SAMPLES, ids=IDS)
def test_no_traditional_left(path):
    text = normalized(path).text
    assert opencc_converter("t2s").convert(text) == text  # the real OpenCC, not our table


@pytest.mark.parametrize("path", SAMPLES, ids=IDS)
def test_no_pinyin_annotation_left(path):
    text = normalized(path).text
    assert annotation_spans(text) == []
    assert not re.search(r"[(（][a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü]{1,6}[)）]", text)


@pytest.mark.parametrize("path", SAMPLES, ids=IDS)
def test_no_mojibake_left_unflagged(path):
    """Every '?'-run is gone; each U+FFFD sits inside a span reported as unrepaired."""
    norm = normalized(path)
    assert "?" not in norm.text
    flagged = set()
    for s, e in norm.report.unrepaired_spans:
        flagged.update(range(s, e))
    lost = {i for i, c in enumerate(norm.text) if c == LOST}
    assert lost <= flagged


@pytest.mark.parametrize("path", SAMPLES, ids=IDS)
def test_canonical_form(path):
    text = normalized(path).text
    assert not re.search(r"[\uff01-\uff5e\u3000\t\r]", text.replace("，", "")), "fullwidth or odd whitespace left"
    assert "  " not in text and "\n\n" not in text and text == text.strip()
    assert all(line == line.strip() for line in text.split("\n"))


@pytest.mark.parametrize("path", SAMPLES, ids=IDS)
def test_idempotent_on_samples(path):
    text = normalized(path).text
    assert normalize_text(text).text == text


@pytest.mark.parametrize("path", SAMPLES, ids=IDS)
def test_offsets_map_every_character(path):
    norm = normalized(path)
    assert len(norm.offsets) == len(norm.text) == len(norm.ends)
    offsets = list(norm.offsets)
    assert offsets == sorted(offsets)
    assert all(0 <= o < len(norm.raw_text) for o in offsets)
    assert all(s < e for s, e in zip(norm.offsets, norm.ends))


def _inside_replacement(norm: Normalized, i: int) -> bool:
    """Whether canonical char i is part of a multi-character replacement (a repaired run)."""
    return norm.ends[i] - norm.offsets[i] > 1


@pytest.mark.parametrize("path", SAMPLES, ids=IDS)
def test_provenance_sentences_roundtrip(path):
    """Every sentence maps to a raw slice that normalizes to the same sentence.

    Sentences that touch a mojibake run are left out: a run's repair depends
    on its neighbours, which a slice may cut off.
    """
    norm = normalized(path)
    checked = 0
    for s, e in sentence_spans(norm.text):
        if any(_inside_replacement(norm, i) for i in range(s, e)):
            continue
        a, b = norm.raw_span(s, e)
        assert normalize_text(norm.raw_text[a:b]).text == norm.text[s:e], (s, e)
        checked += 1
    assert checked > 20


@pytest.mark.parametrize("path", SAMPLES, ids=IDS)
def test_evidence_like_spans_map_back(path):
    """Short spans around every number map back to raw text whose conversion is the span."""
    norm = normalized(path)
    t2s = opencc_converter("t2s").convert
    for m in re.finditer(r"[\u4e00-\u9fff]{2,6}\d+(?:\.\d+)?(?:%|亿元|万元|个)?", norm.text):
        s, e = m.span()
        a, b = norm.raw_span(s, e)
        raw = norm.raw_text[a:b]
        if any(norm.ends[i] - norm.offsets[i] > 1 for i in range(s, e)):
            continue
        assert normalize_text(raw).text == m.group(0), (m.group(0), raw)
        assert t2s(re.sub(r"\s?[(（][a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü]+[)）]", "", raw)) == m.group(0)


def test_report_fields_filled():
    rep = normalized(SAMPLES[4]).report  # 004: pinyin and mojibake
    assert rep.encoding == "utf-8" and rep.confidence == 1.0
    assert rep.pinyin_removed > 1200
    assert rep.mojibake_found == 10 and rep.chars_converted > 1000 and rep.script_config == "t2s"
    rep2 = normalized(SAMPLES[2]).report  # 002: furniture
    assert rep2.furniture_lines_removed >= 8 and "image_caption_block" in rep2.furniture_patterns
    assert rep2.published == "2021-12-03"


def test_sample_002_furniture_gone_body_kept():
    text = normalized(SAMPLES[2]).text
    for junk in ("首页", "今日武威", "浏览次数", "扫一扫", "Produced By", "天马湖全景。"):
        assert junk not in text
    assert text.startswith("奋力谱写凉州高质量发展新篇章\n")
    assert "步履铿锵行五载,昂首奋进再出发。" in text


def test_script_conversion_is_configurable():
    assert normalize_text("經濟發展", script=None).text == "經濟發展"
    assert normalize_text("經濟發展").text == "经济发展"
    assert normalize_text("经济发展", script="s2t").text == "經濟發展"


def test_fullwidth_rules():
    assert normalize_text("增长１２.５％").text == "增长12.5%"
    assert normalize_text("ＧＤＰ（亿元）：１２，增长５％。").text == "GDP(亿元):12,增长5%。"
    assert normalize_text("建成１２，５个项目、完成。").text == "建成12，5个项目、完成。"


def test_sentences():
    text = "各位代表:\n一是增长5%。二是“稳”字当头!三是? 最后"
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["各位代表:", "一是增长5%。", "二是“稳”字当头!", "三是?", "最后"]


@pytest.mark.parametrize("data,reason", [
    (b"", "empty"),
    (b"   \r\n\t  ", "empty"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "binary"),
    (bytes(range(256)) * 8, "binary"),
    ("2024年政府工作报告".encode("utf-8")[:-1], "truncated"),
    ("2024年政府工作报告".encode("gb18030")[:-1], "truncated"),
    ("扫一扫在手机打开当前页\nProduced By 大汉网络 大汉版通发布系统\n|\n".encode("utf-8"), "no_content"),
    ("首页\n>今日武威>媒体看武威\n信息来源: 甘肃日报 发布日期: 2021-12-03 09:06 浏览次数:\n".encode("gb18030"), "no_content"),
])
def test_bad_input_rejected_with_reason(data, reason):
    with pytest.raises(InputRejected) as info:
        normalize_report(data, "inbox/bad.txt")
    assert info.value.reason == reason
    assert "inbox/bad.txt" in info.value.message


def test_length_changing_conversion_keeps_offsets():
    """OpenCC may convert a phrase to one of another length: offsets must still map back."""
    from transforms.canonical import convert_script
    from transforms.tracked import TrackedText

    raw = "一行不变\n经济发展很快\n最后一行"
    doc = TrackedText(raw)
    changed = convert_script(doc, lambda s: s.replace("发展", "发展了"))
    assert doc.text == "一行不变\n经济发展了很快\n最后一行" and changed >= 1
    i = doc.text.index("很快")
    assert raw[doc.starts[i]:doc.ends[i + 1]] == "很快"
    j = doc.text.index("最后")
    assert raw[doc.starts[j]] == "最"
    assert list(doc.starts) == sorted(doc.starts)


def test_offsets_survive_a_rebuilt_row_without_ends():
    """A Normalized rebuilt from Arrow has no ``ends``: raw_span falls back on offsets."""
    norm = normalized(SAMPLES[4])
    rebuilt = Normalized(text=norm.text, offsets=list(norm.offsets), raw_text=norm.raw_text, report=norm.report)
    s = norm.text.index("韶关市浈江区")
    a, b = rebuilt.raw_span(s, s + 6)
    assert norm.raw_text[a:b] == "韶關(guān)市湞江區"


def test_invisible_table_is_the_documented_set():
    """line_ending_edits looks characters up in a table: exactly the zero-width characters and the
    control characters (Unicode category Cc: C0, DEL, C1) other than tab, newline and CR."""
    import unicodedata

    from transforms.canonical import _INVISIBLE, _ZERO_WIDTH_CHARS

    expected = {ord(c) for c in _ZERO_WIDTH_CHARS} | {
        cp for cp in range(0x10000) if unicodedata.category(chr(cp)) == "Cc" and chr(cp) not in "\t\n\r"}
    assert set(np.flatnonzero(_INVISIBLE).tolist()) == expected
    assert {ord(c) for c in "\u200b\ufeff\u00ad\x00\x1f\x7f\x85"} <= expected
