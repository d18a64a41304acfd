"""The record shapes that move between stages, declared once.

Every stage hands the next an Arrow table with one of these schemas; DuckDB
ingests them without copies. ``Fact`` is the contract of ``govfacts extract``
(the first fourteen fields, in order) plus provenance the warehouse keeps.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields

import pyarrow as pa

MEASURES = ("level", "growth", "share", "ratio")
KINDS = ("actual", "target", "average_annual", "cumulative", "change_vs_base")
QUALIFIERS = ("以上", "左右", "以内", "近", "突破", "超", "约")

# Fields of the public JSONL contract, in order (keep stable: evaluation tools read it).
CONTRACT_FIELDS = (
    "doc_id", "region", "indicator", "measure", "value", "unit", "value_base",
    "unit_base", "period", "kind", "qualifier", "evidence", "start", "end",
)


@dataclass(frozen=True)
class Fact:
    """One number a report states, with its provenance and precision."""

    doc_id: str
    region: str
    indicator: str
    measure: str
    value: float
    unit: str
    value_base: float
    unit_base: str
    period: str
    kind: str
    qualifier: str | None
    evidence: str
    start: int
    end: int
    rule: str = ""
    region_level: str | None = None
    report_year: int | None = None
    preliminary: bool = False
    mojibake_overlap: bool = False
    raw_start: int | None = None
    raw_end: int | None = None

    def contract(self) -> dict:
        """The public JSONL object (contract fields only, in contract order)."""
        d = asdict(self)
        return {k: d[k] for k in CONTRACT_FIELDS}


FACT_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()), ("region", pa.string()), ("indicator", pa.string()),
        ("measure", pa.string()), ("value", pa.float64()), ("unit", pa.string()),
        ("value_base", pa.float64()), ("unit_base", pa.string()), ("period", pa.string()),
        ("kind", pa.string()), ("qualifier", pa.string()), ("evidence", pa.string()),
        ("start", pa.int64()), ("end", pa.int64()), ("rule", pa.string()),
        ("region_level", pa.string()), ("report_year", pa.int64()),
        ("preliminary", pa.bool_()), ("mojibake_overlap", pa.bool_()),
        ("raw_start", pa.int64()), ("raw_end", pa.int64()),
    ]
)
assert [f.name for f in fields(Fact)] == FACT_SCHEMA.names, "Fact and FACT_SCHEMA drifted apart"


def facts_to_table(facts: list[Fact]) -> pa.Table:
    """Facts as an Arrow table of FACT_SCHEMA (empty table when there are none).

    Built column by column: ``dataclasses.asdict`` deep-copies every field and
    cost ten times as much (0.6 s against 0.06 s per 1,000 reports' facts).
    """
    return pa.table({name: [getattr(f, name) for f in facts] for name in FACT_SCHEMA.names}, schema=FACT_SCHEMA)


def fact_id(row: dict) -> str:
    """Stable id of a fact within the warehouse (its document, what it says, where and its value)."""
    key = "|".join(str(row[k]) for k in ("doc_id", "indicator", "measure", "period", "kind", "start", "end", "value"))
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def with_fact_ids(facts: pa.Table) -> pa.Table:
    """``facts`` with its ``fact_id`` column appended."""
    ids = [fact_id(r) for r in facts.select(["doc_id", "indicator", "measure", "period", "kind", "start", "end", "value"]).to_pylist()]
    return facts.append_column("fact_id", pa.array(ids, pa.string()))


def table_to_facts(table: pa.Table) -> list[Fact]:
    """Inverse of ``facts_to_table``."""
    return [Fact(**row) for row in table.to_pylist()]


@dataclass(frozen=True)
class StagedFile:
    """A raw input copied content-addressed into the staging area."""

    source_path: str
    sha256: str
    n_bytes: int
    staged_path: str


@dataclass
class NormalizationReport:
    """What the normalize stage did to one document (stored with the document)."""

    encoding: str = ""
    confidence: float = 0.0
    html: bool = False
    pinyin_removed: int = 0
    mojibake_found: int = 0
    mojibake_repaired: int = 0
    mojibake_left: int = 0
    furniture_lines_removed: int = 0
    chars_converted: int = 0
    fullwidth_converted: int = 0
    unrepaired_spans: list[tuple[int, int]] = field(default_factory=list)
    # Added by the normalize stage (issue 3); all defaulted so old rows still load.
    repaired_spans: list[tuple[int, int]] = field(default_factory=list)
    mojibake_chars_lost: int = 0
    furniture_patterns: list[str] = field(default_factory=list)
    html_tags_removed: int = 0
    script_config: str = ""
    published: str = ""  # ISO date read from removed furniture (发布日期/更新时间 line, forum note)
    source: str = ""  # publisher named by a removed 信息来源 line


# The fields of a fact the rules across documents read (conflicts, implied growth, cross ratios): what a validation
# group is compared with is read from the warehouse and from the run's earlier groups with these (warehouse/quality.py),
# and pooled with the group's own facts by these (expectations/derive.py). Declared once, below both.
COMPARED_FIELDS = ("fact_id", "doc_id", "region", "indicator", "measure", "value", "unit", "value_base", "unit_base",
                   "period", "kind", "qualifier", "evidence", "start", "end", "report_year")

QUARANTINE_SCHEMA = pa.schema(
    [
        ("source_path", pa.string()), ("sha256", pa.string()), ("stage", pa.string()),
        ("reason", pa.string()), ("detail", pa.string()),
    ]
)
