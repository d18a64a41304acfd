"""A long-running Prefect server, as the README sets it up: the scheduler's runs reach a worker, and a failed run reaches the user.

One ``prefect server start`` (a separate process, its own PREFECT_HOME under the test's
temporary directory, a free port) serves the module:

* the README's step-by-step block ("On a long-running Prefect server") is run line by line
  as written — ``/srv`` is the temporary directory, 4200 the free port, the daily cron an
  interval of 5 s, and each terminal has a PREFECT_HOME of its own there — so the README
  cannot drift from what is tested: the server, ``govfacts deploy --apply`` and ``prefect
  worker start``; the server's scheduler (no manual trigger) creates a run, the worker
  runs it, it completes and loads the inbox as one snapshot;
* ``govfacts serve`` against that server (PREFECT_API_URL set) on a warehouse path that
  is a file: each scheduled run fails, ``serve`` prints its error and where its log is
  (the UI's page of the run and ``govfacts runs --logs ID``, which prints the traceback),
  and the server's log holds no error.

≈ 45-65 s in all on 2 busy cores (a server start, ``prefect deploy``, a worker, a serve).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from transforms.settings import PROJECT_ROOT, load_settings
from tests.pg import free_port
from tests.shell import user_env
from warehouse.snapshots import list_snapshots, query

SAMPLES = sorted((PROJECT_ROOT / "seeds" / "reports").iterdir())[:2]
README_PORT, README_ROOT, README_CRON = "4200", "/srv", "--cron '0 6 * * *'"
ENDED = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def terminal_env(home: Path, **extra: str) -> dict[str, str]:
    """A user's fresh terminal: none of this test session's Prefect or govfacts settings, a PREFECT_HOME of its own."""
    return user_env(home, **{"DO_NOT_TRACK": "1", "COLUMNS": "200", **extra})


def readme_steps() -> list[str]:
    """The command lines of the README's step-by-step block for a long-running server, comments left out."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("**On a long-running Prefect server**", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [ln.strip() for ln in block.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def argv(words: list[str]) -> list[str]:
    """``govfacts …`` and ``prefect …`` as this interpreter runs them (the code under test, the pinned Prefect)."""
    program = {"govfacts": "govfacts.cli", "prefect": "prefect"}[words[0]]
    return [sys.executable, "-m", program, *words[1:]]


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Stop a process this test started (in a session of its own): the signal, then SIGKILL to its process group."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # what it left behind (a flow run's process)
    except ProcessLookupError:
        pass
    proc.wait()


def wait_for(what: str, check, timeout: float, *procs: tuple[subprocess.Popen, Path]):
    deadline = time.monotonic() + timeout
    while True:
        for proc, log in procs:
            if proc.poll() is not None:
                raise AssertionError(f"{proc.args[2:5]} exited ({proc.returncode}) while waiting for {what}:\n"
                                     f"{log.read_text(errors='replace')[-4000:]}")
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for _, log in procs)
            raise AssertionError(f"no {what} after {timeout:.0f} s:\n{logs}")
        time.sleep(0.3)


def server_errors(log: Path) -> list[str]:
    return [ln for ln in log.read_text(errors="replace").splitlines()
            if "| ERROR" in ln or "| CRITICAL" in ln or "Traceback" in ln or "Exception in ASGI" in ln]


