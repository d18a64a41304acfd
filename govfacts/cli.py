"""The ``govfacts`` command line: a thin layer over the functions the flow uses."""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from govfacts.prefect_env import configure_prefect
from govfacts.safe_text import text as safe_text
from govfacts.sql_output import OutputFormat
from transforms.settings import Catalog, SettingsError, TaskRunner, load_settings

_IMPORTED = time.monotonic()
app = typer.Typer(add_completion=False, no_args_is_help=True, help="Chinese government work reports -> a validated, versioned warehouse of economic facts.")
out = Console()
err = Console(stderr=True)


def _flags_without_type() -> None:
    """Help lists a flag (`--help`, `--read-write`) without typer's `<bool>`: a flag takes no value."""
    from typer.core import TyperOption  # noqa: PLC0415

    shown = TyperOption.display_type_rich
    TyperOption.display_type_rich = lambda self, ctx: None if self.is_flag else shown(self, ctx)


_flags_without_type()


def _a_directory(value: Optional[Path]) -> Optional[Path]:
    """A warehouse path that is a file is refused at once (a missing directory is created by the first run)."""
    if value is not None and value.exists() and not value.is_dir():
        raise typer.BadParameter(f"{value} is a file, not a directory; give the warehouse directory (it is created if missing)")
    return value


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version  # noqa: PLC0415

        from govfacts.version import pipeline_version  # noqa: PLC0415

        out.print(f"govfacts {version('govfacts')} (pipeline {pipeline_version()})")
        raise typer.Exit(0)


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit")) -> None:
    """Chinese government work reports -> a validated, versioned warehouse of economic facts."""


WAREHOUSE_OPT = typer.Option(None, "--warehouse", callback=_a_directory,
                             help="Warehouse directory (default: GOVFACTS_WAREHOUSE, govfacts.toml, or the project's data/warehouse)")
TASK_RUNNER_OPT = typer.Option(None, "--task-runner",
                               help="threads (default), processes, or dask")
DASK_ADDRESS_OPT = typer.Option(None, "--dask-address", help="Dask scheduler address (tcp://host:8786) for --task-runner dask; "
                                "without it, a local cluster of --max-workers processes")
MAX_WORKERS_OPT = typer.Option(None, "--max-workers", help="Worker threads or processes (default 2)")


def _settings(**overrides):
    """The settings for this command; a bad value (flag, environment or govfacts.toml) is refused before any work."""
    try:
        return load_settings(**overrides)
    except SettingsError as e:
        _fail(f"{e}", 2)


def _fail(message: str, code: int = 1) -> None:
    """One error, printed as text (a file name is never markup or a terminal control sequence), then exit."""
    err.print(Text.assemble(("error:", "bold red"), " ", safe_text(message, keep_newlines=True)))
    raise typer.Exit(code)


@app.command()
def run(
    inbox: Optional[Path] = typer.Option(None, help="Directory of reports (default: the bundled samples in seeds/reports)"),
    warehouse: Optional[Path] = WAREHOUSE_OPT,
    catalog: Optional[Catalog] = typer.Option(None,
                                          help="DuckLake catalog: sqlite (default), duckdb or postgres"),
    batch_size: Optional[int] = typer.Option(None, min=1, help="Documents per task"),
    task_runner: Optional[TaskRunner] = TASK_RUNNER_OPT,
    dask_address: Optional[str] = DASK_ADDRESS_OPT,
    max_workers: Optional[int] = MAX_WORKERS_OPT,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Prefect's and Great Expectations' own INFO logs (off by default)"),
) -> None:
    """Stage, normalize, extract, validate and load the reports of the inbox.

    An inbox with nothing new for the warehouse (same contents, same names, same pipeline version) is
    answered without starting Prefect or Great Expectations, and the data-quality report is kept."""
    settings = _settings(inbox=inbox, warehouse=warehouse, catalog=catalog, batch_size=batch_size,
                             task_runner=task_runner, dask_address=dask_address, max_workers=max_workers)
    if not settings.inbox.is_dir():
        _fail(f"inbox {settings.inbox} is not a directory; pass --inbox DIR with the report files")
    if verbose:  # before Prefect reads its settings; the validator and helper processes inherit both
        import os  # noqa: PLC0415

        os.environ["PREFECT_LOGGING_LEVEL"] = "INFO"
        os.environ["GOVFACTS_VERBOSE"] = "1"
    configure_prefect()
    unchanged = _nothing_new(settings)
    if unchanged is not None:
        unchanged["times"] = dict(wall=_command_seconds(), flow=0.0, report=0.0)
        _print_summary(unchanged)
        out.print(safe_text(f"data-quality report (unchanged): {_report_index(settings).as_uri()}"))
        return
    from govfacts.prefect_env import EmbeddedServer  # noqa: PLC0415

    server = EmbeddedServer.launch()  # boots (seconds) while this process imports Prefect, the flow and GX; dies with this run
    from govfacts.failures import explain_failure, prefect_api_problem  # noqa: PLC0415 (after configure_prefect)

    problem = prefect_api_problem()
    if problem:
        if server is not None:
            server.stop()
        _fail(problem)
    from govfacts.prefect_env import console_without_tracebacks  # noqa: PLC0415

    console_without_tracebacks()  # a failure is told once, in one line, below (the stack stays in the run's logs)
    with _run_progress(settings) as progress:
        progress("starting Prefect", 0, 0)
        import flows.ingest  # noqa: PLC0415 (Prefect must be configured first)

        _import_validation(settings)
        _open_warehouse(settings)
        if server is not None:
            import prefect.server.api.server  # noqa: F401, PLC0415 (Prefect's client imports it first thing: so the wait below is only the wait)
        flows.ingest.PROGRESS = progress
        started = server_ready = time.monotonic()
        try:
            if server is not None:
                server.hand_to_prefect()
                server_ready = time.monotonic()
            summary = flows.ingest.flow_for(settings)(inbox=str(settings.inbox), warehouse=str(settings.warehouse), catalog=str(settings.catalog),
                             postgres_dsn=settings.postgres_dsn, batch_size=settings.batch_size)
        except Exception as exc:  # disk full, not writable, server gone: one clear line; anything else is a bug, shown in full
            message = explain_failure(exc, settings)
            if message is None:
                raise
            _fail(message)
        finally:
            flows.ingest.PROGRESS = None
        flow_wall = time.monotonic() - server_ready
        progress("writing the data-quality report", 0, 0)
        report_started = time.monotonic()
        if server is not None:
            server.release()  # shuts down while the report is written
        report_line = _write_run_report(settings, changed=summary["changed"])
        if server is not None:
            server.stop()  # the command's wall time includes it, as the user's clock does
        summary["times"] = dict(wall=_command_seconds(), flow=flow_wall, report=time.monotonic() - report_started,
                                server_wait=server_ready - started)
    _print_summary(summary)
    if report_line is not None:
        out.print(report_line)
    _leave_objects_to_exit()


