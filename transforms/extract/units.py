"""Quantities: a number, the unit written after it, and what surrounds it.

A quantity is a number token followed by a unit from ``seeds/units.csv``
(longest match: 万人次 before 万人), optionally a ratio (11.1:47.7:41.2 -> one
quantity, value = first term, unit ``:``), a range (5%～5.5% -> value = lower
bound, qualifier from the ``range_qualifier`` lexicon row, see below) and a
qualifier written after it (以上 / 左右 / 以内 …).

Ranges: a target range such as ``5％～5.5％`` promises at least its lower bound,
so the fact keeps the lower bound as its value (it is written in the text) and
the qualifier 以上; the upper bound stays visible in the evidence.

``value_base`` = value × factor of the unit, in the unit's base unit, so that
亿元 and 万元 compare in SQL.
"""

from __future__ import annotations

import bisect
import re
from decimal import Decimal
from typing import NamedTuple

from transforms.extract.numbers import CN_CHARS, MAGNITUDE_SUFFIXES, NumberToken, arabic_numbers, chinese_numbers
from transforms.extract.reference import Reference, per_reference, term_pattern, term_starts

PERCENT_ALIASES = {"%": "%", "个百分点": "个百分点", "百分点": "个百分点"}
_PERCENT_RE = re.compile(r"个百分点|百分点|%")
_PERCENT_STARTS = frozenset(a[0] for a in PERCENT_ALIASES)
_RATIO_SEP = ":"
_NOT_BEFORE_CHINESE = "第"
_CN_PERCENT = "百分之"
_MORE_THAN = "多余"  # 第一, 第三批: ordinals, never quantities


class Quantity(NamedTuple):
    """A number with its unit in the scan text.

    [start, end) spans the number, its unit, a range's upper bound and a trailing
    qualifier; [num_start, num_end) spans the written number only. A named tuple:
    immutable, and built 5x faster than a frozen dataclass (hundreds per report).
    """

    start: int
    end: int
    num_start: int
    num_end: int
    value: float
    unit: str
    family: str
    qualifier: str | None
    text: str
    chinese: bool = False
    is_range: bool = False


