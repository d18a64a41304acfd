"""Security: read-only SQL by default, a loopback-only Prefect server, no outbound calls,
inbox paths that cannot escape staging, and nothing from a report interpolated into SQL.

Unreadable files: tests run as root here and root reads a ``chmod 000`` file
anyway, so ``test_real_cli_run_*`` runs ``govfacts run`` under ``setpriv`` with
the DAC-override capabilities dropped: the process stays uid 0 (it can use its
temp directories) but file permissions bind it like any user. As a non-root user
the same test runs without setpriv.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from govfacts.cli import app
from tests.hostile import (
    LEDGER, PROJECT, PYTHON, SAMPLES, clean_env, display, pdf_bytes, report_reliability, sample_bytes, snapshot_state, sql,
    staging_problems,
)
from transforms.stage import JUNK, stage_inbox

pytestmark = pytest.mark.usefixtures("report_reliability")
__all__ = ["report_reliability"]

INJECTIONS = {
    "text": "'); DROP TABLE facts; --.txt",
    "pdf": "x'); DROP TABLE quarantine; --.pdf",
    "quote": '"; DELETE FROM documents; -- \\ %s {}.txt',
    "empty": "empty'); DROP TABLE runs; --.txt",
}


# ---------------------------------------------------------------------------------------------
# Nothing from a report reaches SQL as code


@pytest.fixture(scope="module")
def injected(prefect_harness, tmp_path_factory):
    """A warehouse loaded by the real flow from files whose names and text are SQL injections."""
    from flows.ingest import ingest

    root = tmp_path_factory.mktemp("injected")
    inbox, wh = root / "inbox", root / "wh"
    inbox.mkdir()
    payload = "'); DROP TABLE facts; --\n\"; DELETE FROM documents; --\n$$ DROP SCHEMA main CASCADE $$\n"
    (inbox / INJECTIONS["text"]).write_bytes(payload.encode() + sample_bytes("002") + payload.encode())
    (inbox / INJECTIONS["pdf"]).write_bytes(pdf_bytes(None))  # a scan: quarantined (no text layer)
    (inbox / INJECTIONS["quote"]).write_bytes(sample_bytes("004"))
    (inbox / INJECTIONS["empty"]).write_bytes(b"")
    _NET["on"] = True
    try:
        summary = ingest(inbox=str(inbox), warehouse=str(wh))
    finally:
        _NET["on"] = False
    LEDGER.run(summary)
    LEDGER.bad_inputs.update({"SQL injection in a file name", "SQL injection in report text"})
    return inbox, wh, summary, payload


# Network calls made by this process while a flow runs (an audit hook cannot be removed, so it is gated).
_NET: dict = {"on": False, "events": []}


def _net_hook(event: str, args: tuple) -> None:
    if _NET["on"] and event in ("socket.connect", "socket.getaddrinfo", "socket.bind"):
        _NET["events"].append((event, repr(args[1] if event != "socket.getaddrinfo" else args[0])))


sys.addaudithook(_net_hook)


def test_a_flow_run_calls_nothing_but_the_local_prefect_server(injected):
    connects = [e for e in _NET["events"] if e[0] == "socket.connect"]
    assert connects, "the run talked to its Prefect server, so connections should have been seen"
    remote = [e for e in _NET["events"] if not _loopback(e[1])]
    assert remote == [], f"outbound network calls during a run: {remote}"


def _listeners(port: int) -> list[str]:
    """Local addresses of the sockets listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, p = local.rsplit(":", 1)
            if state == "0A" and int(p, 16) == port:
                found.append(addr)
    return found


