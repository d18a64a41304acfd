"""A real Dask cluster, started as a user starts one, with the PostgreSQL catalog and the S3 data path.

``dask scheduler`` and two ``dask worker`` commands are separate processes (each worker a nanny and its
worker process) on a ``tcp://`` address; the workers get the AWS environment and nothing else of the
flow's: the staged bytes come with each batch, the parts go to the object store beside the lake, the
catalog is the PostgreSQL server of tests/pg.py and the S3 server is moto (tests/s3.py). The facts must
equal the default runner's (threads, SQLite, local lake), and a worker killed mid-run leaves one of two
outcomes: the run completes with the same facts, or it fails with the previous snapshot intact.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pg import free_port
from tests.s3 import SECRET_KEY, s3_server  # noqa: F401 (the fixture)
from tests.test_s3 import clean_env, no_secret_under

PROJECT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((PROJECT / "seeds" / "reports").iterdir())
FACT_KEY = ("SELECT doc_id, indicator, measure, period, kind, value, unit, start, \"end\", dq_status, dq_failed, evidence "
            "FROM facts ORDER BY ALL")
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.e2e


class Cluster:
    """``dask scheduler`` + ``dask worker`` ×2, each in a session of its own (so a worker can be killed whole)."""

    def __init__(self, root: Path, env: dict[str, str]):
        self.root, self.env, self.port = root, env, free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.scheduler = self._start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"])
        self.workers = [self._start(f"worker{i}", ["worker", self.address, "--nthreads", "1", "--no-dashboard", "--name", f"w{i}",
                                                  "--memory-limit", "1.5GiB"]) for i in (1, 2)]
        self.wait_for_workers(2)

    def _start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "wb")
        return subprocess.Popen([str(BIN / "dask"), *argv], cwd=self.root, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def wait_for_workers(self, n: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            logs = (self.root / "scheduler.log").read_text(errors="replace")
            if len(set(re.findall(r"Register worker .*name: (w\d)", logs))) >= n:
                return
            time.sleep(0.5)
        raise AssertionError(f"{n} workers did not register:\n{logs[-3000:]}")

    def kill_worker(self, i: int) -> None:
        """SIGKILL a whole ``dask worker`` command (nanny and worker process): the machine is gone."""
        os.killpg(self.workers[i].pid, signal.SIGKILL)
        self.workers[i].wait(timeout=30)

    def close(self) -> None:
        for p in [*self.workers, self.scheduler]:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in [*self.workers, self.scheduler]:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=30)


def govfacts(cwd: Path, env: dict[str, str], *argv: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "govfacts.cli", *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    (cwd / "outputs.log").open("a").write(f"$ govfacts {' '.join(argv)}\n{done.stdout}\n{done.stderr}\n")
    if check:
        assert done.returncode == 0, f"govfacts {' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _settings(env: dict[str, str]):
    from transforms.settings import load_settings  # noqa: PLC0415

    return load_settings(warehouse=env["GOVFACTS_WAREHOUSE"], catalog=env.get("GOVFACTS_CATALOG", "sqlite"),
                         postgres_dsn=env.get("GOVFACTS_POSTGRES_DSN", ""), data_path=env.get("GOVFACTS_DATA_PATH", ""))


def facts(cwd: Path, env: dict[str, str]) -> list[tuple]:
    """The warehouse's facts, read in this process (a fresh session: the AWS environment of ``env``)."""
    from warehouse.catalog import connect  # noqa: PLC0415

    saved = {k: os.environ.get(k) for k in env if k.startswith("AWS_")}
    os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    try:
        con = connect(_settings(env), read_only=True, fresh=True)
        try:
            return con.execute(FACT_KEY).fetchall()
        finally:
            con.close()
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def latest(cwd: Path, env: dict[str, str]) -> int:
    from warehouse.catalog import connect  # noqa: PLC0415

    con = connect(_settings(env), read_only=True, fresh=True)  # the snapshot list is in the catalog: no S3 read
    try:
        return con.execute("SELECT max(snapshot_id) FROM wh.snapshots()").fetchone()[0]
    finally:
        con.close()


def fill(inbox: Path, samples: list[Path]) -> Path:
    inbox.mkdir(exist_ok=True)
    for p in samples:
        (inbox / p.name).write_bytes(p.read_bytes())
    return inbox


@pytest.fixture
def team(tmp_path: Path, s3_server, postgres_server):  # noqa: F811
    """The environment of a team's setup: PostgreSQL catalog, S3 lake, a Dask cluster of two worker commands."""
    bucket = s3_server.new_bucket()
    aws = s3_server.env()
    env = clean_env(**aws, GOVFACTS_CATALOG="postgres", GOVFACTS_POSTGRES_DSN=postgres_server.create_database(),
                    GOVFACTS_DATA_PATH=f"s3://{bucket}/lake/", GOVFACTS_WAREHOUSE=str(tmp_path / "wh"), GOVFACTS_BATCH_SIZE="1")
    cluster_root = tmp_path / "cluster"
    cluster_root.mkdir()
    cluster = Cluster(cluster_root, clean_env(**aws))
    try:
        yield env, bucket, cluster
    finally:
        cluster.close()


