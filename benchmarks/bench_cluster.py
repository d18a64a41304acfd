"""The team setup end to end: an external Dask cluster (``dask scheduler`` + ``dask worker`` ×N) with the PostgreSQL
catalog and an S3 data path (moto as the S3 server), against the default runner (threads, SQLite, local lake).

    python benchmarks/bench_cluster.py --n 300 [--workers 2]

Prints, per setup: wall time and reports/s, the share of the flow run's wall time outside task bodies and the
seconds of task runs by task name, the peak RSS of the flow process, of each worker and of the cluster's Prefect
server (process tree, sampled every 0.2 s), the object-store requests by method (from the S3 server's access log)
and the catalog's peak connections (pg_stat_activity, sampled). The figures of docs/scaling.md come from this script.

Both setups are timed the same way, from the Prefect server's own records of the run (its SQLite database):
the union of the task runs' [start, end] spans against the flow run's [start, end]. The threads runner records
into the run's embedded server (PREFECT_HOME of the run); for the cluster, the script runs ``prefect server
start`` and gives its PREFECT_API_URL to the flow process and to every ``dask worker``, so each task run, wherever
it ran, is in that one server (without it each worker starts a temporary server of its own, and the flow's own
clock, ``busy_seconds`` in the summary, sees only the task bodies of its own process).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.corpus import generate  # noqa: E402
from tests.pg import free_port, start_server  # noqa: E402

BIN = Path(sys.executable).parent
TERMINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")

Span = tuple[float, float]


# -- time inside and outside task bodies, from the Prefect server's records ------------------------------------


def union_seconds(spans: Iterable[Span]) -> float:
    """Seconds covered by at least one span: two task runs at once count once, so the union is wall time."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(spans):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def outside_share(flow: Span, spans: Iterable[Span]) -> float:
    """Share of the flow run's wall time in which no task run was running (spans clipped to the flow run).

    That time is orchestration in the flow's process: planning what to submit, submitting, waiting for a
    free worker or for a result to come back, the run's books — and, on a cluster, moving arguments and
    results between the flow and the workers before a task run starts or after it ends.
    """
    start, end = flow
    wall = end - start
    if wall <= 0:
        raise ValueError(f"flow run span {flow} has no length: the server has not recorded its end yet")
    clipped = [(max(a, start), min(b, end)) for a, b in spans if b > start and a < end]
    return 1.0 - union_seconds(clipped) / wall


def task_name(task_key: str) -> str:
    """The task's name from Prefect's task key (``transform-40b702a9`` → ``transform``: the hash is of its source)."""
    name, _, suffix = task_key.rpartition("-")
    return name if name and re.fullmatch(r"[0-9a-f]+", suffix) else task_key


def seconds_by_task(runs: Iterable[tuple[str, float, float]]) -> dict[str, dict]:
    """Task name → number of task runs and the sum of their durations (seconds of task runs, not of wall time:
    two at once count twice), largest first."""
    out: dict[str, dict] = {}
    for name, a, b in runs:
        row = out.setdefault(name, dict(runs=0, seconds=0.0))
        row["runs"] += 1
        row["seconds"] += b - a
    return {k: dict(runs=v["runs"], seconds=round(v["seconds"], 1))
            for k, v in sorted(out.items(), key=lambda kv: -kv[1]["seconds"])}


def _epoch(value: str | None) -> float | None:
    """A timestamp of Prefect's SQLite database (UTC, ISO text) as seconds; only differences are used."""
    return None if value is None else datetime.fromisoformat(value).timestamp()


