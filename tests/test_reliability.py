"""Reliability: hostile input never stops a run, faults never lose or half-publish anything.

Everything runs on the real stack: the Prefect flow (under the session's test
server, or as a separate ``govfacts`` process that is SIGKILLed), a DuckLake
warehouse in ``tmp_path``, and — for disk full / not writable — a real tmpfs
mounted for the test (skipped where mounting is not permitted).

The figures (bad inputs tried, faults injected, runs completed, files in versus
out, facts lost) are printed at the end of the session by tests/hostile.py.

Unreadable files: the tests run as root here, and root reads a ``chmod 000``
file anyway. The in-process corpus therefore uses a named pipe (FIFO) called
``pipe.txt`` (cannot be read as a file), and tests/test_security.py runs a real
``govfacts run`` with the DAC-override capabilities dropped (``setpriv``), so a
``chmod 000`` file is really unreadable to it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.hostile import (
    FACT_KEY, INJECTION, LEDGER, PYTHON, SAMPLES, Zygote, build_corpus, clean_env, display, expected_facts, fact_keys,
    harness_api_url, report_reliability, run_cli, sample_bytes, snapshot_state, sql, staging_problems, warehouse_facts,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("report_reliability")]
__all__ = ["report_reliability"]

FAULT_STAGES = ("stage", "normalize", "extract", "validate", "load")


# ---------------------------------------------------------------------------------------------
# Hostile input


@pytest.fixture(scope="module")
def hostile_run(prefect_harness, zygote, tmp_path_factory):
    """The whole hostile corpus through the real flow, once for the module (the zygote warms up meanwhile)."""
    from flows.ingest import ingest

    root = tmp_path_factory.mktemp("hostile")
    items = build_corpus(root / "inbox", root / "outside")
    LEDGER.bad_inputs.update(i.kind for i in items)
    summary = ingest(inbox=str(root / "inbox"), warehouse=str(root / "wh"))
    LEDGER.run(summary)
    return items, summary, root


def _outcomes(wh: Path) -> tuple[dict[str, tuple[str, list[str]]], dict[str, tuple[str, str, str]]]:
    """name -> (doc_id, all names of the document); name -> (reason, detail, stage) of its quarantine record."""
    docs = {}
    for doc_id, names in sql(wh, "SELECT doc_id, source_names FROM documents"):
        for n in json.loads(names):
            docs[n] = (doc_id, json.loads(names))
    quarantined = {r[0]: (r[1], r[2], r[3]) for r in sql(wh, "SELECT source_path, reason, detail, stage FROM quarantine WHERE item = 'file'")}
    return docs, quarantined


def _copies(wh: Path) -> dict[str, str]:
    """name -> doc_id of the document it is a recorded copy of (same normalized text, other bytes)."""
    out = {}
    for doc_id, copies in sql(wh, "SELECT doc_id, copies FROM documents WHERE copies IS NOT NULL"):
        for c in json.loads(copies):
            for n in c["names"]:
                out[n] = doc_id
    return out


def _facts_held_twice(wh: Path) -> int:
    """Facts the warehouse holds more than once for one report text (same text, same fact at the same place)."""
    return sql(wh, "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM facts f JOIN document_text t USING (doc_id) "
                   "GROUP BY sha256(t.text), f.region, f.indicator, f.measure, f.period, f.kind, f.value, f.unit, f.qualifier, "
                   "f.evidence, f.start) WHERE n > 1")[0][0]


def test_hostile_run_completes_and_counts_reconcile(hostile_run):
    items, summary, root = hostile_run
    assert summary["files_in"] == len(items), (summary["files_in"], len(items))
    assert summary["files_in"] == summary["documents"] + summary["skipped"] + summary["duplicates"] + summary["files_quarantined"], summary
    assert summary["snapshot_id"] is not None and summary["changed"]


def test_every_hostile_file_is_processed_or_quarantined_with_a_reason_naming_it(hostile_run):
    items, summary, root = hostile_run
    wh, inbox = root / "wh", root / "inbox"
    docs, quarantined = _outcomes(wh)
    copies = _copies(wh)
    facts_by_doc: dict[str, int] = dict(sql(wh, "SELECT doc_id, count(*) FROM facts GROUP BY doc_id"))
    wrong = []
    for item in items:
        name = display(item.path(inbox))
        base = name.rsplit("/", 1)[-1]
        if item.has_facts and not facts_by_doc.get(docs.get(name, (copies.get(name),))[0]):
            wrong.append(f"{item.kind}: the report (or the document it is a copy of) yielded no facts")
        if name in copies:
            if item.expect not in ("copy", "document_or_copy"):
                wrong.append(f"{item.kind}: recorded as a copy of another document but expected {item.expect}")
            continue
        if name in quarantined:
            reason, detail, _ = quarantined[name]
            if item.expect not in ("quarantine", "document_or_quarantine"):
                wrong.append(f"{item.kind}: quarantined ({reason}: {detail}) but expected {item.expect}")
            elif item.reasons and reason not in item.reasons:
                wrong.append(f"{item.kind}: reason {reason!r}, expected one of {sorted(item.reasons)}")
            elif not reason or reason in ("error", "unknown", "failed"):
                wrong.append(f"{item.kind}: unspecific reason {reason!r}")
            elif base not in detail or len(detail) < len(name) + 30:
                wrong.append(f"{item.kind}: the message does not name the file and what to do: {detail!r}")
        elif name in docs:
            doc_id, names = docs[name]
            if item.expect not in ("document", "duplicate", "document_or_quarantine", "document_or_copy"):
                wrong.append(f"{item.kind}: loaded as a document but expected {item.expect}")
            elif item.expect == "duplicate" and len(names) < 2:
                wrong.append(f"{item.kind}: expected as one more name of an existing document, got names {names}")
            elif item.no_facts and facts_by_doc.get(doc_id, 0):
                wrong.append(f"{item.kind}: is not a report but yielded {facts_by_doc[doc_id]} facts")
        else:
            wrong.append(f"{item.kind}: {name!r} is neither a document nor quarantined (silently lost)")
    assert not wrong, "\n".join(wrong)
    shown = {q["source_path"] for q in summary["quarantined"]}
    assert shown == set(quarantined), "the run summary must list every quarantined file"
    assert {c["source_path"] for c in summary["copies"]} == {n for n in copies if n in {display(i.path(inbox)) for i in items}}, \
        "the run summary must name every copy"


def test_one_report_under_other_bytes_is_one_document_with_its_copies_recorded(hostile_run):
    """Issue 14: GBK, CRLF, BOM, HTML, UTF-16 without BOM and stray-NUL copies of a report are recorded, not loaded again."""
    items, summary, root = hostile_run
    wh, inbox = root / "wh", root / "inbox"
    docs, _ = _outcomes(wh)
    copies = _copies(wh)
    copy_like = [i for i in items if i.expect == "document_or_copy"]
    assert copy_like
    for item in copy_like:
        name = display(item.path(inbox))
        assert name in copies or name in docs, f"{item.kind}: neither a document nor a recorded copy"
    assert sum(display(i.path(inbox)) in copies for i in copy_like) >= 6, "most re-saved copies have a document already"
    texts = sql(wh, "SELECT count(*), count(DISTINCT text_sha256) FROM documents")[0]
    assert texts[0] == texts[1], f"{texts[0] - texts[1]} documents share their normalized text with another"
    held_twice = _facts_held_twice(wh)
    LEDGER.facts_duplicated += held_twice
    assert held_twice == 0
    # the raw copies stay findable: staged at their own content address, named in the document's record
    for doc_id, recorded in sql(wh, "SELECT doc_id, copies FROM documents WHERE copies IS NOT NULL"):
        for c in json.loads(recorded):
            assert Path(c["staged_path"]).is_file() and c["sha256"] != doc_id and c["names"]


def test_raw_bytes_name_and_its_escaped_spelling_are_two_names(hostile_run):
    items, _, root = hostile_run
    inbox = root / "inbox"
    raw = display(next(i for i in items if i.kind == "non-UTF-8 file name").path(inbox))
    spelled = display(next(i for i in items if i.kind == "escaped spelling of the raw-bytes name").path(inbox))
    assert raw != spelled
    docs, _ = _outcomes(root / "wh")
    assert raw in docs and spelled in docs and docs[raw][0] == docs[spelled][0], "both names recorded for the same bytes"


def test_hostile_run_loses_no_fact_of_the_reports_hidden_in_it(hostile_run):
    items, summary, root = hostile_run
    found = fact_keys(warehouse_facts(root / "wh"))
    expected: set = set()
    for stem in sorted({i.facts_like for i in items if i.facts_like}):
        expected |= fact_keys(expected_facts(sample_bytes(stem), stem))
    assert expected, "the extractor finds nothing in the samples: the comparison would be empty"
    lost = LEDGER.facts(expected, found)
    assert lost == 0, sorted(expected - found)[:10]


def test_docx_is_read_like_the_text_it_contains(hostile_run):
    items, _, root = hostile_run
    wh, inbox = root / "wh", root / "inbox"
    docx = next(i for i in items if i.kind == "DOCX report")
    docs, _ = _outcomes(wh)
    doc_id = docs[display(docx.path(inbox))][0]
    got = fact_keys([dict(zip(("region", "indicator", "measure", "period", "kind", "value", "unit", "qualifier", "evidence"), r))
                     for r in sql(wh, "SELECT region, indicator, measure, period, kind, value, unit, qualifier, evidence FROM facts WHERE doc_id = ?", [doc_id])])
    assert got == fact_keys(expected_facts(sample_bytes("000"))), "the .docx must yield exactly the facts of its text"


def test_names_with_sql_survive_verbatim(hostile_run):
    items, _, root = hostile_run
    wh, inbox = root / "wh", root / "inbox"
    name = display(inbox / f"{INJECTION}.txt")
    assert sql(wh, "SELECT count(*) FROM documents WHERE source_path = ? OR source_names LIKE ?", [name, f"%{INJECTION}%"])[0][0] == 1
    assert sql(wh, "SELECT count(*) FROM document_text WHERE contains(text, ?)", [INJECTION])[0][0] == 1
    assert sql(wh, "SELECT count(*) FROM facts")[0][0] > 0


def test_staging_holds_only_complete_content_addressed_copies(hostile_run):
    _, _, root = hostile_run
    staging = root / "wh" / "staging"
    assert staging_problems(staging, allow_partials=False) == []
    outside = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and ".partial-" in p.name]
    assert outside == []


def test_unchanged_hostile_rerun_adds_nothing(hostile_run):
    from flows.ingest import ingest

    items, first, root = hostile_run
    before = snapshot_state(root / "wh")
    again = ingest(inbox=str(root / "inbox"), warehouse=str(root / "wh"))
    LEDGER.run(again)
    assert again["files_in"] == first["files_in"]
    assert again["files_in"] == again["documents"] + again["skipped"] + again["duplicates"] + again["files_quarantined"], again
    assert again["documents"] == 0 and not again["changed"], again
    assert snapshot_state(root / "wh") == before


# ---------------------------------------------------------------------------------------------
# Faults: transient failures, SIGKILL at every stage, disk full, not writable, server unreachable


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """A small real filesystem at ``path`` (None when mounting is not permitted here)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "govfacts-test", str(path)], capture_output=True)
    if done.returncode != 0:
        yield None
        return
    try:
        yield path
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(path)], capture_output=True)
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fill(path: Path) -> Path | None:
    """Fill the filesystem holding ``path`` until it reports ENOSPC; the filler file (None: the filesystem was
    full already — then what fills it is listed, since the run that follows needs that space back)."""
    filler = path / "filler.bin"
    try:
        fh = open(filler, "wb")
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
        held = sorted((p.stat().st_size, str(p.relative_to(path))) for p in path.rglob("*") if p.is_file())
        print(f"{path} was full before filling: {sum(n for n, _ in held):,} bytes in {len(held)} files, largest {held[-5:]}")
        return None
    with fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def _facts_expected(stems) -> set:
    out: set = set()
    for stem in stems:
        out |= fact_keys(expected_facts(sample_bytes(stem), stem))
    return out