def test_the_prefect_server_listens_on_loopback_only_with_analytics_off(prefect_harness):
    """The session's server is started like the embedded one (Prefect's SubprocessASGIServer) under the
    project's configuration (configure_prefect in tests/conftest.py, as in the CLI)."""
    from urllib.parse import urlparse

    from prefect.settings import get_current_settings

    url = urlparse(str(get_current_settings().api.url))
    assert url.hostname == "127.0.0.1"
    listening = _listeners(url.port)
    assert listening and all(a in ("0100007F", "00000000000000000000000001000000") for a in listening), listening
    pids = [p for p in Path("/proc").iterdir() if p.name.isdigit() and f"--port\0{url.port}\0".encode() in _read(p / "cmdline")]
    assert pids, "cannot find the server process"
    environ = dict(kv.split("=", 1) for kv in _read(pids[0] / "environ").decode(errors="replace").split("\0") if "=" in kv)
    assert environ.get("PREFECT_SERVER_ANALYTICS_ENABLED", "").lower() == "false" and environ.get("DO_NOT_TRACK") == "1", environ
    assert environ.get("PREFECT_SERVER_UI_ENABLED", "").lower() in ("false", "0") or environ.get("PREFECT_UI_ENABLED") == "0"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def test_sql_in_names_and_text_is_stored_verbatim_and_breaks_nothing(injected):
    inbox, wh, summary, payload = injected
    assert summary["documents"] == 2 and summary["files_quarantined"] == 2, summary
    names = {n for (ns,) in sql(wh, "SELECT source_names FROM documents") for n in json.loads(ns)}
    assert names == {display(inbox / INJECTIONS["text"]), display(inbox / INJECTIONS["quote"])}
    quarantined = dict(sql(wh, "SELECT source_path, reason FROM quarantine WHERE item = 'file'"))
    assert quarantined == {display(inbox / INJECTIONS["pdf"]): "no_text_layer", display(inbox / INJECTIONS["empty"]): "empty"}
    assert sql(wh, "SELECT count(*) FROM document_text WHERE contains(text, ?) AND contains(text, ?)",
               ["'); DROP TABLE facts; --", "$$ DROP SCHEMA main CASCADE $$"]) == [(1,)]
    for table in ("documents", "document_text", "facts", "quarantine", "runs", "dq_results"):
        assert sql(wh, f"SELECT count(*) FROM {table}")[0][0] > 0, table


# ---------------------------------------------------------------------------------------------
# govfacts sql is read-only (and sandboxed) unless --read-write


def _sql(wh: Path, statement: str):
    return CliRunner().invoke(app, ["sql", statement, "--warehouse", str(wh)])


REFUSED = {
    "insert": "INSERT INTO facts (fact_id) VALUES ('x')",
    "update": "UPDATE facts SET value = 0",
    "delete": "DELETE FROM documents",
    "drop": "DROP TABLE facts",
    "create": "CREATE TABLE evil AS SELECT 1",
    "attach-outside": "ATTACH '{tmp}/evil.db' AS evil",
    "attach-in-lake": "ATTACH '{lake}/evil.db' AS evil",
    "copy-to-file": "COPY (SELECT * FROM documents) TO '{tmp}/stolen.csv'",
    "second-statement": "SELECT 1; DROP TABLE facts",
    "read-file": "SELECT * FROM read_text('/etc/passwd')",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "unlock": "SET enable_external_access = true",
    "expire-snapshots": "CALL ducklake_expire_snapshots('wh', older_than => now())",
}


@pytest.mark.parametrize("statement", list(REFUSED.values()), ids=list(REFUSED))
def test_sql_is_read_only_by_default_and_says_how_to_write(injected, tmp_path, statement):
    _, wh, _, _ = injected
    before = snapshot_state(wh)
    lake = wh / "lake"
    got = _sql(wh, statement.format(tmp=tmp_path, lake=lake))
    text = " ".join(got.output.split())
    assert got.exit_code != 0, text
    assert "read-only" in text and "--read-write" in text, text
    assert "Traceback" not in text
    assert not (tmp_path / "evil.db").exists() and not (tmp_path / "stolen.csv").exists() and not (lake / "evil.db").exists()
    assert snapshot_state(wh) == before


def test_sql_reads(injected):
    _, wh, _, _ = injected
    got = CliRunner().invoke(app, ["sql", "SELECT count(*) AS n FROM facts_published", "--warehouse", str(wh), "--format", "csv"])
    assert got.exit_code == 0, got.output
    assert got.output.split()[0] == "n" and int(got.output.split()[1]) > 0, got.output


# ---------------------------------------------------------------------------------------------
# Paths from the inbox never leave the staging area


_NAME_CHARS = st.sampled_from(list("ab.. -_'\"\\$%~*?[]{}!#&;|`<>=+,") + ["..", "\n", "\t", "报告", "政府", "\u202e", "\u200b", "é", "\ufffd", "﹒"])
_component = st.lists(_NAME_CHARS, min_size=1, max_size=8).map("".join).filter(lambda c: c not in (".", "..") and "/" not in c and len(c.encode()) < 200)


