"""Each fast path of the extractor reads exactly what the plain form it replaces reads.

The golden test (test_extract_golden.py) proves the facts of 64 documents unchanged; this one pins each
speed-up to its plain form on those texts and on random texts built to hit the edges (names inside names,
overlapping markers, digits next to digits), so a later change to one side shows up here by name.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from transforms.extract import facts, identity, indicators, sections, units
from transforms.extract.numbers import ARABIC_RE, CN_CHARS, _FULLWIDTH, chinese_numbers, scan_text
from transforms.extract.reference import NameScanner, load_reference, trie_pattern
from transforms.normalize import normalize_report

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def scans() -> list[str]:
    paths = sorted(p for p in (ROOT / "seeds" / "reports").iterdir() if p.is_file())
    paths += sorted(p for p in (ROOT / "tests" / "heldout").iterdir() if p.suffix in (".txt", ".html"))
    paths += sorted((ROOT / "tests" / "corpus" / "real").glob("*.txt"))
    return [scan_text(normalize_report(p.read_bytes(), str(p)).text) for p in paths]


def _pieces(rnd: random.Random, alphabet: list[str], n: int, longest: int = 10) -> list[str]:
    return ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, longest))) for _ in range(n)]


def test_trie_pattern_matches_the_flat_alternation_longest_first(scans):
    ref = load_reference()
    rnd = random.Random(1)
    for words in [list(ref.alias_codes), list(ref.units)] + [list(t) for t in ref.lexicon.values() if t]:
        flat = re.compile("|".join(re.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w))))
        trie = trie_pattern(words)
        for text in scans[:10] + _pieces(rnd, words + ["，", "的"], 300, 4):
            assert [m.span() for m in trie.finditer(text)] == [m.span() for m in flat.finditer(text)]
            assert trie.sub("", text) == flat.sub("", text)
            assert bool(trie.fullmatch(text)) == bool(flat.fullmatch(text))


@pytest.mark.parametrize("which", ["divisions", "short names", "aliases"])
def test_name_scanner_reads_what_the_trie_regex_reads(scans, which):
    ref = load_reference()
    names = {"divisions": list(ref.divisions), "short names": list(identity._short_names(ref, None)[1]),
             "aliases": list(ref.alias_codes)}[which]
    scanner, pattern = NameScanner(names), trie_pattern(names)
    rnd = random.Random(2)
    spliced = ["".join(rnd.choice([n, n[1:], n[:-1], "县", "，"]) for n in rnd.sample(names, 6)) for _ in range(2000)]
    for text in scans + spliced:
        assert scanner.finditer(text) == [(m.start(), m.group()) for m in pattern.finditer(text)]


def test_section_markers_match_as_finditer_does(scans):
    ref = load_reference()
    finders = sections._section_finders(ref)
    rnd = random.Random(3)
    around = [s[max(0, m.start() - 3):m.end() + 3] for r in ref.sections for s in scans for m in r.pattern.finditer(s)]
    spliced = ["".join(rnd.choice(around + ["。", "\n", "2023年", "2023", "年", " ", "一、", "；"]) for _ in range(8))
               for _ in range(1500)]
    for text in scans + spliced:
        found: dict = {}
        for rule, finder in zip(ref.sections, finders):
            fast = sections.marker_matches(rule.pattern, text, finder, found)
            assert [(m.span(), m.groupdict()) for m in fast] == [(m.span(), m.groupdict()) for m in rule.pattern.finditer(text)]


def test_meeting_lines_match_as_finditer_does(scans):
    rnd = random.Random(4)
    parts = ["第十三届人民代表大会", "第3届人大", "凉州区", "武威市", "在", "，", "\n", "第十", "届", "人民代表大会", "2023年"]
    for text in [s[:4000] for s in scans] + ["".join(rnd.choice(parts) for _ in range(12)) for _ in range(5000)]:
        fast = identity._meeting_lines(text)
        assert [(m.span(), m.group(1)) for m in fast] == [(m.span(), m.group(1)) for m in identity._MEETING.finditer(text)]


def test_rewritten_patterns_match_their_plain_forms(scans):
    pairs = [
        (ARABIC_RE, re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d])|(?<![\d.])\d+(?:\.\d+)?"), "0123456789.,年 a"),
        (facts._MONTH_SPAN, re.compile(r"(?<!\d)1?\d\s*[-—~至到]\s*1?\d月(?:份)?|前(?:\d{1,2}|[一二三四五六七八九十]{1,2})个月"),
         "0112345前个月份-—~至到 一二十三x年"),
    ]
    rnd = random.Random(5)
    for fast, plain, alphabet in pairs:
        for text in scans + _pieces(rnd, list(alphabet), 50000, 14):
            assert [m.span() for m in fast.finditer(text)] == [m.span() for m in plain.finditer(text)]


def test_scan_text_maps_as_translate_does():
    rnd = random.Random(6)
    alphabet = [chr(c) for c in _FULLWIDTH] + list("abc一二，,:%")
    for text in _pieces(rnd, alphabet, 20000, 12):
        assert scan_text(text) == text.translate(_FULLWIDTH)


def test_negated_aliases_as_the_term_loop_reads_them(scans):
    ref = load_reference()

    def plain(scan: str, start: int, end: int) -> bool:
        if any(scan.startswith(t, start - len(t)) and start - len(t) >= 0 for t in ref.terms("alias_negative_prefix")):
            return True
        if any(scan.startswith(t, end) for t in ref.terms("alias_negative_suffix")):
            return True
        window = scan[max(0, start - 12):start]
        return "占" in window[max(window.rfind(c) for c in ",，;；。:：、\n") + 1:]

    rnd = random.Random(7)
    terms = list(ref.terms("alias_negative_prefix")) + list(ref.terms("alias_negative_suffix")) + ["占", "，", "的", "GDP"]
    for text in scans[:20] + _pieces(rnd, terms, 3000, 6):
        for at in range(0, len(text) + 1, max(1, len(text) // 300)):
            assert indicators._negated(text, at, at, ref) == plain(text, at, at)


def test_quantity_runs_skip_only_numerals_no_quantity_can_start_with(scans):
    ref = load_reference()
    reader = units._reader(ref)
    rnd = random.Random(8)
    alphabet = list(CN_CHARS) + ["元", "人", "万元", "亿元", "百分之", "个百分点", "%", "第", "的", "，", "吨", "x", "之", "分"]
    for text in scans + _pieces(rnd, alphabet, 20000):
        def keep(start: int, end: int, text: str = text) -> bool:
            return reader.unit_at(text, end) is not None or (start >= 3 and text.startswith("百分之", start - 3))
        assert chinese_numbers(text, keep, units._quantity_runs(ref)) == chinese_numbers(text, keep)


def test_cues_handed_out_are_copies():
    ref = load_reference()
    first = facts.read_cues(",同比增长", ref)
    first.cumulative = True
    assert not facts.read_cues(",同比增长", ref).cumulative
