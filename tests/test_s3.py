"""Object storage as the data path: a DuckLake lake on a real S3-compatible server (moto, its own process).

`govfacts` runs as a user runs it (a process per command, credentials in the AWS environment) and
the warehouse's catalog stays local: load, snapshots, time travel, export, rollback and compact
all work on an ``s3://`` data path, and the secret is nowhere it must not be.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.s3 import ACCESS_KEY, SECRET_KEY, s3_server  # noqa: F401 (the fixture)

PROJECT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((PROJECT / "seeds" / "reports").iterdir())

pytestmark = pytest.mark.e2e


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVFACTS_", "AWS_", "PREFECT_"))}
    env.update(COLUMNS="250", **extra)
    return env


def govfacts(cwd: Path, env: dict[str, str], *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "govfacts.cli", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    (cwd / "outputs.log").open("a").write(f"$ govfacts {' '.join(argv)}\n{done.stdout}\n{done.stderr}\n")
    assert done.returncode == 0, f"govfacts {' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def rows(cwd: Path, env: dict[str, str], sql: str, *extra: str) -> list[dict]:
    out = govfacts(cwd, env, "sql", sql, "--format", "jsonl", *extra).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def no_secret_under(root: Path) -> list[str]:
    """Files under ``root`` holding the secret key (or the key id), as text or bytes."""
    bad = []
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            data = p.read_bytes()
            if SECRET_KEY.encode() in data or ACCESS_KEY.encode() in data:
                bad.append(str(p))
    return bad


def test_an_s3_lake_loads_travels_exports_rolls_back_and_compacts(s3_server, tmp_path: Path):  # noqa: F811
    bucket = s3_server.new_bucket()
    env = clean_env(**s3_server.env(), GOVFACTS_DATA_PATH=f"s3://{bucket}/lake/", GOVFACTS_WAREHOUSE=str(tmp_path / "wh"))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for p in SAMPLES[:3]:
        (inbox / p.name).write_bytes(p.read_bytes())

    govfacts(tmp_path, env, "run", "--inbox", str(inbox))
    s1 = rows(tmp_path, env, "SELECT max(snapshot_id) AS s FROM wh.snapshots()")[0]["s"]
    n1 = rows(tmp_path, env, "SELECT count(*) AS n FROM facts")[0]["n"]
    data = [k for k in s3_server.keys(bucket) if k.endswith(".parquet")]
    assert n1 > 20 and data and all(k.startswith("lake/") for k in data), "the data files are in the bucket"
    assert not (tmp_path / "wh" / "lake").exists(), "nothing of the lake on the local disk"
    assert not [k for k in s3_server.keys(bucket) if "spill" in k], "a local run spills locally, and cleans up"

    for p in SAMPLES[3:]:
        (inbox / p.name).write_bytes(p.read_bytes())
    govfacts(tmp_path, env, "run", "--inbox", str(inbox))
    n2 = rows(tmp_path, env, "SELECT count(*) AS n FROM facts")[0]["n"]
    assert n2 > n1
    snapshots = govfacts(tmp_path, env, "snapshots", "--format", "jsonl").stdout
    assert len([line for line in snapshots.splitlines() if line.strip()]) >= 3

    # time travel, in SQL and with --at
    assert rows(tmp_path, env, "SELECT count(*) AS n FROM facts", "--at", str(s1)) == [{"n": n1}]
    assert rows(tmp_path, env, f"SELECT count(*) AS n FROM facts AT (VERSION => {s1})") == [{"n": n1}]

    # export of the past snapshot, read back from local Parquet
    out = tmp_path / "export"
    govfacts(tmp_path, env, "export", "--at", str(s1), "--format", "parquet", str(out))
    facts = pq.read_table(out / "facts.parquet")
    assert facts.num_rows == n1 and pq.read_metadata(out / "facts.parquet").metadata[b"govfacts.snapshot_id"] == str(s1).encode()

    # rollback to it, as a new snapshot
    govfacts(tmp_path, env, "rollback", str(s1))
    assert rows(tmp_path, env, "SELECT count(*) AS n FROM facts") == [{"n": n1}]

    # compact: expire every snapshot but the latest, delete the data files no snapshot needs any more
    before = set(s3_server.keys(bucket, "lake/"))
    govfacts(tmp_path, env, "compact", "--older-than", "0 seconds", "--yes")
    after = set(s3_server.keys(bucket, "lake/"))
    assert before - after, "compact deleted the objects no snapshot references"
    assert rows(tmp_path, env, "SELECT count(*) AS n FROM facts") == [{"n": n1}]
    assert rows(tmp_path, env, "SELECT count(*) AS n FROM facts_published")[0]["n"] > 0

    # a sandboxed session reads the lake but cannot read the settings httpfs filled from the environment,
    # nor the secret, nor other objects of the store
    shown = govfacts(tmp_path, env, "sql", "SELECT name, value FROM duckdb_settings() WHERE name LIKE 's3%'").stdout
    assert SECRET_KEY not in shown and ACCESS_KEY not in shown
    refused = subprocess.run([sys.executable, "-m", "govfacts.cli", "sql", "SELECT * FROM duckdb_secrets()"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and SECRET_KEY not in refused.stdout + refused.stderr
    refused = subprocess.run([sys.executable, "-m", "govfacts.cli", "sql", f"SELECT * FROM 's3://{bucket}/lake-other/x.parquet'"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0

    # the credentials are in no output, no file of the warehouse (catalog included), no Prefect log, no object
    logged = (tmp_path / "outputs.log").read_text()
    assert SECRET_KEY not in logged and ACCESS_KEY not in logged
    assert no_secret_under(tmp_path) == []
    assert f"s3://{bucket}/lake/".encode() in (tmp_path / "wh" / "catalog.sqlite").read_bytes() or \
        f"s3://{bucket}/lake/".encode() in (tmp_path / "wh" / "catalog.sqlite-wal").read_bytes()
    for key in s3_server.keys(bucket):
        assert SECRET_KEY.encode() not in s3_server.read(bucket, key)


def test_parts_spill_to_and_are_removed_from_the_object_store(s3_server, monkeypatch, tmp_path: Path):  # noqa: F811
    """The part functions a remote cluster's workers use, on s3:// paths: write, list, read back, sweep, remove."""
    import pyarrow as pa

    from transforms.settings import load_settings
    from warehouse.parts import open_spill, part_files, part_path, remove_spill, spill_root, sweep_spills, write_part
    from warehouse.texts import PartTexts

    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    bucket = s3_server.new_bucket()
    settings = load_settings(warehouse=tmp_path / "wh", data_path=f"s3://{bucket}/lake/")
    assert spill_root(settings, shared=False) == str(tmp_path / "wh" / "spill") + "/"
    root = spill_root(settings, shared=True)
    assert root == f"s3://{bucket}/lake-spill/", "beside the lake, where compact's orphan sweep does not reach"

    dead = open_spill(root, "deadrun")
    write_part(dead, "facts", "b000000", pa.table({"doc_id": ["a"]}))
    s3_server.client().put_object(Bucket=bucket, Key="lake-spill/deadrun/owner.json",
                                  Body=json.dumps(dict(host=os.uname().nodename, pid=2 ** 22 + 12345)).encode())
    live = open_spill(root, "liverun")
    assert not s3_server.keys(bucket, "lake-spill/deadrun/"), "a dead run's parts are swept"
    assert write_part(live, "document_text", "b000001", pa.table({"doc_id": ["d1"], "text": ["一二三"], "raw_text": ["x"]})) == 1
    assert write_part(live, "document_text", "b000000", pa.table({"doc_id": ["d0"], "text": ["四五"], "raw_text": ["y"]})) == 1
    assert part_files(live, "document_text") == [part_path(live, "document_text", "b000000"), part_path(live, "document_text", "b000001")]
    texts = PartTexts([part_path(live, "document_text", b) for b in ("b000000", "b000001", "b000002")])
    assert dict(texts) == {"d0": "四五", "d1": "一二三"}
    assert sweep_spills(root) == [] and s3_server.keys(bucket, "lake-spill/liverun/")
    remove_spill(live)
    assert [k for k in s3_server.keys(bucket, "lake-spill/") if not k.endswith("/")] == [], "only pyarrow's empty directory marker stays"


