"""The data-quality report: one self-contained HTML page plus GX Data Docs, opened from disk.

``write_report(settings, out)`` reads the warehouse (read-only), builds GX Data
Docs for the latest validation under ``out/gx`` and writes ``out/index.html``:

* the latest run at a glance (documents, facts published / warned / quarantined);
* every expectation with its plain-language description and result;
* pass rates per expectation across snapshots (an inline SVG chart);
* every failed or warned fact with the reasons and its evidence highlighted in
  the document text;
* conflicts across documents, side by side;
* targets against actuals where both exist;
* per document, what was extracted; and the files that never became documents.

Everything (CSS, JS, SVG) is inline: no server, no network, no CDN.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from expectations.derive import YEAR, find_conflicts
from transforms.settings import Settings
from warehouse import quality

CONTEXT_CHARS = 70  # characters of document text shown on each side of an evidence
HISTORY_SNAPSHOTS = 16  # columns of the pass-rate chart
# A page a person reads, not a dump: past these the page says how many more there are and how to query them.
MAX_FLAGGED = 500  # failed or warned facts shown with their evidence (quarantined first)
MAX_CONFLICTS = 200
MAX_DOCUMENTS = 1000  # documents listed
MAX_DOCUMENT_TABLES = 300  # documents listed with their extracted facts


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
    targets: pd.DataFrame
    files: pd.DataFrame
    data_docs: str | None = None  # path of the GX Data Docs index, relative to the page
    generated: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


@dataclass(frozen=True)
class ReportPaths:
    """Where the report was written."""

    index: Path
    data_docs: Path | None


# --- pure data shaping ---------------------------------------------------------------------------

TARGET_COLUMNS = ["region", "indicator", "measure", "year", "target", "target_unit", "target_qualifier", "actual",
                  "actual_unit", "gap", "gap_unit", "met", "target_evidence", "actual_evidence"]


def targets_vs_actuals(facts: pd.DataFrame) -> pd.DataFrame:
    """Each published target of year Y (from the report of year Y) beside the actual for Y (from the report of Y+1).

    The same rule as the warehouse view ``targets_vs_actuals``, for a warehouse that
    predates it: met when the actual is at least the target, at most for a cap (以内).
    """
    if facts.empty:
        return pd.DataFrame(columns=TARGET_COLUMNS)
    ok = facts[(facts["dq_status"] != "error") & facts["period"].astype(str).str.match(YEAR)].copy()
    ok["year"] = ok["period"].astype(int)
    tgt = ok[(ok["kind"] == "target") & (ok["year"] == ok["report_year"])]
    act = ok[(ok["kind"] == "actual") & (ok["year"] == ok["report_year"] - 1)]
    both = tgt.merge(act, on=["region", "indicator", "measure", "year", "unit_base"], suffixes=("_t", "_a"))
    rows = []
    for r in both.itertuples(index=False):
        cap = r.qualifier_t == "以内"
        met = r.value_base_a <= r.value_base_t if cap else r.value_base_a >= r.value_base_t
        same = r.unit_t == r.unit_a
        rows.append(dict(region=r.region, indicator=r.indicator, measure=r.measure, year=r.year, target=r.value_t,
                         target_unit=r.unit_t, target_qualifier=r.qualifier_t, actual=r.value_a, actual_unit=r.unit_a,
                         gap=r.value_a - r.value_t if same else None,
                         gap_unit=("pp" if r.unit_t == "%" else r.unit_t) if same else None, met=bool(met),
                         target_evidence=r.evidence_t, actual_evidence=r.evidence_a))
    return pd.DataFrame(rows, columns=TARGET_COLUMNS).drop_duplicates(subset=["region", "indicator", "measure", "year"])


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
        conflicts=conflicts, targets=_targets_frame(settings, facts), files=quality.quarantined_files(settings))


def _targets_frame(settings: Settings, facts: pd.DataFrame) -> pd.DataFrame:
    """Targets with an actual: from the warehouse view when it exists, else computed here."""
    view = quality.targets_with_actuals(settings, TARGET_COLUMNS)
    return _nulls(view) if view is not None else targets_vs_actuals(facts)


def _nulls(df: pd.DataFrame) -> pd.DataFrame:
    """Text columns with None for SQL NULL (pandas reads them as NaN, which is truthy)."""
    for c in df.columns:
        if not (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])):
            df[c] = df[c].astype(object).where(df[c].notna(), None)
    return df


POOL_FOR_CONFLICTS = ["fact_id", "doc_id", "region", "indicator", "measure", "value", "unit", "value_base", "unit_base",
                      "period", "kind", "qualifier", "evidence", "start", "end", "report_year"]


# --- HTML pieces ---------------------------------------------------------------------------------

def esc(value: object) -> str:
    """HTML-escaped text; NULLs are an empty string."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value))


