"""OpenCC's traditional -> simplified conversion, applied as a table.

Why not call OpenCC per document: in a pipeline its dictionaries (a
double-array trie per dictionary) fall out of the CPU caches between calls, so
each call costs about twice its bare figure, and t2s would be most of the
normalize stage. OpenCC's ``t2s`` is simple enough to apply exactly with two
numpy-friendly tables:

* every character maps to one character (``TSCharacters``, ``TSCharactersExt``,
  and a character alone in ``TSPhrases``): a code-point table, read from OpenCC
  itself by converting every CJK code point once per process;
* 477 multi-character phrases (``TSPhrases``; ``seeds/opencc_t2s_phrases.csv``,
  dumped from the installed OpenCC's dictionary) override the characters they
  cover, matched longest-first from left to right exactly as OpenCC's
  maximum-match segmentation does.

The result equals ``opencc.OpenCC("t2s").convert`` (tests check that on the
samples, the held-out pages, generated text and every phrase in context, and
that the seed equals OpenCC's dictionary). Anything this cannot mirror exactly
falls back to OpenCC itself: other configs, and texts holding CJK compatibility
ideographs (OpenCC normalizes those before matching phrases).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import opencc

from transforms.seeds import SEEDS_DIR, read_seed

PHRASE_SEED = "opencc_t2s_phrases"
_TABLE_SIZE = 0x30000  # BMP + planes 1-2 (CJK extensions); higher code points map to themselves
_CJK_RANGES = ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00), (0x20000, 0x2FA20))
# Compatibility ideographs: OpenCC normalizes them before phrase matching (see module doc).
_COMPAT_RANGES = ((0xF900, 0xFB00), (0x2F800, 0x2FA20))


@lru_cache(maxsize=None)
def opencc_converter(config: str) -> opencc.OpenCC:
    """A per-process OpenCC converter (the object cannot be pickled, so never ship it)."""
    return opencc.OpenCC(config)


_BIGRAM_HASH = (1 << 16) - 1  # a 64 KB table stays in cache; ~0.7% of pairs are false positives
_FALLBACK = np.uint32(0xFFFFFFFF)  # table value of a character only OpenCC itself can convert


def _bigram_hash(first, second):
    """A 16-bit hash of a character pair (numpy scalars or arrays of code points)."""
    return (first * np.uint32(40503) + second) & np.uint32(_BIGRAM_HASH)


class TableT2S:
    """OpenCC ``t2s`` as a character table plus a phrase pass (see the module doc).

    Holds only numpy arrays and dicts, so it pickles (process and Dask runners)
    and is built lazily once per process by ``table_t2s``.
    """

    def __init__(self, table: np.ndarray, phrases: dict[str, str]):
        table = table.copy()
        for lo, hi in _COMPAT_RANGES:  # see the module doc: these go to OpenCC
            table[lo:min(hi, _TABLE_SIZE)] = _FALLBACK
        self.table = table
        self.phrases = phrases
        by_bigram: dict[str, list[str]] = {}
        for key in phrases:
            by_bigram.setdefault(key[:2], []).append(key)
        for keys in by_bigram.values():
            keys.sort(key=len, reverse=True)  # longest match wins, as in OpenCC
        self._by_bigram = by_bigram
        # A hashed set of the phrases' first two characters: one vectorized
        # lookup finds the few places a phrase may start (false positives are
        # checked in Python, and there are almost none).
        hashed = np.zeros(_BIGRAM_HASH + 1, dtype=bool)
        for pair in by_bigram:
            hashed[_bigram_hash(np.uint32(ord(pair[0])), np.uint32(ord(pair[1])))] = True
        self._bigrams = hashed

    def convert_codepoints(self, cps: np.ndarray, text: str | None = None,
                           table: np.ndarray | None = None) -> np.ndarray | None:
        """Converted code points of ``text`` (``cps`` are its code points); None: use OpenCC.

        ``text`` is only read where a phrase may start; pass it if you have it,
        else it is decoded from ``cps`` when needed. ``table``: this table with
        other character rules folded in (canonical.py adds the ASCII forms).

        Same length in, same length out: every t2s mapping is one character to
        one character, which is checked when the tables are built.
        """
        idx = np.minimum(cps, _TABLE_SIZE - 1)
        out = (self.table if table is None else table)[idx]
        if (out == _FALLBACK).any():
            return None
        high = cps >= _TABLE_SIZE
        if high.any():
            out = np.where(high, cps, out)
        if len(cps) > 1:
            starts = np.flatnonzero(self._bigrams[_bigram_hash(cps[:-1], cps[1:])])
            if starts.size:
                if text is None:
                    text = cps.astype(np.uint32, copy=False).tobytes().decode("utf-32-le")
                self._apply_phrases(text, starts, out)
        return out

    def _apply_phrases(self, text: str, starts: np.ndarray, out: np.ndarray) -> None:
        """Greedy left-to-right longest match over the phrase keys, written into ``out``."""
        by_bigram = self._by_bigram
        pos = 0
        for i in starts.tolist():
            if i < pos:
                continue
            keys = by_bigram.get(text[i:i + 2])
            if keys is None:
                continue
            for key in keys:
                if text.startswith(key, i):
                    value = self.phrases[key]
                    out[i:i + len(key)] = [ord(c) for c in value]
                    pos = i + len(key)
                    break

    def convert(self, text: str) -> str:
        """``text`` converted (a str -> str call like ``OpenCC.convert``)."""
        cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        out = self.convert_codepoints(cps, text)
        if out is None:
            return opencc_converter("t2s").convert(text)
        return out.astype(np.uint32, copy=False).tobytes().decode("utf-32-le")


@lru_cache(maxsize=None)
def table_t2s() -> TableT2S:
    """The ``t2s`` tables for this process: characters read from OpenCC, phrases from the seed."""
    phrases = {row["traditional"]: row["simplified"] for row in read_seed(PHRASE_SEED)}
    return build_table_t2s(phrases)


def build_table_t2s(phrases: dict[str, str]) -> TableT2S:
    """Tables for ``t2s``, checked against the installed OpenCC.

    Raises ``RuntimeError`` when OpenCC disagrees with ``phrases`` (the seed
    of another OpenCC version) or maps a character to several: regenerate the
    seed with ``python -m transforms.script --write-seed``.
    """
    cc = opencc_converter("t2s")
    cps = [c for lo, hi in _CJK_RANGES for c in range(lo, hi)]
    converted = cc.convert("\n".join(map(chr, cps))).split("\n")
    if len(converted) != len(cps) or any(len(c) != 1 for c in converted):
        raise RuntimeError("OpenCC t2s maps a character to several: the table conversion cannot mirror it")
    table = np.arange(_TABLE_SIZE, dtype=np.uint32)
    table[np.asarray(cps, dtype=np.int64)] = np.fromiter(map(ord, converted), dtype=np.uint32, count=len(cps))
    keys = list(phrases)
    check = cc.convert("\n".join(keys)).split("\n") if keys else []
    wrong = [k for k, c in zip(keys, check) if c != phrases[k] or len(k) != len(c)]
    if wrong or len(check) != len(keys):
        raise RuntimeError(
            f"seeds/{PHRASE_SEED}.csv disagrees with the installed OpenCC on {len(wrong)} phrases "
            f"(e.g. {wrong[:3]}): regenerate it with `python -m transforms.script --write-seed`."
        )
    return TableT2S(table, phrases)


def opencc_dictionary(name: str) -> list[tuple[str, str]]:
    """Entries ``(key, first value)`` of an installed OpenCC dictionary (``TSPhrases``, ...).

    Uses the ``opencc_dict`` tool shipped in the opencc wheel to dump the
    binary ``.ocd2`` file as text; only the seed's maintenance and its test need it.
    """
    clib = Path(opencc.__file__).resolve().parent / "clib"
    tool = clib / "bin" / "opencc_dict"
    source = clib / "share" / "opencc" / f"{name}.ocd2"
    env = dict(os.environ, LD_LIBRARY_PATH=os.pathsep.join(filter(None, [str(clib / "lib64"), str(clib / "lib"),
                                                                          os.environ.get("LD_LIBRARY_PATH", "")])))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.txt"
        subprocess.run([str(tool), "-i", str(source), "-o", str(out), "-f", "ocd2", "-t", "text"],
                       check=True, env=env, capture_output=True)
        rows = []
        for line in out.read_text(encoding="utf-8").splitlines():
            key, values = line.split("\t", 1)
            rows.append((key, values.split(" ")[0]))
    return rows


def write_phrase_seed(path: Path = SEEDS_DIR / f"{PHRASE_SEED}.csv") -> int:
    """Write the multi-character ``TSPhrases`` entries of the installed OpenCC as the seed."""
    rows = sorted((k, v) for k, v in opencc_dictionary("TSPhrases") if len(k) >= 2)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["traditional", "simplified"])
        writer.writerows(rows)
    return len(rows)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-seed"]:
        sys.exit("usage: python -m transforms.script --write-seed")
    print(f"wrote {write_phrase_seed()} phrases to seeds/{PHRASE_SEED}.csv")
