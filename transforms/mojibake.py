"""GBK byte-shift mojibake: find the runs, repair what the bytes allow, flag the rest.

How the damage is made (checked against every run in the samples, see
tests/cases/mojibake.jsonl): a stretch of traditional text was encoded as GBK,
its first byte was lost, and the remaining bytes were decoded pairwise, out of
step, until the stretch ended. So ``。現`` (A1A3 AC46) became ``?`` (the lost
byte) + ``，`` (A3AC) + ``F`` (46) and, after fullwidth punctuation was made
ASCII, ``?,F``. Pairs that fall in GBK's user-defined area decode to nothing
and vanish (two bytes lost); a byte left dangling at the end becomes ``?``.

Repair runs the process backwards: re-encode the run, put back one unknown
byte in front, pair the bytes in step again. Characters whose two bytes are
both present come back exactly. A character missing a byte (the first, the
last, the ones either side of a vanished pair) is a guess among the ~190
characters its known byte allows; the character model (transforms/charmodel.py)
picks the one that best fits between its neighbours, and the guess is kept
only when the model's counts back it on the side of an undamaged neighbour.
Otherwise that character becomes U+FFFD and the run is reported unrepaired.
"""

from __future__ import annotations

import codecs
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from transforms.charmodel import CharModel, char_model

LOST = "\ufffd"
MAX_RUN = 40

# A run: the lost-byte '?', one character, a body, and the character where the
# decoder fell back in step: a dangling byte ('?') or a single-byte character.
# Fullwidth letters and digits count as the ASCII ones they become, so the same
# run is cut the same way before and after canonicalization (idempotence).
_END = "?\uff1fA-Za-z0-9\uff21-\uff3a\uff41-\uff5a\uff10-\uff19@\uff20\u20ac"
_RUN = re.compile(r"[?\uff1f][^\s](?:[^\s%s]{0,%d})[%s]" % (_END, MAX_RUN - 3, _END))
_ASCII_END = re.compile(r"[A-Za-z0-9@\u20ac]")

_TRAILS = tuple(range(0x40, 0x7F)) + tuple(range(0x80, 0xFF))
_LEADS = tuple(range(0x81, 0xFF))
_BEAM = 3  # states kept per cell in the Viterbi search
_TOP = 8  # candidates kept per guessed position (by unigram probability)
_SPLIT_PENALTY = math.log(0.15)  # prior odds that a given pair vanished
_LOST_PENALTY = -12.0  # score of a character we cannot know (and of '?', as found); also in _LOST_OPTION
_MARGIN = math.log(3.0)  # a guess must beat the runner-up by this factor


@dataclass(frozen=True)
class MojibakeRun:
    """One damaged stretch: where it is in the input text and what replaces it."""

    start: int
    end: int
    found: str
    repair: str
    repaired: bool

    @property
    def lost(self) -> int:
        """Characters that could not be recovered (U+FFFD in ``repair``)."""
        return self.repair.count(LOST)


class _Option:
    """One reading of a cell: its characters as written and in the model's alphabet.

    A plain slotted class (not a frozen dataclass): a repair builds hundreds
    of these, and the Viterbi loop reads ``head``/``tail`` (first and last
    character of ``simp``, "" when lost) instead of slicing each time.
    """

    __slots__ = ("text", "simp", "inner", "kind", "head", "tail")

    def __init__(self, text: str, simp: str, inner: float, kind: str):
        self.text = text  # characters as written (traditional stays traditional)
        self.simp = simp  # the same characters in the model's alphabet, or "" when lost
        self.inner = inner  # score inside the option (bigram within a split pair, penalties)
        self.kind = kind  # known | ascii | guess | split | lost
        self.head = simp[:1]
        self.tail = simp[-1:]


_LOST_OPTION = (_Option(LOST, "", -12.0, "lost"),)


@lru_cache(maxsize=65536)
def _decode_pair(lead: int, trail: int) -> str | None:
    """The character of a GBK pair, or None when GB18030 has none or a private-use one."""
    try:
        ch = bytes((lead, trail)).decode("gb18030")
    except UnicodeDecodeError:
        return None
    if len(ch) != 1 or "\ue000" <= ch <= "\uf8ff":
        return None
    return ch


