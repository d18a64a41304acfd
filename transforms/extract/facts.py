"""From canonical text to facts: subjects, numbers, and the words between them.

The extractor reads one sentence at a time (split at 。！？ and line breaks).
Inside a sentence it walks the indicator mentions and the quantities in order:

1. a mention opens a *subject* (mentions joined by 、/和 form one subject with
   several indicators); a subject introduced by another region (全省…, 在潍坊市…),
   by a sub-scope (A级景区…), by 其中 + an indicator already named (a part of
   that total), or after part of a year (一季度…, 国庆假期…, 1-11月…) is foreign
   and yields nothing;
2. a group of quantities links to the current subject only if the words between
   them are *light*: cue words (增长, 年均, 累计, 占…的, 分别, 均, qualifiers …) and
   fillers (达到, 完成, 同比 …) from ``seeds/lexicon.csv``. Anything else (其中, 项目,
   排名, a new noun phrase) ends the subject, so 其中省外资金… or
   255个重点项目完成投资… never inherit it;
3. the cue words give the measure (growth / share / ratio / level, with the unit
   family checked against the indicator), the sign (下降 -> negative), the kind
   (年均 -> average_annual, 累计 -> cumulative, 较2017年 -> change_vs_base, else
   the section's actual/target) and the qualifier; the section and explicit
   years (到2026年, 2020年全区…) give the period. A 累计 carries over a comma
   to the next amount (累计接待游客…,实现旅游总收入…); one rate after a compound
   subject (城乡居民人均可支配收入增长8%) holds for each of its indicators.

A page whose only report words are cited (市政府工作报告提出…) is a news page,
not a report, and yields nothing.

Every fact's evidence is ``text[start:end]`` and contains the number as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from transforms.extract.indicators import Mention, find_mentions, unit_fits
from transforms.extract.lists import distribute, group_quantities
from transforms.extract.numbers import scan_text
from transforms.extract.reference import Reference, load_reference, term_pattern
from transforms.extract.identity import LOCAL, UNIDENTIFIED, Identity, detect_year, identify_document, year_after_review
from transforms.extract.regions import ReportRegion, names_other_region
from transforms.extract.sections import Section, detect_report_year, find_sections, section_at, span_end
from transforms.extract.units import Quantity, base_value, find_quantities
from transforms.schema import Fact

_SENTENCE_END = re.compile(r"[。！？!?\n]")
_CLAUSE_DELIMS = ",，;；:：。！？!?\n"
_HARD_BREAK = re.compile(r"[;；]")
_COLON = re.compile(r"[:：]")
_CHANGE_VS_BASE = re.compile(r"(?:较|比|相比|与)[^,，;；。\d]{0,6}?(?P<y>(?:19|20)\d{2})年(?:同期|水平)?(?:相比)?")
_SHARE_OF = re.compile(r"占[^,，;；。\d]{1,20}?(?:的比重|比重|的比例|比例|的)|占[^,，;；。\d]{1,20}?(?:支出|收入|生产总值|GDP)$")
_FROM = re.compile(r"[由从]")
_TO = re.compile(r"到|至|为")
_GAP_YEAR = re.compile(r"(?:到|至)?(?P<y>(?:19|20)\d{2})年(?:底|末)?的?")
_TARGET_YEAR = re.compile(r"(?:到|至|预计到|力争到)(?P<y>(?:19|20)\d{2})年(?:底|末)?")
_CLAUSE_YEAR = re.compile(r"(?<![较比\d])(?P<y>(?:19|20)\d{2})年(?!度|以来|前|同期|的)")
_SENTENCE_YEAR = re.compile(r"^\s*(?P<y>(?:19|20)\d{2})年(?!度|以来|前|同期|的|[,，]?是)[,，]?")
_BASE_OPENER = re.compile(r"(?:^|[,，;；:：])\s*(?:与|同|和|比|较)[^,，;；。\d]{0,6}?(?P<y>(?:19|20)\d{2})年(?:同期|底|末)?(?:相比|比较)\s*[,，]")
# 1-11月, 前三个月: (?<!\d)1?\d\s*[-—~至到]\s*1?\d月(?:份)?|前(?:\d{1,2}|[一二三四五六七八九十]{1,2})个月, written to start
# with one character class (a look-behind first left the engine nothing to skip ahead to): the digit or 前 is read
# first and the look-behinds after it check what the original checked before it
_MONTH_SPAN = re.compile(r"[\d前](?:(?<=\d)(?<!\d\d)(?:(?<=1)\d)?\s*[-—~至到]\s*1?\d月(?:份)?|(?<=前)(?:\d{1,2}|[一二三四五六七八九十]{1,2})个月)")
_PAREN = re.compile(r"[(（][^()（）]{0,20}[)）]")
_WRAP_MIN_LINE = 40  # a line this long that stops mid-clause is hard-wrapped prose, not a heading
_PUNCT = re.compile(r"[,，、\s]")
_MAX_RESIDUAL = 1
_LOOKBACK = 300  # how far back in a sentence 到2026年 / 预计 / 十四五 are looked for (keeps giant sentences linear)
_CHAIN_EVIDENCE = 8  # facts of one statement whose evidence is stretched to its last number
_GROWTH_UNITS = ("%", "个百分点")
STRUCTURE = "industry_structure"  # the alias family of a:b:c; its facts are the shares below
STRUCTURE_SHARES = ("primary_industry_share", "secondary_industry_share", "tertiary_industry_share")
_ANNUAL_TARGET = re.compile(r"\s*[(（](?:年度|年初|全年)?(?:预期|计划)?目标(?:为|是)?[:：]?\s*")
_RATIO_TERM = re.compile(r"\d+(?:\.\d+)?")


@dataclass
class Cues:
    """What the words between a subject and a group of numbers say."""

    ok: bool = True
    growth_sign: int = 0  # +1 / -1 when a growth cue is present
    to_level: bool = False
    share: bool = False
    average_annual: bool = False
    cumulative: bool = False
    every_year: bool = False
    base_year: int | None = None
    respectively: bool = False
    each: bool = False
    target: bool = False
    qualifier: str | None = None
    from_to: bool = False
    year: int | None = None  # 到2027年 written between the subject and the number
    plan: str | None = None  # “十三五”期间 written between the subject and the number: the plan's span


@dataclass
class Subject:
    """The indicator(s) the following numbers are about."""

    codes: list[str]
    start: int
    evidence_start: int
    foreign: bool = False
    prefix: str = ""
    facts: list[dict] = field(default_factory=list)
    said: set = field(default_factory=set)
    compound: bool = False  # one phrase naming several indicators (城乡居民人均可支配收入)
    alias: str = ""  # the words that named it (经济增长 names GDP and says growth)


@dataclass(frozen=True)
class Context:
    """Per-document facts the rules need: region, year, sections."""

    doc_id: str
    region: ReportRegion
    year: int | None
    sections: list[Section]


def _remove_terms(s: str, category: str) -> str:
    pat = term_pattern(category)
    return pat.sub("", s) if pat is not None else s


_CUES_SEEN: dict[str, tuple[Reference, Cues]] = {}
_CUES_SEEN_MAX = 4096


def read_cues(gap: str, ref: Reference) -> Cues:
    """Classify the text between a subject (or previous number) and a group of numbers.

    The same few gaps (增长, 达到, ,同比增长 …) come back in every report, so each gap's cues are read
    once per reference and handed out as copies (the caller adds to them).
    """
    hit = _CUES_SEEN.get(gap)
    if hit is None or hit[0] is not ref:
        if len(_CUES_SEEN) >= _CUES_SEEN_MAX:
            _CUES_SEEN.clear()
        hit = _CUES_SEEN[gap] = (ref, _read_cues(gap, ref))
    seen = hit[1]
    cues = Cues.__new__(Cues)
    cues.__dict__.update(seen.__dict__)  # every field is a scalar: a shallow copy is a copy
    return cues


def _read_cues(gap: str, ref: Reference) -> Cues:
    """``read_cues`` itself."""
    c = Cues()
    gap = _PAREN.sub("", gap)  # 地区生产总值(GDP)…, 一般公共预算收入(不含土地出让)…
    if _HARD_BREAK.search(gap):
        c.ok = False
        return c
    blockers = term_pattern("blocker")
    if blockers is not None and blockers.search(gap):
        c.ok = False
        return c
    rest = gap
    m = _CHANGE_VS_BASE.search(rest)
    if m:
        c.base_year = int(m.group("y"))
        rest = rest[: m.start()] + rest[m.end():]
    m = _FROM.search(rest)
    if m:  # 由150亿元 / 从2016年的380亿元: where it started, unless the 到… part is in the gap too
        c.from_to = _TO.search(rest, m.end()) is None
        rest = rest[: m.start()] + rest[m.end():]
    pat = term_pattern("to_level")
    if pat is not None and pat.search(rest):
        c.to_level = True
        rest = pat.sub("", rest)
    m = _plan_in_gap(rest, ref)
    if m is not None:  # 2020年地区生产总值达到300亿元,“十三五”期间年均增长6.9%
        c.plan = ref.terms("plan_period")[m.group("plan")]
        rest = rest[: m.start()] + rest[m.end():]
    m = _GAP_YEAR.search(rest)
    if m:  # 到2027年突破…, 增加到2021年的558.6亿元
        c.year = int(m.group("y"))
        rest = rest[: m.start()] + rest[m.end():]
    m = _SHARE_OF.search(rest)
    if m:
        c.share = True
        rest = rest[: m.start()] + rest[m.end():]
    flags_text = rest
    for category, attr in (("average_annual", "average_annual"), ("cumulative", "cumulative"), ("every_year", "every_year"),
                           ("respectively", "respectively"), ("each", "each"), ("target_cue", "target")):
        pat = term_pattern(category)
        if pat is not None and pat.search(flags_text):
            setattr(c, attr, True)
            if category == "average_annual":
                flags_text = pat.sub("", flags_text)  # the 均 of 年均 is not 均 (each)
    share = term_pattern("share")
    if share is not None and share.search(rest):
        c.share = True
        rest = share.sub("", rest)
    qb = term_pattern("qualifier_before")
    if qb is not None:
        found = list(qb.finditer(rest))
        if found:
            c.qualifier = ref.terms("qualifier_before")[found[-1].group()]
    down, up = term_pattern("growth_down"), term_pattern("growth_up")
    if down is not None and down.search(rest):
        c.growth_sign = -1
        rest = down.sub("", rest)
    elif (up is not None and up.search(rest)) or c.average_annual:
        c.growth_sign = 1
    rest = _remove_terms(rest, "average_annual")
    if up is not None:
        rest = up.sub("", rest)
    for category in ("light", "cumulative", "every_year", "respectively", "each", "target_cue", "preliminary",
                     "qualifier_before", "qualifier_after", "list_joiner"):
        rest = _remove_terms(rest, category)
    rest = _COLON.sub("", _PUNCT.sub("", rest))  # 地区生产总值:126亿元 reads like 地区生产总值为126亿元
    if len(rest) > _MAX_RESIDUAL:
        c.ok = False
    return c


@lru_cache(maxsize=None)
def _plan_phrase(plan: str) -> re.Pattern:
    """“十三五”期间 / 十二五时期 / “十四五”以来 around one plan name."""
    return re.compile(rf"[“\"]?(?P<plan>{re.escape(plan)})[”\"]?(?:规划)?(?:时期|期间|以来)?")


def _plan_in_gap(gap: str, ref: Reference):
    """A plan period named in the gap (“十三五”期间, 十二五时期), as a match with group ``plan``, or None."""
    names = term_pattern("plan_period")
    m = names.search(gap) if names is not None else None
    return _plan_phrase(m.group()).search(gap, max(0, m.start() - 1)) if m is not None else None


def apply_prefix_cues(prefix: str, c: Cues, sentence_before: str = "") -> None:
    """Cues written before the subject: 累计完成地区生产总值…, 与2019年相比,…, 力争…."""
    for category, attr in (("cumulative", "cumulative"), ("average_annual", "average_annual"), ("target_cue", "target")):
        pat = term_pattern(category)
        if pat is not None and pat.search(prefix):
            setattr(c, attr, True)
    m = _CHANGE_VS_BASE.search(prefix) or _base_opener(sentence_before)
    if m and c.base_year is None:
        c.base_year = int(m.group("y"))


def _base_opener(text: str):
    """``_BASE_OPENER.search(text)``, tried only when ``text`` holds 相比 or 比较 (every match does, and the
    pattern has no first character the engine could skip ahead to)."""
    return _BASE_OPENER.search(text) if "相比" in text or "比较" in text else None


def _clause_start(scan: str, lo: int, pos: int) -> int:
    i = pos
    while i > lo and scan[i - 1] not in _CLAUSE_DELIMS:
        i -= 1
    return i


def _measure(code: str, q: Quantity, cues: Cues, ref: Reference) -> tuple[str, int] | None:
    """(measure, sign) of quantity ``q`` as a fact of ``code``, or None when they do not fit."""
    growth_only = code in ref.terms("growth_only")
    if q.unit == ":":
        return ("ratio", 1) if unit_fits(code, "ratio", ref) else None
    if cues.share:
        return ("share", 1) if q.unit == "%" and unit_fits(code, "percent", ref) else None
    if (cues.growth_sign and not cues.to_level) or cues.base_year or (growth_only and q.unit in _GROWTH_UNITS):
        if q.unit not in _GROWTH_UNITS:
            return None  # 增加2亿元: an absolute change, not a level and not a rate
        return "growth", (cues.growth_sign or 1)
    if q.unit in _GROWTH_UNITS:
        if code in STRUCTURE_SHARES:  # 第三产业比重提高到60%: a share of GDP by definition
            return ("share", 1) if q.unit == "%" else None
        return ("level", 1) if q.unit == "%" and unit_fits(code, "percent", ref) else None
    return ("level", 1) if unit_fits(code, q.family, ref) else None


def _plan_period(sentence_before: str, ref: Reference) -> tuple[str, bool] | None:
    """A plan period named before the subject: ("2016-2020", False) for 十三五时期, ("2025", True) for 十四五末."""
    best = None
    for term, span in ref.terms("plan_period").items():
        i = sentence_before.rfind(term)
        if i >= 0 and (best is None or i > best[0]):
            after = sentence_before[i + len(term): i + len(term) + 4].lstrip("”\"’』」")
            at_end = any(after.startswith(e) for e in ref.terms("plan_end"))
            best = (i, span, at_end)
    if best is None:
        return None
    return (span_end(best[1]), True) if best[2] else (best[1], False)


def _kind_period(code: str, measure: str, cues: Cues, sec: Section, ctx: Context, ref: Reference,
                 sentence_before: str, prefix: str) -> tuple[str, str]:
    """Kind and period from the cues, explicit years, plan periods and the section.

    Explicit beats implicit: 到2026年 / 2020年全区… / 十四五末 name the year; 十三五时期
    names a span; otherwise the section gives it. Within a span (five-year review,
    plan period): 年均 -> average_annual over the span, 累计 (or an indicator whose
    multi-year figure is a sum) -> cumulative, 每年 -> the span, a level -> the end year.
    """
    year = ctx.year
    explicit = None
    found = list(_TARGET_YEAR.finditer(sentence_before))
    if cues.year is not None:
        explicit = cues.year
    elif found:
        explicit = int(found[-1].group("y"))
    else:
        m = _CLAUSE_YEAR.search(_CHANGE_VS_BASE.sub("", prefix)) or _SENTENCE_YEAR.match(sentence_before)
        if m:
            explicit = int(m.group("y"))
        elif year is not None:
            last = term_pattern("last_year")
            lm = last.search(prefix) if last is not None else None
            if lm and not (lm.start() > 0 and prefix[lm.start() - 1] in "比较"):
                explicit = year - 1  # 去年全市…: last year's figure, even inside the plan
    plan = _plan_period(sentence_before, ref) if explicit is None else None
    if plan is not None and plan[1]:
        explicit, plan = int(plan[0]), None
    role = "target" if (sec.role == "target" or cues.target) else "actual"
    period, is_span = sec.period, sec.span
    if role == "target" and sec.role != "target" and year is not None:
        period, is_span = str(year), False  # 力争… inside a review paragraph: this year's target
    if explicit is not None:
        period, is_span = str(explicit), False
        if year is not None:
            role = "target" if explicit >= year else "actual"
    elif plan is not None:
        period, is_span = plan[0], True
        first, _, last_y = plan[0].partition("-")
        if role == "actual" and year is not None and last_y and int(last_y) >= year:
            if year - 1 < int(first):  # a plan that starts this year (十二五 in a 2011 report): its goals, not a review
                role = "target"
            else:
                period = f"{first}-{year - 1}"  # 十四五以来 in a 2024 report: 2021-2023 so far
    if cues.base_year is not None:
        return "change_vs_base", span_end(period)
    if (cues.average_annual or cues.cumulative) and cues.plan:  # …,“十三五”期间年均增长6.9%: the plan named with the rate
        return ("average_annual" if cues.average_annual else "cumulative"), cues.plan
    if (cues.average_annual or cues.cumulative) and role == "target" and (sec.span or plan is not None or is_span):
        # a five-year goal (“十四五”时期…年均增长7%, 五年累计投资超1万亿元): a target over the plan's span
        return "target", (plan[0] if plan is not None else sec.period if sec.span else period)
    if cues.average_annual or cues.cumulative:  # a rate or total over the section's span, even when 到2027年 names its end
        return ("average_annual" if cues.average_annual else "cumulative"), (sec.period if sec.span and plan is None else period)
    if is_span and role == "actual":
        if cues.every_year:
            return "actual", period
        if code in ref.terms("span_total") and measure == "level":
            return "cumulative", period
        return "actual", span_end(period)
    if is_span and measure != "growth":
        return role, span_end(period)  # a five-year goal for a level (城镇化率达到60%) is the level at the end of the span
    return role, period


def _make_fact(code: str, q: Quantity, measure: str, sign: int, kind: str, period: str, cues: Cues,
               subj: Subject, ctx: Context, ref: Reference, preliminary: bool, start: int | None = None) -> dict:
    value = q.value * sign
    vb, ub = base_value(value, q.unit, ref)
    return {
        "doc_id": ctx.doc_id, "region": ctx.region.name, "indicator": code, "measure": measure,
        "value": value, "unit": q.unit, "value_base": vb, "unit_base": ub, "period": period, "kind": kind,
        "qualifier": q.qualifier or cues.qualifier, "start": subj.evidence_start if start is None else start, "end": q.end,
        "rule": f"{measure}:{kind}" + (":list" if cues.respectively or cues.each else ""),
        "region_level": ctx.region.level, "report_year": ctx.year, "preliminary": preliminary,
    }


def _sentences(scan: str):
    """Sentence spans: split at 。！？ and at line breaks, except inside hard-wrapped prose."""
    start = 0
    for end in [m.start() for m in _SENTENCE_END.finditer(scan)]:  # every delimiter is one character
        if scan[end] == "\n" and end > 0:
            line_start = scan.rfind("\n", 0, end) + 1
            before = scan[end - 1]
            if end - line_start >= _WRAP_MIN_LINE and before not in _CLAUSE_DELIMS and not before.isspace():
                continue
        if end > start:
            yield start, end
        start = end + 1
    if start < len(scan):
        yield start, len(scan)


class _SentenceReader:
    """Walks one sentence's mentions and quantity groups in order (see the module docstring)."""

    def __init__(self, scan: str, lo: int, ctx: Context, ref: Reference, in_subscope: bool = False):
        self.scan, self.lo, self.ctx, self.ref = scan, lo, ctx, ref
        self.in_subscope = in_subscope  # the paragraph is about a zone or park (徐水经济开发区…, 雄安新区建设…)
        self.out: list[dict] = []
        self.subject: Subject | None = None
        self.anchor, self.last = lo, None
        self.recent: list[str] = []  # distinct codes named so far, in the order they were last named
        self.named_at: dict[str, int] = {}  # evidence start of the clause that last named each indicator
        self.total_end: int | None = None  # end of the last group read as a 累计 total (it may carry to the next item)

    def read(self, mentions: list[Mention], quantities: list[Quantity]) -> list[dict]:
        items = [(m.start, 0, m) for m in mentions] + [(g[0].start, 1, g) for g in group_quantities(self.scan, quantities)]
        for _pos, is_group, obj in sorted(items, key=lambda x: (x[0], x[1])):
            if is_group:
                self.on_group(obj)
            else:
                self.on_mention(obj)
        return self.out

    def on_mention(self, mention: Mention) -> None:
        """Extend the subject (地区生产总值、规上工业增加值…) or open a new one."""
        gap = self.scan[self.anchor:mention.start]
        joiners = term_pattern("list_joiner")
        if self.subject is not None and self.last == "m" and joiners is not None and joiners.fullmatch(_remove_terms(gap, "light")):
            self.subject.codes.extend(c for c in mention.codes if c not in self.subject.codes)
            self.subject.compound = False
        else:
            self.subject = self._open_subject(mention)
        if not self.subject.foreign:
            for c in mention.codes:
                if c in self.recent:
                    self.recent.remove(c)
                self.recent.append(c)
                self.named_at[c] = self.subject.evidence_start
        self.anchor, self.last = mention.end, "m"

    def _open_subject(self, mention: Mention) -> Subject:
        """A new subject; foreign when its clause names another region, a sub-scope or a project."""
        cstart = _clause_start(self.scan, self.lo, mention.start)
        prefix = self.scan[cstart:mention.start]
        item = prefix.rsplit("、", 1)[-1]  # the list item the subject opens
        unnamed = prefix
        for own in self.ctx.region.names():  # 滨海新区地区生产总值: the report region may itself end in 新区
            unnamed = unnamed.replace(own, "")
        subscope, pblock, part = term_pattern("subscope"), term_pattern("prefix_blocker"), term_pattern("part_of")
        foreign = (names_other_region(prefix, self.ctx.region, self.ref)
                   or (subscope is not None and subscope.search(unnamed) is not None)
                   or (pblock is not None and pblock.search(item) is not None)
                   or (part is not None and part.search(prefix) is not None and any(c in self.recent for c in mention.codes))
                   or self._part_of_year_before(mention.start)
                   or (mention.alias in self.ref.terms("growth_alias") and not self._economy_itself(prefix))
                   or (self.in_subscope and not own_scope(self.scan[self.lo:mention.start], self.ctx.region)))
        ev_start = cstart if mention.start - cstart <= 16 else mention.start
        return Subject(list(mention.codes), mention.start, ev_start, foreign, prefix, compound=len(mention.codes) > 1,
                       alias=mention.alias)

    def _economy_itself(self, prefix: str) -> bool:
        """经济增长 names GDP only when the economy is the region's own: at the start of a clause, or after
        全区/我县/the region's name/全年 — never 数字经济增长 or 民营经济增长, which are parts of it."""
        bare = prefix.rstrip()
        if not bare or bare[-1] in _CLAUSE_DELIMS or not ("\u4e00" <= bare[-1] <= "\u9fff"):
            return True
        return own_scope(bare[-2:], self.ctx.region) or any(bare.endswith(n) for n in self.ctx.region.names()) or bare.endswith(("全年", "年内", "今年", "去年"))

    def _part_of_year_before(self, pos: int) -> bool:
        """Whether the sentence so far speaks of part of a year (一季度, 1-11月, 国庆假期) and not of 全年 again.

        Such figures (a quarter, a holiday week, the months before the report was
        written) are not the year's figures, whatever section they sit in.
        """
        before = self.scan[max(self.lo, pos - _LOOKBACK):pos]
        last = -1
        sub = term_pattern("subperiod")
        for pat in (sub, _MONTH_SPAN):
            if pat is not None:
                for m in pat.finditer(before):
                    last = max(last, m.end())
        if last < 0:
            return False
        whole = term_pattern("whole_year")
        return whole is None or whole.search(before, last) is None

    def on_group(self, group: list[Quantity]) -> None:
        """Link a group of numbers to the subject, or end the subject when the words between forbid it."""
        scan, subject = self.scan, self.subject
        gap = scan[self.anchor:group[0].start]
        self.anchor, self.last = group[-1].end, "q"
        if subject is None or subject.foreign:
            return
        if _ANNUAL_TARGET.fullmatch(gap) and subject.facts and group[0].unit in ("%",) + tuple(self.ref.units):
            self._quoted_target(group[0], subject)
            return
        cues = read_cues(gap, self.ref)
        if subject.alias in self.ref.terms("growth_alias") and not cues.growth_sign:
            cues.growth_sign = 1  # 经济增长5.2%: the alias itself says growth
        if not cues.ok:
            self.subject = None
            return
        if cues.from_to:  # the starting point of 由…到…: a level of the base year (the number after 到 is read next)
            self._start_value(group, cues)
            return
        after = term_pattern("after_blocker")
        if after is not None and after.match(scan, group[-1].end):
            return  # 完成年初确定的增长6%的目标: a past target, not an outcome
        sec = section_at(self.ctx.sections, group[0].start)
        if sec is None:
            return
        before = scan[max(self.lo, subject.start - _LOOKBACK):subject.start]
        apply_prefix_cues(subject.prefix, cues, before)
        if not cues.cumulative and self._total_carries(subject, group):
            cues.cumulative = True
        head = scan[self.lo:self.lo + 12] if subject.start - self.lo > _LOOKBACK else ""
        prelim = term_pattern("preliminary")
        preliminary = prelim is not None and prelim.search(scan, max(self.lo, group[0].start - _LOOKBACK), group[0].start) is not None
        made = 0
        # 城乡居民人均可支配收入增长8%: one rate of a compound phrase holds for each part (a single level would be
        # the all-residents figure, which is another indicator, so it stays ambiguous)
        shared_rate = subject.compound and len(group) == 1 and group[0].unit in _GROWTH_UNITS
        for code, q in distribute(tuple(subject.codes), self.recent, group, cues.respectively, cues.each or shared_rate):
            ms = _measure(code, q, cues, self.ref)
            if ms is None:
                continue
            measure, sign = ms
            if measure == "ratio" and code == STRUCTURE:
                made += self._structure_facts(q, cues, sec, subject, before, head, preliminary)
                continue
            if (code, measure) in subject.said:
                continue  # 增长6.5%左右,力争7%: the first figure is the statement, the rest is commentary
            subject.said.add((code, measure))
            kind, period = _kind_period(code, measure, cues, sec, self.ctx, self.ref, head + before, subject.prefix)
            start = min(subject.evidence_start, self.named_at.get(code, subject.evidence_start))
            fact = _make_fact(code, q, measure, sign, kind, period, cues, subject, self.ctx, self.ref, preliminary, start)
            self.out.append(fact)
            subject.facts.append(fact)
            made += 1
        if made:
            for f in subject.facts[-_CHAIN_EVIDENCE:]:  # evidence of a statement runs to its last number
                f["end"] = max(f["end"], group[-1].end)
            if cues.cumulative:
                self.total_end = group[-1].end

    def _quoted_target(self, q: Quantity, subject: Subject) -> None:
        """增长7.2%(年度目标7%以上): the year's target quoted beside its outcome, a target of the same year."""
        last = subject.facts[-1]
        if q.unit != last["unit"] or last["kind"] != "actual" or "-" in last["period"]:
            return
        if (last["indicator"], last["measure"], "target", last["period"]) in subject.said:
            return
        subject.said.add((last["indicator"], last["measure"], "target", last["period"]))
        fact = dict(last, value=q.value, qualifier=q.qualifier, kind="target", end=q.end, rule=f"{last['measure']}:target:quoted")
        fact["value_base"], fact["unit_base"] = base_value(q.value, q.unit, self.ref)
        self.out.append(fact)
        subject.facts.append(fact)

    def _start_value(self, group: list[Quantity], cues: Cues) -> None:
        """由2015年的806.3亿元增加到…, 从3725亿元增至…, 由35.8:35.4:28.8调整为…: the start is a fact of its own year.

        Only in a review (a goal's start is today's level, stated elsewhere) and only for
        levels and structures, never rates. Its year: written (由2015年的), else the base a
        comparison in the sentence names (较2016年翻了一番), else the year before the span a
        five-year review covers (由A增加到B over 2011-2015: A is 2010's), else the year
        before the review year.
        """
        subject = self.subject
        sec = section_at(self.ctx.sections, group[0].start)
        if subject is None or sec is None or sec.role != "actual" or len(group) != 1 or cues.growth_sign and not cues.to_level:
            return
        q = group[0]
        year = cues.year
        if year is None:
            m = _CHANGE_VS_BASE.search(self.scan, q.end, min(len(self.scan), q.end + 40))
            if m and not _SENTENCE_END.search(self.scan, q.end, m.start()):
                year = int(m.group("y"))
        if year is None:
            year = int(sec.period.split("-")[0]) - 1  # the year before the review (or before its span)
        if self.ctx.year is not None and year >= self.ctx.year:
            return
        start_cues = Cues(qualifier=cues.qualifier, year=year)
        for code in subject.codes:
            ms = _measure(code, q, start_cues, self.ref)
            if ms is None or ms[0] not in ("level", "ratio", "share"):
                continue
            if ms[0] == "ratio" and code == STRUCTURE:
                self._structure_facts(q, start_cues, sec, subject, "", "", False, period=str(year))
                continue
            if (code, ms[0], str(year)) in subject.said:
                continue
            subject.said.add((code, ms[0], str(year)))
            fact = _make_fact(code, q, ms[0], 1, "actual", str(year), start_cues, subject, self.ctx, self.ref, False)
            fact["rule"] = f"{ms[0]}:actual:from"
            self.out.append(fact)
            subject.facts.append(fact)

    def _structure_facts(self, q: Quantity, cues: Cues, sec: Section, subject: Subject, before: str, head: str,
                         preliminary: bool, period: str | None = None) -> int:
        """三次产业结构11.1:47.7:41.2 -> three share facts; 二三产业比例58.5:41.5 -> the secondary and tertiary shares.

        Every term is kept (the fact contract: a structure is its shares of GDP, in %). A ratio
        whose terms the subject does not name (two terms after 三次产业) gives nothing.
        """
        terms = [float(t) for t in _RATIO_TERM.findall(self.scan[q.num_start:q.end])]
        alias = self.scan[max(self.lo, subject.start - 4):subject.start + 8]
        if len(terms) == 3:
            codes = STRUCTURE_SHARES
        elif len(terms) == 2 and "二" in alias and "一" not in alias and "三次" not in alias:
            codes = STRUCTURE_SHARES[1:]
        else:
            return 0
        if period is None:
            kind, period = _kind_period(STRUCTURE, "share", cues, sec, self.ctx, self.ref, head + before, subject.prefix)
        else:
            kind = "actual"
        made = 0
        for code, value in zip(codes, terms):
            if (code, "share", period) in subject.said:
                continue
            subject.said.add((code, "share", period))
            term = Quantity(q.start, q.end, q.num_start, q.num_end, value, "%", "percent", q.qualifier, q.text)
            fact = _make_fact(code, term, "share", 1, kind, period, cues, subject, self.ctx, self.ref, preliminary)
            self.out.append(fact)
            subject.facts.append(fact)
            made += 1
        return made

    def _total_carries(self, subject: Subject, group: list[Quantity]) -> bool:
        """Whether a 累计 read just before carries to this item: 累计接待游客8650万人次,实现旅游总收入1020亿元.

        It carries over a comma and light words (实现, 完成) to the next amount, never
        to a rate or a share (城镇化率达到55%), and never past other words or numbers.
        """
        if self.total_end is None or subject.start < self.total_end:
            return False
        if any(q.unit in _GROWTH_UNITS or q.unit == ":" or q.family == "percent" for q in group):
            return False
        between = _remove_terms(self.scan[self.total_end:subject.start], "light")
        return not _PUNCT.sub("", between)


