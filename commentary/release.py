"""Publish immutable, versioned releases into ``<curated>/releases/<version>/``.

A release is written aside (``releases/.staging-<run_id>``), synced, then renamed into place;
``LATEST`` is replaced last, atomically. A failure while writing removes the staging folder and
publishes nothing; ``recover`` repairs what a killed process left behind. Parquet output is
deterministic: rows sorted by ``doc_id``, fixed row groups, no schema metadata.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from commentary import tables
from commentary.settings import PART_FILE_ROWS
from commentary.tables import NO_SPACE, DiskFull

RELEASE_TABLES = {"articles": tables.ARTICLES, "furniture": tables.FURNITURE}


def releases_dir(curated_root: Path) -> Path:
    return curated_root / "releases"


def latest_version(curated_root: Path) -> str | None:
    latest = curated_root / "LATEST"
    return latest.read_text().strip() if latest.is_file() else None


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


def _write_parts(frame: pl.DataFrame, folder: Path, schema) -> list[Path]:
    """Write a table as ``part-NNNNN.parquet`` files of at most PART_FILE_ROWS rows."""
    folder.mkdir(parents=True)
    starts = range(0, max(frame.height, 1), PART_FILE_ROWS)
    return [tables.write_parquet(frame.slice(start, PART_FILE_ROWS).to_arrow(), folder / f"part-{n:05d}.parquet", schema)
            for n, start in enumerate(starts)]


def _fsync_tree(root: Path) -> None:
    for folder, _dirs, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                os.fsync(handle.fileno())
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def next_version(previous: dict | None, schema: dict[str, str], doc_ids: pl.Series, fingerprint: str,
                 previous_doc_ids: pl.Series | None) -> str | None:
    """Semantic version of the new release, or None when nothing changed.

    MAJOR: a column removed or retyped. MINOR: columns or articles added or removed.
    PATCH: only the content of existing articles changed.
    """
    if previous is None:
        return "1.0.0"
    major, minor, patch = map(int, previous["version"].split("."))
    old_schema = previous["schema"]["articles"]
    if any(name not in schema or schema[name] != kind for name, kind in old_schema.items()):
        return f"{major + 1}.0.0"
    if set(schema) != set(old_schema) or previous_doc_ids is None or set(doc_ids) != set(previous_doc_ids):
        return f"{major}.{minor + 1}.0"
    if fingerprint != previous["content_fingerprint"]:
        return f"{major}.{minor}.{patch + 1}"
    return None


def publish(curated_root: Path, run_id: str, frames: dict[str, pl.DataFrame], provenance: dict) -> dict | None:
    """Publish ``frames`` (articles, furniture) as the next release; None when nothing changed.

    On any failure (a full disk included, raised as DiskFull) the staging folder is removed and
    nothing is published; ``LATEST`` changes only after the release folder is complete.
    """
    staging = releases_dir(curated_root) / f".staging-{run_id}"
    shutil.rmtree(staging, ignore_errors=True)
    previous_version = latest_version(curated_root)
    try:
        manifest = _stage(curated_root, staging, run_id, frames, provenance, previous_version)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, DiskFull) or (isinstance(error, OSError) and error.errno in NO_SPACE):
            raise DiskFull(f"no space left on the device while writing a release in {releases_dir(curated_root)}") from error
        raise
    if manifest is None:
        return None
    target = releases_dir(curated_root) / manifest["version"]
    if target.exists():
        shutil.rmtree(staging)
        raise FileExistsError(f"release {manifest['version']} already exists in {releases_dir(curated_root)}; releases are never overwritten")
    latest_aside = _write_aside(curated_root / "LATEST", manifest["version"] + "\n")
    os.rename(staging, target)
    os.replace(latest_aside, curated_root / "LATEST")
    _fsync_dir(curated_root)
    return manifest


def _stage(curated_root: Path, staging: Path, run_id: str, frames: dict[str, pl.DataFrame], provenance: dict,
           previous_version: str | None) -> dict | None:
    """Write the release into ``staging`` and sync it; None (and no staging) when nothing changed."""
    files = {}
    for name, schema in RELEASE_TABLES.items():
        ordered = frames[name].sort(["doc_id", "line_no"] if name == "furniture" else "doc_id")
        for path in _write_parts(ordered, staging / name, schema):
            files[path.relative_to(staging).as_posix()] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    fingerprint = hashlib.sha256(json.dumps({k: v["sha256"] for k, v in files.items()}, sort_keys=True).encode()).hexdigest()
    schema = {name: {field.name: str(field.type) for field in s} for name, s in RELEASE_TABLES.items()}
    previous = read_manifest(curated_root, previous_version) if previous_version else None
    previous_ids = pl.read_parquet(release_path(curated_root, previous_version) / "articles", columns=["doc_id"])["doc_id"] \
        if previous_version else None
    version = next_version(previous, schema["articles"], frames["articles"]["doc_id"], fingerprint, previous_ids)
    if version is None:
        shutil.rmtree(staging)
        return None
    manifest = {
        "version": version,
        "previous_version": previous_version,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "run_id": run_id,
        "code_version": code_version(),
        **provenance,
        "content_fingerprint": fingerprint,
        "counts": {
            "articles": frames["articles"].height,
            "canonical_articles": frames["articles"]["duplicate_of"].is_null().sum(),
            "duplicates": frames["articles"]["duplicate_of"].is_not_null().sum(),
            "furniture_lines": frames["furniture"].height,
        },
        "files": files,
        "schema": schema,
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    _fsync_tree(staging)
    return manifest


def _write_aside(path: Path, text: str) -> Path:
    """Write ``text`` next to ``path`` (``.<name>.tmp``) and sync it, ready for an atomic replace."""
    aside = path.with_name(f".{path.name}.tmp")
    with aside.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    return aside


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _semver(name: str) -> tuple[int, int, int] | None:
    parts = name.split(".")
    return tuple(map(int, parts)) if len(parts) == 3 and all(p.isdigit() for p in parts) else None


def recover(curated_root: Path) -> list[str]:
    """Repair what a killed run left behind; call only while holding the run lock.

    Removes staging folders and a half-written ``LATEST``; when the newest complete release is
    newer than ``LATEST`` (the process died between the rename and the ``LATEST`` update), its
    files are checked against its manifest and ``LATEST`` moves to it. Returns what was done.
    """
    actions = []
    for staging in sorted(releases_dir(curated_root).glob(".staging-*")):
        shutil.rmtree(staging)
        actions.append(f"removed unfinished release {staging.name}")
    aside = curated_root / ".LATEST.tmp"
    if aside.exists():
        aside.unlink()
        actions.append("removed a half-written LATEST")
    complete = sorted((v, p.name) for p in releases_dir(curated_root).glob("*")
                      if (v := _semver(p.name)) and (p / "manifest.json").is_file()) if releases_dir(curated_root).is_dir() else []
    latest = latest_version(curated_root)
    if complete and (latest is None or complete[-1][0] > (_semver(latest) or (-1, -1, -1))):
        newest = complete[-1][1]
        manifest = read_manifest(curated_root, newest)
        for name, entry in manifest["files"].items():
            if sha256_file(releases_dir(curated_root) / newest / name) != entry["sha256"]:
                raise RuntimeError(f"release {newest} in {releases_dir(curated_root)} is newer than LATEST but {name} "
                                   "does not match its manifest; inspect it before running again")
        os.replace(_write_aside(curated_root / "LATEST", newest + "\n"), curated_root / "LATEST")
        actions.append(f"LATEST moved from {latest} to {newest}, a complete release whose run stopped before updating it")
    return actions


def read_release_table(curated_root: Path, table: str = "articles", version: str = "latest") -> pl.DataFrame:
    """One table of a release as a Polars frame."""
    folder = release_path(curated_root, version) / table
    return pl.from_arrow(pq.read_table(folder, schema=RELEASE_TABLES[table]))
