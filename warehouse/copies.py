"""Content identity beside byte identity: one report saved twice with different bytes is one document.

Staging recognises equal bytes (the sha256 of the raw file). The same report re-saved as
GBK, with CRLF line ends, with a byte-order mark or as an HTML page has other bytes but,
once normalized, the same text: ``text_sha256`` (sha256 of the normalized text) says so — together
with the document's identity (type, region, year and how each was read), because the year can come
from a line normalization removes (a page's ``发布日期``): two files of one text but another year
are two documents, each with its own facts.
The first file of a text to reach the flow — or the document the warehouse already holds
with that text — is the document; every later file with that text is a *copy*: its facts
are dropped before validation, its rows are not loaded, and it is recorded in the
document's ``copies`` (sha256, names, bytes, encoding, staged path, run) so every name
and every raw copy can be found, and the next run skips its bytes like any loaded file.

``SameText`` runs in the flow's process, on batch results in submission order, so the
choice does not depend on which worker finished first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
import pyarrow.compute as pc


def known_texts(con: duckdb.DuckDBPyConnection, version: str) -> dict[tuple[str, str | None], tuple[str, list[dict]]]:
    """(text_sha256, identity) -> (doc_id, copies) of the documents this code version loaded."""
    rows = con.execute("SELECT text_sha256, identity, doc_id, copies FROM documents WHERE pipeline_version = ? "
                       "AND text_sha256 IS NOT NULL", [version]).fetchall()
    return {(t, i): (d, json.loads(c or "[]")) for t, i, d, c in rows}


def known_copies(con: duckdb.DuckDBPyConnection, version: str) -> set[str]:
    """Raw sha256 of every copy recorded by this code version (skipped by the next run like a loaded document)."""
    return {c["sha256"] for d in known_texts(con, version).values() for c in d[1]}


@dataclass
class SameText:
    """Which documents of a run are copies of another (same normalized text), and of which."""

    seen: dict[tuple, str] = field(default_factory=dict)  # (text_sha256, identity) -> doc_id of the document kept
    copies: dict[str, list[dict]] = field(default_factory=dict)  # kept doc_id -> its copies (recorded ones first)
    dropped: set[str] = field(default_factory=set)  # raw sha256 of this run's copies (not loaded)
    paths: dict[str, str] = field(default_factory=dict)  # doc_id -> source_path, for the run summary
    changed: set[str] = field(default_factory=set)  # kept doc_ids whose copies this run added to
    found: list[dict] = field(default_factory=list)  # this run's copies, for the summary

    @classmethod
    def from_warehouse(cls, known: dict[tuple, tuple[str, list[dict]]], paths: dict[str, str] | None = None) -> "SameText":
        same = cls()
        for key, (doc_id, copies) in known.items():
            same.seen[key] = doc_id
            same.copies[doc_id] = list(copies)
        same.paths.update(paths or {})
        return same

    def take(self, documents: list[dict], facts: pa.Table, run_id: str) -> tuple[pa.Table, int]:
        """Record the copies among a batch's ``documents`` (doc_id, text_sha256, identity, source_path, names, n_bytes,
        encoding, staged_path); return the batch's facts without theirs, and how many copies there were."""
        n = 0
        for d in documents:
            kept = self.seen.setdefault((d["text_sha256"], d["identity"]), d["doc_id"])
            self.paths.setdefault(d["doc_id"], d["source_path"])
            if kept == d["doc_id"]:
                continue
            n += 1
            self.dropped.add(d["doc_id"])
            record = dict(sha256=d["doc_id"], names=d["names"], n_bytes=d["n_bytes"], encoding=d["encoding"],
                          staged_path=d["staged_path"], run_id=run_id)
            self.copies.setdefault(kept, []).append(record)
            self.changed.add(kept)
            self.found.append(dict(source_path=d["source_path"], names=d["names"], same_as=self.paths.get(kept, kept), doc_id=kept))
        if n and facts.num_rows:
            facts = facts.filter(pc.invert(pc.is_in(facts.column("doc_id"), value_set=pa.array(sorted(self.dropped), pa.string()))))
        return facts, n

    def updates(self) -> dict[str, list[dict]]:
        """Kept doc_id -> its full copies list, for the documents whose copies this run changed."""
        return {d: self.copies[d] for d in sorted(self.changed)}
