"""The layout of a curated folder and of each run's folder: one object each owns its paths, and every write is atomic.

A run folder (``<curated>/runs/<run_id>/``) holds ``stages/<table>/shard-NNNNN.parquet`` (the
curate stage: ``stages/curate/marks.parquet``), ``rejects/<stage>-NNNNN.parquet``,
``repairs/<stage>-NNNNN.parquet`` and, once merged, ``rejects.parquet``, ``repairs.parquet``,
``quality.json`` (the suites' files under ``quality/``) and ``ledger.json``. Files are written
aside and renamed into place (``tables.write_parquet``, ``tables.write_text``) or hard-linked
from an earlier run (``tables.link_file``), so a file is whole or absent.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from commentary import cache, reader, tables
from commentary.stages import frame
from commentary.storage import RemoteFolder

#: Every stage table of a run and its schema.
SCHEMAS = {"stamps": cache.STAMPS, "ingest": tables.INGESTED, "keys": cache.KEYS, "clean": tables.ARTICLES,
           "furniture": tables.FURNITURE, "dedup": tables.DEDUP_KEYS, "measures": tables.MEASURES}
#: The stage tables each shard step writes; the first is what its cache look-up compares.
SHARD_TABLES = {"ingest": ("stamps", "ingest"), "clean": ("keys", "clean", "furniture", "dedup", "measures")}
#: The two kinds of notes a step leaves about raw files, and their schemas.
NOTES = {"rejects": tables.REJECTS, "repairs": tables.REPAIRS}


@dataclass(frozen=True)
class RunFolder:
    """The folder of one run."""

    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name

    def shard(self, table: str, shard_no: int) -> Path:
        return self.path / "stages" / table / f"shard-{shard_no:05d}.parquet"

    def shards(self, table: str) -> list[Path]:
        """Every shard file of ``table``, in shard order."""
        return sorted((self.path / "stages" / table).glob("shard-*.parquet"))

    @property
    def marks(self) -> Path:
        """The curate stage's table: every article of the run and the canonical copy it duplicates."""
        return self.path / "stages" / "curate" / "marks.parquet"

    def note(self, kind: str, stage: str, shard_no: int) -> Path:
        """The ``rejects`` or ``repairs`` of one stage and shard."""
        return self.path / kind / f"{stage}-{shard_no:05d}.parquet"

    def notes(self, kind: str, stage: str = "*") -> list[Path]:
        """Every file of ``rejects`` or ``repairs`` (of ``stage``), sorted."""
        return sorted((self.path / kind).glob(f"{stage}-*.parquet"))

    def merged(self, kind: str) -> Path:
        """``rejects.parquet`` or ``repairs.parquet``: every stage's notes in one table."""
        return self.path / f"{kind}.parquet"

    @property
    def quality(self) -> Path:
        return self.path / "quality.json"

    @property
    def quality_files(self) -> Path:
        """The folder of the quality suites' own files (validation results, data docs)."""
        return self.path / "quality"

    @property
    def ledger(self) -> Path:
        return self.path / "ledger.json"

    def complete(self) -> bool:
        """Whether every shard of the run has every file its steps write (none deleted since)."""
        return all(path.is_file() for n in range(len(self.shards("stamps"))) for step in SHARD_TABLES
                   for path in self.step_files(step, n))

    def step_files(self, step: str, shard_no: int) -> list[Path]:
        """Every file a shard step writes: its stage tables, rejects and repairs."""
        return [self.shard(table, shard_no) for table in SHARD_TABLES[step]] + [self.note(kind, step, shard_no) for kind in NOTES]

    def read(self, table: str, shard_no: int, columns: list[str] | None = None) -> pl.DataFrame:
        return tables.read_parquet(self.shard(table, shard_no), SCHEMAS[table], columns)

    def read_note(self, kind: str, stage: str, shard_no: int) -> pl.DataFrame:
        return tables.read_parquet(self.note(kind, stage, shard_no), NOTES[kind])

    def articles(self) -> tables.TableFiles:
        """The run's articles: its cleaned shards with the duplicate marks of the curate stage (rows without a mark are left out)."""
        return tables.TableFiles(self.shards("clean"), tables.ARTICLES, overrides=self.marks)

    def furniture(self) -> tables.TableFiles:
        """The furniture audit of the run's articles (those with a duplicate mark)."""
        return tables.TableFiles(self.shards("furniture"), tables.FURNITURE, overrides=self.marks)

    def write(self, table: str, shard_no: int, rows: pl.DataFrame) -> Path:
        return tables.write_parquet(rows.to_arrow(), self.shard(table, shard_no), SCHEMAS[table])

    def write_marks(self, marks: pl.DataFrame) -> Path:
        return tables.write_parquet(marks.to_arrow(), self.marks, tables.MARKS)

    def write_notes(self, kind: str, stage: str, shard_no: int, rows: list[dict] | pl.DataFrame) -> Path:
        notes = rows if isinstance(rows, pl.DataFrame) else frame(rows, NOTES[kind])
        return tables.write_parquet(notes.to_arrow(), self.note(kind, stage, shard_no), NOTES[kind])

    def write_merged(self, kind: str, notes: pl.DataFrame) -> Path:
        return tables.write_parquet(notes.to_arrow(), self.merged(kind), NOTES[kind])

    def write_record(self, path: Path, record: dict) -> Path:
        """Write ``record`` as indented JSON to ``path`` (``quality`` or ``ledger``)."""
        return tables.write_text(path, json.dumps(record, indent=2, default=str) + "\n")

    def link_step(self, source: RunFolder, source_shard: int, step: str, shard_no: int) -> Path:
        """Link ``source``'s outputs of shard step ``step`` for its shard ``source_shard`` into this run; returns the step's main table."""
        for origin, target in zip(source.step_files(step, source_shard), self.step_files(step, shard_no), strict=True):
            tables.link_file(origin, target)
        return self.shard(step, shard_no)

    def link_from(self, source: RunFolder, path: Path) -> Path:
        """Link ``path``, a file of ``source``, to the same place in this run folder."""
        return tables.link_file(path, self.path / path.relative_to(source.path))


