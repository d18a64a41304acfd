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

# A syllable in parentheses (the Han character before it is checked in
# ``annotation_spans``: a leading look-behind would stop the regex engine from
# skipping straight to the next parenthesis).
# group "marked": lower-case with a tone mark (unambiguous, accepted as is);
# group "other": anything else short and alphabetic, checked by ``is_syllable``.
_ANNOTATION = re.compile(
    rf"[(（](?:(?P<marked>[a-zü]{{0,5}}[{_MARKED_LOWER}][a-zü]{{0,5}})|(?P<other>[{_LETTERS}]{{1,7}}[1-5]?))[)）]"
)
_IS_HAN = re.compile(rf"[{_HAN}]")
_SPACES = " \t\u3000\u00a0"
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
    spans = []
    is_han = _IS_HAN.match
    for m in _ANNOTATION.finditer(text):
        s = m.start()
        j = s
        while j and text[j - 1] in _SPACES:
            j -= 1
        if not (j and is_han(text[j - 1])):
            continue
        s = j  # spaces between the character and its annotation go with it
        other = m.group("other")
        if other is None or (_accepted_form(other) and is_syllable(other)):
            spans.append((s, m.end()))
    return spans


def orphan_spans(text: str) -> list[tuple[int, int]]:
    """Annotation remnants right after a mojibake '?' (the '(' was eaten): ``?shù)`` -> ``?``."""
    return [m.span(1) for m in _ORPHAN.finditer(text)]
