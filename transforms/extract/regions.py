"""Whose numbers are these? The report's own region, its level, and other regions.

The report region is read, in order of trust, from the meeting line
(…在河南省新乡市凤泉区第十届人民代表大会…), the title (2024年武威市凉州区政府工作报告),
the speaker (凉州区区长), and finally the region named most often in the text.
A name like 河南省新乡市凤泉区 is split into its parts; the last part is the
report region and its suffix gives its level (省 province, 市 city, 县/旗 county,
区 district) unless ``seeds/regions.csv`` says otherwise (北京市 is a province).

A number whose subject is introduced by another region (武威市…, 全省…, when the
report is a district's) is not the report region's; the extractor leaves it out.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import cached_property

from transforms.extract.reference import Reference

_HAN = r"[\u4e00-\u9fff]"
_SUFFIX_LEVEL = (("特别行政区", "province"), ("自治区", "province"), ("自治州", "city"), ("自治县", "county"), ("地区", "city"),
                 ("省", "province"), ("市", "city"), ("州", "city"), ("盟", "city"), ("县", "county"), ("旗", "county"), ("区", "district"))
_PART_RE = re.compile(rf"{_HAN}+?(?:特别行政区|自治区|自治州|自治县|州市|省|市|县|旗|区|盟|州(?![市区县]))")
_MEETING_RE = re.compile(rf"在({_HAN}{{2,24}}?)第[\u4e00-\u9fff\d]{{1,4}}届(?:人民代表大会|人大)")
# a meeting named without 在 (news of the session: 成都市郫都区第二届人民代表大会第五次会议开幕): the name starts a line or follows punctuation
_SESSION_RE = re.compile(rf"(?:^|(?<=[\s,，。;；:：、“”\"]))({_HAN}{{2,24}}?)第[\u4e00-\u9fff\d]{{1,4}}届(?:人民代表大会|人大)", re.M)
_TITLE_RE = re.compile(rf"({_HAN}{{2,24}}?)(?:\d{{4}}年度?)?(?:人民政府)?(?:政府)?工作报告")
_SPEAKER_RE = re.compile(rf"({_HAN}{{2,12}}?)(?:省长|市长|区长|县长|旗长|州长|盟长)(?:[\s,，:：]|$)")
_NOT_IN_NAMES = set("年的在和全我了是为对与及等今去")
_STOP_PREFIXES = ("在", "于", "年", "的", "和", "对", "向", "是", "全", "本", "我")


@dataclass(frozen=True)
class ReportRegion:
    """The report's region with its level and known parents (nearest first)."""

    name: str
    level: str
    parents: tuple[str, ...] = ()

    @cached_property
    def _names(self) -> frozenset[str]:
        short = _short(self.name)
        return frozenset({self.name, short} if len(short) >= 2 else {self.name})

    def names(self) -> frozenset[str]:
        """Every name that denotes the report region in the text (computed once: asked for every subject)."""
        return self._names


def _short(name: str) -> str:
    for suffix, _lvl in _SUFFIX_LEVEL:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def level_of(name: str, ref: Reference) -> str | None:
    """The level of a region name from regions.csv, else from its suffix."""
    if name in ref.regions:
        return ref.regions[name].level
    for suffix, lvl in _SUFFIX_LEVEL:
        if name.endswith(suffix):
            return lvl
    return None


def split_region_path(s: str, ref: Reference) -> list[str]:
    """河南省新乡市凤泉区 -> [河南省, 新乡市, 凤泉区]; known names from regions.csv win."""
    parts: list[str] = []
    i = 0
    known = sorted(ref.regions, key=len, reverse=True)
    while i < len(s):
        hit = next((k for k in known if s.startswith(k, i)), None)
        if hit:
            parts.append(hit)
            i += len(hit)
            continue
        m = _PART_RE.match(s, i)
        if not m:
            break
        parts.append(m.group())
        i = m.end()
    return parts


def _clean_path(raw: str) -> str:
    """Drop a leading year/preposition so that 2024年武威市凉州区 -> 武威市凉州区."""
    raw = re.sub(r"^.*?\d{4}年", "", raw)
    raw = re.sub(r"^[)）\]】]", "", raw)
    while raw and raw[0] in "在于":
        raw = raw[1:]
    return raw


def _from_path(raw: str, ref: Reference) -> ReportRegion | None:
    parts = split_region_path(_clean_path(raw), ref)
    parts = [p for p in parts if len(p) >= 2]
    if not parts:
        return None
    name = parts[-1]
    lvl = level_of(name, ref)
    if lvl is None:
        return None
    parents = list(reversed(parts[:-1]))
    if lvl == "city" and name not in ref.regions and any(p.endswith(("市", "州", "盟")) and level_of(p, ref) == "city" for p in parents):
        lvl = "county"  # 苏州市昆山市: a county-level city under a prefecture
    known = ref.regions.get(name)
    while known and known.parent and known.parent not in parents:
        parents.append(known.parent)
        known = ref.regions.get(known.parent)
    return ReportRegion(name, lvl, tuple(parents))


def detect_report_region(scan: str, ref: Reference) -> ReportRegion | None:
    """The report's own region, or None when the page names none (then nothing is extracted)."""
    head = scan[:3000]
    for pattern in (_MEETING_RE, _SESSION_RE, _TITLE_RE):
        for m in pattern.finditer(head):
            r = _from_path(m.group(1), ref)
            if r is not None:
                return r
    for m in _SPEAKER_RE.finditer(head):
        r = _from_path(m.group(1), ref)
        if r is not None:
            return r
    name = most_named_region(scan, ref)
    return _from_path(name, ref) if name else None


