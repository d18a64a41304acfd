"""Rows of a SQL result to the terminal, a pipe or a file, batch by batch (``govfacts sql``, ``snapshots``, ``shell``).

One writer for every command that prints rows, so they all keep the same promises:

- ``table`` never blanks, cuts or rounds a value. Numbers are shown whole and exactly as
  DuckDB holds them (a DOUBLE by its shortest exact repr, a DECIMAL with all its digits);
  headers are always shown; long text wraps. When the columns cannot fit the width even
  with text wrapped (the 25 columns of ``facts`` at 80 or 200 columns), each row is shown
  as a record, one ``column │ value`` line per column, like ``psql \\x`` or DuckDB's
  ``.mode line``. It holds at most ``max_rows`` rows (default 1,000) and says when there
  were more.
- ``csv``, ``jsonl``, ``json`` (one array), ``markdown`` (a GitHub pipe table) and ``parquet``
  are written as the batches arrive, so memory stays flat whatever the size of the result;
  they are never cut. Parquet keeps DuckDB's types (the batches come as Arrow).
- Text shown to a person (``table``, ``markdown``) goes through ``printable``: data is never
  read as markup and control characters are spelled out (``\\x1b``).
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Iterator, TextIO
from uuid import UUID

from rich.cells import cell_len, chop_cells
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from govfacts.safe_text import printable, text


class OutputFormat(StrEnum):
    """What ``--format`` accepts (a typer choice: any other value exits 2 naming these)."""

    table = "table"
    csv = "csv"
    jsonl = "jsonl"
    json = "json"
    parquet = "parquet"
    markdown = "markdown"


FORMATS = tuple(f.value for f in OutputFormat)
BINARY_FORMATS = frozenset({OutputFormat.parquet})
DEFAULT_MAX_ROWS = 1000
UNLIMITED_WIDTH = 1_000_000  # --max-width 0
# Parquet row groups: DuckDB's own size, or fewer rows when they are wide; a row group is held until written,
# so these bound the memory of --format parquet (one row group per 2,048-row batch would make files slow to read)
ROW_GROUP_ROWS = 122_880
ROW_GROUP_BYTES = 64 * 1024 * 1024
TEXT_MIN_WIDTH = 10  # a text column narrower than this reads worse than a record per row
ATOMIC = (bool, int, float, Decimal, date, time, datetime, timedelta, UUID)  # shown on one line, never folded
NUMERIC = (int, float, Decimal)


def shown(value: Any) -> str:
    """A value as text, exactly: a float by its shortest repr that reads back to the same double
    (8374.123456789, 1e-10), a Decimal with every digit of its scale and never in exponent form; a LIST or
    STRUCT as DuckDB prints it ([1.50, 2.25], {'a': 8374.1235}), not as Python's repr of its parts."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(shown(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"'{k}': {shown(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (bytes, bytearray)):  # DuckDB's BLOB text: printable ASCII as is, the rest \xNN
        return "".join(chr(c) if 32 <= c < 127 and c != 92 else f"\\x{c:02X}" for c in value)
    return str(value)


def _csv_value(value: Any) -> Any:
    """What the csv module should write: numbers, lists and structs exactly as ``shown``, NULL as an empty field."""
    if value is None:
        return ""
    if isinstance(value, (float, Decimal, bool, list, tuple, dict, bytes, bytearray)):
        return shown(value)
    return value


def _json_default(value: Any) -> Any:
    """JSON has no date, UUID or blob: their text as the table shows it (a blob as DuckDB prints it, ``\\xAA``)."""
    return shown(value)


def _json_value(value: Any) -> str:
    """A DECIMAL is written as a JSON number with all its digits (8374.1235, never 8374.123500000001 nor "8374.1235"):
    the json module would turn it into a double or a string; a reader that wants it exact can have it
    (``json.loads(s, parse_float=Decimal)``)."""
    if isinstance(value, Decimal) and value.is_finite():
        return format(value, "f")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_json_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)}: {_json_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def _json(names: list[str], row: tuple) -> str:
    return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {_json_value(v)}" for k, v in zip(names, row)) + "}"


def _markdown_cell(value: Any) -> str:
    """A cell of a GitHub pipe table: one line (newlines as <br>), pipes escaped, control characters spelled out."""
    if value is None:
        return ""
    s = shown(value).replace("\r\n", "\n").replace("\n", "<br>")
    return printable(s).replace("|", "\\|")