def _leave_objects_to_exit() -> None:
    """Spare the interpreter's last garbage collections: the process ends now.

    At exit Python collects cycles among everything Prefect, GX, pandas and pyarrow allocated:
    1-2 s after the summary (measured: 2.2 s -> 0.5 s of teardown on a loaded machine). Frozen
    objects are left to the end of the process; exit handlers (Prefect's, the server's stop) still run.
    """
    import gc  # noqa: PLC0415

    gc.freeze()


def _report_index(settings) -> Path:
    return settings.reports_dir / "latest" / "index.html"


def _nothing_new(settings) -> dict | None:
    """The summary of a run that would load and record nothing, decided before Prefect starts; None when the flow must run.

    The flow's own decision (warehouse/plan.py: the inbox staged as the flow stages it, against the
    warehouse's record at this pipeline version): no new content, no new rejected file, no known
    document under a new name. The warehouse is read without the writer lock; staging and the sweep of
    dead runs' parts happen as in every run; no Prefect, no GX. When this
    check cannot answer (no warehouse yet, a migration due, no report to keep, an error), the flow
    runs and says in its own words what is wrong.
    """
    if not _report_index(settings).exists():  # the run writes it
        return None
    import duckdb  # noqa: PLC0415

    from govfacts.version import pipeline_version  # noqa: PLC0415
    from transforms.errors import GovfactsError  # noqa: PLC0415
    from transforms.stage import stage_inbox  # noqa: PLC0415
    from warehouse.plan import known_if_current, work_for  # noqa: PLC0415

    try:
        known = known_if_current(settings, pipeline_version())
        if known is None:
            return None
        staged = stage_inbox(settings.inbox, settings.staging, settings.max_file_bytes)
    except (GovfactsError, OSError, ValueError, ConnectionError, duckdb.Error):
        return None
    work = work_for(staged, known)
    if not work.nothing_new:
        return None
    from warehouse.parts import spill_root, sweep_spills  # noqa: PLC0415

    try:  # what every run does first (flows/ingest.py open_spill): the parts of runs that died on this machine go
        sweep_spills(spill_root(settings, shared=settings.task_runner == "dask" and bool(settings.dask_address)))
    except (OSError, ValueError):
        return None
    return dict(run_id=None, flow_run_id=None, files_in=staged.files_in, staged=len(staged.staged), duplicates=0,
                skipped=work.skipped, documents=0, files_quarantined=0, facts_extracted=0, facts_published=0,
                facts_quarantined=0, facts_warned=0, expectations_passed=0, expectations_failed=0,
                snapshot_id=known.snapshot_id, changed=False, warehouse=str(settings.warehouse), quarantined=[])


def _open_warehouse(settings) -> None:
    """Create the warehouse, or bring its schema up to date, while Prefect's server boots.

    The flow's first task does the same (warehouse/load.py open_for_write, which finds nothing left to
    do after this): on an empty warehouse, creating the catalog and its tables is ≈0.5 s that no
    longer waits for Prefect. A warehouse that cannot be opened is left to the flow, which meets the
    same error in its order (staging first) and explains it.
    """
    import duckdb  # noqa: PLC0415

    from warehouse.load import open_for_write  # noqa: PLC0415

    try:
        open_for_write(settings).close()
    except (OSError, ValueError, ConnectionError, duckdb.Error):
        return


def _import_validation(settings) -> None:
    """Import Great Expectations now, while Prefect's server boots, when this process will validate.

    On the threads runner a run of fewer than PROCESS_MIN_DOCUMENTS validates in this process; the
    import (≈1.5 s) would otherwise come after the transforms, on the run's critical path.
    Process and Dask workers, and the validator process of a large run, import it themselves.
    """
    from flows.validator import PROCESS_MIN_DOCUMENTS  # noqa: PLC0415
    from transforms.settings import TaskRunner as Runner  # noqa: PLC0415
    from transforms.stage import list_inbox  # noqa: PLC0415

    if settings.task_runner == Runner.threads and len(list_inbox(settings.inbox)) < PROCESS_MIN_DOCUMENTS:
        import expectations.facts_suite  # noqa: F401, PLC0415


def _command_seconds() -> float:
    """Wall seconds since this process started (Python's start-up and imports included), as a user timing it sees."""
    try:
        import psutil  # noqa: PLC0415

        return time.time() - psutil.Process().create_time()
    except Exception:  # noqa: BLE001 (no psutil or no /proc: since the CLI module was imported)
        return time.monotonic() - _IMPORTED


@contextmanager
def _run_progress(settings):
    """A progress line that says what the run is doing: documents done of how many, with rate and time left (rich)."""
    from rich.progress import (  # noqa: PLC0415
        BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
    )

    # markup=False: the description holds the inbox path, which is data (a name with "[/b]" is text, not a tag)
    with Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]}", markup=False), TimeElapsedColumn(), TimeRemainingColumn(), console=err,
                  transient=True) as bar:
        task = bar.add_task(safe_text(f"govfacts run {settings.inbox}"), total=None, rate="")
        began = time.monotonic()

        def progress(what: str, done: int, total: int) -> None:
            rate = f"{done / (time.monotonic() - began):.1f} docs/s" if total and done else ""
            bar.update(task, description=safe_text(what), completed=done, total=total or None, rate=rate)

        yield progress


