"""The govfacts DAG: stage -> plan -> transform (normalize + extract, per batch) -> validate (per group) -> load.

The flow body only calls tasks; each task wraps plain functions and adds retries
and logging. Four properties matter at scale (60,000 reports):

* incremental: ``plan`` skips every content hash the warehouse has already loaded at
  this ``pipeline_version`` (hash of transforms/, expectations/ and seeds/*.csv), so
  an unchanged re-run does almost nothing and a change of code or reference data
  re-processes everything it can affect;
* batched: documents move in batches of ``batch_size`` so Prefect's per-task overhead
  (≈10 ms) is small next to the work, and GX validates the facts of
  ``validate_batch_size`` documents per call (a GX run costs seconds whatever its size);
* streaming: each batch writes its documents and texts as Parquet parts into a
  run-scoped directory and hands back only its facts; at most a few batches are in
  flight, so memory does not grow with the corpus; ``load`` inserts all parts in ONE
  DuckLake transaction (one snapshot per run, none when nothing changed);
* two cores on the threads runner: the transforms are pure Python and share one
  interpreter lock, so a run of ``PROCESS_MIN_DOCUMENTS`` or more validates in a process
  of its own (flows/validator.py) that imports GX while the first batches are transformed.

The task runner (threads, processes, Dask) is a setting: see govfacts/runners.py.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import os
import threading
import time
import uuid
from collections import Counter, deque
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.context import get_run_context
from prefect.runtime import flow_run as current_flow_run
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import opaque

from expectations.artifact import by_expectation, validation_markdown
from expectations.results import merge_result_rows
from flows.validator import PROCESS_MIN_DOCUMENTS, ValidatorProcess, check_group_anywhere, start_validator
from govfacts.runners import make_task_runner
from transforms.settings import Settings, load_settings
from govfacts.version import pipeline_version
from transforms.errors import InputRejected
from transforms.extract import Identity, identify_and_extract
from transforms.normalize import Normalized, normalize_report
from transforms.schema import FACT_SCHEMA, StagedFile, facts_to_table, with_fact_ids
from transforms.stage import StageResult, stage_inbox
from warehouse.copies import SameText, known_texts
from warehouse.load import current_snapshot, known_documents, open_for_write, writer_lock
from warehouse.quality import published_facts
from warehouse.parts import known_source_names, known_stage_rejects, load_parts, part_path, remove_spill, spill_root, write_part
from warehouse.parts import open_spill as open_parts_dir, sweep_spills as sweep_parts_dirs
from warehouse.storage import is_remote, join


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
    stage_seconds: dict = field(default_factory=dict)  # stage -> [wall, cpu] seconds inside task bodies run in this process
    busy_seconds: float = 0.0  # wall time in which at least one of those task bodies ran; seconds - busy = orchestration

    @property
    def reconciles(self) -> bool:
        """Files in = documents (new or already loaded, duplicates counted once per name) + quarantined."""
        return self.files_in == self.documents + self.skipped + self.duplicates + self.files_quarantined


class TransientFault(RuntimeError):
    """A failure injected by the reliability tests; the task's retries must absorb it."""


def _fault(stage: str) -> None:
    """Fail here when asked: the reliability tests' hooks (no effect unless the variables are set).

    ``GOVFACTS_FAULT=<stage>`` kills the process (SIGKILL) at the end of that task.
    ``GOVFACTS_FAULT_TRANSIENT=<stage>:<n>[,<stage>:<n>...]`` with ``GOVFACTS_FAULT_STATE=<dir>``
    makes the task raise ``TransientFault`` its first ``n`` times; attempts are counted in
    files, so the count holds across retries in threads, processes or remote workers.
    """
    if os.environ.get("GOVFACTS_FAULT") == stage:
        os.kill(os.getpid(), 9)
    for spec in filter(None, os.environ.get("GOVFACTS_FAULT_TRANSIENT", "").split(",")):
        name, _, times = spec.partition(":")
        if name != stage:
            continue
        counter = Path(os.environ["GOVFACTS_FAULT_STATE"]) / f"{stage}.count"
        done = int(counter.read_text() or 0) if counter.exists() else 0
        if done < int(times or 1):
            counter.write_text(str(done + 1))
            raise TransientFault(f"injected transient fault {done + 1}/{times or 1} in task {stage}")


