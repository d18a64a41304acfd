"""Synthetic warehouse content with the shape of the real thing, for the benchmark and the load tests.

Why synthetic: the five sample reports give ~100 facts; the warehouse must be measured
at a million. The generator mimics the corpus: one document per (region, report year),
each stating last year's actuals (level and growth) and this year's growth targets for
the indicators of seeds/indicators.csv, so ``indicator_panel`` and ``targets_vs_actuals``
have real work to do (many regions, years, indicators; actuals and targets that join).
Values are random but plausible; evidence strings are short.
"""

from __future__ import annotations

import csv
import hashlib
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

from transforms.settings import SEEDS_DIR
from warehouse.load import LoadBatch

FIRST_REPORT_YEAR = 2015


def indicator_codes() -> list[str]:
    """Indicator codes of seeds/indicators.csv (the synthetic facts use the real codes)."""
    with open(SEEDS_DIR / "indicators.csv", encoding="utf-8", newline="") as fh:
        return [r["code"] for r in csv.DictReader(fh)]


def _ids(prefix: str, n: int, start: int = 0) -> pa.Array:
    return pa.array([hashlib.sha256(f"{prefix}{i}".encode()).hexdigest()[:16] for i in range(start, start + n)], pa.string())


def synthetic_batch(n_facts: int, seed: int = 0, run_id: str = "synthetic", report_years: int = 10,
                    doc_offset: int = 0) -> LoadBatch:
    """A LoadBatch of about ``n_facts`` facts in documents of ``3 * len(indicators)`` facts each.

    ``doc_offset`` shifts the document numbering, so two batches with different offsets
    hold different documents (a second run adding reports) and equal offsets the same
    documents (a re-run replacing them).
    """
    rng = np.random.default_rng(seed)
    codes = indicator_codes()
    per_doc = 3 * len(codes)  # actual level, actual growth (year Y-1), growth target (year Y)
    n_docs = max(1, -(-n_facts // per_doc))
    n_regions = max(1, n_docs // report_years)
    doc_index = np.arange(doc_offset, doc_offset + n_docs)
    region_of_doc = doc_index % n_regions if doc_offset == 0 else doc_index  # a re-numbered batch gets new regions
    year_of_doc = FIRST_REPORT_YEAR + (doc_index // max(1, n_regions)) % report_years
    doc_ids = _ids(f"doc-{seed}-", n_docs, doc_offset)
    regions = np.array([f"区{r:05d}" for r in region_of_doc])

    doc_rep = np.repeat(np.arange(n_docs), per_doc)
    slot = np.tile(np.arange(per_doc), n_docs)
    ind = np.array(codes)[slot % len(codes)]
    role = slot // len(codes)  # 0 level actual, 1 growth actual, 2 growth target
    n = doc_rep.size
    years = year_of_doc[doc_rep]
    value = np.where(role == 0, np.round(rng.uniform(10, 900, n), 2), np.round(rng.normal(6, 2.5, n), 1))
    measure = np.where(role == 0, "level", "growth")
    kind = np.where(role == 2, "target", "actual")
    period = np.where(role == 2, years, years - 1).astype(str)
    unit = np.where(role == 0, "亿元", "%")
    unit_base = np.where(role == 0, "CNY", "%")
    value_base = np.where(role == 0, value * 1e8, value)
    evidence = np.char.add(np.char.add(ind, " "), value.astype(str))
    start = (slot * 40).astype(np.int64)
    pipeline = "synthetic"
    facts = pa.table({
        "fact_id": _ids(f"fact-{seed}-{doc_offset}-", n),
        "doc_id": pa.array(np.asarray(doc_ids.to_pylist(), dtype=object)[doc_rep], pa.string()),
        "region": pa.array(regions[doc_rep]),
        "indicator": pa.array(ind),
        "measure": pa.array(measure),
        "value": pa.array(value),
        "unit": pa.array(unit),
        "value_base": pa.array(value_base),
        "unit_base": pa.array(unit_base),
        "period": pa.array(period),
        "kind": pa.array(kind),
        "qualifier": pa.array(np.where(role == 2, "左右", None), pa.string()),
        "evidence": pa.array(evidence),
        "start": pa.array(start),
        "end": pa.array(start + 30),
        "rule": pa.array(np.full(n, "synthetic")),
        "region_level": pa.array(np.full(n, "county")),
        "report_year": pa.array(years.astype(np.int64)),
        "preliminary": pa.array(np.zeros(n, dtype=bool)),
        "mojibake_overlap": pa.array(np.zeros(n, dtype=bool)),
        "pipeline_version": pa.array(np.full(n, pipeline)),
        "run_id": pa.array(np.full(n, run_id)),
        "dq_status": pa.array(np.where(rng.uniform(size=n) < 0.01, "error", "passed")),
        "dq_failed": pa.array(np.full(n, "")),
    })
    documents = pa.table({
        "doc_id": doc_ids,
        "source_path": pa.array([f"synthetic/{d}.txt" for d in doc_ids.to_pylist()]),
        "n_bytes": pa.array(np.full(n_docs, 40_000, dtype=np.int64)),
        "encoding": pa.array(np.full(n_docs, "utf-8")),
        "region": pa.array(regions),
        "region_level": pa.array(np.full(n_docs, "county")),
        "report_year": pa.array(year_of_doc.astype(np.int64)),
        "n_facts": pa.array(np.full(n_docs, per_doc, dtype=np.int64)),
        "pipeline_version": pa.array(np.full(n_docs, pipeline)),
        "run_id": pa.array(np.full(n_docs, run_id)),
    })
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    run = dict(run_id=run_id, flow_run_id=f"synthetic-{run_id}", started_at=now, finished_at=now, code_version=pipeline,
               inputs_manifest_hash=hashlib.sha256(f"{seed}-{doc_offset}-{n_docs}".encode()).hexdigest(),
               files_in=n_docs, documents=n_docs, files_quarantined=0, files_skipped=0, facts_extracted=n,
               facts_published=int((facts.column("dq_status").to_numpy(zero_copy_only=False) != "error").sum()),
               facts_quarantined=0, expectations_passed=0, expectations_failed=0)
    empty_text = pa.table({"doc_id": pa.array([], pa.string())})
    return LoadBatch(run=run, documents=documents, document_text=empty_text, facts=facts,
                     quarantine=pa.table({"item": pa.array([], pa.string())}), dq_results=pa.table({"run_id": pa.array([], pa.string())}))
