"""The canonical form of report text (defined in docs/CANONICAL.md; this is its code).

Each function here is one rule of that definition and is written as either a
same-length rewrite (no offset bookkeeping needed) or a list of spans to
delete, so the normalize stage can keep its character map cheaply.
"""

from __future__ import annotations

import difflib
import html
import re
from functools import lru_cache

import numpy as np

from transforms.tracked import TrackedText, _codepoints, _text

# Fullwidth ASCII (U+FF01-FF5E) -> ASCII, odd spaces -> ' ' (table in ``_ascii_table``).
# Deliberately NOT mapped: 、 。 “ ” ‘ ’ 《 》 【 】 — … · (they have no ASCII twin
# that keeps their meaning), and '，' between two digits (see ``to_ascii_forms``).
_ZERO_WIDTH_CHARS = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
# Invisible characters are deleted: zero-width ones and C0/C1 controls other than tab, newline and
# CR (CR is a line ending, see ``line_ending_edits``); a NUL from UTF-16 input would otherwise make
# the canonical text look binary to its own decoder. A table over the BMP (all of them are there).
_INVISIBLE = np.zeros(0x10000, dtype=bool)
_INVISIBLE[[ord(c) for c in _ZERO_WIDTH_CHARS]] = True
for _lo, _hi in ((0x00, 0x09), (0x0B, 0x0D), (0x0E, 0x20), (0x7F, 0xA0)):
    _INVISIBLE[_lo:_hi] = True
_CRLF = re.compile("\r(?=\n)")
_LONE_CR = re.compile("\r(?!\n)")


_SENTENCE = re.compile(r"[^。！？!?\n]+(?:[。！？!?]+[”’」』)）\"']*)?|[。！？!?]+")
_CLOSERS = "。！？!?"


def _ascii_table() -> np.ndarray:
    """Code point -> canonical code point for the Basic Multilingual Plane (identity elsewhere)."""
    table = np.arange(0x10000, dtype=np.uint32)
    table[0xFF01:0xFF5F] -= 0xFEE0
    for cp in (0x3000, 0x00A0, 0x202F, 0x205F, 0x09, 0x0B, 0x0C, *range(0x2000, 0x200B)):
        table[cp] = 0x20
    return table


_ASCII_TABLE = _ascii_table()


def to_ascii_forms(text: str) -> str:
    """Fullwidth digits, letters and punctuation as ASCII; same length as ``text``.

    ``１２.５％`` -> ``12.5%``; ``，：；（）！？`` -> ``,:;()!?`` because the
    reports we see already mix both and one form makes extraction rules
    simpler. A ``，`` between two digits stays: as ``,`` it would read as a
    thousands separator (``12，5个`` is "12, 5 of them", not 125).
    Odd spaces (ideographic, no-break, en/em, tab) become ' '.
    """
    cps = _codepoints(text)
    out = ascii_codepoints(cps)
    return text if out is cps else _text(out)


def ascii_codepoints(cps: np.ndarray) -> np.ndarray:
    """``to_ascii_forms`` on code points (``cps`` itself when nothing changes)."""
    bmp = np.minimum(cps, 0xFFFF)
    out = _ASCII_TABLE[bmp]
    out = np.where(cps > 0xFFFF, cps, out)
    if not (out != cps).any():
        return cps
    _keep_digit_commas(cps, out)
    return out


def _keep_digit_commas(cps: np.ndarray, out: np.ndarray) -> None:
    """Put back the fullwidth ``，`` between two digits (see ``to_ascii_forms``)."""
    commas = np.flatnonzero(cps == 0xFF0C)
    if commas.size:
        digit = ((cps >= 0x30) & (cps <= 0x39)) | ((cps >= 0xFF10) & (cps <= 0xFF19))
        inner = commas[(commas > 0) & (commas < len(cps) - 1)]
        keep = inner[digit[inner - 1] & digit[inner + 1]]
        out[keep] = 0xFF0C