def _transient(task, task_run, state) -> bool:
    """Retry condition: only a failure that can pass on its own — an I/O error, or the tests' injected fault.

    A ``StagingError`` (the staging area cannot be written) or a bug fails the same way every
    time; retrying it only delays the message the user needs.
    """
    try:
        state.result()
    except (OSError, TransientFault):
        return True
    except BaseException:  # noqa: BLE001 (anything else is deterministic: no retry)
        return False
    return False


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), max(1, size))]


# -- stage timings ------------------------------------------------------------------------------
# Each task body records its wall and CPU (thread) time per flow run, so a run can say where its
# time went and how much was orchestration. Only tasks executed in the flow's own process (the
# default threads runner) are visible to the flow; remote workers keep their own clocks.

_CLOCK: dict[str, Counter] = {}
_SPANS: dict[str, list[tuple[float, float]]] = {}
_CLOCK_LOCK = threading.Lock()


@contextmanager
def _timed(stage: str) -> Iterator[None]:
    wall, cpu = time.perf_counter(), time.thread_time()
    try:
        yield
    finally:
        key = str(current_flow_run.id)
        end = time.perf_counter()
        with _CLOCK_LOCK:
            c = _CLOCK.setdefault(key, Counter())
            c[f"{stage}.wall"] += end - wall
            c[f"{stage}.cpu"] += time.thread_time() - cpu
            _SPANS.setdefault(key, []).append((wall, end))


def _stage_seconds(flow_run_id: str) -> dict[str, list[float]]:
    """stage -> [wall, cpu] seconds recorded for this flow run (and forget them)."""
    with _CLOCK_LOCK:
        c = _CLOCK.pop(flow_run_id, Counter())
    stages = sorted({k.rsplit(".", 1)[0] for k in c})
    return {s: [round(c[f"{s}.wall"], 3), round(c[f"{s}.cpu"], 3)] for s in stages}


def _busy_seconds(flow_run_id: str) -> float:
    """Wall time during which at least one task body of this run was working (the union of their spans).

    The rest of the flow's wall time is orchestration: submitting, state changes, waiting.
    """
    with _CLOCK_LOCK:
        spans = sorted(_SPANS.pop(flow_run_id, []))
    busy, end = 0.0, float("-inf")
    for a, b in spans:
        if b <= end:
            continue
        busy += b - max(a, end)
        end = b
    return round(busy, 3)


# -- tasks ----------------------------------------------------------------------------------------
# No Prefect caching (NO_CACHE): what is already done is the warehouse's record of content hashes
# at this pipeline version (see ``plan``), and Prefect's default policy would hash every task's
# inputs — megabytes of facts per validation group — on every call, for keys nobody reads.


