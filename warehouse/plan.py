"""What a run has to do: the staged inbox against what the warehouse already holds at this pipeline version.

The flow's ``plan`` task reads the four facts below under the writer lock and its body
derives the run's work from them; ``govfacts run`` asks the same question *before*
starting Prefect, so an inbox with nothing new is answered in about a second instead
of paying Prefect's server start-up, the Great Expectations import and a report
rewrite for no change. Both must decide alike, hence one place for the decision:

* ``read_known`` — content hashes loaded (documents, copies, quarantined files),
  the file names recorded per document, the staging rejects (by path and reason)
  and the normalized-text hashes; the queries live beside their tables
  (warehouse/load.py, parts.py, copies.py);
* ``work_for`` — which staged files are new, which rejects are new, which known
  documents arrived under a new name (the flow records those names: a new snapshot),
  and how many names are skipped.

``known_if_current`` opens the warehouse read-only (no lock, no migration) and says
None when the warehouse does not exist yet or needs a migration: then only the flow
can answer, and it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from transforms.schema import StagedFile
from transforms.settings import Settings
from transforms.stage import StageResult


@dataclass
class Known:
    """What the warehouse already holds at one pipeline version (the flow's ``Plan``)."""

    known: set[str]  # content hashes loaded as documents, copies of a document, or quarantined files
    names: dict[str, list[str]]  # doc_id -> recorded file names
    stage_rejects: set[tuple[str, str]]  # (source_path, reason) already quarantined at staging
    texts: dict = field(default_factory=dict)  # (text_sha256, identity) -> (doc_id, copies) of the documents loaded (warehouse/copies.py)
    snapshot_id: int | None = None  # the snapshot these were read at


@dataclass
class Work:
    """The part of a staged inbox the warehouse does not hold yet."""

    todo: list[StagedFile]  # staged files whose content is new at this version: normalized, extracted, validated
    rejected: list[dict]  # quarantine records not recorded before (a rejected file's hash or its path and reason)
    renamed: dict[str, list[str]]  # doc_id -> every name (recorded ones first) when it arrived under a new one
    skipped: int  # file names whose content (or rejection) is already in the warehouse

    @property
    def nothing_new(self) -> bool:
        """True when a run would load nothing and record nothing: no snapshot, the report still describes it."""
        return not (self.todo or self.rejected or self.renamed)


def read_known(con: duckdb.DuckDBPyConnection, version: str) -> Known:
    """The warehouse's record of what pipeline ``version`` has done (one read of each table it needs)."""
    from warehouse.copies import known_texts  # noqa: PLC0415
    from warehouse.load import current_snapshot, known_documents  # noqa: PLC0415
    from warehouse.parts import known_source_names, known_stage_rejects  # noqa: PLC0415

    return Known(known_documents(con, version), known_source_names(con, version), known_stage_rejects(con, version),
                 known_texts(con, version), current_snapshot(con))


def work_for(staged: StageResult, known: Known) -> Work:
    """Split a staged inbox into what is new and what is skipped, as the flow does before its first batch."""
    todo = [f for f in staged.staged if f.sha256 not in known.known]
    rejected = [r for r in staged.rejected
                if not (r.get("sha256") in known.known or (r["source_path"], r["reason"]) in known.stage_rejects)]
    skipped = sum(len(staged.names[f.sha256]) for f in staged.staged if f.sha256 in known.known)
    skipped += len(staged.rejected) - len(rejected)
    renamed = {f.sha256: known.names[f.sha256] + [n for n in staged.names[f.sha256] if n not in known.names[f.sha256]]
               for f in staged.staged if f.sha256 in known.names and set(staged.names[f.sha256]) - set(known.names[f.sha256])}
    return Work(todo, rejected, renamed, skipped)


def known_if_current(settings: Settings, version: str) -> Known | None:
    """``read_known`` on a read-only session, or None when only a run can answer (no warehouse yet, a migration due).

    No writer lock: a run writing meanwhile commits whole snapshots, and the answer is that of the latest one.
    """
    from warehouse.catalog import connect  # noqa: PLC0415
    from warehouse.load import migrations_pending  # noqa: PLC0415

    try:
        con = connect(settings, read_only=True, sandboxed=False)
    except FileNotFoundError:  # no catalog yet: the first run makes it
        return None
    try:
        if migrations_pending(con):
            return None
        return read_known(con, version)
    finally:
        con.close()
