"""HTML pages to text, keeping the map back to the page source.

Reports saved from government sites arrive as whole pages. The text a reader
sees is what matters: markup, scripts, styles and the ``<head>`` are dropped,
entities decoded, and HTML's whitespace rule applied (a newline in the source
is a space; ``<br>`` and block elements break lines). Every edit is a deletion
or a same-position rewrite, so offsets still point into the page source.
"""

from __future__ import annotations

import bisect
import html
import re

from transforms.tracked import TrackedText

_SNIFF = re.compile(
    rb"<(?:!doctype\s+html|html[\s>]|head[\s>]|body[\s>]|meta\s|title>|div[\s>]|p>|br\s*/?>|table[\s>])",
    re.IGNORECASE,
)
_META_CHARSET = re.compile(
    rb"""<meta\s[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE,
)
# Whole elements whose content is never reader text.
_DROP_ELEMENTS = re.compile(
    r"<(script|style|head|noscript|template|svg)\b[^>]*>.*?</\1\s*>|<!--.*?-->|<!\[CDATA\[.*?\]\]>|<![^>]*>|<\?[^>]*>",
    re.IGNORECASE | re.DOTALL,
)
_BLOCK = (
    "address|article|aside|blockquote|br|caption|center|dd|div|dl|dt|fieldset|figcaption|figure|footer|"
    "form|h[1-6]|header|hr|li|main|nav|ol|p|pre|section|table|tbody|td|tfoot|th|thead|title|tr|ul"
)
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>")
_BLOCK_NAME = re.compile(rf"(?:{_BLOCK})", re.IGNORECASE)
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?")
_SOURCE_NEWLINE = re.compile(r"[\r\n\t\f]")


def looks_like_html(head: bytes) -> bool:
    """True when the first bytes of a file are an HTML page (not text that mentions a tag)."""
    return bool(_SNIFF.search(head[:4096]))


def declared_charset(data: bytes) -> str | None:
    """The charset a page declares in ``<meta charset>`` / ``http-equiv``, lower-cased."""
    m = _META_CHARSET.search(data[:8192])
    return m.group(1).decode("ascii").lower() if m else None


def strip_html(doc: TrackedText) -> int:
    """Reduce a page to its reader text in place; return the number of tags removed.

    Source newlines and tabs become spaces (same length); then one pass of
    edits: dropped elements and inline tags vanish, block tags become a line
    break, entities become their character. Each new character points at the
    whole tag or entity it replaces.
    """
    text = _SOURCE_NEWLINE.sub(" ", doc.text)
    doc.rewrite(text)
    dropped = [m.span() for m in _DROP_ELEMENTS.finditer(text)]
    edits: list[tuple[int, int, str]] = [(s, e, "") for s, e in dropped]
    tags = 0
    for m in _TAG.finditer(text):
        if _inside(dropped, m.start()):
            continue
        tags += 1
        edits.append((m.start(), m.end(), "\n" if _BLOCK_NAME.fullmatch(m.group(2)) else ""))
    markup = sorted((s, e) for s, e, _ in edits)
    for m in _ENTITY.finditer(text):
        if _inside(markup, m.start()):
            continue  # inside a tag or a dropped element: already gone
        decoded = html.unescape(m.group(0))
        if decoded != m.group(0) and len(decoded) == 1:
            edits.append((m.start(), m.end(), decoded))
    doc.replace(_without_overlaps(edits))
    return tags


def _without_overlaps(edits: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Sorted edits, each starting at or after the previous one's end (broken markup can overlap)."""
    out: list[tuple[int, int, str]] = []
    for edit in sorted(edits):
        if out and edit[0] < out[-1][1]:
            if edit[1] > out[-1][1]:
                s, _e, rep = out[-1]
                out[-1] = (s, edit[1], rep)
            continue
        out.append(edit)
    return out


def _inside(spans: list[tuple[int, int]], pos: int) -> bool:
    """Whether ``pos`` falls in one of the sorted, non-overlapping spans."""
    i = bisect.bisect_right(spans, (pos, float("inf"))) - 1
    return i >= 0 and spans[i][0] <= pos < spans[i][1]
