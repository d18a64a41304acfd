"""What a document is, before any number is read: its type, its reporting government and its year.

A fact is only as good as its identity, and identity is a property of the whole document, so it is
decided once, from the strongest evidence the text holds, and every fact inherits it:

* **type**: a local government's work report; the national (State Council) report; a news page that
  cites a report; a page with no report at all. Only the first yields facts.
* **region**, in order of trust: the meeting line (``2012年2月29日在海拉尔区第十三届人民代表大会…``),
  the title (``保定市政府工作报告``), the speaker line (``我代表南山区人民政府``), the signature
  (``徐水县人民政府县长``); and when the text names its government only by level (``我代表县人民政府``,
  ``全县``), the division of that level the text names most, its prefecture or province named too.
  Every name must be a division of ``seeds/regions.csv`` (current, former or functional area), read
  whole: ``米易县`` is one name and never ``易县``, ``大湾区`` or ``占全市`` are no names at all.
* **year** (the year the report is delivered; its review covers the year before): the meeting date,
  a date line (also in Chinese numerals, ``二〇〇三年一月十日``), the title, the review heading
  (``2023年工作回顾`` → 2024), the plan heading (``2024年工作安排``), the first sentence of the review
  (``2023年是…的一年`` → 2024), a publication date.

A document whose identity cannot be established gets no facts and a reason a user can read.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from transforms.extract.reference import NameScanner, Reference, Region, per_reference
from transforms.extract.regions import ReportRegion

LOCAL = "local_work_report"
NATIONAL = "national_work_report"
NEWS = "news_about_report"
NOT_A_REPORT = "not_a_report"
UNIDENTIFIED = "unidentified_report"

_HAN = r"[\u4e00-\u9fff]"
_HEAD = 4000
_LEVEL_WORDS = {"省": "province", "自治区": "province", "市": "city", "州": "city", "盟": "city", "区": "district", "县": "county", "旗": "county"}
_MEETING_TAIL = r"第[一二三四五六七八九十百\d]{1,5}届(?:人民代表大会|人大)"
_MEETING_REACH = 30  # the name before the tail: at most this many Han characters
_MEETING = re.compile(rf"({_HAN}{{2,{_MEETING_REACH}}}?){_MEETING_TAIL}")
_MEETING_TAIL_RE = re.compile(_MEETING_TAIL)
_TITLE = re.compile(rf"(?:^|标题[:：]\s*)(?:\d{{4}}年度?)?({_HAN}{{2,30}}?)(?:\d{{4}}年度?)?(?:人民)?政府工作报告", re.M)
_SPEAKER = re.compile(rf"我代表({_HAN}{{1,30}}?)(?:人民政府|政府|管理委员会|管委会)")
_SIGNATURE = re.compile(rf"^\s*({_HAN}{{2,30}}?)(?:人民政府|政府)(?:代理|代)?(?:省长|市长|区长|县长|旗长|州长|盟长|主任)", re.M)
_NATIONAL = re.compile(r"我代表国务院|国务院总理|在第[一二三四五六七八九十]+届全国人民代表大会")
_SCOPE = re.compile(r"(?:全|我|本)(自治区|省|市|区|县|旗|州|盟)")

_CN_DIGITS = {"〇": 0, "○": 0, "零": 0, "O": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_YEAR_RULES: tuple[tuple[str, re.Pattern, int], ...] = (
    ("meeting date", re.compile(r"(?P<y>(?:19|20)\d{2})年(?P<m>\d{1,2})月(?P<d>\d{1,2})日在?[^。\n]{0,40}?(?:人民代表大会|人大)"), 0),
    ("meeting date", re.compile(r"(?P<cy>[〇○零O一二三四五六七八九]{4})年(?P<cm>[一二三四五六七八九十]{1,3})月(?P<cd>[一二三四五六七八九十]{1,3})日"), 0),
    ("title", re.compile(r"(?:^|标题[:：]\s*)[^\n]{0,30}?(?P<y>(?:19|20)\d{2})年[^。\n]{0,12}?政府工作报告", re.M), 0),
    ("date line", re.compile(r"^\s*(?P<y>(?:19|20)\d{2})年(?P<m>\d{1,2})月(?P<d>\d{1,2})日\s*$", re.M), 0),
    ("review heading", re.compile(r"^\s*(?:[一二三四五六七八九十]+[、.．]|[(（][一二三四五六七八九十]+[)）])?\s*[^\n]{0,20}?(?P<y>(?:19|20)\d{2})年(?:的)?(?:政府)?(?:主要)?工作(?:回顾|总结)", re.M), 1),
    ("plan heading", re.compile(r"^\s*(?:[一二三四五六七八九十]+[、.．]|[(（][一二三四五六七八九十]+[)）])?\s*(?P<y>(?:19|20)\d{2})年(?:经济社会发展的?|政府)?(?:总体要求|总体思路|工作安排|主要任务|重点工作|目标任务|主要目标|工作任务|工作总体要求|主要工作(?!回顾|总结|完成|情况))", re.M), 0),
    ("review opening", re.compile(r"(?:^|过去的一年|刚刚过去的)\s*(?P<y>(?:19|20)\d{2})年[,，]?是", re.M), 1),
    ("publication date", re.compile(r"(?:发文时间|发布日期|发布时间|日期|时间)[:：]?\s*(?P<y>(?:19|20)\d{2})[-/年](?P<m>\d{1,2})"), 0),
)


@dataclass(frozen=True)
class Identity:
    """What a document is; ``reason`` says in words why it yields no facts (None when it does)."""

    doc_type: str
    region: ReportRegion | None
    year: int | None
    region_source: str = ""
    year_source: str = ""
    reason: str | None = None

    @property
    def yields_facts(self) -> bool:
        return self.doc_type == LOCAL and self.region is not None and self.year is not None

    def describe(self) -> dict:
        """A JSON-able summary for the ``documents`` table and the reports."""
        return {"doc_type": self.doc_type, "region": self.region.name if self.region else None,
                "level": self.region.level if self.region else None,
                "parents": list(self.region.parents) if self.region else [],
                "year": self.year, "region_source": self.region_source, "year_source": self.year_source, "reason": self.reason}


_DIVISION_SCANNERS: dict = {}


def division_scanner(ref: Reference) -> NameScanner:
    """Every division name, read whole (a name inside a longer one is never read), cached per reference."""
    return per_reference(_DIVISION_SCANNERS, ref, lambda r: NameScanner(r.divisions))


def _candidates(name: str, ref: Reference) -> tuple[Region, ...]:
    return ref.divisions.get(name, ())


def _as_report_region(div: Region, ref: Reference) -> ReportRegion:
    parents, seen = [], {div.name}
    p = div.parent
    while p and p not in seen:
        parents.append(p)
        seen.add(p)
        up = _candidates(p, ref)
        p = up[0].parent if up else ""
    return ReportRegion(div.name, div.level, tuple(parents))


def _pick(divs: tuple[Region, ...], scan: str) -> Region:
    """Of divisions sharing a name (朝阳区 of Beijing and of Changchun), the one whose parents the text names."""
    if len(divs) == 1:
        return divs[0]

    def named(d: Region) -> int:
        return sum(scan.count(n) + (scan.count(s) if s != n else 0)
                   for n in (d.parent, d.province) if n for s in (_short_of_name(n),))
    return max(divs, key=named)


def _path_region(raw: str, scan: str, ref: Reference) -> Region | None:
    """The last whole division name in ``raw`` (河北省保定市徐水区 -> 徐水区), checked against its parents."""
    found = [name for _start, name in division_scanner(ref).finditer(raw)]
    if not found:
        return None
    name = found[-1]
    divs = _candidates(name, ref)
    named_parents = [d for d in divs if d.parent in found[:-1] or d.province in found[:-1]]
    return _pick(tuple(named_parents) or divs, scan)


def _level_word(raw: str) -> str | None:
    """区 / 县 / 市 / 省 / 旗 / 自治区 alone (我代表区人民政府): the government's level without its name."""
    return _LEVEL_WORDS.get(raw)


