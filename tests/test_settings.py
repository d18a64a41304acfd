"""Settings (pydantic-settings): govfacts.toml found upward, then GOVFACTS_* variables, then flags."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from govfacts.cli import app
from tests.warehouse_batches import fact, make_batch
from transforms.settings import Catalog, SettingsError, TaskRunner, find_project_file, load_settings, project_dir
from warehouse.load import load_batch


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory with a govfacts.toml, the working directory two levels below it."""
    for var in ("GOVFACTS_WAREHOUSE", "GOVFACTS_CATALOG", "GOVFACTS_INBOX", "GOVFACTS_BATCH_SIZE", "GOVFACTS_TASK_RUNNER"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "study"
    (root / "notebooks" / "2026").mkdir(parents=True)
    (root / "reports").mkdir()
    (root / "govfacts.toml").write_text('warehouse = "lake/wh"\ninbox = "reports"\ncatalog = "duckdb"\nbatch_size = 7\n',
                                        encoding="utf-8")
    monkeypatch.chdir(root / "notebooks" / "2026")
    return root


def test_the_project_file_is_found_upward_and_its_paths_are_relative_to_it(project: Path):
    assert find_project_file() == project / "govfacts.toml" and project_dir() == project
    s = load_settings()
    assert s.warehouse == project / "lake" / "wh" and s.inbox == project / "reports"
    assert s.catalog is Catalog.duckdb and s.batch_size == 7 and s.task_runner is TaskRunner.threads


def test_environment_overrides_the_file_and_a_flag_overrides_both(project: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GOVFACTS_CATALOG", "sqlite")
    monkeypatch.setenv("GOVFACTS_BATCH_SIZE", "9")
    s = load_settings()
    assert s.catalog == "sqlite" and s.batch_size == 9 and s.warehouse == project / "lake" / "wh"
    s = load_settings(catalog="postgres", batch_size=3, warehouse="elsewhere")
    assert s.catalog == "postgres" and s.batch_size == 3 and s.warehouse == Path.cwd() / "elsewhere"


def test_without_a_project_file_the_warehouse_is_under_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("GOVFACTS_WAREHOUSE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert find_project_file() is None and load_settings().warehouse == tmp_path / "data" / "warehouse"


@pytest.mark.parametrize("toml,says", [
    ('catalogue = "duckdb"\n', "unknown setting(s) catalogue; the settings are: batch_size"),
    ('catalog = "oracle"\n', "catalog: Input should be 'sqlite', 'duckdb' or 'postgres'"),
    ('batch_size = 0\n', "batch_size: Input should be greater than or equal to 1"),
    ('warehouse = \n', "is not a readable TOML file"),
])
def test_a_bad_project_file_is_refused_naming_the_setting_and_the_valid_values(toml, says, tmp_path, monkeypatch):
    (tmp_path / "govfacts.toml").write_text(toml, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingsError, match=None) as got:
        load_settings()
    assert says in str(got.value)
    cli = CliRunner().invoke(app, ["sql", "SELECT 1"])
    assert cli.exit_code == 2 and "Traceback" not in cli.output and says[:20] in " ".join(cli.output.split())


def test_a_bad_environment_variable_is_named_in_the_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOVFACTS_TASK_RUNNER", "spark")
    got = CliRunner().invoke(app, ["run", "--warehouse", str(tmp_path / "wh")])
    text = " ".join(got.output.split())
    assert got.exit_code == 2 and "GOVFACTS_TASK_RUNNER" in text and "'threads', 'processes' or 'dask'" in text
    assert not (tmp_path / "wh").exists()


def test_sql_works_from_any_subdirectory_of_the_project(project: Path):
    settings = load_settings()
    load_batch(settings, make_batch("run1", [fact("docA", 6.6, 10)]))
    got = CliRunner().invoke(app, ["sql", "--format", "csv", "SELECT count(*) AS n FROM facts"])
    assert got.exit_code == 0, got.output
    assert got.output.splitlines() == ["n", "1"]
    assert (project / "lake" / "wh").is_dir() and not (Path.cwd() / "data").exists()
