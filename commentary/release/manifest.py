"""A release's machine-readable description: its files with their checksums, ``manifest.json`` and ``datapackage.json``."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from pathlib import Path

from commentary.tables import RELEASE_TABLES

MANIFEST = "manifest.json"
_FRICTIONLESS_TYPES = {"String": "string", "Int64": "integer", "Date": "date", "List": "array", "Struct": "object"}
_CONSTRAINTS = {"str_matches": ("pattern", "pattern"), "isin": ("enum", "allowed_values"),
                "greater_than_or_equal_to": ("minimum", "min_value"), "str_length": ("minLength", "min_value")}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Files:
    """The files written into a release folder, each checksummed once as it is added: ``path -> {bytes, sha256}``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._entries: dict[str, dict] = {}

    def add(self, path: Path) -> None:
        """Record a file written into the folder."""
        self._entries[path.relative_to(self.folder).as_posix()] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}

    def write_text(self, name: str, text: str) -> Path:
        """Write a text file into the folder and record it (checksummed from the text, not read back)."""
        data = text.encode()
        path = self.folder / name
        path.write_bytes(data)
        self._entries[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        return path

    def entries(self, tables: tuple[str, ...] | None = None) -> dict[str, dict]:
        """The files recorded (of ``tables`` only, when given), in path order."""
        return {name: self._entries[name] for name in sorted(self._entries, key=lambda name: name.split("/"))
                if tables is None or name.split("/")[0] in tables}


def build(version: str, previous: str | None, run_id: str, provenance: dict, content: dict[str, dict], counts: dict,
          changes: dict) -> dict:
    """A release's manifest but its ``files``; ``content`` holds the compared tables' files (``Files.entries``)."""
    return {
        "version": version,
        "previous_version": previous,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "run_id": run_id,
        "code_version": code_version(),
        **provenance,
        "content_fingerprint": hashlib.sha256(json.dumps({k: v["sha256"] for k, v in content.items()}, sort_keys=True).encode()).hexdigest(),
        "counts": counts,
        "changes": changes,
        "schema": {name: {field.name: str(field.type) for field in table.schema} for name, table in RELEASE_TABLES.items()},
    }


def write(files: Files, manifest: dict) -> None:
    """Complete the manifest with the folder's files (all but ``manifest.json`` itself) and write it."""
    manifest["files"] = files.entries()
    (files.folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def code_version() -> str:
    """``git describe`` of the code when run from a checkout, else the package version."""
    from importlib.metadata import version

    here = Path(__file__).resolve().parent
    try:
        described = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=here, capture_output=True, text=True, timeout=10)
    except OSError:
        described = None
    return described.stdout.strip() if described and described.returncode == 0 else version("commentary")


def write_datapackage(files: Files, manifest: dict) -> None:
    files.write_text("datapackage.json", json.dumps(datapackage(manifest, files.entries()), indent=2) + "\n")


def datapackage(manifest: dict, files: dict[str, dict]) -> dict:
    """A Frictionless Data Package: one resource per table with its files (bytes, sha256) and schema."""
    resources = []
    for name, table in RELEASE_TABLES.items():
        parts = sorted(path for path in files if Path(path).match(table.files))
        columns = table.model.to_schema().columns
        resource = {
            "name": name, "path": parts, "format": "parquet", "mediatype": "application/vnd.apache.parquet",
            "description": " ".join((table.model.__doc__ or "").split()),
            "bytes": sum(files[p]["bytes"] for p in parts),
            "files": [{"path": p, "bytes": files[p]["bytes"], "hash": f"sha256:{files[p]['sha256']}"} for p in parts],
            "schema": {"fields": [_field(column_name, column) for column_name, column in columns.items()],
                       "primaryKey": list(table.key)},
        }
        if name == "furniture":
            resource["schema"]["foreignKeys"] = [{"fields": "doc_id", "reference": {"resource": "articles", "fields": "doc_id"}}]
        resources.append(resource)
    return {"profile": "data-package", "name": "commentary", "version": manifest["version"],
            "created": manifest["created_at"], "resources": resources}


def _field(name: str, column) -> dict:
    kind = str(column.dtype).split("(")[0]
    spec = {"name": name, "type": _FRICTIONLESS_TYPES[kind]}
    if column.description:
        spec["description"] = column.description
    constraints = {"required": not column.nullable}
    if column.unique:
        constraints["unique"] = True
    for check in column.checks:
        if check.name in _CONSTRAINTS:
            key, statistic = _CONSTRAINTS[check.name]
            constraints[key] = check.statistics[statistic]
    spec["constraints"] = constraints
    return spec
