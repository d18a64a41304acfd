"""The report's year and its sections: which part reviews, which part sets targets.

A government work report reviews the past (last year, or a whole five-year
term) and then sets targets (this year's 主要预期目标 and work plan, or
five-year goals). Whether a number is an actual or a target, and which year it
refers to, follows from the section it sits in and the report year Y:

* review of last year -> actual, period Y-1;
* five-year review -> actual, period (Y-5)-(Y-1) (the caller refines: 年均 ->
  average_annual over the span, 累计 -> cumulative, a level -> the end year);
* this year's targets and work plan -> target, period Y;
* five-year goals -> target, period Y-(Y+4) unless a year is named (到2026年);
* a heading that names a plan (“十二五”时期工作回顾, “十三五”时期的主要目标) -> the
  plan's span (2011-2015), read from the ``plan_period`` lexicon rows.

Markers and date patterns live in ``seeds/sections.csv``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from transforms.extract.reference import Reference, per_reference


@dataclass(frozen=True)
class Section:
    """A stretch of text [start, end) with the kind and period its numbers get."""

    start: int
    end: int
    role: str  # actual | target
    period: str  # "2023" or "2017-2021"
    span: bool  # True when the period is a multi-year span (five-year review/goals)


def _year_from(rule_period: str, m) -> int | None:
    y = int(m.group("y"))
    if not 1949 <= y <= 2100:
        return None
    if rule_period == "y":
        return y
    if rule_period == "y+1":
        return y + 1
    if rule_period == "date":
        month = int(m.group("m")) if "m" in m.re.groupindex and m.group("m") else 1
        return y if month <= 6 else y + 1
    return None


def detect_report_year(scan: str, ref: Reference) -> int | None:
    """The report year Y: the year whose targets the report sets (its review covers Y-1).

    Rules are tried in ``sections.csv`` order (meeting date, title, plan heading,
    review heading, publication date); the first that matches wins. A page
    published in the second half of a year (a review article) counts as the next
    year's report, so its "past year" is the publication year.
    """
    finders = per_reference(_SECTION_FINDERS, ref, _section_finders)
    for rule, finder in zip(ref.sections, finders):
        if rule.role != "report_year":
            continue
        for m in marker_matches(rule.pattern, scan, finder):
            y = _year_from(rule.period, m)
            if y is not None:
                return y
    return None


def _plan_span(m, role: str, year: int | None, ref: Reference) -> tuple[str, bool] | None:
    """The span of the plan a heading names (“十二五”时期工作回顾 -> 2011-2015).

    A review can only cover years before the report year, so a review of the
    running plan (十四五以来 in a 2024 report) ends at Y-1.
    """
    span = ref.terms("plan_period").get(m.group("plan")) if "plan" in m.re.groupindex else None
    if not span:
        return None
    first, _, last = span.partition("-")
    if role == "actual" and year is not None and int(last) >= year:
        last = str(year - 1)
        if int(last) < int(first):
            return None
    return f"{first}-{last}", True


def _period(rule_period: str, m, year: int | None) -> tuple[str, bool] | None:
    if rule_period in ("y", "y+1"):
        y = _year_from(rule_period, m)
        return (str(y), False) if y else None
    if year is None:
        return None
    if rule_period == "prev":
        return str(year - 1), False
    if rule_period == "this":
        return str(year), False
    if rule_period == "five_back":
        return f"{year - 5}-{year - 1}", True
    if rule_period == "five_ahead":
        return f"{year}-{year + 4}", True
    return None


# Two shapes of marker pattern in sections.csv that the regex engine cannot skip ahead for: a pattern that starts
# with a look-behind (a heading at the start of a sentence) or with \d{4} has no first character to look for, so
# the whole pattern is tried at every position of the text. For them a cheap pattern that does start with a
# character class finds where a match can start, and the marker's own pattern is tried there only.
_SENTENCE_START = re.compile(r"^\(\?:\(\?<=\[((?:[^\]\\]|\\.)+)\]\)\|\^\)")  # (?:(?<=[。\n!！?？;；])|^) at the start
_YEAR_HEAD = re.compile(r"^\(\?P<y>\\d\{4\}\)([^\\()\[\]|?*+{}.^$])(?![?*+{])")  # (?P<y>\d{4})年: four digits, one character


def _top_level_alternation(src: str) -> bool:
    """Whether a pattern has a | outside every group (then its first part does not bind the rest)."""
    depth, i, in_class = 0, 0, False
    while i < len(src):
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if src.startswith("]", i + 1) or src.startswith("^]", i + 1):
                i += 1 + (src[i + 1] == "^")  # a ] first in a class is a character
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            return True
        i += 1
    return False


_NAMED_GROUP = re.compile(r"(?<!\\)\(\?P<\w+>")


def _start_finder(pattern: re.Pattern, siblings: tuple[re.Pattern, ...] = ()) -> tuple[re.Pattern, int] | None:
    """(a pattern whose matches, shifted by the offset, are every place a match of ``pattern`` can start; the offset),
    or None when ``pattern`` is searched as it is.

    A sentence-start marker's finder looks for the rest of ``pattern`` and of its ``siblings`` of the same
    shape at once, so one pass over the text serves them all (its places are a superset for each).
    """
    src = pattern.pattern
    m = _SENTENCE_START.match(src)
    if m and not _top_level_alternation(src):
        rests = [src[m.end():]]
        for other in siblings:
            o = _SENTENCE_START.match(other.pattern)
            if other is not pattern and other.flags == pattern.flags and o and o.group(1) == m.group(1) \
                    and not _top_level_alternation(other.pattern):
                rests.append(other.pattern[o.end():])
        union = "|".join(f"(?:{_NAMED_GROUP.sub('(?:', rest)})" for rest in sorted(set(rests)))
        try:
            return re.compile(f"[{m.group(1)}\\n](?=(?:{union}))", pattern.flags), 1
        except re.error:  # the rests do not combine: this pattern's own rest
            return re.compile(f"[{m.group(1)}\\n](?=(?:{src[m.end():]}))", pattern.flags), 1
    m = _YEAR_HEAD.match(src)
    if m:  # the character after the year, a literal the engine finds fast, then the four digits before it
        after = re.escape(m.group(1))
        return re.compile(rf"{after}(?<=\d{{4}}{after})", pattern.flags), -4
    return None


@lru_cache(maxsize=None)
def _start_finders(patterns: tuple[re.Pattern, ...]) -> dict[re.Pattern, tuple[re.Pattern, int] | None]:
    """``_start_finder`` of each of ``patterns``, the others as its siblings; equal finders are one object,
    so ``marker_matches`` finds their places once per text."""
    shared: dict = {}
    return {p: (None if (f := _start_finder(p, patterns)) is None else shared.setdefault(f, f)) for p in patterns}


def marker_matches(pattern: re.Pattern, scan: str, finder: tuple[re.Pattern, int] | None = None,
                   found: dict | None = None) -> list[re.Match]:
    """``pattern.finditer(scan)``: the same matches, tried only where a match can start (see ``_start_finder``).

    ``found`` keeps each finder's places for this ``scan``, for the markers that share a finder.
    """
    finder = finder or _start_finder(pattern)
    if finder is None:
        return list(pattern.finditer(scan))
    found = {} if found is None else found
    key = id(finder)  # finders live in a cache for the life of the process; hashing a compiled pattern costs more
    if key not in found:
        starts, offset = finder
        found[key] = [c.start() + offset for c in starts.finditer(scan)]
        if offset == 1:  # a sentence start found after its delimiter: the text's own start has none
            found[key].insert(0, 0)
    out: list[re.Match] = []
    reached = 0
    for pos in found[key]:
        if pos < reached:
            continue
        m = pattern.match(scan, pos)
        if m is not None:
            if m.end() == pos:  # an empty match: finditer's own rules for those apply
                return list(pattern.finditer(scan))
            out.append(m)
            reached = m.end()
    return out


_SECTION_FINDERS: dict = {}


def _section_finders(ref: Reference) -> list[tuple[re.Pattern, int] | None]:
    """The start finder of each rule of ``ref.sections`` (by position); sentence-start markers share theirs."""
    finders = _start_finders(tuple(r.pattern for r in ref.sections))
    return [finders[r.pattern] for r in ref.sections]


def find_sections(scan: str, year: int | None, ref: Reference) -> list[Section]:
    """Split the text at every section marker; text before the first marker is a review of Y-1.

    Overlapping markers keep the longest (``2021年及过去五年工作回顾`` is one heading
    for the year 2021, not a five-year marker).
    """
    marks = []
    finders = per_reference(_SECTION_FINDERS, ref, _section_finders)
    found: dict = {}
    for order, rule in enumerate(ref.sections):
        if rule.role == "report_year":
            continue
        for m in marker_matches(rule.pattern, scan, finders[order], found):
            p = _plan_span(m, rule.role, year, ref) if rule.period == "plan" else _period(rule.period, m, year)
            if p is not None:
                marks.append((m.start(), m.end(), order, rule.role, p))
    marks.sort(key=lambda x: (x[0], -(x[1] - x[0]), x[2]))
    kept = []
    for mk in marks:
        if kept and mk[0] < kept[-1][1]:
            continue  # inside a longer marker that starts earlier or at the same place
        kept.append(mk)
    sections: list[Section] = []
    first = kept[0][0] if kept else len(scan)
    if year is not None and first > 0:
        sections.append(Section(0, first, "actual", str(year - 1), False))
    for i, (start, _end, _o, role, (period, span)) in enumerate(kept):
        end = kept[i + 1][0] if i + 1 < len(kept) else len(scan)
        sections.append(Section(start, end, role, period, span))
    return sections


def section_at(sections: list[Section], pos: int) -> Section | None:
    """The section that holds offset ``pos`` (sections are sorted and contiguous)."""
    lo, hi = 0, len(sections) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        s = sections[mid]
        if pos < s.start:
            hi = mid - 1
        elif pos >= s.end:
            lo = mid + 1
        else:
            return s
    return None


def span_end(period: str) -> str:
    """The last year of a period ("2017-2021" -> "2021"; "2023" -> "2023")."""
    return period.rsplit("-", 1)[-1]