@given(parts=st.lists(st.one_of(_component, st.binary(min_size=1, max_size=12).filter(lambda b: b not in (b".", b"..") and b"/" not in b and b"\0" not in b)),
                      min_size=1, max_size=3))
def test_no_inbox_name_can_write_outside_staging(parts):
    LEDGER.fuzz_examples += 1
    with tempfile.TemporaryDirectory() as root:
        root_b = os.fsencode(root)
        inbox, staging = Path(root) / "inbox", Path(root) / "wh" / "staging"
        inbox.mkdir()
        raw = [p if isinstance(p, bytes) else p.encode() for p in parts]
        # hidden folders (.git) and OS junk files (.DS_Store) are not inputs by design: keep the name hostile but an input
        raw = [b"d" + p if p.startswith(b".") else p for p in raw[:-1]] + [b"f" + raw[-1] if JUNK.fullmatch(os.fsdecode(raw[-1])) else raw[-1]]
        rel = b"/".join(raw)
        target = os.fsencode(inbox) + b"/" + rel
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as fh:
            fh.write(b"2023\xe5\xb9\xb4 GDP " + rel)
        result = stage_inbox(inbox, staging)
        assert result.files_in == 1 and len(result.staged) == 1, result.rejected
        staged = Path(result.staged[0].staged_path)
        assert staged.resolve().is_relative_to(staging.resolve())
        assert result.staged[0].source_path == display(Path(os.fsdecode(target)))
        result.staged[0].source_path.encode("utf-8")  # storable as text
        written = {os.path.join(d, f) for d, _, fs in os.walk(root_b) for f in fs}
        assert written == {target, os.fsencode(staged)}, written
        assert staging_problems(staging, allow_partials=False) == []


def test_a_planted_link_at_a_content_address_is_replaced_not_followed(tmp_path):
    import hashlib

    inbox, staging = tmp_path / "inbox", tmp_path / "staging"
    inbox.mkdir()
    data = sample_bytes("000")
    (inbox / "r.txt").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    victim = tmp_path / "victim.txt"
    victim.write_text("do not overwrite")
    (staging / sha[:2]).mkdir(parents=True)
    (staging / sha[:2] / sha).symlink_to(victim)
    staged = stage_inbox(inbox, staging).staged[0]
    assert victim.read_text() == "do not overwrite"
    assert not Path(staged.staged_path).is_symlink() and Path(staged.staged_path).read_bytes() == data
    assert stat.S_IMODE(os.stat(staged.staged_path).st_mode) == 0o444, "staged copies are read-only"


def test_a_planted_folder_link_in_the_staging_area_receives_no_write(tmp_path):
    """A small file's copy is written beside its target (staging/<sha[:2]>/): a link planted there is refused
    before the temporary file is created, so nothing is written where the link points."""
    import hashlib

    from transforms.stage import StagingError

    inbox, staging, elsewhere = tmp_path / "inbox", tmp_path / "staging", tmp_path / "elsewhere"
    inbox.mkdir()
    elsewhere.mkdir()
    data = sample_bytes("000")
    (inbox / "r.txt").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    staging.mkdir()
    (staging / sha[:2]).symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(StagingError, match="not a folder of the staging area"):
        stage_inbox(inbox, staging)
    assert list(elsewhere.iterdir()) == [], "no temporary copy (nor anything else) lands where the link points"


def test_links_out_of_the_inbox_are_never_read(tmp_path):
    inbox, staging, outside = tmp_path / "inbox", tmp_path / "staging", tmp_path / "outside"
    inbox.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret " * 100)
    (inbox / "to-file.txt").symlink_to(outside / "secret.txt")
    (inbox / "to-dir").symlink_to(outside)
    (inbox / "to-etc.txt").symlink_to("/etc/passwd")
    (inbox / "relative.txt").symlink_to("../outside/secret.txt")
    result = stage_inbox(inbox, staging)
    assert result.staged == [] and {r["reason"] for r in result.rejected} == {"outside_inbox"} and len(result.rejected) == 4
    assert not staging.exists() or not any(p.is_file() for p in staging.rglob("*"))


# ---------------------------------------------------------------------------------------------
# Prefect: loopback only, no analytics, no outbound calls — on a real `govfacts run`