def _write_run_report(settings, changed: bool = True) -> Text | str | None:
    """Refresh the data-quality report after a run and say where it is (the run is loaded whatever happens here).

    An unchanged run (nothing new loaded) keeps the report that is there: it describes the same snapshot."""
    from pathlib import Path as _Path  # noqa: PLC0415

    index = _Path(settings.reports_dir) / "latest" / "index.html"
    if not changed and index.exists():
        return safe_text(f"data-quality report (unchanged): {index.as_uri()}")
    from expectations.report import write_report  # noqa: PLC0415

    try:
        paths = write_report(settings, settings.reports_dir / "latest")
    except Exception as exc:  # noqa: BLE001 (reported, not swallowed: the data is safe and the report can be rebuilt)
        err.print(Text.assemble(("report not written", "yellow"),
                                safe_text(f" ({exc}); rebuild it with `govfacts report --warehouse {settings.warehouse}`")))
        return None
    return safe_text(f"data-quality report: {paths.index.as_uri()}")


def _print_summary(s: dict) -> None:
    """The run's figures; file names and reasons as text (never markup; control characters and newlines spelled out)."""
    quick = s["flow_run_id"] is None  # nothing new, told without a flow run (_nothing_new)
    title = "govfacts run: nothing new (no flow run)" if quick else f"govfacts run {s['run_id']} (flow run {s['flow_run_id']})"
    t = Table(title=safe_text(title), show_header=False)
    t.add_row("files in", str(s["files_in"]))
    t.add_row("documents staged", f"{s['staged']} distinct ({s['duplicates']} duplicate names)")
    t.add_row("already loaded (skipped)", str(s["skipped"]))
    t.add_row("documents loaded", str(s["documents"]))
    t.add_row("files quarantined", str(s["files_quarantined"]))
    t.add_row("facts extracted", str(s["facts_extracted"]))
    t.add_row("facts published / quarantined / warned", f"{s['facts_published']} / {s['facts_quarantined']} / {s['facts_warned']}")
    t.add_row("expectations passed / failed", f"{s['expectations_passed']} / {s['expectations_failed']}")
    t.add_row("snapshot", f"{s['snapshot_id']}" + ("" if s["changed"] else " (unchanged: nothing new to load)"))
    t.add_row("warehouse", safe_text(s["warehouse"]))
    n = s.get("batches", 0)
    batches = f"{n} batch{'' if n == 1 else 'es'}, {s.get('task_runner', '')}"
    if quick:
        t.add_row("time", f"{s['times']['wall']:.1f} s wall (the inbox checked against the warehouse; Prefect not started)")
    elif s.get("times"):
        tm = s["times"]
        startup = max(0.0, tm["wall"] - tm["flow"] - tm["report"])
        waited = f" (waiting for Prefect's server {tm['server_wait']:.1f} s)" if tm.get("server_wait", 0) >= 0.05 else ""
        t.add_row("time", f"{tm['wall']:.1f} s wall: start-up {startup:.1f} s{waited}, flow {tm['flow']:.1f} s, report {tm['report']:.1f} s "
                          f"({batches})")
    elif s.get("seconds"):
        t.add_row("time", f"{s['seconds']:.1f} s ({batches})")
    t.add_row("counts reconcile", "yes" if s["files_in"] == s["documents"] + s["skipped"] + s["duplicates"] + s["files_quarantined"] else "NO")
    out.print(t)
    for q in s["quarantined"]:
        out.print(Text.assemble(("quarantined ", "yellow"), safe_text(f"{q['reason']}: {q['detail']}")))
    for d in s.get("without_facts", []):
        out.print(Text.assemble(("no facts ", "yellow"), safe_text(f"{d['source_path']} ({d['doc_type']}): {d['reason']}")))
    for c in s.get("copies", []):
        out.print(Text.assemble(("same report ", "yellow"), safe_text(f"{c['source_path']}: its text equals that of {c['same_as']} "
                                                                      "(other bytes): recorded as a copy of it, loaded once")))


@app.command()
def extract(path: Path, format: str = typer.Option("jsonl", "--format", help="jsonl (one JSON object per fact)")) -> None:
    """Print the facts of one report (text, HTML, .docx or PDF) as JSON Lines, without touching the warehouse."""
    import hashlib  # noqa: PLC0415

    from transforms.extract import identify_and_extract  # noqa: PLC0415

    if format != "jsonl":
        _fail(f"unknown format {format!r}; use --format jsonl")
    data, norm = _read_report(path)
    ident, facts = identify_and_extract(norm, hashlib.sha256(data).hexdigest())
    for fact in facts:
        sys.stdout.write(json.dumps(fact.contract(), ensure_ascii=False) + "\n")
    if not facts:  # what `govfacts run` records in documents.doc_type / no_facts_reason
        reason = ident.reason or "the report states none of the headline indicators in a form the rules read"
        err.print(Text.assemble(("no facts ", "yellow"), safe_text(f"{path} ({ident.doc_type}): {reason}")))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror}")


def _read_report(path: Path):
    """The raw bytes and the normalized text of one input, read as `govfacts run` reads it (one reader)."""
    from transforms.errors import InputRejected  # noqa: PLC0415
    from transforms.normalize import normalize_report  # noqa: PLC0415
    from transforms.stage import read_input  # noqa: PLC0415

    if path.is_dir():
        _fail(f"{path} is a directory; give one report file (or `govfacts run --inbox {path}` for a folder)")
    data = _read(path)
    try:
        return data, normalize_report(read_input(data, str(path), _settings().max_file_bytes), str(path))
    except InputRejected as exc:
        _fail(exc.message)


