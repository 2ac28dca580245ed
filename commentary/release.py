"""Publish immutable, versioned releases into ``<curated>/releases/<version>/``; list and verify them.

Publishing holds a lock on ``<curated>/.publish.lock`` and goes:

1. remove what an interrupted publish left: ``releases/.staging-*`` folders, and the release named
   in ``releases/.pending`` when it was renamed into place but never became ``LATEST``; verify the
   ``LATEST`` release against its manifest (a damaged one stops the publish);
2. stream the shards into ``releases/.staging-<run_id>/``, the two tables side by side, hashing the
   rows as they are written;
3. compare those hashes with the ``LATEST`` release's (``commentary.changelog``; kept in
   ``<curated>/cache/release-hashes/`` by its publish): nothing changed, no release and the staging
   folder is removed; else add the changes, card and manifest, fsync it;
4. record the version in ``releases/.pending``, rename the staging folder to ``releases/<version>``,
   let the run write its ledger (``before_latest``) and check that the run is still alive;
5. rewrite ``<curated>/CHANGELOG.md``, then replace ``LATEST`` atomically, then drop ``.pending``,
   then keep the new release's hashes for the next publish.

A crash at any point leaves the earlier releases and ``LATEST`` as they were. Parquet output is
deterministic: rows sorted by the table's key, row groups and part files sized from the data
(``ROW_STEP``, ``ROW_GROUP_BYTES``, ``PART_FILE_BYTES``), zstd with statistics, no schema metadata.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from commentary import card, changelog, lifetime, tables
from commentary.settings import PART_FILE_BYTES, ROW_GROUP_BYTES
from commentary.tables import RELEASE_TABLES

log = logging.getLogger(__name__)
#: Schema metadata key of the kept hashes of the latest release (``_remember_hashes``).
HASHES_STAMP = b"commentary.release_hashes"


def releases_dir(curated_root: Path) -> Path:
    return curated_root / "releases"


def latest_version(curated_root: Path) -> str | None:
    latest = curated_root / "LATEST"
    return latest.read_text().strip() if latest.is_file() else None


def list_releases(curated_root: Path) -> list[dict]:
    """The manifests of all published releases, oldest version first."""
    found = []
    for folder in releases_dir(curated_root).glob("*/manifest.json"):
        with contextlib.suppress(ValueError):
            found.append((changelog.parse_version(folder.parent.name), json.loads(folder.read_text())))
    return [manifest for _, manifest in sorted(found, key=lambda item: item[0])]


def release_path(curated_root: Path, version: str = "latest") -> Path:
    """Folder of a release; ``latest`` resolves through ``LATEST``."""
    if version == "latest":
        version = latest_version(curated_root)
        if version is None:
            raise FileNotFoundError(f"no release in {curated_root}")
    path = releases_dir(curated_root) / version
    if not (path / "manifest.json").is_file():
        raise FileNotFoundError(f"no release {version} in {curated_root}")
    return path


def read_manifest(curated_root: Path, version: str = "latest") -> dict:
    return json.loads((release_path(curated_root, version) / "manifest.json").read_text())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def code_version() -> str:
    """``git describe`` of the code when run from a checkout, else the package version."""
    from importlib.metadata import version

    here = Path(__file__).resolve().parent
    try:
        described = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=here, capture_output=True, text=True, timeout=10)
    except OSError:
        described = None
    return described.stdout.strip() if described and described.returncode == 0 else version("commentary")


def scan_table(curated_root: Path, table: str, version: str = "latest") -> pl.LazyFrame:
    """One table of a release, lazily (``articles``, ``furniture`` or ``changes``)."""
    if table not in RELEASE_TABLES:
        raise ValueError(f"unknown table {table!r}; a release has {', '.join(RELEASE_TABLES)}")
    return pl.scan_parquet(RELEASE_TABLES[table].paths(release_path(curated_root, version)))


def read_release_table(curated_root: Path, table: str = "articles", version: str = "latest") -> pl.DataFrame:
    """One table of a release as a Polars frame."""
    return scan_table(curated_root, table, version).collect()


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
    with _publish_lock(curated_root):
        _clean_unfinished(curated_root)
        previous = latest_version(curated_root)
        damaged = verify(curated_root, previous) if previous else []
        if damaged:
            raise BaseReleaseDamaged(f"the latest release {previous} does not match its manifest, nothing was published "
                                     f"on top of it: {'; '.join(damaged[:3])}")
        staging = releases / f".staging-{run_id}"
        staging.mkdir()
        with ThreadPoolExecutor(len(changelog.COMPARED_TABLES)) as pool:  # side by side: reading, hashing and zstd free the GIL
            written = {name: pool.submit(_write_hashed, shards[name], staging, name) for name in changelog.COMPARED_TABLES}
        hashes = {name: future.result() for name, future in written.items()}
        result = changelog.diff(_release_hashes(curated_root, previous) if previous else None, hashes)
        if result.bump is None:
            shutil.rmtree(staging)
            return None
        version = changelog.next_version(previous, result.bump)
        target = releases / version
        if target.exists():
            raise FileExistsError(f"release {version} already exists in {releases}; a release is never overwritten")
        _write_table([tables.to_arrow(result.changes, tables.CHANGES)], staging, "changes")
        released = {name: RELEASE_TABLES[name].in_release(staging) for name in changelog.COMPARED_TABLES}
        stats = card.statistics(released["articles"].scan(), released["furniture"].scan(), report or card.RunReport())
        content = {rel: entry for rel, entry in _checksums(staging).items() if rel.split("/")[0] in changelog.COMPARED_TABLES}
        manifest = {
            "version": version,
            "previous_version": previous,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "run_id": run_id,
            "code_version": code_version(),
            **provenance,
            "content_fingerprint": hashlib.sha256(json.dumps({k: v["sha256"] for k, v in content.items()}, sort_keys=True).encode()).hexdigest(),
            "counts": {
                "articles": stats["articles"],
                "canonical_articles": stats["canonical"],
                "duplicates": stats["articles"] - stats["canonical"],
                "furniture_lines": stats["furniture_lines"],
            },
            "changes": result.summary(),
            "schema": {name: {field.name: str(field.type) for field in table.schema} for name, table in RELEASE_TABLES.items()},
        }
        notes = changelog.describe(result, released["articles"].scan(), scan_table(curated_root, "articles", previous) if previous else None)
        (staging / "CHANGELOG.md").write_text(changelog.release_notes(version, previous, manifest["created_at"][:10], notes))
        card.write_datapackage(staging, manifest, _checksums(staging))
        card.write(staging, manifest, stats)
        manifest["files"] = _checksums(staging)
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        _fsync_tree(staging)
        _replace_text(releases / ".pending", version + "\n")
        os.rename(staging, target)
        _fsync_dir(releases)
        try:
            if before_latest is not None:
                before_latest(manifest)
            if _RUN_PID is not None and os.getppid() != _RUN_PID:
                raise RunGone(f"the run {run_id} ended before release {version} was published; it was removed")
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            (releases / ".pending").unlink(missing_ok=True)
            raise
        _replace_text(curated_root / "CHANGELOG.md", changelog.history([releases / m["version"] for m in list_releases(curated_root)]))
        _replace_text(curated_root / "LATEST", version + "\n")
        _replace_link(curated_root / LATEST_LINK, target.relative_to(curated_root))
        (releases / ".pending").unlink()
        _remember_hashes(curated_root, manifest, hashes)
        return manifest


def _hashes_path(curated_root: Path, table: str) -> Path:
    """The latest release's ``table`` as hashes (``changelog.TableHashes``), kept so that the next publish need not read it."""
    return curated_root / "cache" / "release-hashes" / f"{table}.parquet"


