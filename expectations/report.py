"""The data-quality report: one self-contained HTML page, opened from disk.

``write_report(settings, out)`` reads the warehouse (read-only) and writes ``out/index.html``:

* the latest run at a glance (documents, facts published / warned / quarantined);
* every expectation with its plain-language description and result, each failing
  instance with the values that failed and why each fact failed, and every
  per-indicator instance with its own result;
* pass rates per expectation across snapshots (an inline SVG chart);
* every failed or warned fact with the reasons and its evidence highlighted in
  the document text;
* conflicts across documents, side by side;
* targets against actuals, the rows of the warehouse view ``targets_vs_actuals``;
* per document, what was extracted; and the files that never became documents.

Everything (CSS, JS, SVG) is inline: no server, no network, no CDN.

This module shapes the data; the Jinja2 templates in ``expectations/templates`` say
how it looks. Autoescaping is always on, so whatever a document or the warehouse
holds is printed as text, never as markup: an evidence that reads ``<script>`` shows
those characters.

Why no GX Data Docs beside the page: they showed less (an empty index offline, "Data
asset: None", no evidence, no reasons), they needed GX's CDN assets stripped, and
building them cost about a second per report plus the ~5 s GX import for
``govfacts report``. The Expectations section shows what they showed: each
expectation, its result and the values that failed.
"""

from __future__ import annotations

import ast
import json
import math
import numbers
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import Markup

from expectations.derive import find_conflicts
from transforms.settings import Settings
from warehouse import quality

TEMPLATES = Path(__file__).with_name("templates")
CUSTOM = Path(__file__).with_name("custom.py")  # the expectation classes (see class_descriptions)
CONTEXT_CHARS = 70  # characters of document text shown on each side of an evidence
HISTORY_SNAPSHOTS = 16  # columns of the pass-rate chart
# A page a person reads, not a dump: past these the page says how many more there are and how to query them.
MAX_FLAGGED = 500  # failed or warned facts shown with their evidence (quarantined first)
MAX_CONFLICTS = 200
MAX_DOCUMENTS = 1000  # documents listed
MAX_DOCUMENT_TABLES = 300  # documents listed with their extracted facts
MAX_REASONS = 20  # reasons listed under each failing expectation instance (every one is with its fact below)
NAV = (("summary", "Summary"), ("expectations", "Expectations"), ("history", "Pass rates"), ("failures", "Failed & warned facts"),
       ("conflicts", "Conflicts"), ("targets", "Targets vs actuals"), ("coverage", "Coverage"), ("nofacts", "Without facts"),
       ("documents", "Documents"), ("files", "Quarantined files"))
POOL_FOR_CONFLICTS = ["fact_id", "doc_id", "region", "indicator", "measure", "value", "unit", "value_base", "unit_base",
                      "period", "kind", "qualifier", "evidence", "start", "end", "report_year"]


@dataclass
class ReportData:
    """Everything the page shows, read from the warehouse once."""

    warehouse: str
    run: dict | None
    results: pd.DataFrame
    history: pd.DataFrame
    documents: pd.DataFrame
    facts: pd.DataFrame
    messages: dict[str, list[str]]
    texts: dict[str, str]
    conflicts: pd.DataFrame
    targets: list[dict] | None  # rows of the view targets_vs_actuals; None when the warehouse predates it
    files: pd.DataFrame
    generated: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


@dataclass(frozen=True)
class ReportPaths:
    """Where the report was written."""

    index: Path


def load_report_data(settings: Settings) -> ReportData:
    """Read what the report shows from the latest snapshot of the warehouse."""
    facts = _nulls(quality.all_facts(settings))
    flagged = facts[facts["dq_status"].isin(["error", "warning"])].sort_values(["dq_status", "region", "indicator"])
    conflicts = find_conflicts(facts[POOL_FOR_CONFLICTS] if not facts.empty else facts)
    wanted = (set(flagged["doc_id"].head(MAX_FLAGGED)) | set(conflicts["left_doc_id"].head(MAX_CONFLICTS))
              | set(conflicts["right_doc_id"].head(MAX_CONFLICTS)))
    run = quality.latest_validated_run(settings)
    return ReportData(
        warehouse=str(settings.warehouse), run=run,
        results=quality.dq_results(settings, run["run_id"]) if run else pd.DataFrame(),
        history=quality.pass_rate_history(settings), documents=quality.documents(settings), facts=facts,
        messages=quality.fact_messages(settings), texts=quality.document_texts(settings, sorted(wanted)),
        conflicts=conflicts, targets=quality.targets_vs_actuals(settings), files=quality.quarantined_files(settings))


