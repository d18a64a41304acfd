"""``govfacts serve`` as a user runs it: Prefect's own server and scheduler start the runs; the UI shows them; it stops cleanly.

One ``govfacts serve`` process (no PREFECT_API_URL: it starts its own ``prefect server
start`` with the UI) on an interval of 5 s serves the whole module; the tests run in
order against it: scheduled runs load the inbox and then a file added between runs,
the UI shows the latest run with its task runs, logs and artifact, and SIGTERM ends it.
≈ 40-60 s in all on 2 cores.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from transforms.settings import PROJECT_ROOT, load_settings
from tests.browser import Browser, chromium_path
from tests.pg import free_port
from tests.shell import user_env
from warehouse.snapshots import list_snapshots, query

SAMPLES = sorted((PROJECT_ROOT / "seeds" / "reports").iterdir())
DEPLOYMENT = "test-serve"
SCREENSHOT_DIR = PROJECT_ROOT / "data" / "screenshots"  # git-ignored (data/); the closing note names the file


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's shell: no Prefect settings of this test session, a home of its own."""
    return user_env(home, **extra)


class Served:
    def __init__(self, root: Path):
        self.root = root
        self.inbox = root / "inbox"
        self.inbox.mkdir()
        for p in SAMPLES[:2]:
            shutil.copy(p, self.inbox / p.name)
        self.settings = load_settings(inbox=self.inbox, warehouse=root / "wh")
        self.home = root / ".prefect"
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.stdout, self.stderr = root / "serve.out", root / "serve.err"
        self.started = time.monotonic()
        with open(self.stdout, "wb") as out, open(self.stderr, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "govfacts.cli", "serve", "--inbox", str(self.inbox), "--warehouse", str(root / "wh"),
                 "--interval", "5", "--no-catch-up", "--name", DEPLOYMENT, "--port", str(self.port)],
                cwd=root, env=clean_env(self.home), stdout=out, stderr=err, stdin=subprocess.DEVNULL)

    def output(self) -> str:
        return self.stdout.read_text(errors="replace")

    def errors(self) -> str:
        return self.stderr.read_text(errors="replace")

    def wait_for(self, what: str, check, timeout: float = 75):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"govfacts serve exited ({self.proc.returncode}) while waiting for {what}:\n"
                                     f"{self.output()}\n{self.errors()[-3000:]}")
            found = check()
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} after {timeout:.0f} s:\n{self.output()}\n{self.errors()[-3000:]}")
            time.sleep(0.2)

    def flow_runs(self, **flow_runs) -> list[dict]:
        """This deployment's flow runs, oldest first (the REST API, as the UI reads them)."""
        try:
            r = httpx.post(f"{self.api}/flow_runs/filter", timeout=10, json={
                "deployments": {"name": {"any_": [DEPLOYMENT]}}, "sort": "EXPECTED_START_TIME_ASC", "limit": 200,
                "flow_runs": {"state": {"type": {"any_": ["PENDING", "RUNNING", "COMPLETED", "FAILED", "CRASHED", "CANCELLED", "CANCELLING"]}},
                              **flow_runs}})
        except httpx.HTTPError:
            return []
        return r.json() if r.status_code == 200 else []

    def loaded_by(self, flow_run_id: str) -> list[str]:
        _, rows = query(self.settings, "SELECT d.source_path FROM documents d JOIN runs r USING (run_id) WHERE r.flow_run_id = ? ORDER BY 1",
                        [flow_run_id])
        return [Path(r[0]).name for r in rows]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    s = Served(tmp_path_factory.mktemp("serve"))
    yield s
    if s.proc.poll() is None:
        s.proc.send_signal(signal.SIGTERM)
        try:
            s.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            s.proc.kill()
            s.proc.wait()