@lru_cache(maxsize=4096)
def _simplified(ch: str) -> str:
    from transforms.normalize import converter

    out = converter("t2s").convert(ch)
    return out if len(out) == 1 else ch


def _simp_ascii(ch: str) -> str:
    """The model's form of a character (fullwidth punctuation as ASCII, t2s for Han)."""
    o = ord(ch)
    if 0xFF01 <= o <= 0xFF5E:
        return chr(o - 0xFEE0)
    return _simplified(ch) if o >= 0x3400 else ch


@lru_cache(maxsize=1024)
def _candidates(lead: int | None, trail: int | None, leads: tuple = _LEADS, trails: tuple = _TRAILS) -> tuple[tuple[str, str], ...]:
    """Characters a pair with one unknown byte can be, most frequent first (top ``_TOP``)."""
    model = char_model()
    found = []
    if lead is None:
        pairs = ((b, trail) for b in leads)
    else:
        pairs = ((lead, b) for b in trails)
    for a, b in pairs:
        ch = _decode_pair(a, b)
        if ch is not None:
            simp = _simp_ascii(ch)
            found.append((model.log_uni(simp), ch, simp))
    found.sort(key=lambda x: -x[0])
    return tuple((ch, simp) for _, ch, simp in found[:_TOP])


@lru_cache(maxsize=1024)
def _guess_options(lead: int | None, trail: int | None) -> tuple[_Option, ...]:
    """The options of a pair missing one byte (built once per process for each known byte)."""
    return tuple(_Option(ch, s, 0.0, "guess") for ch, s in _candidates(lead, trail)) or _LOST_OPTION


@lru_cache(maxsize=256)
def _ascii_option(byte: int) -> tuple[_Option]:
    """The one reading of a single byte (an ASCII character)."""
    ch = chr(byte)
    return (_Option(ch, ch, 0.0, "ascii"),)


@lru_cache(maxsize=8192)
def _known_option(ch: str) -> tuple[_Option]:
    """The reading of a pair whose two bytes are both present."""
    return (_Option(ch, _simp_ascii(ch), 0.0, "known"),)


def _run_bytes(run: str) -> list[int | None] | None:
    """The shifted byte stream behind a run, with None for each lost byte (None if not GBK)."""
    out: list[int | None] = [None]
    last = len(run) - 1
    for i, ch in enumerate(run[1:], start=1):
        if "\uff01" <= ch <= "\uff5e":
            ch = chr(ord(ch) - 0xFEE0)  # read exactly as its ASCII form will be (idempotence)
        if ch == "?":
            if i == 1:
                out += [0xA3, 0xBF]  # the fullwidth '？' A3BF, made ASCII
            elif i == last:
                out.append(None)  # the dangling byte
            else:
                out += [None, None]  # an undecodable pair
        elif "!" <= ch <= "~":
            if i == last and i != 1:
                out.append(ord(ch))  # a single byte: the decoder fell back in step here
            else:
                out += [0xA3, ord(ch) - 0x21 + 0xA1]  # fullwidth form, made ASCII
        elif ch == "\u20ac":
            out.append(0x80)
        else:
            try:
                b = ch.encode("gbk")
            except UnicodeEncodeError:
                return None
            out += list(b)
    return out


def _cells(stream: list[int | None]) -> list[tuple[int | None, int | None] | int]:
    """Pair the bytes in step again: (lead, trail) tuples, or an int for a single byte."""
    cells: list = []
    i, n = 0, len(stream)
    while i < n:
        b = stream[i]
        if b is None or b >= 0x81:
            cells.append((b, stream[i + 1] if i + 1 < n else None))
            i += 2
        else:
            cells.append(b)
            i += 1
    return cells


class _Scorer:
    """Bigram scores with the model, treating lost characters as a break in context."""

    def __init__(self, model: CharModel):
        self.m = model
        self._cache = model._bi_cache
        self._log_bi = model.log_bi
        self._log_uni = model.log_uni

    def link(self, prev: str, nxt: str) -> float:
        return self.link_chars(prev[-1:], nxt[:1])

    def link_chars(self, tail: str, head: str) -> float:
        """``link`` given only the last character before and the first after ("" when none/lost)."""
        if not head:
            return _LOST_PENALTY
        if not tail:
            return self._log_uni(head)
        v = self._cache.get(tail + head)
        return v if v is not None else self._log_bi(tail, head)