@app.command()
def normalize(path: Path, report: bool = typer.Option(False, "--report", help="Print the normalization report as JSON instead of the text")) -> None:
    """Print the normalized (canonical) text of one report (text, HTML, .docx or PDF)."""
    from dataclasses import asdict  # noqa: PLC0415

    _, norm = _read_report(path)
    if report:
        sys.stdout.write(json.dumps(asdict(norm.report), ensure_ascii=False, indent=2) + "\n")
    else:
        sys.stdout.write(norm.text + ("" if norm.text.endswith("\n") else "\n"))


CATALOG_OPT = typer.Option(None, "--catalog", help="DuckLake catalog: sqlite (default), duckdb or postgres (GOVFACTS_CATALOG)")


@contextmanager
def _warehouse_errors():
    """Turn the warehouse's errors into one red line that says what to do next."""
    import duckdb  # noqa: PLC0415

    from warehouse.catalog import READ_WRITE_HINT, ReadOnlyViolation, SnapshotNotFound  # noqa: PLC0415
    from warehouse.querying import QueryCancelled, QueryTimeout  # noqa: PLC0415

    try:
        yield
    except (FileNotFoundError, SnapshotNotFound, ReadOnlyViolation, ValueError, ConnectionError, QueryTimeout) as exc:
        _fail(str(exc))
    except QueryCancelled as exc:
        _fail(str(exc), code=130)
    except duckdb.Error as exc:
        text = str(exc).strip()
        if "read-only" in text or "readonly" in text:
            text += f"\n(the warehouse is open read-only; {READ_WRITE_HINT})"
        elif "disabled by configuration" in text or "configuration has been locked" in text:
            text += f"\n(read-only sessions are sandboxed: no files, no other databases; {READ_WRITE_HINT})"
        _fail(text)


FORMAT_OPT = typer.Option(OutputFormat.table, "--format",
                          help="table: never cuts or rounds a value (a record per row when the columns do not fit the width); "
                          "csv, jsonl, json (one array), markdown (a GitHub table), parquet (binary: with --output or a redirect) "
                          "stream every row")
OUTPUT_OPT = typer.Option(None, "--output", "-o", dir_okay=False,
                          help="Write to this file instead of standard output (it appears only when the command succeeds)")
MAX_WIDTH_OPT = typer.Option(None, "--max-width", min=0, help="Width of --format table (default: the terminal's; 0: no limit)")


def _check_output(fmt: OutputFormat, output: Optional[Path]) -> None:
    """Where the rows go is checked before any work: a folder that exists, and no binary on a terminal."""
    from govfacts.sql_output import BINARY_FORMATS  # noqa: PLC0415

    if output is not None and not output.parent.is_dir():
        _fail(f"--output {output}: the folder {output.parent} does not exist; create it first", 2)
    if fmt in BINARY_FORMATS and output is None and sys.stdout.isatty():
        _fail(f"--format {fmt} is binary and standard output is a terminal: give --output FILE.{fmt} "
              f"(or redirect: > result.{fmt})", 2)


def _query_text(query: str) -> str:
    """The SQL argument, or standard input when it is `-` (`echo 'SELECT 1' | govfacts sql -`)."""
    if query != "-":
        return query
    if sys.stdin.isatty():
        err.print("reading the SQL from standard input; end it with Ctrl-D")
    text = sys.stdin.read()
    if not text.strip():
        _fail("`govfacts sql -` reads the SQL from standard input, and it was empty: pipe a query in "
              "(echo 'SELECT count(*) FROM facts' | govfacts sql -) or give it as the argument", 2)
    return text


@app.command()
def sql(
    query: str = typer.Argument(..., help="The SQL to run, or - to read it from standard input"),
    warehouse: Optional[Path] = WAREHOUSE_OPT,
    at: Optional[int] = typer.Option(None, "--at", help="Query the warehouse as of snapshot N (DuckLake time travel)"),
    at_time: Optional[str] = typer.Option(None, "--at-time", help="Query the warehouse as it was at this time, e.g. '2025-03-01 12:00:00+00'"),
    read_write: bool = typer.Option(False, "--read-write", help="Allow writes: the whole command is one transaction (one snapshot)"),
    fmt: OutputFormat = FORMAT_OPT,
    output: Optional[Path] = OUTPUT_OPT,
    timeout: float = typer.Option(300.0, "--timeout", envvar="GOVFACTS_SQL_TIMEOUT",
                                  help="Cancel the query after this many seconds (0: no limit); Ctrl-C cancels at once"),
    max_rows: int = typer.Option(1000, "--max-rows", help="Rows drawn by --format table (0: no limit); the other formats are never cut"),
    max_width: Optional[int] = MAX_WIDTH_OPT,
    catalog: Optional[Catalog] = CATALOG_OPT,
) -> None:
    """Run SQL against the latest snapshot, or a past one; read-only and sandboxed unless --read-write."""
    from govfacts.sql_output import RowWriter, output_to  # noqa: PLC0415
    from warehouse.snapshots import stream_query  # noqa: PLC0415

    if read_write and (at is not None or at_time is not None):
        _fail("--read-write cannot be combined with --at/--at-time: the past is read-only (use `govfacts rollback N` to restore it)")
    if at is not None and at_time is not None:
        _fail("give either --at N or --at-time TS, not both")
    if timeout < 0 or max_rows < 0:
        _fail("--timeout and --max-rows take a number of seconds / rows, 0 for no limit")
    _check_output(fmt, output)
    query = _query_text(query)
    settings = _settings(warehouse=warehouse, catalog=catalog)
    with _warehouse_errors(), _stdout_closed_quietly(), output_to(output, fmt) as (text_out, binary_out):
        writer = RowWriter(fmt, max_rows=max_rows, out=text_out or sys.stdout, max_width=max_width, binary=binary_out)
        stream_query(settings, query, writer.columns, writer.rows, at=at, at_time=at_time, read_only=not read_write,
                     timeout=timeout or None, arrow=writer.wants_arrow)
        writer.finish()


