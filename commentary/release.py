"""Publish immutable, versioned releases into ``<curated>/releases/<version>/``; list and verify them.

Publishing holds a lock on ``<curated>/.publish.lock`` and goes:

1. remove what an interrupted publish left: ``releases/.staging-*`` folders, and the release named
   in ``releases/.pending`` when it was renamed into place but never became ``LATEST``;
2. compare with the ``LATEST`` release (``commentary.changelog``): nothing changed, no release;
3. write every file into ``releases/.staging-<run_id>/`` and fsync it;
4. record the version in ``releases/.pending``, rename the staging folder to ``releases/<version>``;
5. rewrite ``<curated>/CHANGELOG.md``, then replace ``LATEST`` atomically, then drop ``.pending``.

A crash at any point leaves the earlier releases and ``LATEST`` as they were. Parquet output is
deterministic: rows sorted by the table's key, row groups and part files sized from the data
(``ROW_GROUP_BYTES``, ``PART_FILE_BYTES``), zstd with statistics, no schema metadata.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa

from commentary import card, changelog, tables
from commentary.settings import PART_FILE_BYTES, ROW_GROUP_BYTES
from commentary.tables import RELEASE_TABLES

log = logging.getLogger(__name__)
#: Row group and part file sizes are rounded to whole thousands of rows (at least 1,000 per group).
_ROW_STEP = 1000


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


def publish(curated_root: Path, run_id: str, frames: dict[str, pl.DataFrame], provenance: dict,
            report: card.RunReport | None = None) -> dict | None:
    """Publish ``frames`` (articles, furniture) as the next release; None when nothing changed.

    If writing fails (a full disk included), the staging folder is removed at once.
    """
    try:
        return _publish(curated_root, run_id, frames, provenance, report)
    except BaseException:
        shutil.rmtree(releases_dir(curated_root) / f".staging-{run_id}", ignore_errors=True)
        raise


def _publish(curated_root: Path, run_id: str, frames: dict[str, pl.DataFrame], provenance: dict,
             report: card.RunReport | None) -> dict | None:
    releases = releases_dir(curated_root)
    releases.mkdir(parents=True, exist_ok=True)
    with _publish_lock(curated_root):
        clean_unfinished(curated_root)
        previous = latest_version(curated_root)
        data = {name: pl.from_arrow(tables.to_arrow(frames[name], RELEASE_TABLES[name].schema)).sort(RELEASE_TABLES[name].key)
                for name in changelog.COMPARED_TABLES}
        old = {name: scan_table(curated_root, name, previous) for name in changelog.COMPARED_TABLES} if previous else None
        result = changelog.diff(old, {name: frame.lazy() for name, frame in data.items()})
        if result.bump is None:
            return None
        version = changelog.next_version(previous, result.bump)
        target = releases / version
        if target.exists():
            raise FileExistsError(f"release {version} already exists in {releases}; a release is never overwritten")
        staging = releases / f".staging-{run_id}"
        staging.mkdir()
        for name, frame in {**data, "changes": result.changes}.items():
            _write_table(tables.to_arrow(frame, RELEASE_TABLES[name].schema), staging, name)
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
                "articles": data["articles"].height,
                "canonical_articles": data["articles"]["duplicate_of"].is_null().sum(),
                "duplicates": data["articles"]["duplicate_of"].is_not_null().sum(),
                "furniture_lines": data["furniture"].height,
            },
            "changes": result.summary(),
            "schema": {name: {field.name: str(field.type) for field in table.schema} for name, table in RELEASE_TABLES.items()},
        }
        notes = changelog.describe(result, data["articles"].lazy(), old["articles"] if old else None)
        (staging / "CHANGELOG.md").write_text(changelog.release_notes(version, previous, manifest["created_at"][:10], notes))
        card.write_datapackage(staging, manifest, _checksums(staging))
        card.write(staging, manifest, card.statistics(data["articles"], data["furniture"], report or card.RunReport()))
        manifest["files"] = _checksums(staging)
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        _fsync_tree(staging)
        _replace_text(releases / ".pending", version + "\n")
        os.rename(staging, target)
        _fsync_dir(releases)
        _replace_text(curated_root / "CHANGELOG.md", changelog.history([releases / m["version"] for m in list_releases(curated_root)]))
        _replace_text(curated_root / "LATEST", version + "\n")
        (releases / ".pending").unlink()
        return manifest


@contextlib.contextmanager
def _publish_lock(curated_root: Path) -> Iterator[None]:
    """One publisher at a time per curated folder (released by the system if the process dies)."""
    with (curated_root / ".publish.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def clean_unfinished(curated_root: Path) -> list[str]:
    """Remove what an interrupted publish left; returns the names removed."""
    releases = releases_dir(curated_root)
    removed = []
    for staging in sorted(releases.glob(".staging-*")):
        shutil.rmtree(staging)
        removed.append(staging.name)
    pending = releases / ".pending"
    if pending.is_file():
        version = pending.read_text().strip()
        if version and version != latest_version(curated_root) and (releases / version).is_dir():
            shutil.rmtree(releases / version)
            removed.append(version)
        pending.unlink()
    if removed:
        log.warning("removed what an interrupted publish left in %s: %s", releases, ", ".join(removed))
    return removed


def _write_table(table: pa.Table, staging: Path, name: str) -> None:
    """Write a release table: one file (``changes``) or ``<name>/part-NNNNN.parquet`` files sized from the data."""
    schema = RELEASE_TABLES[name].schema
    if not RELEASE_TABLES[name].files.endswith("*.parquet"):
        tables.write_parquet(table, staging / RELEASE_TABLES[name].files, schema, row_group_rows=_group_rows(table))
        return
    group_rows = _group_rows(table)
    part_rows = group_rows * max(1, PART_FILE_BYTES // ROW_GROUP_BYTES)
    for n, start in enumerate(range(0, max(table.num_rows, 1), part_rows)):
        tables.write_parquet(table.slice(start, part_rows), staging / name / f"part-{n:05d}.parquet", schema, row_group_rows=group_rows)


def _group_rows(table: pa.Table) -> int:
    """Rows per row group so that a group holds about ROW_GROUP_BYTES of uncompressed data."""
    row_bytes = max(1, -(-table.nbytes // max(table.num_rows, 1)))
    return max(_ROW_STEP, ROW_GROUP_BYTES // row_bytes // _ROW_STEP * _ROW_STEP)


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


def verify(curated_root: Path, version: str = "latest") -> list[str]:
    """Check a release's files against its manifest; returns the problems found (empty when intact)."""
    folder = release_path(curated_root, version)
    try:
        listed = json.loads((folder / "manifest.json").read_text())["files"]
    except (ValueError, KeyError, UnicodeDecodeError) as error:
        return [f"{folder.name}/manifest.json: unreadable ({error})"]
    problems = []
    for name, entry in sorted(listed.items()):
        path = folder / name
        if not path.is_file():
            problems.append(f"{folder.name}/{name}: missing")
        elif path.stat().st_size != entry["bytes"]:
            problems.append(f"{folder.name}/{name}: {path.stat().st_size} bytes, manifest says {entry['bytes']}")
        elif sha256_file(path) != entry["sha256"]:
            problems.append(f"{folder.name}/{name}: sha256 differs from the manifest")
    problems += [f"{folder.name}/{name}: not in the manifest" for name in sorted(set(_checksums(folder)) - set(listed))]
    return problems


def _replace_text(path: Path, text: str) -> None:
    """Write a small file atomically (write aside, fsync, rename)."""
    aside = path.with_name(f".{path.name}.tmp")
    with aside.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(aside, path)
