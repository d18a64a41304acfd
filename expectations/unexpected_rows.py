"""GX's list of failing rows named by ``fact_id``, built by column instead of cell by cell.

Why: asked for ``unexpected_index_column_names`` (the suite names every failing fact by
its ``fact_id``), GX's pandas engine builds each failing row's entry with one ``DataFrame.at``
lookup per column and re-checks the column's name against the frame's columns for every
row. A group of a conflict-dense run has tens of thousands of failing rows: 3 of a late
2,000-report group's 8 s of validation (profiled) went there. Inside
``named_unexpected_rows()`` the same entries — same keys in the same order, the same
values — are built from each column once; any other shape of request (a named index,
``exclude_unexpected_values``, a frame with repeated labels) is left to GX.

Outside the context (any other GX use in the process) the engine behaves as shipped.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

import pandas as pd
from great_expectations.expectations.metrics import util as gx_util
from great_expectations.expectations.metrics.map_metric_provider import map_condition_auxilliary_methods as gx_map

_ON: ContextVar[bool] = ContextVar("govfacts_named_unexpected_rows", default=False)
_SHIPPED = gx_map.compute_unexpected_pandas_indices
_MISSING = ('Error: The unexpected_index_column "{column_name:s}" does not exist in Dataframe. '
            "Please check your configuration and try again.")  # GX's own message for a name the frame lacks


def _by_column(rows: pd.DataFrame, domain: list[str], names: list[str], columns: list[str]) -> list[dict[str, Any]]:
    """What GX's per-cell loop returns for columns ``domain`` and index columns ``names``: one dict per row,
    each domain column followed by the index columns (re-set after every domain column, as GX does)."""
    if not len(rows):
        return []  # GX checks the names only while building a row: no row, no check
    resolved = [gx_util.get_dbms_compatible_column_names(column_names=n, batch_columns_list=columns, error_message_template=_MISSING)
                for n in names]
    values = {c: rows[c].array for c in dict.fromkeys([*domain, *resolved])}  # element access as ``DataFrame.at`` gives
    entries = []
    for i in range(len(rows)):
        entry: dict[str, Any] = {}
        for d in domain:
            entry[d] = values[d][i]
            for n in resolved:
                entry[n] = values[n][i]
        entries.append(entry)
    return entries


def _compute_unexpected_pandas_indices(domain_records_df: pd.DataFrame, expectation_domain_column_list: list[str],
                                       result_format: dict[str, Any], execution_engine: Any, metrics: dict[str, Any]) -> Any:
    names = result_format.get("unexpected_index_column_names")
    if (_ON.get() and names and expectation_domain_column_list and not result_format.get("exclude_unexpected_values", False)
            and domain_records_df.index.name is None and domain_records_df.index.names[0] is None
            and domain_records_df.index.is_unique):
        return _by_column(domain_records_df, list(expectation_domain_column_list), list(names), list(metrics["table.columns"]))
    return _SHIPPED(domain_records_df=domain_records_df, expectation_domain_column_list=expectation_domain_column_list,
                    result_format=result_format, execution_engine=execution_engine, metrics=metrics)


gx_map.compute_unexpected_pandas_indices = _compute_unexpected_pandas_indices


@contextmanager
def named_unexpected_rows() -> Iterator[None]:
    """Build GX's failing-row entries by column while the block runs (one validation)."""
    token = _ON.set(True)
    try:
        yield
    finally:
        _ON.reset(token)