_SITECUSTOMIZE = r'''
import json, os, sys
_log = os.environ.get("GOVFACTS_TEST_NET_LOG")
if _log:
    def _write(event, detail):
        with open(_log, "a") as fh:
            fh.write(json.dumps({"pid": os.getpid(), "event": event, "detail": detail}) + "\n")
    _write("start", {"argv": sys.argv[:3], "env": {k: os.environ.get(k) for k in
           ("PREFECT_SERVER_ANALYTICS_ENABLED", "DO_NOT_TRACK", "PREFECT_SERVER_UI_ENABLED", "GX_ANALYTICS_ENABLED", "PREFECT_API_URL")}})
    def _hook(event, args):
        if event in ("socket.connect", "socket.bind"):
            _write(event, repr(args[1]))
        elif event == "socket.getaddrinfo":
            _write(event, repr(args[0]))
    sys.addaudithook(_hook)
'''


def _without_dac() -> list[str] | None:
    """A command prefix under which file permissions apply to this process (None when impossible)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        return None
    prefix = ["setpriv", "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search"]
    probe = subprocess.run(prefix + ["true"], capture_output=True)
    return prefix if probe.returncode == 0 else None


def _host(detail: str):
    """The host of an audited address (a repr): a str/None for IP sockets, a path for Unix sockets."""
    import ast

    try:
        value = ast.literal_eval(detail)
    except (ValueError, SyntaxError):
        return detail
    host = value[0] if isinstance(value, tuple) else value
    return host.decode("utf-8", "replace") if isinstance(host, bytes) else host


def _loopback(detail: str) -> bool:
    host = _host(detail)
    return host is None or host in ("", "localhost", "::1") or str(host).startswith(("127.", "/", "\0"))


@pytest.mark.e2e
@pytest.mark.slow
def test_real_cli_run_unreadable_file_loopback_server_no_outbound(tmp_path):
    """The most faithful check, slow because it starts its own Prefect server: a real ``govfacts run`` in a
    fresh Prefect home, as the README runs it, audited from inside every Python process it starts."""
    prefix = _without_dac()
    if prefix is None:
        pytest.skip("cannot drop the DAC-override capabilities here (no setpriv), and root reads chmod 000 files")
    inbox, wh, site = tmp_path / "inbox", tmp_path / "wh", tmp_path / "site"
    inbox.mkdir()
    site.mkdir()
    (site / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    shutil.copyfile(next(SAMPLES.glob("000_*.txt")), inbox / "report.txt")
    locked = inbox / "locked.txt"
    locked.write_bytes(sample_bytes("001"))
    locked.chmod(0)
    folder = inbox / "locked folder"
    folder.mkdir()
    (folder / "inside.txt").write_bytes(sample_bytes("002"))
    folder.chmod(0)
    log = tmp_path / "net.jsonl"
    env = clean_env(PYTHONPATH=f"{site}{os.pathsep}{PROJECT}", GOVFACTS_TEST_NET_LOG=str(log), COLUMNS="250",
                    PREFECT_HOME=str(tmp_path / "prefect-home"))
    for k in ("PREFECT_API_URL", "PREFECT_SERVER_ANALYTICS_ENABLED", "DO_NOT_TRACK", "PREFECT_SERVER_UI_ENABLED", "GX_ANALYTICS_ENABLED"):
        env.pop(k, None)  # the project's own defaults (govfacts/prefect_env.py) must do the job
    try:
        done = subprocess.run(prefix + [PYTHON, "-m", "govfacts.cli", "run", "--inbox", str(inbox), "--warehouse", str(wh)],
                              cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600)
    finally:
        locked.chmod(0o644)
        folder.chmod(0o755)
    out = " ".join(done.stdout.split())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    LEDGER.bad_inputs.update({"unreadable file (chmod 000)", "unreadable folder (chmod 000)"})
    LEDGER.runs_completed += 1
    files_in = 3
    LEDGER.files_in += files_in
    LEDGER.files_out += files_in if "counts reconcile │ yes" in out else 0
    assert "counts reconcile │ yes" in out, out
    rows = dict(sql(wh, "SELECT source_path, reason FROM quarantine WHERE item = 'file'"))
    assert rows == {str(locked): "unreadable", str(folder): "unreadable_folder"}, rows
    assert f"quarantined unreadable: {locked}: cannot be read (Permission denied)" in out, out

    events = [json.loads(line) for line in log.read_text().splitlines()]
    starts = [e for e in events if e["event"] == "start"]
    servers = [e for e in starts if "--app-dir" in e["detail"]["argv"]]  # python -m uvicorn --app-dir ... (Prefect's server)
    assert servers, f"the run should have started Prefect's embedded server: {starts}"
    for e in servers:
        env_seen = {k: (v or "").lower() for k, v in e["detail"]["env"].items()}
        assert env_seen["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false" and env_seen["DO_NOT_TRACK"] == "1", e
        assert env_seen["GX_ANALYTICS_ENABLED"] == "false", e
    server_pids = {e["pid"] for e in servers}
    listening = [e["detail"] for e in events if e["event"] == "socket.bind" and e["pid"] in server_pids]
    assert listening and all(_host(b) == "127.0.0.1" for b in listening), listening
    binds = [e["detail"] for e in events if e["event"] == "socket.bind"]
    assert all(_loopback(b) for b in binds), binds
    remote = [e["detail"] for e in events if e["event"] in ("socket.connect", "socket.getaddrinfo") and not _loopback(e["detail"])]
    assert remote == [], f"outbound network calls: {remote}"


def test_configure_prefect_switches_off_analytics_and_binds_loopback():
    code = ("import os, json; from govfacts.prefect_env import configure_prefect; configure_prefect(); "
            "print(json.dumps({k: os.environ.get(k) for k in ('PREFECT_SERVER_ANALYTICS_ENABLED', 'DO_NOT_TRACK', "
            "'PREFECT_SERVER_API_HOST', 'PREFECT_SERVER_UI_ENABLED', 'GX_ANALYTICS_ENABLED')}))")
    env = {k: v for k, v in clean_env().items() if not k.startswith(("PREFECT_", "DO_NOT_TRACK", "GX_"))}
    got = json.loads(subprocess.run([PYTHON, "-c", code], cwd=PROJECT, env=env, capture_output=True, text=True, check=True).stdout)
    assert got == {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_SERVER_API_HOST": "127.0.0.1",
                   "PREFECT_SERVER_UI_ENABLED": "false", "GX_ANALYTICS_ENABLED": "False"}


# ---------------------------------------------------------------------------------------------
# Issue 14: the printed side of the sandbox, and names that stay distinct


def test_display_names_are_reversible_so_two_files_never_share_a_name():
    from transforms.stage import display_path

    raw = os.fsdecode(b"/in/\xb8\xdb 2024.txt")
    spelled = "/in/\\xb8\\xdb 2024.txt"
    names = [raw, spelled, "/in/a\\b.txt", "/in/a\\\\b.txt", os.fsdecode(b"/in/a\\\xb8"), "/in/a\\xb8", "/in/..\\..\\etc\\passwd..txt"]
    shown = [display_path(n) for n in names]
    assert len(set(shown)) == len(names), shown
    assert shown[0] == "/in/\\xb8\\xdb 2024.txt" and shown[-1] == "/in/..\\..\\etc\\passwd..txt"  # unambiguous names are unchanged
    for s in shown:
        s.encode("utf-8")  # storable


def test_ctrl_c_in_the_shell_cancels_the_query_and_keeps_the_session(tmp_path):
    """Ctrl-C (KeyboardInterrupt in the main thread) during a statement: cancelled at once, the next statement runs."""
    import _thread
    import io
    import threading
    import time

    from transforms.settings import load_settings
    from tests.warehouse_batches import fact, make_batch
    from warehouse.load import load_batch
    from warehouse.shell import run_shell

    settings = load_settings(warehouse=tmp_path / "wh", catalog="sqlite", postgres_dsn="", data_path="")
    load_batch(settings, make_batch("run1", [fact("docA", 6.6, 10)]))
    out = io.StringIO()
    script = "SELECT count(*) FROM range(100000000000000);\nSELECT 'still here' AS s;\n"
    timer = threading.Timer(2.0, _thread.interrupt_main)
    start = time.monotonic()
    timer.start()
    try:
        run_shell(settings, stdin=io.StringIO(script), out=out, timeout=None)
    finally:
        timer.cancel()
    took = time.monotonic() - start
    text = out.getvalue()
    LEDGER.bad_inputs.add("Ctrl-C in the shell")
    assert "cancelled (Ctrl-C)" in text and "still here" in text, text
    assert took < 6, took
