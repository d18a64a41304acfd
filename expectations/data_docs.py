"""GX Data Docs for the latest validation, built into a local folder that opens from disk.

The flow validates in an ephemeral GX context and stores each expectation's GX
result as JSON in ``dq_results.gx_result``. Here the rows of one run are put back
together into an ``ExpectationSuiteValidationResult``, stored in a file-backed
context under ``<out>/gx`` and rendered by GX's own ``build_data_docs``.

GX's pages link Bootstrap, jQuery and Font Awesome from CDNs. The report must
open with no network, so every remote ``<link>``/``<script>`` is removed and a
small inline stylesheet takes Bootstrap's place (the pages are server-rendered
HTML, so nothing is lost but styling and table sorting).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from datetime import datetime
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations as gx  # noqa: E402
from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema  # noqa: E402
from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402
from great_expectations.data_context.types.resource_identifiers import (  # noqa: E402
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)

from expectations import custom  # noqa: E402,F401  (registers the govfacts expectation classes with GX)
from expectations.facts_suite import SUITE_NAME, build_checks  # noqa: E402

REMOTE_TAG = re.compile(r"<link[^>]+href=\"https?://[^>]*>|<script[^>]+src=\"https?://[^>]*>\s*</script>"
                        r"|<img[^>]+src=\"https?://[^>]*>|<iframe[^>]+src=\"https?://[^>]*>\s*</iframe>", re.I | re.S)
REMOTE_CSS_URL = re.compile(r"url\(\s*['\"]?https?://[^)]*\)", re.I)
OFFLINE_CSS = """<style id="govfacts-offline">
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC",sans-serif;margin:0;color:#1f2933;background:#f7f8fa}
.container-fluid,.container{padding:0 24px;max-width:1400px;margin:0 auto}
nav,.navbar{background:#1f2933;color:#fff;padding:10px 24px;margin-bottom:16px}
nav a,.navbar a{color:#fff}
a{color:#1d5fbf}
table{border-collapse:collapse;width:100%;margin:8px 0;background:#fff;font-size:14px}
th,td{border:1px solid #d9dee5;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5}
.card{background:#fff;border:1px solid #d9dee5;border-radius:6px;margin:12px 0;padding:8px 12px}
.card-header{font-weight:600;border-bottom:1px solid #eef1f5;margin-bottom:8px;padding-bottom:6px}
.col-md-2,.col-md-10,.col-12,.col-md-12{display:block;width:auto}
.row{display:block}
.text-danger,.fa-times{color:#b42318}.text-success,.fa-check-circle{color:#067647}
.fa-check-circle::before{content:"\\2714";font-style:normal}.fa-times::before{content:"\\2718";font-style:normal}
.fa-exclamation-triangle::before{content:"\\26A0";font-style:normal}
.badge{display:inline-block;padding:2px 6px;border-radius:4px;background:#eef1f5}
.sticky,.d-none,.tooltip,#navbarDropdown,.dropdown-menu{display:none}
code,pre{background:#f0f2f5;padding:1px 4px;border-radius:3px}
</style>"""
log = logging.getLogger(__name__)


def suite_result(rows: list[dict], run_id: str, snapshot_id: int | None, run_time: datetime | None = None) -> dict:
    """The JSON of a whole-suite GX validation result, from the dq_results rows of one run."""
    results = [json.loads(r["gx_result"]) for r in rows if r.get("gx_result")]
    evaluated = len(results)
    ok = sum(bool(r.get("success")) for r in results)
    return {
        "success": all(bool(r.get("success")) for r in results),
        "results": results,
        "suite_name": SUITE_NAME,
        "suite_parameters": {},
        "statistics": {"evaluated_expectations": evaluated, "successful_expectations": ok,
                       "unsuccessful_expectations": evaluated - ok,
                       "success_percent": (100.0 * ok / evaluated) if evaluated else None},
        "meta": {"great_expectations_version": gx.__version__,
                 "run_id": {"run_name": f"govfacts run {run_id} (snapshot {snapshot_id})",
                            "run_time": run_time.isoformat() if run_time else None},
                 "govfacts_run_id": run_id, "govfacts_snapshot_id": snapshot_id,
                 "batch_spec": {"batch_data": "govfacts facts of the run"}, "active_batch_definition": {
                     "datasource_name": "govfacts", "data_connector_name": "fluent", "data_asset_name": "facts",
                     "batch_identifiers": {"run": run_id}}},
        "id": None,
    }


def strip_remote(html: str) -> str:
    """The page without CDN links or scripts, with the offline stylesheet in their place."""
    html = REMOTE_CSS_URL.sub("none", REMOTE_TAG.sub("", html))
    return html.replace("</head>", OFFLINE_CSS + "\n</head>", 1) if "govfacts-offline" not in html else html


def _offline(site: Path) -> int:
    """Rewrite every page of the site to need no network; return the number of pages."""
    pages = sorted(site.rglob("*.html"))
    for page in pages:
        page.write_text(strip_remote(page.read_text(encoding="utf-8")), encoding="utf-8")
    for sheet in sorted(site.rglob("*.css")):
        sheet.write_text(REMOTE_CSS_URL.sub("none", sheet.read_text(encoding="utf-8")), encoding="utf-8")
    return len(pages)


def build_data_docs(rows: list[dict], run_id: str, snapshot_id: int | None, out: Path,
                    run_time: datetime | None = None) -> Path | None:
    """Render GX Data Docs (suite page and the run's validation page) under ``out/gx``; return index.html.

    None when the run stored no GX results (a run with no facts to validate).
    """
    if not any(r.get("gx_result") for r in rows):
        return None
    root = out / "gx"
    shutil.rmtree(root, ignore_errors=True)
    ctx = gx.get_context(mode="file", project_root_dir=str(out))
    suite = gx.ExpectationSuite(name=SUITE_NAME)
    for c in build_checks():
        suite.add_expectation(c.expectation.copy(update={"id": None}))
    ctx.suites.add(suite)
    result = ExpectationSuiteValidationResultSchema().load(suite_result(rows, run_id, snapshot_id, run_time))
    key = ValidationResultIdentifier(ExpectationSuiteIdentifier(name=SUITE_NAME),
                                     RunIdentifier(run_name=f"run-{run_id}", run_time=run_time), f"snapshot-{snapshot_id}")
    ctx.validation_results_store.set(key, result)
    sites = ctx.build_data_docs()
    index = Path(str(sites["local_site"]).removeprefix("file://"))
    pages = _offline(index.parent)
    log.info("GX Data Docs: %d pages under %s", pages, index.parent)
    return index
