"""Properties of the normalize stage on generated text: idempotent, offsets consistent, never crashes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transforms.normalize import normalize_text

# Pieces that exercise every step: traditional and simplified text, pinyin
# annotations, '?' runs and real question marks, fullwidth forms, odd spaces,
# furniture lines, HTML-looking text (plain mode must leave it alone).
_PIECES = [
    "韶關(guān)市", "湞江區(qū)", "發(fā)展", "經濟", "政府工作報告", "增长", "12.5%", "１２．５％", "，", "、", "。",
    "“", "”", "(一)", "(2021-2035年)", "(GDP)", "?", "??萍紕撔", "?!比蝿?", "?,F代", "吗?", " ", "  ", "\u3000",
    "\t", "\n", "\n\n", "\r\n", "\n\n\n", "本帖最后由 a 于 2024-8-5 09:55 编辑", "信息来源: 甘肃日报", "首页", ">今日武威>媒体",
    "扫一扫在手机打开当前页", "|", "&amp;", "<p>", "图为", "A", "z", "0", "\u200b", "\ufffd", "(de)",
]
_docs = st.lists(st.sampled_from(_PIECES), min_size=1, max_size=40).map("".join)
_any_text = st.text(max_size=120)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=_docs)
def test_idempotent_on_report_like_text(raw):
    once = normalize_text(raw).text
    assert normalize_text(once).text == once


@settings(max_examples=200, deadline=None)
@given(raw=_any_text)
def test_idempotent_on_any_text(raw):
    once = normalize_text(raw).text
    assert normalize_text(once).text == once


@settings(max_examples=200, deadline=None)
@given(raw=st.one_of(_docs, _any_text))
def test_offsets_are_consistent(raw):
    norm = normalize_text(raw)
    assert len(norm.offsets) == len(norm.text) == len(norm.ends)
    previous = -1
    for i in range(len(norm.text)):
        assert 0 <= norm.offsets[i] < norm.ends[i] <= len(raw)
        assert norm.offsets[i] >= previous
        previous = norm.offsets[i]
    for s, e in norm.report.unrepaired_spans + norm.report.repaired_spans:
        assert 0 <= s < e <= len(norm.text)


@settings(max_examples=100, deadline=None)
@given(raw=_docs)
def test_html_mode_never_crashes(raw):
    normalize_text("<html><body><p>" + raw + "</p></body></html>", html=True)


def test_a_breadcrumb_recognisable_only_after_t2s_is_removed_in_one_normalization():
    """Found by hypothesis: 韶關 in a breadcrumb line is furniture only once converted; idempotence must hold."""
    raw = ">今日武威>媒体韶關(guān)市韶關(guān)市12.5%12.5%12.5%，  12.5%"
    once = normalize_text(raw).text
    assert normalize_text(once).text == once
