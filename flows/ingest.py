"""The govfacts DAG: stage -> normalize -> extract -> validate -> load.

The flow body only calls tasks in order; each task wraps one plain function
and adds retries and logging. Work is batched so Prefect's per-task overhead
stays small next to the work.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.context import get_run_context

from expectations.facts_suite import validate_facts
from govfacts.settings import Settings, load_settings
from govfacts.version import pipeline_version
from transforms.documents import NORMALIZED_SCHEMA, normalized_row, row_normalized
from transforms.errors import InputRejected
from transforms.extract import extract_document
from transforms.normalize import normalize_report
from transforms.schema import FACT_SCHEMA, StagedFile, facts_to_table
from transforms.stage import StageResult, stage_inbox
from warehouse.load import LoadBatch, known_documents, load_batch, open_for_write, current_snapshot, writer_lock


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


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), max(1, size))]


@task(retries=2, retry_delay_seconds=1)
def stage(inbox: str, staging: str, max_bytes: int = 64 * 1024 * 1024) -> StageResult:
    """Copy the inbox content-addressed into staging."""
    result = stage_inbox(Path(inbox), Path(staging), max_bytes)
    _fault("stage")
    return result


@task(retries=2, retry_delay_seconds=1)
def plan(settings: Settings, version: str) -> set[str]:
    """Content hashes this code version has already loaded (they are skipped)."""
    with writer_lock(settings):
        con = open_for_write(settings)
        try:
            return known_documents(con, version)
        finally:
            con.close()


@task(retries=2, retry_delay_seconds=1)
def normalize(batch: list[StagedFile]) -> tuple[pa.Table, list[dict]]:
    """Normalize a batch of staged files; undecodable ones become quarantine records."""
    rows, rejected = [], []
    for f in batch:
        try:
            norm = normalize_report(Path(f.staged_path).read_bytes(), f.source_path)
        except InputRejected as exc:
            rejected.append(dict(item="file", source_path=f.source_path, sha256=f.sha256, fact_id=None,
                                 stage="normalize", reason=exc.reason, detail=exc.message, evidence=None))
            continue
        rows.append(normalized_row(norm, f.sha256, f.source_path, f.staged_path, f.n_bytes))
    _fault("normalize")
    return pa.Table.from_pylist(rows, schema=NORMALIZED_SCHEMA), rejected


def fact_id(row: dict) -> str:
    """Stable id of a fact within the warehouse."""
    key = "|".join(str(row[k]) for k in ("doc_id", "indicator", "measure", "period", "kind", "start", "end", "value"))
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@task(retries=2, retry_delay_seconds=1)
def extract(normalized: pa.Table) -> pa.Table:
    """Extract the facts of a batch of normalized documents."""
    facts = []
    for row in normalized.to_pylist():
        facts.extend(extract_document(row_normalized(row), row["doc_id"]))
    _fault("extract")
    return facts_to_table(facts)


@task
def validate(facts: pa.Table) -> dict:
    """Run the GX suite on the run's facts."""
    ids = [fact_id(r) for r in facts.select(["doc_id", "indicator", "measure", "period", "kind", "start", "end", "value"]).to_pylist()]
    facts = facts.append_column("fact_id", pa.array(ids, pa.string()))
    outcome = validate_facts(facts)
    _fault("validate")
    return dict(facts=facts, status=outcome.status, failed=outcome.failed, results=outcome.results)


def _documents_table(normalized: pa.Table, facts: pa.Table, names: dict[str, list[str]], version: str, run_id: str) -> pa.Table:
    by_doc: dict[str, list[dict]] = {}
    for r in facts.select(["doc_id", "region", "region_level", "report_year"]).to_pylist():
        by_doc.setdefault(r["doc_id"], []).append(r)
    rows = []
    for r in normalized.select(["doc_id", "source_path", "staged_path", "n_bytes", "report"]).to_pylist():
        report = json.loads(r["report"])
        mine = by_doc.get(r["doc_id"], [])
        common = Counter((f["region"], f["region_level"], f["report_year"]) for f in mine).most_common(1)
        region, level, year = common[0][0] if common else (None, None, None)
        rows.append(dict(doc_id=r["doc_id"], source_path=r["source_path"], source_names=json.dumps(names.get(r["doc_id"], []), ensure_ascii=False),
                         n_bytes=r["n_bytes"], staged_path=r["staged_path"], encoding=report.get("encoding"),
                         confidence=report.get("confidence"), region=region, region_level=level, report_year=year,
                         n_facts=len(mine), normalization_report=r["report"], pipeline_version=version, run_id=run_id))
    return pa.Table.from_pylist(rows)


@task(retries=1, retry_delay_seconds=2)
def load(settings: Settings, batch: LoadBatch) -> int | None:
    """Write the run as one snapshot (nothing when nothing changed)."""
    return load_batch(settings, batch)


@task
def current(settings: Settings) -> int:
    """The warehouse's latest snapshot id."""
    con = open_for_write(settings)
    try:
        return current_snapshot(con)
    finally:
        con.close()


def _artifact(summary: RunSummary, results: list[dict]) -> None:
    lines = [f"# govfacts run {summary.run_id}", "",
             f"files in {summary.files_in} · documents {summary.documents} · quarantined files {summary.files_quarantined} · "
             f"facts {summary.facts_extracted} (published {summary.facts_published}, quarantined {summary.facts_quarantined}) · "
             f"snapshot {summary.snapshot_id}", "",
             "| expectation | scope | severity | checked | failed | ok |", "|---|---|---|---|---|---|"]
    for r in results:
        if r["element_count"] or not r["success"]:
            lines.append(f"| {r['expectation']} | {r['scope']} | {r['severity']} | {r['element_count']} | {r['unexpected_count']} | {'✅' if r['success'] else '❌'} |")
    create_markdown_artifact(markdown="\n".join(lines), key="govfacts-validation", description="govfacts validation summary")


