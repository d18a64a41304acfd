"""Scheduled runs: the flow served as a Prefect deployment on a cron, and a prefect.yaml for workers."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
import yaml

from govfacts.settings import PROJECT_ROOT, load_settings
from warehouse.snapshots import query

SAMPLES = sorted((PROJECT_ROOT / "seeds" / "reports").iterdir())


def test_deploy_writes_a_prefect_yaml_with_the_cron_the_parameters_and_the_runner(tmp_path: Path):
    from flows.deploy import write_prefect_yaml

    settings = load_settings(inbox=tmp_path / "inbox", warehouse=tmp_path / "wh", task_runner="dask",
                             dask_address="tcp://scheduler:8786")
    path = write_prefect_yaml(tmp_path / "prefect.yaml", settings, cron="30 5 * * 1-5", timezone="Asia/Shanghai")
    doc = yaml.safe_load(path.read_text())
    (dep,) = doc["deployments"]
    assert dep["entrypoint"] == "flows/ingest.py:ingest" and (PROJECT_ROOT / "flows" / "ingest.py").is_file()
    assert dep["schedules"] == [{"cron": "30 5 * * 1-5", "timezone": "Asia/Shanghai", "active": True}]
    assert dep["parameters"] == {"inbox": str(tmp_path / "inbox"), "warehouse": str(tmp_path / "wh"), "catalog": "sqlite"}
    assert dep["work_pool"]["name"] == "govfacts" and dep["concurrency_limit"] == 1
    env = dep["work_pool"]["job_variables"]["env"]
    assert env["GOVFACTS_TASK_RUNNER"] == "dask" and env["GOVFACTS_DASK_ADDRESS"] == "tcp://scheduler:8786"
    assert doc["pull"] == [{"prefect.deployments.steps.set_working_directory": {"directory": str(PROJECT_ROOT)}}]


@pytest.mark.parametrize("cron, timezone", [("every morning", "UTC"), ("0 6 * * *", "Mars/Olympus")], ids=["cron", "timezone"])
def test_a_bad_schedule_is_refused_saying_what_to_write(tmp_path: Path, cron: str, timezone: str):
    from flows.deploy import write_prefect_yaml

    with pytest.raises(ValueError, match=r"five cron fields.*IANA time zone"):
        write_prefect_yaml(tmp_path / "prefect.yaml", load_settings(inbox=tmp_path), cron=cron, timezone=timezone)
    assert not (tmp_path / "prefect.yaml").exists()


def _run_scheduled(deployment_name: str, deployment) -> str:
    """Trigger the deployment now and let a Prefect Runner (what ``serve`` runs) execute it; return the flow run id."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    from flows.deploy import make_runner

    flow_run = run_deployment(deployment_name, timeout=0)
    asyncio.run(make_runner(deployment, query_seconds=1).start(run_once=True))
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(flow_run.id).state
    assert state.is_completed(), state
    return str(flow_run.id)


def _processed_by(settings, flow_run_id: str) -> list[str]:
    _, rows = query(settings, "SELECT d.source_path FROM documents d JOIN runs r USING (run_id) WHERE r.flow_run_id = ? ORDER BY 1", [flow_run_id])
    return [Path(r[0]).name for r in rows]


# ≈40 s (two flow runs in Runner subprocesses, each importing Prefect, DuckDB and GX), yet in the default run:
# it is issue 7's proof that scheduled runs work, and only a default-run test guards it.
def test_served_deployment_runs_on_trigger_and_processes_exactly_the_new_files(prefect_harness, tmp_path: Path):
    from prefect.client.orchestration import get_client

    from flows.deploy import build_deployment

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for p in SAMPLES[:2]:
        shutil.copy(p, inbox / p.name)
    settings = load_settings(inbox=inbox, warehouse=tmp_path / "wh")
    deployment = build_deployment(settings, cron="0 6 * * *", timezone="Asia/Shanghai", name="test-served")
    deployment_id = deployment.apply()

    with get_client(sync_client=True) as client:
        registered = client.read_deployment(deployment_id)
    (schedule,) = registered.schedules
    assert schedule.active and schedule.schedule.cron == "0 6 * * *" and schedule.schedule.timezone == "Asia/Shanghai"
    assert registered.parameters == {"inbox": str(inbox), "warehouse": str(tmp_path / "wh"), "catalog": "sqlite"}

    first = _run_scheduled("govfacts-ingest/test-served", deployment)
    assert _processed_by(settings, first) == [p.name for p in SAMPLES[:2]]

    for p in SAMPLES[2:4]:  # two reports land in the inbox before the next scheduled run
        shutil.copy(p, inbox / f"new-{p.name}")
    second = _run_scheduled("govfacts-ingest/test-served", deployment)
    _, versions = query(settings, "SELECT DISTINCT code_version FROM runs")
    assert len(versions) == 1, "transforms/, expectations/ or seeds/ changed between the two runs: everything was re-processed"
    assert _processed_by(settings, second) == [f"new-{p.name}" for p in SAMPLES[2:4]]
    _, runs = query(settings, "SELECT documents, files_skipped FROM runs WHERE flow_run_id = ?", [second])
    assert runs == [(2, 2)]


def test_deploy_apply_registers_the_yaml_with_the_server(prefect_harness, tmp_path: Path):
    from prefect.client.orchestration import get_client

    from flows.deploy import apply_prefect_yaml, write_prefect_yaml

    settings = load_settings(inbox=tmp_path / "inbox", warehouse=tmp_path / "wh")
    path = write_prefect_yaml(tmp_path / "prefect.yaml", settings, cron="0 7 * * *", name="test-yaml", pool="govfacts-test")
    apply_prefect_yaml(path, pool="govfacts-test")
    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name("govfacts-ingest/test-yaml")
    assert dep.work_pool_name == "govfacts-test" and dep.schedules[0].schedule.cron == "0 7 * * *"
    assert dep.parameters["inbox"] == str(tmp_path / "inbox")