@lru_cache(maxsize=4)
def _forms_table(convert) -> np.ndarray:
    """``convert``'s t2s table with the ASCII forms folded in: one lookup does both.

    Exact because the two never touch the same character: ASCII forms change
    only fullwidth forms and odd spaces, t2s only Han characters (tested).
    """
    table = convert.table.copy()
    ascii_changes = np.flatnonzero(_ASCII_TABLE != np.arange(0x10000, dtype=np.uint32))
    table[ascii_changes] = _ASCII_TABLE[ascii_changes]
    return table


def canonical_forms(doc: TrackedText, script: str | None, convert) -> tuple[int, int]:
    """Fullwidth forms to ASCII, then the script conversion, in place; return (fullwidth, script) counts.

    ``convert`` is the converter for ``script``: the t2s table
    (transforms/script.py) is applied together with the ASCII forms in one
    lookup per character; any other converter (an OpenCC object) goes through
    ``convert_script`` after the ASCII forms.
    """
    cps = _codepoints(doc.text)
    if script and hasattr(convert, "convert_codepoints"):
        out = convert.convert_codepoints(cps, doc.text, table=_forms_table(convert))
        if out is not None:
            _keep_digit_commas(cps, out)
            changed = out != cps
            n_changed = int(np.count_nonzero(changed))
            if not n_changed:
                return 0, 0
            # An ASCII form is below 0x80 and no t2s output is: that tells the two apart.
            fullwidth = int(np.count_nonzero(changed & (out < 0x80)))
            doc.rewrite(_text(out))
            return fullwidth, n_changed - fullwidth
    ascii_cps = ascii_codepoints(cps)
    fullwidth = 0 if ascii_cps is cps else int(np.count_nonzero(ascii_cps != cps))
    if ascii_cps is not cps:
        doc.rewrite(_text(ascii_cps))
    return fullwidth, (convert_script(doc, convert.convert) if script else 0)


_ESCAPED_BREAK = re.compile(r"\\r\\n|\\n|\\r")
# Forum markup (BBCode) around figures in copies of reports posted to forums: [b]425.16[/b]亿元, [color=red]…[/color].
_BBCODE = re.compile(r"\[/?(?:b|i|u|s|color|size|font|url|align|quote|backcolor|p|center|left|right|indent|sup|sub|"
                     r"strong|em|hr|img|table|tr|td|list|\*)(?:=[^\]\n]{0,80})?\]", re.I)
BBCODE_MIN = 3  # a text with one or two bracketed words ([b] as a footnote mark) is left alone
_STRAY_ENTITY = re.compile(r"&(?:nbsp|ensp|emsp|amp|lt|gt|quot|ldquo|rdquo|lsquo|rsquo|mdash|hellip|middot);")
ESCAPED_BREAKS_MIN = 3  # a text that merely mentions "\\n" once or twice is left alone


def escaped_markup_edits(text: str) -> list[tuple[int, int, str]]:
    """Line breaks stored as the characters ``\\r\\n``, stray HTML entities and forum markup (BBCode), as edits to real characters.

    A report exported from a spreadsheet cell or a database field often keeps its
    line breaks as the two-character escapes and its indents as ``&nbsp;``; read
    as written they glue every paragraph into one sentence. Only a text that holds
    several such escapes is treated this way.
    """
    breaks = list(_ESCAPED_BREAK.finditer(text)) if "\\" in text else []
    edits = [(m.start(), m.end(), "\n") for m in breaks] if len(breaks) >= ESCAPED_BREAKS_MIN else []
    if "&" in text:
        edits.extend((m.start(), m.end(), html.unescape(m.group()).replace("\xa0", " ")) for m in _STRAY_ENTITY.finditer(text))
    if "[" in text:
        tags = list(_BBCODE.finditer(text))
        if len(tags) >= BBCODE_MIN:
            edits.extend((m.start(), m.end(), "") for m in tags)
    return sorted(edits)