@flow(name="govfacts-ingest", log_prints=True)
def ingest(inbox: str, warehouse: str, catalog: str = "sqlite", postgres_dsn: str = "", batch_size: int = 25) -> dict:
    """Stage, normalize, extract, validate and load the reports in ``inbox``."""
    settings = load_settings(inbox=inbox, warehouse=warehouse, catalog=catalog, postgres_dsn=postgres_dsn or None, batch_size=batch_size)
    version = pipeline_version()
    ctx = get_run_context()
    summary = RunSummary(run_id=uuid.uuid4().hex[:12], flow_run_id=str(ctx.flow_run.id), code_version=version, warehouse=str(settings.warehouse))
    started = datetime.now(timezone.utc).replace(tzinfo=None)
    staged = stage(str(settings.inbox), str(settings.staging), settings.max_file_bytes)
    known = plan(settings, version)
    todo = [f for f in staged.staged if f.sha256 not in known]
    summary.files_in, summary.staged = staged.files_in, len(staged.staged)
    summary.skipped = sum(len(staged.names[f.sha256]) for f in staged.staged if f.sha256 in known)
    normalized = [normalize.submit(b) for b in _chunks(todo, settings.batch_size)]
    extracted = [(n, extract.submit(n.result()[0])) for n in normalized]
    norm_tables, fact_tables, rejected = [], [], list(staged.rejected)
    for n, e in extracted:
        table, bad = n.result()
        norm_tables.append(table)
        rejected.extend(bad)
        fact_tables.append(e.result())
    norm_all = pa.concat_tables(norm_tables) if norm_tables else NORMALIZED_SCHEMA.empty_table()
    facts = pa.concat_tables(fact_tables) if fact_tables else FACT_SCHEMA.empty_table()
    checked = validate(facts)
    facts = checked["facts"]
    status = [checked["status"][i] for i in facts.column("fact_id").to_pylist()]
    failed = [",".join(checked["failed"][i]) for i in facts.column("fact_id").to_pylist()]
    facts = facts.append_column("pipeline_version", pa.array([version] * facts.num_rows, pa.string()))
    facts = facts.append_column("run_id", pa.array([summary.run_id] * facts.num_rows, pa.string()))
    facts = facts.append_column("dq_status", pa.array(status, pa.string()))
    facts = facts.append_column("dq_failed", pa.array(failed, pa.string()))
    fact_rejects = [dict(item="fact", source_path=None, sha256=r["doc_id"], fact_id=r["fact_id"], stage="validate",
                         reason=r["dq_failed"], detail=f"{r['indicator']} {r['measure']} {r['value']:g}{r['unit']} ({r['period']}, {r['kind']}) failed: {r['dq_failed']}",
                         evidence=r["evidence"])
                    for r in facts.select(["doc_id", "fact_id", "indicator", "measure", "value", "unit", "period", "kind", "evidence", "dq_status", "dq_failed"]).to_pylist()
                    if r["dq_status"] == "error"]
    for r in rejected:
        r.update(pipeline_version=version, run_id=summary.run_id)
    for r in fact_rejects:
        r.update(pipeline_version=version, run_id=summary.run_id)
    summary.documents = norm_all.num_rows
    summary.files_quarantined = len(rejected)
    quarantined_shas = {r["sha256"] for r in rejected}
    summary.duplicates = sum(len(staged.names[f.sha256]) - 1 for f in todo if f.sha256 not in quarantined_shas)
    summary.files_quarantined += sum(len(staged.names[s]) - 1 for s in quarantined_shas if s in staged.names)
    summary.facts_extracted = facts.num_rows
    summary.facts_quarantined = status.count("error")
    summary.facts_warned = status.count("warning")
    summary.facts_published = summary.facts_extracted - summary.facts_quarantined
    summary.expectations_passed = sum(r["success"] for r in checked["results"])
    summary.expectations_failed = sum(not r["success"] for r in checked["results"])
    summary.quarantined = [{k: r[k] for k in ("source_path", "reason", "detail")} for r in rejected]
    run = dict(run_id=summary.run_id, flow_run_id=summary.flow_run_id, started_at=started,
               finished_at=datetime.now(timezone.utc).replace(tzinfo=None), code_version=version,
               inputs_manifest_hash=staged.manifest_hash, files_in=summary.files_in, documents=summary.documents,
               files_quarantined=summary.files_quarantined, files_skipped=summary.skipped,
               facts_extracted=summary.facts_extracted, facts_published=summary.facts_published,
               facts_quarantined=summary.facts_quarantined, expectations_passed=summary.expectations_passed,
               expectations_failed=summary.expectations_failed)
    batch = LoadBatch(run=run, documents=_documents_table(norm_all, facts, staged.names, version, summary.run_id),
                      document_text=norm_all.select(["doc_id", "text", "raw_text"]), facts=facts,
                      quarantine=pa.Table.from_pylist(rejected + fact_rejects) if rejected or fact_rejects else pa.table({"item": pa.array([], pa.string())}),
                      dq_results=pa.Table.from_pylist([dict(r, run_id=summary.run_id, snapshot_id=0) for r in checked["results"]]) if todo else pa.table({"run_id": pa.array([], pa.string())}))
    snap = load(settings, batch)
    summary.changed = snap is not None
    summary.snapshot_id = snap if snap is not None else current(settings)
    _artifact(summary, checked["results"])
    get_run_logger().info("run %s: %s documents, %s facts, snapshot %s", summary.run_id, summary.documents, summary.facts_extracted, summary.snapshot_id)
    return asdict(summary)
