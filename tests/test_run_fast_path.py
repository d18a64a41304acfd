"""`govfacts run` on an inbox with nothing new answers without Prefect, GX or a report rewrite; any change runs the flow.

The decision is the flow's own (warehouse/plan.py): the pure part is checked on its cases here,
and the whole command on real runs — fresh processes, as a user starts them, with Prefect's own
record of flow runs (its database in PREFECT_HOME) as the witness that no flow ran.
"""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile import PROJECT, SAMPLES, clean_env
from transforms.schema import StagedFile
from transforms.stage import StageResult
from warehouse.plan import Known, known_if_current, work_for

# Runs the CLI and, at exit, says which of the expensive modules the process imported.
_WATCHED = ("prefect", "prefect.server.api.server", "great_expectations", "flows.ingest", "expectations.report")
_WRAPPER = ("import atexit, json, sys\n"
            f"atexit.register(lambda: print('IMPORTED ' + json.dumps([m for m in {_WATCHED!r} if m in sys.modules]), file=sys.stderr))\n"
            "from govfacts.cli import app\n"
            "app(prog_name='govfacts')\n")


def _staged(*files: tuple[str, str]) -> StageResult:
    """A StageResult of (name, sha) pairs, as staging makes it (one StagedFile per distinct content)."""
    result = StageResult(files_in=len(files))
    for name, sha in files:
        if sha not in result.names:
            result.staged.append(StagedFile(source_path=name, sha256=sha, n_bytes=1, staged_path=f"/staging/{sha}"))
        result.names.setdefault(sha, []).append(name)
    return result


KNOWN = Known(known={"a", "b", "q"}, names={"a": ["a.txt"], "b": ["b.txt"]}, stage_rejects={("link", "broken_link")})


@pytest.mark.parametrize("staged, todo, new_rejects, renamed, skipped", [
    (_staged(("a.txt", "a"), ("b.txt", "b")), [], 0, {}, 2),
    (_staged(("a.txt", "a"), ("b.txt", "b"), ("c.txt", "c")), ["c"], 0, {}, 2),
    (_staged(("a.txt", "a"), ("b2.txt", "b")), [], 0, {"b": ["b.txt", "b2.txt"]}, 2),
    (_staged(("a.txt", "a"), ("b.txt", "b"), ("copy of b.txt", "b")), [], 0, {"b": ["b.txt", "copy of b.txt"]}, 3),
    (_staged(("a.txt", "a")), [], 0, {}, 1),
], ids=["unchanged", "new-file", "renamed", "known-content-new-name", "file-removed"])
def test_work_for_finds_what_the_warehouse_lacks(staged, todo, new_rejects, renamed, skipped):
    work = work_for(staged, KNOWN)
    assert [f.sha256 for f in work.todo] == todo and len(work.rejected) == new_rejects
    assert work.renamed == renamed and work.skipped == skipped
    assert work.nothing_new == (not todo and not new_rejects and not renamed)


@pytest.mark.parametrize("reject, new", [
    (dict(source_path="q.png", sha256="q", reason="image"), False),  # quarantined before (its hash)
    (dict(source_path="link", sha256=None, reason="broken_link"), False),  # rejected at staging before (path and reason)
    (dict(source_path="r.png", sha256="r", reason="image"), True),
    (dict(source_path="link", sha256=None, reason="outside_inbox"), True),
], ids=["known-hash", "known-stage-reject", "new-hash", "same-path-new-reason"])
def test_a_rejected_file_is_new_unless_recorded(reject, new):
    staged = _staged(("a.txt", "a"))
    staged.files_in += 1
    staged.rejected.append(reject)
    work = work_for(staged, KNOWN)
    assert work.nothing_new is not new and work.skipped == 1 + (not new)


def test_no_warehouse_yet_means_the_flow_decides(tmp_path):
    from transforms.settings import load_settings

    assert known_if_current(load_settings(warehouse=tmp_path / "none", inbox=SAMPLES), "0" * 12) is None


def _govfacts(env: dict, *argv: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    got = subprocess.run([sys.executable, "-c", _WRAPPER, *argv], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600)
    assert got.returncode == 0, got.stdout[-2000:] + got.stderr[-3000:]
    line = next(ln for ln in got.stderr.splitlines() if ln.startswith("IMPORTED "))
    return got, json.loads(line.split(" ", 1)[1])


def _flow_runs(prefect_home: Path) -> int:
    """Flow runs in Prefect's own database (the record `govfacts runs` and the UI read)."""
    with sqlite3.connect(prefect_home / "prefect.db") as db:
        return db.execute("SELECT count(*) FROM flow_run").fetchone()[0]


def _snapshot(out: str) -> int:
    return int(next(ln for ln in out.splitlines() if "│ snapshot" in ln).split("│")[2].split()[0])


@pytest.mark.e2e
@pytest.mark.parametrize("every_change", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["rename", "every-change"])
def test_an_unchanged_rerun_skips_prefect_gx_and_the_report_and_any_change_runs_the_flow(tmp_path, every_change):
    """Four real runs by default (cold, unchanged, renamed, unchanged); with -m slow every kind of change, one by one."""
    inbox, wh, home = tmp_path / "inbox", tmp_path / "wh", tmp_path / "prefect"
    inbox.mkdir()
    first, second = sorted(SAMPLES.iterdir())[:2]
    shutil.copy(first, inbox / first.name)
    env = clean_env(PREFECT_HOME=str(home), COLUMNS="200")
    run = ["run", "--inbox", str(inbox), "--warehouse", str(wh)]
    index = wh / "reports" / "latest" / "index.html"

    cold, imported = _govfacts(env, *run)
    assert "flow run" in cold.stdout and "prefect" in imported and _flow_runs(home) == 1
    snap, report = _snapshot(cold.stdout), index.stat().st_mtime_ns

    def unchanged() -> None:
        again, imported = _govfacts(env, *run)
        assert "nothing new (no flow run)" in again.stdout and "Prefect not started" in again.stdout, again.stdout
        assert imported == [], f"an unchanged re-run imported {imported}"
        assert _flow_runs(home) == runs and _snapshot(again.stdout) == snap and index.stat().st_mtime_ns == report
        assert "data-quality report (unchanged)" in again.stdout and "counts reconcile │ yes" in " ".join(again.stdout.split())

    def changed(what: str) -> str:
        nonlocal runs, snap, report
        got, imported = _govfacts(env, *run)
        assert "prefect" in imported and "nothing new" not in got.stdout, (what, got.stdout)
        assert _flow_runs(home) == runs + 1, f"{what}: the flow did not run"
        runs, snap, report = runs + 1, _snapshot(got.stdout), index.stat().st_mtime_ns
        return got.stdout

    runs = 1
    dead = wh / "spill" / "run-that-died"  # parts of a run killed mid-way (its owner process is gone): swept by every run
    dead.mkdir(parents=True)
    (dead / "owner.json").write_text(json.dumps(dict(host=socket.gethostname(), pid=-1)))
    unchanged()
    assert not dead.exists()
    (inbox / first.name).rename(inbox / f"renamed {first.name}")  # known content under a new name: the flow records it
    before = snap
    changed("renamed file")
    assert snap == before + 1
    unchanged()
    if not every_change:
        return
    (inbox / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)  # a new file to quarantine
    assert "quarantined image" in " ".join(changed("new quarantine-worthy file").split())
    unchanged()
    shutil.copy(second, inbox / second.name)  # a new report
    out = changed("new file")
    assert "documents loaded │ 1" in " ".join(out.split())
    unchanged()
