"""Publish the run's tables as the next immutable, versioned release (``<curated>/releases/<version>/``).

The protocol (lock, staging, fsync, ``.pending``, atomic rename, ``LATEST`` and the ``latest`` link)
is described in README "Publishing"; what a crash leaves is removed by the next publish
(``clean_unfinished``). The tables are written once: their rows are hashed for the diff
(``versions``), counted for the statistics (``statistics``) and their files checksummed
(``manifest.Files``) as they are written, so nothing of the new release is read back.
"""
from __future__ import annotations

import concurrent.futures
import functools
import json
import logging
import os
import platform
import queue
import shutil
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from commentary import lifetime, tables
from commentary.ledger import ReleaseOutcome, Result
from commentary.reader import (LATEST_LINK, PENDING, latest_version, list_releases, publish_lock, read_manifest, release_path, releases_dir,
                               scan_table, verify)
from commentary.release import card, notes, statistics, versions
from commentary.release import manifest as manifests
from commentary.release.manifest import Files, sha256_file
from commentary.release.versions import COMPARED_TABLES
from commentary.settings import PART_FILE_BYTES, ROW_GROUP_BYTES
from commentary.tables import RELEASE_TABLES

log = logging.getLogger(__name__)
#: Schema metadata key of the kept hashes of the latest release (``_remember_hashes``).
HASHES_STAMP = b"commentary.release_hashes"


#: Set in a process that publishes on behalf of a run (``serve_run``): the run's process id.
_RUN_PID: int | None = None


def serve_run(run_pid: int) -> None:
    """Make this process, started by the run ``run_pid``, die with it: the kernel sends it SIGKILL when its
    parent dies (Linux ``PR_SET_PDEATHSIG``), and ``publish`` refuses to make a release LATEST once the
    run is gone (where that signal is not available, and for a parent that died before it was set)."""
    global _RUN_PID
    _RUN_PID = run_pid
    lifetime.die_with(run_pid)


class BaseReleaseDamaged(ValueError):
    """The release a publish would build on (``LATEST``) does not match its manifest."""


class RunGone(RuntimeError):
    """The run this process published for has ended: nothing is published on its behalf."""


def publish(curated_root: Path, run_id: str, shards: dict[str, tables.TableFiles], provenance: dict,
            report: card.RunReport | None = None, before_latest=None) -> dict | None:
    """Publish the ``articles`` and ``furniture`` shards as the next release; None when nothing changed.

    Each table's shards are Parquet files of whole documents. They are merged into the release in
    key order (``_in_key_order``), so memory is bounded by the shards that overlap, not by the
    corpus, and the release is the same however the documents were cut into shards. If writing
    fails (a full disk included), the staging folder is removed at once. ``before_latest(manifest)``
    is called once the release is in place and before ``LATEST`` names it (the run writes its ledger
    there); if it raises, the release is removed and nothing is published.
    """
    try:
        return _publish(curated_root, run_id, shards, provenance, report, before_latest)
    except BaseException:
        shutil.rmtree(releases_dir(curated_root) / f".staging-{run_id}", ignore_errors=True)
        raise


