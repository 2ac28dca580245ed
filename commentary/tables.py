"""Arrow schemas of every stage table and deterministic Parquet I/O.

Schemas are derived from the Pandera models in ``schemas.models``. Writers take an explicit schema (never inferred from the first record) and strip schema
metadata, so the same rows always give byte-identical files.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from commentary.settings import ROW_GROUP_ROWS, ROW_STEP
from schemas import models

log = logging.getLogger(__name__)

_ARROW_TYPES = {pl.String: pa.string(), pl.Int64: pa.int64(), pl.UInt32: pa.uint32(), pl.Date: pa.date32()}
#: Columns of whole texts (pages, bodies, furniture lines): their values seldom repeat and nothing filters on them, so a
#: run's files store them without a dictionary or statistics.
_FREE_TEXT = frozenset({"text", "body"})


def _arrow_type(dtype: pl.DataType) -> pa.DataType:
    if isinstance(dtype, pl.Array):
        return pa.list_(_arrow_type(dtype.inner), dtype.size)
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
MARKS = arrow_schema(models.DuplicateMark)
DEDUP_KEYS = arrow_schema(models.DedupKey)
MEASURES = arrow_schema(models.ArticleMeasure)


@dataclass(frozen=True)
class ReleaseTable:
    """A table of a release: its model, Arrow schema, key (also its sort order) and files in the release folder."""

    model: type[models.pa.DataFrameModel]
    schema: pa.Schema
    key: tuple[str, ...]
    files: str

    def paths(self, release_folder: Path) -> list[Path]:
        return sorted(release_folder.glob(self.files))

    def in_release(self, release_folder: Path) -> TableFiles:
        """This table's files in a release folder, with the schema they were written with."""
        paths = self.paths(release_folder)
        return TableFiles(paths, pq.read_schema(paths[0]).remove_metadata() if paths else self.schema)