_NAME_SUFFIXES = "区县市旗"
_MIN_MENTIONS = 3


def most_named_region(scan: str, ref: Reference) -> str | None:
    """The region a page names most often (2-4 characters before 区/县/市/旗), for pages without a title.

    Every candidate ending at a suffix is counted, so 是凉州区 and 凉州区 both count for
    凉州区; words such as 开发区 or 示范区 (``not_region`` lexicon rows) never count.
    """
    not_region = ref.terms("not_region")
    counts: Counter = Counter()
    for i, ch in enumerate(scan):
        if ch not in _NAME_SUFFIXES:
            continue
        for k in range(2, 5):
            j = i - k
            if j < 0 or not all("\u4e00" <= c <= "\u9fff" for c in scan[j:i]):
                break
            cand = scan[j:i + 1]
            if cand not in not_region and not any(cand.endswith(w) for w in not_region):
                counts[cand] += 1
    for name in sorted(ref.regions, key=len, reverse=True):  # known names also count when longer than 5
        if len(name) > 5 and name in scan:
            counts[name] += scan.count(name)
    best = [(n, len(c), c) for c, n in counts.items() if n >= _MIN_MENTIONS and not c.startswith(_STOP_PREFIXES)]
    if not best:
        return None
    best.sort(key=lambda x: (-x[0], -(x[2] in ref.regions), x[1]))
    return best[0][2]


def scope_is_foreign(scope_term: str, region: ReportRegion) -> bool:
    """全省/全市/全县/全区/全州 before a subject: foreign unless it is the report region's own word.

    The report region calls itself 全 + the last character of its name: a district
    全区, a county 全县, a banner 全旗, a county-level city 全市. So 全州 in a report of
    弥勒市 (under 红河州) is the prefecture, and 全区 in a banner's report is the
    autonomous region, whatever the levels say.
    """
    return not scope_term.endswith(region.name[-1])


def names_other_region(prefix: str, region: ReportRegion, ref: Reference) -> bool:
    """True when ``prefix`` (the clause text before a subject) names a region other than the report's."""
    own = region.names()  # a parent's figure (武威市生产总值…) is not the report region's either
    scope_terms = ref.terms("scope")
    for term in scope_terms:
        if term in prefix and scope_is_foreign(term, region):
            return True
    from transforms.extract.identity import division_scanner  # noqa: PLC0415 (identity imports this module)

    for start, name in division_scanner(ref).finditer(prefix):  # whole division names only: 米易县 is not 易县
        if name not in own and not (len(name) == 2 and start > 0 and "\u4e00" <= prefix[start - 1] <= "\u9fff"):
            return True
    if _SUFFIX_RE.search(prefix) is None:
        return False  # no 县/区/市/旗 to end a name (taking the scope words out below adds none)
    not_region = ref.terms("not_region")
    bare = prefix
    for term in scope_terms:  # 去年全区…: a scope word is not part of a place name
        bare = bare.replace(term, "，")
    word_after = ref.terms("not_name_end")  # 区域, 市委, 县级, 市场: the suffix character starts a word, it ends no name
    return any(_foreign_name_ending_at(bare, m.start(), own, not_region, ref) for m in _SUFFIX_RE.finditer(bare)
               if bare[m.end():m.end() + 1] not in word_after)


_SUFFIX_RE = re.compile("自治县|[县区市旗]")


def _foreign_name_ending_at(text: str, suffix_at: int, own: set[str], not_region: dict, ref: Reference) -> bool:
    """Whether the 2-6 characters before the suffix at ``suffix_at`` name another region.

    Candidates are tried shortest first and may start anywhere, so a name that follows
    a word (在潍坊市…, 与邻近的屯留市…) is still read; the first candidate that is our
    own name, a word (城市, 示范区) or a known region settles it.
    """
    end = suffix_at + (3 if text.startswith("自治县", suffix_at) else 1)
    for k in range(2, 7):
        j = suffix_at - k
        if j < 0 or not all("\u4e00" <= c <= "\u9fff" for c in text[j:suffix_at]):
            return False
        name = text[j:end]
        if name.startswith(_STOP_PREFIXES) or any(c in _NOT_IN_NAMES for c in name):
            return False  # the name cannot reach back past 在/的/和…: 在潍坊市 was already read as 潍坊市
        if name in own or any(name.endswith(o) or o.endswith(name) for o in own):
            return False
        if name in not_region or any(name.endswith(w) for w in not_region):
            return False  # 城市, 示范区, 百强县: words, not places (parks are judged by the subscope rows)
        if name in ref.regions or _known_short(name, ref):
            return True
    return False


def _known_short(name: str, ref: Reference) -> bool:
    """屯留市 (a name written with another suffix than today's 屯留区): its stem is a known division's short name.

    A stem no division has (现本市 of 实现本市, 先进城区) is a word, not a place."""
    from transforms.extract.divisions import short_name  # noqa: PLC0415

    stem = short_name(name)
    return len(stem) >= 2 and stem != name and stem in _shorts(ref)


_SHORTS: dict[int, frozenset[str]] = {}


def _shorts(ref: Reference) -> frozenset[str]:
    if id(ref) not in _SHORTS:
        _SHORTS[id(ref)] = frozenset(r.short for divs in ref.divisions.values() for r in divs if len(r.short) >= 2)
    return _SHORTS[id(ref)]
