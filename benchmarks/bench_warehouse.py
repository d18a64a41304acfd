"""Warehouse benchmark: load throughput (facts/s) and view query latency at 1 million synthetic facts.

Run: ``.venv/bin/python benchmarks/bench_warehouse.py [--facts N] [--catalog sqlite|duckdb|postgres]
[--postgres-dsn DSN] [--repeat N] [--warehouse DIR]``.

What is measured, on a fresh warehouse (in a temp dir unless --warehouse):
- load: one ``load_batch`` of N synthetic facts (warehouse/synthetic.py: one document per
  region and report year, actuals and targets of every indicator) — one DuckLake
  transaction, i.e. what a run's load stage costs; then an incremental run that re-loads
  1% of the documents (delete + insert, one snapshot);
- query latency of ``indicator_panel`` (whole view; one region; one indicator in one year
  across all regions) and of ``targets_vs_actuals`` and a time-travel count, each the
  median and p95 of --repeat runs on a warm read-only connection; plus the cost of opening
  a connection (extension load with signature check + attach).
Generating the synthetic facts is timed separately and not part of any figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from transforms.settings import load_settings  # noqa: E402
from warehouse.catalog import connect  # noqa: E402
from warehouse.load import load_batch  # noqa: E402
from warehouse.synthetic import synthetic_batch  # noqa: E402

QUERIES = {
    "indicator_panel, whole view (count)": "SELECT count(*) FROM indicator_panel",
    "indicator_panel, one region": "SELECT * FROM indicator_panel WHERE region = '区00042'",
    "indicator_panel, gdp growth 2020, all regions": "SELECT region, actual, target FROM indicator_panel "
                                                     "WHERE indicator = 'gdp' AND measure = 'growth' AND period = '2020'",
    "targets_vs_actuals, whole view (count)": "SELECT count(*), count(actual), avg(gap) FROM targets_vs_actuals",
    "facts_published, count": "SELECT count(*) FROM facts_published",
}


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def latency(con, sql: str, repeat: int) -> tuple[float, float, int]:
    """(median ms, p95 ms, rows) of ``sql`` over ``repeat`` runs after one warm-up."""
    rows = len(con.execute(sql).fetchall())
    times = sorted(timed(lambda: con.execute(sql).fetchall()) * 1e3 for _ in range(repeat))
    return statistics.median(times), times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))], rows


def run(n_facts: int, settings, repeat: int) -> dict:
    """Load, reload 1%, query; return the figures (also printed)."""
    figures: dict = {}
    t0 = time.perf_counter()
    batch = synthetic_batch(n_facts, seed=0, run_id="bench")
    figures["generate_s"] = time.perf_counter() - t0
    n = batch.facts.num_rows
    print(f"synthetic: {n:,} facts in {batch.documents.num_rows:,} documents (generated in {figures['generate_s']:.1f} s, not counted)")

    t0, c0 = time.perf_counter(), time.process_time()
    first = load_batch(settings, batch)
    dt, ct = time.perf_counter() - t0, time.process_time() - c0
    figures.update(load_s=dt, load_facts_per_s=n / dt, load_cpu_s=ct, first_snapshot=first)
    print(f"load:      {n:,} facts in {dt:.2f} s = {n / dt:,.0f} facts/s (one transaction, snapshot {first}; "
          f"CPU {ct:.2f} s across DuckDB's threads)")

    all_docs = batch.documents.column("doc_id")
    redo = all_docs.slice(0, max(1, len(all_docs) // 100))  # an incremental run: 1% of the reports re-extracted
    facts = batch.facts.filter(pc.is_in(batch.facts.column("doc_id"), redo))
    facts = facts.set_column(facts.schema.get_field_index("value"), "value", pc.add(facts.column("value"), 0.1))
    batch.documents = batch.documents.filter(pc.is_in(all_docs, redo))
    batch.facts = facts
    batch.run = dict(batch.run, run_id="bench-incremental")
    t0 = time.perf_counter()
    second = load_batch(settings, batch)
    dt = time.perf_counter() - t0
    figures.update(reload_s=dt, reload_docs=len(redo), reload_facts=facts.num_rows)
    print(f"reload:    {len(redo):,} of {len(all_docs):,} documents ({facts.num_rows:,} facts replaced) in {dt:.2f} s (snapshot {second})")

    cold = sorted(timed(lambda: connect(settings, read_only=True, fresh=True).close()) * 1e3 for _ in range(5))
    warm = sorted(timed(lambda: connect(settings, read_only=True).close()) * 1e3 for _ in range(5))
    figures.update(connect_cold_ms=statistics.median(cold), connect_ms=statistics.median(warm))
    print(f"connect:   {figures['connect_cold_ms']:.0f} ms median to open a read-only session in a new process "
          f"(LOAD signed extensions + ATTACH); {figures['connect_ms']:.0f} ms for the next one in the same process")
    con = connect(settings, read_only=True)
    try:
        queries = dict(QUERIES, **{"time travel: facts AT (VERSION => first load), count":
                                   f"SELECT count(*) FROM facts AT (VERSION => {first})"})
        for label, sql in queries.items():
            med, p95, rows = latency(con, sql, repeat)
            figures[label] = (med, p95)
            print(f"query:     {label:<52} median {med:7.1f} ms  p95 {p95:7.1f} ms  ({rows:,} rows)")
    finally:
        con.close()
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--facts", type=int, default=1_000_000, help="synthetic facts to load (default 1,000,000)")
    ap.add_argument("--catalog", default="sqlite", choices=("sqlite", "duckdb", "postgres"))
    ap.add_argument("--postgres-dsn", default="", help="libpq DSN of an empty database for --catalog postgres "
                                                        "(default: start a throwaway PostgreSQL 15 server)")
    ap.add_argument("--repeat", type=int, default=10, help="runs per query (default 10)")
    ap.add_argument("--warehouse", type=Path, help="warehouse directory (default: a temp dir, removed afterwards)")
    args = ap.parse_args()
    tmp = None if args.warehouse else Path(tempfile.mkdtemp(prefix="govfacts-bench-"))
    warehouse = args.warehouse or tmp / "wh"
    server, dsn = None, args.postgres_dsn
    if args.catalog == "postgres" and not dsn:
        from tests.pg import start_server  # noqa: PLC0415 (a throwaway PostgreSQL 15 server, as in the tests)

        server = start_server()
        dsn = server.create_database()
    settings = load_settings(warehouse=warehouse, catalog=args.catalog, postgres_dsn=dsn, data_path="")
    print(f"warehouse: {warehouse} (catalog {args.catalog}{', throwaway server' if server else ''}); "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (figures are wall time: a busy machine inflates them)")
    try:
        run(args.facts, settings, args.repeat)
    finally:
        if server:
            server.pg_ctl("-m", "immediate", "stop")
            shutil.rmtree(server.root, ignore_errors=True)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
