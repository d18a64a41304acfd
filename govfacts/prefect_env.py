"""Prefect runs embedded: its ephemeral local server, home inside the working directory, no analytics.

Must run before ``prefect`` is imported, because Prefect reads its settings at import.
"""

from __future__ import annotations

import os
from pathlib import Path


def configure_prefect(home: Path | None = None) -> None:
    """Point Prefect at a local home and switch off everything that would call out."""
    os.environ.setdefault("PREFECT_HOME", str((home or Path.cwd() / ".prefect").resolve()))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_UI_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_API_HOST", "127.0.0.1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    # The embedded server is a subprocess; on a busy machine it takes longer than Prefect's default 20 s to answer.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
