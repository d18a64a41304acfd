"""The whole flow at scale: 1,000 and 10,000 generated reports, end to end, beside a bare loop — from one run.

    .venv/bin/python benchmarks/bench_flow.py [--sizes 1000 10000] [--work DIR] [--task-runner threads]
                                              [--batch-size N] [--max-workers N]

For each size: generate the corpus (benchmarks/corpus.py; not timed), then, each in a fresh
process so peak memory is its own,
  1. the bare loop: read + sha256 + decode/normalize + extract over the same files, plain
     Python in one thread, no Prefect, no warehouse;
  2. the flow, first run, into an empty warehouse (Prefect's ephemeral server, started
     before the clock so both runs pay the same);
  3. the flow again on the unchanged inbox;
and check the planted facts against the warehouse (recall at scale).

Printed per size: documents/s, wall seconds, peak RSS of the flow process, of its helper
processes and of both at the same moment (also as PSS, which counts a page the processes
share — the Python, Arrow and DuckDB libraries — once, not once per process), and of the
Prefect server; seconds per stage (wall inside task bodies; the transform workers' own
wall time, summed over the workers, for normalize and extract), the share of the flow's wall
time in orchestration (no task body working: submitting, state changes, waiting), the
ratio flow / bare loop, the ratio re-run / first run, and recall of the planted facts.
Goals (issue 16): the flow on the default runner (threads, 2 cores: it transforms in worker
processes and validates in a process of its own) ≤ 1.0× the bare loop's wall time at 10,000
reports and ≤ 1.2× at 1,000; an unchanged re-run ≤ 5 % of the first run; peak memory — the
flow process and its helper processes at the same moment, the Prefect server beside it — ≤ 1 GB.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# -- roles run in child processes ----------------------------------------------------------------


class PeakRSS:
    """Samples this process's RSS every 50 ms (ru_maxrss also counts the import-time peak; this is the run's)."""

    def __init__(self) -> None:
        import psutil  # noqa: PLC0415

        self.proc, self.peak, self.samples, self.workers_peak = psutil.Process(), 0, [], 0
        self.total_peak = 0  # flow process and workers together, sampled at the same moment
        self.pss_peak = 0  # the same in PSS (a page shared by n processes counts 1/n in each: libraries counted once), near the RSS peak
        self._server: dict[int, bool] = {}  # pid -> whether it is the Prefect server (not counted with the workers)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil  # noqa: PLC0415

        t0, tick, children = time.perf_counter(), 0, []
        while not self._stop.wait(0.05):
            tick += 1
            rss = self.proc.memory_info().rss
            self.peak = max(self.peak, rss)
            self.samples.append((round(time.perf_counter() - t0, 2), rss))
            workers, mine = 0, [self.proc.pid]
            if tick % 5 == 1:  # finding the children reads /proc/*/stat of every process: every 0.25 s, not every sample
                children = self.proc.children(recursive=True)
            for c in children:
                try:
                    if c.pid not in self._server:  # a process's command line is read once (this sampler runs in the flow's process)
                        self._server[c.pid] = "uvicorn" in " ".join(c.cmdline())
                    if not self._server[c.pid]:
                        workers += c.memory_info().rss
                        mine.append(c.pid)
                except (psutil.NoSuchProcess, psutil.AccessDenied):  # a worker that just exited: nothing to count
                    continue
            self.workers_peak = max(self.workers_peak, workers)
            self.total_peak = max(self.total_peak, rss + workers)
            # PSS walks every page table of every process (≈5 % of a core at 10,000 reports when read every 0.5 s, taken
            # from the cores the flow runs on): read every 0.5 s while the RSS sum is near its peak so far, else every 2.5 s
            near_peak = rss + workers >= 0.9 * self.total_peak
            if tick % 10 == 0 and (near_peak or tick % 50 == 0):
                self.pss_peak = max(self.pss_peak, sum(_pss(pid) for pid in mine))

    def __enter__(self) -> "PeakRSS":
        self.peak = self.proc.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _pss(pid: int) -> int:
    """Proportional set size of a process in bytes (0 when it is gone): its private pages plus its share of shared ones."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("Pss:"))
    except (OSError, StopIteration, ValueError):
        return 0


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def role_bare(corpus: Path) -> dict:
    """decode + normalize + extract over every file, in plain Python."""
    from transforms.errors import InputRejected  # noqa: PLC0415
    from transforms.extract import extract_document  # noqa: PLC0415
    from transforms.normalize import normalize_report  # noqa: PLC0415

    files = sorted((corpus / "reports").iterdir())
    normalize_report(files[0].read_bytes(), str(files[0]))  # warm-up: OpenCC dictionaries, seeds (the flow pays them too)
    docs = facts = 0
    with PeakRSS() as rss:
        t0, c0 = time.perf_counter(), _cpu()
        for p in files:
            data = p.read_bytes()
            try:
                norm = normalize_report(data, str(p))
            except InputRejected:
                continue
            facts += len(extract_document(norm, hashlib.sha256(data).hexdigest()))
            docs += 1
        seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    return dict(seconds=seconds, cpu=cpu, documents=docs, facts=facts, peak_rss=rss.peak)


