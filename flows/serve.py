"""``govfacts serve``: the ingest deployment served by a Prefect Runner, on a Prefect server with its scheduler and UI.

What runs where:

* **The API and the scheduler.** ``PREFECT_API_URL`` when set (a long-running ``prefect
  server start``); otherwise ``local_server`` starts ``prefect server start`` on
  127.0.0.1 for as long as ``serve`` runs, with the UI, its database and log under
  ``PREFECT_HOME`` and concurrency leases in files there (so a deployment's one slot is
  not lost with the server's memory when ``serve`` is restarted).
* **The runs.** A Prefect ``Runner`` in this process polls the API and starts each flow
  run the scheduler created in a subprocess, one at a time. The whole process talks to
  one API: Prefect freezes its settings at import, so the URL of the server started here
  is entered as Prefect settings (``temporary_settings``), not only as an environment
  variable — otherwise the Runner would talk to an in-process ephemeral API on the same
  database while the flow run talked to the real server, which holds the concurrency
  lease the other never saw ("Deployment concurrency slot lost during provisioning").
* **What the user sees.** ``watch_runs`` prints every flow run of the deployment as it
  starts and ends (the warehouse's counts and snapshot, or the error and where its log
  is) and any ERROR line the local server writes to its log.
* **Stopping.** SIGTERM or SIGINT stop taking runs and let a run in progress finish (up
  to ``stop_timeout`` seconds; a second signal, or the timeout, cancels it through Prefect:
  the load is one transaction, so the warehouse keeps its last snapshot and the next run
  loads those files), then pause the schedule, stop the local server, and exit 0. Ctrl-C
  in a terminal also reaches the flow-run subprocess (the terminal signals the whole
  process group), which then ends at once, rolled back the same way.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator

import httpx

from flows.deploy import DEPLOYMENT_NAME, FLOW_NAME, build_deployment, describe_schedule, runner_env
from govfacts.prefect_env import _die_with_parent
from transforms.settings import Settings

DEFAULT_PORT = 4200  # Prefect's own default: the UI is where a Prefect user looks for it
FILE_LEASES = "prefect.server.concurrency.lease_storage.filesystem"
Say = Callable[[str, str], None]  # (text, style): the CLI prints text as text, never as markup


class ServeError(RuntimeError):
    """A problem the user can fix; the message says how."""


@dataclass(frozen=True)
class Server:
    api_url: str
    ui_url: str | None
    log: Path | None  # the local server's log; None for a server someone else runs

    def run_url(self, flow_run_id) -> str | None:
        return f"{self.ui_url}/runs/flow-run/{flow_run_id}" if self.ui_url else None


def __getattr__(name: str):
    """``ConsoleWithoutTracebacks``, made on first use: it subclasses a Prefect class, and this module imports Prefect late."""
    if name != "ConsoleWithoutTracebacks":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from prefect.logging.handlers import PrefectConsoleHandler  # noqa: PLC0415

    class ConsoleWithoutTracebacks(PrefectConsoleHandler):
        """Prefect's terminal log handler, each line without its traceback (the handler of a served flow run's terminal).

        A failed run logs its exception, stack and all, twice; in the terminal of ``serve``, every
        few seconds on a short schedule, that buried the one line saying what failed and where the
        run's log is. The stack still reaches the run's logs on the server (UI, ``govfacts runs
        --logs``): the record is only stripped while this handler formats it.
        """

        def format(self, record):  # noqa: A003
            saved = record.exc_info, record.exc_text, record.stack_info
            record.exc_info = record.exc_text = record.stack_info = None
            try:
                return super().format(record)
            finally:
                record.exc_info, record.exc_text, record.stack_info = saved

    globals()[name] = ConsoleWithoutTracebacks
    return ConsoleWithoutTracebacks


def _port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _log_tail(log: Path, lines: int = 12) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


@contextmanager
def local_server(home: Path, port: int = DEFAULT_PORT, ui: bool = True, timeout: float = 180.0) -> Iterator[Server]:
    """``prefect server start`` on 127.0.0.1:port (API, scheduler, UI) for the life of the context.

    Started in a session of its own, so a Ctrl-C in the terminal reaches ``serve`` only and
    the server outlives the Runner's shutdown (which cancels a run and pauses the
    schedule through it); stopped with SIGTERM afterwards.
    """
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    if _port_in_use(port):
        raise ServeError(f"port {port} on 127.0.0.1 is in use (another Prefect server, or another `govfacts serve`?): "
                         f"pass --port with a free port, or use that server with PREFECT_API_URL=http://127.0.0.1:{port}/api")
    log = home / "server.log"
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_") and k != "PREFECT_UI_API_URL"}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
               PREFECT_SERVER_UI_ENABLED="true" if ui else "false", PREFECT_UI_API_URL=f"{base}/api",
               PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE=FILE_LEASES, PREFECT_LOGGING_LEVEL="WARNING",
               # Prefect 3.8.8's late-runs service marks a run Late in a deferred SQLite transaction (read, then write),
               # which fails with "database is locked" whenever another write commits in between (a flow run's state,
               # its logs): errors in the server log on every busy minute. Off on this SQLite-backed server: runs are
               # not labelled Late in the UI, and nothing else changes (a run starts when the Runner is free either way).
               PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED="false")
    with open(log, "ab") as out:
        out.write(f"\n--- govfacts serve: prefect server start on {base} at {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC ---\n".encode())
        out.flush()
        proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port),
                                 "--ui" if ui else "--no-ui", "--analytics-off"],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                                preexec_fn=partial(_die_with_parent, os.getpid()))  # a serve killed with -9 takes it along
    try:
        _wait_healthy(f"{base}/api", proc, timeout, log)
        yield Server(api_url=f"{base}/api", ui_url=base if ui else None, log=log)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServeError(f"the Prefect server could not start (exit code {proc.returncode}). The end of its log, {log}:\n"
                             f"{_log_tail(log)}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise ServeError(f"the Prefect server did not answer at {url} within {timeout:.0f} s; see its log, {log}")


def external_server(api_url: str) -> Server:
    """The server of ``PREFECT_API_URL``, checked before serving: a clear message when it does not answer."""
    try:
        ok = httpx.get(f"{api_url.rstrip('/')}/health", timeout=10).status_code == 200
    except httpx.HTTPError as exc:
        ok, why = False, f"{type(exc).__name__}: {exc}"
    else:
        why = "it answered, but not as healthy"
    if not ok:
        raise ServeError(f"no Prefect server answers at PREFECT_API_URL={api_url} ({why}): start it with "
                         "`prefect server start`, or unset PREFECT_API_URL to let `govfacts serve` start one")
    ui = api_url.rstrip("/").removesuffix("/api") if api_url.rstrip("/").endswith("/api") else None
    return Server(api_url=api_url, ui_url=ui, log=None)


class ServerLogWatcher:
    """New ERROR/CRITICAL lines of the local server's log (the scheduler's failures are only there)."""

    def __init__(self, log: Path | None):
        self.log = log
        self.offset = log.stat().st_size if log and log.exists() else 0

    def new_errors(self) -> list[str]:
        if not self.log or not self.log.exists():
            return []
        with open(self.log, "rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        cut = chunk.rfind(b"\n") + 1  # whole lines only; the rest is read next time
        self.offset += cut
        lines = chunk[:cut].decode("utf-8", "replace").splitlines()
        return [ln for ln in lines if "| ERROR" in ln or "| CRITICAL" in ln]


def _run_counts(settings: Settings, flow_run_id: str) -> tuple | None:
    """What the run left in the warehouse: (documents, files in, facts, published, quarantined, snapshot), or None."""
    from warehouse.snapshots import query  # noqa: PLC0415

    try:
        _, rows = query(settings, "SELECT documents, files_in, facts_extracted, facts_published, facts_quarantined, snapshot_id "
                                  "FROM runs WHERE flow_run_id = ?", [flow_run_id])
    except Exception:  # noqa: BLE001 (no warehouse yet: the run changed nothing)
        return None
    return rows[0] if rows else None


def _describe_end(settings: Settings, server: Server, run) -> tuple[str, str]:
    state = run.state
    took = f" in {run.total_run_time.total_seconds():.1f} s" if run.total_run_time else ""
    if state.is_completed():
        counts = _run_counts(settings, str(run.id))
        if counts is None:
            return f"run {run.name} completed{took}: nothing new to load", "green"
        docs, files_in, facts, published, quarantined, snap = counts
        return (f"run {run.name} completed{took}: {docs} documents loaded of {files_in} files, {facts} facts "
                f"({published} published, {quarantined} quarantined), snapshot {snap}"), "green"
    if state.is_cancelled() and state.message == "Runner is shutting down.":
        return (f"run {run.name} cancelled by the stop of serve: the warehouse keeps its last snapshot, "
                "and the next run loads what this one would have"), "yellow"
    where = server.run_url(run.id)
    log = f"its log: {where}" if where else ""
    log += ("  ·  " if log else "its log: ") + f"govfacts runs --logs {run.id}"
    return f"run {run.name} {state.name.lower()}: {state.message or state.type.value}\n  {log}", "red"


async def watch_runs(client, deployment_id, settings: Settings, server: Server, say: Say, since: datetime, seen: dict,
                     interval: float = 1.0, log_watch: ServerLogWatcher | None = None, once: bool = False) -> None:
    """Print each flow run of the deployment when it starts and when it ends, and new errors of the server's log.

    ``seen`` maps flow run id -> the state type last printed (shared by calls, so nothing is printed twice).
    """
    from prefect.client.schemas.filters import (  # noqa: PLC0415
        DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterExpectedStartTime, FlowRunFilterState,
        FlowRunFilterStateType)
    from prefect.client.schemas.objects import StateType  # noqa: PLC0415
    from prefect.client.schemas.sorting import FlowRunSort  # noqa: PLC0415

    begun = [t for t in StateType if t not in (StateType.SCHEDULED, StateType.PAUSED)]  # the scheduler keeps up to 100 ahead
    while True:
        try:
            runs = await client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
                flow_run_filter=FlowRunFilter(expected_start_time=FlowRunFilterExpectedStartTime(after_=since - timedelta(days=1)),
                                              state=FlowRunFilterState(type=FlowRunFilterStateType(any_=begun))),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=50)
        except Exception as exc:  # noqa: BLE001 (the server going away is reported, and watching goes on)
            say(f"cannot read flow runs from {server.api_url}: {type(exc).__name__}: {exc}", "yellow")
            runs = []
        for run in sorted(runs, key=lambda r: r.expected_start_time or since):
            if run.state is None:
                continue
            kind, before = run.state.type.value, seen.get(run.id)
            seen[run.id] = kind
            if kind == before or (before is None and run.state.is_final() and (run.end_time or since) < since):
                continue
            if kind == "RUNNING":
                say(f"run {run.name} started ({'scheduled' if run.auto_scheduled else 'triggered'}"
                    f" for {run.expected_start_time:%H:%M:%S} UTC)", "")
            elif run.state.is_final():
                say(*_describe_end(settings, server, run))
        for line in (log_watch.new_errors() if log_watch else []):
            say(f"Prefect server: {line}\n  full log: {log_watch.log}", "red")
        if once:
            return
        await asyncio.sleep(interval)


def _latest_fire_before(schedule, now: datetime) -> datetime | None:
    """The schedule's most recent fire time at or before now (None for an interval, which fires from its anchor)."""
    from prefect.client.schemas.schedules import CronSchedule  # noqa: PLC0415

    if not isinstance(schedule, CronSchedule):
        return None
    from zoneinfo import ZoneInfo  # noqa: PLC0415

    from prefect._vendor.croniter import croniter  # noqa: PLC0415 (the cron arithmetic Prefect's scheduler uses)

    local = now.astimezone(ZoneInfo(schedule.timezone or "UTC"))
    return croniter(schedule.cron, local, day_or=schedule.day_or).get_prev(datetime)