def _options(cells, model: CharModel, left: str, right: str) -> list[Sequence[_Option]]:
    """The alternatives for every cell; known cells whose neighbours reject them may hide a vanished pair."""
    opts: list[Sequence[_Option]] = []
    known: list[str | None] = []
    for c in cells:
        if isinstance(c, int):
            known.append(chr(c))
        elif c[0] is not None and c[1] is not None:
            known.append(_decode_pair(*c))
        else:
            known.append(None)
    for k, c in enumerate(cells):
        if isinstance(c, int):
            opts.append(_ascii_option(c))
            continue
        lead, trail = c
        if lead is None and trail is None:
            opts.append(_LOST_OPTION)
            continue
        if lead is None or trail is None:
            opts.append(_guess_options(lead, trail))
            continue
        ch = known[k]
        prev_known = _simp_ascii(known[k - 1]) if k and known[k - 1] else (left if k == 0 else "")
        next_known = _simp_ascii(known[k + 1]) if k + 1 < len(known) and known[k + 1] else (right if k + 1 == len(cells) else "")
        suspicious = ch is None or not (model.seen(prev_known[-1:] or None, _simp_ascii(ch)) or model.seen(_simp_ascii(ch), next_known[:1] or None))
        alts = _known_option(ch) if ch else ()
        if suspicious:
            alts += _split_options(lead, trail)
        opts.append(alts or _LOST_OPTION)
    return opts


@lru_cache(maxsize=1)
def _vanishing() -> dict[int, frozenset[int]]:
    """Pairs GB18030 decodes to nothing (private use or unassigned), as first byte -> second bytes."""
    table: dict[int, set[int]] = {}
    for first in _LEADS:
        for second in _TRAILS:
            if _decode_pair(first, second) is None:
                table.setdefault(first, set()).add(second)
    return {k: frozenset(v) for k, v in table.items()}


@lru_cache(maxsize=2048)
def _split_options(lead: int, trail: int) -> tuple[_Option, ...]:
    """A known pair that may really be two characters whose middle pair vanished.

    (lead, x)(y, trail) where (x, y) is a pair that decodes to nothing; the
    best few first and second characters by frequency are combined.
    """
    model = char_model()
    vanish = _vanishing()
    firsts = _candidates(lead, None, _LEADS, tuple(sorted(vanish)))[:4]
    seconds_all = tuple(sorted(set().union(*vanish.values()) & set(_LEADS)))
    seconds = _candidates(None, trail, seconds_all, _TRAILS)[:4]
    out = []
    for a, sa in firsts:
        x = a.encode("gb18030")[1]
        for b, sb in seconds:
            y = b.encode("gb18030")[0]
            if y in vanish.get(x, ()):
                out.append(_Option(a + b, sa + sb, _SPLIT_PENALTY + model.log_bi(sa, sb), "split"))
    return tuple(out)


def _viterbi(opts: list[Sequence[_Option]], scorer: _Scorer, left: str, right: str) -> tuple[float, list[int]]:
    """Best path through the options (bigram links between neighbours), beam-pruned to ``_BEAM`` states."""
    link = scorer.link_chars
    cache_get = scorer._cache.get
    left_tail, right_head = left[-1:], right[:1]
    prev_scores = [link(left_tail, o.head) + o.inner for o in opts[0]]
    active = _best_indices(prev_scores)
    back: list[list[int]] = []
    for k in range(1, len(opts)):
        prev_opts = opts[k - 1]
        tails = [(j, prev_scores[j], prev_opts[j].tail) for j in active]
        cur, ptr = [], []
        for o in opts[k]:
            head = o.head
            best, arg = -math.inf, active[0]
            for j, score, tail in tails:
                # link(tail, head) inlined: this loop is most of a repair's time
                if head and tail:
                    v = cache_get(tail + head)
                    sc = score + (v if v is not None else link(tail, head))
                else:
                    sc = score + link(tail, head)
                if sc > best:
                    best, arg = sc, j
            cur.append(best + o.inner)
            ptr.append(arg)
        prev_scores = cur
        active = _best_indices(cur)
        back.append(ptr)
    final = [sc + (link(o.tail, right_head) if right else 0.0) for sc, o in zip(prev_scores, opts[-1])]
    j = max(range(len(final)), key=final.__getitem__)
    path = [j]
    for ptr in reversed(back):
        j = ptr[j]
        path.append(j)
    path.reverse()
    return final[path[-1]], path


