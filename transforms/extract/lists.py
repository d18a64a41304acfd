"""Lists of numbers and how they are shared out over lists of subjects.

Reports pack several facts into one clause:

* ``城乡居民人均可支配收入分别达到40013元和21055元,增长6.6%、8.8%`` — one subject
  naming two indicators, two lists of two numbers: paired in order;
* ``接待游客1400万人次、实现旅游综合收入82亿元,分别增长119%、127%`` — 分别 after two
  separate subjects: the numbers go to the last two indicators named, in order;
* ``接待游客人数、旅游综合收入增速均达到30%以上`` — 均: one number for every subject.

A *group* is a run of quantities joined only by list joiners (、 和 及 与) with
the same kind of unit (all % or all amounts).
"""

from __future__ import annotations

from transforms.extract.reference import term_pattern
from transforms.extract.units import Quantity

_PCT = ("%", "个百分点")


def _joined(scan: str, a: Quantity, b: Quantity) -> bool:
    gap = scan[a.end:b.start]
    if not gap:
        return False
    joiners = term_pattern("list_joiner")
    return joiners is not None and joiners.fullmatch(gap) is not None


def group_quantities(scan: str, quantities: list[Quantity]) -> list[list[Quantity]]:
    """Consecutive quantities joined by 、/和/及 with units of the same kind, as groups."""
    groups: list[list[Quantity]] = []
    for q in quantities:
        if groups:
            last = groups[-1][-1]
            same_kind = (last.unit in _PCT) == (q.unit in _PCT) and last.unit != ":" and q.unit != ":"
            if same_kind and _joined(scan, last, q):
                groups[-1].append(q)
                continue
        groups.append([q])
    return groups


def distribute(subject: tuple[str, ...], recent: list[str], group: list[Quantity], respectively: bool, each: bool) -> list[tuple[str, Quantity]]:
    """Pair indicator codes with the quantities of one group; [] when the pairing is ambiguous.

    ``subject`` is the current subject (one or more codes, e.g. a compound alias);
    ``recent`` the distinct codes named so far in the sentence, in order, used
    when 分别 spreads numbers over subjects named in separate clauses.
    """
    n = len(group)
    if n == 1:
        if len(subject) == 1 or each:
            return [(code, group[0]) for code in subject]
        return []
    if len(subject) == n:
        return list(zip(subject, group))
    if respectively and len(recent) >= n:
        return list(zip(recent[-n:], group))
    return []
