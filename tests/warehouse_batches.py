"""Crafted LoadBatches for the warehouse tests, and a child-process entry point that loads one.

``make_batch`` builds the Arrow tables a run hands to ``load_batch`` from a few fact
dicts, so a test can say exactly which facts a "run" produced. ``python -m
tests.warehouse_batches synthetic N SEED`` loads a synthetic batch in a separate
process (the SIGKILL and concurrency tests need a real second process); it opens the
warehouse named by GOVFACTS_WAREHOUSE / GOVFACTS_CATALOG / GOVFACTS_POSTGRES_DSN.
"""

from __future__ import annotations

import hashlib
import sys
from datetime import datetime, timezone

import pyarrow as pa

from warehouse.load import LoadBatch

UNIT_FACTOR = {"亿元": (1e8, "CNY"), "万元": (1e4, "CNY"), "%": (1.0, "%")}
DEFAULTS = dict(region="凉州区", region_level="district", indicator="gdp", measure="growth", unit="%", period="2023",
                kind="actual", qualifier=None, report_year=2024, preliminary=False, mojibake_overlap=False,
                dq_status="passed", dq_failed="", rule="test")


def fact(doc_id: str, value: float, start: int, **fields) -> dict:
    """One fact row with defaults filled in; value_base, evidence, end and fact_id are derived."""
    row = dict(DEFAULTS, doc_id=doc_id, value=float(value), start=start, **fields)
    factor, base = UNIT_FACTOR[row["unit"]]
    row.setdefault("value_base", row["value"] * factor)
    row.setdefault("unit_base", base)
    row.setdefault("evidence", f"{row['region']}{row['period']}年{row['indicator']} {row['measure']} {row['value']:g}{row['unit']}")
    row.setdefault("end", start + len(row["evidence"]))
    key = "|".join(str(row[k]) for k in ("doc_id", "indicator", "measure", "period", "kind", "start", "end", "value"))
    row.setdefault("fact_id", hashlib.sha256(key.encode()).hexdigest()[:16])
    return row


def make_batch(run_id: str, facts: list[dict], docs: list[str] | None = None, version: str = "v1") -> LoadBatch:
    """A run that (re)loads the documents ``docs`` (default: those the facts name) with exactly ``facts``."""
    doc_ids = docs if docs is not None else sorted({f["doc_id"] for f in facts})
    first = {d: next((f for f in facts if f["doc_id"] == d), DEFAULTS) for d in doc_ids}
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    rows = [dict(f, pipeline_version=version, run_id=run_id) for f in facts]
    documents = [dict(doc_id=d, source_path=f"inbox/{d}.txt", source_names=f'["{d}.txt"]', n_bytes=1000, encoding="utf-8",
                      region=first[d]["region"], region_level=first[d]["region_level"], report_year=first[d]["report_year"],
                      n_facts=sum(f["doc_id"] == d for f in facts), pipeline_version=version, run_id=run_id) for d in doc_ids]
    texts = [dict(doc_id=d, text=" ".join(f["evidence"] for f in facts if f["doc_id"] == d), raw_text="") for d in doc_ids]
    run = dict(run_id=run_id, flow_run_id=f"flow-{run_id}", started_at=now, finished_at=now, code_version=version,
               inputs_manifest_hash=hashlib.sha256(",".join(doc_ids).encode()).hexdigest(), files_in=len(doc_ids),
               documents=len(doc_ids), files_quarantined=0, files_skipped=0, facts_extracted=len(facts),
               facts_published=sum(f["dq_status"] != "error" for f in facts),
               facts_quarantined=sum(f["dq_status"] == "error" for f in facts), expectations_passed=1, expectations_failed=0)
    return LoadBatch(run=run, documents=pa.Table.from_pylist(documents), document_text=pa.Table.from_pylist(texts),
                     facts=pa.Table.from_pylist(rows) if rows else pa.table({"fact_id": pa.array([], pa.string())}),
                     quarantine=pa.table({"item": pa.array([], pa.string())}),
                     dq_results=pa.table({"run_id": pa.array([], pa.string())}))


def _load(argv: list[str]) -> int:
    """``synthetic N SEED [DOC_OFFSET]``: load a synthetic batch into the warehouse of the environment."""
    from transforms.settings import load_settings
    from warehouse.load import load_batch
    from warehouse.synthetic import synthetic_batch

    n, seed, *rest = argv
    batch = synthetic_batch(int(n), seed=int(seed), run_id=f"child-{seed}", doc_offset=int(rest[0]) if rest else 0)
    import time

    print(f"loading {time.time()}", flush=True)
    snapshot = load_batch(load_settings(), batch)
    print(f"snapshot {snapshot} {time.time()}", flush=True)
    return 0


READER_SQL = "SELECT (SELECT count(*) FROM facts_published), (SELECT count(*) FROM documents), (SELECT count(*) FROM runs)"


def _read(argv: list[str]) -> int:
    """``reader STOPFILE``: query facts_published in a loop until STOPFILE exists; print one JSON line per query.

    Like a researcher's tool during a scheduled run: a session that stays open, plus a new
    session every few queries, every other one on an instance of its own (attaching mid-load).
    """
    import json
    import time
    from pathlib import Path

    import duckdb

    from transforms.settings import load_settings
    from warehouse.catalog import connect

    stop = Path(argv[0])
    settings = load_settings()
    con, n = None, 0
    while not stop.exists():
        t0 = time.time()
        try:
            if con is None or n % 4 == 0:
                if con is not None:
                    con.close()
                con = connect(settings, read_only=True, fresh=n % 8 == 0)
            row = list(con.execute(READER_SQL).fetchone())
            print(json.dumps({"t0": t0, "t1": time.time(), "counts": row}), flush=True)
        except duckdb.Error as exc:
            print(json.dumps({"t0": t0, "t1": time.time(), "error": str(exc)}), flush=True)
            con = None
        n += 1
    return 0


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    sys.exit({"synthetic": _load, "reader": _read}[command](args))