def num(value: object) -> str:
    """A number as written in reports (no trailing .0)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:g}" if isinstance(value, (int, float)) else esc(value)


def badge(status: str) -> str:
    label = {"error": "quarantined", "warning": "warning", "passed": "passed"}.get(status, status)
    return f'<span class="badge {esc(status)}">{esc(label)}</span>'


def highlight(text: str, start: int, end: int, evidence: str, value: float | None) -> str:
    """The evidence in its surrounding text: the clause marked, the fact's number in bold."""
    if text and 0 <= start < end <= len(text) and text[start:end] == evidence:
        before = text[max(0, start - CONTEXT_CHARS):start]
        after = text[end:end + CONTEXT_CHARS]
        lead = "…" if start > CONTEXT_CHARS else ""
        tail = "…" if end + CONTEXT_CHARS < len(text) else ""
    else:  # offsets do not match the text: show the evidence alone
        before = after = lead = tail = ""
    body = esc(evidence)
    if value is not None and not (isinstance(value, float) and math.isnan(value)):
        pattern = re.escape(f"{value:g}")
        body = re.sub(rf"(?<![\d.]){pattern}(?![\d])", lambda m: f"<b>{m.group(0)}</b>", body, count=1)
    return (f'<span class="ctx">{lead}{esc(before)}</span><mark>{body}</mark>'
            f'<span class="ctx">{esc(after)}{tail}</span>').replace("\n", " ")


def _color(rate: float | None) -> str:
    if rate is None or (isinstance(rate, float) and math.isnan(rate)):
        return "#e4e7ec"
    if rate >= 0.9995:
        return "#2e9d5b"
    if rate >= 0.95:
        return "#9bcf6a"
    if rate >= 0.8:
        return "#f2b84b"
    return "#d9534f"