class _Reader:
    """The units, range joiners and qualifiers quantities are read with, looked up once per reference.

    A report holds hundreds of numbers; fetching the same sets and patterns again for each one (cache
    lookups, lexicon dicts) cost as much as reading the number. The module functions below ask this.
    """

    def __init__(self, ref: Reference):
        self.ref = ref
        self.units, self.unit_re = ref.units, ref.unit_re
        # the characters a unit can start with: most numbers (years, list items) have none after them,
        # and one set lookup says so before two regex calls
        self.unit_starts = frozenset(u[0] for u in (*PERCENT_ALIASES, *ref.units) if u)
        self.joiners, self.joiner_starts = term_pattern("range_joiner"), term_starts("range_joiner")
        self.qualifiers, self.qualifier_starts = term_pattern("qualifier_after"), term_starts("qualifier_after")
        from transforms.extract.reference import load_reference  # noqa: PLC0415 (cached)

        self.qualifier_terms = load_reference().terms("qualifier_after")
        self.more_than = ref.terms("more_than")
        self.range_qualifier = ref.terms("range_qualifier").get("range") or None
        u = ref.units.get(_RATIO_SEP)
        self.ratio_family = u.family if u else "ratio"

    def unit_at(self, scan: str, pos: int) -> tuple[str, int] | None:
        """The unit written at ``pos`` (canonical spelling, end offset), or None."""
        c = scan[pos:pos + 1]
        if c not in self.unit_starts:
            return None
        m = _PERCENT_RE.match(scan, pos) if c in _PERCENT_STARTS else None
        if m:
            return PERCENT_ALIASES[m.group()], m.end()
        m = self.unit_re.match(scan, pos)
        if m:
            return m.group(), m.end()
        return None

    def qualifier_at(self, scan: str, pos: int) -> tuple[str | None, int]:
        """A qualifier written at ``pos`` (以上, 左右 …) and where it ends; (None, pos) when there is none."""
        if self.qualifiers is None or scan[pos:pos + 1] not in self.qualifier_starts:
            return None, pos
        m = self.qualifiers.match(scan, pos)
        if not m:
            return None, pos
        return self.qualifier_terms[m.group()], m.end()

    def range_end(self, scan: str, end: int) -> tuple[int, str | None] | None:
        """If a range joiner and a second number follow ``end``: (end of the range, unit after it)."""
        if self.joiners is None or scan[end:end + 1] not in self.joiner_starts:
            return None
        j = self.joiners.match(scan, end)
        if not j:
            return None
        m = _RANGE_BOUND.match(scan, j.end())
        if not m:
            return None
        unit = self.unit_at(scan, m.end())
        return (unit[1], unit[0]) if unit else (m.end(), None)

    def read(self, scan: str, tok: NumberToken) -> Quantity | None:
        """The quantity that starts with number ``tok``, or None when no unit follows it."""
        chinese = tok.chinese
        if chinese:
            if tok.start > 0 and scan[tok.start - 1] in _NOT_BEFORE_CHINESE:
                return None
            if scan.startswith(_CN_PERCENT, tok.start - len(_CN_PERCENT)) and tok.start >= len(_CN_PERCENT):
                q, q_end = self.qualifier_at(scan, tok.end)  # 百分之六点五: a percentage written in words
                return Quantity(tok.start - len(_CN_PERCENT), q_end, tok.start, tok.end, tok.value, "%", "percent", q, tok.text, True)
        end = tok.end
        ratio = _ratio_end(scan, end) if not chinese else None
        if ratio is not None:
            return Quantity(tok.start, ratio, tok.start, tok.end, tok.value, _RATIO_SEP, self.ratio_family, None, tok.text)
        qualifier, is_range = None, False
        approx = None
        if not chinese and end < len(scan) and scan[end] in _MORE_THAN:
            nxt = self.unit_at(scan, end + 1)
            if nxt is not None:  # 800多万人次, 300余个: "more than", kept as 以上
                approx, end = self.more_than.get(scan[end]) or None, end + 1
        unit = self.unit_at(scan, end)
        if unit is None and not chinese:
            rng = self.range_end(scan, end)  # 5-5.5%: the unit is written once, after the upper bound
            if rng is not None and rng[1] is not None:
                unit, is_range = (rng[1], rng[0]), True
        if unit is None:
            return None
        unit_str, end = unit
        if not is_range and not chinese:
            rng = self.range_end(scan, end)  # 5%～5.5%
            if rng is not None and (rng[1] is None or rng[1] == unit_str):
                end, is_range = rng[0], True
        if is_range:
            qualifier = self.range_qualifier
        if approx:
            qualifier = approx
        q, q_end = self.qualifier_at(scan, end)
        if q is not None:
            qualifier, end = q, q_end
        family = self.units[unit_str].family if unit_str in self.units else ("percent" if unit_str == "%" else "percentage_point")
        return Quantity(tok.start, end, tok.start, tok.end, tok.value, unit_str, family, qualifier, tok.text, chinese, is_range)


_READERS: dict = {}


def _reader(ref: Reference) -> _Reader:
    return per_reference(_READERS, ref, _Reader)


def match_unit(scan: str, pos: int, ref: Reference) -> tuple[str, int] | None:
    """The unit written at ``pos`` (canonical spelling, end offset), or None."""
    return _reader(ref).unit_at(scan, pos)


def _unit_starts(ref: Reference) -> frozenset[str]:
    """The characters a unit can start with."""
    return _reader(ref).unit_starts


_RANGE_BOUND = re.compile(r"\d+(?:\.\d+)?")
_RATIO_TAIL = re.compile(r"(?: ?: ?\d+(?:\.\d+)?){1,4}")
_RATIO_STARTS = frozenset(" :")  # what _RATIO_TAIL can start with


