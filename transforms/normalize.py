"""Decoded text -> canonical text, with an offset map back to the decoded text.

The steps, in the order they must run (docs/CANONICAL.md says why):

1. line endings (CRLF, CR -> LF) and zero-width characters; in plain text, line breaks stored as
   the characters ``\\r\\n`` and stray entities such as ``&nbsp;`` (spreadsheet-cell exports);
2. HTML pages only: markup, entities, HTML whitespace (transforms/html.py);
3. GBK byte-shift mojibake repaired or flagged (transforms/mojibake.py) —
   before anything rewrites characters, since repair needs the bytes as found;
4. pinyin annotations removed (transforms/pinyin.py);
5. fullwidth forms to ASCII, then OpenCC t2s (transforms/canonical.py);
6. page furniture removed (transforms/furniture.py, seeds/furniture.csv);
7. whitespace collapsed.

Every step edits a ``TrackedText``, so each canonical character keeps the
span of decoded text it came from.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import opencc

from transforms.canonical import (
    canonical_forms,
    escaped_markup_edits,
    line_ending_edits,
    sentence_spans,
    whitespace_keep_mask,
)
from transforms.encoding import decode_report
from transforms.errors import InputRejected
from transforms.furniture import furniture_spans, inline_pattern_names, line_pattern_names, page_metadata
from transforms.html import strip_html
from transforms.mojibake import find_runs
from transforms.pinyin import annotation_spans, may_expose_annotation, orphan_spans
from transforms.schema import NormalizationReport
from transforms.script import TableT2S, opencc_converter, table_t2s
from transforms.tracked import TrackedText

DEFAULT_SCRIPT = "t2s"


def converter(config: str = DEFAULT_SCRIPT) -> TableT2S | opencc.OpenCC:
    """The per-process converter for an OpenCC config (an object with ``.convert``).

    ``t2s`` is OpenCC's conversion applied as a table (transforms/script.py:
    same output, a fraction of the time); other configs are OpenCC itself.
    """
    return table_t2s() if config == "t2s" else opencc_converter(config)


@dataclass
class Normalized:
    """Canonical text; ``offsets[i]`` is the decoded-text offset of ``text[i]``.

    ``ends[i]`` (when known) is the end of the decoded-text span ``text[i]``
    stands for: one past ``offsets[i]`` for an ordinary character, the end of
    the whole run for a character of a repaired mojibake run or an entity.
    """

    text: str
    offsets: Sequence[int]
    raw_text: str
    report: NormalizationReport = field(default_factory=NormalizationReport)
    ends: Sequence[int] | None = None

    def raw_span(self, start: int, end: int) -> tuple[int, int]:
        """Map a [start, end) span of the canonical text to the decoded raw text."""
        if start >= end:
            o = self.offsets[start] if start < len(self.offsets) else len(self.raw_text)
            return o, o
        last = self.ends[end - 1] if self.ends is not None else self.offsets[end - 1] + 1
        return self.offsets[start], last

    def sentences(self) -> list[tuple[int, int]]:
        """Sentence spans of the canonical text (see ``canonical.sentence_spans``)."""
        return sentence_spans(self.text)


def normalize_text(raw: str, html: bool = False, script: str | None = DEFAULT_SCRIPT) -> Normalized:
    """Canonical text of decoded ``raw`` text, with its offset map and report.

    ``html``: treat ``raw`` as an HTML page. ``script``: the OpenCC config
    applied (``t2s`` by default; ``None`` keeps the script as written).
    """
    report = NormalizationReport(script_config=script or "")
    doc = TrackedText(raw)

    text, deletions = line_ending_edits(doc.text)
    doc.rewrite(text)
    doc.delete(deletions)
    if html:
        report.html_tags_removed = strip_html(doc)
    else:
        escaped = escaped_markup_edits(doc.text)
        if escaped:
            doc.replace(escaped, align_same_length=False)

    run_spans: list[tuple[int, int, bool]] = []
    names: set[str] = set()
    for _pass in range(3):
        converted_before = report.chars_converted
        _canonicalize(doc, report, script, run_spans, names)
        # A '?' run can only appear after the steps if they brought its pieces
        # together (a removed note, a dropped space): one more pass keeps
        # normalization idempotent. Clean text never has one, so this is free.
        # Likewise a furniture line may only become recognisable after script conversion (韶關 -> 韶关 in a
        # breadcrumb): one more pass removes it, so normalizing the output again changes nothing.
        if (("?" not in doc.text and "\uff1f" not in doc.text) or not find_runs(doc.text)) and (report.chars_converted == converted_before or not furniture_spans(doc.text)):
            break
    report.furniture_patterns = sorted(names)

    for raw_start, raw_end, repaired in run_spans:
        lo = int(np.searchsorted(doc.starts, raw_start, "left"))
        hi = int(np.searchsorted(doc.starts, raw_end, "left"))
        if hi > lo:
            (report.repaired_spans if repaired else report.unrepaired_spans).append((lo, hi))
    return Normalized(
        text=doc.text,
        offsets=_as_array(doc.starts),
        raw_text=raw,
        report=report,
        ends=_as_array(doc.ends),
    )


def _canonicalize(doc: TrackedText, report: NormalizationReport, script: str | None,
                  run_spans: list[tuple[int, int, bool]], names: set[str]) -> None:
    """Steps 3-8 of the module doc on ``doc``, in place, adding to ``report``."""
    orphans = orphan_spans(doc.text)
    report.pinyin_removed += len(orphans)
    doc.delete(orphans)

    runs = find_runs(doc.text)
    if runs:
        for r in runs:
            run_spans.append((int(doc.starts[r.start]), int(doc.ends[r.end - 1]), r.repaired))
        doc.replace([(r.start, r.end, r.repair) for r in runs], align_same_length=False)
        report.mojibake_found += len(runs)
        report.mojibake_repaired += sum(r.repaired for r in runs)
        report.mojibake_left = report.mojibake_found - report.mojibake_repaired
        report.mojibake_chars_lost += sum(r.lost for r in runs)

    while True:  # removing one annotation can expose another: X(a)(ān)
        spans = annotation_spans(doc.text)
        if not spans:
            break
        report.pinyin_removed += len(spans)
        again = may_expose_annotation(doc.text, spans)
        doc.delete(spans)
        if not again:
            break

    fullwidth, converted = canonical_forms(doc, script, converter(script) if script else None)
    report.fullwidth_converted += fullwidth
    report.chars_converted += converted

    touched = None  # offsets whose lines changed in the last round (None: every line)
    for _round in range(5):  # removing an inline note can leave a line that is furniture too
        furniture = furniture_spans(doc.text, lines_at=touched)
        if not furniture:
            break
        report.furniture_lines_removed += len(furniture)
        names.update(name for _, _, name in furniture)
        published, source = page_metadata(doc.text, furniture)
        report.published = report.published or published
        report.source = report.source or source
        edits = _furniture_edits(furniture)
        doc.replace(edits)
        if not _may_leave_furniture(furniture):
            break
        touched = _edited_offsets(edits)

    doc.keep(whitespace_keep_mask(doc.text))


def _furniture_edits(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Furniture spans as edits: lines and captions vanish; an inline note leaves a line break.

    The break keeps what stood on either side of a note apart, so removing it
    cannot glue two fragments into something new (a '?' onto a mojibake run).
    """
    inline = inline_pattern_names()
    edits: list[list] = []
    for s, e, name in sorted(spans):
        rep = "\n" if name in inline else ""
        if edits and s < edits[-1][1]:
            last = edits[-1]
            last[1] = max(last[1], e)
            last[2] = last[2] if rep == last[2] else ""
        else:
            edits.append([s, e, rep])
    return [(s, e, rep) for s, e, rep in edits]