def _publish(curated_root: Path, run_id: str, shards: dict[str, tables.TableFiles], provenance: dict,
             report: card.RunReport | None, before_latest) -> dict | None:
    releases = releases_dir(curated_root)
    releases.mkdir(parents=True, exist_ok=True)
    with publish_lock(curated_root):
        _clean_unfinished(curated_root)
        previous = latest_version(curated_root)
        damaged = verify(curated_root, previous) if previous else []
        if damaged:
            raise BaseReleaseDamaged(f"the latest release {previous} does not match its manifest, nothing was published "
                                     f"on top of it: {'; '.join(damaged[:3])}")
        staging = releases / f".staging-{run_id}"
        staging.mkdir()
        files, tally = Files(staging), statistics.Tally()
        hashes = _write_side_by_side(shards, files, tally)
        result = versions.diff(_release_hashes(curated_root, previous) if previous else None, hashes)
        if result.bump is None:
            shutil.rmtree(staging)
            return None
        version = versions.next_version(previous, result.bump)
        target = releases / version
        if target.exists():
            raise FileExistsError(f"release {version} already exists in {releases}; a release is never overwritten")
        _write_table([tables.to_arrow(result.changes, tables.CHANGES)], files, "changes")
        stats = tally.result()
        manifest = manifests.build(version, previous, run_id, provenance, files.entries(COMPARED_TABLES), statistics.counts(stats),
                                   result.summary())
        new_articles = RELEASE_TABLES["articles"].in_release(staging).scan()
        old_articles = scan_table(curated_root, "articles", previous) if previous else None
        files.write_text("CHANGELOG.md", notes.release_notes(version, previous, manifest["created_at"][:10],
                                                             notes.describe(result, new_articles, old_articles)))
        manifests.write_datapackage(files, manifest)
        card.write(files, manifest, stats, report or card.RunReport())
        manifests.write(files, manifest)
        _fsync_tree(staging)
        tables.write_text(releases / PENDING, version + "\n")
        os.rename(staging, target)
        _fsync_dir(releases)
        try:
            if before_latest is not None:
                before_latest(manifest)
            if _RUN_PID is not None and os.getppid() != _RUN_PID:
                raise RunGone(f"the run {run_id} ended before release {version} was published; it was removed")
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            (releases / PENDING).unlink(missing_ok=True)
            raise
        tables.write_text(curated_root / "CHANGELOG.md", notes.history([releases / m["version"] for m in list_releases(curated_root, with_unpublished=True)]))
        tables.write_text(curated_root / "LATEST", version + "\n")
        _replace_link(curated_root / LATEST_LINK, target.relative_to(curated_root))
        (releases / PENDING).unlink()
        _remember_hashes(curated_root, manifest, hashes)
        return manifest


def _hashes_path(curated_root: Path, table: str) -> Path:
    """The latest release's ``table`` as hashes (``versions.TableHashes``), kept so that the next publish need not read it."""
    return curated_root / "cache" / "release-hashes" / f"{table}.parquet"


def _hashes_stamp(manifest: dict) -> bytes:
    """What kept hashes must have been computed from: the release's content, by this Polars version on this kind of
    processor (its hashes differ between versions, and its string hashes between x86-64 and arm64) and this hashing
    code (``commentary/release/versions.py``)."""
    code = sha256_file(Path(versions.__file__))[:16]
    return f"{manifest['content_fingerprint']} polars {pl.__version__} {platform.machine()} changelog {code}".encode()


