"""The normalized-document record that moves from normalize to extract as Arrow."""

from __future__ import annotations

import json
from dataclasses import asdict

import pyarrow as pa

from transforms.normalize import Normalized
from transforms.schema import NormalizationReport

NORMALIZED_SCHEMA = pa.schema([
    ("doc_id", pa.string()), ("source_path", pa.string()), ("staged_path", pa.string()),
    ("n_bytes", pa.int64()), ("text", pa.string()), ("raw_text", pa.string()),
    ("offsets", pa.list_(pa.int64())), ("ends", pa.list_(pa.int64())), ("report", pa.string()),
])


def normalized_row(norm: Normalized, doc_id: str, source_path: str, staged_path: str, n_bytes: int) -> dict:
    """One NORMALIZED_SCHEMA row for a document."""
    return dict(doc_id=doc_id, source_path=source_path, staged_path=staged_path, n_bytes=n_bytes,
                text=norm.text, raw_text=norm.raw_text, offsets=list(norm.offsets),
                ends=None if norm.ends is None else list(norm.ends),
                report=json.dumps(asdict(norm.report), ensure_ascii=False))


def row_normalized(row: dict) -> Normalized:
    """Rebuild the ``Normalized`` of a NORMALIZED_SCHEMA row."""
    report = NormalizationReport(**json.loads(row["report"]))
    report.unrepaired_spans = [tuple(s) for s in report.unrepaired_spans]
    return Normalized(text=row["text"], offsets=row["offsets"], raw_text=row["raw_text"], report=report, ends=row.get("ends"))