def _edited_offsets(edits: list[tuple[int, int, str]]) -> list[int]:
    """Where sorted ``(start, end, replacement)`` edits landed in the edited text (both ends of each)."""
    out, shift = [], 0
    for s, e, rep in edits:
        out += [s + shift, s + shift + len(rep)]
        shift += len(rep) - (e - s)
    return out


def _may_leave_furniture(spans: list[tuple[int, int, str]]) -> bool:
    """Whether removing ``spans`` can make furniture of what is left (so another round is needed).

    Removing whole lines leaves the other lines as they were; only an inline
    note or a cut block changes what a line holds.
    """
    line = line_pattern_names()
    return any(name not in line for _, _, name in spans)


def _as_array(values: np.ndarray) -> array:
    """Offsets as a compact ``array('i')`` (indexing yields plain ints, pickles cheaply)."""
    out = array("i")
    out.frombytes(values.astype(np.int32, copy=False).tobytes())
    return out


def normalize_report(data: bytes, name: str = "<bytes>", script: str | None = DEFAULT_SCRIPT) -> Normalized:
    """Bytes -> canonical text: the whole normalize stage for one document."""
    decoded = decode_report(data, name)
    result = normalize_text(decoded.text, html=decoded.html, script=script)
    if not result.text.strip():
        raise InputRejected(
            "no_content",
            f"{name}: nothing is left after removing page furniture (headers, footers, captions): "
            "this is a page around a report, not the report. Save the report's own text and put it back in the inbox.",
        )
    result.report.encoding = decoded.encoding
    result.report.confidence = decoded.confidence
    result.report.html = decoded.html
    return result
