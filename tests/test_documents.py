"""The normalized-document record survives its Arrow round trip, provenance included."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tests.conftest import SAMPLES
from transforms.documents import NORMALIZED_SCHEMA, normalized_row, row_normalized
from transforms.normalize import normalize_report


@pytest.mark.parametrize("path", sorted(SAMPLES.iterdir()), ids=lambda p: p.name[:3])
def test_row_round_trip_keeps_text_offsets_ends_and_report(path):
    norm = normalize_report(path.read_bytes(), path.name)
    table = pa.Table.from_pylist([normalized_row(norm, "d", str(path), str(path), 1)], schema=NORMALIZED_SCHEMA)
    back = row_normalized(table.to_pylist()[0])
    assert back.text == norm.text and list(back.offsets) == list(norm.offsets)
    assert back.report.unrepaired_spans == [tuple(s) for s in norm.report.unrepaired_spans]
    for start in range(0, len(norm.text) - 20, 997):
        assert back.raw_span(start, start + 20) == norm.raw_span(start, start + 20)
