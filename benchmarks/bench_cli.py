"""The command line as a user times it: `govfacts run` cold, an unchanged re-run, `govfacts sql` (issue 15's goals).

Goals: `govfacts run` on the five bundled samples <= 10 s wall from a cold start (a fresh process, an empty
warehouse, a fresh PREFECT_HOME); an unchanged re-run <= 3 s; `govfacts sql` <= 0.5 s.

Every figure is the wall time of `.venv/bin/govfacts ...` as a subprocess (what `time govfacts ...` shows), with the
CPU seconds of the command and everything it started (Prefect's server included) beside it: on a shared machine the
wall time depends on the load (printed), the CPU time much less. Each round uses a new directory: fresh warehouse,
fresh PREFECT_HOME. The parts of a cold run come from its own summary line (start-up, of which waiting for Prefect's
server, flow, report); the costs behind them are measured alone: the interpreter, the CLI's imports, Prefect's server
from launch to its first answer (new and existing database), the Great Expectations import.

    .venv/bin/python benchmarks/bench_cli.py [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOVFACTS = Path(sys.executable).parent / "govfacts"  # run with .venv/bin/python: the venv's own govfacts
PYTHON = Path(sys.executable)
GOALS = {"run, cold": 10.0, "run, unchanged": 3.0, "sql": 0.5}
_TIME_ROW = re.compile(r"([\d.]+) s wall: start-up ([\d.]+) s(?: \(waiting for Prefect's server ([\d.]+) s\))?, "
                       r"flow ([\d.]+) s, report ([\d.]+) s")


def user_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: none of our own settings, a wide terminal for the summary table."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GOVFACTS_"))}
    env.update(COLUMNS="250", **extra)
    return env


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the process and its children, stdout) of one command; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    got = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if got.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv))} failed ({got.returncode}):\n{got.stdout[-2000:]}\n{got.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, got.stdout


def parts(stdout: str) -> dict[str, float]:
    """The parts a run's summary reports (seconds)."""
    m = _TIME_ROW.search(" ".join(stdout.replace("│", " ").split()))
    if not m:
        return {}
    wall, startup, waited, flow, report = m.groups()
    return {"said wall": float(wall), "start-up": float(startup), "of it waiting for Prefect's server": float(waited or 0),
            "flow": float(flow), "report": float(report)}


def server_boot(home: Path) -> float:
    """Seconds from launching Prefect's embedded server (as `govfacts run` does) to its first answer."""
    import urllib.request

    env = dict(os.environ)
    os.environ.clear()
    os.environ.update(user_env(PREFECT_HOME=str(home)))
    try:
        from govfacts.prefect_env import EmbeddedServer, configure_prefect

        configure_prefect()
        t0 = time.monotonic()
        server = EmbeddedServer()
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"{server.api_url}/health", timeout=2) as r:
                        if r.status == 200:
                            return time.monotonic() - t0
                except OSError:
                    time.sleep(0.05)
                if server.process.poll() is not None or time.monotonic() - t0 > 300:
                    raise SystemExit("Prefect's server did not start")
        finally:
            server.stop()
    finally:
        os.environ.clear()
        os.environ.update(env)


def one_round(rounds: dict[str, list[dict]], work: Path) -> None:
    """A cold run, an unchanged re-run and a query in a fresh directory; the parts measured alone."""
    home, wh = work / "prefect", work / "wh"
    env = user_env(PREFECT_HOME=str(home))
    run = [str(GOVFACTS), "run", "--warehouse", str(wh)]
    wall, cpu, out = timed(run, env, work)
    rounds["run, cold"].append(dict(wall=wall, cpu=cpu, **parts(out)))
    wall, cpu, out = timed(run, env, work)
    if "nothing new" not in out:
        raise SystemExit(f"the re-run was not unchanged:\n{out}")
    rounds["run, unchanged"].append(dict(wall=wall, cpu=cpu))
    wall, cpu, _ = timed([str(GOVFACTS), "sql", "--warehouse", str(wh), "SELECT count(*) FROM facts"], env, work)
    rounds["sql"].append(dict(wall=wall, cpu=cpu))
    shutil.rmtree(wh)  # a new warehouse with this (now existing) Prefect home: a project's next first run
    wall, cpu, out = timed(run, env, work)
    rounds["run, new warehouse, Prefect home kept"].append(dict(wall=wall, cpu=cpu, **parts(out)))
    for name, argv in (("python -c pass", [str(PYTHON), "-c", "pass"]),
                       ("govfacts --help (start-up + CLI imports)", [str(GOVFACTS), "--help"]),
                       ("import expectations.facts_suite (GX)", [str(PYTHON), "-c", "import expectations.facts_suite"])):
        wall, cpu, _ = timed(argv, env, work)
        rounds.setdefault(name, []).append(dict(wall=wall, cpu=cpu))
    rounds.setdefault("Prefect server boot, new database", []).append(dict(wall=server_boot(work / "prefect-new")))
    rounds.setdefault("Prefect server boot, existing database", []).append(dict(wall=server_boot(home)))


def table(rounds: dict[str, list[dict]]) -> list[dict]:
    """median / min / max of every figure."""
    rows = []
    for name, runs in rounds.items():
        for key in runs[0]:
            values = [r.get(key, 0.0) for r in runs]
            rows.append(dict(what=name, figure=key, median=statistics.median(values), min=min(values), max=max(values),
                             goal=GOALS.get(name) if key == "wall" else None))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path, help="Also write the figures here")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    load_before = os.getloadavg()
    rounds: dict[str, list[dict]] = {k: [] for k in ("run, cold", "run, unchanged", "sql", "run, new warehouse, Prefect home kept")}
    for i in range(args.rounds):
        work = Path(tempfile.mkdtemp(prefix="bench-cli-"))
        load = os.getloadavg()[0]
        try:
            one_round(rounds, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(f"round {i + 1}/{args.rounds} (load average {load:.1f} at its start): cold {rounds['run, cold'][-1]['wall']:.1f} s, unchanged "
              f"{rounds['run, unchanged'][-1]['wall']:.2f} s, sql {rounds['sql'][-1]['wall']:.2f} s", file=sys.stderr)
    rows = table(rounds)
    print(f"{os.cpu_count()} CPUs; load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after; {args.rounds} rounds")
    print(f"{'what':44} {'figure':36} {'median':>7} {'min':>7} {'max':>7}  goal")
    for r in rows:
        goal = "" if r["goal"] is None else f"<= {r['goal']:g} s: {'met' if r['median'] <= r['goal'] else 'NOT met'}"
        print(f"{r['what']:44} {r['figure']:36} {r['median']:7.2f} {r['min']:7.2f} {r['max']:7.2f}  {goal}")
    if args.json:
        args.json.write_text(json.dumps(dict(cpus=os.cpu_count(), load=[load_before[0], os.getloadavg()[0]], rows=rows), indent=2))


if __name__ == "__main__":
    main()