@dataclass(frozen=True)
class CuratedFolder:
    """The curated folder's run side: run folders, the run lock, the WARC cache and the run behind ``LATEST``.

    The releases' own layout (``releases/``, ``LATEST``, ``latest``, ``CHANGELOG.md``, the kept hashes) is read by
    ``commentary.reader`` and written by ``commentary.release.publish``; the cache index by ``commentary.cache``.
    """

    root: Path

    @property
    def lock(self) -> Path:
        return self.root / ".run.lock"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def run(self, run_id: str) -> RunFolder:
        return RunFolder(self.runs / run_id)

    def run_folders(self) -> list[RunFolder]:
        """The run folders, oldest first (run ids are UTC timestamps)."""
        return [RunFolder(path) for path in sorted(self.runs.iterdir()) if path.is_dir()] if self.runs.is_dir() else []

    def new_run(self) -> RunFolder:
        """Create the folder of a new run, named by the time it starts."""
        folder = self.run(dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ"))
        folder.path.mkdir(parents=True)
        return folder

    def inside(self, raw_root: Path | RemoteFolder) -> Path | None:
        """This folder as a folder of the local ``raw_root`` when it lies inside it (``raw_root`` itself when it is that folder), else None.

        Its releases and reports are not raw input.
        """
        if isinstance(raw_root, RemoteFolder) or not self.root.resolve().is_relative_to(raw_root.resolve()):
            return None
        return raw_root / self.root.resolve().relative_to(raw_root.resolve())

    @property
    def warc_cache(self) -> Path:
        """Where WARC archives' records are unpacked to (``warc.expand``)."""
        return cache.index_path(self.root).parent / "warc"

    def latest_version(self) -> str | None:
        return reader.latest_version(self.root)

    def latest_run_id(self) -> str | None:
        """The run that made the ``LATEST`` release."""
        latest = self.latest_version()
        manifest = tables.read_record(reader.releases_dir(self.root) / latest / reader.MANIFEST) if latest else None
        return (manifest or {}).get("run_id")
