"""What changed between two releases (article changes, column changes) and the version that follows.

Articles are matched by ``doc_id``. An article is ``modified`` when any column it has in both
releases, or its furniture audit, differs; ``changed_fields`` names them (``furniture`` for the
audit). Values are compared through 64-bit hashes per document and column (``TableHashes``): the
new release's are taken while it is written, the latest release's were kept in ``<curated>/cache/``
by its own publish, so a publish reads neither release twice and neither has to fit in memory.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import polars as pl
import pyarrow as pa

from commentary import tables
from commentary.tables import TableFiles
from schemas.models import CHANGE_KINDS

#: Tables whose content and columns decide the version; ``changes`` itself is not compared.
COMPARED_TABLES = ("articles", "furniture")
FURNITURE_FIELD = "furniture"
#: Columns that never make an article modified: the key, and the furniture's line numbers, which shift whenever a
#: line above changes (the body's own change is counted in ``body``); a line that moved is the same removed line.
UNCOMPARED = ("doc_id", "line_no")
#: Fixed, so that two releases' hashes are comparable; Polars' hashes may change between its versions, so
#: kept hashes carry the Polars version and this module they were computed with (``publish._hashes_stamp``).
_HASH_SEED = 0


@dataclass(frozen=True)
class Diff:
    """Article changes (``tables.CHANGES`` rows, by ``doc_id``) and column changes per table; ``first`` when there was
    no release before."""

    changes: pl.DataFrame
    columns: dict[str, dict[str, list[str]]]
    first: bool = False

    def counts(self) -> dict[str, int]:
        found = dict(self.changes.group_by("change").len().iter_rows())
        return {kind: found.get(kind, 0) for kind in CHANGE_KINDS}

    def field_counts(self) -> dict[str, int]:
        exploded = self.changes.select(pl.col("changed_fields").explode()).drop_nulls()
        return dict(exploded.group_by("changed_fields", maintain_order=True).len().sort("len", descending=True).iter_rows())

    @property
    def bump(self) -> str | None:
        """``first`` (the first release), ``major`` (a column removed, renamed or retyped), ``minor`` (articles or
        columns added or removed), ``patch`` (only existing articles changed) or None (nothing changed)."""
        counts = self.counts()
        if self.first:
            return "first" if counts["added"] else None
        if any(c["removed"] or c["retyped"] for c in self.columns.values()):
            return "major"
        if counts["added"] or counts["removed"] or any(c["added"] for c in self.columns.values()):
            return "minor"
        return "patch" if counts["modified"] else None

    def summary(self) -> dict:
        return {"bump": self.bump, "articles": self.counts(), "fields": self.field_counts(),
                "columns": {t: c for t, c in self.columns.items() if any(c.values())}}


@dataclass(frozen=True)
class TableHashes:
    """A release table as hashes: per document (``doc_id``), a 64-bit hash of each column's values in key
    order, and the table's schema. Two releases differ in a document's column exactly when these do."""

    schema: pa.Schema
    hashes: pl.DataFrame


class Hasher:
    """Hashes a table's rows as they stream past (``tee``), so that writing a release reads it once.

    Rows come in key order, so a document's rows are contiguous: each chunk is reduced to one row
    per document at once, but for its last document, whose rows may go on in the next chunk.
    """

    def __init__(self, schema: pa.Schema):
        self.schema = schema
        self._columns = [name for name in schema.names if name != "doc_id"]
        self._documents: list[pl.DataFrame] = []
        self._waiting = pl.DataFrame(schema={"doc_id": pl.String} | dict.fromkeys(self._columns, pl.UInt64))

    def tee(self, chunks: Iterable[pa.Table]) -> Iterator[pa.Table]:
        """Pass ``chunks`` through, hashing each row's values."""
        for chunk in chunks:
            rows = pl.from_arrow(chunk.select(["doc_id", *self._columns])).select("doc_id", pl.col(self._columns).hash(_HASH_SEED))
            rows = pl.concat([self._waiting, rows])
            if rows.height:
                last = pl.col("doc_id") == rows["doc_id"][-1]
                self._documents.append(self._per_document(rows.filter(~last)))
                self._waiting = rows.filter(last)
            yield chunk

    def result(self) -> TableHashes:
        return TableHashes(self.schema, pl.concat([*self._documents, self._per_document(self._waiting)]))

    @staticmethod
    def _per_document(rows: pl.DataFrame) -> pl.DataFrame:
        """One row per document: each column's hash over the document's rows in order."""
        return rows.group_by("doc_id", maintain_order=True).agg(pl.exclude("doc_id")).with_columns(pl.exclude("doc_id").hash(_HASH_SEED))


