"""Scheduled runs with Prefect's own machinery: a served deployment, or a prefect.yaml for workers.

Two ways to run govfacts unattended, both Prefect-native (no home-made loop):

* ``govfacts serve --inbox DIR --cron "0 6 * * *"``: ``build_deployment`` turns the ingest
  flow into a deployment with that cron schedule and ``serve`` hands it to Prefect's
  ``serve`` (a Runner in this process that polls the API and runs each scheduled flow
  run in a subprocess). Schedules need a real Prefect server — the ephemeral one has no
  scheduler — so when ``PREFECT_API_URL`` is not set, ``serve`` starts ``prefect server
  start`` on localhost for as long as it serves (database under ``PREFECT_HOME``).
* ``govfacts deploy``: ``write_prefect_yaml`` writes a prefect.yaml (a process work pool,
  the cron schedule, the parameters, the task-runner environment) for users who run a
  Prefect server and workers; ``apply_prefect_yaml`` registers it with ``prefect deploy``.

Parameters (inbox, warehouse, catalog) are flow parameters, so one deployment can be
triggered by hand on another inbox (``prefect deployment run ... -p inbox=...``).
Each run is incremental: only files whose bytes the warehouse has not loaded at the
current pipeline version are processed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import yaml

from govfacts.settings import PROJECT_ROOT, Settings

DEPLOYMENT_NAME = "govfacts-daily"
FLOW_NAME = "govfacts-ingest"
DEFAULT_CRON = "0 6 * * *"
WORK_POOL = "govfacts"
ENTRYPOINT = "flows/ingest.py:ingest"  # relative to the project root (prefect.yaml's working directory)
RUNNER_ENV = ("task_runner", "dask_address", "batch_size", "max_workers", "validate_batch_size")


def parameters(settings: Settings) -> dict:
    """The flow parameters a scheduled run gets: where to read, where to write, which catalog."""
    params = dict(inbox=str(settings.inbox), warehouse=str(settings.warehouse), catalog=settings.catalog)
    if settings.catalog == "postgres":
        params["postgres_dsn"] = settings.postgres_dsn
    return params


def runner_env(settings: Settings) -> dict[str, str]:
    """``GOVFACTS_*`` variables that choose the task runner and batching inside each flow-run process."""
    return {f"GOVFACTS_{k.upper()}": str(getattr(settings, k)) for k in RUNNER_ENV if getattr(settings, k) not in ("", None)}


def build_deployment(settings: Settings, cron: str = DEFAULT_CRON, timezone: str = "UTC", name: str = DEPLOYMENT_NAME):
    """The ingest flow as a Prefect deployment with a cron schedule and the settings' parameters.

    One run at a time (``concurrency_limit=1``): two overlapping runs would process the
    same new files twice (harmless, the load replaces rows by content hash, but wasted).
    """
    from prefect.deployments.runner import EntrypointType  # noqa: PLC0415
    from prefect.schedules import Cron  # noqa: PLC0415

    from flows.ingest import ingest  # noqa: PLC0415

    _check_cron(cron, timezone)
    return ingest.to_deployment(
        name=name,
        schedules=[Cron(cron, timezone=timezone)],
        parameters=parameters(settings),
        concurrency_limit=1,
        description=f"govfacts: ingest new reports from {settings.inbox} into {settings.warehouse} ({cron}, {timezone})",
        tags=["govfacts"],
        entrypoint_type=EntrypointType.MODULE_PATH,  # importable wherever govfacts is installed, whatever the cwd
    )


def _check_cron(cron: str, timezone: str = "UTC") -> None:
    """Refuse a bad cron expression or time zone with a message saying what to write (Prefect's own validation)."""
    from prefect.client.schemas.schedules import CronSchedule  # noqa: PLC0415

    try:
        CronSchedule(cron=cron, timezone=timezone)
    except ValueError:
        raise ValueError(f"invalid schedule {cron!r} in time zone {timezone!r}: use five cron fields, e.g. "
                         "\"0 6 * * *\" for 06:00 every day, and an IANA time zone such as Asia/Shanghai") from None


def make_runner(*deployments, limit: int | None = 1, query_seconds: float | None = None):
    """A Prefect Runner serving ``deployments`` (what ``prefect.serve`` builds), for serve and tests."""
    from prefect.runner import Runner  # noqa: PLC0415

    runner = Runner(name="govfacts", limit=limit, query_seconds=query_seconds, pause_on_shutdown=False)
    for d in deployments:
        runner.add_deployment(d)
    return runner


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def prefect_server(timeout: float = 180.0) -> Iterator[str]:
    """The Prefect API to schedule against: ``PREFECT_API_URL`` if set, else a local ``prefect server start``.

    The local server (scheduler included) lives as long as the context; its database is
    in ``PREFECT_HOME``, so deployments and run history survive a restart of ``serve``.
    """
    from prefect.settings import PREFECT_API_URL  # noqa: PLC0415

    if PREFECT_API_URL.value():
        yield PREFECT_API_URL.value()
        return
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    log = Path(os.environ.get("PREFECT_HOME", ".prefect")) / "server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                 "--port", str(port), "--no-ui", "--analytics-off"], stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(url, proc, timeout, log)
        os.environ["PREFECT_API_URL"] = url
        yield url
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the local Prefect server exited with code {proc.returncode}; see {log}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the local Prefect server did not answer at {url} within {timeout:.0f} s; see {log}")


def serve(settings: Settings, cron: str = DEFAULT_CRON, timezone: str = "UTC", name: str = DEPLOYMENT_NAME) -> None:
    """Serve the ingest flow on a cron schedule until interrupted (Ctrl-C), with Prefect's ``serve``."""
    from prefect import serve as prefect_serve  # noqa: PLC0415

    os.environ.update(runner_env(settings))  # flow-run subprocesses inherit the task runner and batching
    with prefect_server():
        deployment = build_deployment(settings, cron, timezone, name)
        prefect_serve(deployment, limit=1, pause_on_shutdown=False)


def prefect_yaml(settings: Settings, cron: str = DEFAULT_CRON, timezone: str = "UTC", name: str = DEPLOYMENT_NAME,
                 pool: str = WORK_POOL) -> dict:
    """The prefect.yaml document for a Prefect server with workers: a process pool runs the flow in the project."""
    return {
        "name": "govfacts",
        "prefect-version": _prefect_version(),
        "build": None,
        "push": None,
        "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": str(PROJECT_ROOT)}}],
        "deployments": [{
            "name": name,
            "description": f"govfacts: ingest new reports from {settings.inbox} into {settings.warehouse}",
            "entrypoint": ENTRYPOINT,
            "tags": ["govfacts"],
            "parameters": parameters(settings),
            "schedules": [{"cron": cron, "timezone": timezone, "active": True}],
            "concurrency_limit": 1,
            "work_pool": {"name": pool, "work_queue_name": None, "job_variables": {"env": runner_env(settings)}},
        }],
    }


