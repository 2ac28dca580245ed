"""Incremental processing: reuse the clean outputs of documents that did not change.

A document's clean outputs (its article or its reject, and its furniture lines) depend only on
its ingest record and on the processing code. So a run reuses them from the previous run when
the document's key (``source_sha256``, path and sidecar fields) and the pipeline fingerprint
(the processing code, rules and lock file) are unchanged; everything else is cleaned afresh.

The cache is the previous run's clean shards, named in ``<curated>/cache/clean.json`` once all
of that run's shards were cleaned. Shards cover contiguous ``doc_id`` ranges, so one shard's
look-up reads only the one or two previous shards that overlap it: memory stays bounded by the
shard size. Run folders other than the one named there can be deleted without losing the cache.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
#: Everything that decides what ingest and clean make of a raw file (folders are read whole).
PROCESSING_SOURCES = (
    "commentary/ingest.py", "commentary/stages.py", "commentary/tables.py", "commentary/settings.py",
    "commentary/clean", "commentary/rules", "schemas/models.py", "schemas/validation.py", "uv.lock",
)
#: Ingest columns that, with ``source_sha256``, decide a document's clean outputs.
KEY_COLUMNS = ("source_path", "source_sha256", "format", "url", "outlet", "published_date", "language")
INDEX_NAME = "clean.json"
#: Per shard of a run: the key of every document that entered the clean stage.
KEYS = pa.schema([("doc_id", pa.string()), ("source_path", pa.string()), ("cache_key", pa.string())])


def pipeline_fingerprint(root: Path = REPO) -> str:
    """sha256 over the processing sources (path and bytes of every file, in a stable order)."""
    digest = hashlib.sha256()
    for name in PROCESSING_SOURCES:
        target = root / name
        files = sorted(p for p in target.rglob("*") if p.is_file() and "__pycache__" not in p.parts) \
            if target.is_dir() else [target] if target.is_file() else []
        for path in files:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def document_keys(ingested: pl.DataFrame) -> pl.DataFrame:
    """``doc_id``, ``source_path`` and ``cache_key`` (sha256 of the key columns) of each ingest record."""
    rows = ingested.select(pl.concat_str([pl.col(c).cast(pl.String).fill_null("\0") for c in KEY_COLUMNS], separator="\x1f"))
    keys = [hashlib.sha256(row.encode()).hexdigest() for row in rows.to_series()]
    return ingested.select("doc_id", "source_path").with_columns(pl.Series("cache_key", keys, dtype=pl.String))


@dataclass(frozen=True)
class CleanCache:
    """The previous run's clean shards, with the ``doc_id`` range of each."""

    run_dir: Path
    ranges: list[tuple[int, str, str]]

    def shards_overlapping(self, first: str, last: str) -> list[int]:
        return [n for n, low, high in self.ranges if low <= last and high >= first]


def index_path(curated_root: Path) -> Path:
    return curated_root / "cache" / INDEX_NAME


def load(curated_root: Path, fingerprint: str) -> CleanCache | None:
    """The cache valid for ``fingerprint``, or None (no previous run, other code, folder gone)."""
    path = index_path(curated_root)
    if not path.is_file():
        return None
    index = json.loads(path.read_text())
    run_dir = curated_root / index["run_dir"]
    if index["fingerprint"] != fingerprint or not run_dir.is_dir():
        return None
    return CleanCache(run_dir, [tuple(r) for r in index["ranges"]])


def remember(curated_root: Path, run_dir: Path, fingerprint: str, ranges: list[tuple[int, str, str]]) -> Path:
    """Name ``run_dir``'s clean shards as the cache for later runs (written atomically)."""
    path = index_path(curated_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.tmp")
    aside.write_text(json.dumps({"fingerprint": fingerprint, "run_dir": run_dir.relative_to(curated_root).as_posix(),
                                 "ranges": ranges}, indent=1) + "\n")
    os.replace(aside, path)
    return path