def pass_rate_chart(history: pd.DataFrame) -> str:
    """Inline SVG: one row per expectation, one cell per snapshot, coloured and labelled by pass rate."""
    if history.empty:
        return '<p class="muted">No validation results yet.</p>'
    snaps = sorted(history["snapshot_id"].unique())[-HISTORY_SNAPSHOTS:]
    names = sorted(history["expectation"].unique())
    label_w, cell_w, cell_h, top = 380, 58, 22, 34
    width = label_w + cell_w * len(snaps) + 20
    height = top + cell_h * len(names) + 10
    rates = {(r.expectation, r.snapshot_id): (r.pass_rate, r.checked, r.failed) for r in history.itertuples(index=False)}
    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="Pass rate per expectation across snapshots">']
    for j, s in enumerate(snaps):
        x = label_w + j * cell_w + cell_w / 2
        parts.append(f'<text x="{x}" y="{top - 12}" text-anchor="middle" class="axis">snap {int(s)}</text>')
    for i, name in enumerate(names):
        y = top + i * cell_h
        parts.append(f'<text x="{label_w - 8}" y="{y + cell_h * 0.68}" text-anchor="end" class="label">{esc(name)}</text>')
        for j, s in enumerate(snaps):
            rate, checked, failed = rates.get((name, s), (None, 0, 0))
            x = label_w + j * cell_w
            missing = rate is None or (isinstance(rate, float) and math.isnan(rate))
            text = "–" if missing else f"{100 * rate:.0f}%" if rate < 1 else "100%"
            tip = f"{name} · snapshot {int(s)}: " + ("nothing to check" if missing else f"{int(checked) - int(failed)}/{int(checked)} facts passed")
            parts.append(f'<g><title>{esc(tip)}</title><rect x="{x + 2}" y="{y + 2}" width="{cell_w - 4}" height="{cell_h - 4}" '
                         f'rx="3" fill="{_color(None if missing else rate)}"/>'
                         f'<text x="{x + cell_w / 2}" y="{y + cell_h * 0.68}" text-anchor="middle" class="cell">{text}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def _summary(data: ReportData) -> str:
    f = data.facts
    n = lambda status: int((f["dq_status"] == status).sum()) if not f.empty else 0  # noqa: E731
    run = data.run or {}
    cards = [("documents", len(data.documents)), ("facts", len(f)), ("published", n("passed") + n("warning")),
             ("warned", n("warning")), ("quarantined facts", n("error")), ("quarantined files", len(data.files)),
             ("expectations passed", run.get("expectations_passed", "–")), ("expectations failed", run.get("expectations_failed", "–"))]
    boxes = "".join(f'<div class="card {"bad" if ("quarantined" in k or k == "expectations failed") and v not in (0, "–") else ""}">'
                    f'<div class="big">{esc(v)}</div><div>{esc(k)}</div></div>' for k, v in cards)
    meta = (f"latest validated run <code>{esc(run.get('run_id'))}</code> · snapshot {esc(run.get('snapshot_id'))} · "
            f"finished {esc(str(run.get('finished_at', ''))[:19])}") if run else "no validated run yet"
    return f'<section id="summary"><h2>At a glance</h2><p class="muted">{meta}</p><div class="cards">{boxes}</div></section>'


def _expectations(data: ReportData) -> str:
    if data.results.empty:
        return '<section id="expectations"><h2>Expectations</h2><p class="muted">No results.</p></section>'
    r = data.results
    groups = r.groupby("expectation", sort=False).agg(
        description=("description", "first"), severity=("severity", "first"), scopes=("scope", "nunique"),
        checked=("element_count", "sum"), failed=("unexpected_count", "sum"), success=("success", "all")).reset_index()
    groups["order"] = groups["success"].astype(int)
    rows = []
    for g in groups.sort_values(["order", "expectation"]).itertuples(index=False):
        rate = "–" if not g.checked else f"{100 * (1 - g.failed / g.checked):.1f}%"
        detail = r[(r["expectation"] == g.expectation) & (~r["success"])]
        sub = "".join(f"<li>{esc(d.scope)}: {int(d.unexpected_count)} of {int(d.element_count)} failed</li>" for d in detail.itertuples())
        mark = "✔" if g.success else ("✘" if g.severity == "error" else "⚠")
        rows.append(f'<tr class="{"ok" if g.success else "ko" if g.severity == "error" else "warn"}"><td>{mark}</td>'
                    f'<td><code>{esc(g.expectation)}</code><div class="desc">{esc(g.description if g.scopes == 1 else _generic(g.expectation, g.description))}</div>'
                    f'{f"<ul>{sub}</ul>" if sub else ""}</td><td><span class="sev {esc(g.severity)}">{esc(g.severity)}</span></td>'
                    f'<td class="n">{int(g.scopes)}</td><td class="n">{int(g.checked)}</td><td class="n">{int(g.failed)}</td><td class="n">{rate}</td></tr>')
    docs = (f' · <a href="{esc(data.data_docs)}">GX Data Docs of this validation</a>' if data.data_docs else "")
    return (f'<section id="expectations"><h2>Expectations of the latest validation</h2>'
            f'<p class="muted">{len(groups)} expectations ({len(r)} with their per-indicator instances); '
            f'<b>error</b> quarantines a fact, <b>warning</b> publishes it with a flag{docs}.</p>'
            '<table><thead><tr><th></th><th>expectation</th><th>severity</th><th class="n">instances</th>'
            '<th class="n">facts checked</th><th class="n">failed</th><th class="n">pass rate</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></section>')


def _generic(name: str, description: str) -> str:
    """A per-indicator description without its indicator (the class description of the expectation)."""
    from expectations import custom  # noqa: PLC0415

    for cls in custom.ALL_EXPECTATIONS:
        if cls.expectation_type == name:
            return cls.__fields__["description"].default
    return description


def _history(data: ReportData) -> str:
    snaps = data.history["snapshot_id"].nunique() if not data.history.empty else 0
    return (f'<section id="history"><h2>Pass rates across snapshots</h2><p class="muted">Share of checked facts that '
            f'passed each expectation, per snapshot that loaded data ({snaps} so far; hover a cell for counts).</p>'
            f'<div class="scroll">{pass_rate_chart(data.history)}</div></section>')


def _failures(data: ReportData) -> str:
    f = data.facts
    bad = f[f["dq_status"].isin(["error", "warning"])] if not f.empty else f
    docs = data.documents.set_index("doc_id") if not data.documents.empty else pd.DataFrame()
    if bad.empty:
        body = '<p class="muted">Every fact passed every expectation.</p>'
    else:
        items = []
        shown = bad.sort_values(["dq_status", "region", "indicator"]).head(MAX_FLAGGED)
        if len(bad) > len(shown):
            items.append(_more(len(shown), len(bad), "flagged facts",
                               "SELECT * FROM facts WHERE dq_status <> 'passed'"))
        for r in shown.itertuples(index=False):
            reasons = data.messages.get(r.fact_id) or [s for s in (r.dq_failed or "").split(",") if s]
            source = docs.loc[r.doc_id, "source_path"] if r.doc_id in docs.index else r.doc_id
            items.append(
                f'<article class="fact {esc(r.dq_status)}" data-fact="{esc(r.fact_id)}"><header>{badge(r.dq_status)} '
                f'<b>{esc(r.region)}</b> · {esc(r.indicator)} {esc(r.measure)} <b>{num(r.value)}{esc(r.unit)}</b> '
                f'· {esc(r.period)} · {esc(r.kind)}{(" · " + esc(r.qualifier)) if r.qualifier else ""}</header>'
                f'<ul class="reasons">{"".join(f"<li>{esc(m)}</li>" for m in reasons)}</ul>'
                f'<p class="evidence">{highlight(data.texts.get(r.doc_id, ""), int(r.start), int(r.end), r.evidence, r.value)}</p>'
                f'<footer>{esc(Path(str(source)).name)} · expectations: {esc((r.dq_failed or "").replace(",", ", "))}</footer></article>')
        body = "".join(items)
    n_err = int((bad["dq_status"] == "error").sum()) if not bad.empty else 0
    return (f'<section id="failures"><h2>Failed and warned facts</h2><p class="muted">{n_err} quarantined (not published), '
            f'{len(bad) - n_err} published with a warning. The evidence is marked in the document text; the number in bold.</p>{body}</section>')


def _conflicts(data: ReportData) -> str:
    c = data.conflicts
    if c.empty:
        body = '<p class="muted">No two documents disagree on the same region, indicator, period, kind and measure.</p>'
    else:
        docs = data.documents.set_index("doc_id") if not data.documents.empty else pd.DataFrame()
        facts = data.facts.set_index("fact_id") if not data.facts.empty else pd.DataFrame()
        rows = [_more(MAX_CONFLICTS, len(c), "conflicts", "")] if len(c) > MAX_CONFLICTS else []
        for r in c.head(MAX_CONFLICTS).itertuples(index=False):
            sides = []
            for side in ("left", "right"):
                fid, doc = getattr(r, f"{side}_fact_id"), getattr(r, f"{side}_doc_id")
                f = facts.loc[fid] if fid in facts.index else None
                src = Path(str(docs.loc[doc, "source_path"])).name if doc in docs.index else doc[:12]
                year = docs.loc[doc, "report_year"] if doc in docs.index else ""
                ev = (highlight(data.texts.get(doc, ""), int(f["start"]), int(f["end"]), f["evidence"], f["value"])
                      if f is not None else esc(getattr(r, f"{side}_evidence")))
                status = badge(f["dq_status"]) if f is not None else ""
                sides.append(f'<div class="side"><div class="val">{num(getattr(r, f"{side}_value"))}{esc(getattr(r, f"{side}_unit"))} '
                             f'{esc(getattr(r, f"{side}_qualifier") or "")} {status}</div><p class="evidence">{ev}</p>'
                             f'<footer>{esc(src)} (report {num(year)})</footer></div>')
            rows.append(f'<div class="conflict"><h3>{esc(r.region)} · {esc(r.indicator)} {esc(r.measure)} · {esc(r.period)} · {esc(r.kind)}</h3>'
                        f'<div class="pair">{"".join(sides)}</div></div>')
        body = "".join(rows)
    return f'<section id="conflicts"><h2>Conflicts across documents</h2>{body}</section>'


def _targets(data: ReportData) -> str:
    t = data.targets
    if t.empty:
        body = ('<p class="muted">No target has a matching actual yet: the target a report sets for its year is met or '
                'missed by the report of the next year on the same region.</p>')
    else:
        rows = "".join(
            f'<tr><td>{esc(r.region)}</td><td>{esc(r.indicator)}</td><td>{esc(r.measure)}</td><td>{esc(r.year)}</td>'
            f'<td class="n" title="{esc(r.target_evidence)}">{num(r.target)}{esc(r.target_unit)} {esc(r.target_qualifier or "")}</td>'
            f'<td class="n" title="{esc(r.actual_evidence)}">{num(r.actual)}{esc(r.actual_unit)}</td>'
            f'<td class="n">{"" if r.gap is None or pd.isna(r.gap) else f"{r.gap:+.4g} {esc(r.gap_unit)}"}</td>'
            f'<td class="{"ok" if r.met else "ko"}">{"met" if r.met else "missed"}</td></tr>' for r in t.itertuples(index=False))
        body = ('<table><thead><tr><th>region</th><th>indicator</th><th>measure</th><th>year</th><th class="n">target</th>'
                f'<th class="n">actual</th><th class="n">gap</th><th>outcome</th></tr></thead><tbody>{rows}</tbody></table>')
    return f'<section id="targets"><h2>Targets versus actuals</h2>{body}</section>'


def coverage(documents: pd.DataFrame, facts: pd.DataFrame) -> pd.DataFrame:
    """Per local report: has it a published GDP level and GDP growth for its review year (Y-1), and any target for Y?

    A report that lacks them is where a user's panel will have holes; listing them
    tells whether the hole is in the report or in the extraction.
    """
    cols = ["doc_id", "source_path", "region", "report_year", "gdp_level", "gdp_growth", "targets"]
    if documents.empty or "doc_type" not in documents:
        return pd.DataFrame(columns=cols)
    local = documents[(documents["doc_type"] == "local_work_report") & documents["report_year"].notna()]
    pub = facts[facts["dq_status"] != "error"] if not facts.empty else facts
    rows = []
    for d in local.itertuples(index=False):
        mine = pub[pub["doc_id"] == d.doc_id] if not pub.empty else pub
        review = str(int(d.report_year) - 1)
        gdp = mine[(mine["indicator"] == "gdp") & (mine["period"] == review) & (mine["kind"] == "actual")] if not mine.empty else mine
        rows.append(dict(doc_id=d.doc_id, source_path=d.source_path, region=d.region, report_year=int(d.report_year),
                         gdp_level=bool((gdp["measure"] == "level").any()) if not gdp.empty else False,
                         gdp_growth=bool((gdp["measure"] == "growth").any()) if not gdp.empty else False,
                         targets=int((mine["kind"] == "target").sum()) if not mine.empty else 0))
    return pd.DataFrame(rows, columns=cols)


def _coverage(data: ReportData) -> str:
    cov = coverage(data.documents, data.facts)
    if cov.empty:
        return ""
    gaps = cov[~cov["gdp_level"] | ~cov["gdp_growth"] | (cov["targets"] == 0)]
    head = (f"<p>{len(cov)} local reports: {int(cov['gdp_level'].sum())} with a GDP level for their review year, "
            f"{int(cov['gdp_growth'].sum())} with GDP growth, {int((cov['targets'] > 0).sum())} with targets.</p>")
    if gaps.empty:
        return f'<section id="coverage"><h2>Coverage</h2>{head}<p class="muted">No gaps.</p></section>'
    yes = lambda b: "yes" if b else '<b class="ko">missing</b>'  # noqa: E731
    rows = "".join(f'<tr><td>{esc(r.region or "")}</td><td>{num(r.report_year)}</td><td>{esc(Path(str(r.source_path)).name)}</td>'
                   f'<td>{yes(r.gdp_level)}</td><td>{yes(r.gdp_growth)}</td><td class="n">{r.targets}</td></tr>'
                   for r in gaps.itertuples(index=False))
    return (f'<section id="coverage"><h2>Coverage: reports with gaps ({len(gaps)})</h2>{head}'
            '<table><thead><tr><th>region</th><th>report</th><th>file</th><th>GDP level (Y-1)</th><th>GDP growth (Y-1)</th>'
            f'<th class="n">targets</th></tr></thead><tbody>{rows}</tbody></table></section>')


def _without_facts(data: ReportData) -> str:
    """Documents loaded without a single fact, each with the reason (never an empty row that looks like success)."""
    d = data.documents
    if d.empty or "no_facts_reason" not in d:
        return ""
    none = d[d["no_facts_reason"].notna() & (d["n_facts"] == 0)]
    if none.empty:
        return ('<section id="nofacts"><h2>Documents without facts</h2><p class="muted">Every document loaded yielded facts.</p></section>')
    rows = "".join(f'<tr><td>{esc(Path(str(r.source_path)).name)}</td><td>{esc(r.doc_type or "")}</td><td>{esc(r.region or "")}</td>'
                   f'<td>{num(r.report_year)}</td><td>{esc(r.no_facts_reason)}</td></tr>' for r in none.itertuples(index=False))
    return (f'<section id="nofacts"><h2>Documents without facts ({len(none)})</h2>'
            '<table><thead><tr><th>file</th><th>what it is</th><th>region</th><th>year</th><th>why it has no facts</th></tr></thead>'
            f'<tbody>{rows}</tbody></table></section>')


def _documents(data: ReportData) -> str:
    d, f = data.documents, data.facts
    if d.empty:
        return '<section id="documents"><h2>Documents</h2><p class="muted">No documents loaded.</p></section>'
    blocks = [_more(MAX_DOCUMENTS, len(d), "documents", "SELECT * FROM documents")] if len(d) > MAX_DOCUMENTS else []
    by_doc = dict(tuple(f.groupby("doc_id", sort=False))) if not f.empty else {}
    for i, r in enumerate(d.head(MAX_DOCUMENTS).itertuples(index=False)):
        mine = by_doc.get(r.doc_id, f.head(0)) if i < MAX_DOCUMENT_TABLES else f.head(0)
        rows = "".join(
            f'<tr class="{esc(x.dq_status)}"><td>{esc(x.indicator)}</td><td>{esc(x.measure)}</td><td class="n">{num(x.value)}</td>'
            f'<td>{esc(x.unit)}</td><td>{esc(x.period)}</td><td>{esc(x.kind)}</td><td>{esc(x.qualifier or "")}</td>'
            f'<td>{badge(x.dq_status)}</td><td class="ev">{esc(x.evidence)}</td></tr>' for x in mine.itertuples(index=False))
        if i >= MAX_DOCUMENT_TABLES:
            rows = (f'<tr><td colspan="9" class="muted">not listed on this page: <code>govfacts sql "SELECT * FROM facts '
                    f"WHERE doc_id = '{esc(r.doc_id)}'\"</code></td></tr>")
        counts = f"{int(r.n_facts)} facts: {int(r.n_passed)} passed, {int(r.n_warning)} warned, {int(r.n_error)} quarantined"
        if not int(r.n_facts) and isinstance(r.no_facts_reason, str):
            counts = f"no facts: {r.no_facts_reason}"
        blocks.append(
            f'<details class="doc"><summary><b>{esc(r.region or "region unknown")}</b> · report {num(r.report_year)} · '
            f'{esc(Path(str(r.source_path)).name)} <span class="muted">({counts}; {esc(r.encoding)}, {num(r.n_bytes)} bytes)</span></summary>'
            '<table class="facts"><thead><tr><th>indicator</th><th>measure</th><th class="n">value</th><th>unit</th><th>period</th>'
            f'<th>kind</th><th>qualifier</th><th>status</th><th>evidence</th></tr></thead><tbody>{rows}</tbody></table></details>')
    return (f'<section id="documents"><h2>Documents and what was extracted</h2>'
            f'<p><input id="filter" type="search" placeholder="filter facts (indicator, region, value…)"> '
            f'<button type="button" id="expand">expand all</button></p>{"".join(blocks)}</section>')


def _more(shown: int, total: int, what: str, sql: str) -> str:
    """The note a capped list carries: how many are not shown and where to find them."""
    where = f" (all of them: <code>govfacts sql \"{esc(sql)}\"</code>)" if sql else ""
    return f'<p class="muted">Showing {shown} of {total} {what}{where}.</p>'


def _files(data: ReportData) -> str:
    if data.files.empty:
        return '<section id="files"><h2>Quarantined files</h2><p class="muted">Every input file became a document.</p></section>'
    rows = "".join(f'<tr><td>{esc(Path(str(r.source_path)).name)}</td><td>{esc(r.stage)}</td><td>{esc(r.reason)}</td>'
                   f'<td>{esc(r.detail)}</td></tr>' for r in data.files.itertuples(index=False))
    return ('<section id="files"><h2>Quarantined files</h2><table><thead><tr><th>file</th><th>stage</th><th>reason</th>'
            f'<th>detail</th></tr></thead><tbody>{rows}</tbody></table></section>')


CSS = """
:root{--ink:#1f2933;--muted:#667085;--line:#d9dee5;--bg:#f6f7f9;--ok:#067647;--ko:#b42318;--warn:#b54708}
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC","WenQuanYi Zen Hei",sans-serif;color:var(--ink);background:var(--bg)}
header.top{background:#1f2933;color:#fff;padding:18px 32px}header.top h1{margin:0;font-size:22px}header.top p{margin:4px 0 0;color:#cbd2d9}
nav{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--line);padding:8px 32px}nav a{margin-right:16px;color:#1d5fbf;text-decoration:none}
main{padding:8px 32px 48px;max-width:1500px}section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 20px;margin:18px 0}
h2{font-size:19px;margin:4px 0 8px}h3{font-size:15px;margin:6px 0}.muted{color:var(--muted)}code{background:#f0f2f5;padding:1px 4px;border-radius:3px}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid var(--line);border-radius:8px;padding:8px 14px;min-width:120px;background:#fbfcfd}
.card .big{font-size:26px;font-weight:700}.card.bad .big{color:var(--ko)}
table{border-collapse:collapse;width:100%;font-size:14px}th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f2f4f7;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tr.ko td:first-child,td.ko{color:var(--ko);font-weight:600}tr.warn td:first-child{color:var(--warn);font-weight:600}tr.ok td:first-child,td.ok{color:var(--ok);font-weight:600}
.desc{color:var(--muted);font-size:13px}ul{margin:4px 0 0 18px;padding:0}
.sev{padding:1px 6px;border-radius:4px;font-size:12px}.sev.error{background:#fee4e2;color:var(--ko)}.sev.warning{background:#fef0c7;color:var(--warn)}
.badge{display:inline-block;padding:1px 7px;border-radius:10px;font-size:12px;font-weight:600}.badge.error{background:#fee4e2;color:var(--ko)}
.badge.warning{background:#fef0c7;color:var(--warn)}.badge.passed{background:#dcfae6;color:var(--ok)}
article.fact{border-left:4px solid var(--warn);background:#fffcf5;padding:8px 12px;margin:10px 0;border-radius:4px}article.fact.error{border-color:var(--ko);background:#fff8f7}
article.fact footer,.side footer{color:var(--muted);font-size:12px}.reasons li{margin:2px 0}
.evidence{margin:6px 0;line-height:1.8}.evidence .ctx{color:#98a2b3}mark{background:#fff3a3;padding:1px 2px;border-radius:2px}mark b{color:var(--ko)}
.conflict{border-top:1px solid var(--line);padding-top:6px}.pair{display:grid;grid-template-columns:1fr 1fr;gap:14px}.side{border:1px solid var(--line);border-radius:6px;padding:8px 10px}
.side .val{font-size:18px;font-weight:700}
.scroll{overflow-x:auto}svg.chart text{font:12px system-ui,sans-serif;fill:#1f2933}svg.chart text.cell{fill:#fff;font-weight:600}svg.chart text.axis{fill:#667085}
details.doc{border-top:1px solid var(--line);padding:6px 0}details.doc summary{cursor:pointer}table.facts td.ev{color:var(--muted);font-size:13px}
table.facts tr.error td{background:#fff4f3}table.facts tr.warning td{background:#fffaeb}
input[type=search]{padding:5px 8px;width:320px;border:1px solid var(--line);border-radius:4px}button{padding:5px 10px}
"""

JS = """
(function(){
  var box=document.getElementById('filter'), btn=document.getElementById('expand');
  if(box){box.addEventListener('input',function(){
    var q=box.value.trim().toLowerCase();
    document.querySelectorAll('details.doc').forEach(function(d){
      var any=false; d.querySelectorAll('tbody tr').forEach(function(tr){
        var hit=!q||tr.textContent.toLowerCase().indexOf(q)>=0; tr.style.display=hit?'':'none'; any=any||hit;});
      d.style.display=any?'':'none'; if(q&&any){d.open=true;}
    });});}
  if(btn){btn.addEventListener('click',function(){
    var open=btn.textContent==='expand all';
    document.querySelectorAll('details.doc').forEach(function(d){d.open=open;});
    btn.textContent=open?'collapse all':'expand all';});}
})();
"""


def render_html(data: ReportData) -> str:
    """The whole report page as one string (inline CSS, JS and SVG)."""
    docs_link = f'<a href="{esc(data.data_docs)}">GX Data Docs</a>' if data.data_docs else ""
    nav = ("".join(f'<a href="#{k}">{v}</a>' for k, v in (
        ("summary", "Summary"), ("expectations", "Expectations"), ("history", "Pass rates"), ("failures", "Failed & warned facts"),
        ("conflicts", "Conflicts"), ("targets", "Targets vs actuals"), ("coverage", "Coverage"), ("nofacts", "Without facts"), ("documents", "Documents"), ("files", "Quarantined files"))) + docs_link)
    body = "".join(part(data) for part in (_summary, _expectations, _history, _failures, _conflicts, _targets, _coverage, _without_facts, _documents, _files))
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>govfacts data-quality report</title><style>{CSS}</style></head><body>"
            f'<header class="top"><h1>govfacts data-quality report</h1><p>warehouse {esc(data.warehouse)} · generated {esc(data.generated)}</p></header>'
            f"<nav>{nav}</nav><main>{body}</main><script>{JS}</script></body></html>")


