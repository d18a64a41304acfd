"""SQL output a user can trust (govfacts/sql_output.py through `govfacts sql` and `govfacts snapshots`).

On a real warehouse: at 80 and 200 columns every header and every number of ``facts`` is shown
whole (never blanked, ellipsized or rounded), long text wraps and is all there, each --format
parses back to the query's result, an unknown format exits 2 before any work, the query can come
from stdin, and a real process on an 80-column terminal behaves like the test runner.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import subprocess
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from govfacts.cli import app
from govfacts.sql_output import FORMATS, RowWriter, plan_widths, shown, wrap_text
from tests.warehouse_batches import fact, make_batch
from transforms.settings import load_settings
from warehouse.catalog import connect
from warehouse.load import load_batch
from warehouse.snapshots import list_snapshots

PROJECT = Path(__file__).resolve().parent.parent
LONG_EVIDENCE = "凉州区2023年地区生产总值8374.123456789亿元，" + "增长较快，结构持续优化，" * 30 + "完"
EXACT = ("SELECT 8374.123456789::DOUBLE AS d, 8374.1235::DECIMAL(18,4) AS m, 0.0000000001::DECIMAL(18,10) AS tiny, "
         "1e-10::DOUBLE AS e, 123456789012345678::BIGINT AS big, 0.1::DOUBLE + 0.2::DOUBLE AS sum")
FORMATS_QUERY = ("SELECT fact_id, value, value_base, evidence, start, preliminary, report_year, qualifier, "
                 "8374.1235::DECIMAL(18,4) AS m, 'a | b' || chr(10) || 'c' AS piped FROM facts ORDER BY fact_id")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """Two runs; the current snapshot holds three facts, one a long exact figure with a long evidence."""
    settings = load_settings(warehouse=tmp_path_factory.mktemp("sqlout") / "wh", catalog="sqlite")
    load_batch(settings, make_batch("run1", [fact("docA", 6.6, 10)]))
    load_batch(settings, make_batch("run2", [
        fact("docA", 8374.123456789, 10, indicator="gdp", measure="level", unit="亿元", evidence=LONG_EVIDENCE),
        fact("docA", 6.8, 400),
        fact("docA", 7.0, 450, kind="target", period="2024")]))
    return settings


def run(settings, *args: str, columns: int = 80, input: str | None = None):
    return CliRunner().invoke(app, [*args, "--warehouse", str(settings.warehouse)], input=input, env={"COLUMNS": str(columns)})


def expected(settings, query: str) -> tuple[list[str], list[tuple]]:
    con = connect(settings, read_only=True)
    try:
        cur = con.execute(query)
        return [d[0] for d in cur.description], cur.fetchall()
    finally:
        con.close()


def whole(value: str, output: str) -> bool:
    """``value`` appears in ``output`` as a whole token (not as the start of a longer or a cut number)."""
    return re.search(rf"(?<![\w.]){re.escape(value)}(?![\w.…])", output) is not None


def records(output: str) -> list[dict[str, str]]:
    """The record layout read back: one dict per ``-[ RECORD n ]`` with each column's lines joined."""
    out: list[dict[str, str]] = []
    name = ""
    for line in output.splitlines():
        if line.startswith("-[ RECORD "):
            out.append({})
            continue
        if not out or " │ " not in line:
            continue
        label, _, value = line.partition(" │ ")
        if label.strip():
            name = label.strip()
        out[-1][name] = out[-1].get(name, "") + value
    return out


@pytest.mark.parametrize("columns", [80, 200])
def test_every_header_and_number_of_facts_is_shown_whole(warehouse, columns):
    query = "SELECT * FROM facts ORDER BY start LIMIT 2"
    names, rows = expected(warehouse, query)
    assert len(names) >= 20
    res = run(warehouse, "sql", query, columns=columns)
    assert res.exit_code == 0, res.output
    text = res.stdout
    assert "…" not in text
    for name in names:
        assert whole(name, text), name
    numbers = [v for r in rows for v in r if isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)]
    assert 8374.123456789 in numbers
    for v in numbers:
        assert whole(shown(v), text), (v, text)
    assert all(cell_len(line) <= columns for line in text.splitlines()), "lines wider than the terminal"
    got = records(text)  # 26 columns fit neither 80 nor 200: one record per row
    assert len(got) == 2
    assert got[0]["evidence"] == LONG_EVIDENCE, "long text wraps and is all there"
    assert got[0]["value"] == "8374.123456789" and got[0]["qualifier"] == "NULL"