def _copy_samples(inbox: Path, stems) -> None:
    inbox.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        p = next(SAMPLES.glob(f"{stem}_*.txt"))
        shutil.copyfile(p, inbox / p.name)


@pytest.fixture(scope="module")
def zygote(prefect_harness, tmp_path_factory):
    """Forks a separate ``govfacts`` process per command (talking to the session's Prefect server)."""
    work = tmp_path_factory.mktemp("cli")
    z = Zygote(clean_env(PREFECT_API_URL=harness_api_url(), COLUMNS="250"), work)
    yield z
    z.close()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def test_faults_never_lose_or_half_publish_and_the_next_run_repairs_nothing(prefect_harness, zygote, tmp_path, monkeypatch):
    """One warehouse through every fault, in order; the final run must load everything, once.

    1. a first run whose stage, normalize and extract tasks each fail once (Prefect retries them);
    2. new reports arrive, and five runs are SIGKILLed, one at the end of each stage
       (each next run passes the stage where the previous one died);
    3. a staging copy is SIGKILLed half-written;
    4. a run meets a full disk during load, another a read-only lake (real tmpfs);
    5. a last run completes: every fact of every report is there, exactly once, in one new snapshot.
    """
    from flows.ingest import ingest

    inbox, wh = tmp_path / "inbox", tmp_path / "wh"
    with tmpfs(tmp_path / "lakefs", "16m") as lakefs:
        env = {"GOVFACTS_DATA_PATH": f"{lakefs}/"} if lakefs else {}
        for k, v in env.items():
            monkeypatch.setenv(k, v)

        # 1. transient failures, retried by Prefect
        _copy_samples(inbox, ["000", "001", "002"])
        state = tmp_path / "fault-state"
        state.mkdir()
        monkeypatch.setenv("GOVFACTS_FAULT_TRANSIENT", "stage:1,normalize:1,extract:1")
        monkeypatch.setenv("GOVFACTS_FAULT_STATE", str(state))
        first = ingest(inbox=str(inbox), warehouse=str(wh))
        monkeypatch.delenv("GOVFACTS_FAULT_TRANSIENT")
        fired = {p.stem: int(p.read_text()) for p in state.glob("*.count")}
        assert fired == {"stage": 1, "normalize": 1, "extract": 1}, fired
        LEDGER.faults += [f"transient failure in {s} (retried)" for s in fired]
        LEDGER.run(first)
        assert first["documents"] == 3 and first["changed"]
        assert fact_keys(warehouse_facts(wh)) >= _facts_expected(["000", "001", "002"])
        before = snapshot_state(wh)

        # 2. SIGKILL at the end of each stage
        _copy_samples(inbox, ["003", "004"])
        for stage in FAULT_STAGES:
            got = zygote.run(["run", "--inbox", str(inbox), "--warehouse", str(wh)], env=dict(env, GOVFACTS_FAULT=stage))
            assert got.exitcode == -signal.SIGKILL, (stage, got)
            LEDGER.faults.append(f"SIGKILL at {stage}")
            assert snapshot_state(wh) == before, f"a run killed at {stage} changed the warehouse"
            assert staging_problems(wh / "staging") == [], stage

        # 3. SIGKILL in the middle of a staging copy (a file larger than the in-memory threshold is streamed)
        big_inbox = tmp_path / "big-inbox"
        big_inbox.mkdir()
        (big_inbox / "big.txt").write_bytes(sample_bytes("001") * 600)  # ~21 MB
        killed = subprocess.run([PYTHON, "-c", "import sys; from pathlib import Path; from transforms.stage import stage_inbox; "
                                 "stage_inbox(Path(sys.argv[1]), Path(sys.argv[2]))", str(big_inbox), str(wh / "staging")],
                                env=clean_env(GOVFACTS_FAULT="stage-copy"), cwd=Path(__file__).parent.parent, capture_output=True)
        assert killed.returncode == -signal.SIGKILL, killed
        LEDGER.faults.append("SIGKILL in the middle of a staging copy")
        assert list((wh / "staging").glob(".partial-*")), "the killed copy should have left its temporary file"
        assert staging_problems(wh / "staging") == [], "a half-written copy must never be at a content address"
        assert snapshot_state(wh) == before

        # 4. disk full, then not writable, during load
        if lakefs:
            filler = _fill(lakefs)
            got = zygote.run(["run", "--inbox", str(inbox), "--warehouse", str(wh)], env=env)
            text = _one_line(got.stderr)
            assert got.exitcode == 1, got
            assert "Traceback (most recent call last)" not in got.stderr, got.stderr[-3000:]  # told once, in one line
            assert "disk is full" in text and "Nothing was committed" in text and f"snapshot {before[0]}" in text, text[-600:]
            assert snapshot_state(wh) == before
            LEDGER.faults.append("disk full during load")
            LEDGER.runs_failed_cleanly += 1
            if filler is not None:
                filler.unlink()
            subprocess.run(["mount", "-o", "remount,ro", str(lakefs)], check=True)
            got = zygote.run(["run", "--inbox", str(inbox), "--warehouse", str(wh)], env=env)
            text = _one_line(got.stderr)
            assert got.exitcode == 1, got
            assert "Traceback (most recent call last)" not in got.stderr, got.stderr[-3000:]  # told once, in one line
            assert "not writable" in text and "Nothing was committed" in text, text[-600:]
            assert snapshot_state(wh) == before
            LEDGER.faults.append("warehouse not writable during load")
            LEDGER.runs_failed_cleanly += 1
            subprocess.run(["mount", "-o", "remount,rw", str(lakefs)], check=True)
            with tmpfs(tmp_path / "read-only-warehouse", "1m") as ro:  # a whole warehouse directory that is read-only
                subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
                got = zygote.run(["run", "--inbox", str(inbox), "--warehouse", str(ro)], env={})
                text = _one_line(got.stderr)
                assert got.exitcode == 1 and "cannot write the staging area" in text and "writable" in text, text[-600:]
                assert "Traceback (most recent call last)" not in got.stderr, got.stderr[-3000:]
                assert "Nothing was loaded" in text
                LEDGER.faults.append("warehouse directory read-only")
                LEDGER.runs_failed_cleanly += 1
        else:
            import warnings

            warnings.warn("disk full / not writable during load not exercised: mounting a tmpfs is not permitted here", stacklevel=1)

        # 5. the next run completes without any repair and loads everything, once
        last = ingest(inbox=str(inbox), warehouse=str(wh))
        LEDGER.run(last)
        assert last["documents"] == 2 and last["skipped"] == 3, last
        assert last["files_in"] == last["documents"] + last["skipped"] + last["duplicates"] + last["files_quarantined"]
        after = snapshot_state(wh)
        assert after[0] == before[0] + 1, "the recovering run must add exactly one snapshot"
        expected = _facts_expected(["000", "001", "002", "003", "004"])
        assert LEDGER.facts(expected, fact_keys(warehouse_facts(wh))) == 0
        assert sql(wh, "SELECT count(*) FROM (SELECT fact_id FROM facts GROUP BY fact_id HAVING count(*) > 1)") == [(0,)]
        assert sql(wh, "SELECT count(*) FROM documents") == [(5,)]
        assert staging_problems(wh / "staging", allow_partials=False) == [], "the next run sweeps temporary copies of dead runs"
        assert not any((wh / "spill").glob("*")) if (wh / "spill").exists() else True


