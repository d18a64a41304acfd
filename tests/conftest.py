"""Shared fixtures: Prefect runs under one session-scoped test harness, in a temp home."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="govfacts-prefect-"))
from govfacts.prefect_env import configure_prefect  # noqa: E402

configure_prefect(_HOME)

PROJECT = Path(__file__).resolve().parent.parent

# The throwaway PostgreSQL server and the catalog-parametrized warehouse fixtures (tests/pg.py).
pytest_plugins = ["tests.pg"]

SAMPLES = PROJECT / "seeds" / "reports"


@pytest.fixture(scope="session")
def prefect_harness():
    """A real (temporary) Prefect server for every flow run of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    """A fresh inbox holding copies of the five sample reports."""
    d = tmp_path / "inbox"
    d.mkdir()
    for p in sorted(SAMPLES.iterdir()):
        (d / p.name).write_bytes(p.read_bytes())
    return d


@pytest.fixture(scope="session")
def env_clean():
    os.environ.pop("GOVFACTS_FAULT", None)