@pytest.mark.parametrize("columns", [80, 200])
def test_exact_values_double_and_decimal(warehouse, columns):
    res = run(warehouse, "sql", EXACT, columns=columns)
    assert res.exit_code == 0, res.output
    values = ("8374.123456789", "8374.1235", "0.0000000001", "1e-10", "123456789012345678", "0.30000000000000004")
    for value in values:
        assert whole(value, res.stdout), (value, res.stdout)
    if columns == 200:  # the six numbers fit as a table, right-aligned, on one line
        assert "RECORD" not in res.stdout
        assert [c.strip() for c in res.stdout.splitlines()[3].split("│")[1:-1]] == list(values)
    else:  # 96 columns wide: a record
        assert records(res.stdout) == [dict(zip(("d", "m", "tiny", "e", "big", "sum"), values))], res.stdout


def test_lists_structs_and_blobs_read_as_duckdb_prints_them(warehouse):
    query = "SELECT [1.5, 2.25] AS l, {'a': 8374.1235::DECIMAL(18,4), 'b': [NULL, 'x']} AS s, '\\xAA\\x00ab'::BLOB AS b"
    table = run(warehouse, "sql", query)
    assert "│ [1.50, 2.25] │ {'a': 8374.1235, 'b': [NULL, x]} │ \\xAA\\x00ab │" in table.stdout, table.stdout
    row = json.loads(run(warehouse, "sql", query, "--format", "jsonl").stdout, parse_float=Decimal)
    assert row == {"l": [Decimal("1.50"), Decimal("2.25")], "s": {"a": Decimal("8374.1235"), "b": [None, "x"]}, "b": "\\xAA\\x00ab"}
    assert list(csv.reader(io.StringIO(run(warehouse, "sql", query, "--format", "csv").stdout)))[1] == [
        "[1.50, 2.25]", "{'a': 8374.1235, 'b': [NULL, x]}", "\\xAA\\x00ab"]


def test_a_table_that_fits_wraps_long_text_and_keeps_numbers_on_one_line(warehouse):
    res = run(warehouse, "sql", "SELECT value, evidence, start FROM facts ORDER BY start")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert "RECORD" not in res.stdout and all(cell_len(line) <= 80 for line in lines)
    assert [h.strip() for h in lines[1].split("┃")[1:-1]] == ["value", "evidence", "start"]
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in lines if line.startswith("│")]
    rows: list[list[str]] = []
    for c in cells:  # a row's continuation lines have an empty value cell
        if c[0]:
            rows.append(c)
        else:
            rows[-1][1] += c[1]
    assert [(r[0], r[2]) for r in rows] == [("8374.123456789", "10"), ("6.8", "400"), ("7.0", "450")]
    assert rows[0][1] == LONG_EVIDENCE and len(cells) > len(rows), "the evidence wraps, all of it"


def test_max_width_and_max_rows(warehouse):
    wide = run(warehouse, "sql", "SELECT * FROM facts ORDER BY start", "--max-width", "0")
    assert wide.exit_code == 0 and "RECORD" not in wide.stdout and LONG_EVIDENCE in wide.stdout
    capped = run(warehouse, "sql", "SELECT * FROM facts ORDER BY start", "--max-rows", "1")
    assert capped.exit_code == 0 and len(records(capped.stdout)) == 1
    assert "showing the first 1 rows" in " ".join(capped.stdout.split())
    assert run(warehouse, "sql", "SELECT 1", "--max-width", "-1").exit_code == 2


def _parse(fmt: str, res, path: Path | None = None):
    if fmt == "parquet":
        return pq.read_table(path) if path else pq.read_table(io.BytesIO(res.stdout_bytes))
    body = path.read_text(encoding="utf-8") if path else res.stdout
    if fmt == "json":
        return json.loads(body, parse_float=Decimal)
    if fmt == "jsonl":
        return [json.loads(line, parse_float=Decimal) for line in body.splitlines()]
    if fmt == "csv":
        return list(csv.reader(io.StringIO(body)))
    return body


