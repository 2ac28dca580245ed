"""Reading a published release: ``load`` one table into pandas, Polars or Arrow, or DuckDB views over all of them.

The curated folder is the one given, else ``$COMMENTARY_CURATED``, else the project's own ``curated/``
(beside this package), whatever the current folder. ``<curated>/latest/`` always links to the newest
release, so plain readers can glob ``curated/latest/articles/*.parquet``.
"""
from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from commentary.release import release_path
from commentary.tables import RELEASE_TABLES

ENGINES = ("pandas", "polars", "arrow")
#: The environment variable that names the default curated folder.
CURATED_VARIABLE = "COMMENTARY_CURATED"
PROJECT_CURATED = Path(__file__).resolve().parents[1] / "curated"


def default_curated() -> Path:
    """``$COMMENTARY_CURATED`` when set, else the project's ``curated/`` folder."""
    return Path(os.environ[CURATED_VARIABLE]) if os.environ.get(CURATED_VARIABLE) else PROJECT_CURATED


def _release_folder(curated: str | Path | None, version: str) -> Path:
    """The release folder, with an error that names the folder looked in and how it was chosen."""
    root = Path(curated) if curated is not None else default_curated()
    try:
        return release_path(root, version)
    except FileNotFoundError as error:
        chosen = "" if curated is not None else \
            f" (from ${CURATED_VARIABLE})" if os.environ.get(CURATED_VARIABLE) else f" (the project's folder; set ${CURATED_VARIABLE} or pass curated=)"
        raise FileNotFoundError(f"{error}{chosen}") from None


def load(version: str = "latest", table: str = "articles", engine: str = "pandas", include_duplicates: bool = False,
         curated: str | Path | None = None):
    """One table of a release (``articles``, ``furniture`` or ``changes``) as a pandas, Polars or Arrow table.

    Without ``include_duplicates``, duplicate articles (``duplicate_of`` set) and their furniture
    lines are left out: one canonical copy per article. ``curated``: see the module docstring.

    pandas types: dates (``published_date``, ``syndicated_date``) are ``datetime64[ms]`` (``.dt`` works,
    missing is ``NaT``); list columns (``authors``, ``tags``, ``summary``, ``changed_fields``) are
    ``pd.ArrowDtype(list<string>)``: each value is a Python list, ``.list`` gives vectorised access;
    ``field_sources`` holds a dict per row. Polars and Arrow keep the Parquet types (``Date``, ``List(String)``).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if table not in RELEASE_TABLES:
        raise ValueError(f"unknown table {table!r}; a release has {', '.join(RELEASE_TABLES)}")
    folder = _release_folder(curated, version)
    spec = RELEASE_TABLES[table]
    data = ds.dataset(spec.paths(folder), schema=spec.schema, format="parquet").to_table()
    if not include_duplicates and table in ("articles", "furniture"):
        canonical = _canonical_ids(folder)
        data = data.filter(pc.is_in(data["doc_id"], value_set=canonical))
    if engine == "arrow":
        return data
    if engine == "polars":
        import polars as pl

        return pl.from_arrow(data)
    return data.to_pandas(date_as_object=False, types_mapper=_pandas_type)


def _pandas_type(kind: pa.DataType):
    """List columns as Arrow-backed pandas columns (Python lists per value); the others as pandas chooses."""
    import pandas as pd

    return pd.ArrowDtype(kind) if pa.types.is_list(kind) else None


def _canonical_ids(folder: Path) -> pa.Array:
    articles = ds.dataset(RELEASE_TABLES["articles"].paths(folder), format="parquet")
    return articles.to_table(columns=["doc_id"], filter=ds.field("duplicate_of").is_null())["doc_id"].combine_chunks()


def duckdb_views(version: str = "latest", curated: str | Path | None = None, connection=None):
    """Register a release as DuckDB views: ``articles`` (canonical copies), ``articles_all``, ``furniture``, ``changes``.

    Returns the connection (a new in-memory one unless ``connection`` is given).
    """
    import duckdb

    folder = _release_folder(curated, version).resolve()
    con = connection or duckdb.connect()
    for name, spec in RELEASE_TABLES.items():
        files = ", ".join(_sql_string(str(path)) for path in spec.paths(folder))
        view = "articles_all" if name == "articles" else name
        con.execute(f"create or replace view {view} as select * from read_parquet([{files}])")
    con.execute("create or replace view articles as select * from articles_all where duplicate_of is null")
    return con


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
