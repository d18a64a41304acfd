"""Row conditions evaluated once per validation, not once per metric.

Why: GX's pandas engine filters the whole frame anew (``DataFrame.query``: parse the
expression, resolve every column) for every metric of every expectation that has a row
condition — ≈480 filters of ≈60 distinct conditions in one run of the facts suite, about
half of GX's fixed cost per validation (≈0.8 of 1.7 s), paid again for every group a run
validates. Inside ``memoized_row_filters()`` a condition is evaluated once per frame (by
``query``, as GX does) and the filtered frame reused by every metric that asks for it.

Outside the context (any other GX use in the process) the engine behaves as shipped.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

import pandas as pd
from great_expectations.execution_engine.pandas_execution_engine import PandasExecutionEngine
from great_expectations.expectations.row_conditions import Condition, PassThroughCondition, deserialize_row_condition

# (id of the frame, filter clause) -> (the frame, kept alive so its id is not reused; its filtered rows)
_MEMO: ContextVar[dict[tuple[int, str], tuple[pd.DataFrame, Any]] | None] = ContextVar("govfacts_row_masks", default=None)
_SHIPPED = PandasExecutionEngine._apply_row_condition_filter


def _clause(engine: PandasExecutionEngine, row_condition: Any) -> str | None:
    """The pandas expression GX would query for this condition (None: a form this memo leaves to GX)."""
    if isinstance(row_condition, dict):
        row_condition = deserialize_row_condition(row_condition)
    if isinstance(row_condition, PassThroughCondition):
        return row_condition.pass_through_filter
    if isinstance(row_condition, Condition):
        return engine.condition_to_filter_clause(row_condition)
    return None


def _apply_row_condition_filter(self: PandasExecutionEngine, data: pd.DataFrame, row_condition: Any,
                                domain_kwargs: dict) -> pd.DataFrame:
    memo = _MEMO.get()
    clause = _clause(self, row_condition) if memo is not None else None
    if clause is None:
        return _SHIPPED(self, data, row_condition, domain_kwargs)
    key = (id(data), clause)
    if key not in memo:
        memo[key] = (data, data.query(clause))
    # the same filtered frame for every metric of the condition: pandas ≥ 3 copies on write, so a metric that
    # changed its frame would change a copy of its own, never what the next metric reads
    return memo[key][1]


PandasExecutionEngine._apply_row_condition_filter = _apply_row_condition_filter


@contextmanager
def memoized_row_filters() -> Iterator[None]:
    """Evaluate each row condition once per frame while the block runs (one validation)."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)