def _ended(run: dict) -> bool:
    return run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def test_the_scheduler_starts_runs_that_load_the_inbox_then_a_new_file_once(served: Served):
    first = served.wait_for("first scheduled run to end", lambda: next((r for r in served.flow_runs() if _ended(r)), None))
    assert first["state_type"] == "COMPLETED", first["state"]
    assert first["auto_scheduled"], "the run was not created by Prefect's scheduler"
    ui_line = re.search(r"UI: (http://127\.0\.0\.1:\d+)", served.output())
    assert ui_line and ui_line.group(1) == served.api.removesuffix("/api"), served.output()
    assert served.loaded_by(first["id"]) == [p.name for p in SAMPLES[:2]]
    runs_made = [s for s in list_snapshots(served.settings) if s["action"] == "run"]
    assert [s["details"]["flow_run_id"] for s in runs_made] == [first["id"]], "the inbox was not loaded as one snapshot"
    served.wait_for("serve printing how the run ended", lambda: re.search(
        rf"run {re.escape(first['name'])} completed in [\d.]+ s: 2 documents loaded of 2 files, \d+ facts", served.output()), timeout=10)

    added = datetime.now().astimezone()
    shutil.copy(SAMPLES[2], served.inbox / f"new-{SAMPLES[2].name}")

    def loaded_new():
        _, rows = query(served.settings, "SELECT r.flow_run_id FROM documents d JOIN runs r USING (run_id) WHERE d.source_path LIKE ?",
                        [f"%new-{SAMPLES[2].name}"])
        return rows[0][0] if rows else None

    second_id = served.wait_for("scheduled run loading the new file", loaded_new)
    runs = {r["id"]: r for r in served.flow_runs()}
    second = served.wait_for("the second run's end", lambda: next((r for r in served.flow_runs(id={"any_": [second_id]}) if _ended(r)), None))
    assert second["state_type"] == "COMPLETED" and second["auto_scheduled"], second["state"]
    assert datetime.fromisoformat(second["start_time"]) > datetime.fromisoformat(first["end_time"])
    _, versions = query(served.settings, "SELECT DISTINCT code_version FROM runs")
    assert len(versions) == 1, "transforms/, expectations/ or seeds/ changed between the two runs: everything was re-processed"
    assert served.loaded_by(second_id) == [f"new-{SAMPLES[2].name}"]
    _, counts = query(served.settings, "SELECT documents, files_in, files_skipped FROM runs WHERE flow_run_id = ?", [second_id])
    assert counts == [(1, 3, 2)]

    # every run the scheduler started so far completed; the ones between the two loaded nothing; nothing was loaded twice
    ended = [r for r in served.flow_runs() if _ended(r)]
    assert all(r["state_type"] == "COMPLETED" and r["auto_scheduled"] for r in ended), [(r["name"], r["state"]) for r in ended]
    between = [r for r in ended if r["expected_start_time"] > first["expected_start_time"] and r["expected_start_time"] < runs.get(second_id, second)["expected_start_time"]]
    assert all(served.loaded_by(r["id"]) == [] for r in between)
    _, dup = query(served.settings, "SELECT count(*), count(DISTINCT doc_id), (SELECT count(*) - count(DISTINCT fact_id) FROM facts) FROM documents")
    assert dup == [(3, 3, 0)]
    assert [s["details"]["flow_run_id"] for s in list_snapshots(served.settings) if s["action"] == "run"] == [first["id"], second_id]
    assert added < datetime.fromisoformat(second["end_time"])


