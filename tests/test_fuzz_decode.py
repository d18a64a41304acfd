"""Fuzzing the decoder: any bytes become text that can be stored, or a quarantine reason naming the file.

Beyond "never raises": the decoded text must survive Arrow and DuckDB (no lone
surrogates, which would fail a whole batch at load), and a report's own text,
in the encodings reports arrive in, must come back unchanged.
Examples: the ``govfacts`` Hypothesis profile by default; ``HYPOTHESIS_PROFILE=deep`` for 100x more.
"""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.hostile import LEDGER, report_reliability, strategies
from transforms.encoding import decode_report
from transforms.errors import InputRejected

pytestmark = pytest.mark.usefixtures("report_reliability")
__all__ = ["report_reliability"]

REASONS = {"empty", "binary", "truncated", "undecodable", "no_content"}
NAME = "收件箱/fuzz input 1.txt"
S = strategies()


def _decoded_or_rejected(data: bytes):
    LEDGER.fuzz_examples += 1
    try:
        decoded = decode_report(data, NAME)
    except InputRejected as exc:
        assert exc.reason in REASONS, exc.reason
        assert NAME in exc.message, "a rejection must name the file"
        return None
    decoded.text.encode("utf-8")  # strict: a lone surrogate here would fail the whole batch in Arrow
    pa.array([decoded.text], pa.string())
    assert decoded.encoding and 0.0 <= decoded.confidence <= 1.0
    return decoded


@given(data=S["hostile_bytes"])
def test_any_bytes_decode_to_storable_text_or_a_named_rejection(data):
    _decoded_or_rejected(data)


@given(data=S["mutated_report"])
def test_damaged_reports_decode_to_storable_text_or_a_named_rejection(data):
    _decoded_or_rejected(data)


@given(text=S["report_slice"], encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "utf-16"]))
def test_report_text_comes_back_unchanged(text, encoding):
    """What a report says is never altered by decoding (the encodings that can hold all of it).

    Only for slices long enough to identify their encoding: a couple of GB18030
    bytes can also be valid UTF-8 ("委" is b"\\xce\\xaf", also "ί"), and reading
    an ambiguous scrap as UTF-8 is the right call.
    """
    assume(len(text) >= 20 and sum(ch > "\u2fff" for ch in text) >= 8)
    decoded = _decoded_or_rejected(text.encode(encoding))
    if decoded is None:
        assert not text.strip() or not any(c.isalnum() for c in text), f"a real report slice was rejected: {text[:80]!r}"
        return
    assert decoded.text == text