def _best_indices(scores: list[float]) -> list[int]:
    if len(scores) <= _BEAM:
        return list(range(len(scores)))
    return sorted(range(len(scores)), key=scores.__getitem__, reverse=True)[:_BEAM]


def _local_scores(k: int, options: Sequence[_Option], chosen: list[_Option], scorer: _Scorer,
                  left: str, right: str) -> list[float]:
    """Score of each option at cell k with the chosen neighbours held fixed."""
    link = scorer.link_chars
    prev = chosen[k - 1].tail if k else left[-1:]
    if k + 1 < len(chosen):
        nxt, more = chosen[k + 1].head, True
    else:
        nxt, more = right[:1], bool(right)
    get = scorer._cache.get
    out = []
    for o in options:  # link() inlined for the common case of two known characters (a hot loop)
        head, tail = o.head, o.tail
        if prev and head:
            v = get(prev + head)
            sc = (v if v is not None else link(prev, head)) + o.inner
        else:
            sc = link(prev, head) + o.inner
        if more and nxt:
            if tail:
                v = get(tail + nxt)
                sc += v if v is not None else link(tail, nxt)
            else:
                sc += link(tail, nxt)
        out.append(sc)
    return out


def _certain(o: _Option) -> bool:
    return o.kind in ("known", "ascii")


def _decide(path: list[int], opts: list[Sequence[_Option]], model: CharModel, scorer: _Scorer, left: str, right: str) -> list[bool]:
    """Per cell, whether its chosen characters can be trusted.

    Both bytes present and no vanished pair in serious contention: trusted.
    A guess is trusted only when (a) it beats every rival by ``_MARGIN``,
    (b) its neighbours inside the run are certain (two guesses side by side
    never vouch for each other), (c) at least one pair it forms with a certain
    neighbour occurs in the counts, and (d) if it opens or closes the run, the
    pair with the undamaged text outside does: that character is the only
    evidence of what the lost byte was (``六?`` is ``六保`` in ``“六保”``,
    not ``六。`` however common ``。`` is).
    """
    chosen = [opts[k][j] for k, j in enumerate(path)]
    n = len(chosen)
    trusted = [False] * n

    def beats_rivals(k: int) -> bool:
        scores = _local_scores(k, opts[k], chosen, scorer, left, right)
        mine = scores[path[k]]
        rivals = [sc for j, sc in enumerate(scores) if j != path[k]]
        return not rivals or mine - max(rivals) >= _MARGIN

    for k, me in enumerate(chosen):  # characters read from their own bytes
        if me.kind == "ascii" or (me.kind == "known" and len(opts[k]) == 1):
            trusted[k] = True
        elif me.kind == "known" and beats_rivals(k):
            # It looked wrong between its neighbours (that is why it had rivals):
            # keep it only if the chosen neighbours now attest it.
            before = chosen[k - 1].simp[-1:] if k else left[-1:]
            after = chosen[k + 1].simp[:1] if k + 1 < n else right[:1]
            trusted[k] = (bool(before) and model.seen(before, me.simp)) or (bool(after) and model.seen(me.simp, after))
    for k, me in enumerate(chosen):  # guesses: the checks on their neighbours first, the margin last (dearest)
        if me.kind not in ("guess", "split"):
            continue
        prev = chosen[k - 1] if k else None
        nxt = chosen[k + 1] if k + 1 < n else None
        if (prev is not None and not (_certain(prev) and trusted[k - 1])) or (
            nxt is not None and not (_certain(nxt) and trusted[k + 1])
        ):
            continue
        before = prev.simp[-1:] if prev is not None else left[-1:]
        after = nxt.simp[:1] if nxt is not None else right[:1]
        seen_before = bool(before) and model.seen(before, me.simp[0])
        seen_after = bool(after) and model.seen(me.simp[-1], after)
        ok = seen_before or seen_after
        if k == 0 and not seen_before:
            ok = False
        if k == n - 1 and not seen_after and right:
            ok = False
        if me.kind == "split" and not model.seen(me.simp[0], me.simp[1]):
            ok = False
        trusted[k] = ok and beats_rivals(k)
    return trusted