def test_unreadable_files_are_quarantined_by_a_real_cli_process(zygote, tmp_path):
    """chmod 000 really denies reading: the forked ``govfacts run`` drops the capabilities that let root ignore it."""
    inbox, wh = tmp_path / "inbox", tmp_path / "wh"
    inbox.mkdir()
    shutil.copyfile(next(SAMPLES.glob("000_*.txt")), inbox / "report.txt")
    locked = inbox / "locked.txt"
    locked.write_bytes(sample_bytes("001"))
    folder = inbox / "locked folder"
    folder.mkdir()
    (folder / "inside.txt").write_bytes(sample_bytes("002"))
    locked.chmod(0)
    folder.chmod(0)
    try:
        got = zygote.run(["run", "--inbox", str(inbox), "--warehouse", str(wh)], drop_dac=True)
    finally:
        locked.chmod(0o644)
        folder.chmod(0o755)
    out = _one_line(got.stdout)
    assert got.exitcode == 0, got
    LEDGER.bad_inputs.update({"unreadable file (chmod 000)", "unreadable folder (chmod 000)"})
    LEDGER.runs_completed += 1
    LEDGER.files_in += 3
    assert "counts reconcile │ yes" in out, out
    LEDGER.files_out += 3
    assert f"quarantined unreadable: {locked}: cannot be read (Permission denied)" in out, out
    assert dict(sql(wh, "SELECT source_path, reason FROM quarantine WHERE item = 'file'")) == {str(locked): "unreadable", str(folder): "unreadable_folder"}
    assert sql(wh, "SELECT count(*) FROM documents") == [(1,)]


