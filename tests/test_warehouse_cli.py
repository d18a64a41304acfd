"""The warehouse commands of the CLI on a real warehouse: sql (read-only, sandboxed, --read-write,
--at, --at-time), snapshots, diff, rollback, export, compact and shell."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from govfacts.cli import app
from transforms.settings import load_settings
from tests.warehouse_batches import fact, make_batch
from warehouse.load import load_batch
from warehouse.shell import run_shell
from warehouse.snapshots import latest_snapshot, list_snapshots

runner = CliRunner()


def two_runs(warehouse: Path):
    """A warehouse on the default catalog (the CLI commands get only --warehouse) after two runs."""
    settings = load_settings(warehouse=warehouse, catalog="sqlite")
    s1 = load_batch(settings, make_batch("run1", [fact("docA", 6.6, 10), fact("docA", 7.0, 50, kind="target", period="2024")]))
    s2 = load_batch(settings, make_batch("run2", [fact("docA", 6.8, 10), fact("docA", 7.0, 50, kind="target", period="2024")]))
    return settings, s1, s2


@pytest.fixture(scope="module")
def ro_wh(tmp_path_factory):
    """Shared by the tests that must leave it unchanged."""
    return two_runs(tmp_path_factory.mktemp("cli") / "wh")


@pytest.fixture
def wh(tmp_path: Path):
    """A fresh one for the tests that write."""
    return two_runs(tmp_path / "wh")


def cli(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


def sql_rows(settings, query: str, *extra: str) -> list[dict]:
    res = cli("sql", query, "--warehouse", str(settings.warehouse), "--format", "jsonl", *extra)
    assert res.exit_code == 0, res.output
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def test_sql_reads_the_latest_snapshot_and_the_past_with_at_and_at_time(ro_wh):
    settings, s1, s2 = ro_wh
    assert sql_rows(settings, "SELECT value FROM facts WHERE kind = 'actual'") == [{"value": 6.8}]
    assert sql_rows(settings, "SELECT value FROM facts WHERE kind = 'actual'", "--at", str(s1)) == [{"value": 6.6}]
    when = next(s["time"] for s in list_snapshots(settings) if s["snapshot_id"] == s1)
    assert sql_rows(settings, "SELECT value FROM facts WHERE kind = 'actual'", "--at-time", str(when)) == [{"value": 6.6}]
    res = cli("sql", "SELECT value FROM facts", "--warehouse", str(settings.warehouse), "--format", "csv")
    assert list(csv.reader(io.StringIO(res.stdout)))[0] == ["value"]


@pytest.mark.parametrize("statement, expected", [
    ("INSERT INTO facts (fact_id) VALUES ('x')", "--read-write"),
    ("DELETE FROM facts", "--read-write"),
    ("ATTACH '/tmp/other.db' AS other", "ATTACH is not allowed"),
    ("COPY facts TO '/tmp/facts.csv'", "govfacts export"),
    ("SELECT * FROM read_csv('/etc/passwd')", "sandboxed"),
    ("SET enable_external_access = true", "sandboxed"),
], ids=["insert", "delete", "attach", "copy", "read-file", "unlock"])
def test_sql_is_read_only_and_sandboxed_and_the_error_says_how_to_write(ro_wh, statement, expected):
    settings, _, s2 = ro_wh
    res = cli("sql", statement, "--warehouse", str(settings.warehouse))
    assert res.exit_code == 1
    assert expected in " ".join(res.output.split())
    assert latest_snapshot(settings) == s2


def test_sql_read_write_commits_one_snapshot_named_sql(wh):
    settings, _, s2 = wh
    res = cli("sql", "UPDATE facts SET dq_status = 'error' WHERE kind = 'target'; DELETE FROM facts WHERE value = 6.8",
              "--warehouse", str(settings.warehouse), "--read-write")
    assert res.exit_code == 0, res.output
    assert latest_snapshot(settings) == s2 + 1
    assert list_snapshots(settings)[-1]["action"] == "sql"
    assert sql_rows(settings, "SELECT count(*) AS n FROM facts_published") == [{"n": 0}]
    refused = cli("sql", "BEGIN; DELETE FROM facts; COMMIT", "--warehouse", str(settings.warehouse), "--read-write")
    assert refused.exit_code == 1 and "one transaction" in refused.output
    failed = cli("sql", "DELETE FROM facts; SELECT * FROM no_such_table", "--warehouse", str(settings.warehouse), "--read-write")
    assert failed.exit_code == 1 and latest_snapshot(settings) == s2 + 1, "a failing statement rolls the whole command back"
    assert cli("sql", "SELECT 1", "--at", "1", "--read-write", "--warehouse", str(settings.warehouse)).exit_code == 1
    assert cli("sql", "SELECT count(*) FROM facts", "--read-write", "--warehouse", str(settings.warehouse)).exit_code == 0
    assert latest_snapshot(settings) == s2 + 1, "a read-write session that only reads makes no snapshot"


def test_sql_on_a_missing_warehouse_says_to_run_first(tmp_path: Path):
    res = cli("sql", "SELECT 1", "--warehouse", str(tmp_path / "nothing"))
    assert res.exit_code == 1 and "govfacts run --warehouse" in " ".join(res.output.split())


def test_snapshots_diff_rollback_export_and_compact_commands(wh, tmp_path: Path):
    settings, s1, s2 = wh
    w = ("--warehouse", str(settings.warehouse))
    listed = cli("snapshots", *w, "--format", "jsonl")
    snaps = [json.loads(x) for x in listed.stdout.splitlines()]
    assert [s["action"] for s in snaps] == ["", "migrate", "run", "run"]
    assert snaps[2]["summary"].startswith("run run1 · flow run flow-run") and snaps[3]["facts"] == 2
    assert cli("snapshots", *w).exit_code == 0
    d = cli("diff", str(s1), str(s2), *w, "--format", "jsonl")
    changes = [json.loads(x) for x in d.stdout.splitlines()]
    assert [(c["change"], c["old_value"], c["new_value"]) for c in changes] == [("changed", 6.6, 6.8)]
    assert "6.6%" in changes[0]["old_evidence"]
    table = cli("diff", str(s1), str(s2), *w)
    assert "0 added, 0 removed, 1 changed" in table.stdout
    missing = cli("diff", "0", "999", *w)
    assert missing.exit_code == 1 and "govfacts snapshots" in " ".join(missing.output.split())
    rb = cli("rollback", str(s1), *w)
    assert rb.exit_code == 0 and f"as new snapshot {s2 + 1}" in " ".join(rb.stdout.split())
    assert sql_rows(settings, "SELECT value FROM facts WHERE kind = 'actual'") == [{"value": 6.6}]
    again = cli("rollback", str(s1), *w)
    assert "nothing to do" in again.stdout
    ex = cli("export", str(tmp_path / "out"), "--at", str(s2), "--table", "facts", *w)
    assert ex.exit_code == 0, ex.output
    exported = pq.read_table(tmp_path / "out" / "facts.parquet")
    assert exported.schema.metadata[b"govfacts.snapshot_id"] == str(s2).encode()
    assert sorted(exported.column("value").to_pylist()) == [6.8, 7.0]
    bad = cli("export", str(tmp_path / "out2"), "--format", "csv", *w)
    assert bad.exit_code == 1 and "parquet" in bad.output
    co = cli("compact", "--older-than", "never", *w)
    assert co.exit_code == 0 and "0 expired" in co.stdout


def test_shell_runs_statements_and_dot_commands_read_only(ro_wh):
    settings, s1, s2 = ro_wh
    out = io.StringIO()
    script = ".tables\nSELECT value\nFROM facts WHERE kind = 'actual';\nINSERT INTO facts (fact_id) VALUES ('x');\n" \
             "COPY facts TO '/tmp/x.csv';\n.schema facts\n.quit\nSELECT 'not reached';\n"
    run_shell(settings, stdin=io.StringIO(script), out=out)
    text = out.getvalue()
    assert "targets_vs_actuals" in text and "6.8" in text
    assert "govfacts shell --read-write" in " ".join(text.split()) and "COPY is not allowed" in text
    assert "The number as written in the report" in text
    assert "not reached" not in text
    assert latest_snapshot(settings) == s2
    past = io.StringIO()
    run_shell(settings, at=s1, stdin=io.StringIO("SELECT value FROM facts WHERE kind = 'actual';\n"), out=past)
    assert "6.6" in past.getvalue()


def test_shell_read_write_commits_each_statement_and_the_cli_wires_it(wh):
    settings, _, s2 = wh
    res = cli("shell", "--warehouse", str(settings.warehouse), "--read-write",
              input="DELETE FROM facts WHERE kind = 'target';\nBEGIN;\nSELECT count(*) AS n FROM facts;\n")
    assert res.exit_code == 0, res.output
    assert "every statement commits on its own" in res.stdout
    assert latest_snapshot(settings) == s2 + 1 and list_snapshots(settings)[-1]["action"] == "shell"
    ro = cli("shell", "--warehouse", str(settings.warehouse), input="SELECT count(*) AS n FROM facts;\n")
    assert ro.exit_code == 0 and "│" in ro.stdout


def test_errors_say_what_to_do(ro_wh, tmp_path: Path):
    settings, _, _ = ro_wh
    bad_time = cli("sql", "SELECT 1", "--at-time", "yesterday", "--warehouse", str(settings.warehouse))
    assert bad_time.exit_code == 1 and "write it like '2025-03-01 12:00:00+00'" in " ".join(bad_time.output.split())
    res = runner.invoke(app, ["sql", "SELECT 1"], env={"GOVFACTS_CATALOG": "postgres",
                                                        "GOVFACTS_POSTGRES_DSN": "dbname=x host=127.0.0.1 port=1 user=postgres",
                                                        "GOVFACTS_WAREHOUSE": str(tmp_path / "pgwh")})
    assert res.exit_code == 1 and "check GOVFACTS_POSTGRES_DSN" in " ".join(res.output.split())


def test_diff_prints_numbers_exactly_and_its_format_is_a_choice(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    settings = load_settings(warehouse=tmp_path / "wh", catalog="sqlite")
    s1 = load_batch(settings, make_batch("run1", [fact("docA", 8374.123456789, 10)]))
    s2 = load_batch(settings, make_batch("run2", [fact("docA", 8374.987654321, 10)]))
    w = ("--warehouse", str(settings.warehouse))
    table = cli("diff", str(s1), str(s2), *w)
    assert table.exit_code == 0 and "8374.123456789" in table.stdout and "8374.987654321" in table.stdout, table.stdout
    as_json = json.loads(cli("diff", str(s1), str(s2), *w, "--format", "json").stdout)
    assert [(c["old_value"], c["new_value"]) for c in as_json] == [(8374.123456789, 8374.987654321)]
    bad = cli("diff", str(s1), str(s2), *w, "--format", "xml")
    assert bad.exit_code == 2 and "'table', 'csv', 'jsonl'" in " ".join(bad.output.replace("│", " ").split()), bad.output