@pytest.mark.parametrize("to_file", [False, True], ids=["stdout", "output-file"])
@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "parquet", "markdown"])
def test_each_format_parses_back_to_the_query_result(warehouse, tmp_path, fmt, to_file):
    names, rows = expected(warehouse, FORMATS_QUERY)
    path = tmp_path / f"out.{fmt}" if to_file else None
    res = run(warehouse, "sql", FORMATS_QUERY, "--format", fmt, *(["--output", str(path)] if path else []))
    assert res.exit_code == 0, res.output
    if path:
        assert res.stdout == "" and path.exists() and [p.name for p in tmp_path.iterdir()] == [path.name]
    got = _parse(fmt, res, path)
    as_json = [{n: (Decimal(repr(v)) if isinstance(v, float) else v) for n, v in zip(names, r)} for r in rows]
    if fmt == "json":
        assert got == as_json
    elif fmt == "jsonl":
        assert got == as_json
    elif fmt == "csv":
        assert got[0] == names
        assert got[1:] == [["" if v is None else shown(v) for v in r] for r in rows]
    elif fmt == "parquet":
        con = connect(warehouse, read_only=True)
        try:
            want = con.execute(FORMATS_QUERY).to_arrow_table()
        finally:
            con.close()
        assert got.schema.field("m").type == want.schema.field("m").type and str(want.schema.field("m").type) == "decimal128(18, 4)"
        assert got.equals(want)
    else:
        lines = got.splitlines()
        assert lines[0] == "| " + " | ".join(names) + " |"
        assert lines[1].count("---") == len(names) and "---:" in lines[1]
        assert len(lines) == 2 + len(rows)
        assert all(len(re.split(r"(?<!\\)\|", line)) == len(names) + 2 for line in lines), "one cell per column"
        assert "a \\| b<br>c" in got and "8374.123456789" in got


def test_json_of_an_empty_result_is_an_empty_array_and_csv_keeps_its_header(warehouse):
    assert json.loads(run(warehouse, "sql", "SELECT 1 AS a WHERE false", "--format", "json").stdout) == []
    assert run(warehouse, "sql", "SELECT 1 AS a WHERE false", "--format", "csv").stdout.strip() == "a"
    empty = run(warehouse, "sql", "SELECT 1 AS a WHERE false", "--format", "parquet")
    assert pq.read_table(io.BytesIO(empty.stdout_bytes)).num_rows == 0
    none = run(warehouse, "sql", "SELECT * FROM facts WHERE false")  # too wide for a table: the headers are still said
    names, _ = expected(warehouse, "SELECT * FROM facts")
    assert "0 rows" in none.stdout and all(whole(n, none.stdout) for n in names), none.stdout


@pytest.mark.parametrize("command", [["sql", "SELECT 1"], ["snapshots"]], ids=["sql", "snapshots"])
def test_an_unknown_format_exits_2_naming_the_choices_and_writes_nothing(warehouse, tmp_path, command):
    target = tmp_path / "out.xml"
    res = run(warehouse, *command, "--format", "xml", "--output", str(target))
    assert res.exit_code == 2
    said = " ".join(res.output.split())
    assert all(f in said for f in FORMATS), said
    assert not target.exists() and res.stdout == ""


