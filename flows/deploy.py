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
import subprocess
import sys
from pathlib import Path

import yaml

from transforms.settings import PROJECT_ROOT, Settings

DEPLOYMENT_NAME = "govfacts-daily"
FLOW_NAME = "govfacts-ingest"
DEFAULT_CRON = "0 6 * * *"
WORK_POOL = "govfacts"
ENTRYPOINT = "flows/ingest.py:ingest"  # relative to the project root (prefect.yaml's working directory)
RUNNER_ENV = ("task_runner", "dask_address", "batch_size", "max_workers", "validate_batch_size")


def parameters(settings: Settings) -> dict:
    """The flow parameters a scheduled run gets: where to read, where to write, which catalog."""
    params = dict(inbox=str(settings.inbox), warehouse=str(settings.warehouse), catalog=str(settings.catalog))
    if settings.catalog == "postgres":
        params["postgres_dsn"] = settings.postgres_dsn
    return params


def runner_env(settings: Settings) -> dict[str, str]:
    """``GOVFACTS_*`` variables that choose the task runner and batching inside each flow-run process."""
    return {f"GOVFACTS_{k.upper()}": str(getattr(settings, k)) for k in RUNNER_ENV if getattr(settings, k) not in ("", None)}


def schedule_for(cron: str | None = DEFAULT_CRON, timezone: str = "UTC", interval: float | None = None):
    """A Prefect schedule: every ``interval`` seconds when given, else the cron expression in ``timezone``."""
    from prefect.schedules import Cron, Interval  # noqa: PLC0415

    if interval is not None:
        if interval < 1:
            raise ValueError(f"invalid interval {interval!r}: give a number of seconds of at least 1, e.g. --interval 900")
        return Interval(interval, timezone=timezone)
    _check_cron(cron, timezone)
    return Cron(cron, timezone=timezone)


def describe_schedule(cron: str | None, timezone: str, interval: float | None) -> str:
    return f"every {interval:g} s" if interval is not None else f"{cron!r} ({timezone})"


def build_deployment(settings: Settings, cron: str | None = DEFAULT_CRON, timezone: str = "UTC", name: str = DEPLOYMENT_NAME,
                     interval: float | None = None):
    """The ingest flow as a Prefect deployment on a schedule (cron, or an interval in seconds), with the settings' parameters.

    One run at a time (``concurrency_limit=1``, Prefect's default ENQUEUE strategy): a run
    triggered while another is in progress waits for it rather than staging the same new
    files twice. The slot is a lease on the server (see ``flows/serve.py`` for the lease
    storage the local server uses); the flow-run engine renews it while the run works.
    """
    from prefect.deployments.runner import EntrypointType  # noqa: PLC0415

    from flows.ingest import ingest  # noqa: PLC0415

    return ingest.to_deployment(
        name=name,
        schedules=[schedule_for(cron, timezone, interval)],
        parameters=parameters(settings),
        concurrency_limit=1,
        description=f"govfacts: ingest new reports from {settings.inbox} into {settings.warehouse} "
                    f"({describe_schedule(cron, timezone, interval)})",
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


def prefect_yaml(settings: Settings, cron: str | None = DEFAULT_CRON, timezone: str = "UTC", name: str = DEPLOYMENT_NAME,
                 pool: str = WORK_POOL, interval: float | None = None) -> dict:
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
            "schedules": [{"interval": interval, "timezone": timezone, "active": True} if interval is not None
                          else {"cron": cron, "timezone": timezone, "active": True}],
            "concurrency_limit": 1,
            "work_pool": {"name": pool, "work_queue_name": None, "job_variables": {"env": runner_env(settings)}},
        }],
    }


def _prefect_version() -> str:
    import prefect  # noqa: PLC0415

    return prefect.__version__


def write_prefect_yaml(path: Path, settings: Settings, cron: str | None = DEFAULT_CRON, timezone: str = "UTC",
                       name: str = DEPLOYMENT_NAME, pool: str = WORK_POOL, interval: float | None = None) -> Path:
    """Write prefect.yaml; return its path. Overwrites: the file is generated from the settings."""
    schedule_for(cron, timezone, interval)  # refuse a bad schedule before writing anything
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ("# Generated by `govfacts deploy`. Register with `govfacts deploy --apply` (or `prefect deploy --all`\n"
              f"# from {PROJECT_ROOT}); start a worker with `prefect worker start --pool {pool}`.\n")
    path.write_text(header + yaml.safe_dump(prefect_yaml(settings, cron, timezone, name, pool, interval), sort_keys=False, allow_unicode=True))
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