def own_scope(text: str, region: ReportRegion) -> bool:
    """Whether ``text`` names the report region itself: its name, or 全/我/本 + the last character of its name."""
    last = region.name[-1]
    return any(n in text for n in region.names()) or any(w + last in text for w in "全我本")


def subscope_paragraph(scan: str, lo: int, region: ReportRegion) -> bool:
    """A paragraph whose first sentence opens with a zone, park or new area (徐水经济开发区地表水厂…,
    雄安新区建设取得新进展) is about that sub-scope: its later figures are the zone's unless a sentence
    names the report region again (全区…, 我县…)."""
    lead = re.split(r"[,，。;；:：!！?？]", scan[lo:lo + 24], maxsplit=1)[0]
    for own in region.names():
        lead = lead.replace(own, "")
    subscope = term_pattern("subscope")
    return subscope is not None and subscope.search(lead) is not None


class _ParagraphScope:
    """Whether the current sentence lies in a sub-scope paragraph: ``subscope_paragraph`` at the paragraph's
    start, until a later sentence names the report region again (``own_scope``).

    Asked only for the sentences that are read (a handful a report): the paragraph's judgement, and the
    sentences met since, wait until then, since most paragraphs hold no sentence that is read at all.
    """

    def __init__(self, scan: str, region: ReportRegion):
        self.scan, self.region = scan, region
        self.para, self.known, self.pending = 0, False, []

    def sentence(self, lo: int, first: bool) -> None:
        """Note the sentence starting at ``lo`` (``first``: it opens a paragraph)."""
        if first:
            self.para, self.known, self.pending = lo, None, []
        elif self.known is None:
            self.pending.append(lo)
        elif self.known and own_scope(self.scan[lo:lo + 24], self.region):
            self.known = False

    def in_subscope(self) -> bool:
        """The answer for the last sentence noted (as if every sentence had been judged as it came)."""
        if self.known is None:
            self.known = subscope_paragraph(self.scan, self.para, self.region)
            for lo in self.pending:
                if not self.known:
                    break
                self.known = not own_scope(self.scan[lo:lo + 24], self.region)
            self.pending = []
        return self.known


