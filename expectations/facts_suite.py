"""The fact-level suite, built from seeds/indicators.csv and seeds/units.csv, run by real GX.

Every expectation is a class of ``expectations.custom`` (named as a sentence,
with a plain-language description and a severity): an ``error`` (GX severity
``critical``) quarantines the facts it flags, a ``warning`` publishes them with
a flag. Per-indicator rules get one expectation per indicator, so a result row
says which indicator failed.

``validate_facts`` adds the ``dq_*`` columns of ``expectations.derive`` (rules
across facts and documents), runs the suite, and returns the status of every
fact, the message for every failure, and one result row per expectation for
``dq_results``.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations as gx  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402

from great_expectations.expectations.row_conditions import Column as Col  # noqa: E402
from great_expectations.validator.v1_validator import Validator  # noqa: E402

from expectations import custom as x  # noqa: E402
from expectations.derive import POOL_COLUMNS, derive, seed_number  # noqa: E402
from expectations.results import merge_result_rows  # noqa: E402,F401 (GX-free: the flow merges without importing GX)
from expectations.row_filters import memoized_row_filters  # noqa: E402
from expectations.unexpected_rows import named_unexpected_rows  # noqa: E402
from transforms.schema import KINDS, MEASURES  # noqa: E402
from transforms.seeds import indicators_by_code, units_by_name  # noqa: E402

SUITE_NAME = "govfacts_facts"
# GX's INFO lines are noise in a run's output; `govfacts run -v` (GOVFACTS_VERBOSE) brings them back
_GX_LEVEL = logging.INFO if os.environ.get("GOVFACTS_VERBOSE") else logging.WARNING
logging.getLogger("great_expectations").setLevel(_GX_LEVEL)
# this one sets its own level (INFO) and says "Created temporary directory … for ephemeral docs site" on every run
logging.getLogger("great_expectations.data_context.types.base").setLevel(_GX_LEVEL)
# columns GX sees: the fact's own fields (the same the derived checks read) and every derived dq_* column
BASE_COLUMNS = POOL_COLUMNS


@dataclass(frozen=True)
class Check:
    """One GX expectation with the govfacts metadata the report needs."""

    name: str
    severity: str
    scope: str
    expectation: gx.expectations.Expectation
    indicator: str | None = None  # set on the per-indicator rows of a rule GX checks for every indicator at once


def _check(expectation: gx.expectations.Expectation, scope: str, indicator: str | None = None) -> Check:
    expectation.meta = {**(expectation.meta or {}), "scope": scope}
    return Check(expectation.expectation_type, x.severity_word(expectation.severity), scope, expectation, indicator)


def _per_indicator(code: str, ind: dict[str, str]) -> list[Check]:
    """Growth range, target range and unit family for one indicator: the report's rows for it.

    GX checks each rule once for every indicator (``gx_checks``: the range and the family are
    columns that ``expectations.derive`` computes from seeds/indicators.csv); these rows give
    each indicator its own count, failures and description.
    """
    checks = []
    lo, hi = seed_number(ind["growth_min"]), seed_number(ind["growth_max"])
    if lo is not None and hi is not None:
        checks.append(_check(x.ExpectGrowthRatesToBeInRange(
            description=f"Growth rates of {code} lie within [{lo:g}, {hi:g}] % (seeds/indicators.csv)"), f"indicator {code}", code))
    tlo, thi = seed_number(ind["target_growth_min"]), seed_number(ind["target_growth_max"])
    if tlo is not None and thi is not None:
        checks.append(_check(x.ExpectGrowthTargetsToBeInRange(
            description=f"Growth targets of {code} lie within [{tlo:g}, {thi:g}] % (seeds/indicators.csv)"), f"indicator {code}", code))
    checks.append(_check(x.ExpectUnitsToMatchTheIndicatorFamily(
        description=f"Every {code} fact is stated in a unit of its family ({ind['unit_families']}), a % or 个百分点"),
        f"indicator {code}", code))
    return checks


def gx_checks(checks: list[Check]) -> list[Check]:
    """The expectations GX runs: every check of its own, and one per rule whose rows are per indicator.

    GX's fixed cost is per expectation (≈10 ms each, every validation group): 66 per-indicator
    expectations with row conditions cost ≈0.6 s a group; three that read the derived range and
    family columns cost ≈0.03 s, with the same verdict on every fact.
    """
    rules: set[str] = set()
    out = []
    for c in checks:
        if c.indicator is None:
            out.append(c)
        elif c.name not in rules:
            rules.add(c.name)
            out.append(_check(type(c.expectation)(), "every indicator"))
    return out


def build_checks() -> list[Check]:
    """Every expectation of the fact suite, in the order the report lists them."""
    checks: list[Check] = []
    for code, ind in indicators_by_code().items():
        checks.extend(_per_indicator(code, ind))
    pairs = sorted(f"{u}→{row['base_unit']}" for u, row in units_by_name().items())
    every = "all facts"
    checks += [
        _check(x.ExpectBaseUnitsToMatchTheUnitTable(value_set=pairs), every),
        _check(x.ExpectBaseValuesToEqualValueTimesUnitFactor(), every),
        _check(x.ExpectLevelsToBePositive(row_condition=Col("measure") == "level"), "levels"),
        _check(x.ExpectSharesToBePercentages(
            row_condition=(Col("unit") == "%") & Col("measure").is_in(["share", "level"])),
            "shares and levels in %"),
        _check(x.ExpectThreeSectorStructuresToSumToOneHundred(), "indicator primary_industry_share"),
        _check(x.ExpectThreeSectorStructuresToHaveThreeTerms(), "indicator primary_industry_share"),
        _check(x.ExpectPeriodsToBeYearsOrSpans(), every),
        _check(x.ExpectMeasuresToBeKnown(value_set=list(MEASURES)), every),
        _check(x.ExpectKindsToBeKnown(value_set=list(KINDS)), every),
        _check(x.ExpectFactIdsToBeUnique(), every),
        _check(x.ExpectEvidenceToContainTheValue(), every),
        _check(x.ExpectEvidenceToMatchTheDocumentText(), every),
        _check(x.ExpectTargetPeriodsToEqualTheReportYear(), "targets"),
        _check(x.ExpectUrbanIncomeToExceedRuralIncome(), "region and year"),
        _check(x.ExpectGdpToExceedGeneralBudgetRevenue(), "region and year"),
        _check(x.ExpectGdpToExceedIndustrialValueAdded(), "region and year"),
        _check(x.ExpectGdpToExceedAThirdOfRetailSales(), "region and year"),
        _check(x.ExpectOneDocumentToStateOneValuePerKey(), "within each document"),
        _check(x.ExpectFactsToAgreeAcrossDocuments(), "across documents"),
        _check(x.ExpectStatedGrowthToMatchImpliedGrowth(), "consecutive years"),
    ]
    return checks


def _condition_columns(condition: object) -> set[str]:
    """Columns a GX row condition reads (its serialized form names each as {"column": {"name": ...}})."""
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            column = node.get("column")
            if isinstance(column, dict) and isinstance(column.get("name"), str):
                found.add(column["name"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(condition.dict() if hasattr(condition, "dict") else condition)
    return found


def gx_columns(checks: list[Check]) -> list[str]:
    """The columns the suite reads: each expectation's column, its row condition's, and fact_id (failures name it).

    GX filters the whole frame for every metric of an expectation with a row condition
    (hundreds of filters a validation), at a cost that grows with the frame's width; the
    dq_* columns only the messages use are left out of what GX sees.
    """
    cols = {"fact_id"}
    for c in checks:
        e = c.expectation
        if getattr(e, "column", None):
            cols.add(e.column)
        if getattr(e, "row_condition", None) is not None:
            cols |= _condition_columns(e.row_condition)
    return sorted(cols)


@lru_cache(maxsize=1)
def _validator():
    """An ephemeral GX context with the suite registered (built once per process)."""
    ctx = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: PLC0415
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    except ImportError:  # progress bars are cosmetic; an older GX simply keeps them
        logging.getLogger(__name__).debug("GX progress bars left on")
    checks = build_checks()
    run = gx_checks(checks)
    suite = gx.ExpectationSuite(name=SUITE_NAME)
    for c in run:
        suite.add_expectation(c.expectation)
    suite = ctx.suites.add(suite)
    by_id = {e.id: c for e, c in zip(suite.expectations, run)}
    asset = ctx.data_sources.add_pandas("govfacts").add_dataframe_asset("facts")
    batch = asset.add_batch_definition_whole_dataframe("run")
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name="facts", data=batch, suite=suite))
    return vd, checks, by_id, gx_columns(run)


@dataclass
class Validation:
    """Outcome of the suite on one run's facts."""

    status: dict[str, str]  # fact_id -> passed | warning | error
    failed: dict[str, list[str]]  # fact_id -> expectation names
    results: list[dict]  # one row per expectation (dq_results)
    gx_result: object = None
    messages: dict[str, list[str]] = field(default_factory=dict)  # fact_id -> plain-language reasons
    conflicts: pd.DataFrame | None = None  # cross-document conflicts involving this run's facts

    @property
    def passed(self) -> int:
        return sum(r["success"] for r in self.results)

    @property
    def failed_count(self) -> int:
        return sum(not r["success"] for r in self.results)


