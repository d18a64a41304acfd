"""One settings object for paths, catalog and task runner.

Defaults suit a fresh clone; every field can be overridden by an environment
variable ``GOVFACTS_<FIELD>`` and most by a CLI flag.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SEEDS_DIR = PROJECT_ROOT / "seeds"
SAMPLE_REPORTS = SEEDS_DIR / "reports"


@dataclass(frozen=True)
class Settings:
    """Where things live and how the flow runs."""

    inbox: Path = SAMPLE_REPORTS
    warehouse: Path = field(default_factory=lambda: Path.cwd() / "data" / "warehouse")
    catalog: str = "sqlite"  # sqlite | duckdb | postgres
    postgres_dsn: str = ""  # libpq DSN, used when catalog == "postgres"
    snapshot_retention: str = "90 days"  # `govfacts compact` expires snapshots older than this ("never" keeps all)
    data_path: str = ""  # DuckLake data path; default <warehouse>/lake/; s3://bucket/prefix/ for object storage
    # Object storage (an s3:// data or spill path): where the S3-compatible server is. Credentials are never
    # settings: DuckDB and pyarrow take them from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN
    # (or from a DuckDB persistent secret), see warehouse/storage.py.
    s3_endpoint: str = ""  # http://minio:9000 or host:port; default $AWS_ENDPOINT_URL_S3 / $AWS_ENDPOINT_URL, else AWS
    s3_region: str = ""  # default $AWS_REGION / $AWS_DEFAULT_REGION, else us-east-1
    s3_url_style: str = ""  # path | vhost; default path with an endpoint (MinIO), vhost on AWS
    spill_path: str = ""  # where batches write their Parquet parts; default <warehouse>/spill, or beside the lake for a remote Dask cluster
    task_runner: str = "threads"  # threads | processes | dask
    dask_address: str = ""  # scheduler address for task_runner == "dask"
    batch_size: int = 50  # documents per transform task (≈0.5 s of work): Prefect's ≈10 ms per task stays small next to it
    max_workers: int = 2  # threads, processes or local Dask workers
    validate_batch_size: int = 2000  # documents whose facts GX validates in one call (≈3 s fixed cost per call, then ≈3 ms a document)
    max_file_bytes: int = 64 * 1024 * 1024  # larger inbox files are quarantined (too_large), not read; a report is ~100 KB

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

    def with_overrides(self, **kwargs) -> "Settings":
        """A copy with the non-None keyword arguments applied."""
        clean = {k: v for k, v in kwargs.items() if v is not None}
        for k in ("inbox", "warehouse"):
            if k in clean:
                clean[k] = Path(clean[k]).resolve()
        return replace(self, **clean)


def load_settings(**overrides) -> Settings:
    """Defaults, then ``GOVFACTS_*`` environment variables, then explicit overrides."""
    env: dict[str, object] = {}
    for f in fields(Settings):
        raw = os.environ.get(f"GOVFACTS_{f.name.upper()}")
        if raw is None:
            continue
        env[f.name] = int(raw) if f.type in ("int", int) else raw
    return Settings().with_overrides(**env).with_overrides(**overrides)