def test_a_failed_query_leaves_no_output_file(warehouse, tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("the old file\n")
    failing = "SELECT (CASE WHEN i < 5000 THEN i::VARCHAR ELSE 'x' END)::INTEGER AS n FROM range(10000) t(i)"
    res = run(warehouse, "sql", failing, "--format", "csv", "--output", str(target))
    assert res.exit_code == 1 and "x" in res.output
    assert target.read_text() == "the old file\n" and [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    missing = run(warehouse, "sql", "SELECT 1", "--output", str(tmp_path / "no" / "such" / "out.csv"))
    assert missing.exit_code == 2 and "does not exist" in " ".join(missing.output.split())


def test_the_query_from_stdin(warehouse):
    res = run(warehouse, "sql", "-", "--format", "jsonl", input="SELECT count(*) AS n\nFROM facts;\n")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"n": 3}
    empty = run(warehouse, "sql", "-", input="  \n")
    assert empty.exit_code == 2 and "standard input" in empty.output and "was empty" in " ".join(empty.output.split())


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_snapshots_in_every_format(warehouse, tmp_path, fmt):
    snaps = list_snapshots(warehouse)
    path = tmp_path / f"snapshots.{fmt}" if fmt == "parquet" else None
    res = run(warehouse, "snapshots", "--format", fmt, *(["--output", str(path)] if path else []))
    assert res.exit_code == 0, res.output
    got = _parse(fmt, res, path)
    ids = [s["snapshot_id"] for s in snaps]
    if fmt == "table":
        assert "…" not in got and all(cell_len(line) <= 80 for line in got.splitlines())
        for header in ("snapshot", "time (UTC)", "what", "published"):
            assert header in got
        assert all(whole(str(i), got) for i in ids) and "not totals" in " ".join(got.split())
        assert str(snaps[-1]["time"])[:19] in got, "a time is shown whole, on one line"
    elif fmt in ("json", "jsonl"):
        assert [s["snapshot_id"] for s in got] == ids and got[-1]["facts"] == 3 and got[-1]["action"] == "run"
        assert got[-1]["details"]["run_id"] == "run2"
    elif fmt == "csv":
        assert got[0][0] == "snapshot_id" and [int(r[0]) for r in got[1:]] == ids
        assert json.loads(got[-1][got[0].index("details")])["run_id"] == "run2"
    elif fmt == "parquet":
        assert got.column("snapshot_id").to_pylist() == ids and got.column("facts").to_pylist()[-1] == 3
    else:
        assert got.splitlines()[0].startswith("| snapshot_id | time |") and len(got.splitlines()) == 2 + len(ids)


def test_data_and_headers_are_text_never_markup_or_control_sequences(warehouse):
    hostile = "e\x1b[31mred [bold]loud[/] a\u202eb"
    literal = "'" + hostile.replace("'", "''") + "'"
    many = ", ".join(f"{literal} AS \"c{i} [b]x[/b]\"" for i in range(12))
    for args in (["sql", f"SELECT {literal} AS v"], ["sql", f"SELECT {many}"], ["sql", f"SELECT {literal} AS v", "--format", "markdown"]):
        res = run(warehouse, *args)
        assert res.exit_code == 0, res.output
        assert "\x1b" not in res.stdout and "\u202e" not in res.stdout
        assert "e\\x1b[31mred [bold]loud[/] a\\u202eb" in res.stdout
    assert "c11 [b]x[/b]" in run(warehouse, "sql", f"SELECT {many}").stdout


def test_plan_widths_keeps_numbers_whole_and_gives_the_rest_to_text():
    headers, atomic = ["n", "text", "other"], [True, False, False]
    cells = [["8374.123456789", "x" * 200, "short"]]
    widths = plan_widths(headers, cells, atomic, 80)
    assert widths is not None and widths[0] == 14 and widths[2] == 5 and sum(widths) + 3 * 3 + 1 == 80
    assert plan_widths(headers, cells, atomic, 30) is None, "the number and a readable text column cannot fit 30"
    assert plan_widths(["a_long_header_name"], [["1"]], [True], 22) == [18]


@pytest.mark.parametrize("width", range(16, 40))
def test_wrapped_text_keeps_numbers_whole_and_loses_nothing(width):
    evidence = "全区实现地区生产总值8374.123456789亿元，同比增长6.8%，其中 GDP per capita 12,345.6 元 and more words here"
    lines = wrap_text(evidence, width)
    assert all(cell_len(line) <= width for line in lines)
    assert "".join(lines).replace(" ", "") == evidence.replace(" ", "")
    for number in ("8374.123456789", "6.8%", "12,345.6"):
        assert any(number in line for line in lines), (number, lines)
    assert wrap_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5], "a token wider than the line is folded, not cut"


