"""Reading a published release: ``load`` one table into pandas, Polars or Arrow, or DuckDB views over all of them."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from commentary.release import release_path
from commentary.tables import RELEASE_TABLES

ENGINES = ("pandas", "polars", "arrow")


def load(version: str = "latest", table: str = "articles", engine: str = "pandas", include_duplicates: bool = False,
         curated: str | Path = "curated"):
    """One table of a release (``articles``, ``furniture`` or ``changes``) as a pandas, Polars or Arrow table.

    Without ``include_duplicates``, duplicate articles (``duplicate_of`` set) and their furniture
    lines are left out: one canonical copy per article.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if table not in RELEASE_TABLES:
        raise ValueError(f"unknown table {table!r}; a release has {', '.join(RELEASE_TABLES)}")
    folder = release_path(Path(curated), version)
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
    return data.to_pandas()


def _canonical_ids(folder: Path) -> pa.Array:
    articles = ds.dataset(RELEASE_TABLES["articles"].paths(folder), format="parquet")
    return articles.to_table(columns=["doc_id"], filter=ds.field("duplicate_of").is_null())["doc_id"].combine_chunks()


def duckdb_views(version: str = "latest", curated: str | Path = "curated", connection=None):
    """Register a release as DuckDB views: ``articles`` (canonical copies), ``articles_all``, ``furniture``, ``changes``.

    Returns the connection (a new in-memory one unless ``connection`` is given).
    """
    import duckdb

    folder = release_path(Path(curated), version).resolve()
    con = connection or duckdb.connect()
    for name, spec in RELEASE_TABLES.items():
        files = ", ".join(_sql_string(str(path)) for path in spec.paths(folder))
        view = "articles_all" if name == "articles" else name
        con.execute(f"create or replace view {view} as select * from read_parquet([{files}])")
    con.execute("create or replace view articles as select * from articles_all where duplicate_of is null")
    return con


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
