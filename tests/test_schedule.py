"""Scheduled runs: the flow served as a Prefect deployment on a cron, and a prefect.yaml for workers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from govfacts.settings import PROJECT_ROOT, load_settings

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