def _fits_level(div: Region, word: str) -> bool:
    """Whether a division can call itself 全<word> / 我<word>: a county-level city says 市, a district 区."""
    lvl = _LEVEL_WORDS[word]
    if lvl == "province":
        return div.level == "province"
    if word in ("市", "州", "盟"):
        return div.name.endswith(word) and div.level in ("city", "county")
    return div.name.endswith(word) and div.level in ("county", "district")


def scope_level(scan: str) -> str | None:
    """The level word the text uses most for itself (全县/我县 → 县), or None."""
    counts = Counter(m.group(1) for m in _SCOPE.finditer(scan))
    return counts.most_common(1)[0][0] if counts else None


_SHORT_CACHE: dict[tuple[int, str], tuple[NameScanner | None, dict[str, tuple[Region, ...]]]] = {}


def _short_names(ref: Reference, word: str | None) -> tuple[NameScanner | None, dict[str, tuple[Region, ...]]]:
    """Short names (新安, 广东) of the divisions that may call themselves 全<word>, as one scanner (cached per reference)."""
    key = (id(ref), word)
    if key not in _SHORT_CACHE:
        _SHORT_CACHE[key] = _build_short_names(ref, word)
    return _SHORT_CACHE[key]


def _build_short_names(ref: Reference, word: str | None) -> tuple[NameScanner | None, dict[str, tuple[Region, ...]]]:
    by_short: dict[str, tuple[Region, ...]] = {}
    for divs in ref.divisions.values():
        for d in divs:
            if len(d.short) >= 2 and d.short != d.name and (word is None or _fits_level(d, word)):
                by_short[d.short] = (*by_short.get(d.short, ()), d)
    return (NameScanner(by_short) if by_short else None), by_short


