"""The environment of a user's fresh shell, for tests that start govfacts and Prefect as separate processes."""

from __future__ import annotations

import os
from pathlib import Path

from transforms.settings import PROJECT_ROOT


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """No Prefect or govfacts settings of this test session, a PREFECT_HOME of its own, the code under test importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GOVFACTS_"))}
    pythonpath = os.pathsep.join([str(PROJECT_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return {**env, "PREFECT_HOME": str(home), "PYTHONPATH": pythonpath, **extra}