@task(retries=2, retry_delay_seconds=1, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def stage(inbox: str, staging: str, max_bytes: int = 64 * 1024 * 1024) -> StageResult:
    """Copy the inbox content-addressed into staging."""
    with _timed("stage"):
        result = stage_inbox(Path(inbox), Path(staging), max_bytes)
    _fault("stage")
    return result


@dataclass
class Plan:
    """What the warehouse already holds at this code version."""

    known: set[str]  # content hashes loaded as documents or quarantined files
    names: dict[str, list[str]]  # doc_id -> recorded file names
    stage_rejects: set[tuple[str, str]]  # (source_path, reason) already quarantined at staging
    texts: dict = field(default_factory=dict)  # text_sha256 -> (doc_id, copies) of the documents loaded (warehouse/copies.py)


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def plan(settings: Settings, version: str) -> Plan:
    """Content hashes this code version has already loaded (they are skipped)."""
    with _timed("plan"), writer_lock(settings):
        con = open_for_write(settings)
        try:
            return Plan(known_documents(con, version), known_source_names(con, version), known_stage_rejects(con, version),
                        known_texts(con, version))
        finally:
            con.close()


# Normalize and extract are pure Python: threads of one process take turns on the interpreter lock,
# so two batches transformed at once finish later than one after the other (≈5-10 % more CPU in
# normalize and extract on the 1,000-report benchmark). On the threads runner a second worker is still useful, for the
# validation task (waiting on its process) and for the Parquet writes (which release the lock), so batches
# take this lock for their CPU-bound part only. A process or Dask worker runs one task at a time anyway.
_CPU_BOUND = threading.Lock()


def _cpu_bound() -> threading.Lock:
    """This process's lock for CPU-bound task work (a function, so a task pickled for a worker refers to the
    worker's own lock instead of carrying this one, which cannot be pickled)."""
    return _CPU_BOUND


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def transform(batch: list[StagedFile], names: dict[str, list[str]], parts: str, label: str, version: str, run_id: str,
              raw: dict[str, bytes] | None = None) -> dict:
    """Normalize and extract a batch of staged files; write its documents and texts as Parquet parts.

    One task per batch for both stages, so the normalized text and its offset maps (~200 KB a
    document) never leave the worker that made them: with processes or Dask nothing big is
    pickled, and the flow process only ever holds the batch's facts and counts. ``raw``: the staged
    bytes, sent along to a remote cluster's workers, which cannot read the flow's staging area. Undecodable
    files become quarantine records. Each stage keeps its own timing and fault point.
    """
    done: list[tuple[StagedFile, Normalized]] = []
    rejected: list[dict] = []
    with _cpu_bound():  # see _CPU_BOUND: the next batch waits here, ready, instead of sharing the lock
        with _timed("normalize"):
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
        _fault("normalize")
        with _timed("extract"):
            # fact ids here, batch by batch, rather than for the whole group when it is validated (the run's tail)
            identities, found = {}, []
            for f, norm in done:
                identities[f.sha256], mine = identify_and_extract(norm, f.sha256)
                found.extend(mine)
            facts = with_fact_ids(facts_to_table(found))
        _fault("extract")
    with _timed("spill"):
        docs = _documents_table(done, facts, identities, names, version, run_id)
        write_part(parts, "documents", label, docs)
        write_part(parts, "document_text", label, pa.table({
            "doc_id": [f.sha256 for f, _ in done], "text": [n.text for _, n in done], "raw_text": [n.raw_text for _, n in done]}))
        if rejected:
            write_part(parts, "quarantine", label, pa.Table.from_pylist(rejected))
    without = [dict(source_path=r["source_path"], doc_type=r["doc_type"], reason=r["no_facts_reason"])
               for r in docs.select(["source_path", "doc_type", "no_facts_reason"]).to_pylist() if r["no_facts_reason"]]
    texts = [dict(r, names=names.get(r["doc_id"], [r["source_path"]])) for r in
             docs.select(["doc_id", "text_sha256", "source_path", "n_bytes", "encoding", "staged_path"]).to_pylist()] if docs.num_rows else []
    return dict(facts=facts, documents=docs.num_rows, processed=[f.source_path for f, _ in done], without_facts=without, texts=texts,
                rejected=[{k: r[k] for k in ("source_path", "sha256", "reason", "detail")} for r in rejected])


def _documents_table(done: list[tuple[StagedFile, Normalized]], facts: pa.Table, identities: dict[str, Identity],
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


# Validator processes of the flow runs in this process (flow run id -> process); see flows/validator.py.
_VALIDATORS: dict[str, ValidatorProcess] = {}


def _validator_of(flow_run_id: str) -> ValidatorProcess | None:
    """The validator process of a flow run of this process, if it has one (none in a worker process)."""
    return _VALIDATORS.get(flow_run_id)


@task(cache_policy=NO_CACHE)
def validate(facts: pa.Table | list[pa.Table], settings: Settings | None = None, text_parts: list[str] | None = None) -> dict:
    """Run the GX suite on the facts of a group of batches (a GX run costs seconds whatever its size, so groups are large).

    Rules across documents compare with the facts the warehouse already publishes for the
    group's regions; ``text_parts`` (the group's spilled document_text parts) let GX check evidence
    offsets — read back where GX runs rather than held since normalize, so memory stays bounded.
    GX runs in the run's validator process when it has one (threads runner, large runs), else here.
    """
    with _timed("validate"):
        if isinstance(facts, list):
            facts = pa.concat_tables(facts) if facts else FACT_SCHEMA.empty_table()
        if "fact_id" not in facts.column_names:
            facts = with_fact_ids(facts)
        regions = [r for r in set(facts.column("region").to_pylist()) if r]
        published = published_facts(settings, regions) if settings is not None and facts.num_rows else None
        checked = check_group_anywhere(_validator_of(str(current_flow_run.id)), facts, published, text_parts)
    _fault("validate")
    return dict(facts=facts, **checked)


def publish_facts(checked: dict, version: str, run_id: str) -> tuple[pa.Table, list[dict]]:
    """Facts with their dq status and provenance columns, and the quarantine records of those that failed."""
    facts = checked["facts"]
    ids = facts.column("fact_id").to_pylist()
    status = [checked["status"][i] for i in ids]
    failed = [",".join(checked["failed"][i]) for i in ids]
    facts = facts.append_column("pipeline_version", pa.array([version] * facts.num_rows, pa.string()))
    facts = facts.append_column("run_id", pa.array([run_id] * facts.num_rows, pa.string()))
    facts = facts.append_column("dq_status", pa.array(status, pa.string()))
    facts = facts.append_column("dq_failed", pa.array(failed, pa.string()))
    rejects = [dict(item="fact", source_path=None, sha256=r["doc_id"], fact_id=r["fact_id"], stage="validate",
                    reason=r["dq_failed"], detail="; ".join(checked.get("messages", {}).get(r["fact_id"]) or [])
                    or f"{r['indicator']} {r['measure']} {r['value']:g}{r['unit']} ({r['period']}, {r['kind']}) failed: {r['dq_failed']}",
                    evidence=r["evidence"], pipeline_version=version, run_id=run_id)
               for r in facts.select(["doc_id", "fact_id", "indicator", "measure", "value", "unit", "period", "kind", "evidence", "dq_status", "dq_failed"]).to_pylist()
               if r["dq_status"] == "error"]
    return facts, rejects


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def spill_facts(checked: dict, parts: str, label: str, version: str, run_id: str) -> dict:
    """Write a validated group's facts and fact quarantine records as Parquet parts; return counts and GX results."""
    with _timed("spill"):
        facts, rejects = publish_facts(checked, version, run_id)
        write_part(parts, "facts", label, facts)
        if rejects:
            write_part(parts, "quarantine", label, pa.Table.from_pylist(rejects))
        status = Counter(facts.column("dq_status").to_pylist())
    return dict(facts=facts.num_rows, quarantined=status["error"], warned=status["warning"], results=checked["results"])


@task(retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def load(settings: Settings, run: dict, parts: str, processed: list[str], dq_results: list[dict],
         renamed: dict[str, list[str]], copies: dict[str, list[dict]] | None = None, dropped: set[str] | None = None) -> int | None:
    """Write the run's parts as one snapshot (nothing when nothing changed); copies of a document are recorded, not loaded."""
    with _timed("load"):
        dq = pa.Table.from_pylist(dq_results) if dq_results else pa.table({"snapshot_id": pa.array([], pa.int64())})
        return load_parts(settings, run, parts, processed, dq, renamed, copies, dropped)


@task(cache_policy=NO_CACHE)
def current(settings: Settings) -> int:
    """The warehouse's latest snapshot id."""
    con = open_for_write(settings)
    try:
        return current_snapshot(con)
    finally:
        con.close()


# -- the run directory ------------------------------------------------------------------------------


def shared_workers(task_runner) -> bool:
    """Whether the run's workers may be on other machines (a Dask cluster given by address): then they get
    the staged bytes with each batch and spill where every one of them can write (warehouse/parts.py)."""
    return bool(getattr(task_runner, "address", None))


def _as_path(where: str) -> Path | str:
    return where if is_remote(where) else Path(where)


def spill_dir(settings: Settings, run_id: str, shared: bool = False) -> Path | str:
    """Run-scoped directory of Parquet parts: local (a Path), or on shared storage for a remote cluster (an s3:// URI)."""
    return _as_path(join(spill_root(settings, shared), run_id))


def open_spill(settings: Settings, run_id: str, shared: bool = False) -> Path | str:
    """Create this run's part directory, recording its owner so a crashed run's parts can be swept."""
    return _as_path(open_parts_dir(spill_root(settings, shared), run_id))


def sweep_spills(settings: Settings, shared: bool = False) -> list[str]:
    """Remove part directories of runs that died on this host (their owner process is gone)."""
    return [_as_path(d) for d in sweep_parts_dirs(spill_root(settings, shared))]


def _artifact(summary: RunSummary, results: list[dict]) -> None:
    """A markdown artifact (counts in = out, expectations, why facts failed) and a table artifact per expectation."""
    create_markdown_artifact(markdown=validation_markdown(asdict(summary), results), key="govfacts-validation",
                             description="govfacts validation summary")
    create_table_artifact(table=by_expectation(results), key="govfacts-expectations",
                          description="govfacts expectations: facts checked and failed, per expectation")


# -- the flow ---------------------------------------------------------------------------------------


ARROW_SOFT_LIMIT = 64 * 2 ** 20  # bytes of Arrow memory in this process above which finished batches are collected


def _release_finished_batches(limit: int = ARROW_SOFT_LIMIT) -> bool:
    """Free the data of finished batches now rather than at Python's next full collection.

    A Prefect future and its wrapped ``concurrent.futures.Future`` refer to each other (a done
    callback), so a finished batch's result — megabytes of normalized text per batch — is only
    freed by the cyclic garbage collector, whose full passes are rare. Without this, memory
    grows with the corpus between passes. A full pass costs ≈0.3 s, so it runs only when the
    Arrow memory of the process exceeds ``limit`` (every few hundred documents).
    """
    if pa.total_allocated_bytes() <= limit:
        return False
    gc.collect()
    return True


def _validator_for(ctx, todo: int) -> ValidatorProcess | None:
    """A validator process for this run: on the threads runner, for runs large enough to gain from it.

    Threads share one interpreter lock, so GX work done in the flow's process is added to the
    transforms'; in a process of its own it runs on another core, and its GX import overlaps the
    first batches. Process and Dask workers validate where they run, as before.
    """
    if not isinstance(ctx.task_runner, ThreadPoolTaskRunner) or todo < PROCESS_MIN_DOCUMENTS:
        return None
    return start_validator()


def _in_flight(settings: Settings) -> int:
    """Batches allowed in flight at once: enough to keep every worker busy, few enough to bound memory."""
    return 2 * max(1, settings.max_workers) + 1


PROGRESS: Callable[[str, int, int], None] | None = None  # set by `govfacts run`: (what the flow does, done, of how many)


def _say(what: str, done: int = 0, total: int = 0) -> None:
    if PROGRESS is not None:
        PROGRESS(what, done, total)


@flow(name="govfacts-ingest", log_prints=True, task_runner=make_task_runner(load_settings()))
def ingest(inbox: str, warehouse: str, catalog: str = "sqlite", postgres_dsn: str = "", batch_size: int | None = None) -> dict:
    """Stage, normalize, extract, validate and load the reports in ``inbox`` (only what is new at this code version)."""
    t0 = time.perf_counter()
    settings = load_settings(inbox=inbox, warehouse=warehouse, catalog=catalog, postgres_dsn=postgres_dsn or None, batch_size=batch_size)
    version = pipeline_version()
    ctx = get_run_context()
    summary = RunSummary(run_id=uuid.uuid4().hex[:12], flow_run_id=str(ctx.flow_run.id), code_version=version,
                         warehouse=str(settings.warehouse), task_runner=type(ctx.task_runner).__name__)
    started = datetime.now(timezone.utc).replace(tzinfo=None)
    _say("reading the inbox")
    if isinstance(ctx.task_runner, ThreadPoolTaskRunner):
        planned = plan.submit(settings, version)  # opens the warehouse (DuckDB, lock released) while staging reads the inbox
        staged = stage(str(settings.inbox), str(settings.staging), settings.max_file_bytes)
        known = planned.result()
    else:  # a process or Dask worker would first pay its start-up (seconds) for a query of milliseconds
        known = plan(settings, version)
        staged = stage(str(settings.inbox), str(settings.staging), settings.max_file_bytes)
    todo = [f for f in staged.staged if f.sha256 not in known.known]
    rejected = [r for r in staged.rejected
                if not (r.get("sha256") in known.known or (r["source_path"], r["reason"]) in known.stage_rejects)]
    summary.files_in, summary.staged = staged.files_in, len(staged.staged)
    summary.skipped = sum(len(staged.names[f.sha256]) for f in staged.staged if f.sha256 in known.known)
    summary.skipped += len(staged.rejected) - len(rejected)
    renamed = {f.sha256: known.names[f.sha256] + [n for n in staged.names[f.sha256] if n not in known.names[f.sha256]]
               for f in staged.staged if f.sha256 in known.names and set(staged.names[f.sha256]) - set(known.names[f.sha256])}
    summary.renamed = len(renamed)
    for r in rejected:
        r.update(pipeline_version=version, run_id=summary.run_id)
    _say("documents normalized and extracted", 0, len(todo))

    shared = shared_workers(ctx.task_runner)
    parts = open_spill(settings, summary.run_id, shared)
    same = SameText.from_warehouse(known.texts)  # one report under other bytes is one document (warehouse/copies.py)
    remote = _validator_for(ctx, len(todo))
    if remote is not None:
        _VALIDATORS[summary.flow_run_id] = remote
    try:
        if rejected:
            write_part(parts, "quarantine", "stage", pa.Table.from_pylist(rejected))
        dq_groups: list[list[dict]] = []
        pending: deque = deque()  # (label, future) of batches in flight, oldest first
        checks: deque = deque()  # futures of validated groups being written
        group: list[pa.Table] = []  # facts of finished batches awaiting validation
        group_texts: list[str] = []  # their document_text parts (evidence offsets are checked against them)
        n_groups = 0

        def validate_group() -> None:
            """Validate the facts gathered so far (one GX run) and write them as parts."""
            nonlocal group, group_texts, n_groups
            checked = validate.submit(group, settings, group_texts)
            # opaque: Prefect would otherwise walk every fact's status, failures and messages (≈100,000
            # items a group) looking for futures inside the validated group before spilling it. Prefect's
            # own runners unwrap it; prefect-dask hands the wrapper itself to the task, so not there.
            checked = opaque(checked) if isinstance(ctx.task_runner, (ThreadPoolTaskRunner, ProcessPoolTaskRunner)) else checked
            checks.append(spill_facts.submit(checked, str(parts), f"v{n_groups:06d}", version, summary.run_id))
            group, group_texts, n_groups = [], [], n_groups + 1

        def absorb(label: str, future) -> None:
            """Take a finished batch's counts and facts; validate once enough documents have gathered."""
            result = future.result()
            _release_finished_batches()
            facts, n_copies = same.take(result.get("texts", []), result["facts"], summary.run_id)
            copy_paths = {c["source_path"] for c in same.found[len(same.found) - n_copies:]} if n_copies else set()
            summary.documents += result["documents"] - n_copies
            summary.processed.extend(result["processed"])
            done[0] += sizes.pop(label, 0)
            _say("documents normalized and extracted", done[0], len(todo))
            summary.without_facts.extend(d for d in result.get("without_facts", []) if d["source_path"] not in copy_paths)
            rejected.extend(result["rejected"])
            group.append(facts)
            group_texts.append(str(part_path(parts, "document_text", label)))
            if len(group) * settings.batch_size >= settings.validate_batch_size:
                validate_group()

        def settle(result: dict) -> None:
            summary.facts_extracted += result["facts"]
            summary.facts_quarantined += result["quarantined"]
            summary.facts_warned += result["warned"]
            dq_groups.append(result["results"])

        batches = _chunks(todo, settings.batch_size)
        summary.batches = len(batches)
        sizes, done = {f"b{i:06d}": len(b) for i, b in enumerate(batches)}, [0]  # for the progress line
        for i, batch in enumerate(batches):
            label = f"b{i:06d}"
            names = {f.sha256: staged.names[f.sha256] for f in batch}
            raw = {f.sha256: Path(f.staged_path).read_bytes() for f in batch} if shared else None
            pending.append((label, transform.submit(batch, names, str(parts), label, version, summary.run_id, raw)))
            while len(pending) > _in_flight(settings):
                absorb(*pending.popleft())
            while len(checks) > 1:
                settle(checks.popleft().result())
        while pending:
            absorb(*pending.popleft())
        if todo:
            _say("validating the facts (Great Expectations)")
        if group:
            validate_group()
        while checks:
            settle(checks.popleft().result())
        if remote is not None:
            remote.close()  # every group is validated: its memory is not held beside the load's
        summary.facts_published = summary.facts_extracted - summary.facts_quarantined
        file_rejects = [r for r in rejected]
        summary.files_quarantined = len(file_rejects)
        quarantined_shas = {r["sha256"] for r in file_rejects if r.get("sha256")}
        summary.duplicates = sum(len(staged.names[f.sha256]) - 1 for f in todo if f.sha256 not in quarantined_shas)
        summary.duplicates += len(same.found)  # each copy's first name; its other names are counted above
        summary.copies = [{k: c[k] for k in ("source_path", "names", "same_as")} for c in same.found]
        results = merge_result_rows(dq_groups)
        summary.expectations_passed = sum(r["success"] for r in results)
        summary.expectations_failed = sum(not r["success"] for r in results)
        summary.quarantined = [{k: r[k] for k in ("source_path", "reason", "detail")} for r in file_rejects]
        run = dict(run_id=summary.run_id, flow_run_id=summary.flow_run_id, started_at=started,
                   finished_at=datetime.now(timezone.utc).replace(tzinfo=None), code_version=version,
                   inputs_manifest_hash=staged.manifest_hash, files_in=summary.files_in, documents=summary.documents,
                   files_quarantined=summary.files_quarantined, files_skipped=summary.skipped,
                   facts_extracted=summary.facts_extracted, facts_published=summary.facts_published,
                   facts_quarantined=summary.facts_quarantined, expectations_passed=summary.expectations_passed,
                   expectations_failed=summary.expectations_failed)
        processed = sorted({f.sha256 for f in todo} | quarantined_shas)
        dq_rows = [dict(r, run_id=summary.run_id, snapshot_id=0) for r in results] if todo else []
        copies = same.updates()
        _say("loading the warehouse")
        snap = load(settings, run, str(parts), processed, dq_rows, renamed, copies, same.dropped) \
            if processed or rejected or renamed or copies else None
    finally:
        _VALIDATORS.pop(summary.flow_run_id, None)
        if remote is not None:
            remote.close()
        remove_spill(str(parts))
    summary.changed = snap is not None
    summary.snapshot_id = snap if snap is not None else current(settings)
    _artifact(summary, results)
    summary.seconds = round(time.perf_counter() - t0, 3)
    summary.stage_seconds = _stage_seconds(summary.flow_run_id)
    summary.busy_seconds = _busy_seconds(summary.flow_run_id)
    get_run_logger().info("run %s: %s documents, %s facts, snapshot %s", summary.run_id, summary.documents, summary.facts_extracted, summary.snapshot_id)
    return asdict(summary)


def flow_for(settings: Settings) -> Callable[..., dict]:
    """The ingest flow with the task runner chosen in ``settings`` (threads, processes or dask), as ``govfacts run`` runs it.

    Run without flow-run heartbeats: Prefect sends them from a thread that sleeps in one-second
    steps, and a finished run waits for that thread to wake up — 0 to 1 s added to every run
    (half of an unchanged re-run). They let a server notice a crashed run that a worker or
    ``govfacts serve`` started; those run the deployment's entrypoint and keep them.
    """
    run_flow = ingest.with_options(task_runner=make_task_runner(settings))

    @functools.wraps(run_flow.fn)
    def run(**params) -> dict:
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            return run_flow(**params)

    return run