def write_report(settings: Settings, out: Path) -> ReportPaths:
    """Build GX Data Docs and the report page under ``out``; return where they are."""
    from expectations.data_docs import build_data_docs  # noqa: PLC0415  (GX import is slow; only the report needs it)

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = load_report_data(settings)
    index_docs = None
    if data.run is not None and not data.results.empty:
        finished = data.run.get("finished_at")
        index_docs = build_data_docs(data.results.to_dict("records"), data.run["run_id"], data.run.get("snapshot_id"), out,
                                     run_time=finished.to_pydatetime() if hasattr(finished, "to_pydatetime") else finished)
    if index_docs is not None:
        data.data_docs = index_docs.relative_to(out).as_posix()
    index = out / "index.html"
    index.write_text(render_html(data), encoding="utf-8")
    (out / "report.json").write_text(json.dumps(dict(
        run=data.run and {k: str(v) for k, v in data.run.items()}, documents=len(data.documents), facts=len(data.facts),
        flagged=int(data.facts["dq_status"].isin(["error", "warning"]).sum()) if not data.facts.empty else 0,
        conflicts=len(data.conflicts), targets_vs_actuals=len(data.targets), data_docs=data.data_docs), ensure_ascii=False, indent=2))
    return ReportPaths(index=index, data_docs=index_docs)
