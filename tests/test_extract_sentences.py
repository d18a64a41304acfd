"""Case tables of the extractor: real sentences from the samples and report-style wording.

Each case is read inside a minimal report (its *context*) so that the region,
the report year and the section are fixed; negative sentences expect no facts.
"""

from __future__ import annotations

import pytest

from tests.extract_cases import check_sentence_case, ids, load_cases

TABLES = ("growth", "lists", "qualifiers", "sections", "negatives")
CASES = [dict(c, table=t) for t in TABLES for c in load_cases(t)]
REGION_FACT_CASES = [c for c in load_cases("regions") if "facts" in c]


@pytest.mark.parametrize("case", CASES, ids=[f"{c['table']}:{c['id']}" for c in CASES])
def test_sentence_case(case):
    check_sentence_case(case)


@pytest.mark.parametrize("case", REGION_FACT_CASES, ids=ids(REGION_FACT_CASES))
def test_region_attribution(case):
    check_sentence_case(case)
