"""The Prefect artifact of a run's validation: what passed, what failed and why, in markdown.

Built from the run summary and the dq_results rows only (the flow streams facts
to disk, so the messages stored per expectation are what explains each failure).
"""

from __future__ import annotations

import json
from collections import defaultdict

MAX_MESSAGES = 12  # failure messages listed per expectation (the report lists them all)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def by_expectation(results: list[dict]) -> list[dict]:
    """One row per expectation name (per-indicator instances added up), failures first: the table artifact."""
    agg: dict[str, dict] = {}
    for r in results:
        a = agg.setdefault(r["expectation"], dict(expectation=r["expectation"], severity=r["severity"], instances=0,
                                                  checked=0, failed=0, success=True))
        a["instances"] += 1
        a["checked"] += int(r["element_count"] or 0)
        a["failed"] += int(r["unexpected_count"] or 0)
        a["success"] = a["success"] and bool(r["success"])
    rows = list(agg.values())
    for a in rows:
        a["pass_rate"] = round(100.0 * (1 - a["failed"] / a["checked"]), 1) if a["checked"] else None
    return sorted(rows, key=lambda a: (a["success"], a["expectation"]))


def validation_markdown(summary: dict, results: list[dict]) -> str:
    """Markdown summary of one run: counts in and out, expectations, and the reason of every failure."""
    s = summary
    reconciles = s["files_in"] == s["documents"] + s["skipped"] + s["duplicates"] + s["files_quarantined"]
    lines = [f"# govfacts run {s['run_id']}", "",
             f"**files in {s['files_in']}** = documents {s['documents']} + already loaded {s['skipped']} + duplicate names "
             f"{s['duplicates']} + quarantined files {s['files_quarantined']} → {'reconciles ✅' if reconciles else 'DOES NOT reconcile ❌'}", "",
             f"**facts {s['facts_extracted']}**: published {s['facts_published']} (of which {s['facts_warned']} with a warning), "
             f"quarantined {s['facts_quarantined']} · snapshot {s['snapshot_id']}", ""]
    for q in s.get("quarantined") or []:
        lines.append(f"- quarantined file `{_cell(q['source_path'])}`: {_cell(q['reason'])} — {_cell(q['detail'])}")
    for d in s.get("without_facts") or []:
        lines.append(f"- no facts from `{_cell(d['source_path'])}` ({_cell(d['doc_type'])}): {_cell(d['reason'])}")
    rows = by_expectation(results)
    lines += ["", f"## Expectations: {sum(r['success'] for r in rows)} of {len(rows)} passed", "",
              "| | expectation | severity | instances | facts checked | failed | pass rate |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        mark = "✅" if r["success"] else ("❌" if r["severity"] == "error" else "⚠️")
        rate = "–" if r["pass_rate"] is None else f"{r['pass_rate']}%"
        lines.append(f"| {mark} | `{r['expectation']}` | {r['severity']} | {r['instances']} | {r['checked']} | {r['failed']} | {rate} |")
    reasons: dict[str, list[str]] = defaultdict(list)
    for r in results:
        reasons[r["expectation"]].extend(json.loads(r.get("unexpected_messages") or "{}").values())
    failing = [(name, msgs) for name, msgs in reasons.items() if msgs]
    if failing:
        lines += ["", "## Why facts failed", ""]
        for name, msgs in sorted(failing):
            lines.append(f"**`{name}`** ({len(msgs)})")
            lines += [f"- {_cell(m)}" for m in msgs[:MAX_MESSAGES]]
            if len(msgs) > MAX_MESSAGES:
                lines.append(f"- … and {len(msgs) - MAX_MESSAGES} more (see `govfacts report`)")
            lines.append("")
    return "\n".join(lines)
