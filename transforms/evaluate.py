"""The instrument: how well does the extractor match the hand-checked gold answer key?

``evaluate(gold_dir, docs_dir)`` runs the real normalize + extract stages on every
report that has a gold file (``<gold_dir>/<report stem>.jsonl``) and compares:

* a fact matches a gold fact when (region, indicator, measure, period, kind, unit)
  are equal and the values differ by at most 1e-9 (each gold fact matches at most
  one extracted fact);
* precision, recall and F1 per indicator and overall (micro-averaged);
* misses (gold facts not extracted) and false positives, each with its evidence;
* the "no value that differs from the text" check: every extracted fact's
  evidence is exactly ``text[start:end]`` and contains its value as written.

Pure apart from reading the files it is pointed at; the CLI prints the result.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from transforms.extract import extract_document
from transforms.extract.numbers import written_values
from transforms.normalize import normalize_report
from transforms.schema import Fact

VALUE_TOLERANCE = 1e-9
KEY_FIELDS = ("region", "indicator", "measure", "period", "kind", "unit")
F1_GOAL_OVERALL = 0.97
F1_GOAL_INDICATOR = 0.9


@dataclass
class Score:
    """Counts for one indicator (or overall) and the rates derived from them."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class EvalResult:
    """Scores, the facts behind them, and the verbatim-value check."""

    documents: int = 0
    overall: Score = field(default_factory=Score)
    per_indicator: dict[str, Score] = field(default_factory=dict)
    misses: list[dict] = field(default_factory=list)
    false_positives: list[dict] = field(default_factory=list)
    value_mismatches: list[dict] = field(default_factory=list)
    detail_mismatches: list[dict] = field(default_factory=list)  # matched facts whose qualifier or value_base differ

    @property
    def goals_met(self) -> bool:
        """F1 ≥ 0.97 overall, no indicator below 0.9, and no value that differs from the text."""
        return (self.overall.f1 >= F1_GOAL_OVERALL and all(s.f1 >= F1_GOAL_INDICATOR for s in self.per_indicator.values())
                and not self.value_mismatches)


def read_gold(path: Path) -> list[dict]:
    """The gold facts of one report; errors name the file and line."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not valid JSON ({e.msg}); fix the line or remove it.") from e
        missing = [k for k in (*KEY_FIELDS, "value") if k not in d]
        if missing:
            raise ValueError(f"{path}:{n}: gold fact lacks {missing}; every line needs the contract fields.")
        out.append(d)
    return out


NOT_REPORTS = (".jsonl", ".md")  # gold files and notes may sit next to the reports (tests/heldout/)


def find_document(docs_dir: Path, stem: str) -> Path:
    """The report file whose name has stem ``stem`` (any extension but a gold file's or a note's)."""
    hits = sorted(p for p in docs_dir.iterdir() if p.is_file() and p.stem == stem and p.suffix not in NOT_REPORTS)
    if not hits:
        raise FileNotFoundError(f"{docs_dir}: no report named {stem}.* for gold file {stem}.jsonl; pass --docs DIR with the sample reports.")
    return hits[0]


def _same(g: dict, f: dict) -> bool:
    return all(g[k] == f[k] for k in KEY_FIELDS) and abs(float(g["value"]) - float(f["value"])) <= VALUE_TOLERANCE


def match_facts(gold: list[dict], extracted: list[dict]) -> tuple[list[tuple[dict, dict]], list[dict], list[dict]]:
    """Pair gold and extracted facts one-to-one: (matches, misses, false positives)."""
    by_key: dict[tuple, list[int]] = defaultdict(list)
    for i, f in enumerate(extracted):
        by_key[tuple(f[k] for k in KEY_FIELDS)].append(i)
    used: set[int] = set()
    matches, misses = [], []
    for g in gold:
        cand = next((i for i in by_key.get(tuple(g[k] for k in KEY_FIELDS), []) if i not in used and _same(g, extracted[i])), None)
        if cand is None:
            misses.append(g)
        else:
            used.add(cand)
            matches.append((g, extracted[cand]))
    fps = [f for i, f in enumerate(extracted) if i not in used]
    return matches, misses, fps


def value_is_written(fact: Fact | dict, text: str | None = None) -> bool:
    """The fact's evidence is text[start:end] (when ``text`` is given) and states its value."""
    d = fact if isinstance(fact, dict) else fact.contract()
    ev = d["evidence"]
    if text is not None and text[d["start"]:d["end"]] != ev:
        return False
    v = abs(float(d["value"]))
    return any(abs(w - v) <= VALUE_TOLERANCE * max(1.0, v) for w in written_values(ev))


def _detail_diff(gold: dict, fact: dict) -> list[str]:
    """Fields outside the match key that still disagree (qualifier, value_base, unit_base)."""
    out = []
    if "qualifier" in gold and gold["qualifier"] != fact["qualifier"]:
        out.append(f"qualifier {fact['qualifier']!r} vs gold {gold['qualifier']!r}")
    if "value_base" in gold and abs(float(gold["value_base"]) - float(fact["value_base"])) > VALUE_TOLERANCE * max(1.0, abs(float(gold["value_base"]))):
        out.append(f"value_base {fact['value_base']} vs gold {gold['value_base']}")
    if "unit_base" in gold and gold["unit_base"] != fact["unit_base"]:
        out.append(f"unit_base {fact['unit_base']} vs gold {gold['unit_base']}")
    return out


def evaluate(gold_dir: Path | str, docs_dir: Path | str) -> EvalResult:
    """Run normalize + extract on every report with a gold file and score it against the gold."""
    gold_dir, docs_dir = Path(gold_dir), Path(docs_dir)
    gold_files = sorted(gold_dir.glob("*.jsonl"))
    if not gold_files:
        raise FileNotFoundError(f"{gold_dir}: no gold *.jsonl files; pass --gold DIR with one <report stem>.jsonl per report.")
    res = EvalResult()
    for gpath in gold_files:
        gold = read_gold(gpath)
        doc = find_document(docs_dir, gpath.stem)
        data = doc.read_bytes()
        norm = normalize_report(data, str(doc))
        facts = extract_document(norm, hashlib.sha256(data).hexdigest())
        extracted = [dict(f.contract(), rule=f.rule) for f in facts]
        res.documents += 1
        for f in extracted:
            if not value_is_written(f, norm.text):
                res.value_mismatches.append(dict(f, document=gpath.stem))
        matches, misses, fps = match_facts(gold, extracted)
        for g, f in matches:
            res.per_indicator.setdefault(g["indicator"], Score()).tp += 1
            diff = _detail_diff(g, f)
            if diff:
                res.detail_mismatches.append(dict(f, document=gpath.stem, differs=diff))
        for g in misses:
            res.per_indicator.setdefault(g["indicator"], Score()).fn += 1
            res.misses.append(dict(g, document=gpath.stem))
        for f in fps:
            res.per_indicator.setdefault(f["indicator"], Score()).fp += 1
            res.false_positives.append(dict(f, document=gpath.stem))
    for s in res.per_indicator.values():
        res.overall.tp += s.tp
        res.overall.fp += s.fp
        res.overall.fn += s.fn
    return res
