"""The table form of OpenCC t2s (transforms/script.py) against the OpenCC library itself."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.script import (
    build_table_t2s,
    opencc_converter,
    opencc_dictionary,
    read_seed,
    table_t2s,
    write_phrase_seed,
)

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "seeds" / "reports").glob("*.txt"))
HELDOUT = sorted(p for p in (ROOT / "tests" / "heldout").rglob("*") if p.is_file())


def opencc_t2s(text: str) -> str:
    return opencc_converter("t2s").convert(text)


def test_seed_is_the_installed_opencc_dictionary(tmp_path):
    """seeds/opencc_t2s_phrases.csv is exactly the multi-character TSPhrases of the pinned OpenCC."""
    fresh = tmp_path / "phrases.csv"
    n = write_phrase_seed(fresh)
    assert n == len(read_seed("opencc_t2s_phrases")) > 400
    assert fresh.read_text(encoding="utf-8") == (ROOT / "seeds" / "opencc_t2s_phrases.csv").read_text(encoding="utf-8")
    assert all(len(k) == 1 for k, _ in opencc_dictionary("TSCharacters"))


@pytest.mark.parametrize("path", SAMPLES + HELDOUT, ids=[p.name for p in SAMPLES + HELDOUT])
def test_table_equals_opencc_on_reports(path):
    text = path.read_bytes().decode("utf-8", errors="replace")
    assert table_t2s().convert(text) == opencc_t2s(text)


def test_every_phrase_in_context_equals_opencc():
    """Each phrase alone, glued to its neighbours and overlapping another (longest-first, left to right)."""
    keys = sorted(table_t2s().phrases)
    glued = "".join(keys)  # adjacent phrases: greedy matching decides where each ends
    spaced = "，".join(f"{k}乾{k[::-1]}著" for k in keys)
    for text in (glued, spaced, *keys):
        assert table_t2s().convert(text) == opencc_t2s(text)
    assert table_t2s().convert("慰藉憑藉") == opencc_t2s("慰藉憑藉") == "慰藉凭借"  # a phrase that blocks a conversion


def test_compatibility_ideographs_fall_back_to_opencc():
    text = "經濟\uf900發展\U0002f800"
    t = table_t2s()
    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    assert t.convert_codepoints(cps, text) is None
    assert t.convert(text) == opencc_t2s(text)


def test_the_tables_pickle_for_process_runners():
    again = pickle.loads(pickle.dumps(table_t2s()))
    assert again.convert("韶關市湞江區") == opencc_t2s("韶關市湞江區") == "韶关市浈江区"


def test_a_seed_from_another_opencc_is_refused():
    phrases = dict(table_t2s().phrases)
    key = next(iter(phrases))
    phrases[key] = key  # what another dictionary version might say
    with pytest.raises(RuntimeError, match="write-seed"):
        build_table_t2s(phrases)


_ALPHABET = "".join(sorted({c for k in read_seed("opencc_t2s_phrases") for c in k["traditional"]}))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(_ALPHABET + "的了乾著於後發經濟，。 \n1a\uff11") | st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_table_equals_opencc_on_any_text(text):
    """Any text a decoder can produce (no lone surrogates), dense in phrase characters."""
    assert table_t2s().convert(text) == opencc_t2s(text)


def test_ascii_forms_and_t2s_never_touch_the_same_character():
    """canonical_forms folds both into one table lookup; that is exact only if they are disjoint."""
    from transforms.canonical import _ASCII_TABLE

    t = table_t2s()
    ascii_changes = np.flatnonzero(_ASCII_TABLE != np.arange(0x10000, dtype=np.uint32))
    assert (t.table[ascii_changes] == ascii_changes).all()
    t2s_changes = np.flatnonzero(t.table != np.arange(len(t.table), dtype=np.uint32))
    assert (t.table[t2s_changes] >= 0x80).all()
    assert not {ord(c) for k in t.phrases for c in k} & set(ascii_changes.tolist())


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_folded_forms_equal_ascii_then_opencc(path):
    """One lookup (ASCII forms + t2s table) gives the text and counts of the two steps with OpenCC itself."""
    from transforms.canonical import canonical_forms, to_ascii_forms
    from transforms.tracked import TrackedText

    text = path.read_text(encoding="utf-8")
    doc = TrackedText(text)
    fullwidth, converted = canonical_forms(doc, "t2s", table_t2s())
    ascii_text = to_ascii_forms(text)
    expected = opencc_t2s(ascii_text)
    assert doc.text == expected
    assert fullwidth == sum(a != b for a, b in zip(text, ascii_text))
    assert converted == sum(a != b for a, b in zip(ascii_text, expected))
    assert converted > 0 or path.name.startswith("002")
