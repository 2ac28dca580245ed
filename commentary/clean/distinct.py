"""Distinct lines of a shard: what depends on a line's text alone is computed once per distinct text.

A shard's pages repeat their sites' menus and footers: about half the lines of a shard of real
pages are repeats (docs/PERFORMANCE.md, "Cleaning speed").
"""
from __future__ import annotations

import numpy as np
import polars as pl


def text_ids(text: pl.Series) -> np.ndarray:
    """Each string's id (uint32): the number of distinct strings of ``text`` before its first occurrence.

    Strings are grouped by their 64-bit hash; every string is then compared with the first of its
    group, and a hash collision falls back to grouping the strings themselves.
    """
    first_row = _first_rows_of(text.hash())
    if not (text.gather(first_row) == text).all():
        first_row = _first_rows_of(text)
    return _ids_of_first_rows(first_row)


def _first_rows_of(key: pl.Series) -> np.ndarray:
    """The first row of each row's value of ``key`` (grouped by hashing in Polars, cheaper than sorting)."""
    return key.to_frame("key").with_row_index("row").select(pl.col("row").min().over("key")).to_series().to_numpy()


def _ids_of_first_rows(first_row: np.ndarray) -> np.ndarray:
    """Ids in order of first occurrence, from each row's first row with the same text."""
    is_first = first_row == np.arange(len(first_row))
    return (np.cumsum(is_first, dtype=np.uint32) - 1)[first_row]


def renumbered(ids: np.ndarray) -> np.ndarray:
    """The :func:`text_ids` of some rows of a table, numbered again as :func:`text_ids` numbers those rows alone."""
    return _ids_of_first_rows(_first_rows_of(pl.Series(ids)))


def first_rows(ids: np.ndarray) -> np.ndarray:
    """The row where each id of ``ids`` (:func:`text_ids`, of the same rows) first occurs, by id."""
    if not len(ids):
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, ids[1:] > np.maximum.accumulate(ids)[:-1]])