# what a line never breaks inside (unless it alone is wider than the line): a number with its point, sign, percent
# or unit letters, a Latin word, a path; Chinese breaks between any two characters, as it is typeset
_UNBROKEN = re.compile(r"\s+|[0-9A-Za-z_.,%+\-/:]+|.", re.S)


def wrap_text(value: str, width: int) -> list[str]:
    """``value`` in lines of at most ``width`` cells, breaking at spaces and between CJK characters, never inside
    a number or word that fits a line (the evidence's 8374.123456789 stays whole); nothing is dropped but the
    spaces at a break."""
    lines: list[str] = []
    line, used = "", 0
    for token in _UNBROKEN.findall(value):
        size = cell_len(token)
        if token.isspace():
            if used + size <= width:
                line, used = line + token, used + size
            else:
                lines.append(line.rstrip())
                line, used = "", 0
            continue
        if used + size > width and line.strip():
            lines.append(line.rstrip())
            line, used = "", 0
        if size > width:  # a token wider than a whole line: folded, as it cannot be kept whole
            *full, token = chop_cells(line + token, width)
            lines.extend(full)
            line, size, used = "", cell_len(token), 0
        line, used = line + token, used + size
    lines.append(line.rstrip())
    return lines


def _longest_word(header: str) -> int:
    """A header wraps at its spaces, never inside a word: its narrowest width is its longest word."""
    return max((cell_len(w) for w in header.split()), default=1)