def default_facts(tmp_path: Path, samples: list[Path]) -> list[dict]:
    """The facts the default runner (threads, SQLite catalog, local lake) loads from these reports."""
    root = tmp_path / "default"
    root.mkdir()
    env = clean_env(GOVFACTS_WAREHOUSE=str(root / "wh"))
    govfacts(root, env, "run", "--inbox", str(fill(root / "inbox", samples)))
    return facts(root, env)


def test_a_dask_cluster_of_worker_commands_with_postgres_and_s3_survives_a_killed_worker_and_loads_the_default_runners_facts(
        team, tmp_path: Path, s3_server):  # noqa: F811
    """One cluster for the whole story (it costs seconds to start): a run, a run that loses a worker, the facts compared."""
    env, bucket, cluster = team
    run = ["run", "--inbox", str(tmp_path / "inbox"), "--task-runner", "dask", "--dask-address", cluster.address]
    inbox = fill(tmp_path / "inbox", SAMPLES[:2])
    mark = s3_server.log.stat().st_size
    done = govfacts(tmp_path, env, *run)
    assert "DaskTaskRunner" in done.stdout and "counts reconcile" in done.stdout
    before, before_facts = latest(tmp_path, env), facts(tmp_path, env)
    assert len(before_facts) > 20

    # the parts went to the object store beside the lake, and the run's cleanup removed them there
    requests = s3_server.log.read_bytes()[mark:].decode(errors="replace")
    puts = re.findall(rf'"PUT /{bucket}/lake-spill/(\w+)/([\w-]+)\.parquet', requests)
    assert {name.split("-b")[0] for _, name in puts} >= {"documents", "document_text"}, requests[-3000:]
    assert re.search(rf'"(DELETE /{bucket}/lake-spill/|POST /{bucket}/?\?delete)', requests), "the run's cleanup removed them"
    assert [k for k in s3_server.keys(bucket, "lake-spill/") if not k.endswith("/")] == []
    assert not list((tmp_path / "wh").glob("spill/*/*.parquet")), "nothing spilled on the flow's disk"
    assert [k for k in s3_server.keys(bucket, "lake/") if k.endswith(".parquet")]
    logs = [(cluster.root / f"worker{i}.log").read_text(errors="replace") for i in (1, 2)]
    assert all("Task run 'transform" in log for log in logs), "both workers transformed batches"

    # three more reports; one `dask worker` (nanny and worker) is SIGKILLed once the run's first parts are written
    fill(inbox, SAMPLES[2:])
    mark = s3_server.log.stat().st_size
    out = open(tmp_path / "killed-run.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "govfacts.cli", *run], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            if "lake-spill/" in s3_server.log.read_bytes()[mark:].decode(errors="replace"):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before a worker could be killed"
        cluster.kill_worker(0)
        code = proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = (tmp_path / "killed-run.log").read_text()
    (tmp_path / "outputs.log").open("a").write(output)
    reference = default_facts(tmp_path, SAMPLES)
    if code == 0:  # outcome 1: the run completed on the worker left
        assert latest(tmp_path, env) == before + 1 and facts(tmp_path, env) == reference, output
    else:  # outcome 2: it failed, and the warehouse is at its previous snapshot; the next run completes it
        assert latest(tmp_path, env) == before and facts(tmp_path, env) == before_facts, output
        govfacts(tmp_path, env, *run)
        assert facts(tmp_path, env) == reference
    assert [k for k in s3_server.keys(bucket, "lake-spill/") if not k.endswith("/")] == []

    # an unchanged re-run on the cluster commits nothing
    snap = latest(tmp_path, env)
    govfacts(tmp_path, env, *run)
    assert latest(tmp_path, env) == snap

    # the secret is in no output, no file of the flow or of the cluster's logs, nor in the catalog
    assert SECRET_KEY not in (tmp_path / "outputs.log").read_text()
    assert no_secret_under(tmp_path) == []
    pg_dump = Path("/usr/lib/postgresql/15/bin/pg_dump")
    if pg_dump.exists():
        dump = subprocess.run([str(pg_dump), "-d", env["GOVFACTS_POSTGRES_DSN"]], capture_output=True, text=True, timeout=120)
        assert dump.returncode == 0 and f"s3://{bucket}/lake/" in dump.stdout and SECRET_KEY not in dump.stdout