def _nulls(df: pd.DataFrame) -> pd.DataFrame:
    """Text columns with None for SQL NULL (pandas reads them as NaN, which is truthy)."""
    for c in df.columns:
        if not (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])):
            df[c] = df[c].astype(object).where(df[c].notna(), None)
    return df


# --- formatting: Jinja2 filters ------------------------------------------------------------------

def missing(value: object) -> bool:
    """SQL NULL as pandas or DuckDB hands it over (None, NaN, NA, NaT)."""
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def num(value: object) -> str:
    """A number as written in reports (no trailing .0); NULL is empty."""
    if missing(value):
        return ""
    return f"{value:g}" if isinstance(value, numbers.Real) and not isinstance(value, bool) else str(value)


def filename(path: object) -> str:
    """The last part of a stored path: what a user recognises in a list."""
    return "" if missing(path) else Path(str(path)).name


def _blank(value: object) -> object:
    """What ``{{ value }}`` prints: NULLs as nothing (never "None" or "nan")."""
    return "" if missing(value) else value


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The templates' environment: autoescape always on (data is text), an undefined name fails loudly."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, finalize=_blank)
    env.filters.update(num=num, filename=filename)
    return env


# --- evidence in context -------------------------------------------------------------------------

@dataclass(frozen=True)
class Evidence:
    """An evidence cut for display: context before, the clause (its number apart, to be bold), context after."""

    lead: str
    before: str
    head: str
    number: str
    tail: str
    after: str
    trail: str


def evidence_parts(text: str, start: int, end: int, evidence: str, value: float | None) -> Evidence:
    """The evidence with up to CONTEXT_CHARS of document text each side, its number cut out to be shown in bold.

    When the offsets do not point at the evidence in the text, the evidence is shown alone.
    The number is the first one in the clause that is not part of a longer number.
    """
    evidence = evidence or ""
    if text and 0 <= start < end <= len(text) and text[start:end] == evidence:
        before, after = text[max(0, start - CONTEXT_CHARS):start], text[end:end + CONTEXT_CHARS]
        lead, trail = ("…" if start > CONTEXT_CHARS else ""), ("…" if end + CONTEXT_CHARS < len(text) else "")
    else:
        before = after = lead = trail = ""
    hit = None if missing(value) else re.search(rf"(?<![\d.]){re.escape(f'{value:g}')}(?!\d)", evidence)
    head, number, tail = (evidence[:hit.start()], hit.group(0), evidence[hit.end():]) if hit else (evidence, "", "")
    flat = lambda s: s.replace("\n", " ")  # noqa: E731  (one line on the page)
    return Evidence(lead, flat(before), flat(head), number, flat(tail), flat(after), trail)


def highlight(text: str, start: int, end: int, evidence: str, value: float | None) -> Markup:
    """The evidence in its surrounding text as HTML: the clause marked, the fact's number in bold."""
    return environment().get_template("macros.html.j2").module.evidence(evidence_parts(text, start, end, evidence, value))


# --- the pass-rate chart -------------------------------------------------------------------------

def _color(rate: float | None) -> str:
    if missing(rate):
        return "#e4e7ec"
    if rate >= 0.9995:
        return "#2e9d5b"
    if rate >= 0.95:
        return "#9bcf6a"
    if rate >= 0.8:
        return "#f2b84b"
    return "#d9534f"


def chart_model(history: pd.DataFrame) -> dict:
    """Geometry and labels of the chart: one row per expectation, one cell per snapshot (the last HISTORY_SNAPSHOTS)."""
    snaps = sorted(history["snapshot_id"].unique())[-HISTORY_SNAPSHOTS:]
    names = sorted(history["expectation"].unique())
    label_w, cell_w, cell_h, top = 380, 58, 22, 34
    rates = {(r.expectation, r.snapshot_id): (r.pass_rate, r.checked, r.failed) for r in history.itertuples(index=False)}
    rows = []
    for i, name in enumerate(names):
        y = top + i * cell_h
        cells = []
        for j, s in enumerate(snaps):
            rate, checked, failed = rates.get((name, s), (None, 0, 0))
            x = label_w + j * cell_w
            gone = missing(rate)
            cells.append(dict(x=x + 2, y=y + 2, w=cell_w - 4, h=cell_h - 4, fill=_color(None if gone else rate),
                              tx=x + cell_w / 2, ty=y + cell_h * 0.68,
                              text="–" if gone else f"{100 * rate:.0f}%" if rate < 1 else "100%",
                              tip=f"{name} · snapshot {int(s)}: " + ("nothing to check" if gone else
                                                                      f"{int(checked) - int(failed)}/{int(checked)} facts passed")))
        rows.append(dict(name=name, x=label_w - 8, y=y + cell_h * 0.68, cells=cells))
    return dict(width=label_w + cell_w * len(snaps) + 20, height=top + cell_h * len(names) + 10, rows=rows,
                snapshots=[dict(id=int(s), x=label_w + j * cell_w + cell_w / 2, y=top - 12) for j, s in enumerate(snaps)])


