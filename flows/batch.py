"""The transform stage of one batch — staged bytes to normalized texts, facts and Parquet parts — and the
processes that run it beside the flow.

Why processes: normalize and extract are pure Python. On the default task runner (threads)
every task of a run shares one interpreter lock, so the transforms of a run use one core
however many threads run them, while the machine's other cores idle. A ``TransformPool``
is ``max_workers`` child Pythons (flows/child.py) that import the transforms, warm their
caches (OpenCC tables, reference data) and then transform the batches they are sent: the
flow's task threads only send a batch's staged file list and wait, so the transforms of
two batches run on two cores while the flow thread orchestrates. Only small things travel:
the batch's file list in, its facts (Arrow) and counts out; the texts (≈200 KB a document)
are written as parts by the child that made them, as a process or Dask worker does.

The run's validator process (flows/validator.py), when it has one, is one of the pool's
``max_workers`` and transforms between its validations. The flow starts a pool on the threads
runner for runs of at least ``POOL_MIN_DOCUMENTS``
(a child's start-up, ≈0.5 s of CPU, is the transform of ≈100 reports) and ends it once the
last batch is transformed. A child that cannot start or dies costs nothing but speed: its
batch is transformed in the flow's process instead, with the same result (the same function
runs in both places).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Callable, ContextManager, Iterator

import pyarrow as pa

from flows.child import ChildGone, ChildProcess, serve
from transforms.errors import InputRejected
from transforms.extract import Identity, identify_and_extract
from transforms.normalize import Normalized, normalize_report
from transforms.schema import StagedFile, facts_to_table, with_fact_ids
from warehouse.parts import write_part

log = logging.getLogger(__name__)

POOL_MIN_DOCUMENTS = 200  # smaller runs transform in the flow's process (see the module docstring)

Timer = Callable[[str], ContextManager[None]]


def transform_batch(batch: list[StagedFile], names: dict[str, list[str]], parts: str, label: str, version: str, run_id: str,
                    raw: dict[str, bytes] | None = None, *, timed: Timer, checkpoint: Callable[[str], None] = lambda stage: None,
                    extract: Callable = identify_and_extract, cpu_bound: ContextManager | None = None) -> dict:
    """Normalize and extract a batch of staged files; write its documents and texts as Parquet parts.

    Returns the batch's facts (with fact ids) and what the run summary needs. ``raw``: the staged
    bytes, when the worker cannot read the flow's staging area. Undecodable files become quarantine
    records, one per name the bytes arrived under. ``timed(stage)`` times each stage, ``checkpoint(stage)``
    runs after normalize and extract (the reliability tests' fault hooks), ``cpu_bound`` is held
    around the pure-Python part (see flows/ingest.py's ``_CPU_BOUND``).
    """
    done: list[tuple[StagedFile, Normalized]] = []
    rejected: list[dict] = []
    with cpu_bound if cpu_bound is not None else _nothing():
        with timed("normalize"):
            for f in batch:
                try:
                    data = raw[f.sha256] if raw is not None else Path(f.staged_path).read_bytes()
                    done.append((f, normalize_report(data, f.source_path)))
                except InputRejected as exc:
                    rejected.append(dict(item="file", source_path=f.source_path, sha256=f.sha256, fact_id=None, stage="normalize",
                                         reason=exc.reason, detail=exc.message, evidence=None, pipeline_version=version, run_id=run_id))
        # One record per name the rejected bytes arrived under: whoever looks for a file finds it.
        rejected = [dict(r, source_path=n, detail=r["detail"].replace(r["source_path"], n))
                    for r in rejected for n in names.get(r["sha256"], [r["source_path"]])]
        checkpoint("normalize")
        with timed("extract"):
            # fact ids here, batch by batch, rather than for the whole group when it is validated (the run's tail)
            identities, found = {}, []
            for f, norm in done:
                identities[f.sha256], mine = extract(norm, f.sha256)
                found.extend(mine)
            facts = with_fact_ids(facts_to_table(found))
        checkpoint("extract")
    with timed("spill"):
        docs = documents_table(done, facts, identities, names, version, run_id)
        write_part(parts, "documents", label, docs)
        write_part(parts, "document_text", label, pa.table({
            "doc_id": [f.sha256 for f, _ in done], "text": [n.text for _, n in done], "raw_text": [n.raw_text for _, n in done]}))
        if rejected:
            write_part(parts, "quarantine", label, pa.Table.from_pylist(rejected))
    without = [dict(source_path=r["source_path"], doc_type=r["doc_type"], reason=r["no_facts_reason"])
               for r in docs.select(["source_path", "doc_type", "no_facts_reason"]).to_pylist() if r["no_facts_reason"]]
    texts = [dict(r, names=names.get(r["doc_id"], [r["source_path"]])) for r in
             docs.select(["doc_id", "text_sha256", "identity", "source_path", "n_bytes", "encoding", "staged_path"]).to_pylist()] if docs.num_rows else []
    return dict(facts=facts, documents=docs.num_rows, processed=[f.source_path for f, _ in done], without_facts=without, texts=texts,
                rejected=[{k: r[k] for k in ("source_path", "sha256", "reason", "detail")} for r in rejected])


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def documents_table(done: list[tuple[StagedFile, Normalized]], facts: pa.Table, identities: dict[str, Identity],
                    names: dict[str, list[str]], version: str, run_id: str) -> pa.Table:
    """One ``documents`` row per normalized file: what it is (its identity), and why it has no facts when it has none."""
    by_doc: dict[str, list[dict]] = {}
    for r in facts.select(["doc_id", "region", "region_level", "report_year"]).to_pylist():
        by_doc.setdefault(r["doc_id"], []).append(r)
    rows = []
    for f, norm in done:
        report = asdict(norm.report)
        mine = by_doc.get(f.sha256, [])
        ident = identities[f.sha256]
        region = ident.region.name if ident.region else None
        level, year = (ident.region.level if ident.region else None), ident.year
        reason = None if mine else (ident.reason or "the report states none of the headline indicators in a form the rules read")
        rows.append(dict(doc_id=f.sha256, source_path=f.source_path, source_names=json.dumps(names.get(f.sha256, []), ensure_ascii=False),
                         n_bytes=f.n_bytes, staged_path=f.staged_path, encoding=report.get("encoding"),
                         confidence=report.get("confidence"), region=region, region_level=level, report_year=year,
                         n_facts=len(mine), doc_type=ident.doc_type, identity=json.dumps(ident.describe(), ensure_ascii=False),
                         no_facts_reason=reason, normalization_report=json.dumps(report, ensure_ascii=False),
                         pipeline_version=version, run_id=run_id, text_sha256=hashlib.sha256(norm.text.encode("utf-8")).hexdigest()))
    return pa.Table.from_pylist(rows)


# -- the pool ------------------------------------------------------------------------------------


class TransformWorker(ChildProcess):
    """A child Python transforming the batches it is sent (``transform_batch`` there)."""

    what = "transform worker"

    def __init__(self) -> None:
        super().__init__("flows.batch")

    def transform(self, job: tuple) -> dict:
        return self.call(job)


class TransformPool:
    """Transform workers; ``run`` lends a free one to the calling thread for one batch.

    The flow's task threads call ``run`` concurrently (one batch each); a worker that dies is
    dropped, and when none is left ``run`` says so at once (None) instead of waiting.

    ``shared``: the run's validator process, which transforms batches too between its validations
    (``lend`` takes it out of the pool for one): on two cores, two busy processes — two transforming,
    or one transforming and one validating — instead of three, and one Python, Arrow and its caches
    fewer in memory (≈250 MB).
    """

    def __init__(self, size: int, shared: ChildProcess | None = None) -> None:
        self.workers: list = []
        for _ in range(max(1, size) - (shared is not None)):
            try:
                self.workers.append(TransformWorker())
            except ChildGone as exc:
                log.warning("%s; transforming in the flow's process", exc)
                break
        self.shared = shared
        if shared is not None:
            self.workers.append(shared)
        self._free = list(self.workers)
        self._changed = threading.Condition()
        for w in self.workers:
            w.when_ready(self._wake)

    def run(self, *job) -> dict | None:
        """``transform_batch(*job)`` in a free worker, with its stage times (``seconds``); None when no worker is left."""
        worker = self._take()
        if worker is None:
            return None
        lost = False
        try:
            return worker.transform(job)
        except ChildGone as exc:
            lost = True
            log.warning("%s; transforming this batch in the flow's process", exc)
            return None
        finally:
            self._give_back(worker, lost)

    @contextmanager
    def lend(self, worker: ChildProcess) -> Iterator[None]:
        """Keep ``worker`` out of the pool (once its current batch is done) while the caller uses it."""
        with self._changed:
            while worker in self.workers and worker not in self._free:
                self._changed.wait()
            if worker not in self.workers:  # gone, or never in the pool: nothing to keep
                yield
                return
            self._free.remove(worker)
        try:
            yield
        finally:
            self._give_back(worker, lost=not getattr(worker, "alive", True))

    def _take(self) -> ChildProcess | None:
        """A free worker: a warm one first, else one of the pool's own; the shared one only once it is warm (its
        warm-up is the GX import: a batch sent to it meanwhile would hold up every batch after it), unless it is
        the only worker left."""
        with self._changed:
            while self.workers:
                pick = ([w for w in self._free if w.ready] or [w for w in self._free if w is not self.shared]
                        or (self._free if self.workers == [self.shared] else []))
                if pick:
                    worker = pick[0]
                    self._free.remove(worker)
                    return worker
                self._changed.wait()
            return None

    def _wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _give_back(self, worker: ChildProcess, lost: bool) -> None:
        with self._changed:
            if worker in self.workers:
                if lost:
                    self.workers.remove(worker)
                else:
                    self._free.append(worker)
            self._changed.notify_all()

    def close(self) -> None:
        """End the pool's own workers (each exits when its input closes); the shared one is its owner's to end."""
        with self._changed:
            workers, self.workers, self._free = self.workers, [], []
            self._changed.notify_all()
        for w in workers:
            if w is not self.shared:
                w.close()


def start_pool(size: int, shared: ChildProcess | None = None) -> TransformPool | None:
    """A pool of ``size`` workers (``shared`` among them), or None (with a warning) when not one can start."""
    pool = TransformPool(size, shared)
    if pool.workers:
        return pool
    return None


# -- the child -----------------------------------------------------------------------------------


def _timer(seconds: dict[str, list[float]]) -> Timer:
    """A ``timed`` that adds each stage's [wall, cpu] seconds to ``seconds`` (sent back with the batch)."""

    @contextmanager
    def timed(stage: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            s = seconds.setdefault(stage, [0.0, 0.0])
            s[0] += time.perf_counter() - wall
            s[1] += time.process_time() - cpu

    return timed


def run_in_child(*job) -> dict:
    """A batch transformed in a worker process: its result, with the stage times measured there."""
    seconds: dict[str, list[float]] = {}
    result = transform_batch(*job, timed=_timer(seconds))
    return dict(result, seconds=seconds)


def _warm_up() -> None:
    """Load what the first document would (OpenCC tables, reference data, compiled patterns) before the first batch."""
    sample = next(iter(sorted((Path(__file__).resolve().parent.parent / "seeds" / "reports").glob("*.txt"))), None)
    if sample is not None:
        identify_and_extract(normalize_report(sample.read_bytes(), str(sample)), "warm-up")


if __name__ == "__main__":
    serve(_warm_up, run_in_child)