@contextmanager
def _stdout_closed_quietly():
    """A reader that stops early (`| head`) ends the output, not with a traceback."""
    import os  # noqa: PLC0415

    try:
        yield
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the flush at exit does not fail again
        raise typer.Exit(0) from None


def _print_rows(names: list[str], rows: list[tuple], fmt: str) -> None:
    """Rows held in memory, written like `govfacts sql` writes them (govfacts/sql_output.py)."""
    from govfacts.sql_output import RowWriter  # noqa: PLC0415

    try:
        writer = RowWriter(fmt, max_rows=0)
    except ValueError as exc:
        _fail(str(exc), 2)
    writer.columns(names)
    writer.rows(rows)
    writer.finish()


@app.command()
def snapshots(
    warehouse: Optional[Path] = WAREHOUSE_OPT,
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format",
                                     help="table, csv, jsonl, json, markdown or parquet (all but table keep every field, "
                                     "the full commit message too)"),
    output: Optional[Path] = OUTPUT_OPT,
    max_width: Optional[int] = MAX_WIDTH_OPT,
    catalog: Optional[Catalog] = CATALOG_OPT,
) -> None:
    """List snapshots with time, what made them (run, migrate, rollback, ...) and the run's counts."""
    from govfacts.sql_output import OutputFormat as F, RowWriter, output_to  # noqa: PLC0415
    from warehouse.snapshots import list_snapshots  # noqa: PLC0415

    _check_output(fmt, output)
    settings = _settings(warehouse=warehouse, catalog=catalog)
    with _warehouse_errors():
        snaps = list_snapshots(settings)
    if fmt is F.table:
        names = ["snapshot", "time (UTC)", "what", "docs loaded by this run", "facts extracted by this run", "of them published"]
        rows = [(s["snapshot_id"], s["time"].replace(microsecond=0, tzinfo=None) if isinstance(s["time"], datetime) else s["time"],
                 s["summary"], s["documents"], s["facts"], s["published"]) for s in snaps]
    else:
        names = [k for k in (snaps[0] if snaps else {}) if k != "changes"]
        nested = fmt in (F.json, F.jsonl)  # a flat format gets the commit message's details as JSON text
        rows = [tuple(v if nested or not isinstance(v, dict) else json.dumps(v, ensure_ascii=False) for v in
                      (s[k] for k in names)) for s in snaps]
    note = "counts are of the run that made the snapshot, not totals: `govfacts sql \"SELECT count(*) FROM facts\"` for those"
    with _stdout_closed_quietly(), output_to(output, fmt) as (text_out, binary_out):
        writer = RowWriter(fmt, max_rows=0, out=text_out or sys.stdout, max_width=max_width, binary=binary_out, null="",
                           note=note if fmt is F.table else None)
        writer.columns(names)
        writer.rows(rows)
        writer.finish()


@app.command(name="eval")
def eval_(
    gold: Optional[Path] = typer.Option(None, "--gold", help="Gold answer key directory (default: the samples' key and the real-report key)"),
    docs: Optional[Path] = typer.Option(None, "--docs", help="Reports the gold describes (default: seeds/reports and tests/corpus/real)"),
    show: int = typer.Option(20, "--show", help="How many misses / false positives to list"),
) -> None:
    """Score the extractor against answer keys: P/R/F1 per indicator and per source family, fields, document identity."""
    from transforms.settings import PROJECT_ROOT, SAMPLE_REPORTS  # noqa: PLC0415

    if gold is not None:
        keys = [(gold, docs or SAMPLE_REPORTS)]
    else:
        keys = [(PROJECT_ROOT / "tests" / "gold", SAMPLE_REPORTS), (PROJECT_ROOT / "tests" / "gold" / "real", PROJECT_ROOT / "tests" / "corpus" / "real")]
    ok = True
    for g, d in keys:
        ok = _eval_one(g, d, show) and ok
    if not ok:
        raise typer.Exit(1)


