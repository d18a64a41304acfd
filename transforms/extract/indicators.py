"""Where the text names an indicator (地区生产总值, 规上工业增加值, 城乡居民人均可支配收入 …).

Aliases come from ``seeds/indicators.csv`` (one indicator each) and the
``compound_alias`` rows of ``seeds/lexicon.csv`` (one phrase naming several
indicators in order, for 分别 lists). Matching is longest-first and
non-overlapping, so 工业投资 is never read inside 工业固定资产投资 and
规模以上工业增加值 wins over 工业增加值.

A match is not a subject when its context says it names something else:
单位生产总值能耗, 人均生产总值, 限额以上…零售额 (a sub-item), 占…的/比重 (the
denominator of a share), 一般公共预算收入支出 (spending). These words live in
the ``alias_negative_prefix`` / ``alias_negative_suffix`` lexicon rows.
"""

from __future__ import annotations

import bisect
import re
from functools import lru_cache
from typing import NamedTuple

from transforms.extract.reference import NameScanner, Reference, load_reference, per_reference, term_pattern

_ASCII_ALIAS = re.compile(r"[A-Za-z]")
_SHARE_OPEN_WINDOW = 12  # how far back a 占 can open a share whose denominator is this alias


class Mention(NamedTuple):
    """An indicator alias in the text: [start, end) and the indicator codes it names, in order.

    A named tuple: immutable, and built 5x faster than a frozen dataclass (hundreds per report).
    """

    start: int
    end: int
    codes: tuple[str, ...]
    alias: str


_OPEN_SHARE = re.compile(r"占[^,，;；。:：、\n]*\Z")  # a 占 after the last delimiter, up to where the search stops


@lru_cache(maxsize=None)
def _ending_at_stop(category: str) -> tuple[re.Pattern | None, int]:
    """(a regex for the terms of ``category`` that end where the search stops, the longest term's length).

    ``pattern.search(scan, start - longest, start)`` asks in one C call whether a term ends at ``start``,
    for what was a Python loop of ``startswith`` over every term.
    """
    pat = term_pattern(category)
    if pat is None:
        return None, 0
    return re.compile(f"(?:{pat.pattern})\\Z"), max(map(len, load_reference().terms(category)))


def _negated(scan: str, start: int, end: int, ref: Reference) -> bool:
    before, longest = _ending_at_stop("alias_negative_prefix")
    if before is not None and before.search(scan, max(0, start - longest), start):
        return True
    after = term_pattern("alias_negative_suffix")
    if after is not None and after.match(scan, end):
        return True
    # 占一般公共预算支出的 / 占GDP比重: an alias after an open 占 (same clause) is a denominator
    return _OPEN_SHARE.search(scan, max(0, start - _SHARE_OPEN_WINDOW), start) is not None


_SENTENCE_BREAK = re.compile(r"[。！？!?;；\n]")
_ITEM_START = ",，、:："
_ELLIPSIS_REACH = 40  # how far back (characters) the head of an elliptic list item may be named


def _elliptic_mentions(scan: str, found: list[Mention], ref: Reference) -> list[Mention]:
    """List items that drop the words a neighbouring item spells out.

    An ``elliptic_alias`` term (总产量, 农村居民 …) names its indicator only

    * backwards: when it opens a list item (after 、 or a comma, light words such as
      实现 allowed between) and the last indicator named before it, in the same
      sentence and close by, is one of its heads (粮食播种面积145.2万亩、总产量46.3万吨);
    * forwards: when a list joiner and a full alias of one of its heads follow it
      directly, so the two share the tail (城镇居民、农村居民人均可支配收入).

    Alone (蔬菜总产量, 农村居民增收) it names nothing.
    """
    pat, light, joiner = term_pattern("elliptic_alias"), term_pattern("light"), term_pattern("list_joiner")
    if pat is None or not found:
        return []
    starts = [m.start for m in found]
    out = []
    for m in pat.finditer(scan):
        i = bisect.bisect_left(starts, m.start())
        if i < len(found) and found[i].start < m.end():
            continue  # inside a full alias (农村居民人均可支配收入)
        code, heads = ref.elliptic(m.group())
        j = joiner.match(scan, m.end()) if joiner is not None else None
        if j and i < len(found) and found[i].start == j.end() and heads.intersection(found[i].codes):
            out.append(Mention(m.start(), m.end(), (code,), m.group()))  # 城镇居民、农村居民人均可支配收入: the tail is shared
            continue
        if i == 0 or found[i - 1].end > m.start():
            continue
        head = found[i - 1]
        between = scan[head.end:m.start()]
        if len(between) > _ELLIPSIS_REACH or _SENTENCE_BREAK.search(between):
            continue
        cut = max(between.rfind(c) for c in _ITEM_START)
        if cut < 0:
            continue
        opener = between[cut + 1:]
        if light is not None:
            opener = light.sub("", opener)
        if opener.strip():
            continue  # 、蔬菜总产量: the item names its own head
        if heads.intersection(head.codes):
            out.append(Mention(m.start(), m.end(), (code,), m.group()))
    return out


_ALIAS_SCANNERS: dict = {}


def find_mentions(scan: str, ref: Reference) -> list[Mention]:
    """Every alias occurrence that can be the subject of a number, in text order.

    The aliases are read as ``ref.alias_re.finditer`` reads them, by a ``NameScanner`` (faster over a whole report).
    """
    out = []
    for start, alias in per_reference(_ALIAS_SCANNERS, ref, lambda r: NameScanner(r.alias_codes)).finditer(scan):
        end = start + len(alias)
        if _ASCII_ALIAS.search(alias):
            before = scan[start - 1] if start else " "
            after = scan[end] if end < len(scan) else " "
            if before.isascii() and before.isalnum() or after.isascii() and after.isalpha():
                continue  # GDP inside a longer Latin word
        if _negated(scan, start, end, ref):
            continue
        out.append(Mention(start, end, ref.alias_codes[alias], alias))
    extra = _elliptic_mentions(scan, out, ref)
    return sorted(out + extra, key=lambda x: x.start) if extra else out


def unit_fits(code: str, family: str, ref: Reference) -> bool:
    """Whether a level in unit family ``family`` can be a level of indicator ``code``."""
    ind = ref.indicators.get(code)
    return ind is not None and family in ind.unit_families
