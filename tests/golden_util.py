"""Golden-file comparison with a regenerate switch and a readable diff.

    GOVFACTS_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_normalize.py

rewrites the golden files from the current output instead of comparing (then
review ``git diff tests/golden`` before committing).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("GOVFACTS_UPDATE_GOLDEN") == "1"


def assert_golden(relative: str, actual: str, context: int = 2, max_lines: int = 80) -> None:
    """Compare ``actual`` with the golden file ``tests/golden/<relative>`` (or rewrite it)."""
    path = GOLDEN / relative
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"golden file {path} is missing; run with GOVFACTS_UPDATE_GOLDEN=1 to create it, then review it")
    expected = path.read_text(encoding="utf-8")
    if actual == expected:
        return
    diff = list(difflib.unified_diff(
        expected.splitlines(), actual.splitlines(), f"golden/{relative}", "actual", n=context, lineterm=""))
    shown = "\n".join(diff[:max_lines]) + (f"\n... {len(diff) - max_lines} more diff lines" if len(diff) > max_lines else "")
    pytest.fail(f"{relative} differs from its golden file (GOVFACTS_UPDATE_GOLDEN=1 regenerates it):\n{shown}", pytrace=False)