def line_ending_edits(text: str) -> tuple[str, list[tuple[int, int]]]:
    """CRLF -> LF (delete the CR), lone CR -> LF; zero-width and control characters deleted."""
    deletions: list[tuple[int, int]] = []
    if "\r" in text:
        deletions.extend((m.start(), m.start() + 1) for m in _CRLF.finditer(text))
        text = _LONE_CR.sub("\n", text)
    # A table lookup, not a regex: a character class with ranges is checked
    # character by character, ten times slower on a whole report.
    hits = np.flatnonzero(_INVISIBLE[np.minimum(_codepoints(text), 0xFFFF)])
    deletions.extend((i, i + 1) for i in hits.tolist())
    return text, deletions


def whitespace_keep_mask(text: str) -> np.ndarray | None:
    """The characters to keep under the whitespace rules, computed in numpy (None: keep all).

    A run of spaces and newlines becomes one newline if it holds one, else
    one space; runs at the edges of the text go. Vectorized because a report
    has hundreds of such runs.
    """
    cps = _codepoints(text)
    n = len(cps)
    if n == 0:
        return None
    nl = cps == 0x0A
    ws = nl | (cps == 0x20)
    edges = np.diff(ws.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    if starts.size == 0:
        return None
    keep = np.ones(n, dtype=bool)
    keep[ws] = False
    nl_pos = np.flatnonzero(nl)
    first_nl = nl_pos[np.minimum(np.searchsorted(nl_pos, starts), max(nl_pos.size - 1, 0))] if nl_pos.size else np.full(starts.size, -1)
    has_nl = (first_nl >= starts) & (first_nl < ends) if nl_pos.size else np.zeros(starts.size, dtype=bool)
    inner = (starts > 0) & (ends < n)
    keep[first_nl[has_nl & inner]] = True
    keep[starts[~has_nl & inner]] = True
    if keep.all():
        return None
    return keep


def convert_script(doc: TrackedText, convert) -> int:
    """Apply an OpenCC conversion in place keeping the map; return characters changed.

    OpenCC converts phrase by phrase and a phrase may change length. The whole
    text is converted in one call (fast); only if the length changed are lines
    converted one by one and a changed line aligned character by character.
    """
    before = doc.text
    after = convert(before)
    if len(after) != len(before):
        _convert_by_line(doc, convert)
        return _count_changed(before, doc.text) if len(doc.text) == len(before) else _diff_count(before, doc.text)
    doc.rewrite(after)
    return _count_changed(before, after)


def _convert_by_line(doc: TrackedText, convert) -> None:
    edits: list[tuple[int, int, str]] = []
    pos = 0
    for line in doc.text.split("\n"):
        new = convert(line)
        if new != line:
            if len(new) == len(line):
                edits.append((pos, pos + len(line), new))
            else:
                matcher = difflib.SequenceMatcher(a=line, b=new, autojunk=False)
                for tag, i1, i2, j1, j2 in matcher.get_opcodes():
                    if tag != "equal":
                        edits.append((pos + i1, pos + i2, new[j1:j2]))
        pos += len(line) + 1
    doc.replace(edits)


def _count_changed(a: str, b: str) -> int:
    if a is b or a == b:
        return 0
    return int(np.count_nonzero(_codepoints(a) != _codepoints(b)))


def _diff_count(a: str, b: str) -> int:
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``[start, end)`` spans of the sentences of a canonical text.

    A sentence ends after 。！？ (or ASCII !?), with any closing quotes or
    brackets that follow, or at a line break; surrounding spaces are not part
    of it. Semicolons and commas do not end sentences: report clauses joined by
    them share a subject and period, which extraction needs together.
    """
    spans = []
    for m in _SENTENCE.finditer(text):
        s, e = m.span()
        while s < e and text[s] == " ":
            s += 1
        while e > s and text[e - 1] == " ":
            e -= 1
        if e > s:
            spans.append((s, e))
    return spans