def _prefect_version() -> str:
    import prefect  # noqa: PLC0415

    return prefect.__version__


def write_prefect_yaml(path: Path, settings: Settings, cron: str = DEFAULT_CRON, timezone: str = "UTC",
                       name: str = DEPLOYMENT_NAME, pool: str = WORK_POOL) -> Path:
    """Write prefect.yaml; return its path. Overwrites: the file is generated from the settings."""
    _check_cron(cron, timezone)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ("# Generated by `govfacts deploy`. Register with `govfacts deploy --apply` (or `prefect deploy --all`\n"
              f"# from {PROJECT_ROOT}); start a worker with `prefect worker start --pool {pool}`.\n")
    path.write_text(header + yaml.safe_dump(prefect_yaml(settings, cron, timezone, name, pool), sort_keys=False, allow_unicode=True))
    return path


def ensure_work_pool(pool: str = WORK_POOL) -> bool:
    """Create the process work pool if the server does not have it; return True when created."""
    from prefect.client.orchestration import get_client  # noqa: PLC0415
    from prefect.client.schemas.actions import WorkPoolCreate  # noqa: PLC0415
    from prefect.exceptions import ObjectNotFound  # noqa: PLC0415

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
            return False
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
            return True


def apply_prefect_yaml(path: Path, pool: str = WORK_POOL) -> str:
    """Register the deployments of ``path`` with the configured Prefect server (``prefect deploy --all``).

    Runs Prefect's own CLI on the file, so what is applied is exactly what the file says.
    Returns the CLI's output; raises naming the file when Prefect refuses it.
    """
    from prefect.settings import PREFECT_API_URL, get_current_settings  # noqa: PLC0415

    if not PREFECT_API_URL.value():
        raise RuntimeError("no Prefect server to apply to: set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api) "
                           "or start one with `prefect server start`")
    ensure_work_pool(pool)
    env = {**os.environ, **get_current_settings().to_environment_variables(exclude_unset=True)}
    done = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all", "--prefect-file", str(Path(path).resolve())],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"prefect deploy refused {path}:\n{done.stdout}\n{done.stderr}")
    return done.stdout
