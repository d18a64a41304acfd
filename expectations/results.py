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
    merged the same way so the report shows the whole run. Rules across documents
    see the warehouse, the run's earlier groups and their own group, so this equals
    one validation of the run except that a conflict between two groups flags only
    the later group's fact (one validation would flag both).
    Each group's JSON is read once and the merged JSON written once (linear in the run's results).
    """
    merged: dict[tuple, dict] = {}
    parsed: dict[tuple, tuple[list, dict, dict | None]] = {}
    for rows in groups:
        for r in rows:
            key = (r["suite"], r["expectation"], r["scope"], r["severity"], r["description"])
            ids, messages = json.loads(r["unexpected_fact_ids"]), json.loads(r.get("unexpected_messages") or "{}")
            gx = json.loads(r["gx_result"]) if r.get("gx_result") else None
            m = merged.get(key)
            if m is None:
                merged[key], parsed[key] = dict(r), (ids, messages, gx)
                continue
            m["success"] = bool(m["success"] and r["success"])
            m["element_count"] += r["element_count"]
            m["unexpected_count"] += r["unexpected_count"]
            all_ids, all_messages, all_gx = parsed[key]
            all_ids.extend(ids)
            all_messages.update(messages)
            parsed[key] = (all_ids, all_messages, _merge_gx(all_gx, gx))
    for key, m in merged.items():
        ids, messages, gx = parsed[key]
        if len(groups) > 1:  # a row of one group stays exactly as GX and the validator wrote it
            m["unexpected_fact_ids"] = json.dumps(ids)
            m["unexpected_messages"] = json.dumps(messages, ensure_ascii=False)
            m["gx_result"] = json.dumps(gx, ensure_ascii=False, default=str) if gx is not None else m.get("gx_result")
    return list(merged.values())


def _merge_gx(x: dict | None, y: dict | None) -> dict | None:
    """Two GX results of one expectation on different groups, as one (counts added, lists joined)."""
    if not x or not y:
        return x or y
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
    return x