def _ratio_end(scan: str, end: int) -> int | None:
    """End of an a:b(:c…) ratio that starts with a number ending at ``end``, or None."""
    if scan[end:end + 1] not in _RATIO_STARTS:
        return None
    m = _RATIO_TAIL.match(scan, end)  # 3.6 : 48 : 48.4 (spaced) as well as 11.1:47.7:41.2
    return m.end() if m else None


def read_quantity(scan: str, tok: NumberToken, ref: Reference) -> Quantity | None:
    """The quantity that starts with number ``tok``, or None when no unit follows it."""
    return _reader(ref).read(scan, tok)


def find_quantities(scan: str, ref: Reference, masked: list[tuple[int, int]] = ()) -> list[Quantity]:
    """All quantities of ``scan`` in order, skipping numbers inside ``masked`` spans (e.g. 三次产业结构)."""
    out: list[Quantity] = []
    last_end = -1
    spans = sorted(masked)
    starts = [s for s, _e in spans]
    read = _reader(ref).read
    for tok in _number_tokens(scan, ref):
        if tok.start < last_end:
            continue  # inside a ratio or range already read
        i = bisect.bisect_right(starts, tok.start) - 1
        if i >= 0 and spans[i][0] <= tok.start < spans[i][1]:
            continue
        q = read(scan, tok)
        if q is not None:
            out.append(q)
            last_end = q.end
    return out


def _number_tokens(scan: str, ref: Reference) -> list[NumberToken]:
    """The numbers that may start a quantity, in text order: every Arabic number, and the Chinese numerals
    that ``read_quantity`` could accept — a unit right after them, or 百分之 before (it refuses every other
    Chinese numeral, so leaving them unparsed changes nothing)."""
    unit_at = _reader(ref).unit_at

    def may_be_quantity(start: int, end: int) -> bool:
        return unit_at(scan, end) is not None or (start >= len(_CN_PERCENT) and scan.startswith(_CN_PERCENT, start - len(_CN_PERCENT)))

    chinese = chinese_numbers(scan, may_be_quantity, _quantity_runs(ref))
    arabic = arabic_numbers(scan)
    return sorted(arabic + chinese) if chinese else arabic  # tuples in start order: no two tokens start alike


_QUANTITY_RUNS: dict = {}


def _quantity_runs(ref: Reference) -> re.Pattern:
    """The runs of numeral characters that ``may_be_quantity`` can accept, whole (cached per reference).

    A run is read whole (``*+`` gives nothing back, so a run that fails at its start fails everywhere
    inside it too) and kept when a unit's first character follows it, when it ends in 万/亿 (the unit
    then starts there: 两万人), or after 百分之. Most runs (一些, 十分, 万众) are skipped in C.
    """
    def build(r: Reference) -> re.Pattern:
        numeral = f"[{re.escape(CN_CHARS)}]"
        starts = "".join(re.escape(c) for c in sorted(_unit_starts(r)))
        ends = "".join(re.escape(c) for c in sorted({suf[-1] for suf in MAGNITUDE_SUFFIXES}))
        # one numeral character first, so the engine skips ahead to the next one
        return re.compile(f"{numeral}(?:(?<={re.escape(_CN_PERCENT)}{numeral}){numeral}*+|{numeral}*+(?:(?=[{starts}])|(?<=[{ends}])))")

    return per_reference(_QUANTITY_RUNS, ref, build)


def base_value(value: float, unit: str, ref: Reference) -> tuple[float, str]:
    """value × factor and the base unit from units.csv (unknown units keep value and unit)."""
    u = ref.units.get(unit)
    if u is None:
        return value, unit
    # decimal product of the two as written, so 9.3亿元 is 930000000.0 and not 930000000.0000001
    return float(Decimal(repr(value)) * Decimal(repr(u.factor))), u.base_unit