@pytest.mark.slow
def test_a_200_mb_report_is_read_when_the_limit_allows_it(prefect_harness, tmp_path, monkeypatch):
    """The default suite quarantines the 200 MB file (too_large) and reads a 20 MB one; this reads 200 MB of text."""
    import resource

    from flows.ingest import ingest

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    seed = sample_bytes("001")
    filler = "坚持以人民为中心的发展思想，推动经济社会高质量发展，持续改善民生福祉。\n".encode("utf-8")
    with open(inbox / "huge.txt", "wb") as fh:
        fh.write(seed)
        block = filler * (1_000_000 // len(filler))
        while fh.tell() < 200_000_000:
            fh.write(block)
    monkeypatch.setenv("GOVFACTS_MAX_FILE_BYTES", str(256 * 1024 * 1024))
    summary = ingest(inbox=str(inbox), warehouse=str(tmp_path / "wh"))
    LEDGER.run(summary)
    LEDGER.bad_inputs.add("200 MB file read in full")
    assert summary["files_in"] == 1 and summary["documents"] + summary["files_quarantined"] == 1, summary
    if summary["documents"]:
        expected = _facts_expected(["001"])
        assert LEDGER.facts(expected, fact_keys(warehouse_facts(tmp_path / "wh"))) == 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"200 MB report: {summary['seconds']} s, peak RSS {peak} MB, stages {summary['stage_seconds']}")


