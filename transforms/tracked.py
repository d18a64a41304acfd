"""Text that remembers where each of its characters came from.

Every normalization step edits text; provenance needs, for every character of
the result, the span of the decoded raw text it stands for. Keeping that as a
Python list edited per character would dominate the stage's run time, so the
map is two numpy arrays (``starts``/``ends``: raw span of each character) and
edits are applied in bulk: deletions through a boolean mask, same-length
rewrites without touching the map at all, and the rare length-changing
replacements (a repaired mojibake run, an HTML entity) by concatenating slices.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain

import numpy as np

_INDEX = np.int32


def _codepoints(text: str) -> np.ndarray:
    """The text as an array of code points (UTF-32 is a fixed-width view of a str)."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def _text(codepoints: np.ndarray) -> str:
    """Inverse of ``_codepoints``."""
    return codepoints.astype(np.uint32, copy=False).tobytes().decode("utf-32-le")


class TrackedText:
    """A string plus, per character, the ``[start, end)`` span of raw text it came from."""

    __slots__ = ("text", "starts", "ends")

    def __init__(self, text: str, starts: np.ndarray | None = None, ends: np.ndarray | None = None):
        self.text = text
        if starts is None:
            starts = np.arange(len(text), dtype=_INDEX)
            ends = starts + 1
        self.starts = starts
        self.ends = ends if ends is not None else starts + 1

    def __len__(self) -> int:
        return len(self.text)

    def rewrite(self, new_text: str) -> None:
        """Replace the text by a same-length rewrite of it (e.g. t2s, fullwidth to ASCII)."""
        if len(new_text) != len(self.text):
            raise ValueError("rewrite() needs a same-length text; use replace() for length changes")
        self.text = new_text

    def delete(self, spans: Iterable[tuple[int, int]]) -> int:
        """Delete the given ``[start, end)`` spans (may overlap); return characters removed.

        Few spans: the text is cut with slices. Many (seed 004 has >1,200
        pinyin spans): a keep-mask from a difference array, one numpy pass.
        """
        spans = spans if isinstance(spans, list) else list(spans)
        if not spans:
            return 0
        n = len(self.text)
        if len(spans) <= 32:
            spans = sorted(spans)
            merged: list[list[int]] = []
            for s, e in spans:
                s, e = max(0, s), min(n, e)
                if e <= s:
                    continue
                if merged and s <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], e)
                else:
                    merged.append([s, e])
            if not merged:
                return 0
            keep_bounds = []
            pos = 0
            for s, e in merged:
                keep_bounds.append((pos, s))
                pos = e
            keep_bounds.append((pos, n))
            text = self.text
            self.text = "".join(text[a:b] for a, b in keep_bounds)
            self.starts = np.concatenate([self.starts[a:b] for a, b in keep_bounds])
            self.ends = np.concatenate([self.ends[a:b] for a, b in keep_bounds])
            return n - len(self.text)
        flat = np.fromiter(chain.from_iterable(spans), dtype=np.int64, count=2 * len(spans))
        bounds = np.clip(flat.reshape(-1, 2), 0, n)  # order does not matter to the difference array
        bounds = bounds[bounds[:, 1] > bounds[:, 0]]  # an empty or inverted span covers nothing (it would uncover)
        delta = np.bincount(bounds[:, 0], minlength=n + 1) - np.bincount(bounds[:, 1], minlength=n + 1)
        keep = np.cumsum(delta[:n]) == 0
        removed = int(n - np.count_nonzero(keep))
        if removed:
            self.text = _text(_codepoints(self.text)[keep])
            self.starts = self.starts[keep]
            self.ends = self.ends[keep]
        return removed

    def keep(self, mask: np.ndarray | None) -> int:
        """Keep only the characters where ``mask`` is True; return characters removed."""
        if mask is None:
            return 0
        removed = int(len(mask) - np.count_nonzero(mask))
        if removed:
            self.text = _text(_codepoints(self.text)[mask])
            self.starts = self.starts[mask]
            self.ends = self.ends[mask]
        return removed

    def replace(self, edits: Sequence[tuple[int, int, str]], align_same_length: bool = True) -> None:
        """Apply non-overlapping ``(start, end, replacement)`` edits, sorted by start.

        A replacement of the same length keeps the per-character map (unless
        ``align_same_length`` is False: a repaired mojibake run does not
        correspond to its damaged text character by character); otherwise
        every new character points at the whole replaced raw span, so that any
        evidence touching it maps back to all of it.
        """
        if not edits:
            return
        pieces: list[str] = []
        starts: list[np.ndarray] = []
        ends: list[np.ndarray] = []
        pos = 0
        for s, e, rep in edits:
            if s < pos or e < s:
                raise ValueError(f"edits overlap or are unsorted at {s}:{e}")
            pieces.append(self.text[pos:s])
            starts.append(self.starts[pos:s])
            ends.append(self.ends[pos:s])
            if rep:
                pieces.append(rep)
                if len(rep) == e - s and align_same_length:
                    starts.append(self.starts[s:e])
                    ends.append(self.ends[s:e])
                else:
                    if e > s:
                        lo, hi = self.starts[s], self.ends[e - 1]
                    else:  # pure insertion: anchor on the next (or previous) character
                        anchor = s if s < len(self.text) else s - 1
                        lo, hi = (self.starts[anchor], self.ends[anchor]) if anchor >= 0 else (0, 0)
                    starts.append(np.full(len(rep), lo, dtype=_INDEX))
                    ends.append(np.full(len(rep), hi, dtype=_INDEX))
            pos = e
        pieces.append(self.text[pos:])
        starts.append(self.starts[pos:])
        ends.append(self.ends[pos:])
        self.text = "".join(pieces)
        self.starts = np.concatenate(starts).astype(_INDEX, copy=False)
        self.ends = np.concatenate(ends).astype(_INDEX, copy=False)