def _most_named(scan: str, word: str | None, ref: Reference) -> tuple[Region | None, str]:
    """The division of level ``word`` the text names most (whole names count 3, short names 1).

    Without a level word from the speaker line, divisions of every level compete, and
    each use of 全<w>/我<w>/本<w> counts 2 for the divisions that can call themselves so.

    A division's own report names itself (mostly by its short name: 新安, 福田) and its
    parents; other divisions of its level only now and then. A two-character whole name
    (易县) counts only where it is not the tail of a word (示范县).
    """
    score: Counter = Counter()
    words = (word,) if word else tuple(_LEVEL_WORDS)
    for start, name in division_scanner(ref).finditer(scan):
        if _whole_word(scan, start, name):
            for d in _candidates(name, ref):
                if any(_fits_level(d, w) for w in words):
                    score[d] += 3

    scanner, by_short = _short_names(ref, None)
    if scanner is not None:
        hits = Counter(name for _start, name in scanner.finditer(scan))
        for short, n in hits.items():
            for d in by_short[short]:
                if any(_fits_level(d, w) for w in words):
                    score[d] += n
    if not score:
        return None, ""
    scopes = Counter(m.group(1) for m in _SCOPE.finditer(scan))
    for d in list(score):
        score[d] += 2 * sum(n for w, n in scopes.items() if _fits_level(d, w))
    named: dict[str, bool] = {}  # leaders share parents, and a name the text lacks costs a scan of all of it

    def in_scan(name: str) -> bool:
        if name not in named:
            short = _short_of(name, ref)  # inside the name (广东 of 广东省): where the name is, so is it
            named[name] = short in scan if short in name else (name in scan or short in scan)
        return named[name]

    for d in [d for d, _n in score.most_common(_CANDIDATES)]:  # the parents' bonus decides among the leaders only
        if d.parent and in_scan(d.parent):
            score[d] += 2
        if d.province and d.province != d.parent and in_scan(d.province):
            score[d] += 1
    best, n = score.most_common(1)[0]
    if n < 4:
        return None, ""
    return best, f"most named {word}-level division" if word else "most named division"


_CANDIDATES = 40
_BEFORE_NAME = set("在于和与的是及、从到向对把将为由至经全我本")


def _whole_word(scan: str, at: int, name: str) -> bool:
    """A two-character name (易县, 城区, 范县) counts only where no character of a longer word precedes it:
    示范县 and 先进城区 are words, 在易县 and ，易县 are the county."""
    if len(name) > 2 or at == 0:
        return True
    before = scan[at - 1]
    return not ("\u4e00" <= before <= "\u9fff") or before in _BEFORE_NAME


def _short_of_name(name: str) -> str:
    from transforms.extract.divisions import short_name  # noqa: PLC0415
    return short_name(name)


def _short_of(name: str, ref: Reference) -> str:
    divs = _candidates(name, ref)
    return divs[0].short if divs and len(divs[0].short) >= 2 else name


def _meeting_lines(head: str) -> list[re.Match]:
    """``_MEETING.finditer(head)``, searched from just before each session name (第十三届人民代表大会).

    _MEETING starts with a run of Han characters, so the engine would try it at every position of the head;
    a match ends in a session name at most ``_MEETING_REACH`` characters after its start, and the session
    name starts with a literal the engine finds fast. Searching from that far before the first session name
    at or after where the last match ended gives the same matches.
    """
    out, pos = [], 0
    while (tail := _MEETING_TAIL_RE.search(head, pos)) is not None:
        m = _MEETING.search(head, max(pos, tail.start() - _MEETING_REACH))
        if m is None:
            break
        out.append(m)
        pos = m.end()
    return out