async def catch_up(client, deployment_id, schedule, now: datetime) -> bool:
    """Run now when the schedule's latest fire time has no run of the deployment after it (never ran, or missed while down).

    What a scheduler with ``catchup=False`` does: missed runs are not replayed one by one
    (each run loads everything new anyway), but the latest one is not skipped either.
    """
    from prefect.client.schemas.filters import (  # noqa: PLC0415
        DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterStartTime)

    fire = _latest_fire_before(schedule, now)
    if fire is None:
        return False
    started = await client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=fire)), limit=1)
    if started:
        return False
    await client.create_flow_run_from_deployment(deployment_id, tags=["catch-up"])
    return True


def _runner_class():
    from prefect.runner import Runner  # noqa: PLC0415

    class GovfactsRunner(Runner):
        """Prefect's Runner, with SIGTERM left to ``serve``'s event-loop handler.

        Prefect's own handler calls the async ``stop`` without awaiting it ("coroutine
        'Runner.astop' was never awaited") and exits mid-loop. The loop's handler sees the
        signal whatever Python-level handler ``Runner.start`` installs (asyncio's wakeup
        fd), so this one does nothing.
        """

        def handle_sigterm(self, *args, **kwargs) -> None:  # noqa: ARG002
            return None

    return GovfactsRunner