def repair_run(run: str, left: str = "", right: str = "") -> tuple[str, bool, float] | None:
    """Repair one run given the characters around it (model alphabet).

    Returns (replacement, fully_repaired, gain) where gain is how much more
    likely the repair is than the text as found; None when the run cannot be
    GBK mojibake at all.
    """
    stream = _run_bytes(run)
    if stream is None:
        return None
    cells = _cells(stream)
    model = char_model()
    scorer = _Scorer(model)
    opts = _options(cells, model, left, right)
    score, path = _viterbi(opts, scorer, left, right)
    chosen = [opts[k][j] for k, j in enumerate(path)]
    trusted = _decide(path, opts, model, scorer, left, right)
    # Untrusted guesses become U+FFFD (no byte says what they were); an
    # untrusted character whose bytes are both present stays as read.
    out = [o.text if ok or o.kind == "known" else LOST * len(o.text) for o, ok in zip(chosen, trusted)]
    as_found = _score_as_found(run, scorer, left, right)
    return "".join(out), all(trusted), score - as_found


def _score_as_found(run: str, scorer: _Scorer, left: str, right: str) -> float:
    total, prev = 0.0, left
    for ch in run:
        s = "" if ch == "?" else _simp_ascii(ch)
        total += scorer.link(prev, s)
        prev = s
    return total + (scorer.link(prev, right) if right else 0.0)


def find_runs(text: str) -> list[MojibakeRun]:
    """Every byte-shift run in ``text`` with its repair (see the module doc)."""
    if "?" not in text and "\uff1f" not in text:
        return []
    runs = []
    pos = 0
    while (m := _RUN.search(text, pos)) is not None:
        s, e = m.span()
        pos = s + 1  # a rejected candidate may hide a real run starting at a later '?'
        left = _simp_ascii(text[s - 1]) if s and not text[s - 1].isspace() else ""
        best = None
        # The first single-byte-looking character may instead be a fullwidth
        # letter made ASCII ('Ｗ' -> 'W') with the run ending one later ('Wo').
        ends = [e]
        if e < len(text) and text[e - 1].isalnum() and text[e].isascii() and text[e].isalnum():
            ends.append(e + 1)
        for end in ends:
            right = _simp_ascii(text[end]) if end < len(text) and not text[end].isspace() else ""
            result = repair_run(text[s:end], left, right)
            if result is not None and (best is None or result[2] > best[3]):
                best = (end, result[0], result[1], result[2])
        if best is None or best[3] <= 0:
            continue
        end, repair, ok, _ = best
        runs.append(MojibakeRun(s, end, text[s:end], repair, ok))
        pos = end
    return runs


def _euro_or_replace(exc: UnicodeDecodeError) -> tuple[str, int]:
    """Decode a lone 0x80 as '€' (the Windows code page 936 reading) and anything else as U+FFFD."""
    if exc.object[exc.start:exc.start + 1] == b"\x80":
        return "\u20ac", exc.start + 1
    return LOST, exc.end


_EURO_OR_REPLACE = "govfacts-euro-or-replace"
codecs.register_error(_EURO_OR_REPLACE, _euro_or_replace)


def shift_damage(span: str) -> str:
    """What the damage does to ``span`` (for tests and for reading the case table).

    Encode as GBK (ASCII punctuation as its fullwidth form, as the sites had
    it), drop the first byte, decode with GB18030 replacing errors, drop
    private-use characters, show each replacement and the lost byte as '?',
    and make fullwidth ASCII ASCII again. Every run in the samples is
    reproduced exactly by this from its original text.
    """
    fullwidth = {c: chr(ord(c) + 0xFEE0) for c in ",;:!?()"}
    data = "".join(fullwidth.get(c, c) for c in span).encode("gbk")[1:]
    decoded = "".join(c for c in data.decode("gb18030", _EURO_OR_REPLACE) if not "\ue000" <= c <= "\uf8ff")
    out = "?" + decoded.replace(LOST, "?")
    return "".join(chr(ord(c) - 0xFEE0) if "\uff01" <= c <= "\uff5e" else c for c in out)
