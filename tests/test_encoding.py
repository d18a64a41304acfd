"""Decoding: the encoding matrix on the samples, detection, bad bytes, and round-trip properties."""

from __future__ import annotations

import codecs
import html
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transforms.encoding import common_share, decode_report
from transforms.errors import InputRejected
from transforms.normalize import normalize_report

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "seeds" / "reports").glob("*.txt"))
IDS = [p.stem for p in SAMPLES]

BOMS = {"utf-8-sig": codecs.BOM_UTF8, "utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}
CODEC = {"utf-8-sig": "utf-8", "utf-16-le": "utf-16-le", "utf-16-be": "utf-16-be", "gb18030": "gb18030", "big5": "big5"}
MATRIX = list(CODEC)


def encode(text: str, encoding: str) -> bytes:
    """Bytes of ``text`` as a user would have them in ``encoding`` (BOM included where the encoding has one)."""
    return BOMS.get(encoding, b"") + text.encode(CODEC[encoding])


def representable(text: str, encoding: str) -> str | None:
    """The sample as far as ``encoding`` can hold it (unrepresentable characters dropped), or None if it loses >10%."""
    codec = CODEC[encoding]
    kept = text.encode(codec, errors="ignore").decode(codec)
    return kept if len(kept) >= 0.9 * len(text) else None


def html_page(text: str, charset: str) -> str:
    """The text as a saved web page: head, script, style, one <br> per line break, entities escaped."""
    body = "<br>\n".join(html.escape(line) for line in text.split("\n"))
    return (
        f'<!DOCTYPE html>\n<html><head><meta http-equiv="Content-Type" content="text/html; charset={charset}">'
        f"<title>工作 - Site</title><style>p {{ margin: 0 }}</style>"
        f'<script>var s = "<p>12.5%</p>";</script></head>\n<body><div class="article">{body}</div>'
        f"<!-- views: 999 --></body></html>\n"
    )


_PLAIN: dict[str, str] = {}


def plain_normalized(text: str) -> str:
    if text not in _PLAIN:
        _PLAIN[text] = normalize_report(text.encode("utf-8"), "plain").text
    return _PLAIN[text]


@pytest.mark.parametrize("encoding", MATRIX)
@pytest.mark.parametrize("path", SAMPLES, ids=IDS)
def test_encoding_matrix_same_canonical_text(path, encoding):
    text = representable(path.read_text(encoding="utf-8"), encoding)
    if text is None:
        pytest.skip(f"{path.stem} is not representable in {encoding}")
    norm = normalize_report(encode(text, encoding), f"{path.stem}.{encoding}")
    assert norm.report.encoding == (encoding if encoding != "big5" else "big5")
    assert norm.text == plain_normalized(text)


@pytest.mark.parametrize("charset", ["utf-8", "gb2312", "gbk", "big5"])
@pytest.mark.parametrize("path", SAMPLES, ids=IDS)
def test_html_page_same_canonical_text(path, charset):
    codec = {"utf-8": "utf-8", "gb2312": "gb18030", "gbk": "gb18030", "big5": "big5"}[charset]
    text = path.read_text(encoding="utf-8")
    kept = text.encode(codec, errors="ignore").decode(codec)
    if len(kept) < 0.9 * len(text):
        pytest.skip(f"{path.stem} is not representable in {charset}")
    norm = normalize_report(html_page(kept, charset).encode(codec), f"{path.stem}.html")
    assert norm.report.html
    assert norm.text == plain_normalized(kept)


def test_html_offsets_point_into_the_page():
    page = html_page("各位代表:\n全年地区生产总值增长6.5%。", "utf-8")
    norm = normalize_report(page.encode("utf-8"), "page.html")
    s = norm.text.index("增长6.5%")
    a, b = norm.raw_span(s, s + len("增长6.5%"))
    assert page[a:b] == "增长6.5%"


def test_html_entities_and_meta_charset():
    page = '<html><head><meta charset="gbk"></head><body><p>增长&nbsp;5&#37;&amp;更多</p><p>第二段</p></body></html>'
    decoded = decode_report(page.encode("gbk"), "x.html")
    assert decoded.html and decoded.encoding == "gb18030"
    norm = normalize_report(page.encode("gbk"), "x.html")
    assert norm.text == "增长 5%&更多\n第二段"
    amp = norm.text.index("&")
    a, b = norm.raw_span(amp, amp + 1)
    assert norm.raw_text[a:b] == "&amp;"


@pytest.mark.parametrize("path", SAMPLES, ids=IDS)
def test_detection_is_confident_on_samples_as_gb18030(path):
    decoded = decode_report(path.read_text(encoding="utf-8").encode("gb18030"), path.name)
    assert decoded.encoding == "gb18030" and decoded.confidence >= 0.8


def test_big5_not_mistaken_for_gbk():
    text = "現在,我代表區人民政府,向大會報告工作,請予審議。全年實現地區生產總值83.18億元,同比增長4.4%。" * 3
    decoded = decode_report(text.encode("big5"), "t.txt")
    assert decoded.encoding == "big5" and decoded.text == text


def test_common_share_tells_right_from_wrong_reading():
    text = "現在,我代表區人民政府,向大會報告工作,請予審議。"
    right = common_share(text)
    wrong = common_share(text.encode("big5").decode("gb18030", errors="replace"))
    assert right > 0.9 > wrong


@pytest.mark.parametrize("data,reason", [
    (b"", "empty"),
    (codecs.BOM_UTF8, "empty"),
    (b"PK\x03\x04\x14\x00\x06\x00", "binary"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
    (b"\x00\x01abc\x00\x00\xffz" * 50, "binary"),
    (b"a\x00\x01\x00\x02\x00" * 50, "undecodable"),  # UTF-16 pattern without a BOM, but not text in it: asked to re-save
    (bytes(range(1, 32)) * 40, "binary"),
    ("政府工作报告".encode("utf-8") + b"\xe5\xb7", "truncated"),
    (codecs.BOM_UTF16_LE + "政府工作报告".encode("utf-16-le")[:-1], "truncated"),
    (bytes([0x81, 0x30, 0xFF, 0xFE, 0x80, 0xA0]) * 200, "undecodable"),
    ("\ufffd".encode("utf-8") * 200 + "报告".encode("utf-8"), "undecodable"),
])
def test_bad_bytes_rejected(data, reason):
    with pytest.raises(InputRejected) as info:
        decode_report(data, "inbox/x.bin")
    assert info.value.reason == reason
    assert "inbox/x.bin" in info.value.message


# --- properties -------------------------------------------------------------

_COMMON = "政府工作报告经济发展全年增长亿元同比万人项目建设城乡居民收入现代化产业区县市省人民代表大会"
_TRAD = "現在我代表區人民政府向大會報告工作請予審議經濟發展實現地區生產總值億元同比增長"
_ASCII = "0123456789%.,:;ABCxyz "
_text = st.text(alphabet=st.sampled_from(_COMMON + _TRAD + _ASCII + "。、“”\n"), min_size=24, max_size=200).filter(
    lambda t: sum(c > "\u2fff" for c in t) >= 12
)


@pytest.mark.parametrize("encoding", MATRIX)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(text=_text)
def test_decode_undoes_encode(encoding, text):
    try:
        data = encode(text, encoding)
    except UnicodeEncodeError:
        return  # e.g. a simplified character Big5 does not have
    assert decode_report(data, "p.txt").text == text


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400))
def test_never_raises_on_arbitrary_bytes(data):
    try:
        normalize_report(data, "fuzz.bin")
    except InputRejected as exc:
        assert exc.reason in {"empty", "binary", "truncated", "undecodable", "no_content"}


