"""GBK byte-shift mojibake: every run in the samples, its true text, and what repair does with it."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from transforms.mojibake import LOST, find_runs, repair_run, shift_damage
from transforms.normalize import converter, normalize_report
from transforms.pinyin import orphan_spans

ROOT = Path(__file__).resolve().parent.parent
CASES = [json.loads(line) for line in (ROOT / "tests" / "cases" / "mojibake.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
BY_DOC: dict[str, list[dict]] = defaultdict(list)
for _c in CASES:
    BY_DOC[_c["doc"]].append(_c)


def _doc_text(stem: str) -> str:
    """A sample as the mojibake step sees it (annotation remnants after '?' already gone)."""
    text = (ROOT / "seeds" / "reports" / f"{stem}.txt").read_text(encoding="utf-8")
    out, pos = [], 0
    for s, e in orphan_spans(text):
        out.append(text[pos:s])
        pos = e
    return "".join(out) + text[pos:]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case_original_reproduces_the_damage(case):
    """The table's 'original' is the truth: damaging it gives exactly the run found."""
    assert shift_damage(case["original"]) == case["found"]


@pytest.mark.parametrize("stem", sorted(BY_DOC), ids=sorted(BY_DOC))
def test_every_run_found_and_repaired_exactly_or_flagged(stem):
    runs = find_runs(_doc_text(stem))
    cases = BY_DOC[stem]
    assert [r.found for r in runs] == [c["found"] for c in cases], "runs found differ from the case table"
    for run, case in zip(runs, cases):
        if case["expect"] == "unrepairable":
            assert not run.repaired, f"{case['id']}: reported repaired as {run.repair!r}"
            assert run.repair == case["kept"]
        else:
            assert run.repaired, f"{case['id']}: expected repair {case['expect']!r}, got {run.repair!r}"
            assert run.repair == case["expect"] == case["original"]


def test_clean_samples_have_no_runs():
    text = (ROOT / "seeds" / "reports" / "002_529b2cf22d5cc5aa.txt").read_text(encoding="utf-8")
    assert find_runs(text) == []


def test_repaired_means_right():
    """No run is ever called repaired with text other than the original."""
    wrong = [c["id"] for c in CASES if c["expect"] != "unrepairable" and c["expect"] != c["original"]]
    assert wrong == []


@pytest.mark.parametrize("text", ["他说:怎么办?我们要干。", "请问?", "是否达到目标?2023年"])
def test_real_question_marks_are_left_alone(text):
    assert find_runs(text) == []


def test_lost_digit_is_never_repaired():
    """'“7·21”' loses its 7: the run must stay flagged whatever the model thinks."""
    found = shift_damage("。“7")
    repair, ok, _gain = repair_run(found, "开", "·")
    assert not ok and LOST in repair


@pytest.mark.parametrize("stem", sorted(BY_DOC), ids=sorted(BY_DOC))
def test_report_counts_and_spans_in_canonical_text(stem):
    norm = normalize_report((ROOT / "seeds" / "reports" / f"{stem}.txt").read_bytes(), stem)
    cases = BY_DOC[stem]
    rep = norm.report
    assert rep.mojibake_found == len(cases)
    assert rep.mojibake_repaired == sum(c["expect"] != "unrepairable" for c in cases)
    assert rep.mojibake_left == rep.mojibake_found - rep.mojibake_repaired
    assert len(rep.unrepaired_spans) == rep.mojibake_left and len(rep.repaired_spans) == rep.mojibake_repaired
    repaired = [c for c in cases if c["expect"] != "unrepairable"]
    for (s, e), case in zip(rep.repaired_spans, repaired):
        assert norm.text[s:e] == converter().convert(case["original"])
    for s, e in rep.unrepaired_spans:
        assert e > s


def test_char_model_seeds_are_rebuilt_from_the_samples():
    """seeds/char_*.csv are exactly what ``python -m transforms.charmodel`` writes (no hand edits)."""
    import csv

    from transforms.charmodel import BIGRAM_CSV, UNIGRAM_CSV, clean_training_text, count_text

    texts = [clean_training_text(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "seeds" / "reports").glob("*.txt"))]
    uni, bi = count_text(texts)
    with UNIGRAM_CSV.open(encoding="utf-8", newline="") as fh:
        seeded_uni = {row["chars"]: int(row["count"]) for row in csv.DictReader(fh)}
    with BIGRAM_CSV.open(encoding="utf-8", newline="") as fh:
        seeded_bi = {row["chars"]: int(row["count"]) for row in csv.DictReader(fh)}
    assert seeded_uni == dict(uni)
    assert seeded_bi == dict(bi)
    assert not any("?" in k for k in seeded_bi), "damage leaked into the model"
