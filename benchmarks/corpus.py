"""Generate N realistic work reports, with the facts planted in each, to measure the flow (and recall) at scale.

    .venv/bin/python benchmarks/corpus.py --n 1000 --out /tmp/corpus-1000 [--seed 7]

Each generated report is one of the five sample reports (seeds/reports/) rewritten:

* its region gets the name of a real division of the same kind (seeds/regions.csv: a current
  name ending in the template's suffix, unique in the reference, so the extractor's identity —
  which accepts only divisions it knows — can name it), in the template's script; names are
  dealt out shuffled and reused only once every one of them has been used (a region then has
  several reports, as it has over the years);
* every number of the hand-checked answer key (tests/gold/) is perturbed (±15 %, same
  number of decimals, same sign) where it is written, and the planted fact records the
  new value;
* filler sentences (no digit, no 年, no region name) are dropped, kept, or replaced by
  filler sentences of other samples, so reports differ in length and wording;
* one in ten is written in GB18030 instead of UTF-8 (as many government sites serve them).

Everything else — the traditional script, pinyin glosses, page furniture, line layout — is
kept as it was, so the normalizer and extractor see what they would see in the wild.

Writes ``<out>/reports/*.txt``, ``<out>/planted.jsonl`` (one object per planted fact: file,
doc_id = sha256 of the written bytes, region, indicator, measure, value, unit, value_base,
unit_base, period, kind, qualifier) and ``<out>/manifest.json``. Deterministic for a seed.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from transforms.normalize import converter, normalize_report  # noqa: E402

TEMPLATES = ROOT / "seeds" / "reports"
GOLD = ROOT / "tests" / "gold"
REGIONS = ROOT / "seeds" / "regions.csv"
FORMAT = 2  # of the generated corpus: 2 = real division names (1: invented ones)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SENTENCE_END = re.compile(r"(?<=[。！？!?\n])")
_DIGIT = re.compile(r"[0-9０-９]")
_SUFFIXES = ("自治县", "县", "区", "市", "旗")


@dataclass
class Template:
    """A sample report prepared for rewriting: raw text, edits to make, and its planted facts."""

    name: str
    raw: str
    region: str  # the report's own region (simplified), e.g. 凉州区
    suffix: str
    region_spans: list[tuple[int, int, bool]] = field(default_factory=list)  # raw spans of the name; True = traditional
    numbers: list[tuple[int, int, int, int]] = field(default_factory=list)  # raw span, decimals, key of the value group
    groups: list[float] = field(default_factory=list)  # original (signed) value of each value group
    facts: list[tuple[dict, int | None]] = field(default_factory=list)  # gold fact, its value group (None: not perturbed)
    segments: list[tuple[int, int, bool]] = field(default_factory=list)  # raw sentence spans; True = filler


def _split_suffix(region: str) -> tuple[str, str]:
    for s in _SUFFIXES:
        if region.endswith(s) and len(region) > len(s) + 1:
            return region[: -len(s)], s
    return region, ""


def prepare(path: Path, all_short_names: set[str]) -> Template:
    """Locate the region name, the gold numbers and the filler sentences of one sample, in raw-text coordinates."""
    norm = normalize_report(path.read_bytes(), str(path))
    gold = [json.loads(line) for line in (GOLD / f"{path.stem}.jsonl").open(encoding="utf-8")]
    region = gold[0]["region"]
    short, suffix = _split_suffix(region)
    t = Template(path.name, norm.raw_text, region, suffix)
    for m in re.finditer(re.escape(short), norm.text):
        rs, re_ = norm.raw_span(m.start(), m.end())
        t.region_spans.append((rs, re_, norm.raw_text[rs:re_] != short))
    token_group: dict[int, int] = {}  # raw start of a number -> its value group
    group_of: dict[tuple[int, float], int] = {}  # (evidence position, value) -> value group
    for fact in gold:
        at = norm.text.find(fact["evidence"])
        if at < 0:
            continue
        group = None
        for m in _NUMBER.finditer(fact["evidence"]):
            if abs(float(m.group()) - abs(fact["value"])) > 1e-9:
                continue
            rs, re_ = norm.raw_span(at + m.start(), at + m.end())
            if _NUMBER.fullmatch(norm.raw_text[rs:re_]) is None:  # written differently in the raw text: leave it
                continue
            if rs not in token_group:
                key = group_of.setdefault((at, fact["value"]), len(t.groups))
                if key == len(t.groups):
                    t.groups.append(fact["value"])
                decimals = len(m.group().split(".")[1]) if "." in m.group() else 0
                t.numbers.append((rs, re_, decimals, key))
                token_group[rs] = key
            if group is None and t.groups[token_group[rs]] == fact["value"]:
                group = token_group[rs]
        t.facts.append((fact, group))
    edits = sorted([(a, b) for a, b, _ in t.region_spans] + [(a, b) for a, b, _, _ in t.numbers])
    pos = 0
    for part in _SENTENCE_END.split(norm.raw_text):
        start, end = pos, pos + len(part)
        pos = end
        if not part:
            continue
        filler = (not _DIGIT.search(part) and "年" not in part and not any(a < end and b > start for a, b in edits)
                  and not any(n in converter("t2s").convert(part) for n in all_short_names) and len(part.strip()) > 8)
        t.segments.append((start, end, filler))
    return t


class DivisionNames:
    """Short names of real divisions (seeds/regions.csv), dealt out per suffix, shuffled, each once before any twice.

    Why real ones: the extractor identifies a report's region against the divisions reference, so an
    invented name is not a region to it — the report would be filed under whatever known place it
    mentions (the template's parent city), thousands of reports under one region, and every
    cross-document check would compare them all with each other.
    """

    def __init__(self, rng: random.Random, suffixes: set[str]) -> None:
        with open(REGIONS, encoding="utf-8", newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r["status"] == "current"]
        times = Counter(r["name"] for r in rows)
        self.rng = rng
        self.names = {s: sorted({r["short"] for r in rows if times[r["name"]] == 1 and r["name"] == r["short"] + s
                                 and len(r["short"]) >= 2}) for s in suffixes}
        self.left: dict[str, list[str]] = {s: [] for s in suffixes}

    def next(self, suffix: str) -> str:
        """The next short name for a region ending in ``suffix``."""
        if not self.left[suffix]:
            self.left[suffix] = list(self.names[suffix])
            self.rng.shuffle(self.left[suffix])
        return self.left[suffix].pop()


def _perturb(value: float, decimals: int, rng: random.Random) -> float:
    """The value moved by up to ±15 %, same sign and number of decimals, never zero."""
    new = round(abs(value) * rng.uniform(0.85, 1.15), decimals)
    step = 10 ** -decimals
    new = max(new, step)
    return -new if value < 0 else new


def render(t: Template, stem: str, rng: random.Random, filler_pool: list[str]) -> tuple[str, list[dict]]:
    """One generated report from template ``t`` for region stem ``stem``, and its planted facts."""
    s2t = converter("s2t")
    values = [_perturb(v, max([n[2] for n in t.numbers if n[3] == k] or [1]), rng) for k, v in enumerate(t.groups)]
    edits: dict[int, tuple[int, str]] = {}
    for a, b, traditional in t.region_spans:
        edits[a] = (b, s2t.convert(stem) if traditional else stem)
    for a, b, decimals, key in t.numbers:
        edits[a] = (b, f"{abs(values[key]):.{decimals}f}")
    out: list[str] = []
    for start, end, filler in t.segments:
        if filler:
            roll = rng.random()
            if roll < 0.15:
                continue
            if roll < 0.45 and filler_pool:
                out.append(rng.choice(filler_pool))
                continue
        pos = start
        for a in sorted(k for k in edits if start <= k < end):
            b, text = edits[a]
            out.append(t.raw[pos:a])
            out.append(text)
            pos = b
        out.append(t.raw[pos:end])
    planted = []
    for fact, key in t.facts:
        f = dict(fact, region=stem + t.suffix)
        f["template_evidence"] = f.pop("evidence")  # as written in the template (numbers before perturbation)
        if key is not None:
            f["value"] = values[key]
            f["value_base"] = fact["value_base"] * values[key] / fact["value"] if fact["value"] else fact["value_base"]
        planted.append(f)
    return "".join(out), planted


def generate(n: int, out: Path, seed: int = 7) -> dict:
    """Write ``n`` reports and their planted facts under ``out``; return the manifest."""
    rng = random.Random(seed)
    paths = sorted(TEMPLATES.glob("*.txt"))
    shorts = set()
    for p in paths:
        region = json.loads((GOLD / f"{p.stem}.jsonl").open(encoding="utf-8").readline())["region"]
        shorts.add(_split_suffix(region)[0])
    templates = [prepare(p, shorts) for p in paths]
    pool = [t.raw[a:b] for t in templates for a, b, filler in t.segments if filler]
    names = DivisionNames(rng, {t.suffix for t in templates})
    (out / "reports").mkdir(parents=True, exist_ok=True)
    n_facts = n_bytes = 0
    with open(out / "planted.jsonl", "w", encoding="utf-8") as planted_file:
        for i in range(n):
            t = templates[i % len(templates)] if i < len(templates) else rng.choice(templates)
            stem = names.next(t.suffix)
            text, planted = render(t, stem, rng, pool)
            encoding = "gb18030" if rng.random() < 0.1 else "utf-8"
            data = text.encode(encoding)
            name = f"gen-{i:06d}-{stem}{t.suffix}.txt"
            (out / "reports" / name).write_bytes(data)
            doc_id = hashlib.sha256(data).hexdigest()
            for f in planted:
                f.update(file=name, doc_id=doc_id, template=t.name, encoding=encoding)
                planted_file.write(json.dumps(f, ensure_ascii=False) + "\n")
            n_facts += len(planted)
            n_bytes += len(data)
    manifest = dict(n=n, seed=seed, format=FORMAT, facts=n_facts, bytes=n_bytes, templates=[t.name for t in templates],
                    perturbed=sum(k is not None for t in templates for _, k in t.facts),
                    gold=sum(len(t.facts) for t in templates))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="reports to generate")
    ap.add_argument("--out", type=Path, required=True, help="output directory (reports/, planted.jsonl, manifest.json)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    t0 = time.perf_counter()
    m = generate(args.n, args.out, args.seed)
    print(f"{m['n']} reports ({m['bytes'] / 1e6:.1f} MB), {m['facts']} planted facts "
          f"({m['perturbed']} of the {m['gold']} template facts perturbed) in {time.perf_counter() - t0:.1f} s -> {args.out}")


if __name__ == "__main__":
    main()
