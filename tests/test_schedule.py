"""Scheduled runs: the flow served as a Prefect deployment on a cron, and a prefect.yaml for workers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from transforms.settings import PROJECT_ROOT, load_settings

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


def test_serve_says_what_to_do_when_its_server_cannot_start(tmp_path: Path):
    """A port taken by another program, and a server that exits at start: one message each, with the way out."""
    import os
    import socket
    import subprocess
    import sys

    (tmp_path / "inbox").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GOVFACTS_"))}
    env.update(PREFECT_HOME=str(tmp_path / ".prefect"), PYTHONPATH=str(PROJECT_ROOT))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "govfacts.cli", "serve", "--inbox", "inbox", "--port", str(port)],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr and "--port" in done.stderr, done.stderr

    # a database the server cannot open: it exits, and serve shows the end of its log
    env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{tmp_path}/missing/dir/prefect.db"
    done = subprocess.run([sys.executable, "-m", "govfacts.cli", "serve", "--inbox", "inbox", "--port", "0"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 1 and "Traceback" not in done.stderr.split("The end of its log")[0], done.stderr
    unwrapped = "".join(done.stderr.split())  # rich wraps long lines to the terminal's width
    assert "thePrefectservercouldnotstart" in unwrapped and str(tmp_path / ".prefect" / "server.log") in unwrapped, done.stderr
    assert "unabletoopendatabasefile" in unwrapped, done.stderr