def _remember_hashes(curated_root: Path, manifest: dict, hashes: dict[str, versions.TableHashes]) -> None:
    """Keep a new release's hashes, stamped, for the next publish (written aside, then renamed)."""
    stamp = _hashes_stamp(manifest)
    for name, table in hashes.items():
        path = _hashes_path(curated_root, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(f".{path.name}.tmp")
        pq.write_table(table.hashes.to_arrow().replace_schema_metadata({HASHES_STAMP: stamp}), aside, compression="zstd")
        os.replace(aside, path)


def _release_hashes(curated_root: Path, version: str) -> dict[str, versions.TableHashes]:
    """A release's tables as hashes: those kept by its publish when they are of its content, else computed from its files."""
    folder = release_path(curated_root, version)
    stamp = _hashes_stamp(read_manifest(curated_root, version))
    found = {}
    for name in versions.COMPARED_TABLES:
        files = RELEASE_TABLES[name].in_release(folder)
        kept = _kept_hashes(_hashes_path(curated_root, name), stamp)
        found[name] = versions.hash_table(files) if kept is None else versions.TableHashes(files.schema, kept)
    return found


def _kept_hashes(path: Path, stamp: bytes) -> pl.DataFrame | None:
    """The hashes kept at ``path`` if they carry ``stamp``; None when they are missing, stale or unreadable."""
    try:
        if (pq.read_schema(path).metadata or {}).get(HASHES_STAMP) == stamp:
            return pl.read_parquet(path, glob=False)
    except (OSError, pa.ArrowException, pl.exceptions.PolarsError):
        pass
    return None


def clean_unfinished(curated_root: Path) -> list[str]:
    """Remove what an interrupted publish left, holding the publish lock (a publisher that outlived its
    run cannot race it); returns the names removed."""
    if not releases_dir(curated_root).is_dir():
        return []
    with publish_lock(curated_root):
        return _clean_unfinished(curated_root)


def _clean_unfinished(curated_root: Path) -> list[str]:
    """``clean_unfinished`` for a caller that holds the publish lock.

    A pending release removed had its run's ledger written (``before_latest``): the ledger's release
    outcome is corrected to say that it was not published.
    """
    releases = releases_dir(curated_root)
    removed = []
    for staging in sorted(releases.glob(".staging-*")):
        shutil.rmtree(staging)
        removed.append(staging.name)
    pending = releases / PENDING
    if pending.is_file():
        version = pending.read_text().strip()
        if version and version != latest_version(curated_root) and (releases / version).is_dir():
            run_id = (tables.read_record(releases / version / "manifest.json") or {}).get("run_id")
            shutil.rmtree(releases / version)
            removed.append(version)
            ledger = tables.read_record(curated_root / "runs" / str(run_id) / "ledger.json") if run_id else None
            if ledger is not None:
                ledger["release"] = ReleaseOutcome(Result.INTERRUPTED, version).record()
                tables.write_text(curated_root / "runs" / run_id / "ledger.json", json.dumps(ledger, indent=2, default=str) + "\n")
        pending.unlink()
    if removed:
        log.warning("removed what an interrupted publish left in %s: %s", releases, ", ".join(removed))
    _relink_latest(curated_root)
    return removed


def _relink_latest(curated_root: Path) -> None:
    """Point the ``latest`` link at the release that ``LATEST`` names, when a publish stopped between the two."""
    version = latest_version(curated_root)
    if not version or not (releases_dir(curated_root) / version / manifests.MANIFEST).is_file():
        return  # no release yet, or a damaged LATEST, which the publish refuses on its own
    link, target = curated_root / LATEST_LINK, (releases_dir(curated_root) / version).relative_to(curated_root)
    if not (link.is_symlink() and Path(os.readlink(link)) == target):
        log.warning("the %s link did not name release %s, the latest: pointed at it", LATEST_LINK, version)
        _replace_link(link, target)


def _write_side_by_side(shards: dict[str, tables.TableFiles], files: Files, tally: statistics.Tally) -> dict[str, versions.TableHashes]:
    """Write the compared tables at once, each on threads of its own (``_write_compared``); their hashes by table.

    Each table's chunks are the same and in the same order as written alone, so the files are the same bytes.
    """
    with concurrent.futures.ThreadPoolExecutor(len(COMPARED_TABLES), thread_name_prefix="release") as pool:
        written = {name: pool.submit(_write_compared, shards[name], files, name, tally) for name in COMPARED_TABLES}
        return {name: future.result() for name, future in written.items()}


def _write_compared(shards: tables.TableFiles, files: Files, name: str, tally: statistics.Tally) -> versions.TableHashes:
    """Write a compared table into the release in key order; returns its hashes, taken from the rows as they are written.

    The rows are read, merged, hashed and counted in a thread of their own while the writer encodes the
    chunks before them (both mostly free the GIL): the same chunks in the same order, on two cores.
    """
    hasher = versions.Hasher(RELEASE_TABLES[name].schema)
    _write_table(_ahead(tally.tee(name, hasher.tee(_in_key_order(shards, RELEASE_TABLES[name].key)))), files, name)
    return hasher.result()


def _ahead(chunks: Iterator[pa.Table], depth: int = 2) -> Iterator[pa.Table]:
    """The items of ``chunks``, produced in a thread of their own up to ``depth`` items ahead of the consumer.

    An error of the producer is raised to the consumer; a consumer that stops early stops the producer.
    """
    ready: queue.Queue = queue.Queue(depth)
    stopped = threading.Event()
    done = object()

    def hand(item: tuple) -> bool:
        """Queue ``item`` unless the consumer has stopped; whether it was queued."""
        while not stopped.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not hand((chunk, None)):
                    return
            hand((done, None))
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            hand((done, error))

    producer = threading.Thread(target=produce, name="release-rows", daemon=True)
    producer.start()
    try:
        while True:
            chunk, error = ready.get()
            if chunk is done:
                if error is not None:
                    raise error
                return
            yield chunk
    finally:
        stopped.set()
        producer.join()


def _write_table(chunks: Iterable[pa.Table], files: Files, name: str) -> list[Path]:
    """Write a release table, one file (``changes``) or ``<name>/part-NNNNN.parquet`` files of PART_FILE_BYTES; returns
    the files, recorded in ``files``."""
    table = RELEASE_TABLES[name]
    if table.files.endswith("*.parquet"):
        written = tables.write_row_groups(chunks, lambda n: files.folder / name / f"part-{n:05d}.parquet", table.schema,
                                          ROW_GROUP_BYTES, max(1, PART_FILE_BYTES // ROW_GROUP_BYTES))
    else:
        written = tables.write_row_groups(chunks, lambda n: files.folder / table.files, table.schema, ROW_GROUP_BYTES, sys.maxsize)
    for path in written:
        files.add(path)
    return written


def _in_key_order(files: tables.TableFiles, key: tuple[str, ...]) -> Iterator[pa.Table]:
    """The rows of ``files`` merged in ``key`` order; ValueError when a key occurs twice.

    Each file holds whole documents; the ``doc_id`` ranges of files may overlap (shards of new files
    span them all). A file is read when the merge reaches its first ``doc_id`` and held until the
    merge passes its last, so memory is bounded by the files that overlap at one ``doc_id``
    (``cache.lay_out`` keeps them to MAX_OVERLAPPING_SHARDS).
    """
    starts = {path: _first_doc_id(path) for path in files.paths}
    order = sorted((start, path) for path, start in starts.items() if start is not None)
    held: list[pa.Table] = []
    last = None
    for opening in [*order, None]:
        ready, kept = [], []
        for table in held:
            passed = table.num_rows if opening is None or not table.num_rows or table["doc_id"][-1].as_py() < opening[0] else \
                pc.sum(pc.less(table["doc_id"], opening[0])).as_py() or 0
            ready.append(table.slice(0, passed))
            if passed < table.num_rows:
                kept.append(table.slice(passed))
        held = kept
        chunk = pa.concat_tables(ready).sort_by([(column, "ascending") for column in key]) if ready else None
        if chunk is not None and chunk.num_rows:
            first = tuple(chunk[column][0].as_py() for column in key)
            if (last is not None and first <= last) or _has_repeated_keys(chunk, key):
                raise ValueError(f"rows with the same key {key} in two places near {first}: a document must be in one shard only")
            last = tuple(chunk[column][-1].as_py() for column in key)
            yield chunk
        if opening is not None:
            held.append(files.read(opening[1]).sort_by([(column, "ascending") for column in key]))


def _has_repeated_keys(chunk: pa.Table, key: tuple[str, ...]) -> bool:
    """Whether two neighbouring rows of ``chunk`` (sorted by ``key``) have the same key."""
    if chunk.num_rows < 2:
        return False
    same = [pc.equal(chunk[column].slice(1), chunk[column].slice(0, chunk.num_rows - 1)) for column in key]
    return pc.any(functools.reduce(pc.and_, same)).as_py()


def _first_doc_id(path: Path) -> str | None:
    """The least ``doc_id`` of a Parquet file, from its statistics (None when it has no rows)."""
    metadata = pq.ParquetFile(path).metadata
    column = metadata.schema.names.index("doc_id")
    stats = [metadata.row_group(g).column(column).statistics for g in range(metadata.num_row_groups)]
    return min((s.min for s in stats if s is not None and s.has_min_max), default=None)


def _fsync_tree(root: Path) -> None:
    for folder, _dirs, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                os.fsync(handle.fileno())
        _fsync_dir(Path(folder))


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _replace_link(path: Path, target: Path) -> None:
    """Point the symbolic link ``path`` at ``target`` atomically (a new link aside, renamed over the old one).

    A real folder at ``path`` (a copy of the curated folder that followed the link) is removed first.
    """
    aside = path.with_name(f".{path.name}.tmp")
    aside.unlink(missing_ok=True)
    aside.symlink_to(target, target_is_directory=True)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    os.replace(aside, path)
