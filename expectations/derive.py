"""Columns the cross-fact expectations read, computed before GX runs.

A GX column-map expectation sees one row at a time, so a rule that needs other
facts (the same region's GDP, the previous year's level, another document's
value) gets a ``dq_*`` column here: a ratio, a gap, a count. GX then decides
pass or fail on that column with the bounds declared in ``expectations.custom``.
A ``dq_*`` value is NULL where the rule does not apply, and GX skips NULLs.

The pool of comparable facts is a validation group's facts plus the facts
published before them from other documents — by the warehouse, or by the
run's earlier groups — at the group's ``comparable_places``; only the group's
facts get flagged (published ones are history).

All functions are pure: DataFrames in, DataFrames out. Loops over a column read it as a list first
(``.tolist()``): pandas 3 keeps text in Arrow, and iterating an Arrow column boxes one element at a time.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from transforms.schema import COMPARED_FIELDS
from transforms.seeds import indicators_by_code, units_by_name

NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
# a:b:c with ASCII, full-width or ratio colons (the normalizer may or may not have folded them)
SECTOR_RATIO = re.compile(r"(\d+(?:\.\d+)?)\s*[:：∶]\s*(\d+(?:\.\d+)?)(?:\s*[:：∶]\s*(\d+(?:\.\d+)?))?")
YEAR = re.compile(r"^\d{4}$")
LOWER_BOUND = {"以上", "突破", "超"}  # the true value is at least the number written
UPPER_BOUND = {"以内"}  # at most
APPROXIMATE = {"约", "近", "左右"}  # within APPROX_TOLERANCE of it
APPROX_TOLERANCE = 0.05
POOL_COLUMNS = list(COMPARED_FIELDS)


@dataclass(frozen=True)
class CrossCheck:
    """A rule 'big > small / divisor' between two indicators' levels in the same region and year."""

    column: str
    big: str
    small: str
    divisor: float


CROSS_CHECKS = (
    CrossCheck("dq_rural_to_urban", "urban_disposable_income", "rural_disposable_income", 1.0),
    CrossCheck("dq_revenue_to_gdp", "gdp", "general_budget_revenue", 1.0),
    CrossCheck("dq_industry_to_gdp", "gdp", "industrial_value_added", 1.0),
    CrossCheck("dq_retail_to_gdp", "gdp", "retail_sales", 1.0),
)


def unit_families() -> dict[str, set[str]]:
    """Units of each family, from seeds/units.csv."""
    families: dict[str, set[str]] = {}
    for unit, row in units_by_name().items():
        families.setdefault(row["family"], set()).add(unit)
    return families


def allowed_units(indicator: str) -> set[str]:
    """Units an indicator may be stated in: its families, plus % and 个百分点 for growth and shares."""
    fams = unit_families()
    ind = indicators_by_code()[indicator]
    allowed = set().union(*(fams.get(f, set()) for f in ind["unit_families"].split("|")))
    return allowed | fams.get("percent", set()) | fams.get("percentage_point", set())


@lru_cache(maxsize=65536)
def decimals(x: float) -> int:
    """Decimal places as written (425.16 -> 2, 7.0 -> 0): the precision a report claims."""
    text = f"{x:.10f}".rstrip("0").rstrip(".")
    return len(text.split(".")[1]) if "." in text else 0


def values_agree(a: dict, b: dict) -> bool:
    """Do two statements of the same quantity agree, given rounding and qualifiers?

    Same unit: equal after rounding the more precise to the coarser precision
    (425.16 and 425.2 agree). Different units: value_base within 0.1 %.
    A qualifier makes a statement a bound: 以上/突破/超 >=, 以内 <=, 约/近/左右 within 5 %.
    """
    return _agree(a["value"], a["unit"], a["value_base"], a.get("qualifier"),
                  b["value"], b["unit"], b["value_base"], b.get("qualifier"))


