"""Fuzzing normalization from bytes: only InputRejected, idempotent, offsets usable, rows storable.

tests/test_normalize_properties.py checks ``normalize_text`` on generated text;
here the entry point is the one the flow calls (``normalize_report`` on raw
bytes, including damaged real reports), and the result must also survive the
Arrow row the flow ships it in.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given

from tests.hostile import LEDGER, report_reliability, strategies
from transforms.errors import InputRejected
from transforms.normalize import normalize_report, normalize_text

pytestmark = pytest.mark.usefixtures("report_reliability")
__all__ = ["report_reliability"]

REASONS = {"empty", "binary", "truncated", "undecodable", "no_content"}
NAME = "fuzz 'report'.txt"
S = strategies()
_C0 = re.compile("[\x00-\x08\x0e-\x1f]")  # control characters other than tab and line breaks


def check_normalized(data: bytes):
    """The invariants of one normalize_report call; returns the result or None when rejected."""
    LEDGER.fuzz_examples += 1
    try:
        norm = normalize_report(data, NAME)
    except InputRejected as exc:
        assert exc.reason in REASONS and NAME in exc.message, (exc.reason, exc.message)
        return None
    assert norm.text.strip()
    assert not _C0.search(norm.text), f"control characters in canonical text: {norm.text[:80]!r}"
    assert len(norm.offsets) == len(norm.text)
    assert all(0 <= o <= len(norm.raw_text) for o in norm.offsets)
    assert list(norm.offsets) == sorted(norm.offsets), "offsets must not go backwards"
    for start in range(0, len(norm.text), max(1, len(norm.text) // 7)):
        a, b = norm.raw_span(start, min(len(norm.text), start + 5))
        assert 0 <= a <= b <= len(norm.raw_text)
    return norm


@given(data=S["hostile_bytes"])
def test_any_bytes_normalize_or_are_rejected_with_a_reason(data):
    check_normalized(data)


@given(data=S["mutated_report"])
def test_normalization_is_idempotent_from_bytes(data):
    norm = check_normalized(data)
    if norm is None:
        return
    # The second pass reads the canonical text as text: re-decoding it from bytes would be ambiguous (canonical
    # text of an HTML page may literally contain "<html>"; one beginning "%PDF" looks like a PDF without its BOM).
    again = normalize_text(norm.text)
    assert again.text == norm.text


def test_canonical_text_holds_no_control_characters():
    """Found by HYPOTHESIS_PROFILE=deep: UTF-16 text with a U+0000 keeps it through normalization."""
    data = "\ufeff2023年地区生产总值增长5%。\n\x00".encode("utf-16-le")
    norm = normalize_report(data, NAME)
    assert not _C0.search(norm.text), repr(norm.text)
    assert normalize_report(norm.text.encode("utf-8"), NAME).text == norm.text