class LongRunningServer:
    """The README's terminal 1: ``prefect server start`` with the exports above it, as a process of its own."""

    def __init__(self, root: Path):
        self.root, self.port = root, str(free_port())
        self.steps = [self.localize(s) for s in readme_steps()]
        at = next(i for i, s in enumerate(self.steps) if " server start" in s)
        first, self.terminal_2 = self.steps[:at + 1], self.steps[at + 1:]
        env = terminal_env(root / "terminal-1")
        for line in first[:-1]:
            env.update(self.exported(line))
        self.home = Path(env["PREFECT_HOME"])
        assert self.home.is_relative_to(root), "the server's PREFECT_HOME must be the README's /srv/… (here: the tmp dir)"
        self.log = root / "server.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(argv(shlex.split(first[-1])), cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.api = f"http://127.0.0.1:{self.port}/api"

        def healthy():
            try:
                return httpx.get(f"{self.api}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("Prefect server answering", healthy, 150, (self.proc, self.log))

    def localize(self, line: str) -> str:
        """A README line as the test runs it: /srv -> the tmp dir, 4200 -> a free port, the daily cron -> every 5 s."""
        return line.replace(README_ROOT, str(self.root)).replace(README_PORT, self.port).replace(README_CRON, "--interval 5")

    @staticmethod
    def exported(line: str) -> dict[str, str]:
        words = shlex.split(line)
        assert words[0] == "export", f"not an export: {line}"
        return dict(w.split("=", 1) for w in words[1:])

    def flow_runs(self, deployment: str, **flow_runs) -> list[dict]:
        """The deployment's flow runs that began, oldest first (the REST API, as the UI reads them)."""
        try:
            r = httpx.post(f"{self.api}/flow_runs/filter", timeout=10, json={
                "deployments": {"name": {"any_": [deployment]}}, "sort": "EXPECTED_START_TIME_ASC", "limit": 200,
                "flow_runs": {"state": {"type": {"any_": ["PENDING", "RUNNING", "CANCELLING", *ENDED]}}, **flow_runs}})
        except httpx.HTTPError:
            return []
        return r.json() if r.status_code == 200 else []


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = LongRunningServer(tmp_path_factory.mktemp("srv"))
    yield s
    stop(s.proc)


def test_readme_steps_deploy_apply_and_a_worker_run_what_the_servers_scheduler_starts(server: LongRunningServer):
    steps = server.terminal_2
    assert [shlex.split(s)[:3] for s in steps] == [
        ["export", f"PREFECT_API_URL={server.api}"], ["govfacts", "deploy", "--inbox"], ["prefect", "worker", "start"]], steps
    assert "--interval 5" in steps[1] and "--apply" in steps[1], "the README's deploy line lost its cron or --apply"
    inbox, wh = server.root / "inbox", server.root / "wh"
    inbox.mkdir()
    for p in SAMPLES:
        shutil.copy(p, inbox / p.name)
    env = terminal_env(server.root / "terminal-2", **server.exported(steps[0]))

    deployed = subprocess.run(argv(shlex.split(steps[1])), cwd=server.root, env=env, capture_output=True, text=True, timeout=300)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "registered govfacts-ingest/govfacts-daily on work pool 'govfacts'" in " ".join(deployed.stdout.split()), deployed.stdout
    dep = httpx.get(f"{server.api}/deployments/name/govfacts-ingest/govfacts-daily", timeout=10).json()
    assert dep["work_pool_name"] == "govfacts" and dep["global_concurrency_limit"]["limit"] == 1
    assert [s["schedule"].get("interval") for s in dep["schedules"]] == [5.0]
    assert dep["parameters"]["inbox"] == str(inbox) and dep["parameters"]["warehouse"] == str(wh)

    worker_log = server.root / "worker.log"
    with open(worker_log, "wb") as out:
        worker = subprocess.Popen(argv(shlex.split(steps[2])), cwd=server.root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        first = wait_for("first scheduled run to end", lambda: next(
            (r for r in server.flow_runs("govfacts-daily") if r["state_type"] in ENDED), None), 120,
            (worker, worker_log), (server.proc, server.log))
    finally:
        # Ctrl-C, as a user stops a worker; a flow-run process still exiting is killed with its process group (the
        # run is already Completed). Not a pause of the deployment first: that deletes scheduled runs the worker
        # may be submitting at that moment (an ObjectNotFound in its log).
        stop(worker, signal.SIGINT, timeout=60)

    assert first["state_type"] == "COMPLETED", first["state"]
    assert first["auto_scheduled"] and (first["created_by"] or {}).get("type") == "SCHEDULE", "not created by the server's scheduler"
    assert first["created_by"]["id"] == dep["schedules"][0]["id"], first["created_by"]
    assert first["work_pool_name"] == "govfacts" and first["deployment_id"] == dep["id"]
    log = worker_log.read_text(errors="replace")
    assert re.search(rf"Flow run '{re.escape(first['name'])}' submitted to infrastructure", log), "not the worker's run"
    until_done = log.split(f"Flow run '{first['name']}' - Finished in state Completed()")[0]
    assert "Traceback" not in until_done and "| ERROR" not in until_done, until_done[-3000:]

    settings = load_settings(inbox=inbox, warehouse=wh)
    _, loaded = query(settings, "SELECT d.source_path FROM documents d JOIN runs r USING (run_id) WHERE r.flow_run_id = ? ORDER BY 1",
                      [first["id"]])
    assert [Path(p).name for (p,) in loaded] == [p.name for p in SAMPLES]
    _, counts = query(settings, "SELECT documents, files_in, files_skipped FROM runs WHERE flow_run_id = ?", [first["id"]])
    assert counts == [(len(SAMPLES), len(SAMPLES), 0)]
    runs_made = [s["details"]["flow_run_id"] for s in list_snapshots(settings) if s["action"] == "run"]
    assert runs_made[:1] == [first["id"]] and len(runs_made) == len(set(runs_made)), "the inbox was not loaded as one snapshot"
    _, (per_doc,) = query(settings, "SELECT count(*), count(DISTINCT doc_id) FROM documents")
    assert per_doc == (len(SAMPLES), len(SAMPLES)), "a document loaded twice"
    assert server_errors(server.log) == []


def test_a_served_scheduled_run_that_fails_prints_its_error_and_where_its_log_is(server: LongRunningServer):
    inbox, wh = server.root / "inbox-failing", server.root / "wh-staging-is-a-file"
    inbox.mkdir()
    shutil.copy(SAMPLES[0], inbox / SAMPLES[0].name)
    wh.mkdir()  # a warehouse directory serve accepts, whose staging area is a file: every run fails at staging
    (wh / "staging").write_text("not a directory: every run fails at staging\n")
    env = terminal_env(server.root / "terminal-3", PREFECT_API_URL=server.api)
    out_path, err_path = server.root / "serve.out", server.root / "serve.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        serve = subprocess.Popen(argv(["govfacts", "serve", "--inbox", str(inbox), "--warehouse", str(wh), "--interval", "5",
                                       "--no-catch-up", "--name", "failing"]),
                                 cwd=server.root, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        printed = wait_for("serve printing a failed run", lambda: re.search(
            r"run (\S+) failed: (.*)\n\s+its log: (\S+)  ·  govfacts runs --logs (\S+)", out_path.read_text(errors="replace")), 120,
            (serve, err_path), (server.proc, server.log))
        name, error, ui_link, run_id = printed.groups()
        (run,) = server.flow_runs("failing", id={"any_": [run_id]})
        assert run["name"] == name and run["state_type"] == "FAILED" and run["auto_scheduled"], run["state"]
        assert "StagingError" in error and f"cannot write the staging area {wh}/staging (" in error, error
        assert ui_link == f"{server.api.removesuffix('/api')}/runs/flow-run/{run_id}"
        page = httpx.get(ui_link, headers={"accept": "text/html"}, follow_redirects=True, timeout=30)  # as a browser opens it
        assert page.status_code == 200 and "<html" in page.text.lower(), (page.status_code, page.text[:500])

        logs = subprocess.run(argv(["govfacts", "runs", "--warehouse", str(wh), "--logs", run_id]), cwd=server.root, env=env,
                              capture_output=True, text=True, timeout=120)
        assert logs.returncode == 0, logs.stderr
        assert "Traceback" in logs.stdout and "StagingError: cannot write the staging area" in logs.stdout, logs.stdout[-3000:]
        assert "Finished in state Failed" in logs.stdout, logs.stdout[-3000:]
        listed = subprocess.run(argv(["govfacts", "runs", "--warehouse", str(wh)]), cwd=server.root, env={**env, "COLUMNS": "400"},
                                capture_output=True, text=True, timeout=120)
        assert listed.returncode == 0 and re.search(rf"{re.escape(name)} .*Failed: Flow run encountered an", listed.stdout), \
            listed.stdout + listed.stderr
        others = [r["name"] for r in server.flow_runs("govfacts-daily")]  # the worker's deployment writes to another warehouse
        assert not [n for n in others if n in listed.stdout], (others, listed.stdout)  # none when this test runs alone
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=60)
        finally:
            stop(serve)
    out = out_path.read_text(errors="replace")
    assert serve.returncode == 0 and out.rstrip().endswith("stopped"), out + err_path.read_text()[-3000:]
    assert f"Prefect API: {server.api}" in out
    err = err_path.read_text(errors="replace")  # the failed runs' own log lines (WARNING and up)
    assert "| ERROR   | Flow run" in err and "StagingError" in err, err[-3000:]  # the runs' own error lines, one line each ...
    for bad in ("Traceback", "never awaited", "RuntimeWarning", "cannot read flow runs", "Prefect server:"):  # ... no stack
        assert bad not in out and bad not in err, (out + err)[-3000:]
    assert "completed" not in out, out  # no run of this deployment got past staging
    assert server_errors(server.log) == [], server.log.read_text()[-3000:]