def _agree(value_a, unit_a, base_a, qualifier_a, value_b, unit_b, base_b, qualifier_b) -> bool:
    """``values_agree`` over plain values, so a loop over hundreds of thousands of pairs builds no dicts."""
    same_unit = unit_a == unit_b
    x, y = (float(value_a), float(value_b)) if same_unit else (float(base_a), float(base_b))
    for q, fx, sy in ((qualifier_a, x, y), (qualifier_b, y, x)):
        if q in LOWER_BOUND and sy >= fx * (1 - 1e-9):
            return True
        if q in UPPER_BOUND and sy <= fx * (1 + 1e-9):
            return True
        if q in APPROXIMATE and abs(sy - fx) <= APPROX_TOLERANCE * abs(fx):
            return True
    if same_unit:
        places = min(decimals(x), decimals(y))
        return abs(round(x, places) - round(y, places)) < 10 ** -(places + 6) or abs(x - y) < 1e-9
    scale = max(abs(x), abs(y), 1e-12)
    return abs(x - y) / scale <= 1e-3


def _pool(facts: pd.DataFrame, published: pd.DataFrame | None) -> pd.DataFrame:
    """This run's facts (in_run) and the published facts of documents not reloaded by this run."""
    mine = facts.reindex(columns=POOL_COLUMNS).assign(in_run=True)
    if published is None or published.empty:
        return mine.reset_index(drop=True)
    others = published[~published["doc_id"].isin(set(facts["doc_id"]))].reindex(columns=POOL_COLUMNS).assign(in_run=False)
    others = others[~others["fact_id"].isin(set(facts["fact_id"]))]
    return pd.concat([mine, others], ignore_index=True)


def _shared_keys(pool: pd.DataFrame) -> pd.DataFrame:
    """Facts whose region, indicator, period, kind and measure more than one document states (vectorized:
    a warehouse has millions of keys, few of them shared)."""
    key = ["region", "indicator", "period", "kind", "measure"]
    pool = pool.dropna(subset=["region"])
    if pool.empty:
        return pool
    return pool[pool.groupby(key)["doc_id"].transform("nunique") > 1]


def comparable_places(regions: list[str | None], periods: list[str | None]) -> tuple[list[str], list[str]]:
    """The (region, period) places of every fact a rule across documents may pair with facts stated at these places.

    Conflicts and cross ratios pair facts of one region and period; implied growth pairs a year's
    level with the year before's (and its stated growth), so a single-year period also reaches the
    years on either side. Other facts of the region cannot take part: reading only these places
    keeps what a validation group is compared with near its own size, whatever the warehouse holds.
    Returned as two parallel lists (regions, periods), each place once.
    """
    places: set[tuple[str, str]] = set()
    for region, period in set(zip(regions, periods)):
        if not region or not period:
            continue
        places.add((region, period))
        if YEAR.match(period):
            places.update((region, str(int(period) + step)) for step in (-1, 1))
    ordered = sorted(places)
    return [r for r, _ in ordered], [p for _, p in ordered]


CONFLICT_KEY = ["region", "indicator", "period", "kind", "measure"]
CONFLICT_SIDE = ["fact_id", "doc_id", "value", "unit", "value_base", "qualifier", "evidence"]
CONFLICT_COLUMNS = ["left_fact_id", "right_fact_id", "region", "indicator", "period", "kind", "measure",
                    "left_doc_id", "right_doc_id", "left_value", "right_value", "left_unit", "right_unit",
                    "left_qualifier", "right_qualifier", "left_evidence", "right_evidence"]


def find_conflicts(pool: pd.DataFrame) -> pd.DataFrame:
    """Pairs of facts from different documents that state the same thing with different values.

    Key: region, indicator, period, kind, measure. One row per pair (left fact
    id < right fact id), with both values and both evidences for the report.
    """
    return _conflict_rows(_disagreeing_pairs(pool, anchored=False))


@dataclass(frozen=True)
class Pairs:
    """Disagreeing pairs of statements: positions into ``shared`` (the pool's facts whose key several documents
    state), the lower fact id on the left."""

    shared: pd.DataFrame
    left: np.ndarray
    right: np.ndarray


