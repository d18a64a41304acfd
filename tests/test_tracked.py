"""TrackedText edits against a plain-Python model of the same edits (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.tracked import TrackedText


@st.composite
def text_and_spans(draw):
    text = draw(st.text(alphabet="经济发展ab 1\n", min_size=0, max_size=80))
    n = len(text)
    span = st.tuples(st.integers(-2, n + 2), st.integers(-2, n + 2))
    # up to 80 spans: both the slicing path (<= 32) and the mask path; unsorted, overlapping, empty, out of range
    return text, draw(st.lists(span, max_size=80))


@settings(max_examples=300, deadline=None)
@given(text_and_spans())
def test_delete_removes_exactly_the_covered_characters(case):
    text, spans = case
    n = len(text)
    covered = {i for s, e in spans for i in range(max(0, s), min(n, e))}
    doc = TrackedText(text)
    removed = doc.delete(spans)
    kept = [i for i in range(n) if i not in covered]
    assert removed == len(covered)
    assert doc.text == "".join(text[i] for i in kept)
    assert list(doc.starts) == kept and list(doc.ends) == [i + 1 for i in kept]


def test_delete_accepts_any_iterable():
    doc = TrackedText("韶關(guān)市")
    assert doc.delete(iter([(2, 8)])) == 6 and doc.text == "韶關市"
    assert list(doc.starts) == [0, 1, 8]


def test_many_spans_with_an_inverted_one_delete_only_what_the_others_cover():
    """Found by the property test above: past 32 spans an inverted span (end < start) counted as negative cover."""
    doc = TrackedText("1")
    assert doc.delete([(0, 0)] * 40 + [(1, 0)]) == 0 and doc.text == "1"