@dataclass(frozen=True)
class TableFiles:
    """The Parquet files of one table: a run's shards or a release's parts.

    ``overrides``: a Parquet file keyed by ``doc_id`` whose other columns replace the files' own;
    rows whose ``doc_id`` it lacks are left out (a run's cleaned articles with the curate stage's
    duplicate marks). Rows are read ROW_STEP rows or one file at a time, never the whole table.
    """

    paths: list[Path]
    schema: pa.Schema
    overrides: Path | None = None

    def chunks(self, columns: list[str] | None = None) -> Iterator[pa.Table]:
        """The rows of each file, ROW_STEP at a time, as ``schema`` (or its ``columns``)."""
        schema = pa.schema([self.schema.field(name) for name in columns]) if columns else self.schema
        for path in self.paths:
            for batch in pq.ParquetFile(path).iter_batches(ROW_STEP, columns=self._source_columns(schema)):
                yield self._as(pa.Table.from_batches([batch]), schema)

    def read(self, path: Path) -> pa.Table:
        """One of the files, whole, as ``schema``."""
        return self._as(pq.read_table(path, columns=self._source_columns(self.schema)), self.schema)

    def _source_columns(self, schema: pa.Schema) -> list[str]:
        return schema.names if self.overrides is None or "doc_id" in schema.names else ["doc_id", *schema.names]

    def _as(self, table: pa.Table, schema: pa.Schema) -> pa.Table:
        if self.overrides is not None and table.num_rows:
            bounds = pc.min_max(table["doc_id"])
            start = np.searchsorted(self._override_ids, bounds["min"].as_py())
            end = np.searchsorted(self._override_ids, bounds["max"].as_py(), "right")
            overrides = self._override_table.slice(start, end - start)
            rows = pc.index_in(table["doc_id"], value_set=overrides["doc_id"])
            found = pc.is_valid(rows)
            table, rows = table.filter(found), rows.filter(found)
            for name in [name for name in overrides.column_names[1:] if name in table.column_names]:
                table = table.set_column(table.schema.get_field_index(name), name, overrides[name].take(rows))
        return table.select(schema.names).cast(schema)

    @cached_property
    def _override_table(self) -> pa.Table:
        return pq.read_table(self.overrides).sort_by("doc_id")

    @cached_property
    def _override_ids(self) -> np.ndarray:
        """The overrides' ``doc_id`` values in order, to find a chunk's range by binary search."""
        return self._override_table["doc_id"].to_numpy(zero_copy_only=False)

    def frames(self, columns: list[str] | None = None) -> Iterator[pl.DataFrame]:
        return (pl.from_arrow(chunk) for chunk in self.chunks(columns))

    def frame(self, columns: list[str]) -> pl.DataFrame:
        """Every row of a few narrow ``columns`` as one frame (an empty one when there are no rows)."""
        return pl.concat([pl.from_arrow(pa.schema([self.schema.field(name) for name in columns]).empty_table()), *self.frames(columns)])

    def scan(self) -> pl.LazyFrame:
        """All rows lazily (an empty frame of the schema when there are no files)."""
        return pl.scan_parquet(self.paths, glob=False) if self.paths else pl.from_arrow(self.schema.empty_table()).lazy()


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
    """Write one file of a run folder deterministically (lz4, fixed row groups), aside and then renamed over ``path``.

    A run's files are read back by the run (and the next ones) only, so they are compressed for speed (lz4 writes and reads
    about twice as fast as zstd, for files about 40% larger) and their whole texts have neither a dictionary nor statistics;
    releases are zstd (``write_row_groups``). The rename replaces an existing file, never writes into it: it may be a hard
    link to an earlier run's file (``link_file``).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table = table.select(schema.names).cast(schema).replace_schema_metadata(None)
    coded = [name for name in schema.names if name not in _FREE_TEXT]
    with no_space_is_disk_full(aside):
        pq.write_table(table, aside, compression="lz4", row_group_size=row_group_rows, write_statistics=coded, use_dictionary=coded)
        os.replace(aside, path)
    return path


def write_text(path: Path, text: str) -> Path:
    """Write a text file atomically: written aside, synced, then renamed over ``path`` (never seen half written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with no_space_is_disk_full(aside):
        with aside.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(aside, path)
    return path


def read_record(path: Path) -> dict | None:
    """A JSON object the pipeline wrote (a run's ledger, the cache index); None when it is missing, and
    when it is damaged (empty, cut short, not an object) after a warning: such a record is never fatal."""
    try:
        record = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        log.warning("skipped %s: unreadable (%s)", path, error)
        return None
    if not isinstance(record, dict):
        log.warning("skipped %s: not a JSON object", path)
        return None
    return record


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
            aside = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            shutil.copyfile(source, aside)
            os.replace(aside, target)
    return target


def write_row_groups(chunks: Iterable[pa.Table], path_of_part, schema: pa.Schema, group_bytes: int, part_groups: int) -> list[Path]:
    """Stream ``chunks`` into Parquet part files; returns the files written (at least one).

    Rows are cut into blocks of ROW_STEP rows; a row group takes blocks while it stays within
    ``group_bytes`` of uncompressed Arrow data (at least one block), a part file ``path_of_part(n)``
    holds ``part_groups`` row groups. Blocks are contiguous and cut from the rows alone, and a group is
    written from its blocks without another copy, so the files depend only on the rows, not on how the
    chunks were cut: byte-identical for the same rows.
    """
    written: list[Path] = []
    writer: pq.ParquetWriter | None = None
    groups_in_part = 0

    def write_group(blocks: list[pa.Table]) -> None:
        nonlocal writer, groups_in_part
        if writer is None or groups_in_part == part_groups:
            if writer is not None:
                writer.close()
            written.append(path_of_part(len(written)))
            written[-1].parent.mkdir(parents=True, exist_ok=True)
            writer = pq.ParquetWriter(written[-1], schema, compression="zstd", write_statistics=True)
            groups_in_part = 0
        group = pa.concat_tables(blocks)
        writer.write_table(group, row_group_size=max(1, group.num_rows))
        groups_in_part += 1

    schema = schema.remove_metadata()
    group: list[pa.Table] = []
    group_size = 0
    for block in _blocks((chunk.select(schema.names).cast(schema) for chunk in chunks), ROW_STEP):
        if group and group_size + block.nbytes > group_bytes:
            write_group(group)
            group, group_size = [], 0
        group.append(block)
        group_size += block.nbytes
    if group or not written:
        write_group(group or [schema.empty_table()])
    writer.close()
    return written


def _blocks(chunks: Iterable[pa.Table], rows: int) -> Iterator[pa.Table]:
    """Re-cut a stream of tables into contiguous tables of ``rows`` rows (the last may be shorter)."""
    pending: list[pa.Table] = []
    held = 0
    for chunk in chunks:
        while chunk.num_rows:
            take = min(rows - held, chunk.num_rows)
            pending.append(chunk.slice(0, take))
            held += take
            chunk = chunk.slice(take)
            if held == rows:
                yield pa.concat_tables(pending).combine_chunks()
                pending, held = [], 0
    if held:
        yield pa.concat_tables(pending).combine_chunks()


def read_parquet(paths: list[Path] | Path, schema: pa.Schema, columns: list[str] | None = None) -> pl.DataFrame:
    """Read one or more Parquet files of a stage into a single frame (empty frame if none).

    ``columns``: read only these (the rest of each file is never decoded).
    """
    paths = [paths] if isinstance(paths, Path) else list(paths)
    if columns is not None:
        schema = pa.schema([schema.field(name) for name in columns])
    if not paths:
        return pl.from_arrow(schema.empty_table())
    return pl.from_arrow(pa.concat_tables([pq.read_table(p, columns=schema.names, schema=schema) for p in paths]))


def read_matrix(paths: list[Path], column: str, schema: pa.Schema) -> np.ndarray:
    """A fixed-size list column of Parquet files as one 2-D NumPy array, filled file by file (never held twice)."""
    kind = schema.field(column).type
    counts = [pq.ParquetFile(path).metadata.num_rows for path in paths]
    matrix = np.empty((sum(counts), kind.list_size), dtype=kind.value_type.to_pandas_dtype())
    start = 0
    for path, count in zip(paths, counts, strict=True):
        values = pq.read_table(path, columns=[column], schema=pa.schema([schema.field(column)])).column(column).combine_chunks()
        matrix[start:start + count] = values.flatten().to_numpy().reshape(count, kind.list_size)
        start += count
    return matrix
