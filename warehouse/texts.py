"""Normalized texts read back from a run's document_text parts (pyarrow only, no DuckDB).

Kept apart from warehouse/parts.py so the validator process (flows/validator.py), which
checks evidence offsets against these texts, does not import DuckDB for it (≈30 MB).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pyarrow.parquet as pq
from pyarrow.fs import FileType

from warehouse.storage import filesystem


class PartTexts(Mapping):
    """doc_id -> normalized text, read on demand from document_text parts, one part in memory at a time.

    Validation checks every fact's evidence against its document's text. Holding the texts of a
    whole validation group (thousands of reports) would make memory grow with the group; facts
    arrive grouped by batch, so reading one part at a time keeps one batch's texts in memory.
    """

    def __init__(self, paths: list[str]):
        self._where: dict[str, str] = {}
        for p in paths:
            fs, inner = filesystem(p)  # a local path, or an s3:// URI when a remote cluster spills to the object store
            if fs.get_file_info(inner).type == FileType.File:  # a batch whose files were all rejected wrote no part
                for doc_id in pq.read_table(inner, columns=["doc_id"], filesystem=fs).column("doc_id").to_pylist():
                    self._where[doc_id] = p
        self._path: str | None = None
        self._texts: dict[str, str] = {}

    def __getitem__(self, doc_id: str) -> str:
        path = self._where[doc_id]
        if path != self._path:
            fs, inner = filesystem(path)
            t = pq.read_table(inner, columns=["doc_id", "text"], filesystem=fs)
            self._texts = dict(zip(t.column("doc_id").to_pylist(), t.column("text").to_pylist()))
            self._path = path
        return self._texts[doc_id]

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._where

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)