def role_flow(corpus: Path, warehouse: Path, home: Path, options: dict) -> dict:
    """One run of the real flow (Prefect engine, task runner from the settings, DuckLake load)."""
    import psutil  # noqa: PLC0415

    from govfacts.prefect_env import configure_prefect  # noqa: PLC0415

    configure_prefect(home)
    for k, v in options.items():
        if v is not None:
            os.environ[f"GOVFACTS_{k.upper()}"] = str(v)
    from prefect.client.orchestration import get_client  # noqa: PLC0415

    from flows.ingest import flow_for, ingest  # noqa: PLC0415
    from transforms.settings import load_settings  # noqa: PLC0415

    with get_client(sync_client=True) as client:  # start the ephemeral API server before the clock
        client.hello()
    me = psutil.Process()
    servers = [c for c in me.children(recursive=True) if "uvicorn" in " ".join(c.cmdline())]
    server_cpu0 = sum(sum(s.cpu_times()[:2]) for s in servers)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers_cpu0 = r0.ru_utime + r0.ru_stime
    baseline = me.memory_info().rss
    with PeakRSS() as rss:
        t0, c0 = time.perf_counter(), _cpu()
        summary = flow_for(load_settings())(inbox=str(corpus / "reports"), warehouse=str(warehouse))  # as `govfacts run` runs it
        seconds, cpu = time.perf_counter() - t0, _cpu() - c0
    server_rss = max((s.memory_info().rss for s in servers), default=0)
    server_cpu = sum(sum(s.cpu_times()[:2]) for s in servers) - server_cpu0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # worker processes that have exited (process pool, local Dask)
    workers_cpu = children.ru_utime + children.ru_stime - workers_cpu0
    keep = ("documents", "skipped", "facts_extracted", "facts_published", "facts_quarantined", "batches", "task_runner",
            "seconds", "busy_seconds", "stage_seconds", "changed", "snapshot_id", "files_quarantined")
    from govfacts.version import pipeline_version  # noqa: PLC0415

    return dict(wall=seconds, cpu=cpu, peak_rss=rss.peak, baseline_rss=baseline, version=pipeline_version(),
                workers_cpu=workers_cpu, workers_rss=rss.workers_peak, total_rss=rss.total_peak, total_pss=rss.pss_peak,
                source=str(Path(ingest.fn.__code__.co_filename).parent.parent), server_rss=server_rss, server_cpu=server_cpu,
                rss_timeline=rss.samples[:: max(1, len(rss.samples) // 40)], **{k: summary[k] for k in keep})


def recall(corpus: Path, warehouse: Path) -> dict:
    """Share of the planted facts found in the warehouse (same document, indicator, measure, period, kind and value)."""
    from transforms.settings import load_settings  # noqa: PLC0415
    from warehouse.catalog import connect  # noqa: PLC0415

    import pyarrow as pa  # noqa: PLC0415

    keys = ("doc_id", "region", "indicator", "measure", "period", "kind", "value")
    with open(corpus / "planted.jsonl", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    planted = pa.table({k: [str(r[k]) if k == "period" else r[k] for r in rows] for k in keys})
    con = connect(load_settings(warehouse=warehouse), read_only=True)
    try:
        con.register("planted", planted)
        n, found, region = con.execute(
            """SELECT count(*), count(*) FILTER (WHERE hit), count(*) FILTER (WHERE region_ok) FROM (
                 SELECT p.doc_id, p.indicator, p.measure, p.period, p.kind, p.value,
                        bool_or(abs(f.value - p.value) <= 1e-6 * greatest(1, abs(p.value))) AS hit,
                        bool_or(abs(f.value - p.value) <= 1e-6 * greatest(1, abs(p.value)) AND f.region = p.region) AS region_ok
                 FROM planted p LEFT JOIN wh.facts f
                   ON f.doc_id = p.doc_id AND f.indicator = p.indicator AND f.measure = p.measure
                  AND f.period = p.period AND f.kind = p.kind
                 GROUP BY ALL)""").fetchone()
    finally:
        con.close()
    return dict(planted=n, found=found or 0, region_ok=region or 0, recall=(found or 0) / n if n else None)


# -- the parent ------------------------------------------------------------------------------------


SOURCES = ("transforms", "expectations", "flows", "govfacts", "warehouse", "seeds", "benchmarks", "tests/gold")


def freeze(work: Path) -> Path:
    """A copy of the code and seeds to benchmark, so edits made meanwhile do not change the pipeline version.

    Children run with it first on PYTHONPATH (ahead of the editable install), so the re-run
    sees exactly the code — and the pipeline_version — of the first run.
    """
    import shutil  # noqa: PLC0415

    src = work / "src"
    shutil.rmtree(src, ignore_errors=True)
    for part in SOURCES:
        shutil.copytree(ROOT / part, src / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return src


_SRC: Path | None = None


def _child(role: str, *args: str) -> dict:
    src = _SRC or ROOT
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, str(src / "benchmarks" / "bench_flow.py"), "--role", role, *args],
                         capture_output=True, text=True, cwd=src, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child {role} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _corpus(work: Path, n: int, seed: int) -> tuple[Path, dict]:
    from benchmarks.corpus import FORMAT, generate  # noqa: PLC0415

    d = work / f"corpus-{n}"
    manifest = d / "manifest.json"
    if manifest.exists():
        m = json.loads(manifest.read_text())
        if m.get("n") == n and m.get("seed") == seed and m.get("format") == FORMAT:
            return d, m
    import shutil  # noqa: PLC0415

    shutil.rmtree(d, ignore_errors=True)
    return d, generate(n, d, seed)


def _mb(b: float) -> str:
    return f"{b / 2 ** 20:,.0f} MB"


def bench(n: int, work: Path, options: dict, runners: list[str], seed: int) -> dict:
    import shutil  # noqa: PLC0415

    t0 = time.perf_counter()
    corpus, manifest = _corpus(work, n, seed)
    gen = time.perf_counter() - t0
    out = dict(n=n, corpus=manifest, generate_seconds=gen, bare=_child("bare", str(corpus)), runs={})
    for runner in runners:
        wh, home = work / f"warehouse-{n}-{runner}", work / f"prefect-{n}-{runner}"
        shutil.rmtree(wh, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
        opts = json.dumps(dict(options, task_runner=runner))
        first = _child("flow", str(corpus), str(wh), str(home), opts)
        again = _child("flow", str(corpus), str(wh), str(home), opts)
        out["runs"][runner] = dict(first=first, rerun=again, recall=recall(corpus, wh))
    return out


def _ratio_goal(n: int) -> str:
    """Issue 16's goal for the flow / bare-loop wall-time ratio at ``n`` reports."""
    return "1.0" if n >= 10000 else "1.2"


def report(r: dict) -> str:
    n, bare = r["n"], r["bare"]
    lines = [
        f"== {n:,} reports ({r['corpus']['bytes'] / 1e6:,.0f} MB, {r['corpus']['facts']:,} planted facts; generated in {r['generate_seconds']:.0f} s)",
        f"bare loop        {bare['seconds']:8.1f} s  {bare['documents'] / bare['seconds']:7.1f} docs/s  CPU {bare['cpu']:.1f} s  "
        f"peak RSS {_mb(bare['peak_rss'])}  facts {bare['facts']:,}",
    ]
    for runner, x in r["runs"].items():
        first, again, rec = x["first"], x["rerun"], x["recall"]
        stages = ", ".join(f"{k} {v[0]:.1f}" for k, v in sorted(first["stage_seconds"].items(), key=lambda kv: -kv[1][0]))
        orch = 1 - first["busy_seconds"] / first["seconds"] if first["seconds"] and first["stage_seconds"].get("transform", first["stage_seconds"].get("extract")) else None
        cpu = first["cpu"] + first["workers_cpu"]
        lines += [
            f"-- task runner: {runner} ({first['task_runner']}, {first['batches']} batches)",
            f"flow, 1st run    {first['wall']:8.1f} s  {first['documents'] / first['wall']:7.1f} docs/s  CPU {cpu:.1f} s (+ Prefect server {first['server_cpu']:.1f} s)  "
            f"facts {first['facts_extracted']:,}",
            f"  peak RSS       flow process {_mb(first['peak_rss'])} (at start {_mb(first['baseline_rss'])})"
            + (f", workers {_mb(first['workers_rss'])}; together at most {_mb(first['total_rss'])} at once "
               f"(PSS, shared pages once: {_mb(first['total_pss'])})" if first["workers_rss"] else "")
            + f"; Prefect server {_mb(first['server_rss'])} (goal: together ≤ 1 GB)",
            f"  stages (s)     {stages}" if stages else "  stages (s)     (tasks ran in worker processes: timed there, not here)",
            f"  orchestration  {100 * orch:5.1f} % of the flow's wall time (no task body working)" if orch is not None else "",
            f"flow / bare      {first['wall'] / bare['seconds']:8.2f} x wall, {cpu / bare['cpu']:.2f} x CPU   (goal ≤ {_ratio_goal(n)})",
            f"re-run           {again['wall']:8.1f} s  = {100 * again['wall'] / first['wall']:.1f} % of the first run (goal ≤ 5 %); "
            f"documents {again['documents']}, changed {again['changed']}, peak RSS {_mb(again['peak_rss'])}",
            f"recall           {rec['found']:,} / {rec['planted']:,} planted facts = {100 * (rec['recall'] or 0):.2f} %  "
            f"(with the right region: {rec['region_ok']:,})",
        ]
    return "\n".join(line for line in lines if line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--work", type=Path, default=Path("/tmp/govfacts-bench"), help="corpora, warehouses, Prefect homes")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--task-runners", nargs="+", default=["threads", "processes"], help="runners to compare (threads, processes, dask)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--max-workers", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write the raw figures here")
    ap.add_argument("--role", default=None, help=argparse.SUPPRESS)
    args, rest = ap.parse_known_args()
    if args.role == "bare":
        print(json.dumps(role_bare(Path(rest[0]))))
        return
    if args.role == "flow":
        print(json.dumps(role_flow(Path(rest[0]), Path(rest[1]), Path(rest[2]), json.loads(rest[3]))))
        return
    options = dict(batch_size=args.batch_size, max_workers=args.max_workers)
    args.work.mkdir(parents=True, exist_ok=True)
    results = []
    global _SRC
    _SRC = freeze(args.work)
    print(f"govfacts flow benchmark · {os.cpu_count()} CPUs · load average {os.getloadavg()[0]:.1f} at start · code frozen in {_SRC}", flush=True)
    for n in args.sizes:
        r = bench(n, args.work, options, args.task_runners, args.seed)
        results.append(r)
        print(report(r), flush=True)
    if len(results) > 1:
        a, b = results[0], results[-1]
        for runner in args.task_runners:
            pa_, pb = (max(x["runs"][runner]["first"]["peak_rss"], x["runs"][runner]["first"]["total_rss"]) for x in (a, b))
            print(f"== memory vs corpus size ({runner}): peak RSS {_mb(pa_)} at {a['n']:,} -> {_mb(pb)} at {b['n']:,} "
                  f"({pb / pa_:.2f}x for {b['n'] / a['n']:.0f}x the reports; flow process and workers at the same moment)")
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
