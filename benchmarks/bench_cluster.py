"""The team setup end to end: an external Dask cluster (``dask scheduler`` + ``dask worker`` ×N) with the PostgreSQL
catalog and an S3 data path (moto as the S3 server), against the default runner (threads, SQLite, local lake).

    python benchmarks/bench_cluster.py --n 300 [--workers 2]

Prints, per setup: wall time and reports/s, the share of the flow's wall time outside task bodies (threads
only: remote task bodies keep their own clocks), the peak RSS of the flow process and of each worker (process
tree, sampled every 0.2 s), the object-store requests by method (from the S3 server's access log) and the
catalog's peak connections (pg_stat_activity, sampled). The figures of docs/scaling.md come from this script.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.corpus import generate  # noqa: E402
from tests.pg import free_port, start_server  # noqa: E402

BIN = Path(sys.executable).parent


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


def run_flow(cwd: Path, env: dict, argv: list[str], sampler_pids: dict, pg=None, dsn: str = "") -> dict:
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
    seconds = float(re.search(r"│ time\s+│ ([\d.]+) s", out).group(1))
    return dict(wall=round(wall, 1), flow_seconds=seconds, peak_mb={k: round(v / 2**20) for k, v in sampler.peak.items()
                                                                    if k != "catalog_connections"},
                catalog_connections=sampler.peak.get("catalog_connections"))


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

    # 1. the default runner: threads, SQLite, local lake
    (tmp / "threads").mkdir()
    r = run_flow(tmp / "threads", dict(base, GOVFACTS_WAREHOUSE=str(tmp / "threads" / "wh")), ["--inbox", str(inbox)], {})
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
        cenv = dict(base, **aws)
        (tmp / "cluster").mkdir()
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
        time.sleep(8)
        env = dict(cenv, GOVFACTS_CATALOG="postgres", GOVFACTS_POSTGRES_DSN=dsn, GOVFACTS_DATA_PATH="s3://bench/lake/",
                   GOVFACTS_WAREHOUSE=str(tmp / "cluster" / "wh"))
        mark = (tmp / "moto.log").stat().st_size
        argv = ["--inbox", str(inbox), "--task-runner", "dask", "--dask-address", f"tcp://127.0.0.1:{sport}"]
        r = run_flow(tmp / "cluster", env, argv, workers, pg, dsn)
        reqs = (tmp / "moto.log").read_bytes()[mark:].decode(errors="replace")
        r["s3_requests"] = dict(Counter(m.group(1) + (" spill" if "lake-spill/" in m.group(2) else " lake")
                                        for m in re.finditer(r'"(GET|PUT|POST|DELETE|HEAD) (\S+)', reqs)))
        results["dask+postgres+s3"] = r
        print("dask+postgres+s3", json.dumps(r), flush=True)
        mark = (tmp / "moto.log").stat().st_size
        r = run_flow(tmp / "cluster", env, argv, workers, pg, dsn)
        r["s3_requests"] = dict(Counter(m.group(1) for m in re.finditer(r'"(GET|PUT|POST|DELETE|HEAD) ',
                                                                         (tmp / "moto.log").read_bytes()[mark:].decode(errors="replace"))))
        results["dask unchanged re-run"] = r
        print("dask unchanged re-run", json.dumps(r), flush=True)
    finally:
        for p in procs[1:]:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        moto.terminate()
        pg.pg_ctl("-m", "immediate", "stop")
    print(json.dumps(dict(n=args.n, workers=args.workers, load=os.getloadavg(), results=results), indent=1))


if __name__ == "__main__":
    main()
