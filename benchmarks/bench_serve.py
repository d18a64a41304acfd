"""From `govfacts serve --cron '* * * * *'` to a loaded snapshot, N times (issue 13's goal: <= 70 s every time).

Each round: a fresh directory (inbox of the five samples, no warehouse, no PREFECT_HOME), `govfacts serve` started
as a user would, the seconds until the warehouse has a run's snapshot, then SIGTERM; the server log is checked for
ERROR lines and tracebacks. `--no-catch-up` measures the scheduler's own first run (which waits for the minute).

    .venv/bin/python benchmarks/bench_serve.py --rounds 10 [--no-catch-up]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_round(catch_up: bool, timeout: float) -> tuple[float | None, int, str]:
    from transforms.settings import load_settings
    from warehouse.snapshots import query

    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    inbox = work / "inbox"
    inbox.mkdir()
    for p in sorted((ROOT / "seeds" / "reports").iterdir()):
        shutil.copy(p, inbox / p.name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GOVFACTS_"))}
    env["PYTHONPATH"] = str(ROOT)
    settings = load_settings(inbox=inbox, warehouse=work / "wh")
    t0 = time.monotonic()
    with open(work / "serve.out", "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "govfacts.cli", "serve", "--inbox", str(inbox), "--warehouse", str(work / "wh"),
                                 "--cron", "* * * * *", "--port", str(free_port()), *([] if catch_up else ["--no-catch-up"])],
                                cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
    seconds = None
    while time.monotonic() - t0 < timeout and proc.poll() is None:
        try:
            _, rows = query(settings, "SELECT count(*) FROM runs")
            if rows[0][0]:
                seconds = time.monotonic() - t0
                break
        except Exception:  # noqa: BLE001 (no warehouse yet)
            pass
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    log = (work / ".prefect" / "server.log").read_text(errors="replace")
    errors = sum(1 for ln in log.splitlines() if "| ERROR" in ln or ln.startswith("Traceback"))
    return seconds, errors, str(work)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--no-catch-up", action="store_true")
    ap.add_argument("--timeout", type=float, default=150)
    a = ap.parse_args()
    figures = []
    for i in range(a.rounds):
        seconds, errors, where = one_round(not a.no_catch_up, a.timeout)
        load = os.getloadavg()[0]
        figures.append(seconds)
        print(f"round {i + 1}: {'timeout' if seconds is None else f'{seconds:.1f} s'} to a loaded snapshot, "
              f"{errors} server log errors, load {load:.1f} ({where})", flush=True)
    done = [f for f in figures if f is not None]
    if done:
        print(f"min {min(done):.1f} s, median {sorted(done)[len(done) // 2]:.1f} s, max {max(done):.1f} s; "
              f"{len(figures) - len(done)} timeouts; goal <= 70 s every time: {'met' if len(done) == len(figures) and max(done) <= 70 else 'NOT met'}")


if __name__ == "__main__":
    main()