def _disagreeing_pairs(pool: pd.DataFrame, anchored: bool) -> Pairs:
    """The pairs of ``find_conflicts``: facts of one key, from different documents, whose values do not agree.

    ``anchored``: only pairs with a fact of the run (``in_run``) — a validation group compared with
    everything published before it would otherwise pair the published facts with each other too,
    (published + group)² statements per key instead of group × (published + group).
    Pairs are matched as integer positions under an integer key, and only the disagreeing ones are ever
    turned into rows (``_conflict_rows``): merging whole statements, evidence and all, held ≈200 MB for a
    conflict-dense group of 43,000 facts against 86,000 earlier ones.
    """
    columns = CONFLICT_KEY + CONFLICT_SIDE + (["in_run"] if anchored else [])
    shared = (_shared_keys(pool)[columns] if not pool.empty else pd.DataFrame(columns=columns)).reset_index(drop=True)
    none = np.zeros(0, dtype=np.int64)
    if shared.empty:
        return Pairs(shared, none, none)
    statements = pd.DataFrame({"key": shared.groupby(CONFLICT_KEY, sort=False).ngroup().to_numpy(),
                               "at": np.arange(len(shared))})
    run = shared["in_run"].to_numpy(dtype=bool) if anchored else None
    pairs = (statements[run] if anchored else statements).merge(statements, on="key", suffixes=("_l", "_r"))
    left, right = pairs["at_l"].to_numpy(), pairs["at_r"].to_numpy()
    fact, doc = shared["fact_id"].to_numpy(dtype=object), shared["doc_id"].to_numpy(dtype=object)
    keep = fact[left] < fact[right]
    if anchored:
        keep |= ~run[right]  # a published right side pairs once, from the left
    keep &= doc[left] != doc[right]
    left, right = left[keep], right[keep]
    if anchored:  # the lower fact id on the left, as find_conflicts lists a pair
        swap = fact[left] > fact[right]
        left, right = np.where(swap, right, left), np.where(swap, left, right)
    value, unit, base, qualifier = (shared[c].tolist() for c in ("value", "unit", "value_base", "qualifier"))
    differ = np.fromiter((not _agree(value[a], unit[a], base[a], qualifier[a], value[b], unit[b], base[b], qualifier[b])
                          for a, b in zip(left.tolist(), right.tolist())), dtype=bool, count=len(left))
    return Pairs(shared, left[differ], right[differ])


def _conflict_rows(found: Pairs) -> pd.DataFrame:
    """The conflicts table of the report (``find_conflicts``' columns) from the disagreeing pairs."""
    if not len(found.left):
        return pd.DataFrame(columns=CONFLICT_COLUMNS)
    data = {c: found.shared[c].take(found.left).astype(object).tolist() for c in CONFLICT_KEY}
    for side, at in (("left", found.left), ("right", found.right)):
        for k in CONFLICT_SIDE:
            data[f"{side}_{k}"] = found.shared[k].take(at).astype(object).tolist()
    rows = pd.DataFrame(data, columns=CONFLICT_KEY + [f"{side}_{k}" for side in ("left", "right") for k in CONFLICT_SIDE])
    return rows.reindex(columns=CONFLICT_COLUMNS).sort_values(CONFLICT_KEY + ["left_fact_id", "right_fact_id"]).reset_index(drop=True)


STRUCTURE_HEAD = "primary_industry_share"


def _sector_terms(evidence: str, first: float) -> tuple[list[float], str | None]:
    """The a:b:c ratio in the evidence whose first term is the fact's value (the last such, e.g. after 调整为)."""
    best: list[float] = []
    for m in SECTOR_RATIO.finditer(evidence or ""):
        terms = [float(t) for t in m.groups() if t is not None]
        if not best or abs(terms[0] - first) < 1e-9:
            best = terms
    return best, (":".join(f"{t:g}" for t in best) if best else None)


def _in_evidence(value: float, evidence: str) -> str:
    numbers = [float(n.replace(",", "")) for n in NUMBER.findall(evidence or "")]
    return "yes" if any(abs(n - value) <= 1e-9 * max(1.0, abs(value)) for n in numbers) else "no"


