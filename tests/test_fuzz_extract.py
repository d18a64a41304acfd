"""Fuzzing extraction: never raises, and every fact can be checked against its evidence.

For every fact: ``evidence == text[start:end]`` of the normalized text, the value
is a number written in the evidence, enums are valid, raw offsets fall inside the
raw text, and the facts fit the Arrow schema the flow ships them in.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.hostile import LEDGER, report_reliability, strategies, value_is_written
from transforms.errors import InputRejected
from transforms.extract import extract_document, extract_facts
from transforms.normalize import normalize_report
from transforms.schema import KINDS, MEASURES, QUALIFIERS, facts_to_table

pytestmark = pytest.mark.usefixtures("report_reliability")
__all__ = ["report_reliability"]

S = strategies()


def check_facts(facts, text: str, raw_text: str | None = None) -> None:
    facts_to_table(facts)  # the Arrow table the flow builds must never fail
    for f in facts:
        assert 0 <= f.start < f.end <= len(text), (f.start, f.end, len(text))
        assert text[f.start:f.end] == f.evidence
        assert value_is_written(f.value, f.evidence), (f.value, f.evidence)
        assert f.measure in MEASURES and f.kind in KINDS and (f.qualifier is None or f.qualifier in QUALIFIERS)
        assert f.evidence.encode("utf-8") and f.region.encode("utf-8")
        if raw_text is not None and f.raw_start is not None:
            assert 0 <= f.raw_start <= f.raw_end <= len(raw_text)


@given(text=S["reportish_text"])
def test_damaged_report_sentences(text):
    LEDGER.fuzz_examples += 1
    check_facts(extract_facts(text, "h"), text)


@given(text=st.text(max_size=300))
def test_arbitrary_unicode(text):
    LEDGER.fuzz_examples += 1
    check_facts(extract_facts(text, "h"), text)


@given(data=S["mutated_report"])
def test_whole_chain_from_damaged_bytes(data):
    """bytes -> normalize -> extract, as the flow runs it: offsets index the normalized text."""
    LEDGER.fuzz_examples += 1
    try:
        norm = normalize_report(data, "chain.txt")
    except InputRejected:
        return
    check_facts(extract_document(norm, "d"), norm.text, norm.raw_text)