def _hashes_stamp(manifest: dict) -> bytes:
    """What kept hashes must have been computed from: the release's content, by this Polars version (its
    hashes are not stable across versions) and this hashing code (``commentary/changelog.py``)."""
    code = sha256_file(Path(changelog.__file__))[:16]
    return f"{manifest['content_fingerprint']} polars {pl.__version__} changelog {code}".encode()


def _remember_hashes(curated_root: Path, manifest: dict, hashes: dict[str, changelog.TableHashes]) -> None:
    """Keep a new release's hashes, stamped, for the next publish (written aside, then renamed)."""
    stamp = _hashes_stamp(manifest)
    for name, table in hashes.items():
        path = _hashes_path(curated_root, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(f".{path.name}.tmp")
        pq.write_table(table.hashes.to_arrow().replace_schema_metadata({HASHES_STAMP: stamp}), aside, compression="zstd")
        os.replace(aside, path)


def _release_hashes(curated_root: Path, version: str) -> dict[str, changelog.TableHashes]:
    """A release's tables as hashes: those kept by its publish when they are of its content, else computed from its files."""
    folder = release_path(curated_root, version)
    stamp = _hashes_stamp(read_manifest(curated_root, version))
    found = {}
    for name in changelog.COMPARED_TABLES:
        files = RELEASE_TABLES[name].in_release(folder)
        kept = _kept_hashes(_hashes_path(curated_root, name), stamp)
        found[name] = changelog.hash_table(files) if kept is None else changelog.TableHashes(files.schema, kept)
    return found


def _kept_hashes(path: Path, stamp: bytes) -> pl.DataFrame | None:
    """The hashes kept at ``path`` if they carry ``stamp``; None when they are missing, stale or unreadable."""
    try:
        if (pq.read_schema(path).metadata or {}).get(HASHES_STAMP) == stamp:
            return pl.read_parquet(path)
    except (OSError, pa.ArrowException, pl.exceptions.PolarsError):
        pass
    return None


@contextlib.contextmanager
def _publish_lock(curated_root: Path) -> Iterator[None]:
    """One publisher at a time per curated folder (released by the system if the process dies)."""
    with (curated_root / ".publish.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def clean_unfinished(curated_root: Path) -> list[str]:
    """Remove what an interrupted publish left, holding the publish lock (a publisher that outlived its
    run cannot race it); returns the names removed."""
    if not releases_dir(curated_root).is_dir():
        return []
    with _publish_lock(curated_root):
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
    pending = releases / ".pending"
    if pending.is_file():
        version = pending.read_text().strip()
        if version and version != latest_version(curated_root) and (releases / version).is_dir():
            run_id = (tables.read_record(releases / version / "manifest.json") or {}).get("run_id")
            shutil.rmtree(releases / version)
            removed.append(version)
            ledger = tables.read_record(curated_root / "runs" / str(run_id) / "ledger.json") if run_id else None
            if ledger is not None:
                ledger["release"] = {"published": False, "reason": f"interrupted before LATEST named release {version}; it was removed"}
                tables.write_text(curated_root / "runs" / run_id / "ledger.json", json.dumps(ledger, indent=2, default=str) + "\n")
        pending.unlink()
    if removed:
        log.warning("removed what an interrupted publish left in %s: %s", releases, ", ".join(removed))
    return removed


def _write_hashed(files: tables.TableFiles, staging: Path, name: str) -> changelog.TableHashes:
    """Write a compared table into the release in key order; returns its hashes, taken from the rows as they are written."""
    hasher = changelog.Hasher(RELEASE_TABLES[name].schema)
    _write_table(hasher.tee(_in_key_order(files, RELEASE_TABLES[name].key)), staging, name)
    return hasher.result()


def _write_table(chunks: Iterable[pa.Table], staging: Path, name: str) -> list[Path]:
    """Write a release table: one file (``changes``) or ``<name>/part-NNNNN.parquet`` files of PART_FILE_BYTES."""
    table = RELEASE_TABLES[name]
    if table.files.endswith("*.parquet"):
        return tables.write_row_groups(chunks, lambda n: staging / name / f"part-{n:05d}.parquet", table.schema,
                                       ROW_GROUP_BYTES, max(1, PART_FILE_BYTES // ROW_GROUP_BYTES))
    return tables.write_row_groups(chunks, lambda n: staging / table.files, table.schema, ROW_GROUP_BYTES, sys.maxsize)


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
            passed = table.num_rows if opening is None else pc.sum(pc.less(table["doc_id"], opening[0])).as_py() or 0
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


def _checksums(folder: Path) -> dict[str, dict]:
    """``relative path -> {bytes, sha256}`` for every file in a release folder but its manifest."""
    return {path.relative_to(folder).as_posix(): {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
            for path in sorted(folder.rglob("*")) if path.is_file() and path != folder / "manifest.json"}


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


def verify_all(curated_root: Path) -> dict[str, list[str]]:
    """Check every release folder (``verify``) and that ``LATEST`` names an intact one; returns the problems
    found by version, and under ``LATEST`` (empty lists when intact).

    Raises FileNotFoundError when the folder holds no release and no ``LATEST``.
    """
    versions = sorted(p.name for p in releases_dir(curated_root).glob("[!.]*") if p.is_dir()) if releases_dir(curated_root).is_dir() else []
    latest = latest_version(curated_root)
    if not versions and latest is None:
        raise FileNotFoundError(f"no release in {curated_root}")
    problems = {version: verify(curated_root, version) for version in versions}
    if latest is not None:
        intact = latest in problems and not problems[latest]
        problems["LATEST"] = [] if intact else [f"LATEST names {latest}, which is {'incomplete' if latest in problems else 'not a release folder'}"]
    return problems


def verify(curated_root: Path, version: str = "latest") -> list[str]:
    """Check a release's files against its manifest; returns the problems found (empty when intact).

    A missing or unreadable manifest is a problem; a version with no folder raises FileNotFoundError.
    """
    name = latest_version(curated_root) if version == "latest" else version
    folder = releases_dir(curated_root) / (name or "")
    if not name or not folder.is_dir():
        raise FileNotFoundError(f"no release {version} in {curated_root}")
    try:
        listed = json.loads((folder / "manifest.json").read_text())["files"]
        if not isinstance(listed, dict):
            raise ValueError("files is not an object")
    except FileNotFoundError:
        return [f"{folder.name}/manifest.json: missing"]
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        return [f"{folder.name}/manifest.json: unreadable ({error})"]
    problems = []
    for rel, entry in sorted(listed.items()):
        path = folder / rel
        if not path.is_file():
            problems.append(f"{folder.name}/{rel}: missing")
        elif not isinstance(entry, dict) or path.stat().st_size != entry.get("bytes"):
            problems.append(f"{folder.name}/{rel}: {path.stat().st_size} bytes, manifest says {entry.get('bytes') if isinstance(entry, dict) else entry}")
        elif sha256_file(path) != entry.get("sha256"):
            problems.append(f"{folder.name}/{rel}: sha256 differs from the manifest")
    problems += [f"{folder.name}/{rel}: not in the manifest" for rel in sorted(set(_checksums(folder)) - set(listed))]
    return problems


#: ``<curated>/latest``: a symbolic link to the newest release folder, for readers that glob paths (DuckDB, Polars).
LATEST_LINK = "latest"


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


def _replace_text(path: Path, text: str) -> None:
    """Write a small file atomically (write aside, fsync, rename)."""
    aside = path.with_name(f".{path.name}.tmp")
    with aside.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(aside, path)