def plan_widths(headers: list[str], cells: list[list[str]], atomic: list[bool], max_width: int) -> list[int] | None:
    """Content width of each column of a boxed table that fits ``max_width``, or None when it cannot fit.

    An atomic column (numbers, dates, booleans) gets its whole widest value; a text column at least
    TEXT_MIN_WIDTH (less if its values are shorter) and its header's longest word; what is left of the width
    goes to the text columns that want more, the narrowest wants served first."""
    n = len(headers)
    natural = [max([_longest_word(h), cell_len(h)] + [cell_len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    minimum = []
    for i, h in enumerate(headers):
        values = max((cell_len(r[i]) for r in cells), default=0)
        if atomic[i]:
            minimum.append(max(values, _longest_word(h)))
        else:
            minimum.append(max(_longest_word(h), min(natural[i], TEXT_MIN_WIDTH)))
    room = max_width - (3 * n + 1)  # "│ " before each column, " " after, and the closing "│"
    if sum(minimum) > room:
        return None
    widths = list(minimum)
    spare = room - sum(widths)
    wanting = sorted((natural[i] - minimum[i], i) for i in range(n) if natural[i] > minimum[i])
    for k, (want, i) in enumerate(wanting):
        give = min(want, spare // (len(wanting) - k))
        widths[i] += give
        spare -= give
    return widths


class RowWriter:
    """Receives ``columns(names)`` once and ``rows(batch)`` per batch; ``rows`` returns False when it wants no more;
    ``finish()`` at the end. A batch is a list of tuples, or an Arrow RecordBatch when ``wants_arrow``."""

    def __init__(self, fmt: str | OutputFormat = OutputFormat.table, max_rows: int = DEFAULT_MAX_ROWS,
                 out: TextIO | None = None, console: Console | None = None, max_width: int | None = None,
                 binary: IO[bytes] | None = None, note: str | None = None, null: str = "NULL"):
        try:
            self.fmt = OutputFormat(fmt)
        except ValueError:
            raise ValueError(f"unknown format {fmt!r}: use --format {' | '.join(FORMATS)}") from None
        self.max_rows = max_rows
        self.out = out or sys.stdout
        self.binary = binary
        self.note = note
        self.null = null
        console = console or Console(file=self.out, highlight=False)
        if max_width == 0:
            max_width = UNLIMITED_WIDTH
        self.max_width = max_width or console.width
        if self.max_width > console.width:  # Rich never draws wider than its console
            console = Console(file=self.out, width=self.max_width, highlight=False)
        self.console = console
        self.names: list[str] = []
        self.table_rows: list[tuple] = []
        self.count = 0
        self.truncated = False
        self._csv = None
        self._parquet = None
        self._row_group: list = []
        self._markdown_aligned = False
        self._json_open = False

    @property
    def wants_arrow(self) -> bool:
        """Parquet keeps DuckDB's types, so it wants the batches as Arrow (``stream(..., arrow=True)``)."""
        return self.fmt is OutputFormat.parquet

    def columns(self, names: list[str]) -> None:
        self.names = list(names)
        if self.fmt is OutputFormat.csv and names:
            self._csv = csv.writer(self.out)
            self._csv.writerow(names)
        elif self.fmt is OutputFormat.json:
            self.out.write("[")
            self._json_open = True

    def rows(self, batch) -> bool:
        fmt = self.fmt
        if fmt is OutputFormat.parquet:
            self._write_parquet(batch)
            self.count += batch.num_rows if hasattr(batch, "num_rows") else len(batch)
            return True
        if fmt is OutputFormat.jsonl:
            self.out.write("".join(_json(self.names, r) + "\n" for r in batch))
        elif fmt is OutputFormat.json:
            self.out.write("".join(("," if self.count + k else "") + "\n" + _json(self.names, r)
                                   for k, r in enumerate(batch)))
        elif fmt is OutputFormat.csv:
            self._csv.writerows([_csv_value(v) for v in r] for r in batch)
        elif fmt is OutputFormat.markdown:
            self._write_markdown(batch)
        else:
            room = self.max_rows - len(self.table_rows) if self.max_rows else len(batch)
            self.table_rows.extend(batch[:room])
            if self.max_rows and len(batch) > room:
                self.truncated = True
                self.count += room
                return False
        self.count += len(batch)
        return True

    def finish(self) -> None:
        """Draw the table (table format); close the JSON array or the Parquet file; flush the stream."""
        if self.fmt is OutputFormat.table and self.names:
            self._draw()
        elif self.fmt is OutputFormat.json:
            self.out.write(("[" if not self._json_open else "") + ("\n]\n" if self.count else "]\n"))
        elif self.fmt is OutputFormat.markdown and self.names and not self._markdown_aligned:
            self._markdown_header([])
        elif self.fmt is OutputFormat.parquet:
            if self._parquet is None:
                self._write_parquet([])
            self._write_row_group()
            self._parquet.close()
        if self.fmt is OutputFormat.parquet:
            (self.binary or self.out.buffer).flush()
        else:
            self.out.flush()

    # markdown -----------------------------------------------------------------------------------------------

    def _markdown_header(self, first: list[tuple]) -> None:
        """Header and alignment row; a column is right-aligned when its first value in the first batch is a number."""
        def numeric(i: int) -> bool:
            v = next((r[i] for r in first if r[i] is not None), None)
            return isinstance(v, NUMERIC) and not isinstance(v, bool)

        self.out.write("| " + " | ".join(_markdown_cell(n) for n in self.names) + " |\n")
        self.out.write("|" + "|".join(" ---: " if numeric(i) else " --- " for i in range(len(self.names))) + "|\n")
        self._markdown_aligned = True

    def _write_markdown(self, batch: list[tuple]) -> None:
        if not self._markdown_aligned:
            self._markdown_header(batch)
        self.out.write("".join("| " + " | ".join(_markdown_cell(v) for v in r) + " |\n" for r in batch))

    # parquet ------------------------------------------------------------------------------------------------

    def _write_parquet(self, batch) -> None:
        """Arrow batches keep their types; rows (``snapshots``) become a batch typed like the first one. Batches are
        gathered into row groups of ROW_GROUP_ROWS rows or ROW_GROUP_BYTES, written as each fills."""
        import pyarrow as pa  # noqa: PLC0415 (only Parquet needs it: `govfacts sql` starts faster without)
        import pyarrow.parquet as pq  # noqa: PLC0415

        if not isinstance(batch, pa.RecordBatch):
            schema = self._parquet.schema if self._parquet is not None else None
            columns = list(zip(*batch)) if batch else [[] for _ in self.names]
            arrays = [pa.array(list(c), type=schema.field(i).type if schema else (None if c else pa.string()))
                      for i, c in enumerate(columns)]
            batch = pa.RecordBatch.from_arrays(arrays, names=self.names)
        if self._parquet is None:
            sink = self.binary if self.binary is not None else self.out.buffer
            self._parquet = pq.ParquetWriter(sink, batch.schema)
        self._row_group.append(batch)
        if (sum(b.num_rows for b in self._row_group) >= ROW_GROUP_ROWS
                or sum(b.nbytes for b in self._row_group) >= ROW_GROUP_BYTES):
            self._write_row_group()

    def _write_row_group(self) -> None:
        import pyarrow as pa  # noqa: PLC0415

        if self._row_group:
            self._parquet.write_table(pa.Table.from_batches(self._row_group), row_group_size=ROW_GROUP_ROWS * 2)
            self._row_group = []

    # table --------------------------------------------------------------------------------------------------

    def _draw(self) -> None:
        headers = [printable(n) for n in self.names]
        cells = [[self.null if v is None else printable(shown(v)) for v in r] for r in self.table_rows]
        atomic = [all(r[i] is None or isinstance(r[i], ATOMIC) for r in self.table_rows) for i in range(len(headers))]
        numeric = [atomic[i] and any(isinstance(r[i], NUMERIC) and not isinstance(r[i], bool) for r in self.table_rows)
                   for i in range(len(headers))]
        widths = plan_widths(headers, cells, atomic, self.max_width)
        if widths is None:
            self._draw_records(headers, cells, atomic)
        else:
            # no no_wrap: it would crop the header too; an atomic column is as wide as its widest value anyway
            table = Table(*[Column(Text(h), width=w, overflow="fold", justify="right" if num else "left")
                            for h, w, num in zip(headers, widths, numeric)])
            for raw, row in zip(self.table_rows, cells):
                table.add_row(*[Text(c, style="dim") if v is None else Text(c if cell_len(c) <= w else "\n".join(wrap_text(c, w)))
                                for v, c, w in zip(raw, row, widths)])
            self.console.print(table)
        self._draw_notes()

    def _draw_records(self, headers: list[str], cells: list[list[str]], atomic: list[bool]) -> None:
        """One ``column │ value`` line per column and row (psql's expanded display): nothing is cut at any width."""
        label = min(max(cell_len(h) for h in headers), max(TEXT_MIN_WIDTH, self.max_width // 3))
        room = max(TEXT_MIN_WIDTH, self.max_width - label - 3)
        names = [Text(h).wrap(self.console, label, overflow="fold") if cell_len(h) > label else [Text(h)] for h in headers]
        rule_width = min(self.max_width, label + 3 + max((cell_len(c) for r in cells for c in r), default=0))
        out = Text()
        for number, (raw, row) in enumerate(zip(self.table_rows, cells), 1):
            title = f"-[ RECORD {number} ]"
            out.append(title + "-" * max(0, rule_width - len(title)) + "\n", style="dim")
            for i, c in enumerate(row):
                if atomic[i] or cell_len(c) <= room:
                    values = [Text(c, style="dim" if raw[i] is None else "")]
                else:
                    values = [Text(part) for part in wrap_text(c, room)]
                name_lines = list(names[i])
                for k in range(max(len(values), len(name_lines))):
                    name = name_lines[k] if k < len(name_lines) else Text("")
                    out.append(name.plain + " " * (label - cell_len(name.plain)), style="bold")
                    out.append(" │ ")
                    if k < len(values):
                        out.append_text(values[k])
                    out.append("\n")
        if not self.table_rows:  # psql's "(0 rows)", with the columns a table would have shown
            out.append(f"(0 rows; columns: {', '.join(headers)})\n", style="dim")
            self.console.print(out, end="")
            return
        self.console.print(out, soft_wrap=True, end="")

    def _draw_notes(self) -> None:
        if self.note:
            self.console.print(text(self.note, "dim"))
        if self.truncated:
            self.console.print(text(f"showing the first {self.max_rows:,} rows; there are more. For all of them use "
                                    "--format csv, jsonl, json, markdown or parquet (streamed), or --max-rows N (0: no limit)",
                                    "yellow"))


@contextmanager
def output_to(path: Path | None, fmt: OutputFormat) -> Iterator[tuple[TextIO | None, IO[bytes] | None]]:
    """``(text stream, binary stream)`` for ``--output PATH`` (None, None: standard output).

    The file appears only when the command succeeds: rows go to a temporary file beside it that replaces
    ``path`` at the end, so a failed or cancelled query never leaves half a file behind (nor clobbers the old one)."""
    if path is None:
        yield None, None
        return
    part = path.with_name(f".{path.name}.part-{os.getpid()}")
    try:
        if fmt in BINARY_FORMATS:
            with open(part, "wb") as f:
                yield None, f
        else:
            with open(part, "w", encoding="utf-8", newline="") as f:
                yield f, None
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)


__all__ = ["BINARY_FORMATS", "DEFAULT_MAX_ROWS", "FORMATS", "OutputFormat", "RowWriter", "output_to", "plan_widths",
           "printable", "shown"]
