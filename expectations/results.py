"""The run's dq_results rows from results validated in groups: merged without importing GX.

A run validates its facts in groups of documents (one GX run each), possibly in another
process; the flow then needs one row per expectation. This module is plain JSON work, so
the flow's process can merge without paying for the GX import (2-3 s, 250 MB).
"""

from __future__ import annotations

import json


def merge_result_rows(groups: list[list[dict]]) -> list[dict]:
    """One dq_results row per expectation for a run validated in groups of documents.

    Counts add up, failed ids and messages are united, and the GX result JSON is
    merged the same way so Data Docs show the whole run. Rules across documents
    see the warehouse and their own group, so this equals one validation of the
    run except for documents of the same run that land in different groups.
    """
    merged: dict[tuple, dict] = {}
    for rows in groups:
        for r in rows:
            key = (r["suite"], r["expectation"], r["scope"], r["severity"], r["description"])
            m = merged.get(key)
            if m is None:
                merged[key] = dict(r)
                continue
            m["success"] = bool(m["success"] and r["success"])
            m["element_count"] += r["element_count"]
            m["unexpected_count"] += r["unexpected_count"]
            m["unexpected_fact_ids"] = json.dumps(json.loads(m["unexpected_fact_ids"]) + json.loads(r["unexpected_fact_ids"]))
            m["unexpected_messages"] = json.dumps({**json.loads(m.get("unexpected_messages") or "{}"),
                                                   **json.loads(r.get("unexpected_messages") or "{}")}, ensure_ascii=False)
            m["gx_result"] = _merge_gx(m.get("gx_result"), r.get("gx_result"))
    return list(merged.values())


def _merge_gx(a: str | None, b: str | None) -> str | None:
    """Two GX results of one expectation on different groups, as one (counts added, lists joined)."""
    if not a or not b:
        return a or b
    x, y = json.loads(a), json.loads(b)
    x["success"] = bool(x.get("success") and y.get("success"))
    rx, ry = x.setdefault("result", {}), y.get("result", {})
    for k in ("element_count", "unexpected_count", "missing_count"):
        if k in rx or k in ry:
            rx[k] = (rx.get(k) or 0) + (ry.get(k) or 0)
    for k in ("unexpected_list", "unexpected_index_list"):
        if k in rx or k in ry:
            rx[k] = (rx.get(k) or []) + (ry.get(k) or [])
    for k in ("partial_unexpected_list", "partial_unexpected_index_list"):
        if k in rx or k in ry:
            rx[k] = ((rx.get(k) or []) + (ry.get(k) or []))[:20]
    n = rx.get("element_count") or 0
    if n and "unexpected_count" in rx:
        rx["unexpected_percent"] = 100.0 * rx["unexpected_count"] / n
    return json.dumps(x, ensure_ascii=False, default=str)
