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

Beyond the match, it reports where the misses come from:

* per source family (``<gold_dir>/families.csv``: stem, family; else the directory's name);
* per field: of the gold facts whose value the extractor found in the same document (same
  value and unit), the share it also got the region, period, indicator, measure and kind right;
* per document (``<stem>.doc.json`` beside the gold file): the document type, region and year
  the extractor decided, against the key's.

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
FIELDS = ("region", "period", "indicator", "measure", "kind")  # judged where the value itself was found


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
    per_family: dict[str, Score] = field(default_factory=dict)
    value_found: int = 0  # gold facts whose value and unit some extracted fact of the document states
    field_right: dict[str, int] = field(default_factory=dict)  # of those, how many have each field right too
    documents_checked: list[dict] = field(default_factory=list)  # per document: key identity vs extractor identity

    def identity_right(self, what: str) -> tuple[int, int]:
        """(documents right, documents judged) for ``what`` in doc_type, region, year."""
        judged = [d for d in self.documents_checked if d.get("key")]
        return sum(d["right"][what] for d in judged), len(judged)

    @property
    def goals_met(self) -> bool:
        """F1 ≥ 0.97 overall, no indicator below 0.9, and no value that differs from the text."""
        return (self.overall.f1 >= F1_GOAL_OVERALL and all(s.f1 >= F1_GOAL_INDICATOR for s in self.per_indicator.values())
                and not self.value_mismatches)


@dataclass(frozen=True)
class Goals:
    """What an answer key must show: overall F1 and precision floors, a per-indicator floor, identity right."""

    f1: float = F1_GOAL_OVERALL
    precision: float = 0.0
    indicator_f1: float | None = F1_GOAL_INDICATOR
    identity: bool = False

    def met(self, res: "EvalResult") -> bool:
        ok = res.overall.f1 >= self.f1 and res.overall.precision >= self.precision and not res.value_mismatches
        if self.indicator_f1 is not None:
            ok = ok and all(s.f1 >= self.indicator_f1 for s in res.per_indicator.values())
        if self.identity:
            ok = ok and all(all(d["right"].values()) for d in res.documents_checked)
        return ok

    def describe(self) -> str:
        parts = [f"F1 >= {self.f1}"]
        if self.precision:
            parts.append(f"precision >= {self.precision}")
        if self.indicator_f1 is not None:
            parts.append(f">= {self.indicator_f1} per indicator")
        if self.identity:
            parts.append("every document's type, region and year right")
        return ", ".join(parts) + ", no value differing from the text"


REAL_KEY_GOALS = Goals(f1=0.95, precision=0.98, indicator_f1=None, identity=True)


def goals_for(gold_dir: Path) -> Goals:
    """The real-report key (a directory with .doc.json files) has the issue's goals; hand-built keys the old ones."""
    return REAL_KEY_GOALS if any(Path(gold_dir).glob("*.doc.json")) else Goals()


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


def read_families(gold_dir: Path) -> dict[str, str]:
    """stem -> source family from ``families.csv`` (absent: every report is of the directory's family)."""
    path = gold_dir / "families.csv"
    if not path.is_file():
        return {}
    import csv  # noqa: PLC0415

    with path.open(encoding="utf-8", newline="") as fh:
        return {r["stem"]: r["family"] for r in csv.DictReader(fh)}


def _identity_of(norm, facts: list[dict]) -> dict:
    """The extractor's decision on what the document is (its identity stage; from its facts when it has none)."""
    try:
        from transforms.extract import identify  # noqa: PLC0415
    except ImportError:  # an extractor without an identity stage: the region and year most of its facts carry
        common = defaultdict(int)
        for f in facts:
            common[(f["region"], f.get("report_year"))] += 1
        region, year = max(common, key=common.get) if common else (None, None)
        return {"doc_type": "local_work_report" if facts else None, "region": region, "year": year}
    ident = identify(norm.text, norm.raw_text)
    return {"doc_type": ident.doc_type, "region": ident.region.name if ident.region else None, "year": ident.year}


def _judge_fields(gold: list[dict], extracted: list[dict], res: EvalResult) -> None:
    """Per field: of the gold facts whose value the extractor found, how many it also got right on each field."""
    for g in gold:
        same_value = [f for f in extracted if f["unit"] == g["unit"] and abs(float(f["value"]) - float(g["value"])) <= VALUE_TOLERANCE]
        if not same_value:
            continue
        res.value_found += 1
        for name in FIELDS:
            if any(f[name] == g[name] for f in same_value):
                res.field_right[name] = res.field_right.get(name, 0) + 1


def evaluate(gold_dir: Path | str, docs_dir: Path | str) -> EvalResult:
    """Run normalize + extract on every report with a gold file and score it against the gold."""
    gold_dir, docs_dir = Path(gold_dir), Path(docs_dir)
    families = read_families(gold_dir)
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
        family = families.get(gpath.stem, gold_dir.name)
        fam = res.per_family.setdefault(family, Score())
        key_path = gpath.with_name(gpath.stem + ".doc.json")
        if key_path.is_file():
            key = json.loads(key_path.read_text(encoding="utf-8"))
            got = _identity_of(norm, extracted)
            right = {"doc_type": got["doc_type"] == key["doc_type"], "region": got["region"] == key["region"],
                     "year": got["year"] == key["report_year"]}
            res.documents_checked.append({"document": gpath.stem, "family": family, "key": key, "got": got, "right": right})
        _judge_fields(gold, extracted, res)
        for f in extracted:
            if not value_is_written(f, norm.text):
                res.value_mismatches.append(dict(f, document=gpath.stem))
        matches, misses, fps = match_facts(gold, extracted)
        fam.tp += len(matches)
        fam.fn += len(misses)
        fam.fp += len(fps)
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