async def _drain(client, deployment_id, timeout: float, cancel_now: asyncio.Event) -> None:
    """Wait until no run of the deployment is pending or running, for at most ``timeout`` s or until ``cancel_now``."""
    from prefect.client.schemas.filters import (  # noqa: PLC0415
        DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType)
    from prefect.client.schemas.objects import StateType  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not cancel_now.is_set():
        active = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
                any_=[StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]))), limit=1)
        if not active:
            return
        try:
            await asyncio.wait_for(cancel_now.wait(), timeout=0.5)
        except asyncio.TimeoutError:
            pass


async def _serve(settings: Settings, server: Server, say: Say, deployment, schedule_text: str, poll_seconds: float,
                 catch_up_missed: bool, stop_timeout: float, ready: Callable[[], None] | None = None) -> None:
    from prefect.client.orchestration import get_client  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def request_stop() -> None:
        if stop.is_set():
            say("second stop signal: cancelling the run in progress (the warehouse keeps its last snapshot) …", "yellow")
            loop.call_soon_threadsafe(cancel_now.set)
        else:
            say(f"stopping: no new runs; a run in progress may finish (up to {stop_timeout:.0f} s; signal again to cancel it) …",
                "yellow")
            loop.call_soon_threadsafe(stop.set)

    cancel_now = asyncio.Event()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, request_stop)
    runner = _runner_class()(name=f"govfacts-serve-{os.getpid()}", limit=1, query_seconds=poll_seconds, pause_on_shutdown=True)
    deployment_id = await runner.aadd_deployment(deployment)
    since = datetime.now(timezone.utc)
    async with get_client() as client:
        say(f"serving {FLOW_NAME}/{deployment.name} {schedule_text}: {settings.inbox} -> {settings.warehouse}", "bold")
        say(f"Prefect API: {server.api_url}" + (f"   UI: {server.ui_url}" if server.ui_url else ""), "")
        if server.log:
            say(f"Prefect server log: {server.log}", "")
        if catch_up_missed and await catch_up(client, deployment_id, deployment.schedules[0].schedule, since):
            say("no run since the schedule last fired: one catch-up run starts now", "")
        say("Ctrl-C (or SIGTERM) stops", "")
        if ready:
            ready()
        log_watch, seen = ServerLogWatcher(server.log), {}
        watcher = asyncio.create_task(watch_runs(client, deployment_id, settings, server, say, since, seen, log_watch=log_watch))
        runner_task = asyncio.create_task(runner.start())
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({runner_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        try:
            if runner_task not in done:
                runner.stopping = runner._scheduled_run_poller.stopping = True  # what Runner.astop does first: take no new run
                await _drain(client, deployment_id, stop_timeout, cancel_now)
                # a run's process outlives its final state by a moment; stopping the Runner before it exits would
                # mark the finished run Cancelled
                deadline = time.monotonic() + 30
                while runner._process_manager.flow_run_ids() and time.monotonic() < deadline and not cancel_now.is_set():
                    await asyncio.sleep(0.2)
                await runner.astop()  # cancels what is still running (Prefect marks it Cancelled), ends the loops
            await runner_task
        finally:
            stopper.cancel()
            watcher.cancel()
            try:
                await watcher
            except asyncio.CancelledError:
                pass
            # one last look, so the user sees how the run in progress ended
            await watch_runs(client, deployment_id, settings, server, say, since, seen, log_watch=log_watch, once=True)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)


def serve(settings: Settings, say: Say, cron: str | None = None, timezone_: str = "UTC", interval: float | None = None,
          name: str = DEPLOYMENT_NAME, port: int = DEFAULT_PORT, ui: bool = True, poll_seconds: float = 2.0,
          catch_up_missed: bool = True, stop_timeout: float = 300.0, ready: Callable[[], None] | None = None) -> None:
    """Serve the ingest flow on its schedule until SIGINT/SIGTERM; see the module docstring."""
    from prefect.settings import PREFECT_API_URL, PREFECT_LOGGING_LEVEL, temporary_settings  # noqa: PLC0415

    os.environ.update(runner_env(settings))  # flow-run subprocesses inherit the task runner and batching
    # Flow runs send their INFO logs to the API (the UI's Logs tab), and only warnings to the terminal of serve,
    # where the run's start and end are printed by watch_runs.
    os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "WARNING"
    # ... without their tracebacks: a failed run is told in one line by watch_runs, with where its log (and stack) is
    os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_CLASS"] = f"{__name__}.ConsoleWithoutTracebacks"
    before = os.environ.get("PREFECT_API_URL")
    with _server(port, ui) as server:
        os.environ["PREFECT_API_URL"] = server.api_url  # for the flow-run subprocesses
        try:
            # the Runner passes its own settings to each flow-run subprocess, so they are set here, for both
            with temporary_settings(updates={PREFECT_API_URL: server.api_url, PREFECT_LOGGING_LEVEL: "INFO"}):
                deployment = build_deployment(settings, cron, timezone_, name, interval)
                asyncio.run(_serve(settings, server, say, deployment, describe_schedule(cron, timezone_, interval), poll_seconds,
                                   catch_up_missed, stop_timeout, ready))
        finally:
            if before is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = before
    say("stopped", "")


@contextmanager
def _server(port: int, ui: bool) -> Iterator[Server]:
    from prefect.settings import PREFECT_API_URL  # noqa: PLC0415

    if PREFECT_API_URL.value():
        yield external_server(PREFECT_API_URL.value())
        return
    with local_server(Path(os.environ.get("PREFECT_HOME", ".prefect")), port=port, ui=ui) as server:
        yield server


def run_history(settings: Settings, limit: int = 50, with_prefect: bool = True) -> list[dict]:
    """Past runs, newest first: Prefect's flow runs of the ingest flow on this warehouse (state, times) beside what each left in it.

    A run that changed nothing, or failed, has no row in the warehouse's ``runs``; Prefect
    knows its state. Without a Prefect API (``with_prefect=False``, or none answers) the
    warehouse's rows alone are listed.
    """
    from warehouse.snapshots import query  # noqa: PLC0415

    try:
        _, rows = query(settings, """
            SELECT r.flow_run_id, r.started_at, r.files_in, r.documents, r.files_skipped, r.files_quarantined, r.facts_extracted,
                   r.facts_published, r.facts_quarantined, r.expectations_passed, r.expectations_failed, r.snapshot_id
            FROM runs r ORDER BY r.snapshot_id DESC""")
    except Exception:  # noqa: BLE001 (no warehouse yet)
        rows = []
    keys = ("flow_run_id", "started", "files_in", "documents", "skipped", "files_quarantined", "facts", "published",
            "facts_quarantined", "expectations_passed", "expectations_failed", "snapshot")
    loaded = {r[0]: dict(zip(keys, r)) for r in rows}
    history: list[dict] = []
    if with_prefect:
        from prefect.client.orchestration import get_client  # noqa: PLC0415
        from prefect.client.schemas.filters import FlowFilter, FlowFilterName  # noqa: PLC0415
        from prefect.client.schemas.sorting import FlowRunSort  # noqa: PLC0415

        runs: list = []
        with get_client(sync_client=True) as client:
            for offset in range(0, 10_000, 200):  # the API serves at most 200 a page; runs not yet started come last
                page = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
                                             sort=FlowRunSort.START_TIME_DESC, limit=200, offset=offset)
                # a shared server holds other warehouses' runs too: this one's are those that wrote (or would write) to it
                runs += [r for r in page if r.start_time and (str(r.id) in loaded or _same_warehouse(settings, r.parameters))]
                if len(page) < 200 or len(runs) >= limit or not page[-1].start_time:
                    break
        runs = runs[:limit]
        for r in runs:
            row = loaded.pop(str(r.id), None) or {"flow_run_id": str(r.id)}
            history.append({**row, "name": r.name, "state": r.state.name if r.state else "", "started": r.start_time,
                            "seconds": r.total_run_time.total_seconds() if r.total_run_time else None,
                            "message": (r.state.message or "") if r.state and not r.state.is_completed() else ""})
    history += [{**row, "name": "", "state": "Completed", "seconds": None, "message": ""} for row in loaded.values()]
    history.sort(key=lambda h: str(h.get("started") or ""), reverse=True)
    return history[:limit]


