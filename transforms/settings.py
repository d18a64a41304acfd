"""One settings object for paths, catalog and task runner — the bottom layer every stage reads.

It sits below ``warehouse/``, ``expectations/`` and ``flows/`` (it imports only the seeds'
location), so the lower layers never reach up into the CLI package for their configuration.

Where a value comes from, highest first (as dbt, Prefect and pip do it):

1. an explicit argument (a CLI flag, or ``load_settings(warehouse=...)`` in code);
2. an environment variable ``GOVFACTS_<FIELD>`` (``GOVFACTS_WAREHOUSE``, ``GOVFACTS_CATALOG``, …);
3. ``govfacts.toml``, the project file, found in the working directory or the nearest parent
   that has one — so ``govfacts sql`` works from any subdirectory of a project. Relative paths
   in it are relative to the file, not to where the command runs;
4. the defaults below: the bundled samples as the inbox, ``data/warehouse`` under the project
   directory (the directory of ``govfacts.toml``, else the working directory).
"""

from __future__ import annotations

import enum
import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from transforms.seeds import SEEDS_DIR

PROJECT_ROOT = SEEDS_DIR.parent
SAMPLE_REPORTS = SEEDS_DIR / "reports"
PROJECT_FILE = "govfacts.toml"


class Catalog(enum.StrEnum):
    """Where DuckLake keeps its catalog (the metadata of every snapshot)."""

    sqlite = "sqlite"
    duckdb = "duckdb"
    postgres = "postgres"


class TaskRunner(enum.StrEnum):
    """How Prefect runs the transform tasks."""

    threads = "threads"
    processes = "processes"
    dask = "dask"


class UrlStyle(enum.StrEnum):
    """Addressing of an S3-compatible server; empty means path with an endpoint (MinIO), vhost on AWS."""

    default = ""
    path = "path"
    vhost = "vhost"


class SettingsError(ValueError):
    """A setting that cannot be used, with where it came from and what would be valid."""


def find_project_file(start: Path | None = None) -> Path | None:
    """The nearest ``govfacts.toml`` in ``start`` (default: the working directory) or a parent of it."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        candidate = d / PROJECT_FILE
        if candidate.is_file():
            return candidate
    return None


def project_dir() -> Path:
    """The project's working directory: where ``govfacts.toml`` is, else the working directory.

    The warehouse and Prefect's home default to places inside it, so running a command from a
    subdirectory of a project finds the same warehouse as running it from the top.
    """
    found = find_project_file()
    return found.parent if found else Path.cwd().resolve()


def _is_remote(value: str) -> bool:
    return "://" in value


class _ProjectFile(PydanticBaseSettingsSource):
    """Reads ``govfacts.toml``: top-level keys are setting names; paths are relative to the file."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None):
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field, field_name):  # pragma: no cover - __call__ does the work
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            data = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise SettingsError(f"{self.path} is not a readable TOML file ({e}); fix it or remove it") from None
        data = data.get("govfacts", data) if isinstance(data.get("govfacts"), dict) else data
        known = set(self.settings_cls.model_fields)
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"{self.path}: unknown setting(s) {', '.join(unknown)}; "
                                f"the settings are: {', '.join(sorted(known))}")
        out = dict(data)
        for key in ("inbox", "warehouse", "data_path", "spill_path"):
            value = out.get(key)
            if isinstance(value, str) and value and not _is_remote(value):
                out[key] = str((self.path.parent / value).resolve()) + ("/" if value.endswith("/") else "")
        return out


class Settings(BaseSettings):
    """Where things live and how the flow runs."""

    model_config = SettingsConfigDict(env_prefix="GOVFACTS_", extra="ignore", frozen=True)

    inbox: Path = SAMPLE_REPORTS
    warehouse: Path = Field(default_factory=lambda: project_dir() / "data" / "warehouse")
    catalog: Catalog = Catalog.sqlite
    postgres_dsn: str = ""  # libpq DSN, used when catalog == "postgres"
    snapshot_retention: str = "90 days"  # `govfacts compact` expires snapshots older than this ("never" keeps all)
    data_path: str = ""  # DuckLake data path; default <warehouse>/lake/; s3://bucket/prefix/ for object storage
    # Object storage (an s3:// data or spill path): where the S3-compatible server is. Credentials are never
    # settings: DuckDB and pyarrow take them from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN
    # (or from a DuckDB persistent secret), see warehouse/storage.py.
    s3_endpoint: str = ""  # http://minio:9000 or host:port; default $AWS_ENDPOINT_URL_S3 / $AWS_ENDPOINT_URL, else AWS
    s3_region: str = ""  # default $AWS_REGION / $AWS_DEFAULT_REGION, else us-east-1
    s3_url_style: UrlStyle = UrlStyle.default
    spill_path: str = ""  # where batches write their Parquet parts; default <warehouse>/spill, or beside the lake for a remote Dask cluster
    task_runner: TaskRunner = TaskRunner.threads
    dask_address: str = ""  # scheduler address for task_runner == "dask"
    batch_size: int | None = Field(None, ge=1)  # documents per transform task; unset: sized to the run (flows/ingest.batch_size_for)
    max_workers: int = Field(2, ge=1)  # threads, processes or local Dask workers
    validate_batch_size: int = Field(2000, ge=1)  # documents whose facts GX validates in one call (≈3 s fixed cost per call, then ≈3 ms a document)
    max_file_bytes: int = Field(64 * 1024 * 1024, ge=1)  # larger inbox files are quarantined (too_large), not read; a report is ~100 KB

    @field_validator("inbox", "warehouse", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        """Relative paths from flags or the environment are relative to the working directory, resolved once."""
        return value.expanduser().resolve()

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
        return init_settings, env_settings, _ProjectFile(settings_cls, find_project_file())

    @property
    def staging(self) -> Path:
        """Content-addressed copies of raw inputs."""
        return self.warehouse / "staging"

    @property
    def lake_path(self) -> str:
        return self.data_path or str(self.warehouse / "lake") + "/"

    @property
    def reports_dir(self) -> Path:
        return self.warehouse / "reports"

    def with_overrides(self, **kwargs: Any) -> "Settings":
        """A copy with the non-None keyword arguments applied (validated like any other source)."""
        clean = {k: v for k, v in kwargs.items() if v is not None}
        if not clean:
            return self
        return type(self).model_validate({**self.model_dump(), **clean})


def load_settings(**overrides: Any) -> Settings:
    """Defaults, then ``govfacts.toml``, then ``GOVFACTS_*`` environment variables, then explicit overrides.

    A bad value anywhere raises :class:`SettingsError` naming the setting, its source and the valid values.
    """
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as e:
        raise SettingsError(describe(e)) from None


def describe(error: ValidationError) -> str:
    """One line per bad setting, with the environment variable that can set it."""
    lines = []
    for err in error.errors():
        name = ".".join(str(p) for p in err["loc"]) or "settings"
        where = f"GOVFACTS_{name.upper()}" if f"GOVFACTS_{name.upper()}" in os.environ else PROJECT_FILE + " or a flag"
        lines.append(f"{name}: {err['msg']} (got {err.get('input')!r}; set by {where})")
    return "; ".join(lines)


__all__ = ["Catalog", "TaskRunner", "UrlStyle", "Settings", "SettingsError", "load_settings", "find_project_file",
           "project_dir", "PROJECT_ROOT", "SEEDS_DIR", "SAMPLE_REPORTS", "PROJECT_FILE"]