class FailingFacts:
    """The failing facts' fields by fact id, each column read once and only when a message names it.

    A message reads five of a fact's ≈40 fields; a row lookup per message cost ≈0.3 ms, and turning every
    failing fact into a dict of all its fields cost ≈0.5 s for the ≈30,000 failing facts of a conflict-dense group.
    Values are those of ``DataFrame.to_dict("records")`` (``Series.tolist``: Python scalars, not NumPy's).
    """

    def __init__(self, rows: pd.DataFrame) -> None:
        self.rows = rows
        self.at = {f: i for i, f in enumerate(rows["fact_id"].tolist())}
        self._columns: dict[str, list | None] = {}

    def column(self, name: str) -> list | None:
        """The column's values in row order, None when the frame has no such column."""
        if name not in self._columns:
            self._columns[name] = self.rows[name].tolist() if name in self.rows.columns else None
        return self._columns[name]

    def __getitem__(self, fact_id: str) -> "FactFields":
        return FactFields(self, self.at[fact_id])


class FactFields(Mapping):
    """One failing fact's fields (``FailingFacts``), read on demand."""

    def __init__(self, facts: FailingFacts, i: int) -> None:
        self.facts, self.i = facts, i

    def __getitem__(self, name: str):
        values = self.facts.column(name)
        if values is None:
            raise KeyError(name)
        return values[self.i]

    def get(self, name: str, default=None):
        values = self.facts.column(name)
        return default if values is None else values[self.i]

    def __iter__(self):
        return iter(self.facts.rows.columns)

    def __len__(self) -> int:
        return len(self.facts.rows.columns)