def read_run(db: Path, flow_run_id: str) -> dict:
    """The flow run's state and [start, end], and its task runs' (name, state, start, end), from the server's database."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        row = con.execute("SELECT state_type, start_time, end_time FROM flow_run WHERE id = ?", (flow_run_id,)).fetchone()
        if row is None:
            return dict(state=None, flow=None, tasks=[])
        tasks = con.execute("SELECT task_key, state_type, start_time, end_time FROM task_run WHERE flow_run_id = ?",
                            (flow_run_id,)).fetchall()
    finally:
        con.close()
    return dict(state=row[0], flow=(_epoch(row[1]), _epoch(row[2])),
                tasks=[(task_name(k), st, _epoch(a), _epoch(b)) for k, st, a, b in tasks])


def wait_recorded(db: Path, flow_run_id: str, timeout: float = 120.0) -> dict:
    """``read_run`` once the server has recorded the whole run.

    Task runs reach the server as events, recorded by a service of the server after the fact: the
    flow run can be over before its last task runs are written. Recorded means the flow run and every
    task run are in a final state with an end time, and two reads a second apart agree.
    """
    deadline, last = time.monotonic() + timeout, None
    while True:
        run = read_run(db, flow_run_id)
        done = (run["state"] in TERMINAL and run["flow"][1] is not None
                and all(st in TERMINAL and b is not None for _, st, _, b in run["tasks"]))
        if done and run == last:
            return run
        if time.monotonic() > deadline:
            raise SystemExit(f"{db}: flow run {flow_run_id} not completely recorded after {timeout:.0f} s "
                             f"(flow run {run['state']}, {len(run['tasks'])} task runs); see the Prefect server's log")
        last = run if done else None
        time.sleep(1.0)


def task_time(db: Path, flow_run_id: str) -> dict:
    """Wall time of the flow run, the share of it outside task bodies, and the seconds of task runs by task name."""
    run = wait_recorded(db, flow_run_id)
    spans = [(a, b) for _, _, a, b in run["tasks"] if a is not None]
    wall = run["flow"][1] - run["flow"][0]
    return dict(flow_run_wall=round(wall, 2), task_runs=len(spans),
                inside_seconds=round(wall * (1 - outside_share(run["flow"], spans)), 2),
                outside_share=round(outside_share(run["flow"], spans), 4),
                by_task=seconds_by_task((n, a, b) for n, _, a, b in run["tasks"] if a is not None))


def start_prefect_server(home: Path) -> tuple[subprocess.Popen, str]:
    """``prefect server start`` on a free port of 127.0.0.1 (its database under ``home``), once it answers.

    The environment of ``govfacts serve``'s own server (flows/serve.py) without the UI: no analytics,
    file leases, the late-runs service off (on SQLite it fails with "database is locked" on busy minutes).
    """
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GOVFACTS_"))}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
               PREFECT_SERVER_UI_ENABLED="false", PREFECT_LOGGING_LEVEL="WARNING",
               PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE="prefect.server.concurrency.lease_storage.filesystem",
               PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED="false")
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port),
                             "--no-ui", "--analytics-off"], env=env, stdin=subprocess.DEVNULL,
                            stdout=open(home / "server.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"prefect server start exited with code {proc.returncode}; see {home / 'server.log'}")
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return proc, api
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit(f"the Prefect server did not answer at {api} within 180 s; see {home / 'server.log'}")


def tree_rss(pid: int) -> int:
    try:
        p = psutil.Process(pid)
        return sum(q.memory_info().rss for q in [p, *p.children(recursive=True)])
    except psutil.Error:
        return 0


class Sampler(threading.Thread):
    def __init__(self, pids: dict[str, int], pg=None, dsn: str = ""):
        super().__init__(daemon=True)
        self.pids, self.pg, self.dsn = pids, pg, dsn
        self.peak: Counter = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], tree_rss(pid))
            if self.pg is not None:
                try:
                    n = int(self.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()",
                                         dbname=self.dsn.split("dbname=")[1].split()[0]).strip()) - 1  # less this psql
                    self.peak["catalog_connections"] = max(self.peak["catalog_connections"], n)
                except Exception:  # noqa: BLE001
                    pass
            time.sleep(0.2)


def run_flow(cwd: Path, env: dict, argv: list[str], sampler_pids: dict, pg=None, dsn: str = "", prefect_db: Path | None = None) -> dict:
    """One ``govfacts run`` as a user runs it; its summary's figures, peak memory, and (given the Prefect server's
    database) its task time as the server recorded it."""
    proc = subprocess.Popen([sys.executable, "-m", "govfacts.cli", "run", *argv], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = Sampler({**sampler_pids, "flow": proc.pid}, pg, dsn)
    sampler.start()
    t0 = time.perf_counter()
    out = proc.communicate()[0]
    wall = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(out[-4000:])
    times = re.search(r"│ time\s+│ ([\d.]+) s wall(?:.*?flow ([\d.]+) s)?", out)
    flow_run = re.search(r"\(flow run ([0-9a-f-]{36})\)", out)
    r = dict(wall=round(wall, 1), command_seconds=float(times.group(1)),
             flow_seconds=float(times.group(2)) if times.group(2) else None,
             documents=int(re.search(r"│ documents loaded\s+│ (\d+)", out).group(1)),
             flow_run_id=flow_run.group(1) if flow_run else None,
             time_row=re.search(r"│ time\s+│ (.*?)\s*│", out).group(1),  # the command's own split: start-up, flow, report
             peak_mb={k: round(v / 2**20) for k, v in sampler.peak.items() if k != "catalog_connections"},
             catalog_connections=sampler.peak.get("catalog_connections"))
    if prefect_db is not None and r["flow_run_id"]:
        r.update(task_time(prefect_db, r["flow_run_id"]))
        r["reports_per_s"] = round(r["documents"] / r["flow_run_wall"], 1)
        batches = int(re.search(r"\((\d+) batch", out).group(1))
        recorded = r["by_task"].get("transform", {}).get("runs", 0)
        if recorded != batches:  # a task run the server never recorded would shrink the union silently
            r["warning"] = f"the server recorded {recorded} transform task runs of the run's {batches} batches"
            print(f"WARNING: {r['warning']} ({prefect_db})", flush=True)
    return r


def describe(name: str, r: dict) -> str:
    """The run's figures in two lines: throughput and time outside task bodies, then where the task time went."""
    if "outside_share" not in r:
        return f"{name:18} {r['wall']:.1f} s command, no flow run"
    tasks = ", ".join(f"{k} {v['seconds']:.1f} s ({v['runs']})" for k, v in r["by_task"].items())
    return (f"{name:18} {r['documents']:,} reports: flow run {r['flow_run_wall']:.1f} s = {r['reports_per_s']:.1f} reports/s "
            f"(whole command {r['wall']:.1f} s: {r['time_row']}); outside task bodies {100 * r['outside_share']:.1f} % "
            f"({r['task_runs']} task runs, busy {r['inside_seconds']:.1f} s)\n"
            f"{'':18} task-run seconds by task (runs): {tasks}" + (f"\n{'':18} WARNING: {r['warning']}" if "warning" in r else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=50)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="govfacts-bench-cluster-"))
    generate(args.n, tmp / "corpus")
    inbox = tmp / "corpus" / "reports"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GOVFACTS_", "AWS_", "PREFECT_"))}
    base.update(COLUMNS="250", GOVFACTS_BATCH_SIZE=str(args.batch_size))
    results = {}
    started = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    load_at_start = os.getloadavg()

    # 1. the default runner: threads, SQLite, local lake; its task runs recorded by the run's embedded server
    (tmp / "threads").mkdir()
    home = tmp / "threads" / ".prefect"
    r = run_flow(tmp / "threads", dict(base, GOVFACTS_WAREHOUSE=str(tmp / "threads" / "wh"), PREFECT_HOME=str(home)),
                 ["--inbox", str(inbox)], {}, prefect_db=home / "prefect.db")
    results["threads"] = r
    print("threads", json.dumps(r), flush=True)

    # 2. the team setup
    port = free_port()
    log = open(tmp / "moto.log", "wb")
    moto = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    pg = start_server()
    procs = [moto]
    try:
        time.sleep(3)
        import boto3  # noqa: PLC0415

        aws = dict(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench-secret", AWS_REGION="us-east-1",
                   AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")
        boto3.client("s3", endpoint_url=aws["AWS_ENDPOINT_URL"], aws_access_key_id="bench", aws_secret_access_key="bench-secret",
                     region_name="us-east-1").create_bucket(Bucket="bench")
        dsn = pg.create_database()
        sport = free_port()
        (tmp / "cluster").mkdir()
        # one Prefect server for the flow and every worker: all task runs of the run recorded in one place
        server, api = start_prefect_server(tmp / "prefect-server")
        procs.append(server)
        prefect = dict(PREFECT_API_URL=api, PREFECT_HOME=str(tmp / "cluster" / ".prefect"), PREFECT_LOGGING_LEVEL="WARNING",
                       PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
        cenv = dict(base, **aws, **prefect)
        sched = subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(sport), "--no-dashboard"],
                                 cwd=tmp / "cluster", env=cenv, stdout=open(tmp / "cluster" / "scheduler.log", "wb"),
                                 stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(sched)
        workers = {}
        for i in range(args.workers):
            w = subprocess.Popen([str(BIN / "dask"), "worker", f"tcp://127.0.0.1:{sport}", "--nthreads", "1", "--no-dashboard",
                                  "--name", f"w{i}"], cwd=tmp / "cluster", env=cenv, stdout=open(tmp / "cluster" / f"w{i}.log", "wb"),
                                 stderr=subprocess.STDOUT, start_new_session=True)
            procs.append(w)
            workers[f"worker{i}"] = w.pid
        watched = dict(workers, prefect_server=server.pid)
        time.sleep(8)
        env = dict(cenv, GOVFACTS_CATALOG="postgres", GOVFACTS_POSTGRES_DSN=dsn, GOVFACTS_DATA_PATH="s3://bench/lake/",
                   GOVFACTS_WAREHOUSE=str(tmp / "cluster" / "wh"))
        mark = (tmp / "moto.log").stat().st_size
        argv = ["--inbox", str(inbox), "--task-runner", "dask", "--dask-address", f"tcp://127.0.0.1:{sport}"]
        r = run_flow(tmp / "cluster", env, argv, watched, pg, dsn, prefect_db=tmp / "prefect-server" / "prefect.db")
        reqs = (tmp / "moto.log").read_bytes()[mark:].decode(errors="replace")
        r["s3_requests"] = dict(Counter(m.group(1) + (" spill" if "lake-spill/" in m.group(2) else " lake")
                                        for m in re.finditer(r'"(GET|PUT|POST|DELETE|HEAD) (\S+)', reqs)))
        results["dask+postgres+s3"] = r
        print("dask+postgres+s3", json.dumps(r), flush=True)
        mark = (tmp / "moto.log").stat().st_size
        r = run_flow(tmp / "cluster", env, argv, watched, pg, dsn, prefect_db=tmp / "prefect-server" / "prefect.db")
        r["s3_requests"] = dict(Counter(m.group(1) for m in re.finditer(r'"(GET|PUT|POST|DELETE|HEAD) ',
                                                                         (tmp / "moto.log").read_bytes()[mark:].decode(errors="replace"))))
        results["dask unchanged re-run"] = r
        print("dask unchanged re-run", json.dumps(r), flush=True)
    finally:
        for p in reversed(procs[1:]):  # workers, scheduler, then the Prefect server they report to
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        moto.terminate()
        pg.pg_ctl("-m", "immediate", "stop")
    print(json.dumps(dict(n=args.n, workers=args.workers, started=started, cpus=os.cpu_count(), load_at_start=load_at_start,
                          load_at_end=os.getloadavg(), results=results), indent=1))
    print(f"== {args.n:,} reports, {args.workers} Dask workers, batches of {args.batch_size}; started {started} on "
          f"{os.cpu_count()} CPUs (load average at start {load_at_start[0]:.1f}, at end {os.getloadavg()[0]:.1f})")
    for name, r in results.items():
        print(describe(name, r))


if __name__ == "__main__":
    main()
