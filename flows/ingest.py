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
* every core on the threads runner: the transforms are pure Python and threads share one
  interpreter lock, so a large run transforms its batches in a pool of worker processes
  (flows/batch.py) and validates in a process of its own (flows/validator.py, one of those
  workers between its validations), while the flow's threads only orchestrate: submit, wait,
  count (flows/accounting.py).

Reading order: the tasks, then ``ingest`` (one screenful: stage ∥ plan → transform →
validate → spill → load), then its helpers — ``StreamingWindow`` (what is in flight between
transform and load) and ``RunBook`` (the run's accounting, flows/accounting.py).

The task runner (threads, processes, Dask) is a setting: see govfacts/runners.py.
"""

from __future__ import annotations

import functools
import gc
import os
import threading
import time
from collections import Counter, deque
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.context import get_run_context
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run as current_flow_run
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import opaque

from expectations.artifact import by_expectation, validation_markdown
from expectations.derive import comparable_places
from flows.accounting import RunBook, RunSummary
from flows.batch import POOL_MIN_DOCUMENTS, TransformPool, start_pool, transform_batch
from flows.child import give_back_memory, use_system_allocator
from flows.validator import PROCESS_MIN_DOCUMENTS, ValidatorProcess, check_group_anywhere, start_validator
from govfacts.runners import make_task_runner
from transforms.settings import Settings, load_settings
from govfacts.version import pipeline_version
from transforms.extract import identify_and_extract
from transforms.schema import FACT_SCHEMA, StagedFile, with_fact_ids
from transforms.stage import StageResult, list_inbox, stage_inbox
from warehouse.catalog import exists as warehouse_exists
from warehouse.load import current_snapshot, open_for_write, writer_lock
from warehouse.plan import Known, read_known
from warehouse.quality import comparable_facts, comparable_part, comparable_schema
from warehouse.parts import load_parts, part_path, remove_spill, spill_root, write_part
from warehouse.parts import open_spill as open_parts_dir, sweep_spills as sweep_parts_dirs
from warehouse.storage import is_remote, join

__all__ = ["PROGRESS", "RunSummary", "flow_for", "ingest"]


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


@contextmanager
def _busy() -> Iterator[None]:
    """Count this span as task work (a task waiting on the worker process doing its work), without a stage of its own."""
    wall = time.perf_counter()
    try:
        yield
    finally:
        with _CLOCK_LOCK:
            _SPANS.setdefault(str(current_flow_run.id), []).append((wall, time.perf_counter()))


def _add_seconds(seconds: dict[str, list[float]]) -> None:
    """Add stage times measured elsewhere (a transform worker process: its own wall and CPU seconds)."""
    key = str(current_flow_run.id)
    with _CLOCK_LOCK:
        c = _CLOCK.setdefault(key, Counter())
        for stage, (wall, cpu) in seconds.items():
            c[f"{stage}.wall"] += wall
            c[f"{stage}.cpu"] += cpu


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


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def plan(settings: Settings, version: str) -> Known:
    """What the warehouse holds at this code version (warehouse/plan.py: the same question `govfacts run` asks first)."""
    with _timed("plan"), writer_lock(settings):
        con = open_for_write(settings)
        try:
            return read_known(con, version)
        finally:
            con.close()


# Normalize and extract are pure Python: threads of one process take turns on the interpreter lock,
# so two batches transformed at once in the flow's process finish later than one after the other. Batches
# transformed here (small runs, or when the run has no transform pool) take this lock for their CPU-bound
# part only; the Parquet writes release it. A process or Dask worker runs one task at a time anyway.
_CPU_BOUND = threading.Lock()


def _cpu_bound() -> threading.Lock:
    """This process's lock for CPU-bound task work (a function, so a task pickled for a worker refers to the
    worker's own lock instead of carrying this one, which cannot be pickled)."""
    return _CPU_BOUND


# Transform pools of the flow runs in this process (flow run id -> pool); see flows/batch.py.
_POOLS: dict[str, TransformPool] = {}


def _pool_of(flow_run_id: str) -> TransformPool | None:
    """The transform pool of a flow run of this process, if it has one (none in a worker process)."""
    return _POOLS.get(flow_run_id)


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def transform(batch: list[StagedFile], names: dict[str, list[str]], parts: str, label: str, version: str, run_id: str,
              raw: dict[str, bytes] | None = None) -> dict:
    """Normalize and extract a batch of staged files; write its documents and texts as Parquet parts (flows/batch.py).

    One task per batch for both stages, so the normalized text and its offset maps (~200 KB a
    document) never leave the process that made them: only the batch's facts and counts come back.
    In the run's transform pool when it has one (threads runner, large runs: the batch runs on
    another core while this thread waits), else here. ``raw``: the staged bytes, sent along to a
    remote cluster's workers, which cannot read the flow's staging area. Each stage keeps its own
    timing and fault point.
    """
    job = (batch, names, parts, label, version, run_id, raw)
    pool = _pool_of(str(current_flow_run.id))
    if pool is not None:
        with _busy():
            result = pool.run(*job)
        if result is not None:
            _add_seconds(result.pop("seconds"))
            _fault("normalize")
            _fault("extract")
            return result
    return transform_batch(*job, timed=_timed, checkpoint=_fault, extract=identify_and_extract, cpu_bound=_cpu_bound())


@dataclass(frozen=True)
class GroupParts:
    """Where a validation group meets the run's other groups: the comparable parts of the groups validated before it
    (``earlier``), the run's list of (re)processed documents (``replaced``), and its own label in the run's ``parts``."""

    parts: str
    label: str
    earlier: list[str]
    replaced: str | None = None


@task(cache_policy=NO_CACHE)
def validate(facts: pa.Table | list[pa.Table], settings: Settings | None = None, text_parts: list[str] | None = None,
             group: GroupParts | None = None) -> dict:
    """Run the GX suite on the facts of a group of batches (a GX run costs seconds whatever its size, so groups are large).

    Rules across documents compare with the facts published at the group's places (its regions
    and periods, ``comparable_places``): by the warehouse (``settings``; None while the run creates
    it) and by the run's groups validated before this one (``group``: where they left their
    comparable facts, and where this one leaves its own for the groups after it). ``text_parts``
    (the group's spilled document_text parts) let GX check evidence offsets — read back where GX
    runs rather than held since normalize, so memory stays bounded. GX runs in the run's validator
    process when it has one (threads runner, large runs), else here.
    """
    with _timed("validate"):
        if isinstance(facts, list):
            facts = pa.concat_tables(facts) if facts else FACT_SCHEMA.empty_table()
        if "fact_id" not in facts.column_names:
            facts = with_fact_ids(facts)
        compared, earlier = None, group.earlier if group is not None else []
        if facts.num_rows and (settings is not None or earlier):
            places = comparable_places(facts.column("region").to_pylist(), facts.column("period").to_pylist())
            compared = comparable_facts(settings, places, earlier, group.replaced if group is not None else None)
        remote, pool = _validator_of(str(current_flow_run.id)), _pool_of(str(current_flow_run.id))
        with pool.lend(remote) if pool is not None and remote is not None else nullcontext():  # it transforms between groups
            checked = check_group_anywhere(remote, facts, compared, text_parts)
        if group is not None:
            write_part(group.parts, "comparable", group.label, comparable_part(facts, checked["status"]), comparable_schema())
    _fault("validate")
    return dict(facts=facts, **checked)


def publish_facts(checked: dict, version: str, run_id: str) -> tuple[pa.Table, list[dict]]:
    """Facts with their dq status and provenance columns, and the quarantine records of those that failed."""
    facts = checked["facts"]
    ids = facts.column("fact_id").to_pylist()
    flagged, named = checked["status"], checked["failed"]  # only the facts that failed something are named
    status = [flagged.get(i, "passed") for i in ids]
    failed = [",".join(named.get(i, ())) for i in ids]
    facts = facts.append_column("pipeline_version", pa.array([version] * facts.num_rows, pa.string()))
    facts = facts.append_column("run_id", pa.array([run_id] * facts.num_rows, pa.string()))
    facts = facts.append_column("dq_status", pa.array(status, pa.string()))
    facts = facts.append_column("dq_failed", pa.array(failed, pa.string()))
    # only the quarantined rows become Python objects (a group holds ≈40,000 facts, a few of them quarantined)
    errors = facts.filter(pa.array([s == "error" for s in status], pa.bool_()))
    rejects = [dict(item="fact", source_path=None, sha256=r["doc_id"], fact_id=r["fact_id"], stage="validate",
                    reason=r["dq_failed"], detail="; ".join(checked.get("messages", {}).get(r["fact_id"]) or [])
                    or f"{r['indicator']} {r['measure']} {r['value']:g}{r['unit']} ({r['period']}, {r['kind']}) failed: {r['dq_failed']}",
                    evidence=r["evidence"], pipeline_version=version, run_id=run_id)
               for r in errors.select(["doc_id", "fact_id", "indicator", "measure", "value", "unit", "period", "kind", "evidence", "dq_failed"]).to_pylist()]
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


PROGRESS: Callable[[str, int, int], None] | None = None  # set by `govfacts run`: (what the flow does, done, of how many)


@flow(name="govfacts-ingest", log_prints=True, task_runner=make_task_runner(load_settings()))
def ingest(inbox: str, warehouse: str, catalog: str = "sqlite", postgres_dsn: str = "", batch_size: int | None = None) -> dict:
    """Stage, normalize, extract, validate and load the reports in ``inbox`` (only what is new at this code version)."""
    t0 = time.perf_counter()
    use_system_allocator()  # memory a finished batch or group freed goes back to the system (flows/child.py)
    settings = load_settings(inbox=inbox, warehouse=warehouse, catalog=catalog, postgres_dsn=postgres_dsn or None, batch_size=batch_size)
    runner = get_run_context().task_runner
    book = RunBook(str(current_flow_run.id), pipeline_version(), str(settings.warehouse), type(runner).__name__, say=_say)
    _say("reading the inbox")
    helpers, parts, creating = RunProcesses(book.summary.flow_run_id), None, None
    try:
        staged, known, creating = _stage_and_plan(settings, book.version, runner, helpers)  # stage ∥ plan (∥ helpers warming up)
        todo = book.plan(staged, known)                                           # only what this code version has not loaded
        _say("documents normalized and extracted", 0, len(todo))
        shared = shared_workers(runner)
        parts = str(open_spill(settings, book.run_id, shared))
        if book.rejected:  # files staging could not take (unreadable, too large, ...)
            write_part(parts, "quarantine", "stage", pa.Table.from_pylist(book.rejected))
        size = batch_size_for(settings, len(todo))
        batches = _chunks(todo, size)
        window = StreamingWindow(book, settings, parts, chain_futures=not _unwraps_opaque(runner),
                                 groups=group_sizes(len(batches), -(-settings.validate_batch_size // size)),
                                 published=creating is None,  # a new warehouse publishes nothing to compare with
                                 replaced=_replaced_part(parts, todo) if creating is None else None)
        book.summary.batches = len(batches)
        for i, batch in enumerate(batches):                                   # transform (→ validate → spill, as groups fill)
            window.transform(f"b{i:06d}", batch, raw={f.sha256: Path(f.staged_path).read_bytes() for f in batch} if shared else None)
        window.take_transformed()
        helpers.transforms_done()
        if todo:
            _say("validating the facts (Great Expectations)")
        window.validate_rest()                                                # validate → spill the last group
        helpers.validation_done()  # the validator's memory is not held beside the load's
        _say("loading the warehouse")
        if creating is not None:
            creating.result()  # the warehouse a first run transformed beside is created (or its error raised) before the load
        books = book.close()
        snapshot = load(settings, books.run, parts, books.processed, books.dq_rows, books.renamed, books.copies,
                        books.dropped) if books.anything else None            # load: one snapshot, or none
    finally:
        helpers.close()
        if creating is not None:
            creating.wait()  # never leave the warehouse half created behind a failed run's back
        if parts is not None:
            remove_spill(parts)
    return _summarize(book, settings, snapshot, t0)


# -- the flow's helpers -------------------------------------------------------------------------------


def _say(what: str, done: int = 0, total: int = 0) -> None:
    if PROGRESS is not None:
        PROGRESS(what, done, total)


def _stage_and_plan(settings: Settings, version: str, runner: TaskRunner,
                    helpers: "RunProcesses") -> tuple[StageResult, Known, PrefectFuture | None]:
    """Stage the inbox and read what the warehouse holds at this code version.

    On threads, ``plan`` opens the warehouse (DuckDB, lock released) while staging copies the inbox,
    and once the plan says that enough of the inbox is new, the run's helper processes start and warm
    up while staging waits on its disk writes. Into a warehouse not created yet everything is new: the
    helpers start at once, and the transforms once staging is done, while the plan creates the
    warehouse (≈1.5 s) — its future comes back third, for the load to wait on. (Were another run to
    create and load the warehouse meanwhile, this one would re-process what that one loaded: the load
    replaces a re-processed document's rows, so nothing is doubled.) A process or Dask worker would
    first pay its start-up (seconds) for a query of milliseconds, so there both run in the flow, one
    after the other.
    """
    if isinstance(runner, ThreadPoolTaskRunner):
        first = not warehouse_exists(settings)
        if first:
            helpers.start(runner, len(list_inbox(settings.inbox)), settings.max_workers)
        planned = plan.submit(settings, version)
        staging = stage.submit(str(settings.inbox), str(settings.staging), settings.max_file_bytes)
        if first:
            return staging.result(), Known(set(), {}, set()), planned
        known = planned.result()
        helpers.start(runner, _new_at_most(settings, known), settings.max_workers)
        return staging.result(), known, None
    known = plan(settings, version)
    return stage(str(settings.inbox), str(settings.staging), settings.max_file_bytes), known, None


def _replaced_part(parts: str, todo: list[StagedFile]) -> str | None:
    """Write the list of documents this run (re)processes where its validation groups read it; its path (None: none)."""
    if not todo:
        return None
    documents = pa.table({"doc_id": pa.array([f.sha256 for f in todo], pa.string())})
    write_part(parts, "run_documents", "run", documents, documents.schema)
    return part_path(parts, "run_documents", "run")


def _new_at_most(settings: Settings, known: Known) -> int:
    """Files of the inbox the warehouse has not loaded at most (before staging has hashed them: an upper bound
    for new documents, and 0 for an unchanged inbox, whose re-run must not start helper processes)."""
    return max(0, len(list_inbox(settings.inbox)) - len(known.known))


def _unwraps_opaque(runner: TaskRunner) -> bool:
    """Whether the runner hands an ``opaque`` argument's content to the task (Prefect's own runners do; prefect-dask
    hands the wrapper itself, so there a validated group goes to its spill as the future it is)."""
    return isinstance(runner, (ThreadPoolTaskRunner, ProcessPoolTaskRunner))


def _summarize(book: RunBook, settings: Settings, snapshot: int | None, t0: float) -> dict:
    """The run summary: snapshot, artifacts, where the time went."""
    summary = book.summary
    summary.changed = snapshot is not None
    summary.snapshot_id = snapshot if snapshot is not None else current(settings)
    _artifact(summary, book.results)
    summary.seconds = round(time.perf_counter() - t0, 3)
    summary.stage_seconds = _stage_seconds(summary.flow_run_id)
    summary.busy_seconds = _busy_seconds(summary.flow_run_id)
    get_run_logger().info("run %s: %s documents, %s facts, snapshot %s", summary.run_id, summary.documents, summary.facts_extracted,
                          summary.snapshot_id)
    return asdict(summary)


ARROW_SOFT_LIMIT = 64 * 2 ** 20  # bytes of Arrow memory a process may gain before finished batches are collected
_ARROW_KEPT = [0]  # Arrow memory in this process after the last collection: what the run still holds


def _release_finished_batches(limit: int = ARROW_SOFT_LIMIT) -> bool:
    """Free the data of finished batches now rather than at Python's next full collection.

    A Prefect future and its wrapped ``concurrent.futures.Future`` refer to each other (a done
    callback), so a finished batch's result — its facts, and megabytes of normalized text per batch
    when it is transformed in this process — is only freed by the cyclic garbage collector, whose
    full passes are rare. Without this, memory grows with the corpus between passes. A full pass
    costs 0.1-0.3 s with the GIL held, so it runs only once the Arrow memory of the process has
    grown by ``limit`` since the last pass: measured from what the last pass kept (a validation
    group's facts, held on purpose, would otherwise set off a pass at every batch — seconds of the
    flow's CPU at 10,000 reports).
    """
    now = pa.total_allocated_bytes()
    _ARROW_KEPT[0] = min(_ARROW_KEPT[0], now)  # what was kept has been let go since (a group spilled)
    if now <= _ARROW_KEPT[0] + limit:
        return False
    gc.collect()
    give_back_memory()
    _ARROW_KEPT[0] = pa.total_allocated_bytes()
    return True


def _in_flight(settings: Settings) -> int:
    """Batches allowed in flight at once: enough to keep every worker busy, few enough to bound memory."""
    return 2 * max(1, settings.max_workers) + 1


def batch_size_for(settings: Settings, todo: int) -> int:
    """Documents per transform task: the setting when given, else about eight batches per worker, 25 to 100 documents.

    Every task costs Prefect ≈30 ms in the flow and as much in its server (states, events), so a
    large run wants large batches (10,000 reports: 100 tasks, not 200); a small one wants enough
    batches to keep every worker busy to the end (1,000 reports on 2 workers: 16 batches of 63).
    """
    if settings.batch_size:
        return settings.batch_size
    return min(100, max(25, -(-todo // (8 * max(1, settings.max_workers)))))


def group_sizes(batches: int, per_group: int) -> list[int]:
    """Batches per validation group, in order: full groups, then what is left halved and halved again.

    The group validated after the last batch is transformed is the run's tail: one core idles while
    GX checks it, then the load waits for it. Full groups keep GX's fixed cost (≈0.8 s a call) rare;
    the smaller last ones make the tail a few batches' validation, not a full group's (10,000
    reports: 40 batches → 5). The sizes depend only on the count of batches, so a run's groups —
    and the rules that compare the facts of one group — are the same every time.
    """
    smallest = max(2, per_group // 10)
    sizes, left = [], batches
    while left >= 2 * per_group:
        sizes.append(per_group)
        left -= per_group
    while left >= 2 * smallest:
        half = left // 2
        sizes.append(left - half)
        left = half
    return sizes + ([left] if left else [])


class StreamingWindow:
    """What is in flight between transform and load, so memory follows the window, not the corpus.

    * transforms: at most ``_in_flight`` batches submitted and not yet taken; they are taken oldest
      first, so the books see them in submission order whichever worker finished first;
    * the group: the facts of taken batches, validated together once they hold ``validate_batch_size``
      documents (a GX run costs seconds whatever its size) — the last groups fewer (``group_sizes``) —
      with their document_text parts (evidence offsets are checked against them). A group is submitted once
      the group before it is validated: it is compared with the facts every earlier group left (``GroupParts``),
      so two reports of one run meet whichever groups they fall in (the validator validates one group at a
      time anyway, and the group before was submitted a group's worth of transforms earlier);
    * validated groups are spilled as Parquet parts; at most one group is being validated or spilled
      while the next gathers. A group's spill is submitted once its validation is done — a task waiting
      for another would hold one of the runner's few threads idle — except on Dask (``chain_futures``),
      where it is submitted at once with the validation's future, so the facts stay on the cluster.
    """

    def __init__(self, book: RunBook, settings: Settings, parts: str, chain_futures: bool, groups: list[int],
                 published: bool = True, replaced: str | None = None) -> None:
        self.book, self.settings, self.parts, self.chain = book, settings, parts, chain_futures
        self.published = published  # whether groups are compared with the facts the warehouse publishes
        self.replaced = replaced  # the part listing the documents this run (re)processes (``_replaced_part``)
        self.validated: PrefectFuture | None = None  # the validation of the last group submitted
        self.sizes = groups  # batches per validation group, in order (``group_sizes``)
        self.transforms: deque = deque()  # (label, size, future) of batches in flight, oldest first
        self.group: list[pa.Table] = []
        self.group_texts: list[str] = []
        self.checks: deque = deque()  # (label, future, done event) of groups being validated
        self.spills: deque = deque()  # futures of groups being spilled
        self.groups = 0

    def transform(self, label: str, batch: list[StagedFile], raw: dict[str, bytes] | None) -> None:
        """Submit a batch; take the oldest ones while too many are in flight; move validated groups on."""
        book = self.book
        future = transform.submit(batch, book.names_of(batch), self.parts, label, book.version, book.run_id, raw)
        self.transforms.append((label, len(batch), future))
        while len(self.transforms) > _in_flight(self.settings):
            self._take(*self.transforms.popleft())
        self._advance(limit=1)

    def take_transformed(self) -> None:
        """Take every batch still in flight."""
        while self.transforms:
            self._take(*self.transforms.popleft())

    def validate_rest(self) -> None:
        """Validate the last, partial group; wait until every group is spilled and counted."""
        if self.group:
            self._validate_group()
        self._advance(limit=0)

    def _take(self, label: str, size: int, future) -> None:
        result = future.result()
        _release_finished_batches()
        self.group.append(self.book.take_batch(result, size))
        self.group_texts.append(str(part_path(self.parts, "document_text", label)))
        if self.groups < len(self.sizes) and len(self.group) >= self.sizes[self.groups]:
            self._validate_group()

    def _validate_group(self) -> None:
        label, book = f"v{self.groups:06d}", self.book
        if self.validated is not None:
            self.validated.wait()  # its comparable facts are written (its result, or failure, is read where it is spilled)
        group = GroupParts(self.parts, label, [part_path(self.parts, "comparable", f"v{g:06d}") for g in range(self.groups)],
                           self.replaced)
        checked = self.validated = validate.submit(self.group, self.settings if self.published else None, self.group_texts, group)
        if self.chain:
            self.spills.append(spill_facts.submit(checked, self.parts, label, book.version, book.run_id))
        else:
            done = threading.Event()
            checked.add_done_callback(lambda _: done.set())
            self.checks.append((label, checked, done))
        self.group, self.group_texts, self.groups = [], [], self.groups + 1

    def _advance(self, limit: int) -> None:
        """Spill validated groups and count spilled ones; wait for the oldest while more than ``limit`` are out."""
        book = self.book
        while self.checks and (self.checks[0][2].is_set() or len(self.checks) + len(self.spills) > limit):
            label, checked, _ = self.checks.popleft()
            # opaque: Prefect would otherwise walk every fact's status, failures and messages (≈100,000 items a
            # group) looking for futures inside the validated group before spilling it
            self.spills.append(spill_facts.submit(opaque(checked.result()), self.parts, label, book.version, book.run_id))
        while self.spills and len(self.checks) + len(self.spills) > limit:
            book.take_group(self.spills.popleft().result())


# Validator processes of the flow runs in this process (flow run id -> process); see flows/validator.py.
_VALIDATORS: dict[str, ValidatorProcess] = {}


def _validator_of(flow_run_id: str) -> ValidatorProcess | None:
    """The validator process of a flow run of this process, if it has one (none in a worker process)."""
    return _VALIDATORS.get(flow_run_id)


def _validator_for(runner: TaskRunner, todo: int) -> ValidatorProcess | None:
    """A validator process for this run: on the threads runner, for runs large enough to gain from it.

    Threads share one interpreter lock, so GX work done in the flow's process is added to the
    transforms'; in a process of its own it runs on another core, and its GX import overlaps the
    first batches. Process and Dask workers validate where they run, as before.
    """
    if not isinstance(runner, ThreadPoolTaskRunner) or todo < PROCESS_MIN_DOCUMENTS:
        return None
    return start_validator()


def _pool_for(runner: TaskRunner, todo: int, workers: int, validator: ValidatorProcess | None) -> TransformPool | None:
    """A transform pool for this run: on the threads runner, for runs large enough to gain from it (flows/batch.py);
    the validator process, when there is one, is one of its ``workers``."""
    if not isinstance(runner, ThreadPoolTaskRunner) or todo < POOL_MIN_DOCUMENTS:
        return None
    return start_pool(workers, validator)


@dataclass
class RunProcesses:
    """The helper processes of a run on the threads runner — transform workers and a validator — registered where
    this process's tasks find them, and ended as soon as the run no longer needs them."""

    flow_run_id: str
    pool: TransformPool | None = None
    validator: ValidatorProcess | None = None

    def start(self, runner: TaskRunner, todo: int, workers: int) -> None:
        """Start the processes a run of ``todo`` new documents gains from (none for a small run or another runner)."""
        self.validator = _validator_for(runner, todo)
        self.pool = _pool_for(runner, todo, workers, self.validator)
        if self.pool is not None:
            _POOLS[self.flow_run_id] = self.pool
        if self.validator is not None:
            _VALIDATORS[self.flow_run_id] = self.validator

    def transforms_done(self) -> None:
        if _POOLS.pop(self.flow_run_id, None) is not None:
            self.pool.close()

    def validation_done(self) -> None:
        if _VALIDATORS.pop(self.flow_run_id, None) is not None:
            self.validator.close()

    def close(self) -> None:
        self.transforms_done()
        self.validation_done()


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