def _same_warehouse(settings: Settings, params: dict | None) -> bool:
    """Whether a flow run's parameters name this warehouse (its PostgreSQL catalog, or its directory)."""
    params = params or {}
    if settings.catalog == "postgres" or params.get("catalog") == "postgres":
        return params.get("catalog") == settings.catalog and params.get("postgres_dsn") == settings.postgres_dsn
    try:
        return Path(str(params.get("warehouse"))).resolve() == Path(settings.warehouse).resolve()
    except (OSError, ValueError):
        return False


def flow_run_logs(flow_run_id: str) -> list[tuple]:
    """(time, level name, message) of every log line a flow run sent to the Prefect API, oldest first."""
    import logging  # noqa: PLC0415
    from uuid import UUID  # noqa: PLC0415

    from prefect.client.orchestration import get_client  # noqa: PLC0415
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId  # noqa: PLC0415
    from prefect.client.schemas.sorting import LogSort  # noqa: PLC0415

    try:
        run_id = UUID(flow_run_id)
    except ValueError:
        raise ServeError(f"{flow_run_id!r} is not a flow run id: take one from `govfacts runs`") from None
    lines, offset = [], 0
    with get_client(sync_client=True) as client:
        while True:
            batch = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])),
                                     sort=LogSort.TIMESTAMP_ASC, limit=200, offset=offset)
            lines += [(log.timestamp, logging.getLevelName(log.level), log.message) for log in batch]
            if len(batch) < 200:
                return lines
            offset += 200