def pass_rate_chart(history: pd.DataFrame) -> Markup:
    """Inline SVG: one row per expectation, one cell per snapshot, coloured and labelled by pass rate."""
    if history.empty:
        return Markup('<p class="muted">No validation results yet.</p>')
    return Markup(environment().get_template("chart.svg.j2").render(c=chart_model(history)).strip())


# --- the sections' data --------------------------------------------------------------------------

def _summary(data: ReportData) -> dict:
    f, run = data.facts, data.run or {}
    n = lambda status: int((f["dq_status"] == status).sum()) if not f.empty else 0  # noqa: E731
    cards = [("documents", len(data.documents)), ("facts", len(f)), ("published", n("passed") + n("warning")),
             ("warned", n("warning")), ("quarantined facts", n("error")), ("quarantined files", len(data.files)),
             ("expectations passed", run.get("expectations_passed", "–")), ("expectations failed", run.get("expectations_failed", "–"))]
    return dict(
        run=dict(run_id=run.get("run_id"), snapshot_id=run.get("snapshot_id"), finished=str(run.get("finished_at", ""))[:19]) if run else None,
        cards=[dict(label=k, value=v, bad=("quarantined" in k or k == "expectations failed") and v not in (0, "–")) for k, v in cards])


def failing_values(gx_result: str | None) -> tuple[str | None, list[str]]:
    """The column GX checked and its unexpected values with their counts ("4 (×2)"), from a stored GX result."""
    if not gx_result:
        return None, []
    stored = json.loads(gx_result)
    counts = (stored.get("result") or {}).get("partial_unexpected_counts") or []
    values = [f"{num(c['value'])}" + (f" (×{c['count']})" if c.get("count", 1) > 1 else "") for c in counts]
    config = stored.get("expectation_config") or {}
    # a per-indicator rule reads a helper column holding the fact's own field where it fails: the page names the field
    return (config.get("meta") or {}).get("shows") or (config.get("kwargs") or {}).get("column"), values


def _instance(row: dict, shown: set[str]) -> dict:
    """One expectation applied to one scope: its result, the values that failed and the reason of each failing fact."""
    column, values = failing_values(row.get("gx_result"))
    reasons = list(json.loads(row.get("unexpected_messages") or "{}").items())
    return dict(scope=row["scope"], description=row["description"], success=bool(row["success"]),
                checked=int(row["element_count"] or 0), failed=int(row["unexpected_count"] or 0), column=column, unexpected=values,
                messages=[dict(fact_id=fid, text=msg, shown=fid in shown) for fid, msg in reasons[:MAX_REASONS]],
                more=max(0, len(reasons) - MAX_REASONS))