def test_the_shell_writer_draws_tables_as_wide_as_its_console():
    out = io.StringIO()
    writer = RowWriter("table", out=out)
    writer.columns(["a", "b"])
    writer.rows([(1, Decimal("2.50"))])
    writer.finish()
    assert "│ 1 │ 2.50 │" in out.getvalue()
    with pytest.raises(ValueError, match="table | csv"):
        RowWriter("xml")


def test_a_real_terminal_of_80_columns(warehouse):
    """`govfacts sql` in a real process with COLUMNS=80: the width the user's shell gives, not the test runner's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVFACTS_")} | {"COLUMNS": "80"}
    query = "SELECT * FROM facts ORDER BY start LIMIT 2"
    names, rows = expected(warehouse, query)
    got = subprocess.run([str(PROJECT / ".venv" / "bin" / "govfacts"), "sql", query, "--warehouse", str(warehouse.warehouse)],
                         capture_output=True, text=True, env=env, timeout=120, cwd=PROJECT)
    assert got.returncode == 0, got.stderr
    assert "…" not in got.stdout and all(cell_len(line) <= 80 for line in got.stdout.splitlines())
    assert all(whole(n, got.stdout) for n in names)
    assert all(whole(shown(v), got.stdout) for r in rows for v in r if isinstance(v, (int, float)) and not isinstance(v, bool))
    assert records(got.stdout)[0]["evidence"] == LONG_EVIDENCE


def test_parquet_is_not_written_to_a_terminal(warehouse, tmp_path):
    """On a terminal (a pty) Parquet is refused before any work; into a pipe it is written."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVFACTS_")} | {"COLUMNS": "80"}
    cmd = [str(PROJECT / ".venv" / "bin" / "govfacts"), "sql", "SELECT 1 AS a", "--format", "parquet", "--warehouse",
           str(warehouse.warehouse)]
    primary, secondary = pty.openpty()
    try:
        got = subprocess.run(cmd, stdout=secondary, stderr=subprocess.PIPE, text=True, env=env, timeout=120, cwd=PROJECT)
    finally:
        os.close(secondary)
        os.close(primary)
    assert got.returncode == 2 and "--output" in got.stderr and "terminal" in got.stderr, got.stderr
    piped = subprocess.run(cmd, capture_output=True, env=env, timeout=120, cwd=PROJECT)
    assert piped.returncode == 0 and pq.read_table(io.BytesIO(piped.stdout)).column("a").to_pylist() == [1]


def test_parquet_is_written_in_row_groups_not_one_per_batch(warehouse, tmp_path):
    target = tmp_path / "big.parquet"
    res = run(warehouse, "sql", "SELECT i, (i / 7)::DECIMAL(18,4) AS m FROM range(300000) t(i)", "--format", "parquet",
              "-o", str(target))
    assert res.exit_code == 0, res.output
    meta = pq.read_metadata(target)
    assert meta.num_rows == 300_000 and meta.num_row_groups == 3, meta.num_row_groups
    assert pq.read_table(target).column("m").to_pylist()[-1] == Decimal("42857.0000")


def test_a_real_pty_of_80_columns_without_columns_set(warehouse):
    """No COLUMNS: the width comes from the terminal itself (a pty sized 80x24), as in a user's shell."""
    import fcntl
    import struct
    import termios

    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVFACTS_") and k not in ("COLUMNS", "LINES")}
    query = "SELECT * FROM facts ORDER BY start LIMIT 2"
    names, rows = expected(warehouse, query)
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen([str(PROJECT / ".venv" / "bin" / "govfacts"), "sql", query, "--warehouse", str(warehouse.warehouse)],
                            stdin=subprocess.DEVNULL, stdout=secondary, stderr=subprocess.PIPE, env=env, cwd=PROJECT)
    os.close(secondary)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(primary)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    shown_text = re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode()).replace("\r\n", "\n")
    assert "…" not in shown_text and all(cell_len(line) <= 80 for line in shown_text.splitlines()), shown_text
    assert all(whole(n, shown_text) for n in names)
    assert all(whole(shown(v), shown_text) for r in rows for v in r if isinstance(v, (int, float)) and not isinstance(v, bool))
    assert records(shown_text)[0]["evidence"] == LONG_EVIDENCE