def _single_facts(facts: pd.DataFrame, texts: dict[str, str] | None) -> pd.DataFrame:
    """Columns computed from one fact alone (units, sector ratio, target year, evidence)."""
    units = units_by_name()
    inds = indicators_by_code()
    out = facts.copy()
    unit = out["unit"].tolist()
    factor = pd.Series([float(units[u]["factor"]) if u in units else math.nan for u in unit], index=out.index, dtype="float64")
    expected = out["value"] * factor
    out["dq_expected_value_base"] = expected
    out["dq_base_error"] = ((out["value_base"] - expected).abs() / expected.abs().clip(lower=1e-12)).where(expected.notna())
    out["dq_expected_unit_base"] = _column(out, [units[u]["base_unit"] if u in units else None for u in unit])
    out["dq_unit_pair"] = out["unit"].astype(str) + "→" + out["unit_base"].astype(str)
    out["dq_unit_families"] = _column(out, [inds[i]["unit_families"] if i in inds else None for i in out["indicator"].tolist()])
    _indicator_ranges(out, inds)
    # the three-sector structure is stored as three share facts (primary/secondary/tertiary_industry_share); the
    # primary one carries the whole a:b:c in its evidence, so the structure is checked once, on it
    evidence, value = out["evidence"].tolist(), out["value"].tolist()
    heads = {k: _sector_terms(evidence[k], value[k]) for k, i in enumerate(out["indicator"].tolist()) if i == STRUCTURE_HEAD}
    rows = range(len(out))
    out["dq_sector_terms"] = [float(len(heads[k][0])) if k in heads else None for k in rows]
    out["dq_sector_sum"] = [round(sum(heads[k][0]), 6) if k in heads and len(heads[k][0]) == 3 else None for k in rows]
    out["dq_sector_ratio"] = [heads[k][1] if k in heads else None for k in rows]
    single_year = _is_year(out["period"])
    gap = pd.to_numeric(out["period"].where(single_year), errors="coerce") - pd.to_numeric(out["report_year"], errors="coerce")
    out["dq_target_year_gap"] = gap.where(out["kind"] == "target")
    out["dq_value_in_evidence"] = [_in_evidence(v, e) for v, e in zip(out["value"].tolist(), out["evidence"].tolist())]
    if texts is not None:
        out["dq_evidence_in_text"] = [
            None if d not in texts else ("yes" if texts[d][int(s):int(t)] == e else "no")
            for d, s, t, e in zip(out["doc_id"].tolist(), out["start"].tolist(), out["end"].tolist(), out["evidence"].tolist())]
    else:
        out["dq_evidence_in_text"] = None
    return out


def _column(out: pd.DataFrame, values: list) -> pd.Series:
    """A column of ``out`` from a list built in plain Python (what ``Series.map`` with a function gives, without a
    call per row through pandas: pandas 3 keeps text in Arrow and boxes each element it hands to the function)."""
    return pd.Series(values, index=out.index)


def _is_year(periods: pd.Series) -> pd.Series:
    """Whether each period is a single year, the regex run once per distinct period (a group has a handful)."""
    values = periods.astype(str).tolist()
    memo = {v: isinstance(v, str) and YEAR.match(v) is not None for v in set(values)}
    return pd.Series([memo.get(v, False) for v in values], index=periods.index, dtype=bool)  # NaN is not equal to itself


def seed_number(s: str | None) -> float | None:
    """A number of a seeds CSV cell (an empty cell: none)."""
    return float(s) if s not in ("", None) else None


def _bounds(inds: dict[str, dict[str, str]], low: str, high: str) -> tuple[dict[str, float], dict[str, float]]:
    """indicator -> lower and upper bound of a seeds/indicators.csv range, for the indicators that give both."""
    both = {code: (seed_number(ind.get(low)), seed_number(ind.get(high))) for code, ind in inds.items()}
    both = {code: b for code, b in both.items() if None not in b}
    return {c: b[0] for c, b in both.items()}, {c: b[1] for c, b in both.items()}


def _range_columns(out: pd.DataFrame, applies: pd.Series, bounds: tuple[dict[str, float], dict[str, float]], prefix: str) -> None:
    """``<prefix>_min``/``_max``: the range of the fact's indicator where the rule applies to it (NULL elsewhere);
    ``<prefix>_outside``: the fact's value when it lies outside that range (NULL when inside)."""
    lo, hi = (out["indicator"].map(b).astype("float64") for b in bounds)
    value = out["value"].astype("float64")
    applies = applies.fillna(False).astype(bool) & lo.notna() & value.notna()
    out[f"{prefix}_min"] = lo.where(applies)
    out[f"{prefix}_max"] = hi.where(applies)
    out[f"{prefix}_outside"] = value.where(applies & ((value < lo) | (value > hi)))


