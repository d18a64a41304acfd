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

# Hypothesis: the default profile keeps the suite fast; HYPOTHESIS_PROFILE=deep runs 100x the examples
# (for tests that do not pin max_examples themselves), e.g. HYPOTHESIS_PROFILE=deep pytest tests/test_fuzz_*.py
from hypothesis import HealthCheck, settings as hypothesis_settings  # noqa: E402

hypothesis_settings.register_profile("govfacts", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.register_profile("deep", max_examples=10_000, deadline=None,
                                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "govfacts"))

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