def hash_table(files: TableFiles) -> TableHashes:
    """Hash a table's files (their rows in key order) a thousand rows at a time."""
    hasher = Hasher(files.schema)
    for _ in hasher.tee(files.chunks()):
        pass
    return hasher.result()


def diff(old: dict[str, TableHashes] | None, new: dict[str, TableHashes]) -> Diff:
    """Compare two releases' tables, given as hashes (``old`` None: everything is added).

    An article is modified when a column it has in both releases with the same type differs, or
    when its furniture lines do (a compared furniture column of any of its lines).
    """
    new_ids = new["articles"].hashes.select("doc_id")
    no_fields = pl.lit([], dtype=pl.List(pl.String))
    if old is None:
        added = new_ids.with_columns(change=pl.lit("added"), changed_fields=no_fields)
        return Diff(_as_changes(added), {t: {"removed": [], "added": [], "retyped": []} for t in COMPARED_TABLES}, first=True)
    schemas = {t: (pl.from_arrow(old[t].schema.empty_table()).schema, pl.from_arrow(new[t].schema.empty_table()).schema)
               for t in COMPARED_TABLES}
    columns = {t: {"removed": [c for c in before if c not in after], "added": [c for c in after if c not in before],
                   "retyped": [c for c in before if c in after and before[c] != after[c]]}
               for t, (before, after) in schemas.items()}
    compared = {t: [c for c, kind in after.items() if c not in UNCOMPARED and before.get(c) == kind] for t, (before, after) in schemas.items()}
    lines = old["furniture"].hashes.join(new["furniture"].hashes, on="doc_id", how="full", coalesce=True, suffix="__new")
    lines_differ = lines.filter(pl.any_horizontal(False, *(pl.col(c).ne_missing(pl.col(f"{c}__new")) for c in compared["furniture"])))
    flags = [pl.when(pl.col(c).ne_missing(pl.col(f"{c}__new"))).then(pl.lit(c)) for c in compared["articles"]]
    flags.append(pl.when(pl.col("doc_id").is_in(lines_differ["doc_id"].implode())).then(pl.lit(FURNITURE_FIELD)))
    old_rows, new_rows = old["articles"].hashes, new["articles"].hashes
    modified = (old_rows.join(new_rows, on="doc_id", suffix="__new")
                .select("doc_id", changed_fields=pl.concat_list(flags).list.drop_nulls())
                .filter(pl.col("changed_fields").list.len() > 0).with_columns(change=pl.lit("modified")))
    old_ids = old_rows.select("doc_id")
    added = new_ids.join(old_ids, on="doc_id", how="anti").with_columns(change=pl.lit("added"), changed_fields=no_fields)
    removed = old_ids.join(new_ids, on="doc_id", how="anti").with_columns(change=pl.lit("removed"), changed_fields=no_fields)
    return Diff(_as_changes(pl.concat([added, removed, modified], how="diagonal")), columns)


def _as_changes(frame: pl.DataFrame) -> pl.DataFrame:
    return pl.from_arrow(tables.to_arrow(frame.sort("doc_id"), tables.CHANGES))


def next_version(previous: str | None, bump: str) -> str:
    """The semantic version after ``previous`` for a ``major``, ``minor`` or ``patch`` change (1.0.0 for the first)."""
    if previous is None:
        return "1.0.0"
    major, minor, patch = parse_version(previous)
    return {"major": f"{major + 1}.0.0", "minor": f"{major}.{minor + 1}.0", "patch": f"{major}.{minor}.{patch + 1}"}[bump]


def parse_version(version: str) -> tuple[int, int, int]:
    """``"1.10.0"`` -> ``(1, 10, 0)``; ValueError for anything that is not MAJOR.MINOR.PATCH."""
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{version!r} is not a semantic version MAJOR.MINOR.PATCH")
    return int(parts[0]), int(parts[1]), int(parts[2])