def _indicator_ranges(out: pd.DataFrame, inds: dict[str, dict[str, str]]) -> None:
    """The per-indicator rules as columns: the growth and target ranges, and the units outside the indicator's family.

    One GX expectation per rule then checks every indicator at once — GX's fixed cost is per
    expectation (≈10 ms each, every validation group), and one per indicator and rule made 66
    of the suite's 87 — while the results are still reported per indicator
    (``expectations.facts_suite``). A ``*_outside`` column holds the failing value itself, so
    GX's result lists the values a person looks for (66 %, 万人).
    """
    growth = (out["measure"] == "growth") & (out["unit"] == "%")
    kind = out["kind"]
    _range_columns(out, growth & ~kind.isin(["target", "change_vs_base"]), _bounds(inds, "growth_min", "growth_max"), "dq_growth")
    _range_columns(out, growth & (kind == "target"), _bounds(inds, "target_growth_min", "target_growth_max"), "dq_target_growth")
    allowed = {code: allowed_units(code) for code in inds}
    out["dq_unit_outside_family"] = [u if i in allowed and isinstance(u, str) and u not in allowed[i] else None
                                     for i, u in zip(out["indicator"].tolist(), out["unit"].tolist())]


def _cross_ratios(out: pd.DataFrame, pool: pd.DataFrame) -> None:
    """For each CrossCheck, the worst small/(divisor x big) ratio a run fact takes part in."""
    levels = pool[(pool["measure"] == "level") & (pool["kind"] == "actual") & (pool["unit_base"] == "CNY")
                  & pool["value_base"].notna() & (pool["value_base"] > 0)]
    for check in CROSS_CHECKS:
        big = levels[levels["indicator"] == check.big]
        small = levels[levels["indicator"] == check.small]
        pairs = big.merge(small, on=["region", "period"], suffixes=("_big", "_small"))
        pairs = pairs[pairs["in_run_big"] | pairs["in_run_small"]]  # a pair of published facts is history
        worst: dict[str, float] = {}
        for small_base, big_base, *sides in zip(*(pairs[c].tolist() for c in ("value_base_small", "value_base_big", "fact_id_big",
                                                                                "in_run_big", "fact_id_small", "in_run_small"))):
            ratio = round(small_base / (check.divisor * big_base), 6)
            for fid, in_run in (sides[:2], sides[2:]):
                if in_run:
                    worst[fid] = max(worst.get(fid, -math.inf), ratio)
        out[check.column] = out["fact_id"].map(worst)


def _conflict_counts(out: pd.DataFrame, conflicts: pd.DataFrame, pool: pd.DataFrame) -> None:
    """Per run fact: how many facts of other documents it disagrees with, and which."""
    in_run = set(pool.loc[pool["in_run"], "fact_id"].tolist())
    count: dict[str, int] = {}
    other: dict[str, list[str]] = {}
    sides = ("fact_id", "value", "unit", "evidence")
    for left_id, *left, right_id, right_value, right_unit, right_evidence in zip(
            *(conflicts[f"{s}_{c}"].tolist() for s in ("left", "right") for c in sides)):
        for me, (val, unit, ev) in ((left_id, (right_value, right_unit, right_evidence)), (right_id, left)):
            if me in in_run:
                count[me] = count.get(me, 0) + 1
                other.setdefault(me, []).append(f"{val:g}{unit} in «{ev}»")
    comparable = set(_shared_keys(pool)["fact_id"].tolist())
    out["dq_conflicts"] = [float(count.get(f, 0)) if f in comparable else None for f in out["fact_id"].tolist()]
    out["dq_conflict_with"] = _column(out, ["; ".join(other[f]) if f in other else None for f in out["fact_id"].tolist()])