def test_utf8_with_a_stray_byte_is_still_utf8():
    text = "全年地区生产总值增长6.5%。" * 40
    data = text.encode("utf-8")
    data = data[:74] + b"\xff" + data[74:]  # between two characters
    decoded = decode_report(data, "stray.txt")
    assert decoded.encoding == "utf-8" and decoded.confidence < 1.0
    assert decoded.text.replace("\ufffd", "") == text


def test_utf16_html_page_is_seen_as_html():
    page = html_page("各位代表:\n增长6.5%。", "utf-16")
    norm = normalize_report(codecs.BOM_UTF16_LE + page.encode("utf-16-le"), "page.html")
    assert norm.report.html and norm.text == "各位代表:\n增长6.5%。"


@settings(max_examples=150, deadline=None)
@given(page=st.lists(st.sampled_from(list("<>/=\"' &#;abpdivscriptbrx1-!") + ["<p>", "</p>", "<script>", "</script>", "&amp;", "&#37;", "增长", "\n"]), max_size=60).map("".join))
def test_broken_html_never_crashes(page):
    from transforms.normalize import normalize_text

    norm = normalize_text("<html><body>" + page, html=True)
    assert len(norm.offsets) == len(norm.text)


@pytest.mark.parametrize("codec", ["utf-16-be", "utf-16-le"])
def test_utf16_without_bom_is_read(codec):
    """Issue 14: a UTF-16 file saved without a byte-order mark is text, not a binary file."""
    text = "2023年全区地区生产总值达到425.16亿元，增长一点五个百分点。\n一、过去一年的工作回顾\n" * 20
    got = decode_report(text.encode(codec), "inbox/x.txt")
    assert got.encoding == codec and got.text == text


def test_a_few_stray_nuls_do_not_make_a_report_binary():
    text = "2023年全区地区生产总值达到425.16亿元，增长6.5%。\n" * 100
    data = text.encode("utf-8")
    cut = data.index(b"\n") + 1
    got = decode_report(data[:cut] + b"\x00" + data[cut:5 * cut] + b"\x00\x00" + data[5 * cut:], "inbox/x.txt")
    assert got.encoding == "utf-8" and got.text == text


def test_a_declared_charset_that_lies_is_checked_like_a_detected_one():
    """Issue 14: a page declaring gb2312 that holds Big5 bytes is read as Big5, not as GB18030 mojibake."""
    body = "政府工作報告：全區地區生產總值達到四百二十五億元，比上年增長百分之六點五。" * 30
    page = f'<html><head><meta charset="gb2312"></head><body><p>{body}</p></body></html>'
    got = decode_report(page.encode("big5"), "inbox/x.html")
    assert got.encoding in ("big5", "big5hkscs", "cp950") and body in got.text
    honest = decode_report(page.encode("gb18030"), "inbox/y.html")
    assert honest.encoding == "gb18030" and body in honest.text
