"""Reference data of the extractor, read once from ``seeds/*.csv``.

The words the rules look for (indicator aliases, units, section markers,
qualifiers, cue words, region names) are data, not code: a new province's
wording is a new CSV row, not a new branch. Everything here is loaded on first
use and cached for the life of the process; the objects are immutable so the
cache can be shared by threads.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from transforms.schema import QUALIFIERS

SEEDS_DIR = Path(__file__).resolve().parents[2] / "seeds"

# Every lexicon category the rules read; a category missing from lexicon.csv (or a
# typo in one) would silently switch a rule off, so the loader insists on these.
LEXICON_CATEGORIES = frozenset({
    "after_blocker", "alias_negative_prefix", "alias_negative_suffix", "average_annual", "blocker", "compound_alias",
    "cumulative", "each", "elliptic_alias", "every_year", "growth_alias", "growth_down", "growth_only", "growth_up", "last_year",
    "light", "list_joiner", "marker_citation", "more_than", "not_name_end", "not_region", "part_of", "plan_end",
    "plan_period", "prefix_blocker", "preliminary", "qualifier_after", "qualifier_before", "range_joiner",
    "range_qualifier", "report_marker", "respectively", "scope", "share", "span_total", "subperiod", "subscope",
    "target_cue", "to_level", "whole_year",
})


@dataclass(frozen=True)
class Indicator:
    """One indicator of the contract with its aliases and plausible ranges."""

    code: str
    aliases: tuple[str, ...]
    unit_families: tuple[str, ...]
    growth_min: float | None
    growth_max: float | None
    target_growth_min: float | None
    target_growth_max: float | None


@dataclass(frozen=True)
class Unit:
    """A unit as written, its family and its factor to the base unit."""

    unit: str
    family: str
    base_unit: str
    factor: float


@dataclass(frozen=True)
class Region:
    """A division with its level (province/city/county/district), parent, province and status."""

    name: str
    level: str
    parent: str
    short: str
    province: str = ""
    status: str = "current"  # current | former | functional_area


@dataclass(frozen=True)
class SectionRule:
    """A section marker: a regex, the role it sets and how its period is derived."""

    pattern: re.Pattern
    role: str  # report_year | actual | target
    period: str  # y | y+1 | date | prev | this | five_back | five_ahead


@dataclass(frozen=True)
class Reference:
    """All reference data, with the lookups the extractor needs precompiled."""

    indicators: dict[str, Indicator]
    units: dict[str, Unit]
    regions: dict[str, Region]
    lexicon: dict[str, dict[str, str]]
    sections: tuple[SectionRule, ...]
    alias_codes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    divisions: dict[str, tuple[Region, ...]] = field(default_factory=dict)  # a name may be several divisions (鼓楼区)
    alias_re: re.Pattern | None = None
    unit_re: re.Pattern | None = None

    def terms(self, category: str) -> dict[str, str]:
        """The terms of one lexicon category (term -> value); empty if unknown."""
        return self.lexicon.get(category, {})

    def elliptic(self, term: str) -> tuple[str, frozenset[str]]:
        """An elliptic alias (总产量): the code it names and the codes that must have been named just before it."""
        code, _, heads = self.terms("elliptic_alias")[term].partition("<")
        return code, frozenset(heads.split("|"))


def _read_csv(name: str, seeds_dir: Path) -> list[dict[str, str]]:
    path = seeds_dir / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: reference file missing; restore it from git (seeds/ ships with the project).")
    with path.open(encoding="utf-8", newline="") as fh:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(fh)]


def _float(s: str) -> float | None:
    return float(s) if s else None


def _trie_regex(node: dict) -> str:
    """A regex for the words of a trie, longest alternative first (a flat alternation of 3,500 names is 10x slower)."""
    branches = [re.escape(ch) + _trie_regex(sub) for ch, sub in sorted(node.items()) if ch != ""]
    if not branches:
        return ""
    if "" in node:  # a word ends here: what follows is optional, and greedy, so the longest name wins
        return "(?:" + "|".join(branches) + ")?"
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


def trie_pattern(words) -> re.Pattern:
    """A regex matching any of ``words``, the longest wherever several start at the same place.

    The same matches as the flat alternation sorted longest first (``规模以上工业增加值`` beats
    ``工业增加值``), built as a trie: a flat alternation tries every word at every position
    where one may start, a trie only the words that share the characters read so far.
    """
    trie: dict = {}
    for w in set(words):
        if not w:
            raise ValueError("an empty word would match everywhere")
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}
    return re.compile(_trie_regex(trie))


_FEW_LAST_CHARS = 32  # up to this many last characters, they alone find the places a name may end


class NameScanner:
    """Whole names in a long text, read exactly as ``trie_pattern(names).finditer`` reads them: the leftmost
    name first, the longest one where several start at the same place, never two that overlap.

    Why not the trie regex over a whole report: at every position it still tries the alternatives of the first
    character one by one (about 950 first characters for the division names), 20 ms a report. Division names
    end in few characters (县, 区, 市 …), so one C-level pass finds where a name may end (for names that end in
    many characters, such as short names and indicator aliases, the last two characters together), a dict of
    the last two characters gives the lengths of the names that end so, and Python only looks at those places.
    Names have at least two characters.
    """

    def __init__(self, names):
        self._names = frozenset(names)
        if any(len(n) < 2 for n in self._names):
            raise ValueError("NameScanner reads names of two characters or more")
        lengths: dict[str, set[int]] = {}
        for n in self._names:
            lengths.setdefault(n[-2:], set()).add(len(n))
        self._lengths = {tail: tuple(sorted(ls)) for tail, ls in lengths.items()}  # names ending so: their lengths
        last_chars = {tail[-1] for tail in lengths}
        last = "".join(re.escape(c) for c in sorted(last_chars))
        penult = "".join(re.escape(c) for c in sorted({tail[0] for tail in lengths}))
        if len(last_chars) <= _FEW_LAST_CHARS:
            self._ends, self._offset = re.compile(f"[{last}]"), 0  # 县, 区, 市 …: where a name may end
        else:  # names that end in many characters (short names, aliases): the last two, together, say more
            self._ends, self._offset = re.compile(f"[{penult}](?=[{last}])"), 1

    def finditer(self, text: str) -> list[tuple[int, str]]:
        """(start, name) of every name read, in text order."""
        found = []
        names, lengths = self._names, self._lengths
        for end in [m.end() + self._offset for m in self._ends.finditer(text, 1 - self._offset)]:
            for n in lengths.get(text[end - 2:end], ()):
                if n <= end and text[end - n:end] in names:
                    found.append((end - n, -n))
        found.sort()  # by start, the longest first
        out, reached = [], 0
        for start, minus_len in found:
            if start >= reached:
                reached = start - minus_len
                out.append((start, text[start:reached]))
        return out


def _alternation(words) -> re.Pattern:
    """A regex matching any of ``words``, longest first (so 规模以上工业增加值 beats 工业增加值)."""
    return trie_pattern(words)


def build_reference(seeds_dir: Path = SEEDS_DIR) -> Reference:
    """Read and check every seeds CSV the extractor uses."""
    indicators = {}
    for row in _read_csv("indicators.csv", seeds_dir):
        indicators[row["code"]] = Indicator(
            code=row["code"],
            aliases=tuple(a for a in row["aliases"].split("|") if a),
            unit_families=tuple(f for f in row["unit_families"].split("|") if f),
            growth_min=_float(row["growth_min"]), growth_max=_float(row["growth_max"]),
            target_growth_min=_float(row["target_growth_min"]), target_growth_max=_float(row["target_growth_max"]),
        )
    units = {r["unit"]: Unit(r["unit"], r["family"], r["base_unit"], float(r["factor"])) for r in _read_csv("units.csv", seeds_dir)}
    divisions: dict[str, tuple[Region, ...]] = {}
    for r in _read_csv("regions.csv", seeds_dir):
        reg = Region(r["name"], r["level"], r["parent"], r["short"], r.get("province", ""), r.get("status") or "current")
        divisions[reg.name] = (*divisions.get(reg.name, ()), reg)
    regions = {name: divs[0] for name, divs in divisions.items()}
    lexicon: dict[str, dict[str, str]] = {}
    for row in _read_csv("lexicon.csv", seeds_dir):
        lexicon.setdefault(row["category"], {})[row["term"]] = row["value"]
    unknown = set(lexicon) - LEXICON_CATEGORIES
    missing = LEXICON_CATEGORIES - set(lexicon)
    if unknown or missing:
        raise ValueError(f"{seeds_dir / 'lexicon.csv'}: unknown categories {sorted(unknown)}, missing categories {sorted(missing)}; "
                         "fix the category column (the rules read exactly the categories in reference.LEXICON_CATEGORIES).")
    for cat in ("qualifier_before", "qualifier_after", "more_than", "range_qualifier"):
        bad = {t: v for t, v in lexicon.get(cat, {}).items() if v not in QUALIFIERS}
        if bad:
            raise ValueError(f"{seeds_dir / 'lexicon.csv'}: {cat} rows map to {bad}, not to a contract qualifier {QUALIFIERS}.")
    for code in (*lexicon.get("span_total", {}), *lexicon.get("growth_only", {})):
        if code not in indicators:
            raise ValueError(f"{seeds_dir / 'lexicon.csv'}: {code!r} is not an indicator code of indicators.csv.")
    sections = tuple(SectionRule(re.compile(r["pattern"], re.M), r["role"], r["period"]) for r in _read_csv("sections.csv", seeds_dir))

    alias_codes: dict[str, tuple[str, ...]] = {}
    for ind in indicators.values():
        for alias in ind.aliases:
            if alias in alias_codes and alias_codes[alias] != (ind.code,):
                raise ValueError(f"{seeds_dir / 'indicators.csv'}: alias {alias!r} names both {alias_codes[alias][0]} and {ind.code}; keep it in one row only.")
            alias_codes[alias] = (ind.code,)
    for term, codes in lexicon.get("compound_alias", {}).items():
        parts = tuple(codes.split("|"))
        unknown = [c for c in parts if c not in indicators]
        if unknown:
            raise ValueError(f"{seeds_dir / 'lexicon.csv'}: compound_alias {term!r} names unknown indicators {unknown}; fix the codes.")
        alias_codes[term] = parts
    for term, spec in lexicon.get("elliptic_alias", {}).items():
        code, _, heads = spec.partition("<")
        unknown = [c for c in (code, *heads.split("|")) if c not in indicators]
        if unknown or not heads:
            raise ValueError(f"{seeds_dir / 'lexicon.csv'}: elliptic_alias {term!r} must read 'code<head|head' with indicator codes "
                             f"(unknown: {unknown}); fix the value column.")
    for u in units.values():
        if u.factor <= 0:
            raise ValueError(f"{seeds_dir / 'units.csv'}: unit {u.unit!r} has factor {u.factor}; factors must be positive.")
    return Reference(
        indicators=indicators, units=units, regions=regions, lexicon=lexicon, sections=sections,
        alias_codes=alias_codes, divisions=divisions, alias_re=_alternation(alias_codes), unit_re=_alternation(units),
    )


def per_reference(cache: dict, ref: Reference, build):
    """``build(ref)``, made once per reference object and kept in ``cache``.

    The entry holds the reference itself, so its ``id`` (the key: a Reference holds dicts and cannot
    be hashed) is never reused by another reference while the entry lives.
    """
    hit = cache.get(id(ref))
    if hit is None or hit[0] is not ref:
        hit = cache[id(ref)] = (ref, build(ref))
    return hit[1]


@lru_cache(maxsize=1)
def load_reference() -> Reference:
    """The reference data of ``seeds/``, loaded once per process."""
    return build_reference(SEEDS_DIR)


@lru_cache(maxsize=None)
def term_starts(category: str) -> frozenset[str]:
    """The first characters of the terms of one lexicon category: where none is, ``term_pattern(category)``
    cannot match, and a set lookup is cheaper than the regex call that would say so."""
    return frozenset(t[0] for t in load_reference().terms(category) if t)


@lru_cache(maxsize=None)
def term_pattern(category: str) -> re.Pattern | None:
    """A longest-first regex over the terms of one lexicon category (None when empty)."""
    terms = load_reference().terms(category)
    return _alternation(terms) if terms else None
