"""Golden facts of every document the tests hold: the samples, the held-out pages and the 45 real reports.

Every field of every fact (contract fields, rule, offsets, identity) is compared, so a change that is meant to
be output-neutral (a speed-up, a refactor) is proven to be; a change that is meant to alter facts shows its diff.

    GOVFACTS_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_extract_golden.py   # then review git diff
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.golden_util import assert_golden
from transforms.extract import identify_and_extract
from transforms.normalize import normalize_report

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted(
    [p for p in (ROOT / "seeds" / "reports").iterdir() if p.is_file()]
    + [p for p in (ROOT / "tests" / "heldout").iterdir() if p.suffix in (".txt", ".html")]
    + list((ROOT / "tests" / "corpus" / "real").glob("*.txt")))


def facts_text(path: Path) -> str:
    """The identity and every fact of one document, one JSON object a line, in extraction order."""
    data = path.read_bytes()
    ident, facts = identify_and_extract(normalize_report(data, str(path)), hashlib.sha256(data).hexdigest())
    lines = [json.dumps(ident.describe(), ensure_ascii=False, sort_keys=True)]
    lines += [json.dumps(asdict(f), ensure_ascii=False, sort_keys=True) for f in facts]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_facts_equal_their_golden_file(path: Path) -> None:
    assert_golden(f"facts/{path.parent.name}/{path.stem}.jsonl", facts_text(path))


def test_every_document_is_covered() -> None:
    assert len(DOCUMENTS) == 5 + 14 + 45