def _row(check: Check, success: bool, checked: int, bad: list[str], messages: dict[str, str], gx_json: dict | None) -> dict:
    return dict(suite=SUITE_NAME, expectation=check.name, description=check.expectation.description,
                severity=check.severity, scope=check.scope, success=success, element_count=checked,
                unexpected_count=len(bad), unexpected_fact_ids=json.dumps(bad),
                unexpected_messages=json.dumps(messages, ensure_ascii=False),
                gx_result=json.dumps(gx_json, ensure_ascii=False, default=str) if gx_json is not None else None)


def indicator_part(gx_json: dict, check: Check, bad: list[str], checked: int) -> dict:
    """One indicator's part of the GX result of a rule GX checks for every indicator at once, shaped as GX's own
    result: that indicator's failing facts and values, its counts, and its row's description and scope."""
    result = gx_json.get("result") or {}
    mine = set(bad)
    index = [u for u in result.get("unexpected_index_list") or [] if u.get("fact_id") in mine]
    values = [u.get(check.expectation.column) for u in index]
    counts = Counter(values)
    percent = 100.0 * len(index) / checked if checked else None
    part = dict(element_count=checked, unexpected_count=len(index), unexpected_percent=percent, missing_count=0, missing_percent=0.0,
                unexpected_percent_total=percent, unexpected_percent_nonmissing=percent,
                unexpected_index_column_names=result.get("unexpected_index_column_names"),
                partial_unexpected_list=values[:20], partial_unexpected_index_list=index[:20],
                partial_unexpected_counts=[dict(value=v, count=n) for v, n in sorted(counts.most_common(20), key=lambda x: (-x[1], x[0]))],
                unexpected_list=values, unexpected_index_list=index)
    config = dict(gx_json.get("expectation_config") or {}, description=check.expectation.description,
                  meta={"scope": check.scope, "shows": type(check.expectation).shows})  # the field its values are
    return dict(gx_json, success=not index, expectation_config=config, result=part)


