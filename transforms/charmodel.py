"""A character bigram model of report Chinese, used to judge mojibake repairs.

Repairing a byte-shifted run means guessing lost bytes; the guess is the
character the model finds most likely between its neighbours. The counts live
in ``seeds/char_frequency.csv`` and ``seeds/char_bigrams.csv`` (simplified
script) and are rebuilt from the sample reports' clean text with
``python -m transforms.charmodel`` (stretches near a mojibake '?' and pinyin
annotations are cut out first, so the model never learns the damage).
Characters the counts never saw fall back on whether they are one of the
3,755 level-1 characters of GB 2312, the standard list of common characters.
"""

from __future__ import annotations

import csv
import math
import re
import sys
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
UNIGRAM_CSV = SEEDS / "char_frequency.csv"
BIGRAM_CSV = SEEDS / "char_bigrams.csv"

_SMOOTHING = 4.0  # weight of the unigram estimate inside a bigram estimate (Dirichlet prior)
_PRIOR_COMMON = 1.0  # pseudo-count of an unseen GB 2312 level-1 character
_PRIOR_RARE = 0.02  # pseudo-count of any other unseen character


@lru_cache(maxsize=1)
def common_chars() -> frozenset[str]:
    """GB 2312 level-1 characters (rows 0xB0-0xD7): the official list of common characters."""
    chars = set()
    for lead in range(0xB0, 0xD8):
        for trail in range(0xA1, 0xFF):
            try:
                chars.add(bytes((lead, trail)).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return frozenset(chars)


class CharModel:
    """Smoothed character unigram/bigram log-probabilities."""

    def __init__(self, unigrams: dict[str, int], bigrams: dict[str, int]):
        self.unigrams = unigrams
        self.bigrams = bigrams
        self.total = sum(unigrams.values()) + len(common_chars()) * _PRIOR_COMMON
        self._common = common_chars()
        self._uni_cache: dict[str, float] = {}
        self._bi_cache: dict[str, float] = {}

    def p_uni(self, ch: str) -> float:
        """P(ch), never zero."""
        count = self.unigrams.get(ch)
        if count is None:
            count = _PRIOR_COMMON if ch in self._common else _PRIOR_RARE
        return count / self.total

    def log_uni(self, ch: str) -> float:
        """log P(ch) (cached: the candidate tables ask for the same characters again and again)."""
        v = self._uni_cache.get(ch)
        if v is None:
            v = self._uni_cache[ch] = math.log(self.p_uni(ch))
        return v

    def log_bi(self, prev: str | None, ch: str) -> float:
        """log P(ch | prev); with no previous character, the unigram estimate."""
        if not prev:
            return self.log_uni(ch)
        key = prev + ch
        v = self._bi_cache.get(key)
        if v is None:
            pair = self.bigrams.get(key, 0)
            v = math.log((pair + _SMOOTHING * self.p_uni(ch)) / (self.unigrams.get(prev, 0) + _SMOOTHING))
            self._bi_cache[key] = v
        return v

    def seen(self, prev: str | None, ch: str | None) -> bool:
        """Whether the pair occurs in the counts (a guess backed by evidence, not by smoothing)."""
        return bool(prev and ch and (prev + ch) in self.bigrams)


def _read_counts(path: Path) -> dict[str, int]:
    with path.open(encoding="utf-8", newline="") as fh:
        return {row[0]: int(row[1]) for row in csv.reader(fh) if row and row[0] != "chars"}


@lru_cache(maxsize=1)
def char_model() -> CharModel:
    """The model from the seed CSVs (loaded once per process)."""
    return CharModel(_read_counts(UNIGRAM_CSV), _read_counts(BIGRAM_CSV))


_SUSPECT_WINDOW = re.compile(r".{0,2}\?[^\s]{0,30}")
_COUNTED = re.compile(r"[\u3400-\u9fff\u3000-\u303f\uff01-\uff5e\u201c\u201d\u2018\u2019A-Za-z0-9%.,;:!()]")


def clean_training_text(raw: str) -> str:
    """Report text with every stretch that may hold damage cut out (mojibake, pinyin)."""
    from transforms.canonical import to_ascii_forms
    from transforms.normalize import converter
    from transforms.pinyin import annotation_spans

    kept, pos = [], 0
    for s, e in annotation_spans(raw):
        kept.append(raw[pos:s])
        pos = e
    kept.append(raw[pos:])
    text = _SUSPECT_WINDOW.sub("\n", "".join(kept))
    return to_ascii_forms(converter("t2s").convert(text))


def count_text(texts: Iterable[str]) -> tuple[Counter, Counter]:
    """Unigram and bigram counts of the model's alphabet (Han, CJK and ASCII punctuation, digits)."""
    uni: Counter = Counter()
    bi: Counter = Counter()
    for text in texts:
        for line in text.splitlines():
            chars = [c if _COUNTED.match(c) else None for c in line]
            uni.update(c for c in chars if c)
            bi.update(a + b for a, b in zip(chars, chars[1:]) if a and b)
    return uni, bi


def write_seeds(report_paths: Iterable[Path], min_bigram: int = 1) -> tuple[int, int]:
    """Rebuild the two seed CSVs from sample reports; return (unigrams, bigrams) written."""
    texts = [clean_training_text(p.read_text(encoding="utf-8")) for p in report_paths]
    uni, bi = count_text(texts)
    with UNIGRAM_CSV.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["chars", "count"])
        w.writerows(sorted(uni.items(), key=lambda kv: (-kv[1], kv[0])))
    kept = [(k, v) for k, v in bi.items() if v >= min_bigram]
    with BIGRAM_CSV.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["chars", "count"])
        w.writerows(sorted(kept, key=lambda kv: (-kv[1], kv[0])))
    return len(uni), len(kept)


if __name__ == "__main__":  # python -m transforms.charmodel [report.txt ...]
    paths = [Path(p) for p in sys.argv[1:]] or sorted((SEEDS / "reports").glob("*.txt"))
    n_uni, n_bi = write_seeds(paths)
    print(f"wrote {n_uni} characters to {UNIGRAM_CSV} and {n_bi} bigrams to {BIGRAM_CSV}")
