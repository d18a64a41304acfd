"""Pinyin annotations glued after characters: ``韶關(guān)市`` -> ``韶關市``.

Some sites render reports with a reading after selected characters. The
annotation is one syllable in parentheses right after a Han character; real
parentheses hold Han text, numbers or list markers (``(犁市片区)``,
``(2021-2035年)``, ``(一)``) and are never touched. Tone-marked syllables are
unambiguous; unmarked, numbered (``guan1``) or upper-case forms are accepted
only when they parse as a pinyin syllable, and upper-case words only with a
tone mark or number, so ``(GDP)``, ``(PPP)`` and ``(AI)`` stay.
"""

from __future__ import annotations

import re

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\ufffd"  # U+FFFD: a character mojibake repair could not recover
_MARKED_LOWER = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜńňǹḿ"
_MARKED_UPPER = "ĀÁǍÀĒÉĚÈĪÍǏÌŌÓǑÒŪÚǓÙǕǗǙǛŃŇǸḾ"
_LETTERS = f"a-zA-ZüÜ{_MARKED_LOWER}{_MARKED_UPPER}"

# A syllable in parentheses right after a Han character or a space (spaces are
# walked back in ``annotation_spans``). The look-behind comes after the paren so
# the regex engine can still skip straight from one parenthesis to the next.
# group "marked": lower-case with a tone mark (unambiguous, accepted as is);
# group "other": anything else short and alphabetic, checked by ``is_syllable``.
_SPACES = " \t\u3000\u00a0"
_SYLLABLE_FORMS = (
    rf"(?:(?P<marked>[a-zü]{{0,5}}[{_MARKED_LOWER}][a-zü]{{0,5}})|(?P<other>[{_LETTERS}]{{1,7}}[1-5]?))"
)
# Fast path: a tone-marked lower-case syllable right after a Han character (all
# 1,200+ of seed 004): accepted by the regex alone.
_ANNOTATION_PLAIN = re.compile(
    rf"[(（](?<=[{_HAN}][(（])[a-zü]{{0,5}}[{_MARKED_LOWER}][a-zü]{{0,5}}[)）]"
)
# Everything else that may be an annotation: other forms after a Han
# character, any form after spaces; checked in ``annotation_spans``.
_ANNOTATION = re.compile(
    rf"[(（](?:(?<=[{_HAN}][(（])(?![a-zü]{{0,5}}[{_MARKED_LOWER}][a-zü]{{0,5}}[)）])(?P<other_han>[{_LETTERS}]{{1,7}}[1-5]?)"
    rf"|(?<=[{_SPACES}][(（]){_SYLLABLE_FORMS})[)）]"
)
_IS_HAN = re.compile(rf"[{_HAN}]")
# What is left when a mojibake run ate the '(' of an annotation: '?shù)'.
_ORPHAN = re.compile(rf"\?([a-zü]{{0,5}}[{_MARKED_LOWER}][a-zü]{{0,5}}\))")

_STRIP_TONES = str.maketrans(
    "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜńňǹḿ", "aaaaeeeeiiiioooouuuuüüüünnnm"
)
_SYLLABLE = re.compile(
    r"(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?"
    r"(?:iang|iong|uang|ang|eng|ing|ong|ian|iao|uai|uan|üan|ai|an|ao|ei|en|er|ia|ie|in|iu|ou|ua|ue|üe|ui|un|uo|ve"
    r"|a|e|i|o|u|ü|v)"
)


def is_syllable(word: str) -> bool:
    """Whether ``word`` (any case, tone marks or a trailing tone digit allowed) is one pinyin syllable."""
    w = word.lower().translate(_STRIP_TONES)
    if w[-1:].isdigit():
        w = w[:-1]
    if len(w) < 2 and w not in ("a", "e", "o"):
        return False
    return bool(_SYLLABLE.fullmatch(w))


def _accepted_form(word: str) -> bool:
    """Tone-marked, tone-numbered or lower-case: an upper-case word without tones (AI, GDP) is an acronym."""
    return word[-1].isdigit() or any(c in _MARKED_UPPER or c in _MARKED_LOWER for c in word) or word.islower()


def annotation_spans(text: str) -> list[tuple[int, int]]:
    """Spans of ``text`` that are pinyin annotations to delete (spaces before the paren included)."""
    spans = [m.span() for m in _ANNOTATION_PLAIN.finditer(text)]
    is_han = _IS_HAN.match
    extra = False
    for m in _ANNOTATION.finditer(text):
        s, e = m.span()
        if text[s - 1] in _SPACES:  # spaces between the character and its annotation go with it
            while s and text[s - 1] in _SPACES:
                s -= 1
            if not (s and is_han(text[s - 1])):
                continue
        other = m.group("other_han") or m.group("other")
        if other is None or (_accepted_form(other) and is_syllable(other)):
            spans.append((s, e))
            extra = True
    if extra:
        spans.sort()
    return spans


def orphan_spans(text: str) -> list[tuple[int, int]]:
    """Annotation remnants right after a mojibake '?' (the '(' was eaten): ``?shù)`` -> ``?``."""
    return [m.span(1) for m in _ORPHAN.finditer(text)]


_NEXT_ANNOTATION = re.compile(rf"[{_SPACES}]*[(（][{_LETTERS}]")
_PAREN_AFTER_PAREN = re.compile(rf"[)）][{_SPACES}]*[(（][{_LETTERS}]")


def may_expose_annotation(text: str, spans: list[tuple[int, int]]) -> bool:
    """Whether deleting ``spans`` can bring a character next to another annotation (``X(a)(ān)``).

    Only a span followed by a parenthesised word (perhaps after spaces) can:
    otherwise one pass of ``annotation_spans`` found everything. One scan in C
    rules out almost every text; ``(街)`` after a span is real text.
    """
    if not _PAREN_AFTER_PAREN.search(text):
        return False
    return any(_NEXT_ANNOTATION.match(text, e) for _, e in spans)
