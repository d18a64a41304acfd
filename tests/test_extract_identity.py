"""Document identity (transforms/extract/identity.py): type, region and year from the text alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from transforms.extract import extract_facts, identify

CASES = [json.loads(line) for line in (Path(__file__).parent / "cases" / "identity.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_identity_case(case: dict) -> None:
    ident = identify(case["text"])
    assert ident.doc_type == case["doc_type"], ident
    assert (ident.region.name if ident.region else None) == case["region"], ident
    assert list(ident.region.parents if ident.region else []) == case["parents"], ident
    assert ident.year == case["year"], ident
    if ident.yields_facts:
        assert ident.reason is None
    else:
        assert ident.reason, "a document without facts must say why"


@pytest.mark.parametrize("case", [c for c in CASES if c["doc_type"] != "local_work_report"], ids=lambda c: c["id"])
def test_no_facts_without_identity(case: dict) -> None:
    assert extract_facts(case["text"], "doc") == []
