"""The version of code and reference data that produced a fact.

A document is re-processed when this changes, so it hashes everything that can
change a fact: the transforms, the expectations and the seed CSVs.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from transforms.settings import PROJECT_ROOT

_INPUTS = ("transforms/**/*.py", "expectations/**/*.py", "seeds/*.csv")


@lru_cache(maxsize=1)
def pipeline_version() -> str:
    """12 hex digits of the hash of the code and reference data (stable across machines)."""
    h = hashlib.sha256()
    for pattern in _INPUTS:
        for path in sorted(PROJECT_ROOT.glob(pattern)):
            h.update(str(path.relative_to(PROJECT_ROOT)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:12]