def test_a_duckdb_persistent_secret_reaches_the_lake_without_aws_variables(s3_server, tmp_path: Path):  # noqa: F811
    """The other credential path: a user's ``CREATE PERSISTENT SECRET`` (in their home), no AWS key in the
    environment. The run and the queries reach the bucket through it; the warehouse holds no copy of it."""
    import duckdb  # noqa: PLC0415

    from warehouse.catalog import extension_path  # noqa: PLC0415

    bucket = s3_server.new_bucket()
    home = tmp_path / "home"
    home.mkdir()
    secrets = home / ".duckdb" / "stored_secrets"
    endpoint = s3_server.endpoint.split("://", 1)[1]
    con = duckdb.connect(config={"secret_directory": str(secrets)})
    con.execute(f"LOAD '{extension_path('httpfs')}'")
    con.execute(f"CREATE PERSISTENT SECRET mine (TYPE s3, KEY_ID '{ACCESS_KEY}', SECRET '{SECRET_KEY}', REGION 'us-east-1', "
                f"ENDPOINT '{endpoint}', URL_STYLE 'path', USE_SSL false)")
    con.close()
    assert list(secrets.glob("*.duckdb_secret")), "the user's secret is stored where DuckDB keeps persistent secrets"

    env = clean_env(HOME=str(home), GOVFACTS_DATA_PATH=f"s3://{bucket}/lake/",
                    GOVFACTS_WAREHOUSE=str(tmp_path / "wh"))
    assert not [k for k in env if k.startswith("AWS_")]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / SAMPLES[0].name).write_bytes(SAMPLES[0].read_bytes())
    govfacts(tmp_path, env, "run", "--inbox", str(inbox))
    assert rows(tmp_path, env, "SELECT count(*) AS n FROM facts")[0]["n"] > 0
    assert [k for k in s3_server.keys(bucket) if k.startswith("lake/") and k.endswith(".parquet")]
    assert no_secret_under(tmp_path / "wh") == [] and SECRET_KEY not in (tmp_path / "outputs.log").read_text()

    # without the secret the lake's files cannot be reached: an error, not an empty or partial answer
    (home / ".duckdb").rename(home / "moved")
    denied = subprocess.run([sys.executable, "-m", "govfacts.cli", "sql", "SELECT sum(value) FROM facts"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert denied.returncode != 0, denied.stdout