def report_language(scan: str, ref: Reference) -> tuple[bool, bool]:
    """(the page uses report language of its own, the page only cites a report).

    A marker that is cited (市政府工作报告提出…, 报告指出…) is what a news page says
    about a report, not a report: the page counts only when some marker is not
    followed by a ``marker_citation`` word.
    """
    markers, cited = term_pattern("report_marker"), term_pattern("marker_citation")
    if markers is None:
        return False, False
    seen_cited = False
    for m in markers.finditer(scan):
        if cited is None or not cited.match(scan, m.end()):
            return True, False
        seen_cited = True
    return False, seen_cited


def looks_like_report(scan: str, ref: Reference) -> bool:
    """A page holds a report (or a report-like review) when it uses report language of its own."""
    return report_language(scan, ref)[0]


def identify(text: str, raw_text: str | None = None, scan: str | None = None) -> Identity:
    """What a canonical text is (transforms/extract/identity.py): type, region, year, or why it yields nothing.

    ``raw_text`` (the decoded file before normalization) is only consulted for the
    report year when the canonical text names none: normalization drops page
    furniture such as 发布日期: 2021-12-03, which dates a review article. ``scan`` is ``scan_text(text)``
    when the caller has it already.
    """
    ref = load_reference()
    scan = scan_text(text) if scan is None else scan
    own, cited = report_language(scan, ref)
    ident = identify_document(scan, ref, own, cited)
    if ident.doc_type == UNIDENTIFIED and ident.region is not None and ident.year is None:
        year = detect_report_year(scan, ref)
        how = "sections.csv report-year rule"
        if year is None and raw_text:
            from transforms.normalize import converter  # noqa: PLC0415 (raw files may be in traditional script)

            year, how = detect_year(scan_text(converter().convert(raw_text[:5000])), review_fallback=False)
            how = f"raw text: {how}" if year else ""
        if year is None:  # identify_document's detect_year found no dated line in this scan: the review's years
            year, how = year_after_review(scan)
        if year is not None:
            ident = Identity(LOCAL, ident.region, year, ident.region_source, how)
    return ident


