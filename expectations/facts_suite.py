"""The fact-level suite, built from seeds/indicators.csv and seeds/units.csv, run by real GX.

Each expectation carries a sentence name (``meta.name``), a plain-language
description and a severity: an ``error`` quarantines the facts it flags, a
``warning`` publishes them with a flag.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from functools import lru_cache

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations as gx  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402

from transforms.seeds import indicators_by_code, units_by_name  # noqa: E402

SUITE_NAME = "govfacts_facts"
logging.getLogger("great_expectations").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Check:
    """One GX expectation with the govfacts metadata the report needs."""

    name: str
    severity: str
    scope: str
    expectation: gx.expectations.Expectation


def _float(s: str) -> float | None:
    return float(s) if s not in ("", None) else None


def build_checks() -> list[Check]:
    """Expectations of the fact suite, one per indicator and rule."""
    checks: list[Check] = []
    families: dict[str, set[str]] = {}
    for unit, row in units_by_name().items():
        families.setdefault(row["family"], set()).add(unit)
    for code, ind in indicators_by_code().items():
        lo, hi = _float(ind["growth_min"]), _float(ind["growth_max"])
        if lo is not None and hi is not None:
            checks.append(Check("expect_growth_rates_to_be_in_range", "error", f"indicator {code}",
                gx.expectations.ExpectColumnValuesToBeBetween(
                    column="value", min_value=lo, max_value=hi,
                    row_condition=f'indicator=="{code}" and measure=="growth" and unit=="%" and kind!="target" and kind!="change_vs_base"',
                    condition_parser="pandas",
                    description=f"Growth rates of {code} lie within [{lo:g}, {hi:g}] %"),
            ))
        tlo, thi = _float(ind["target_growth_min"]), _float(ind["target_growth_max"])
        if tlo is not None and thi is not None:
            checks.append(Check("expect_growth_targets_to_be_in_range", "error", f"indicator {code}",
                gx.expectations.ExpectColumnValuesToBeBetween(
                    column="value", min_value=tlo, max_value=thi,
                    row_condition=f'indicator=="{code}" and measure=="growth" and unit=="%" and kind=="target"',
                    condition_parser="pandas",
                    description=f"Growth targets of {code} lie within [{tlo:g}, {thi:g}] %"),
            ))
        allowed = set().union(*(families.get(f, set()) for f in ind["unit_families"].split("|")))
        allowed |= families["percent"] | families["percentage_point"]
        checks.append(Check("expect_units_to_match_the_indicator_family", "error", f"indicator {code}",
            gx.expectations.ExpectColumnValuesToBeInSet(
                column="unit", value_set=sorted(allowed),
                row_condition=f'indicator=="{code}"', condition_parser="pandas",
                description=f"Every {code} fact has a unit of its family ({ind['unit_families']}), a % or 个百分点"),
        ))
    return checks


@lru_cache(maxsize=1)
def _validator():
    """An ephemeral GX context with the suite registered (built once per process)."""
    ctx = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: PLC0415
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # progress bars are cosmetic; an older GX simply keeps them
        logging.getLogger(__name__).debug("GX progress bars left on")
    checks = build_checks()
    suite = gx.ExpectationSuite(name=SUITE_NAME)
    for c in checks:
        suite.add_expectation(c.expectation)
    suite = ctx.suites.add(suite)
    by_id = {e.id: c for e, c in zip(suite.expectations, checks)}
    asset = ctx.data_sources.add_pandas("govfacts").add_dataframe_asset("facts")
    batch = asset.add_batch_definition_whole_dataframe("run")
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name="facts", data=batch, suite=suite))
    return vd, checks, by_id


@dataclass
class Validation:
    """Outcome of the suite on one run's facts."""

    status: dict[str, str]  # fact_id -> passed | warning | error
    failed: dict[str, list[str]]  # fact_id -> expectation names
    results: list[dict]  # one row per expectation (dq_results)
    gx_result: object = None

    @property
    def passed(self) -> int:
        return sum(r["success"] for r in self.results)

    @property
    def failed_count(self) -> int:
        return sum(not r["success"] for r in self.results)


def validate_facts(facts: pa.Table) -> Validation:
    """Run the suite on a table of facts (needs ``fact_id``) and classify every fact."""
    ids = facts.column("fact_id").to_pylist() if facts.num_rows else []
    status = {i: "passed" for i in ids}
    failed: dict[str, list[str]] = {i: [] for i in ids}
    vd, checks, by_id = _validator()
    if not ids:
        return Validation(status, failed, [
            dict(suite=SUITE_NAME, expectation=c.name, description=c.expectation.description, severity=c.severity,
                 scope=c.scope, success=True, element_count=0, unexpected_count=0, unexpected_fact_ids="[]")
            for c in checks])
    df = facts.select(["fact_id", "indicator", "measure", "value", "unit", "kind"]).to_pandas()
    result = vd.run(batch_parameters={"dataframe": df},
                    result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["fact_id"]})
    rows = []
    for r in result.results:
        check = by_id[r.expectation_config.id]
        bad = [u["fact_id"] for u in (r.result.get("unexpected_index_list") or [])]
        for fid in bad:
            failed[fid].append(check.name)
            if check.severity == "error" or status[fid] == "error":
                status[fid] = "error"
            else:
                status[fid] = "warning"
        rows.append(dict(suite=SUITE_NAME, expectation=check.name, description=check.expectation.description,
                         severity=check.severity, scope=check.scope, success=bool(r.success),
                         element_count=int(r.result.get("element_count") or 0),
                         unexpected_count=len(bad), unexpected_fact_ids=json.dumps(bad)))
    return Validation(status, failed, rows, result)
