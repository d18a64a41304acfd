"""Reference data lives in seeds/*.csv; this reads a seed once per process."""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

SEEDS_DIR = Path(__file__).resolve().parent.parent / "seeds"


@lru_cache(maxsize=None)
def read_seed(name: str) -> tuple[dict[str, str], ...]:
    """Rows of ``seeds/<name>.csv`` as dicts (header names are the keys)."""
    with open(SEEDS_DIR / f"{name}.csv", encoding="utf-8", newline="") as fh:
        return tuple(csv.DictReader(fh))


def units_by_name() -> dict[str, dict[str, str]]:
    """seeds/units.csv keyed by unit as written."""
    return {r["unit"]: r for r in read_seed("units")}


def indicators_by_code() -> dict[str, dict[str, str]]:
    """seeds/indicators.csv keyed by indicator code."""
    return {r["code"]: r for r in read_seed("indicators")}
