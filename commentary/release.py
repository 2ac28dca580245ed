"""Publish immutable, versioned releases into ``<curated>/releases/<version>/``.

A release is written aside (``releases/.staging-<run_id>``), synced, then renamed into place;
``LATEST`` is replaced last, atomically. Parquet output is deterministic: rows sorted by
``doc_id``, fixed row groups, no schema metadata.
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
    """Publish ``frames`` (articles, furniture) as the next release; None when nothing changed."""
    staging = releases_dir(curated_root) / f".staging-{run_id}"
    shutil.rmtree(staging, ignore_errors=True)
    files = {}
    for name, schema in RELEASE_TABLES.items():
        ordered = frames[name].sort(["doc_id", "line_no"] if name == "furniture" else "doc_id")
        for path in _write_parts(ordered, staging / name, schema):
            files[path.relative_to(staging).as_posix()] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    fingerprint = hashlib.sha256(json.dumps({k: v["sha256"] for k, v in files.items()}, sort_keys=True).encode()).hexdigest()
    schema = {name: {field.name: str(field.type) for field in s} for name, s in RELEASE_TABLES.items()}
    previous_version = latest_version(curated_root)
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
    os.rename(staging, releases_dir(curated_root) / version)
    _replace_text(curated_root / "LATEST", version + "\n")
    return manifest


def _replace_text(path: Path, text: str) -> None:
    """Write a small file atomically (write aside, fsync, rename)."""
    aside = path.with_name(f".{path.name}.tmp")
    with aside.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(aside, path)


def read_release_table(curated_root: Path, table: str = "articles", version: str = "latest") -> pl.DataFrame:
    """One table of a release as a Polars frame."""
    folder = release_path(curated_root, version) / table
    return pl.from_arrow(pq.read_table(folder, schema=RELEASE_TABLES[table]))