def test_unreachable_prefect_server_is_one_clear_message(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = clean_env(PREFECT_API_URL=f"http://127.0.0.1:{port}/api", PREFECT_HOME=str(tmp_path / "prefect"), COLUMNS="250")
    got = run_cli(["run", "--inbox", str(SAMPLES), "--warehouse", str(tmp_path / "wh")], env, timeout=120)
    text = _one_line(got.stdout + got.stderr)
    assert got.exitcode == 1, got
    assert f"cannot reach the Prefect server at http://127.0.0.1:{port}/api" in text, text
    assert "PREFECT_API_URL" in text and "Traceback" not in text, text
    assert not (tmp_path / "wh").exists(), "nothing may be written when the run cannot start"
    LEDGER.faults.append("Prefect server unreachable")


# ---------------------------------------------------------------------------------------------
# Issue 14: what a user of `govfacts sql` can rely on (limits, Ctrl-C, streaming, text), a movable
# warehouse and a safe export. Each CLI output is searched for raw tracebacks (the ledger counts them).


@pytest.fixture(scope="module")
def small_wh(tmp_path_factory):
    """A warehouse of two crafted loads on the default catalog (no flow needed)."""
    from transforms.settings import load_settings
    from tests.warehouse_batches import fact, make_batch
    from warehouse.load import load_batch

    settings = load_settings(warehouse=tmp_path_factory.mktemp("sqlwh") / "wh", catalog="sqlite", postgres_dsn="", data_path="")
    load_batch(settings, make_batch("run1", [fact("docA", 6.6, 10), fact("docA", 7.0, 50, kind="target", period="2024")]))
    load_batch(settings, make_batch("run2", [fact("docA", 6.8, 10)]))
    return settings


def _cli(argv: list[str], name: str):
    from typer.testing import CliRunner

    from govfacts.cli import app

    got = CliRunner().invoke(app, argv, env={"COLUMNS": "250"})
    assert LEDGER.output(name, got.stdout, got.stderr if got.stderr_bytes is not None else "", repr(got.exception or "")), got.output
    if got.exception and not isinstance(got.exception, SystemExit):
        raise got.exception
    return got


def _spawn(argv: list[str], **kw) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "-m", "govfacts.cli", *argv], cwd=Path(__file__).parent.parent,
                            env=clean_env(COLUMNS="250"), text=True, **kw)


LONG_QUERY = "SELECT count(*) FROM range(100000000000000) a"


