"""The run's books: what came in, what was skipped, processed, copied, quarantined and published — and
the rows that record it in the warehouse.

The flow (flows/ingest.py) moves the work; ``RunBook`` counts it, in the flow's process, in
submission order (so which of two equal texts is the document never depends on which worker
finished first). Every file that came in is accounted for exactly once:
files in = documents + already loaded (skipped) + duplicate names and copies + quarantined files.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import pyarrow as pa

from expectations.results import merge_result_rows
from transforms.schema import StagedFile
from transforms.stage import StageResult
from warehouse.copies import SameText
from warehouse.plan import Known, work_for


@dataclass
class RunSummary:
    """What a run did; printed by the CLI and returned by the flow."""

    run_id: str
    flow_run_id: str
    code_version: str
    files_in: int = 0
    staged: int = 0
    skipped: int = 0
    duplicates: int = 0
    documents: int = 0
    files_quarantined: int = 0
    facts_extracted: int = 0
    facts_published: int = 0
    facts_quarantined: int = 0
    facts_warned: int = 0
    expectations_passed: int = 0
    expectations_failed: int = 0
    snapshot_id: int | None = None
    changed: bool = False
    warehouse: str = ""
    quarantined: list[dict] = field(default_factory=list)
    without_facts: list[dict] = field(default_factory=list)  # documents loaded with no facts: source_path, doc_type, reason
    processed: list[str] = field(default_factory=list)  # source paths (first name) of the documents this run processed
    renamed: int = 0  # already-loaded documents seen under a new file name (names recorded, not re-processed)
    copies: list[dict] = field(default_factory=list)  # files whose normalized text equals a document's: recorded as its copies, not loaded (counted in duplicates)
    batches: int = 0
    task_runner: str = ""
    seconds: float = 0.0  # wall time of the flow body
    stage_seconds: dict = field(default_factory=dict)  # stage -> [wall, cpu] seconds inside task bodies (workers' included when they report them)
    busy_seconds: float = 0.0  # wall time in which at least one of those task bodies ran; seconds - busy = orchestration

    @property
    def reconciles(self) -> bool:
        """Files in = documents (new or already loaded, duplicates counted once per name) + quarantined."""
        return self.files_in == self.documents + self.skipped + self.duplicates + self.files_quarantined


@dataclass
class Load:
    """What the load task writes as the run's snapshot (see ``flows.ingest.load``)."""

    run: dict
    processed: list[str]
    dq_rows: list[dict]
    renamed: dict[str, list[str]]
    copies: dict[str, list[dict]]
    dropped: set[str]

    @property
    def anything(self) -> bool:
        """Whether there is anything to write (an unchanged run writes no snapshot)."""
        return bool(self.processed or self.run["files_quarantined"] or self.renamed or self.copies)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class RunBook:
    """The run's accounting, kept by the flow as results arrive."""

    def __init__(self, flow_run_id: str, version: str, warehouse: str, task_runner: str,
                 say: Callable[..., None] = lambda *a: None) -> None:
        self.summary = RunSummary(run_id=uuid.uuid4().hex[:12], flow_run_id=flow_run_id, code_version=version,
                                  warehouse=warehouse, task_runner=task_runner)
        self.version, self.say, self.started = version, say, _now()
        self.todo: list[StagedFile] = []
        self.rejected: list[dict] = []  # quarantine records of files (staging's new ones, then the transforms')
        self.renamed: dict[str, list[str]] = {}
        self.same = SameText()
        self.dq_groups: list[list[dict]] = []
        self.results: list[dict] = []
        self._staged: StageResult | None = None
        self._done = 0

    @property
    def run_id(self) -> str:
        return self.summary.run_id

    # -- plan -------------------------------------------------------------------------------------

    def plan(self, staged: StageResult, known: Known) -> list[StagedFile]:
        """What this run must process: the staged files (and staging's rejects) this code version has not seen.

        Files already loaded are skipped (every name they arrived under), already-quarantined rejects too;
        a loaded document seen under a new name keeps its content and gets the name recorded (``renamed``).
        """
        s = self.summary
        self._staged = staged
        work = work_for(staged, known)  # the decision `govfacts run` takes before starting Prefect, in one place
        self.todo, self.renamed = work.todo, work.renamed
        self.rejected = [dict(r, pipeline_version=self.version, run_id=self.run_id) for r in work.rejected]
        s.files_in, s.staged, s.skipped, s.renamed = staged.files_in, len(staged.staged), work.skipped, len(work.renamed)
        self.same = SameText.from_warehouse(known.texts)  # one report under other bytes is one document (warehouse/copies.py)
        return self.todo

    def names_of(self, batch: list[StagedFile]) -> dict[str, list[str]]:
        """Every name each file of ``batch`` arrived under."""
        return {f.sha256: self._staged.names[f.sha256] for f in batch}

    # -- results, in submission order -------------------------------------------------------------------

    def take_batch(self, result: dict, size: int) -> pa.Table:
        """Count a transformed batch; return its facts without those of copies of another document's text."""
        s = self.summary
        facts, n_copies = self.same.take(result.get("texts", []), result["facts"], self.run_id)
        copy_paths = {c["source_path"] for c in self.same.found[len(self.same.found) - n_copies:]} if n_copies else set()
        s.documents += result["documents"] - n_copies
        s.processed.extend(result["processed"])
        s.without_facts.extend(d for d in result.get("without_facts", []) if d["source_path"] not in copy_paths)
        self.rejected.extend(result["rejected"])
        self._done += size
        self.say("documents normalized and extracted", self._done, len(self.todo))
        return facts

    def take_group(self, result: dict) -> None:
        """Count a validated and spilled group of facts."""
        s = self.summary
        s.facts_extracted += result["facts"]
        s.facts_quarantined += result["quarantined"]
        s.facts_warned += result["warned"]
        self.dq_groups.append(result["results"])

    # -- the close ----------------------------------------------------------------------------------------

    def close(self) -> Load:
        """Balance the books once every batch is validated and spilled: the run row, the data-quality rows, the copies."""
        s, staged = self.summary, self._staged
        s.facts_published = s.facts_extracted - s.facts_quarantined
        s.files_quarantined = len(self.rejected)
        quarantined_shas = {r["sha256"] for r in self.rejected if r.get("sha256")}
        s.duplicates = sum(len(staged.names[f.sha256]) - 1 for f in self.todo if f.sha256 not in quarantined_shas)
        s.duplicates += len(self.same.found)  # each copy's first name; its other names are counted above
        s.copies = [{k: c[k] for k in ("source_path", "names", "same_as")} for c in self.same.found]
        self.results = merge_result_rows(self.dq_groups)
        s.expectations_passed = sum(r["success"] for r in self.results)
        s.expectations_failed = sum(not r["success"] for r in self.results)
        s.quarantined = [{k: r[k] for k in ("source_path", "reason", "detail")} for r in self.rejected]
        run = dict(run_id=s.run_id, flow_run_id=s.flow_run_id, started_at=self.started, finished_at=_now(), code_version=self.version,
                   inputs_manifest_hash=staged.manifest_hash, files_in=s.files_in, documents=s.documents,
                   files_quarantined=s.files_quarantined, files_skipped=s.skipped,
                   facts_extracted=s.facts_extracted, facts_published=s.facts_published,
                   facts_quarantined=s.facts_quarantined, expectations_passed=s.expectations_passed,
                   expectations_failed=s.expectations_failed)
        processed = sorted({f.sha256 for f in self.todo} | quarantined_shas)
        dq_rows = [dict(r, run_id=s.run_id, snapshot_id=0) for r in self.results] if self.todo else []
        return Load(run, processed, dq_rows, self.renamed, self.same.updates(), self.same.dropped)
