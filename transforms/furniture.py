"""Page furniture: the site's words around the report, not the government's.

Forum notes, "source / updated / views" header lines, QR prompts, CMS footers,
breadcrumbs and captions of images that were dropped carry no facts but do
carry numbers (dates, view counts) that extraction would otherwise read. The
patterns are data in ``seeds/furniture.csv`` and match canonical text (after
t2s and fullwidth-to-ASCII), so each is written once, in simplified script:

- ``line``: the pattern must cover a whole line (edge spaces aside); the
  line and its newline go.
- ``inline``: only the match goes (the forum note can share a line).
- ``block``: the named group ``cut`` goes; the pattern may look at the
  blank lines around it (image captions). Start it with a literal (``\n\n``)
  so the regex engine can skip ahead instead of trying every position.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

FURNITURE_CSV = Path(__file__).resolve().parent.parent / "seeds" / "furniture.csv"


@dataclass(frozen=True)
class FurniturePattern:
    """One row of seeds/furniture.csv, compiled."""

    name: str
    scope: str
    regex: re.Pattern


@lru_cache(maxsize=4)
def load_patterns(path: Path = FURNITURE_CSV) -> tuple[FurniturePattern, ...]:
    """The furniture patterns of a CSV (name, scope, pattern, note)."""
    out = []
    with Path(path).open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            scope, pattern = row["scope"], row["pattern"]
            if scope == "line":
                regex = re.compile(rf"[ \t]*(?:{pattern})[ \t]*")
            elif scope in ("inline", "block"):
                regex = re.compile(pattern, re.MULTILINE)
            else:
                raise ValueError(f"{path}: pattern {row['name']!r} has unknown scope {scope!r}; use line, inline or block")
            out.append(FurniturePattern(row["name"], scope, regex))
    return tuple(out)


@lru_cache(maxsize=4)
def inline_pattern_names(path: Path = FURNITURE_CSV) -> frozenset[str]:
    """Names of the ``inline`` patterns (their removal leaves a line break)."""
    return frozenset(p.name for p in load_patterns(path) if p.scope == "inline")


@lru_cache(maxsize=4)
def line_pattern_names(path: Path = FURNITURE_CSV) -> frozenset[str]:
    """Names of the ``line`` patterns (each removes a whole line)."""
    return frozenset(p.name for p in load_patterns(path) if p.scope == "line")


MAX_LINE = 200  # furniture lines are short; longer lines are body text and are not tried


@lru_cache(maxsize=4)
def _any_line_pattern(path: Path = FURNITURE_CSV) -> re.Pattern:
    """All line patterns in one alternation, so each line is tried once."""
    parts = [f"(?P<p{i}>{p.regex.pattern})" for i, p in enumerate(load_patterns(path)) if p.scope == "line"]
    return re.compile("|".join(parts))


def furniture_spans(text: str, path: Path = FURNITURE_CSV,
                    lines_at: Iterable[int] | None = None) -> list[tuple[int, int, str]]:
    """``(start, end, pattern name)`` of every piece of furniture in a canonical text.

    A ``line`` span includes the line's newline, so removing it leaves no gap.
    ``lines_at``: try line patterns only on the lines holding these offsets
    (after an edit, the other lines are as they were when last tried);
    inline and block patterns always scan the whole text.
    """
    patterns = load_patterns(path)
    line_names = {f"p{i}": p.name for i, p in enumerate(patterns) if p.scope == "line"}
    any_line = _any_line_pattern(path)
    spans = []
    for pos, line in _lines(text) if lines_at is None else _lines_at(text, lines_at):
        n = len(line)
        if n <= MAX_LINE and (m := any_line.fullmatch(line)):
            end = pos + n + 1 if pos + n < len(text) else pos + n
            spans.append((pos, end, line_names[m.lastgroup]))
    for p in patterns:
        if p.scope == "inline":
            spans.extend((m.start(), m.end(), p.name) for m in p.regex.finditer(text))
        elif p.scope == "block":
            spans.extend((m.start("cut"), m.end("cut"), p.name) for m in p.regex.finditer(text))
    return sorted(spans)


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """Every line with its start offset."""
    pos = 0
    for line in text.split("\n"):
        yield pos, line
        pos += len(line) + 1


def _lines_at(text: str, offsets: Iterable[int]) -> Iterator[tuple[int, str]]:
    """The lines holding the given offsets (each once, in order), with their start offsets."""
    starts = sorted({text.rfind("\n", 0, min(max(o, 0), len(text))) + 1 for o in offsets})
    for start in starts:
        end = text.find("\n", start)
        yield start, text[start:] if end < 0 else text[start:end]


_DATE = re.compile(r"(?:发布日期|发布时间|更新时间|日期|时间|于)\s*:?\s*(?P<y>(?:19|20)\d{2})[-/.年](?P<m>\d{1,2})[-/.月](?P<d>\d{1,2})")
_SOURCE = re.compile(r"(?:信息来源|文章来源|稿件来源)\s*:\s*(?P<s>[^\s|:]{2,30})")


def page_metadata(text: str, spans: list[tuple[int, int, str]]) -> tuple[str, str]:
    """(publication date as YYYY-MM-DD, source) read from the furniture about to be removed.

    The furniture goes, but what it says about the document is worth keeping:
    a page's publication date is how a review article's report year is known.
    """
    published = source = ""
    for start, end, _name in spans:
        piece = text[start:end]
        if not published and (m := _DATE.search(piece)):
            published = f"{int(m['y']):04d}-{int(m['m']):02d}-{int(m['d']):02d}"
        if not source and (m := _SOURCE.search(piece)):
            source = m["s"]
    return published, source