def test_runs_lists_the_runs_with_state_counts_snapshot_and_quality_and_prints_a_runs_log(served: Served):
    _, rows = query(served.settings, "SELECT flow_run_id, snapshot_id, facts_extracted, expectations_passed, expectations_failed "
                                     "FROM runs ORDER BY snapshot_id DESC LIMIT 1")
    flow_run_id, snapshot, facts, passed, failed = rows[0]
    (run,) = served.flow_runs(id={"any_": [flow_run_id]})
    env = clean_env(served.home, PREFECT_API_URL=served.api, COLUMNS="200")
    cmd = [sys.executable, "-m", "govfacts.cli", "runs", "--warehouse", str(served.settings.warehouse), "--limit", "500"]
    listed = subprocess.run(cmd, cwd=served.root, env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    line = next(ln for ln in listed.stdout.splitlines() if run["name"] in ln)
    cells = [c.strip() for c in line.strip("│ ").split("│")]
    assert cells[2] == "Completed" and cells[4] == "3" and cells[5] == "1 / 2" and cells[6].startswith(f"{facts} (")
    assert cells[7] == f"{passed} / {failed}" and cells[8] == str(snapshot), line
    _, loaded = query(served.settings, "SELECT flow_run_id FROM runs")
    idle = [r for r in served.flow_runs() if r["state_type"] == "COMPLETED" and r["id"] not in {x[0] for x in loaded}]
    for r in idle[:3]:  # the scheduled runs that found nothing are listed too, with Prefect's state
        assert re.search(rf"{re.escape(r['name'])} .*Completed.*nothing new", listed.stdout), listed.stdout

    logs = subprocess.run([*cmd, "--logs", flow_run_id], cwd=served.root, env=env, capture_output=True, text=True, timeout=120)
    assert logs.returncode == 0 and "Finished in state Completed" in logs.stdout, logs.stdout + logs.stderr


def test_the_ui_shows_the_latest_run_its_task_runs_logs_and_artifact(served: Served, tmp_path: Path):
    if chromium_path() is None:
        pytest.skip("Debian's chromium is not installed: apt-get update && apt-get install -y chromium (.ci/run does this)")
    _, rows = query(served.settings, "SELECT flow_run_id FROM runs ORDER BY snapshot_id DESC LIMIT 1")
    (run,) = served.flow_runs(id={"any_": [rows[0][0]]})
    ui = served.api.removesuffix("/api")
    browser = Browser(tmp_path / "chromium")
    try:
        browser.goto(f"{ui}/runs/flow-run/{run['id']}")
        browser.wait_for(f"document.body.innerText.includes({json.dumps(run['name'])}) && document.body.innerText.includes('Completed')",
                         what=f"flow run {run['name']} and its state")
        text = browser.wait_for("document.body.innerText.includes('load') && document.body.innerText", what="the task runs in the graph")
        assert "govfacts-ingest" in text and DEPLOYMENT in text and "auto-scheduled" in text
        browser.wait_for("document.body.innerText.includes('Finished in state Completed')", what="the run's logs in the Logs tab")
        assert browser.click_text("[role=tablist] > li, [role=tab]", "Artifacts")
        shown = browser.wait_for("document.body.innerText.includes('govfacts-validation') && document.body.innerText",
                                 what="the run-summary artifact on the Artifacts tab")
        assert "govfacts-expectations" in shown
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        browser.screenshot(SCREENSHOT_DIR / "prefect-ui-flow-run.png")
        assert browser.click_text("[role=tablist] > li, [role=tab]", "Task Runs")
        tasks = browser.wait_for("document.body.innerText.includes('validate-') && document.body.innerText", what="the Task Runs tab")
        assert all(f"{t}-" in tasks for t in ("stage", "transform", "validate", "load"))
    finally:
        browser.close()


def test_sigterm_lets_the_run_in_progress_finish_and_serve_ends_cleanly(served: Served):
    shutil.copy(SAMPLES[3], served.inbox / f"late-{SAMPLES[3].name}")
    added = time.time()
    running = served.wait_for("a run in progress after the file landed", lambda: next(
        (r for r in served.flow_runs() if r["state_type"] == "RUNNING" and datetime.fromisoformat(r["start_time"]).timestamp() > added), None))
    served.proc.send_signal(signal.SIGTERM)
    served.proc.wait(timeout=60)
    out, err = served.output(), served.errors()
    assert served.proc.returncode == 0, err[-3000:]
    assert "stopping: no new runs" in out and out.rstrip().endswith("stopped"), out
    for bad in ("Traceback", "Warning", "never awaited", "Error", "ERROR", "Crash"):
        assert bad not in err and bad not in out, (out + err)[-3000:]
    assert [ln for ln in (served.home / "server.log").read_text().splitlines() if "| ERROR" in ln or "Traceback" in ln] == []
    with pytest.raises(httpx.HTTPError):  # the local server went with serve
        httpx.get(f"{served.api}/health", timeout=2)

    # the run in progress finished and loaded the file, whole; nothing started after the signal (the API went with serve,
    # so what serve printed and the warehouse are the record)
    after_stop = out[out.index("stopping: no new runs"):]
    assert re.search(rf"run {re.escape(running['name'])} completed in [\d.]+ s: (1 documents loaded|nothing new)", out), out
    assert set(re.findall(r"run (\S+) started \(", after_stop)) <= {running["name"]}, after_stop  # printed late at most
    assert f"run {running['name']} cancelled" not in out, out
    _, late = query(served.settings, "SELECT count(*) FROM documents WHERE source_path LIKE ?", [f"%late-{SAMPLES[3].name}"])
    assert late == [(1,)]
    run_snaps = sorted(s["snapshot_id"] for s in list_snapshots(served.settings) if s["action"] == "run")
    _, run_rows = query(served.settings, "SELECT snapshot_id FROM runs ORDER BY 1")
    assert run_snaps == [r[0] for r in run_rows], "a snapshot of a run without its runs row (half-written)"