def _dedupe(facts: list[dict]) -> list[dict]:
    seen, out = set(), []
    for f in facts:
        key = (f["region"], f["indicator"], f["measure"], f["period"], f["kind"], f["value"], f["unit"])
        if key in seen:
            continue
        seen.add(key)
        out.append(f)
    return out


def extract_records(text: str, doc_id: str, raw_text: str | None = None, identity: Identity | None = None) -> list[dict]:
    """Facts of one canonical text as dicts of Fact fields (without raw offsets).

    Nothing is read before the document's identity is established (``identify``):
    a document that is not a local government's report, or whose region or year
    cannot be told, yields no facts (its ``Identity.reason`` says why).
    """
    ref = load_reference()
    scan = scan_text(text)
    ident = identity if identity is not None else identify(text, raw_text, scan)
    if not ident.yields_facts:
        return []
    region, year = ident.region, ident.year
    ctx = Context(doc_id, region, year, find_sections(scan, year, ref))
    mentions = find_mentions(scan, ref)
    masked = [(m.start, m.end) for m in mentions]
    quantities = find_quantities(scan, ref, masked)
    facts: list[dict] = []
    mi = qi = 0
    scope = _ParagraphScope(scan, region)
    for lo, hi in _sentences(scan):
        first = lo == 0 or scan[lo - 1] == "\n"  # a new paragraph
        scope.sentence(lo, first)
        while mi < len(mentions) and mentions[mi].start < lo:
            mi += 1
        while qi < len(quantities) and quantities[qi].start < lo:
            qi += 1
        mj, qj = mi, qi
        while mj < len(mentions) and mentions[mj].end <= hi:
            mj += 1
        while qj < len(quantities) and quantities[qj].end <= hi:
            qj += 1
        if qj > qi and mj > mi:
            facts.extend(_SentenceReader(scan, lo, ctx, ref, not first and scope.in_subscope())
                         .read(mentions[mi:mj], quantities[qi:qj]))
        mi, qi = mj, qj
    for f in facts:
        f["evidence"] = text[f["start"]:f["end"]]
    return _dedupe(facts)


def to_fact(record: dict, raw_span=None, unrepaired=()) -> Fact:
    """A Fact from a record, with raw offsets and the mojibake flag when known."""
    start, end = record["start"], record["end"]
    raw_start = raw_end = None
    if raw_span is not None:
        raw_start, raw_end = raw_span(start, end)
    overlap = any(s < end and start < e for s, e in unrepaired)
    return Fact(
        doc_id=record["doc_id"], region=record["region"], indicator=record["indicator"], measure=record["measure"],
        value=record["value"], unit=record["unit"], value_base=record["value_base"], unit_base=record["unit_base"],
        period=record["period"], kind=record["kind"], qualifier=record["qualifier"], evidence=record["evidence"],
        start=start, end=end, rule=record["rule"], region_level=record["region_level"], report_year=record["report_year"],
        preliminary=record["preliminary"], mojibake_overlap=overlap, raw_start=raw_start, raw_end=raw_end,
    )