def detect_region(scan: str, ref: Reference) -> tuple[Region | None, str, str | None]:
    """(division, how it was found, reason when not found)."""
    head = scan[:_HEAD]
    for label, pattern in (("meeting line", _MEETING), ("title", _TITLE), ("speaker line", _SPEAKER), ("signature", _SIGNATURE)):
        for m in (_meeting_lines(head) if pattern is _MEETING else pattern.finditer(head)):
            raw = m.group(1)
            div = _path_region(raw, scan, ref)
            if div is not None:
                return div, label, None
    word = None
    for m in _SPEAKER.finditer(head):
        word = _level_word(re.sub(r"^.*?(自治区|省|市|区|县|旗|州|盟)$", r"\1", m.group(1))) and re.sub(r"^.*?(自治区|省|市|区|县|旗|州|盟)$", r"\1", m.group(1))
        if word:
            break
    if word is None and scope_level(scan) is None:
        return None, "", "the text names no government: no title, meeting line or speaker line, and no 全区/全县/全市/全省"
    div, how = _most_named(scan, word, ref)
    if div is None:
        return None, "", (f"the government speaks of itself as {word} but no {word}-level division of seeds/regions.csv "
                          "is named often enough to tell which")
    return div, how, None


def _cn_number(s: str) -> int:
    if all(c in _CN_DIGITS for c in s):
        return int("".join(str(_CN_DIGITS[c]) for c in s))
    total, cur = 0, 0
    for c in s:
        if c == "十":
            total += (cur or 1) * 10
            cur = 0
        else:
            cur = _CN_DIGITS.get(c, 0)
    return total + cur


def detect_year(scan: str, review_fallback: bool = True) -> tuple[int | None, str]:
    """(report year, the evidence it came from); see the module docstring for the order."""
    head = scan[:_HEAD]
    for label, pattern, shift in _YEAR_RULES:
        where = scan if label in ("review heading", "plan heading") else head
        for m in pattern.finditer(where):
            gd = m.groupdict()
            y = _cn_number(gd["cy"]) if gd.get("cy") else int(gd["y"])
            if not 1949 <= y <= 2100:
                continue
            if label == "publication date" and gd.get("m") and int(gd["m"]) > 6:
                shift = 1  # a page published late in a year looks back on that year
            return y + shift, label
    return year_after_review(scan) if review_fallback else (None, "")


_PLAN_START = re.compile(r"^\s*(?:[一二三四五六七八九十]+[、.．])?\s*[^\n]{0,12}?(?:未来五年|今后五年|工作安排|主要任务|预期目标|总体要求|工作任务)", re.M)
_PAST_YEAR = re.compile(r"(?<![\d到至])(?P<y>(?:19|20)\d{2})年(?!底前|前|后)")


def year_after_review(scan: str) -> tuple[int | None, str]:
    """The year after the latest year the review section talks about (a five-year report with no dated heading)."""
    m = _PLAN_START.search(scan)
    review = scan[: m.start()] if m else ""
    years = [int(y.group("y")) for y in _PAST_YEAR.finditer(review) if 1949 <= int(y.group("y")) <= 2100]
    if not years:
        return None, ""
    return max(years) + 1, "years the review talks about"


def identify_document(scan: str, ref: Reference, looks_like_report: bool, cited_only: bool) -> Identity:
    """The identity of one canonical text (``scan`` as read by the extractor)."""
    if _NATIONAL.search(scan[:_HEAD]):
        return Identity(NATIONAL, None, None, reason="the national government's (State Council's) work report, not a local one; "
                        "its figures are China's, so none is loaded as a region's")
    if not looks_like_report:
        if cited_only:
            return Identity(NEWS, None, None, reason="a news page that cites a work report (…工作报告提出), not the report itself")
        return Identity(NOT_A_REPORT, None, None, reason="no work-report language (各位代表, 工作回顾, 政府工作报告, 人民代表大会): "
                        "not a government work report")
    div, how, why = detect_region(scan, ref)
    year, ysrc = detect_year(scan, review_fallback=False)
    region = _as_report_region(div, ref) if div is not None else None
    if region is None:
        return Identity(UNIDENTIFIED, None, year, "", ysrc, reason=f"region unknown: {why}")
    if year is None:
        return Identity(UNIDENTIFIED, region, None, how, "", reason="year unknown: no meeting date, title, date line or "
                        "review heading (2023年工作回顾) names the year")
    return Identity(LOCAL, region, year, how, ysrc)