def frame_for_gx(facts: pa.Table, published: pa.Table | pd.DataFrame | None = None,
                 texts: dict[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The DataFrame GX validates: the run's facts with every dq_* column, and the conflicts.

    ``published``: the facts they are compared with (``warehouse.quality.comparable_facts``), as Arrow or pandas.
    """
    if isinstance(published, pa.Table):
        published = published.to_pandas() if published.num_rows else None
    df = facts.to_pandas()
    for c in BASE_COLUMNS:
        if c not in df.columns:
            df[c] = None
    return derive(df[BASE_COLUMNS], published, texts)


def validate_facts(facts: pa.Table, published: pa.Table | pd.DataFrame | None = None, texts: dict[str, str] | None = None) -> Validation:
    """Run the suite on a table of facts (needs ``fact_id``) and classify every fact.

    ``published``: facts the warehouse already publishes (for rules across documents);
    ``texts``: doc_id -> normalized text (to check evidence offsets).
    """
    ids = facts.column("fact_id").to_pylist() if facts.num_rows else []
    status = {i: "passed" for i in ids}
    failed: dict[str, list[str]] = {i: [] for i in ids}
    messages: dict[str, list[str]] = {i: [] for i in ids}
    vd, checks, by_id, columns = _validator()
    if not ids:
        return Validation(status, failed, [_row(c, True, 0, [], {}, None) for c in checks], messages=messages)
    df, conflicts = frame_for_gx(facts, published, texts)
    # GX's own validator, as ``ValidationDefinition.run`` uses it, without that method's last step: storing every
    # result in the context's store (in memory here: ≈0.3 s a group to serialize, kept until the process ends)
    validator = Validator(batch_definition=vd.batch_definition, batch_parameters={"dataframe": df[columns]},
                          result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["fact_id"]})
    with memoized_row_filters(), named_unexpected_rows():
        result = validator.validate_expectation_suite(vd.suite)
    by_rule = {}  # GX's result of each rule (one expectation a rule), its failing facts and its JSON
    for r in result.results:
        check = by_id[r.expectation_config.id]
        if r.exception_info and r.exception_info.get("raised_exception"):
            raise RuntimeError(f"expectation {check.name} ({check.scope}) could not run: "
                               f"{r.exception_info.get('exception_message')}; fix expectations/ before loading")
        bad = list(dict.fromkeys(u["fact_id"] for u in (r.result.get("unexpected_index_list") or [])))
        by_rule[check.name] = (r, bad, r.to_json_dict())
    named = {f for _, bad, _ in by_rule.values() for f in bad}
    by_fact = FailingFacts(df[df["fact_id"].isin(named)].drop_duplicates("fact_id"))
    applies: dict[str, pd.Series] = {}  # rule -> how many facts it checks, per indicator
    rows = []
    for check in checks:
        r, bad, gx_json = by_rule[check.name]
        if check.indicator is None:
            success, checked = bool(r.success), int(r.result.get("element_count") or 0) - int(r.result.get("missing_count") or 0)
        else:  # this indicator's part of the rule's result
            if check.name not in applies:
                scope = df[list(check.expectation.applies)].notna().all(axis=1)
                applies[check.name] = df.loc[scope, "indicator"].value_counts()
            bad = [f for f in bad if by_fact[f]["indicator"] == check.indicator]
            checked = int(applies[check.name].get(check.indicator, 0))
            success, gx_json = not bad, indicator_part(gx_json, check, bad, checked)
        explained = {}
        for fid in bad:
            text = check.expectation.explain(by_fact[fid])
            explained[fid] = text
            failed[fid].append(check.name)
            messages[fid].append(text)
            status[fid] = "error" if check.severity == "error" or status[fid] == "error" else "warning"
        rows.append(_row(check, success, checked, bad, explained, gx_json))
    return Validation(status, failed, rows, result, messages, conflicts)