@lru_cache(maxsize=1)
def class_descriptions() -> dict[str, str]:
    """Expectation name -> the plain-language ``description`` its class in expectations/custom.py declares.

    Read from the source, not imported: importing custom.py imports GX (~5 s), and the
    descriptions there are string literals. An expectation applied per indicator stores
    one description per instance; the page heads it with its class's.
    """
    out = {}
    for node in ast.parse(CUSTOM.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and getattr(stmt.target, "id", None) == "description" and stmt.value:
                    out[re.sub(r"(?<!^)(?=[A-Z])", "_", node.name).lower()] = ast.literal_eval(stmt.value)
    return out


def _description(name: str, instances: list[dict]) -> str:
    """One description for an expectation: its instance's, or (applied per indicator) its class's."""
    described = {i["description"] for i in instances}
    if len(described) == 1:
        return described.pop()
    return class_descriptions().get(name) or "Applied per indicator: each instance with its own bounds below"


def expectation_groups(results: pd.DataFrame, shown: set[str] = frozenset()) -> list[dict]:
    """One entry per expectation name, failures first: its instances added up, each instance kept with its result.

    ``shown`` are the fact ids the page lists with their evidence (a reason links to its fact).
    """
    if results.empty:
        return []
    groups = []
    for name, rows in results.groupby("expectation", sort=False):
        instances = [_instance(r, shown) for r in rows.to_dict("records")]
        checked, failed = sum(i["checked"] for i in instances), sum(i["failed"] for i in instances)
        success, severity = all(i["success"] for i in instances), rows["severity"].iloc[0]
        groups.append(dict(expectation=name, severity=severity, description=_description(name, instances), instances=instances,
                           success=success, checked=checked, failed=failed,
                           rate="–" if not checked else f"{100 * (1 - failed / checked):.1f}%",
                           mark="✔" if success else ("✘" if severity == "error" else "⚠"),
                           css="ok" if success else "ko" if severity == "error" else "warn"))
    return sorted(groups, key=lambda g: (g["success"], g["expectation"]))


def _failures(data: ReportData) -> dict:
    f = data.facts
    bad = f[f["dq_status"].isin(["error", "warning"])] if not f.empty else f
    sources = dict(zip(data.documents["doc_id"], data.documents["source_path"])) if not data.documents.empty else {}
    items = []
    for r in ([] if bad.empty else bad.sort_values(["dq_status", "region", "indicator"]).head(MAX_FLAGGED).to_dict("records")):
        failed = [s for s in (r["dq_failed"] or "").split(",") if s]
        items.append(dict(r, reasons=data.messages.get(r["fact_id"]) or failed, failed=failed, source=sources.get(r["doc_id"], r["doc_id"]),
                          evidence=evidence_parts(data.texts.get(r["doc_id"], ""), int(r["start"]), int(r["end"]), r["evidence"], r["value"])))
    return dict(entries=items, total=len(bad), quarantined=int((bad["dq_status"] == "error").sum()) if not bad.empty else 0)


def _conflicts(data: ReportData) -> dict:
    docs = data.documents.set_index("doc_id") if not data.documents.empty else pd.DataFrame()
    facts = data.facts.set_index("fact_id") if not data.facts.empty else pd.DataFrame()
    items = []
    for r in data.conflicts.head(MAX_CONFLICTS).to_dict("records"):
        sides = []
        for side in ("left", "right"):
            fid, doc = r[f"{side}_fact_id"], r[f"{side}_doc_id"]
            fact = facts.loc[fid] if fid in facts.index else None
            evidence = (evidence_parts(data.texts.get(doc, ""), int(fact["start"]), int(fact["end"]), fact["evidence"], fact["value"])
                        if fact is not None else evidence_parts("", 0, 0, r[f"{side}_evidence"], None))
            sides.append(dict(value=r[f"{side}_value"], unit=r[f"{side}_unit"], qualifier=r[f"{side}_qualifier"],
                              status=fact["dq_status"] if fact is not None else None, evidence=evidence,
                              source=filename(docs.loc[doc, "source_path"]) if doc in docs.index else doc[:12],
                              report_year=docs.loc[doc, "report_year"] if doc in docs.index else None))
        items.append(dict(r, sides=sides))
    return dict(entries=items, total=len(data.conflicts))


def _targets(data: ReportData) -> dict:
    """The view's rows that have an actual (shown), and how many targets still wait for the next report."""
    if data.targets is None:
        return dict(rows=None, pending=0)
    rows = [r for r in data.targets if not missing(r["actual"])]
    return dict(rows=rows, pending=len(data.targets) - len(rows))


def coverage(documents: pd.DataFrame, facts: pd.DataFrame) -> pd.DataFrame:
    """Per local report: has it a published GDP level and GDP growth for its review year (Y-1), and any target for Y?

    A report that lacks them is where a user's panel will have holes; listing them
    tells whether the hole is in the report or in the extraction.
    """
    cols = ["doc_id", "source_path", "region", "report_year", "gdp_level", "gdp_growth", "targets"]
    if documents.empty or "doc_type" not in documents:
        return pd.DataFrame(columns=cols)
    local = documents[(documents["doc_type"] == "local_work_report") & documents["report_year"].notna()]
    years = [int(y) for y in local["report_year"].tolist()]
    review = dict(zip(local["doc_id"].tolist(), (str(y - 1) for y in years)))
    pub = facts[(facts["dq_status"] != "error") & facts["doc_id"].isin(review)] if not facts.empty else facts
    level, growth, targets = set(), set(), {}
    if not pub.empty:  # one pass over the facts, not one scan per report: a warehouse holds thousands of reports
        gdp = pub[(pub["indicator"] == "gdp") & (pub["kind"] == "actual")]
        gdp = gdp[[review[d] == p for d, p in zip(gdp["doc_id"].tolist(), gdp["period"].tolist())]]
        level = set(gdp.loc[gdp["measure"] == "level", "doc_id"].tolist())
        growth = set(gdp.loc[gdp["measure"] == "growth", "doc_id"].tolist())
        targets = pub.loc[pub["kind"] == "target", "doc_id"].value_counts().to_dict()
    docs = local["doc_id"].tolist()
    return pd.DataFrame(dict(doc_id=docs, source_path=local["source_path"].tolist(), region=local["region"].tolist(),
                             report_year=years, gdp_level=[d in level for d in docs], gdp_growth=[d in growth for d in docs],
                             targets=[int(targets.get(d, 0)) for d in docs]), columns=cols)


def _coverage(data: ReportData) -> dict | None:
    cov = coverage(data.documents, data.facts)
    if cov.empty:
        return None
    gaps = cov[~cov["gdp_level"] | ~cov["gdp_growth"] | (cov["targets"] == 0)]
    return dict(reports=len(cov), gdp_level=int(cov["gdp_level"].sum()), gdp_growth=int(cov["gdp_growth"].sum()),
                with_targets=int((cov["targets"] > 0).sum()), gaps=gaps.to_dict("records"))


def _without_facts(data: ReportData) -> list[dict] | None:
    """Documents loaded without a single fact and why; None for a warehouse that does not record the reason."""
    d = data.documents
    if d.empty or "no_facts_reason" not in d:
        return None
    return d[d["no_facts_reason"].notna() & (d["n_facts"] == 0)].to_dict("records")


def _documents(data: ReportData) -> dict:
    d, f = data.documents, data.facts
    if not f.empty:  # only the first documents show their facts: group those, not a warehouse's every fact
        f = f[f["doc_id"].isin(set(d["doc_id"].head(MAX_DOCUMENT_TABLES).tolist()))] if "doc_id" in d else f.head(0)
    by_doc = {k: g.to_dict("records") for k, g in f.groupby("doc_id", sort=False)} if not f.empty else {}
    items = []
    for i, r in enumerate(d.head(MAX_DOCUMENTS).to_dict("records")):
        counts = f"{int(r['n_facts'])} facts: {int(r['n_passed'])} passed, {int(r['n_warning'])} warned, {int(r['n_error'])} quarantined"
        if not int(r["n_facts"]) and isinstance(r.get("no_facts_reason"), str):
            counts = f"no facts: {r['no_facts_reason']}"
        items.append(dict(r, counts=counts, facts=by_doc.get(r["doc_id"], []) if i < MAX_DOCUMENT_TABLES else None))
    return dict(entries=items, total=len(d))


def render_html(data: ReportData) -> str:
    """The whole report page as one string (inline CSS, JS and SVG)."""
    failures = _failures(data)
    return environment().get_template("report.html.j2").render(
        warehouse=data.warehouse, generated=data.generated, nav=NAV, **_summary(data),
        expectations=expectation_groups(data.results, {f["fact_id"] for f in failures["entries"]}),
        instances=len(data.results), chart=pass_rate_chart(data.history),
        history_snapshots=data.history["snapshot_id"].nunique() if not data.history.empty else 0,
        failures=failures, conflicts=_conflicts(data), targets=_targets(data), coverage=_coverage(data),
        without_facts=_without_facts(data), documents=_documents(data),
        files=data.files.to_dict("records") if not data.files.empty else [])


def write_report(settings: Settings, out: Path) -> ReportPaths:
    """Write the report page (and report.json, its figures for scripts) under ``out``; return where it is."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = load_report_data(settings)
    index = out / "index.html"
    index.write_text(render_html(data), encoding="utf-8")
    (out / "report.json").write_text(json.dumps(dict(
        run=data.run and {k: str(v) for k, v in data.run.items()}, documents=len(data.documents), facts=len(data.facts),
        flagged=int(data.facts["dq_status"].isin(["error", "warning"]).sum()) if not data.facts.empty else 0,
        conflicts=len(data.conflicts), targets_vs_actuals=len(_targets(data)["rows"] or [])), ensure_ascii=False, indent=2))
    return ReportPaths(index=index)