def test_ctrl_c_cancels_a_running_query_at_once(small_wh):
    import time

    p = _spawn(["sql", LONG_QUERY, "--warehouse", str(small_wh.warehouse), "--timeout", "0"],
               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(6)  # imports, attach, and the query well under way
    assert p.poll() is None, p.communicate()
    sent = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    waited = time.monotonic() - sent
    LEDGER.bad_inputs.add("Ctrl-C during a runaway query")
    assert LEDGER.output("sql Ctrl-C", out, err), err
    assert p.returncode == 130 and "cancelled (Ctrl-C)" in err, (p.returncode, err)
    assert waited < 3, f"Ctrl-C took {waited:.1f} s to stop the query"


def test_a_query_stops_at_its_timeout_with_a_message(small_wh):
    import time

    start = time.monotonic()
    got = _cli(["sql", LONG_QUERY, "--warehouse", str(small_wh.warehouse), "--timeout", "1"], "sql timeout")
    took = time.monotonic() - start
    LEDGER.bad_inputs.add("runaway query (timeout)")
    text = " ".join(got.output.split())
    assert got.exit_code == 1 and "ran longer than 1 s and was cancelled" in text and "--timeout" in text, text
    assert took < 10, took


def _peak_rss_mb(argv: list[str]) -> float:
    p = _spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read()
    assert p.returncode == 0 and LEDGER.output("sql stream", err), err
    return usage.ru_maxrss / 1024


def test_results_stream_so_memory_does_not_grow_with_the_result(small_wh):
    """csv and jsonl go out batch by batch: 3,000,000 rows take about the memory of 3,000."""
    w = ["--warehouse", str(small_wh.warehouse)]
    rows = "SELECT i, repeat('x', 100) AS pad FROM range({n}) t(i)"
    small = _peak_rss_mb(["sql", rows.format(n=3000), "--format", "csv", *w])
    big = _peak_rss_mb(["sql", rows.format(n=3_000_000), "--format", "jsonl", *w])
    LEDGER.bad_inputs.add("3,000,000-row result")
    print(f"peak RSS: {small:.0f} MB for 3,000 rows, {big:.0f} MB for 3,000,000 rows (~330 MB of output)")
    assert big - small < 80, (small, big)


def test_table_output_is_capped_and_a_closed_pipe_is_quiet(small_wh):
    w = ["--warehouse", str(small_wh.warehouse)]
    got = _cli(["sql", "SELECT i FROM range(5000) t(i)", *w], "sql max rows")
    assert got.exit_code == 0
    assert "│ 999 " in got.stdout and "│ 1000 " not in got.stdout
    assert "showing the first 1,000 rows" in " ".join(got.stdout.split())
    assert _cli(["sql", "SELECT i FROM range(5000) t(i)", "--max-rows", "0", *w], "sql all rows").stdout.count("│ 4999 ") == 1
    p = _spawn(["sql", "SELECT i FROM range(10000000) t(i)", "--format", "csv", *w], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline().strip() == "i"
    p.stdout.close()  # like `| head -1`
    err = p.stderr.read()
    p.wait(timeout=60)
    assert LEDGER.output("sql | head", err) and p.returncode == 0, (p.returncode, err)


MARKUP = {"closing tag": "a [/b] c", "tag": "[x] y", "style": "[bold red]loud[/]", "escape": "e\x1b[31mred\x1b[0m",
          "newline": "line1\nfiles quarantined │ 0", "bell and backspace": "a\x07b\x08c", "bidi override": "abc\u202edcba",
          "carriage return": "x\rforged", "osc link": "\x1b]8;;http://evil/\x07click\x1b]8;;\x07"}


def test_data_is_printed_as_text_never_markup_or_control_sequences(small_wh):
    from govfacts.safe_text import printable

    w = ["--warehouse", str(small_wh.warehouse)]
    for name, value in MARKUP.items():
        literal = "'" + value.replace("'", "''") + "'"
        got = _cli(["sql", f"SELECT {literal} AS v, {literal} AS \"{value.replace(chr(34), '')}\"", *w], f"sql markup {name}")
        LEDGER.bad_inputs.add(f"data with {name}")
        assert got.exit_code == 0, got.output
        shown = printable(value)
        assert shown in got.stdout, (name, got.stdout)
        assert "\x1b" not in got.stdout and "\x07" not in got.stdout and "\u202e" not in got.stdout, (name, got.stdout)
        body = [line for line in got.stdout.splitlines() if shown in line]
        assert body, got.stdout
    # an error message carrying a file name is text too
    bad = _cli(["sql", "SELECT 1", "--warehouse", str(small_wh.warehouse.parent / "no [/b] such\x1b[2J")], "sql missing warehouse")
    assert bad.exit_code == 1 and "no [/b] such\\x1b[2J" in bad.output and "\x1b[2J" not in bad.output, bad.output


def test_time_travel_out_of_range_says_what_to_do(small_wh):
    w = ["--warehouse", str(small_wh.warehouse)]
    for name, args, expect in (("negative", ["--at", "-1"], "cannot exist"), ("huge", ["--at", str(10**20)], "cannot exist"),
                               ("missing", ["--at", "999"], "is not in the warehouse"),
                               ("too early", ["--at-time", "1999-01-01"], "no snapshot as early as 1999-01-01"),
                               ("not a time", ["--at-time", "yesterday"], "is not a time")):
        got = _cli(["sql", "SELECT 1", *args, *w], f"sql --at {name}")
        LEDGER.bad_inputs.add(f"--at {name}")
        text = " ".join(got.output.split())
        assert got.exit_code == 1 and expect in text and "govfacts snapshots" in text or "write it like" in text, (name, text)
    typo = _cli(["sql", "SELECT 1", "--at", "1e20", *w], "sql --at 1e20")
    assert typo.exit_code == 2 and "valid integer" in typo.output


def test_a_warehouse_can_be_moved_copied_and_run_again(prefect_harness, tmp_path):
    """run, move, query, run again; and a copy opens on its own."""
    from flows.ingest import ingest

    inbox = tmp_path / "inbox"
    _copy_samples(inbox, ["000"])
    first = tmp_path / "first" / "wh"
    summary = ingest(inbox=str(inbox), warehouse=str(first))
    LEDGER.run(summary)
    facts = sql(first, "SELECT count(*) FROM facts")[0][0]
    moved = tmp_path / "elsewhere" / "renamed-wh"
    moved.parent.mkdir()
    shutil.move(str(first), str(moved))
    LEDGER.bad_inputs.add("warehouse moved to another directory")
    got = _cli(["sql", "SELECT count(*) AS n FROM facts_published", "--warehouse", str(moved), "--format", "csv"], "sql after move")
    assert got.exit_code == 0 and int(got.stdout.split()[1]) > 0, got.output
    assert sql(moved, "SELECT count(*) FROM facts")[0][0] == facts
    _copy_samples(inbox, ["001"])
    again = ingest(inbox=str(inbox), warehouse=str(moved))
    LEDGER.run(again)
    assert again["documents"] == 1 and again["skipped"] == 1 and again["changed"], again
    copy = tmp_path / "copy"
    shutil.copytree(moved, copy)
    LEDGER.bad_inputs.add("warehouse copied")
    assert sql(copy, "SELECT count(*) FROM documents") == [(2,)]
    assert not any(p.name.startswith("ducklake-") for p in (tmp_path / "first").rglob("*")) if (tmp_path / "first").exists() else True


def test_export_never_mixes_two_snapshots(small_wh, tmp_path):
    import pyarrow.parquet as pq

    w = ["--warehouse", str(small_wh.warehouse)]
    target = tmp_path / "out"
    assert _cli(["export", str(target), "--at", "1", *w], "export").exit_code == 0
    stale = target / "facts.parquet"
    (target / "notes.txt").write_text("mine")
    refused = _cli(["export", str(target), "--at", "2", "--table", "facts", *w], "export non-empty")
    assert refused.exit_code == 1 and "not empty" in refused.output and "--overwrite" in refused.output
    assert pq.read_metadata(stale).metadata[b"govfacts.snapshot_id"] == b"1"
    done = _cli(["export", str(target), "--at", "2", "--table", "facts", "--overwrite", *w], "export overwrite")
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in target.iterdir()) == ["facts.parquet", "manifest.json"], "--overwrite replaces the whole export"
    assert pq.read_metadata(target / "facts.parquet").metadata[b"govfacts.snapshot_id"] == b"2"
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.tex").write_text("x")
    kept = _cli(["export", str(other), "--overwrite", *w], "export overwrite foreign")
    assert kept.exit_code == 1 and "not a govfacts export" in kept.output and (other / "thesis.tex").exists()
    a_file = tmp_path / "file.parquet"
    a_file.write_text("x")
    as_file = _cli(["export", str(a_file), *w], "export to a file")
    assert as_file.exit_code == 1 and "is a file, not a directory" in " ".join(as_file.output.split())
    assert not list(tmp_path.glob(".*partial*")) and not list(tmp_path.glob(".*old*"))
    LEDGER.bad_inputs.update({"export into a non-empty directory", "export onto a file"})


def _processes_with(marker: str) -> list[str]:
    """Live processes whose environment or command line holds ``marker`` (pid and command)."""
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            blob = (p / "environ").read_bytes() + (p / "cmdline").read_bytes()
            state = (p / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in blob and state != "Z":
            command = (p / "cmdline").read_bytes()[:80].replace(bytes(1), b" ").decode(errors="replace")
            found.append(f"{p.name} {command}")
    return found


def test_a_killed_run_takes_its_prefect_server_with_it(tmp_path):
    """Issue 14: `kill -9` of a run used to leave its embedded Prefect server (uvicorn, ~225 MB) running forever."""
    import time

    inbox = tmp_path / "inbox"
    _copy_samples(inbox, ["000", "001"])
    home = tmp_path / "prefect-home-of-this-run"
    env = clean_env(PREFECT_HOME=str(home), GOVFACTS_FAULT="extract", COLUMNS="250")
    env.pop("PREFECT_API_URL", None)  # the run starts its own server, as `govfacts run` does on a user's machine
    got = run_cli(["run", "--inbox", str(inbox), "--warehouse", str(tmp_path / "wh")], env, timeout=300)
    assert got.exitcode == -signal.SIGKILL, got
    LEDGER.faults.append("SIGKILL of a run with its own Prefect server")
    deadline = time.monotonic() + 15
    while (left := _processes_with(str(home))) and time.monotonic() < deadline:
        time.sleep(0.5)
    LEDGER.processes_leaked.extend(left)
    assert left == [], f"processes outlived the killed run: {left}"
    assert "Traceback (most recent call last)" not in got.stdout + got.stderr  # run_cli recorded it in the ledger


def test_a_validator_whose_run_died_leaves_quietly(tmp_path):
    """The validator process, its parent gone mid-answer: no BrokenPipe traceback reaches the terminal."""
    import pickle
    import struct
    import time

    err = tmp_path / "validator.err"
    with open(err, "wb") as errfh:
        p = subprocess.Popen([PYTHON, "-m", "flows.validator"], cwd=Path(__file__).parent.parent, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=errfh, env=clean_env())
    head = p.stdout.read(8)
    assert pickle.loads(p.stdout.read(struct.unpack("!Q", head)[0]))[0] == "ready"
    from tests.hostile import expected_facts

    import pyarrow as pa

    from transforms.schema import facts_to_table, with_fact_ids
    from transforms.extract import extract_document
    from transforms.normalize import normalize_report

    data = sample_bytes("000")
    facts = with_fact_ids(facts_to_table(extract_document(normalize_report(data, "x"), "x")))
    assert expected_facts(data) and isinstance(facts, pa.Table)
    job = pickle.dumps((facts, None, None), protocol=pickle.HIGHEST_PROTOCOL)
    p.stdin.write(struct.pack("!Q", len(job)) + job)
    p.stdin.flush()
    p.stdout.close()  # the run is gone: nobody reads the answer
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)  # and Ctrl-C reached the process group
    p.stdin.close()
    code = p.wait(timeout=120)
    text = err.read_text(errors="replace")
    LEDGER.faults.append("validator's parent gone mid-answer")
    assert LEDGER.output("validator without its run", text), text
    assert code == 0, (code, text[-2000:])


def test_run_prints_hostile_file_names_as_text(zygote, tmp_path):
    """Names with markup, ESC sequences and newlines, through a real `govfacts run` and its summary."""
    inbox = tmp_path / "in [/b] box"  # '/' separates: the path reads "in [/b] box" all the same
    inbox.mkdir(parents=True)
    (inbox / "[/b] [bold red]report[/].txt").parent.mkdir(parents=True)
    (inbox / "[/b] [bold red]report[/].txt").write_bytes(sample_bytes("000"))
    (inbox / "e\x1b[31mred\x1b]8;;x\x07\nfiles quarantined │ 0.pdf").write_bytes(b"%PDF-1.4 not a report")
    (inbox / "[x] copy.html").write_bytes(("<html><body><p>" + sample_bytes("000").decode("utf-8").replace("\n", "</p><p>")
                                           + "</p></body></html>").encode("gb18030").replace(b"<html>", b'<html><meta charset="gbk">'))
    got = zygote.run(["run", "--inbox", str(inbox), "--warehouse", str(tmp_path / "wh [/i]")])
    LEDGER.bad_inputs.update({"file name with markup", "file name with ESC and newline", "inbox path with markup"})
    assert "Traceback (most recent call last)" not in got.stdout + got.stderr, got.stderr[-3000:]  # the zygote recorded it
    assert got.exitcode == 0, got
    assert "\x1b" not in got.stdout + got.stderr and "\x07" not in got.stdout
    out = got.stdout
    assert "[/b] [bold red]report[/].txt" in out and "e\\x1b[31mred\\x1b]8;;x\\x07\\nfiles quarantined │ 0.pdf" in " ".join(out.split())
    assert sum(line.strip().startswith("│ files quarantined") for line in out.splitlines()) == 1, "a name forged a summary line"
    assert "same report" in out and "[x] copy.html" in out, out
    assert "counts reconcile │ yes" in " ".join(out.split())


def test_a_copy_seen_again_under_a_new_name_is_recorded_and_not_loaded(prefect_harness, tmp_path):
    from flows.ingest import ingest

    inbox, wh = tmp_path / "inbox", tmp_path / "wh"
    inbox.mkdir()
    text = sample_bytes("000").decode("utf-8")
    (inbox / "report.txt").write_text(text, encoding="utf-8")
    (inbox / "report-crlf.txt").write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    first = ingest(inbox=str(inbox), warehouse=str(wh))
    LEDGER.run(first)
    assert first["documents"] == 1 and first["duplicates"] == 1 and len(first["copies"]) == 1, first
    facts = sql(wh, "SELECT count(*) FROM facts")[0][0]
    copy_name = first["copies"][0]["source_path"]  # whichever of the two came second: its bytes again, under a new name
    (inbox / "report-crlf again.txt").write_bytes(Path(copy_name).read_bytes())
    (inbox / "report-gbk.txt").write_bytes(text.encode("gb18030"))
    second = ingest(inbox=str(inbox), warehouse=str(wh))
    LEDGER.run(second)
    LEDGER.bad_inputs.update({"a copy under a new name in a later run", "a new copy of an already loaded report"})
    assert second["documents"] == 0 and second["files_in"] == 4, second
    assert second["files_in"] == second["documents"] + second["skipped"] + second["duplicates"] + second["files_quarantined"]
    assert sql(wh, "SELECT count(*) FROM documents") == [(1,)] and sql(wh, "SELECT count(*) FROM facts")[0][0] == facts
    own, recorded = sql(wh, "SELECT source_names, copies FROM documents")[0]
    names = sorted(n.rsplit("/", 1)[-1] for n in json.loads(own) + [n for c in json.loads(recorded) for n in c["names"]])
    assert names == ["report-crlf again.txt", "report-crlf.txt", "report-gbk.txt", "report.txt"], names
    again = next(c for c in json.loads(recorded) if c["sha256"] != json.loads(recorded)[-1]["sha256"])
    assert any(n.endswith("report-crlf again.txt") for n in again["names"]), "the copy's new name is in its own record"
    assert len(json.loads(recorded)) == 2, "two raw copies beside the document's own bytes"
    LEDGER.facts_duplicated += _facts_held_twice(wh)
    third = ingest(inbox=str(inbox), warehouse=str(wh))
    assert not third["changed"], "an unchanged re-run with copies commits nothing"


def test_figures_in_forum_markup_are_read_like_the_plain_report(hostile_run):
    """Issue 14: `[b]425.16[/b]亿元` in a forum copy lost the figure; the BBCode is removed before extraction."""
    items, _, root = hostile_run
    wh, inbox = root / "wh", root / "inbox"
    forum = next(i for i in items if i.kind.startswith("figures wrapped in BBCode"))
    doc_id = _outcomes(wh)[0][display(forum.path(inbox))][0]
    got = fact_keys([dict(zip(FACT_KEY, r)) for r in sql(wh, f"SELECT {', '.join(FACT_KEY)} FROM facts WHERE doc_id = ?", [doc_id])])
    assert got == fact_keys(expected_facts(sample_bytes("000"))), "the forum copy must yield exactly the facts of the plain report"
