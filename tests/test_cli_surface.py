"""The everyday surface of the CLI: options checked before any work, help without type noise, --version."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from govfacts.cli import app


@pytest.mark.parametrize("args,says", [
    (["run", "--catalog", "foo"], "'foo' is not one of 'sqlite', 'duckdb', 'postgres'"),
    (["run", "--task-runner", "bogus"], "'bogus' is not one of 'threads', 'processes', 'dask'"),
    (["sql", "--catalog", "oracle", "SELECT 1"], "is not one of 'sqlite', 'duckdb', 'postgres'"),
    (["run", "--batch-size", "0"], "--batch-size"),
])
def test_a_bad_option_fails_at_once_naming_the_valid_values_and_writes_nothing(args, says, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    wh = tmp_path / "wh"
    got = CliRunner().invoke(app, [*args, "--warehouse", str(wh)])
    assert got.exit_code == 2 and says in " ".join(got.output.replace("│", " ").split()), got.output
    assert "Traceback" not in got.output and not wh.exists() and list(tmp_path.iterdir()) == []


def test_a_warehouse_that_is_a_file_and_a_missing_inbox_are_refused_before_work(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("x")
    got = CliRunner().invoke(app, ["run", "--warehouse", str(f)])
    assert got.exit_code == 2 and "is a file, not a directory" in " ".join(got.output.replace("│", " ").split())
    got = CliRunner().invoke(app, ["run", "--inbox", str(tmp_path / "nowhere"), "--warehouse", str(tmp_path / "wh")])
    assert got.exit_code == 1 and "is not a directory" in " ".join(got.output.split()) and not (tmp_path / "wh").exists()


def test_help_shows_no_bool_type_and_version_prints(monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    for cmd in ([], ["run"], ["sql"], ["compact"]):
        got = CliRunner().invoke(app, [*cmd, "--help"])
        assert got.exit_code == 0 and "<bool>" not in got.output and "--help" in got.output, cmd
    got = CliRunner().invoke(app, ["run", "--help"])
    assert "sqlite|duckdb|postgres" in got.output and "threads|processes|dask" in got.output
    got = CliRunner().invoke(app, ["--version"])
    assert got.exit_code == 0 and got.output.startswith("govfacts 0.") and "pipeline" in got.output


@pytest.mark.e2e
def test_a_run_tells_its_wall_time_quietly_and_an_unchanged_rerun_keeps_the_report(tmp_path):
    """Two `govfacts run` processes on one sample: the summary's time is the command's wall time with its parts,
    "1 batch", no GX INFO line; the unchanged re-run leaves the data-quality report as it was."""
    import time

    from tests.hostile import SAMPLES, clean_env, run_cli

    inbox, wh = tmp_path / "inbox", tmp_path / "wh"
    inbox.mkdir()
    sample = sorted(SAMPLES.iterdir())[0]
    (inbox / sample.name).write_bytes(sample.read_bytes())
    env = clean_env(PREFECT_HOME=str(tmp_path / "prefect"), COLUMNS="200")
    began = time.monotonic()
    first = run_cli(["run", "--inbox", str(inbox), "--warehouse", str(wh)], env)
    wall = time.monotonic() - began
    assert first.exitcode == 0, first.stderr
    text = first.stdout + first.stderr
    assert "Created temporary directory" not in text and " INFO " not in text and "1 batches" not in text
    line = next(ln for ln in first.stdout.splitlines() if "s wall: start-up" in ln)
    said = float(line.split("│")[2].split(" s wall")[0])
    assert "(1 batch," in line and wall - 3 < said <= wall + 0.5, (said, wall, line)
    index = wh / "reports" / "latest" / "index.html"
    before = index.stat().st_mtime_ns
    again = run_cli(["run", "--inbox", str(inbox), "--warehouse", str(wh)], env)
    assert again.exitcode == 0 and "unchanged" in again.stdout and index.stat().st_mtime_ns == before
    # -v brings Prefect's own INFO logs back (a new file, so the flow runs)
    other = sorted(SAMPLES.iterdir())[1]
    (inbox / other.name).write_bytes(other.read_bytes())
    loud = run_cli(["run", "-v", "--inbox", str(inbox), "--warehouse", str(wh)], env)
    assert loud.exitcode == 0, loud.stderr
    assert "Finished in state Completed" in loud.stdout + loud.stderr, loud.stdout + loud.stderr


def test_compact_lists_what_it_would_expire_and_asks_first(tmp_path):
    from tests.test_warehouse_cli import two_runs
    from warehouse.snapshots import list_snapshots

    settings, _, _ = two_runs(tmp_path / "wh")
    w = ["--older-than", "0 seconds", "--warehouse", str(settings.warehouse)]
    before = [s["snapshot_id"] for s in list_snapshots(settings)]
    dry = CliRunner().invoke(app, ["compact", "--dry-run", *w])
    assert dry.exit_code == 0 and f"would expire snapshot {before[0]} " in dry.stdout, dry.output
    no = CliRunner().invoke(app, ["compact", *w], input="n\n")  # not a terminal: refused, told how to confirm
    assert no.exit_code == 1 and "--yes" in " ".join(no.output.split())
    assert [s["snapshot_id"] for s in list_snapshots(settings)] == before  # nothing expired by either
    done = CliRunner().invoke(app, ["compact", "--yes", *w])
    assert done.exit_code == 0 and "expired" in done.stdout and len(list_snapshots(settings)) == 1, done.output


def test_every_column_of_every_table_view_and_parquet_export_has_a_description(tmp_path):
    import pyarrow.parquet as pq

    from tests.test_warehouse_cli import two_runs
    from warehouse.snapshots import query
    from warehouse.views import view_column_descriptions

    settings, _, _ = two_runs(tmp_path / "wh")
    _, cols = query(settings, "SELECT c.table_name, c.column_name, c.comment, v.view_name IS NOT NULL FROM duckdb_columns() c "
                    "LEFT JOIN duckdb_views() v ON v.database_name = c.database_name AND v.view_name = c.table_name "
                    "WHERE c.database_name = 'wh'")
    views = {r[0] for r in cols if r[3]}
    assert {"facts_published", "indicator_panel", "targets_vs_actuals", "regions"} <= views
    missing = [(t, c) for t, c, comment, is_view in cols if not (comment or (is_view and view_column_descriptions(t).get(c)))]
    assert len(missing) == 0, missing
    got = CliRunner().invoke(app, ["export", str(tmp_path / "out"), "--warehouse", str(settings.warehouse)])
    assert got.exit_code == 0, got.output
    bare = [(f.name, field.name) for f in (tmp_path / "out").glob("*.parquet") for field in pq.read_schema(f)
            if not (field.metadata or {}).get(b"description")]
    assert len(bare) == 0, bare
