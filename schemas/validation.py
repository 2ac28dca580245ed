"""Lazy Pandera validation that splits a table into valid rows and failures with a reason."""
from __future__ import annotations

import pandera.polars as pa
import polars as pl

_ROW = "__row"
REASON, DETAIL = "failure_reason", "failure_detail"


def split_valid(frame: pl.DataFrame, model: type[pa.DataFrameModel]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validate every check at once; return (valid rows, failed rows with ``failure_reason`` and ``failure_detail``).

    A row fails with the first failed check that names it. A failure that names no row (a
    missing column, a type that cannot be coerced) fails the whole table.
    """
    try:
        return model.validate(frame, lazy=True), _failed(frame.head(0), "", "")
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
    except (pa.errors.SchemaError, pl.exceptions.PolarsError) as error:
        return frame.head(0), _failed(frame, f"schema:{model.__name__}:structure", str(error).splitlines()[0][:200])
    whole_table = cases.filter(pl.col("index").is_null())
    if whole_table.height:
        first = whole_table.row(0, named=True)
        return frame.head(0), _failed(frame, _reason(first["column"], first["check"]), str(first["failure_case"])[:200])
    reasons = (
        cases.group_by("index", maintain_order=True)
        .agg(pl.col("column").first(), pl.col("check").first(), pl.col("failure_case").first())
        .select(
            pl.col("index").cast(pl.UInt32).alias(_ROW),
            pl.struct("column", "check").map_elements(lambda c: _reason(c["column"], c["check"]), return_dtype=pl.String).alias(REASON),
            pl.format("{} failed on {}", "check", pl.col("failure_case").str.slice(0, 200)).alias(DETAIL),
        )
    )
    indexed = frame.with_row_index(_ROW)
    failed = indexed.join(reasons, on=_ROW, how="inner").sort(_ROW).drop(_ROW)
    valid = indexed.join(reasons, on=_ROW, how="anti").drop(_ROW)
    return model.validate(valid), failed


def _reason(column: str, check: str) -> str:
    """A short stable code such as ``schema:doc_id:str_matches``."""
    return f"schema:{column}:{check.split('(')[0]}"


def _failed(frame: pl.DataFrame, reason: str, detail: str) -> pl.DataFrame:
    return frame.with_columns(pl.lit(reason).alias(REASON), pl.lit(detail).alias(DETAIL))
