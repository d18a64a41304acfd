"""Rows of a SQL result to the terminal or a pipe, batch by batch (``govfacts sql`` and ``govfacts shell``).

``csv`` and ``jsonl`` are written as the batches arrive, so memory stays flat whatever
the size of the result. ``table`` is drawn by Rich once it has its rows, so it holds
at most ``max_rows`` of them (default 1,000) and says when there were more. Table
cells, headers and notes are Rich ``Text`` after ``printable``: data is shown as it
is, never read as markup, and control characters are spelled out (``\\x1b``).
"""

from __future__ import annotations

import csv
import json
import sys
from typing import TextIO

from rich.console import Console
from rich.table import Table

from govfacts.safe_text import printable, text

FORMATS = ("table", "csv", "jsonl")
DEFAULT_MAX_ROWS = 1000


class RowWriter:
    """Receives ``columns(names)`` once and ``rows(batch)`` per batch; ``rows`` returns False when it wants no more."""

    def __init__(self, fmt: str = "table", max_rows: int = DEFAULT_MAX_ROWS, out: TextIO | None = None,
                 console: Console | None = None):
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}: use --format {' | '.join(FORMATS)}")
        self.fmt = fmt
        self.max_rows = max_rows
        self.out = out or sys.stdout
        self.console = console or Console(file=self.out)
        self.names: list[str] = []
        self.table_rows: list[tuple] = []
        self.count = 0
        self.truncated = False
        self._csv = None

    def columns(self, names: list[str]) -> None:
        self.names = list(names)
        if self.fmt == "csv" and names:
            self._csv = csv.writer(self.out)
            self._csv.writerow(names)

    def rows(self, batch: list[tuple]) -> bool:
        if self.fmt == "jsonl":
            self.out.write("".join(json.dumps(dict(zip(self.names, r)), ensure_ascii=False, default=str) + "\n" for r in batch))
        elif self.fmt == "csv":
            self._csv.writerows(batch)
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
        """Draw the table (table format); flush the stream."""
        if self.fmt == "table" and self.names:
            t = Table()
            for n in self.names:
                t.add_column(text(n))
            for r in self.table_rows:
                t.add_row(*[text("" if v is None else v) for v in r])
            self.console.print(t)
            if self.truncated:
                self.console.print(text(f"showing the first {self.max_rows:,} rows; there are more. For all of them use "
                                        "--format csv or --format jsonl (streamed), or --max-rows N (0: no limit)", "yellow"))
        self.out.flush()


__all__ = ["FORMATS", "DEFAULT_MAX_ROWS", "RowWriter", "printable"]