def _within_document(out: pd.DataFrame) -> None:
    """Per fact: how many facts of its own document state the same key with a value that does not agree.

    One report states one value per region, indicator, measure, kind and period; two that do
    not agree (a city's GDP beside its GDP per km² read as GDP) mean one was misread, and the
    message names the other's evidence so a person sees both.
    """
    key = ["doc_id", "region", "indicator", "period", "kind", "measure"]
    count: dict[str, int] = {}
    other: dict[str, list[str]] = {}
    shared = out[out.groupby(key, dropna=False)["fact_id"].transform("size") > 1]
    fid, value, unit, base, qualifier, evidence = (shared[c].tolist() for c in ("fact_id", "value", "unit", "value_base", "qualifier", "evidence"))
    for rows in shared.groupby(key, dropna=False, sort=True).indices.values():  # positions of one key's facts, in row order
        for n, i in enumerate(rows):
            for j in rows[n + 1:]:
                if _agree(value[i], unit[i], base[i], qualifier[i], value[j], unit[j], base[j], qualifier[j]):
                    continue
                for me, them in ((i, j), (j, i)):
                    count[fid[me]] = count.get(fid[me], 0) + 1
                    other.setdefault(fid[me], []).append(f"{value[them]:g}{unit[them]} in «{evidence[them]}»")
    out["dq_document_conflicts"] = [float(count.get(f, 0)) for f in out["fact_id"].tolist()]
    out["dq_document_conflict_with"] = _column(out, ["; ".join(other[f]) if f in other else None for f in out["fact_id"].tolist()])


def _implied_growth(out: pd.DataFrame, pool: pd.DataFrame) -> None:
    """Stated growth for year Y against (level Y / level Y-1 - 1) x 100, where both levels exist."""
    single = _is_year(pool["period"])
    levels = pool[single & (pool["measure"] == "level") & (pool["kind"] == "actual") & pool["value_base"].notna()
                  & (pool["value_base"] > 0)].copy()
    growth = pool[single & (pool["measure"] == "growth") & (pool["kind"] == "actual") & (pool["unit"] == "%")].copy()
    for frame in (levels, growth):
        frame["year"] = frame["period"].astype(int)
    prev = levels.assign(year=levels["year"] + 1)
    both = levels.merge(prev, on=["region", "indicator", "year", "unit_base"], suffixes=("", "_prev"))
    triples = growth.merge(both, on=["region", "indicator", "year"], suffixes=("_g", ""))
    triples = triples[triples["in_run_g"] | triples["in_run"] | triples["in_run_prev"]]  # published ones are history
    best: dict[str, tuple[float, float, float, str]] = {}
    for r in triples.itertuples(index=False):
        implied = (r.value_base / r.value_base_prev - 1) * 100
        gap = round(abs(implied - r.value_g), 2)
        levels_text = f"{r.value_prev:g}{r.unit_prev} ({r.year - 1}) → {r.value:g}{r.unit} ({r.year})"
        flagged = [r.fact_id_g] if r.in_run_g else [f for f, run in ((r.fact_id, r.in_run), (r.fact_id_prev, r.in_run_prev)) if run]
        for fid in flagged:
            if fid not in best or gap < best[fid][0]:
                best[fid] = (gap, round(implied, 2), r.value_g, levels_text)
    found = [best.get(f) for f in out["fact_id"].tolist()]
    for i, name in enumerate(("dq_growth_gap", "dq_implied_growth", "dq_stated_growth", "dq_growth_levels")):
        out[name] = _column(out, [b[i] if b is not None else None for b in found])


def derive(facts: pd.DataFrame, published: pd.DataFrame | None = None,
           texts: dict[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The run's facts with every ``dq_*`` column, and the cross-document conflicts they take part in.

    ``facts`` needs the FACT_SCHEMA columns plus ``fact_id``; ``published`` is
    what was published before them (``warehouse.quality.comparable_facts``: the warehouse, the run's earlier groups);
    ``texts`` maps doc_id to normalized text, to check evidence offsets.
    """
    out = _single_facts(facts.reset_index(drop=True), texts)
    pool = _pool(facts, published)
    _cross_ratios(out, pool)
    conflicts = _conflict_rows(_disagreeing_pairs(pool, anchored=True))
    _conflict_counts(out, conflicts, pool)
    _within_document(out)
    _implied_growth(out, pool)
    for c in out.columns:
        if c.startswith("dq_") and out[c].dtype == object:
            out[c] = out[c].where(out[c].notna(), None)
    return out, conflicts