def _eval_one(gold: Path, docs: Path, show: int) -> bool:
    """Print the figures of one answer key; True when its goals are met."""
    from transforms.evaluate import F1_GOAL_INDICATOR, FIELDS, evaluate, goals_for  # noqa: PLC0415

    try:
        res = evaluate(gold, docs)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    goals = goals_for(gold)
    t = Table(title=Text(f"{gold} vs {docs}: {res.documents} reports"))
    t.add_column("indicator", no_wrap=True)
    for name in ("gold", "found", "tp", "P", "R", "F1"):
        t.add_column(name, justify="right", no_wrap=True)
    for code, s in sorted(res.per_indicator.items()):
        style = "" if s.f1 >= F1_GOAL_INDICATOR else "red"
        t.add_row(code, str(s.tp + s.fn), str(s.tp + s.fp), str(s.tp), f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", style=style)
    o = res.overall
    t.add_row("overall", str(o.tp + o.fn), str(o.tp + o.fp), str(o.tp), f"{o.precision:.3f}", f"{o.recall:.3f}", f"{o.f1:.3f}", style="bold")
    out.print(t)
    ft = Table("source family", "gold", "found", "tp", "P", "R", "F1", title="per source family")
    for fam, s in sorted(res.per_family.items()):
        ft.add_row(fam, str(s.tp + s.fn), str(s.tp + s.fp), str(s.tp), f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}")
    out.print(ft)
    gold_n = o.tp + o.fn
    fl = Table("field", "right", "of", "share", title="per field (of the gold facts whose value and unit were found in the document)")
    fl.add_row("value found", str(res.value_found), str(gold_n), f"{res.value_found / gold_n:.3f}" if gold_n else "-")
    for name in FIELDS:
        n = res.field_right.get(name, 0)
        fl.add_row(f"{name} right", str(n), str(res.value_found), f"{n / res.value_found:.3f}" if res.value_found else "-")
    out.print(fl)
    if res.documents_checked:
        it = Table("document", "key: type / region / year", "extractor", "right", title="document identity")
        for dc in res.documents_checked:
            k, g = dc["key"], dc["got"]
            wrong = [w for w, r in dc["right"].items() if not r]
            it.add_row(dc["document"], f"{k['doc_type']} / {k['region']} / {k['report_year']}", f"{g['doc_type']} / {g['region']} / {g['year']}",
                       "yes" if not wrong else "NO: " + ", ".join(wrong), style="" if not wrong else "red")
        out.print(it)
        for what in ("doc_type", "region", "year"):
            right, n = res.identity_right(what)
            out.print(f"documents with the {what} right: {right} of {n}")
    for title, rows in (("misses (in gold, not extracted)", res.misses), ("false positives (extracted, not in gold)", res.false_positives),
                        ("values that differ from their evidence", res.value_mismatches)):
        if not rows:
            continue
        lt = Table("report", "indicator", "measure", "value", "unit", "period", "kind", "evidence", title=f"{title}: {len(rows)}")
        for r in rows[:show]:
            lt.add_row(r["document"][:3], r["indicator"], r["measure"], f"{r['value']:g}", r["unit"], r["period"], r["kind"], Text(r["evidence"]))
        out.print(lt)
    out.print(f"matched facts whose qualifier / value_base / unit_base differ from the gold: {len(res.detail_mismatches)}")
    for r in res.detail_mismatches[:show]:
        out.print(Text(f"  {r['document'][:3]} {r['indicator']} {r['measure']} {r['value']:g}: {'; '.join(r['differs'])}"))
    met = goals.met(res)
    out.print(Text.assemble(f"goals ({goals.describe()}): ", ("met" if met else "NOT met", "bold")))
    return met


@app.command()
def diff(
    a: int = typer.Argument(..., help="Older snapshot id"),
    b: int = typer.Argument(..., help="Newer snapshot id"),
    warehouse: Optional[Path] = WAREHOUSE_OPT,
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table (default), csv, jsonl, json, markdown or parquet"),
    catalog: Optional[Catalog] = CATALOG_OPT,
) -> None:
    """Facts added, removed and changed from snapshot A to snapshot B, with their evidence."""
    from warehouse.diff import diff_snapshots, summarize  # noqa: PLC0415

    settings = _settings(warehouse=warehouse, catalog=catalog)
    with _warehouse_errors():
        changes = diff_snapshots(settings, a, b)
    counts = summarize(changes)
    if fmt is not OutputFormat.table:
        _print_rows(list(changes[0]) if changes else ["change"], [tuple(c.values()) for c in changes], fmt)
        return
    from govfacts.sql_output import shown  # noqa: PLC0415 (numbers exactly, as `govfacts sql` prints them)

    t = Table("change", "region", "indicator", "measure", "period", "kind", "old → new", "evidence")
    for c in changes:
        old = "" if c["old_value"] is None else f"{shown(c['old_value'])}{c['old_unit'] or ''}"
        new = "" if c["new_value"] is None else f"{shown(c['new_value'])}{c['new_unit'] or ''}"
        if c["change"] == "changed" and c["changed_columns"] != ["value"]:
            new += f" ({', '.join(c['changed_columns'])})"
        t.add_row(*[safe_text(v) for v in (c["change"], c["region"] or "", c["indicator"], c["measure"], c["period"], c["kind"],
                                            f"{old} → {new}", c["new_evidence"] or c["old_evidence"] or "")])
    out.print(t)
    out.print(f"snapshot {a} → {b}: {counts['added']} added, {counts['removed']} removed, {counts['changed']} changed")


@app.command()
def rollback(
    snapshot: int = typer.Argument(..., help="Snapshot whose state becomes current again"),
    warehouse: Optional[Path] = WAREHOUSE_OPT,
    catalog: Optional[Catalog] = CATALOG_OPT,
) -> None:
    """Make the state of snapshot N current again, as a new snapshot (history is kept)."""
    from warehouse.rollback import rollback_to  # noqa: PLC0415

    settings = _settings(warehouse=warehouse, catalog=catalog)
    with _warehouse_errors():
        result = rollback_to(settings, snapshot)
    if result.snapshot_id is None:
        out.print(f"the warehouse already holds the state of snapshot {snapshot}; nothing to do (current snapshot {result.previous})")
        return
    for table, (before, after) in result.tables.items():
        out.print(f"{table}: {before} → {after} rows")
    out.print(f"restored the state of snapshot {snapshot} as new snapshot {result.snapshot_id} "
              f"(snapshot {result.previous} is still there: `govfacts rollback {result.previous}` undoes this)")


@app.command()
def export(
    out_dir: Path = typer.Argument(..., help="Directory for the Parquet files (created if missing)"),
    at: Optional[int] = typer.Option(None, "--at", help="Snapshot to export (default: the latest)"),
    fmt: str = typer.Option("parquet", "--format", help="parquet"),
    table: Optional[list[str]] = typer.Option(None, "--table", help="Only this table or view (repeatable)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the earlier export in DIR (whole: no file of it is kept)"),
    warehouse: Optional[Path] = WAREHOUSE_OPT,
    catalog: Optional[Catalog] = CATALOG_OPT,
) -> None:
    """Write a snapshot's tables and views as Parquet, with the snapshot id in each file's metadata."""
    from warehouse.export import export_snapshot  # noqa: PLC0415

    settings = _settings(warehouse=warehouse, catalog=catalog)
    with _warehouse_errors():
        snapshot, files = export_snapshot(settings, out_dir, at=at, fmt=fmt, names=table or None, overwrite=overwrite)
    for f in files:
        out.print(safe_text(f"{f.path}  {f.rows} rows"))
    out.print(safe_text(f"exported snapshot {snapshot} to {out_dir} ({len(files)} files, manifest.json)"))


@app.command()
def compact(
    older_than: Optional[str] = typer.Option(None, "--older-than", help="Expire snapshots older than this, e.g. '30 days' or 'never' "
                                             "(default: GOVFACTS_SNAPSHOT_RETENTION, 90 days)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list the snapshots it would expire and the files it would delete"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Expire without asking (for scripts)"),
    warehouse: Optional[Path] = WAREHOUSE_OPT,
    catalog: Optional[Catalog] = CATALOG_OPT,
) -> None:
    """Maintenance: flush inlined rows, merge small files, expire old snapshots, delete unreferenced files.

    Lists what it would expire and delete first, and asks before expiring snapshots (history lost: no time travel
    or rollback to them); --yes skips the question, --dry-run only lists."""
    from warehouse.maintenance import compact as run_compact, plan_compact  # noqa: PLC0415

    settings = _settings(warehouse=warehouse, catalog=catalog)
    with _warehouse_errors():
        plan = plan_compact(settings, older_than=older_than)
    for sid, when in plan.expire:
        out.print(f"would expire snapshot {sid} ({when} UTC)")
    for what, files in (("unreferenced", plan.scheduled_files), ("orphaned", plan.orphaned_files)):
        for f in files:
            out.print(safe_text(f"would delete {what} file {f}"))
    out.print(f"{len(plan.expire)} snapshot(s) to expire (retention {plan.retention}), "
              f"{len(plan.scheduled_files)} unreferenced and {len(plan.orphaned_files)} orphaned file(s) to delete, "
              "plus the files of the expired snapshots; small files are merged (nothing lost)")
    if dry_run:
        return
    if plan.expire and not yes:
        if not sys.stdin.isatty():
            _fail(f"compact would expire {len(plan.expire)} snapshot(s) (no time travel or rollback to them afterwards); "
                  "re-run with --yes to confirm, or --dry-run to only list")
        if not typer.confirm(f"expire {len(plan.expire)} snapshot(s)?", default=False):
            _fail("nothing changed", code=1)
    with _warehouse_errors():
        r = run_compact(settings, older_than=older_than)
    out.print(f"data files {r.files_before} → {r.files_after} ({r.merged} merged, {r.rewritten} rewritten); "
              f"snapshots {r.snapshots_before} → {r.snapshots_after} ({len(r.expired)} expired, retention {r.retention}); "
              f"{r.deleted_files} unreferenced and {r.orphans_deleted} orphaned files deleted")


@app.command()
def shell(
    warehouse: Optional[Path] = WAREHOUSE_OPT,
    at: Optional[int] = typer.Option(None, "--at", help="Open the warehouse as of snapshot N (read-only)"),
    read_write: bool = typer.Option(False, "--read-write", help="Allow writes: each statement commits as one snapshot"),
    timeout: float = typer.Option(300.0, "--timeout", envvar="GOVFACTS_SQL_TIMEOUT",
                                  help="Cancel a statement after this many seconds (0: no limit); Ctrl-C cancels at once"),
    max_rows: int = typer.Option(1000, "--max-rows", help="Rows shown per result (0: no limit)"),
    catalog: Optional[Catalog] = CATALOG_OPT,
) -> None:
    """Interactive SQL on the warehouse (attached as wh); read-only and sandboxed unless --read-write."""
    from warehouse.shell import run_shell  # noqa: PLC0415

    if read_write and at is not None:
        _fail("--read-write cannot be combined with --at: the past is read-only (use `govfacts rollback N` to restore it)")
    if timeout < 0 or max_rows < 0:
        _fail("--timeout and --max-rows take a number of seconds / rows, 0 for no limit")
    settings = _settings(warehouse=warehouse, catalog=catalog)
    with _warehouse_errors():
        run_shell(settings, read_write=read_write, at=at, timeout=timeout or None, max_rows=max_rows)


@app.command()
def report(
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Directory to write the report to (default: <warehouse>/reports/latest)"),
    warehouse: Optional[Path] = WAREHOUSE_OPT,
) -> None:
    """Write the data-quality report of the latest snapshot: one HTML page that opens from disk."""
    from expectations.report import write_report  # noqa: PLC0415

    settings = _settings(warehouse=warehouse)
    try:
        paths = write_report(settings, out_dir or settings.reports_dir / "latest")
    except FileNotFoundError as exc:
        _fail(str(exc))
    out.print(f"report: {paths.index.as_uri()}")


@app.command()
def serve(
    inbox: Path = typer.Option(..., help="Directory where new reports land"),
    cron: str = typer.Option("0 6 * * *", help="When to run, as a cron expression (default: 06:00 every day)"),
    interval: Optional[float] = typer.Option(None, "--interval", help="Run every this many seconds instead of on the cron"),
    timezone: str = typer.Option("UTC", help="Time zone of the cron expression (IANA name, e.g. Asia/Shanghai)"),
    warehouse: Optional[Path] = WAREHOUSE_OPT,
    catalog: Optional[Catalog] = typer.Option(None, help="DuckLake catalog: sqlite (default), duckdb or postgres"),
    name: str = typer.Option("govfacts-daily", help="Deployment name"),
    port: int = typer.Option(4200, "--port", help="Port of the local Prefect server (API and UI) when PREFECT_API_URL is not set"),
    ui: bool = typer.Option(True, "--ui/--no-ui", help="Serve the Prefect UI from the local server"),
    catch_up: bool = typer.Option(True, "--catch-up/--no-catch-up",
                                  help="Run once at start when the schedule fired since the deployment's last run (or it never ran)"),
    task_runner: Optional[TaskRunner] = TASK_RUNNER_OPT,
    dask_address: Optional[str] = DASK_ADDRESS_OPT,
    max_workers: Optional[int] = MAX_WORKERS_OPT,
) -> None:
    """Serve the flow as a Prefect deployment on a schedule; each run loads only what is new in the inbox.

    Uses the Prefect server at PREFECT_API_URL when set; otherwise starts one on 127.0.0.1:--port (API, scheduler
    and UI) for as long as it serves. Prints each run as it starts and ends. Ctrl-C or SIGTERM stops cleanly.
    """
    settings = _settings(inbox=inbox, warehouse=warehouse, catalog=catalog, task_runner=task_runner,
                             dask_address=dask_address, max_workers=max_workers)
    if not settings.inbox.is_dir():
        _fail(f"inbox {settings.inbox} is not a directory; create it (reports dropped there are picked up on schedule)")
    configure_prefect()
    from flows.deploy import schedule_for  # noqa: PLC0415 (Prefect must be configured first)
    from flows.serve import ServeError, serve as serve_flow  # noqa: PLC0415

    def say(text: str, style: str) -> None:
        out.print(Text(f"{datetime.now():%H:%M:%S} {text}", style=style), soft_wrap=True)

    try:
        schedule_for(None if interval is not None else cron, timezone, interval)
        serve_flow(settings, say, cron=None if interval is not None else cron, timezone_=timezone, interval=interval,
                   name=name, port=port, ui=ui, catch_up_missed=catch_up)
    except (ValueError, ServeError) as exc:
        err.print(Text.assemble(("error: ", "bold red"), str(exc)), soft_wrap=True)  # paths and log lines whole
        raise typer.Exit(1) from None


@app.command()
def runs(
    warehouse: Optional[Path] = WAREHOUSE_OPT,
    limit: int = typer.Option(20, "--limit", help="How many runs, newest first"),
    logs: Optional[str] = typer.Option(None, "--logs", help="Print the log of this flow run (an id from the list) instead"),
    prefect: bool = typer.Option(True, "--prefect/--no-prefect", help="Ask Prefect for every run's state (--no-prefect: the warehouse's runs only)"),
) -> None:
    """Past runs with their state, time, files in, facts, snapshot and data-quality outcome; or one run's log."""
    settings = _settings(warehouse=warehouse)
    configure_prefect()
    from flows.serve import ServeError, flow_run_logs, run_history  # noqa: PLC0415 (Prefect must be configured first)

    try:
        if logs:
            lines = flow_run_logs(logs)
            if not lines:
                err.print(Text(f"no log lines of flow run {logs} on this Prefect server (PREFECT_API_URL, or the one under "
                               "./.prefect): run this where `govfacts serve` ran, or with its PREFECT_API_URL"))
                raise typer.Exit(1)
            for ts, level, message in lines:
                out.print(Text(f"{ts:%Y-%m-%d %H:%M:%S} {level:<8} {message}"), soft_wrap=True)
            return
        history = run_history(settings, limit=limit, with_prefect=prefect)
    except ServeError as exc:
        err.print(Text.assemble(("error: ", "bold red"), str(exc)))
        raise typer.Exit(1) from None
    t = Table("started (UTC)", "flow run", "state", "s", "files in", "loaded / skipped", "facts (published / quarantined)",
              "expectations passed / failed", "snapshot")
    for h in history:
        has = h.get("snapshot") is not None
        t.add_row(Text(str(h.get("started") or "")[:19]), Text(f"{h.get('name') or ''} {str(h['flow_run_id'])[:8]}".strip()),
                  Text(h["state"] + (f": {h['message']}" if h.get("message") else "")),
                  Text("" if h.get("seconds") is None else f"{h['seconds']:.1f}"),
                  Text(str(h["files_in"]) if has else ""),
                  Text(f"{h['documents']} / {h['skipped']}" if has else ("nothing new" if h["state"] == "Completed" else "")),
                  Text(f"{h['facts']} ({h['published']} / {h['facts_quarantined']})" if has else ""),
                  Text(f"{h['expectations_passed']} / {h['expectations_failed']}" if has else ""),
                  Text(str(h["snapshot"]) if has else ""))
    out.print(t)
    if not history:
        out.print(Text(f"no runs yet in {settings.warehouse}: `govfacts run` or `govfacts serve` makes the first"))


@app.command()
def deploy(
    inbox: Path = typer.Option(..., help="Directory where new reports land (as seen by the workers)"),
    cron: str = typer.Option("0 6 * * *", help="When to run, as a cron expression"),
    interval: Optional[float] = typer.Option(None, "--interval", help="Run every this many seconds instead of on the cron"),
    timezone: str = typer.Option("UTC", help="Time zone of the cron expression (IANA name)"),
    warehouse: Optional[Path] = WAREHOUSE_OPT,
    catalog: Optional[Catalog] = typer.Option(None, help="DuckLake catalog: sqlite (default), duckdb or postgres"),
    name: str = typer.Option("govfacts-daily", help="Deployment name"),
    pool: str = typer.Option("govfacts", help="Process work pool the workers poll"),
    output: Path = typer.Option(Path("prefect.yaml"), "--output", help="Where to write the prefect.yaml"),
    apply: bool = typer.Option(False, "--apply", help="Also register it with the Prefect server at PREFECT_API_URL (prefect deploy)"),
    task_runner: Optional[TaskRunner] = TASK_RUNNER_OPT,
    dask_address: Optional[str] = DASK_ADDRESS_OPT,
    max_workers: Optional[int] = MAX_WORKERS_OPT,
) -> None:
    """Write a prefect.yaml for a Prefect server with workers (and with --apply, register it)."""
    settings = _settings(inbox=inbox, warehouse=warehouse, catalog=catalog, task_runner=task_runner,
                             dask_address=dask_address, max_workers=max_workers)
    configure_prefect()
    from flows.deploy import apply_prefect_yaml, write_prefect_yaml  # noqa: PLC0415

    try:
        path = write_prefect_yaml(output, settings, cron=None if interval is not None else cron, timezone=timezone, name=name,
                                  pool=pool, interval=interval)
        out.print(f"wrote {path}")
        if apply:
            apply_prefect_yaml(path, pool=pool)
            out.print(f"registered govfacts-ingest/{name} on work pool {pool!r}; start a worker: prefect worker start --pool {pool}")
    except (ValueError, RuntimeError) as exc:
        _fail(str(exc))


if __name__ == "__main__":
    app()
