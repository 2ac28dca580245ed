"""The clean cache: which earlier outputs a run may reuse (README, "Incremental processing").

``file_stamps`` records each raw file's stamp, so an unchanged file is not read again;
``document_keys`` and ``pipeline_fingerprint`` key a document's clean outputs; ``lay_out`` cuts a run's
files into shards that keep the cached run's shards and says where each shard's earlier outputs are;
``load`` and ``remember`` read and write the index (``<curated>/cache/clean.json``) that names the cached run.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from commentary import tables
from commentary.ingest import SIDECAR_SUFFIX, RawFile, doc_id_for
from commentary.settings import MAX_OVERLAPPING_SHARDS, MIN_FILE_AGE_SECONDS, STAMP_SETTLE_SECONDS
from commentary.storage import RemoteFolder
from schemas import models

REPO = Path(__file__).resolve().parents[1]
#: Everything that decides what ingest and clean make of a raw file (folders are read whole).
PROCESSING_SOURCES = (
    "commentary/ingest.py", "commentary/warc.py", "commentary/stages.py", "commentary/language.py", "commentary/steps.py",
    "commentary/runfolder.py", "commentary/cache.py",
    "commentary/tables.py", "commentary/settings.py", "commentary/clean", "commentary/rules",
    "schemas/models.py", "schemas/measures.py", "schemas/validation.py", "uv.lock",
)
#: Ingest columns that, with ``source_sha256``, decide a document's clean outputs.
KEY_COLUMNS = ("source_path", "source_sha256", "format", "url", "outlet", "published_date", "language", "fetched_at")
INDEX_NAME = "clean.json"
#: Per shard of a run: the key of every document that entered the clean stage.
KEYS = tables.arrow_schema(models.DocumentKey)
#: Per shard of a run: the stamp of every raw file.
STAMPS = tables.arrow_schema(models.FileStamp)


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


def file_stamps(raw_root: Path | RemoteFolder, files: list[RawFile]) -> pl.DataFrame:
    """``doc_id``, ``source_path`` and ``stamp`` of each raw file, taken before the file is read.

    Files behind a URL get no stamp: they are read on every run (their source hash still keys the
    clean cache), since object stores offer no change time to trust.
    """
    now = time.time_ns()
    local = isinstance(raw_root, Path)
    root = os.fspath(raw_root) if local else ""
    rows = [(doc_id_for(raw.rel_path), raw.rel_path, _stamp(os.path.join(root, raw.file), now) if local else None) for raw in files]
    return pl.DataFrame(rows, schema=pl.from_arrow(STAMPS.empty_table()).schema, orient="row")


def _stamp(path: str, now: int) -> str | None:
    """Size, mtime and ctime of a regular file and of its sidecar (``-`` when it has none).

    None when either is not a regular file (a symbolic link's target can change unseen) or was
    changed less than ``STAMP_SETTLE_SECONDS`` (or MIN_FILE_AGE_SECONDS, when longer) ago. Paths are strings: at 100,000 files, pathlib's
    objects cost more than the system calls.
    """
    parts = []
    settle = int(max(STAMP_SETTLE_SECONDS, MIN_FILE_AGE_SECONDS) * 10**9)
    for candidate, optional in ((path, False), (path + SIDECAR_SUFFIX, True)):
        try:
            info = os.lstat(candidate)
        except OSError as error:
            if optional and error.errno in (errno.ENOENT, errno.ENAMETOOLONG):  # no sidecar, or a name too long to have one
                parts.append("-")
                continue
            return None
        if not stat.S_ISREG(info.st_mode) or max(info.st_mtime_ns, info.st_ctime_ns) > now - settle:
            return None
        parts.append(f"{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}")
    return "/".join(parts)


@dataclass(frozen=True)
class Reuse:
    """Where a shard's earlier outputs are: the cached run and those of its shards that held the shard's files."""

    run_dir: Path
    shards: tuple[int, ...]

    @property
    def twin(self) -> int | None:
        """The one cached shard that held all of them, if any: its outputs may be linked whole."""
        return self.shards[0] if len(self.shards) == 1 else None


@dataclass(frozen=True)
class Shard:
    """The raw files of one shard of a run (in ``doc_id`` order), and where their earlier outputs are."""

    files: list[RawFile]
    reuse: Reuse | None


def lay_out(files: list[RawFile], cached_run: Path | None, cached_members: list[list[str]], shard_size: int) -> list[Shard]:
    """Cut ``files`` into shards, keeping the cached run's shards (``cached_members``: the paths of each).

    A cached shard is kept, with the files it still has, while it holds at least half of
    ``shard_size`` files and no more than ``shard_size``. The other files (new ones and those of
    shards not kept) are ordered by ``doc_id`` and cut into new shards after the kept ones. New
    shards span the whole ``doc_id`` range; when more than MAX_OVERLAPPING_SHARDS shards would
    overlap at some ``doc_id``, or there is no cache, all files are laid out afresh in ``doc_id`` order.
    """
    ids = {raw.rel_path: doc_id_for(raw.rel_path) for raw in files}
    home = {path: n for n, members in enumerate(cached_members) for path in members}
    present = {raw.rel_path: raw for raw in files}
    kept = []
    for n, members in enumerate(cached_members):
        still = [present[path] for path in members if path in present]
        if len(members) <= shard_size and 2 * len(still) >= shard_size:
            kept.append(sorted(still, key=lambda raw: ids[raw.rel_path]))
    placed = {raw.rel_path for shard in kept for raw in shard}
    rest = sorted((raw for raw in files if raw.rel_path not in placed), key=lambda raw: ids[raw.rel_path])
    layout = kept + [rest[i:i + shard_size] for i in range(0, len(rest), shard_size)]
    if _most_overlapping([(ids[s[0].rel_path], ids[s[-1].rel_path]) for s in layout]) > MAX_OVERLAPPING_SHARDS:
        everything = sorted(files, key=lambda raw: ids[raw.rel_path])
        layout = [everything[i:i + shard_size] for i in range(0, len(everything), shard_size)]

    def reuse(shard: list[RawFile]) -> Reuse | None:
        held = sorted({home[raw.rel_path] for raw in shard if raw.rel_path in home})
        return Reuse(cached_run, tuple(held)) if cached_run is not None and held else None

    return [Shard(shard, reuse(shard)) for shard in layout]


def _most_overlapping(ranges: list[tuple[str, str]]) -> int:
    """The largest number of the closed ranges ``(low, high)`` that share one point."""
    edges = sorted([(low, 0) for low, _ in ranges] + [(high, 1) for _, high in ranges])
    most = open_now = 0
    for _, is_end in edges:
        open_now += -1 if is_end else 1
        most = max(most, open_now)
    return most


def index_path(curated_root: Path) -> Path:
    return curated_root / "cache" / INDEX_NAME


def load_index_run(curated_root: Path) -> str | None:
    """The run id the cache index names, whatever its fingerprint (None without a readable index)."""
    index = tables.read_record(index_path(curated_root)) or {}
    return Path(index["run_dir"]).name if isinstance(index.get("run_dir"), str) else None


def load(curated_root: Path, fingerprint: str) -> Path | None:
    """The cached run folder valid for ``fingerprint``, or None (no previous run, other code, folder gone, a damaged index)."""
    index = tables.read_record(index_path(curated_root))
    if index is None or not isinstance(index.get("run_dir"), str):
        return None
    run_dir = curated_root / index["run_dir"]
    return run_dir if index.get("fingerprint") == fingerprint and run_dir.is_dir() else None


def remember(curated_root: Path, run_dir: Path, fingerprint: str) -> Path:
    """Name ``run_dir``'s shards as the cache for later runs (written atomically)."""
    return tables.write_text(index_path(curated_root),
                             json.dumps({"fingerprint": fingerprint, "run_dir": run_dir.relative_to(curated_root).as_posix()}, indent=1) + "\n")
