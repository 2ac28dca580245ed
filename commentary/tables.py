"""Arrow schemas of every stage table and deterministic Parquet I/O.

Schemas are derived from the Pandera models in ``schemas.models``. Writers take an explicit schema (never inferred from the first record) and strip schema
metadata, so the same rows always give byte-identical files.
"""
from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from commentary.settings import MINHASH_PERMUTATIONS, ROW_GROUP_ROWS
from schemas import models

_ARROW_TYPES = {pl.String: pa.string(), pl.Int64: pa.int64(), pl.Date: pa.date32()}


def _arrow_type(dtype: pl.DataType) -> pa.DataType:
    if isinstance(dtype, pl.List):
        return pa.list_(_arrow_type(dtype.inner))
    if isinstance(dtype, pl.Struct):
        return pa.struct([(f.name, _arrow_type(f.dtype)) for f in dtype.fields])
    return _ARROW_TYPES[dtype.base_type()]


def arrow_schema(model: type[models.pa.DataFrameModel]) -> pa.Schema:
    """The Arrow schema of a Pandera model, columns in declaration order; every column nullable."""
    return pa.schema([(name, _arrow_type(column.dtype.type)) for name, column in model.to_schema().columns.items()])


INGESTED = arrow_schema(models.IngestedRecord)
ARTICLES = arrow_schema(models.Article)
FURNITURE = arrow_schema(models.FurnitureLine)
REJECTS = arrow_schema(models.Reject)
REPAIRS = arrow_schema(models.Repair)
CHANGES = arrow_schema(models.ArticleChange)
#: What choosing canonical copies needs of each article (``stages.dedup_keys``); kept in the run, never released.
DEDUP_KEYS = pa.schema([
    ("doc_id", pa.string()), ("source_path", pa.string()), ("published_date", pa.date32()), ("outlet", pa.string()),
    ("syndicated_from", pa.string()), ("body_sha256", pa.string()), ("metadata_fields", pa.uint32()),
    ("minhash", pa.list_(pa.uint32(), MINHASH_PERMUTATIONS)),
])


@dataclass(frozen=True)
class ReleaseTable:
    """A table of a release: its model, Arrow schema, key (also its sort order) and files in the release folder."""

    model: type[models.pa.DataFrameModel]
    schema: pa.Schema
    key: tuple[str, ...]
    files: str

    def paths(self, release_folder: Path) -> list[Path]:
        return sorted(release_folder.glob(self.files))


RELEASE_TABLES = {
    "articles": ReleaseTable(models.Article, ARTICLES, ("doc_id",), "articles/*.parquet"),
    "furniture": ReleaseTable(models.FurnitureLine, FURNITURE, ("doc_id", "line_no"), "furniture/*.parquet"),
    "changes": ReleaseTable(models.ArticleChange, CHANGES, ("doc_id",), "changes.parquet"),
}


#: Error numbers that mean the disk (or the user's quota) is full.
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class DiskFull(RuntimeError):
    """The device filled up while writing; what was being written has been removed."""


@contextmanager
def no_space_is_disk_full(path: Path) -> Iterator[None]:
    """Turn "no space left on device" while writing the file ``path`` into DiskFull; remove the partial file."""
    try:
        yield
    except OSError as error:
        if error.errno not in NO_SPACE:
            raise
        path.unlink(missing_ok=True)
        raise DiskFull(f"no space left on the device while writing {path}") from error


def to_arrow(frame: pl.DataFrame, schema: pa.Schema) -> pa.Table:
    """Cast a frame to the stage schema, column order included."""
    return frame.select(schema.names).to_arrow().cast(schema)


def write_parquet(table: pa.Table, path: Path, schema: pa.Schema, row_group_rows: int = ROW_GROUP_ROWS) -> Path:
    """Write one Parquet file deterministically (zstd, statistics, fixed row groups).

    An existing file is unlinked first: it may be a hard link to an earlier run's file (``link_file``).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    table = table.select(schema.names).cast(schema).replace_schema_metadata(None)
    with no_space_is_disk_full(path):
        pq.write_table(
            table, path, compression="zstd", row_group_size=row_group_rows, write_statistics=True,
        )
    return path


def link_file(source: Path, target: Path) -> Path:
    """Make ``target`` a hard link to ``source`` (a copy where the file system has no hard links).

    Safe because no file of a run is changed once written: writers replace files, never write into them.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    with no_space_is_disk_full(target):
        try:
            os.link(source, target)
        except OSError as error:
            if error.errno in NO_SPACE:
                raise
            shutil.copyfile(source, target)
    return target


def read_parquet(paths: list[Path] | Path, schema: pa.Schema) -> pl.DataFrame:
    """Read one or more Parquet files of a stage into a single frame (empty frame if none)."""
    paths = [paths] if isinstance(paths, Path) else list(paths)
    if not paths:
        return pl.from_arrow(schema.empty_table())
    return pl.from_arrow(pa.concat_tables([pq.read_table(p, schema=schema) for p in paths]))
