"""Numbers as reports write them: 425.16, １２.５, 1,234, 两万, 一千二百, 1.2万亿.

Reports mix Arabic digits (ASCII or full-width), thousands separators and
Chinese numerals. The extractor searches a *scan text*: the canonical text with
full-width digits and symbols mapped one-to-one to ASCII, so every offset in the
scan text is an offset in the canonical text (evidence is always cut from the
canonical text, never from the scan text).

A trailing magnitude character (万/亿/万亿) is *not* part of a number token: it
belongs to the unit as written (``1.39万户`` is 1.39 of the unit 万户), which
keeps ``value`` exactly as written and lets ``value_base`` come from units.csv.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_FULLWIDTH = {ord(c): ord(c) - 0xFEE0 for c in "０１２３４５６７８９％．：～，＋－"}
_FULLWIDTH.update({ord("∶"): ord(":"), ord("︰"): ord(":"), ord("﹪"): ord("%"), ord("﹒"): ord("."), ord("．"): ord(".")})


_FULLWIDTH_RE = re.compile("[" + "".join(re.escape(chr(c)) for c in _FULLWIDTH) + "]")


def scan_text(text: str) -> str:
    """Full-width digits/%/./:/~ mapped to ASCII, same length as ``text`` (offsets are shared).

    One ``str.replace`` per character present rather than ``str.translate``: translate looks every
    character of the text up in the table (1 ms a report), and a report holds a few of these at most.
    The replacements are ASCII, never themselves replaced, so the order does not matter.
    """
    for c in set(_FULLWIDTH_RE.findall(text)):
        text = text.replace(c, chr(_FULLWIDTH[ord(c)]))
    return text


CN_DIGITS = {"零": 0, "〇": 0, "○": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
CN_SMALL = {"十": 10, "百": 100, "千": 1000}
CN_BIG = {"万": 10_000, "亿": 100_000_000}
CN_CHARS = "".join(CN_DIGITS) + "".join(CN_SMALL) + "".join(CN_BIG) + "点"

# (?<![\d.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|(?<![\d.])\d+(?:\.\d+)? written to start with \d: a pattern that
# starts with a look-behind has no first-character set, so the regex engine tried it at every position of the text;
# (?<![\d.]\d) after the first digit looks at the character before it, as the look-behind did.
ARABIC_RE = re.compile(r"\d(?<![\d.]\d)(?:\d{0,2}(?:,\d{3})+(?:\.\d+)?(?!\d)|\d*(?:\.\d+)?)")
CHINESE_RE = re.compile(f"[{CN_CHARS}]+")
MAGNITUDE_SUFFIXES = ("万亿", "万", "亿")


def parse_arabic(s: str) -> float:
    """``'1,234.5'`` -> 1234.5 (thousands separators dropped)."""
    return float(s.replace(",", "") if "," in s else s)


MAX_NUMERAL_CHARS = 16  # longer runs of numeral characters are text (一一一…), not quantities


def _parse_cn_integer(s: str) -> int | None:
    """Chinese integer numerals: 一千二百 -> 1200, 两万 -> 20000, 十五 -> 15, 三万五千 -> 35000."""
    if not s or len(s) > MAX_NUMERAL_CHARS:
        return None
    if all(c in CN_DIGITS for c in s):  # digit-by-digit: 二〇二三 -> 2023, 五 -> 5
        return int("".join(str(CN_DIGITS[c]) for c in s))
    total, section, digit = 0, 0, None
    last_small = None
    for c in s:
        if c in CN_DIGITS:
            if digit is not None and CN_DIGITS[c] != 0:
                return None  # two digits in a row inside a positional numeral
            digit = CN_DIGITS[c] if CN_DIGITS[c] != 0 else None
        elif c in CN_SMALL:
            mult = CN_SMALL[c]
            if last_small is not None and mult >= last_small:
                return None  # 百百, 十百: not a numeral
            section += (1 if digit is None else digit) * mult
            digit, last_small = None, mult
        elif c in CN_BIG:
            section += digit or 0
            if section == 0:
                return None
            total = (total + section) * CN_BIG[c] if CN_BIG[c] > max(total, 1) else total + section * CN_BIG[c]
            section, digit, last_small = 0, None, None
        else:
            return None
    return total + section + (digit or 0)


def parse_chinese(s: str) -> float | None:
    """A Chinese numeral (optionally with 点 decimals) -> value; None when ``s`` is not a numeral."""
    if not s or len(s) > MAX_NUMERAL_CHARS or not any(c in CN_DIGITS or c in CN_SMALL for c in s):
        return None
    if "点" in s:
        whole, _, frac = s.partition("点")
        w = _parse_cn_integer(whole) if whole else 0
        if w is None or not frac or not all(c in CN_DIGITS for c in frac):
            return None
        return float(f"{w}.{''.join(str(CN_DIGITS[c]) for c in frac)}")
    v = _parse_cn_integer(s)
    return None if v is None else float(v)


def parse_number(s: str) -> float | None:
    """Any written number -> float: ``'425.16'``, ``'１２'``, ``'两万'``, ``'1.2万亿'`` (magnitudes applied)."""
    s = scan_text(s.strip())
    if not s:
        return None
    m = re.fullmatch(r"(\d+(?:,\d{3})*(?:\.\d+)?)(万亿|万|亿)?", s)
    if m:
        v = parse_arabic(m.group(1))
        return v * {"万亿": 1e12, "万": 1e4, "亿": 1e8, None: 1}[m.group(2)]
    return parse_chinese(s)


class NumberToken(NamedTuple):
    """A number in the scan text: [start, end) is the numeral itself, without magnitude suffix.

    A named tuple: immutable, and built 5x faster than a frozen dataclass (hundreds per report).
    """

    start: int
    end: int
    value: float
    text: str
    chinese: bool = False


def find_numbers(scan: str) -> list[NumberToken]:
    """Every Arabic number and every Chinese numeral of ``scan`` in text order.

    Chinese numerals keep a trailing 万/亿 out of the token when something precedes
    it (两万人 -> 两 + 万人) so the unit reads as written; the caller decides whether
    a Chinese numeral is a quantity (it needs a unit right after it).
    """
    return sorted(arabic_numbers(scan) + chinese_numbers(scan), key=lambda t: t.start)


def arabic_numbers(scan: str) -> list[NumberToken]:
    """The Arabic numbers of ``scan`` in text order."""
    return [NumberToken(m.start(), m.end(), parse_arabic(s), s) for m in ARABIC_RE.finditer(scan)
            if len(s := m.group()) <= MAX_NUMERAL_CHARS + 4]  # a 5000-digit run is not a figure


def chinese_numbers(scan: str, keep=None, runs: re.Pattern = CHINESE_RE) -> list[NumberToken]:
    """The Chinese numerals of ``scan`` in text order; with ``keep(start, end)``, only those it accepts.

    ``keep`` is asked before the numeral is parsed: most runs of numeral characters
    (一些, 万众, 十分) are words, and the quantity reader only wants a numeral that a
    unit follows, so it can say no before the parse is paid for. ``runs`` may find fewer runs
    than ``CHINESE_RE`` (the same runs, whole, skipping some) for the same reason.
    """
    tokens = []
    for m in runs.finditer(scan):
        s, start = m.group(), m.start()
        for suf in MAGNITUDE_SUFFIXES:
            if s.endswith(suf) and len(s) > len(suf):
                s = s[: -len(suf)]
                break
        if keep is not None and not keep(start, start + len(s)):
            continue
        v = parse_chinese(s)
        if v is not None:
            tokens.append(NumberToken(start, start + len(s), v, s, chinese=True))
    return tokens


def written_values(text: str) -> list[float]:
    """All values written in ``text`` (Arabic and Chinese), for the 'value is in its evidence' check."""
    return [t.value for t in find_numbers(scan_text(text))]
