"""Reading published releases, the one way in: where they are, their manifests, their tables (``scan_table``;
``load`` into pandas, Polars or Arrow; DuckDB views over all of them) and checking their files (``verify``).

For ``load`` and ``duckdb_views``, the curated folder is the one given, else ``$COMMENTARY_CURATED``, else
the project's own ``curated/`` (beside this package), whatever the current folder. ``<curated>/latest/`` always links to the newest
release, so plain readers can glob ``curated/latest/articles/*.parquet``.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from commentary.release.manifest import MANIFEST, sha256_file
from commentary.release.versions import parse_version
from commentary.tables import RELEASE_TABLES

ENGINES = ("pandas", "polars", "arrow")
#: The environment variable that names the default curated folder.
CURATED_VARIABLE = "COMMENTARY_CURATED"
PROJECT_CURATED = Path(__file__).resolve().parents[1] / "curated"
#: ``<curated>/latest``: a symbolic link to the newest release folder, for readers that glob paths (DuckDB, Polars).
LATEST_LINK = "latest"
#: ``releases/.pending``: the version of a release renamed into place before ``LATEST`` names it (``unpublished``).
PENDING = ".pending"
#: ``<curated>/.publish.lock``: the lock a publisher holds while it writes a release and moves ``LATEST`` (``publish_lock``).
PUBLISH_LOCK = ".publish.lock"
#: What every release's manifest holds and readers use (``commentary releases``, ``show``, the changelog), by type;
#: a manifest without one of them is incomplete: ``verify`` says so and ``list_releases`` leaves it out.
MANIFEST_KEYS = {"version": str, "previous_version": (str, type(None)), "created_at": str, "counts": dict, "changes": dict,
                 "files": dict}
_MISSING = object()


@contextlib.contextmanager
def publish_lock(curated_root: Path, shared: bool = False) -> Iterator[None]:
    """Hold the curated folder's publish lock (``PUBLISH_LOCK``, released by the system if the holder dies): exclusive
    for a publisher, one at a time; shared for ``verify_all``, which so never sees a publish half done. A folder that
    was never published to has no lock file, and a shared holder then waits for nothing."""
    try:
        handle = (curated_root / PUBLISH_LOCK).open("rb" if shared else "ab")
    except FileNotFoundError:
        if not shared:
            raise
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield


class NoRelease(FileNotFoundError):
    """The curated folder holds no release, or not the one asked for."""


def releases_dir(curated_root: Path) -> Path:
    return curated_root / "releases"


def latest_version(curated_root: Path) -> str | None:
    """The version that ``LATEST`` names (None when there is none yet); NoRelease when it holds no version."""
    latest = curated_root / "LATEST"
    if not latest.is_file():
        return None
    version = latest.read_text().strip()
    if not _is_version(version):
        raise NoRelease(f"{latest} holds {version[:40]!r}, not a release version: write into it the version of the "
                        f"latest release (the newest folder in {releases_dir(curated_root)})")
    return version


def unpublished(curated_root: Path) -> str | None:
    """The version of a release folder that ``LATEST`` does not name yet although ``.pending`` does: one being
    published, or one an interrupted run left, which the next run removes (and may publish otherwise). Readers do
    not see it."""
    pending = releases_dir(curated_root) / PENDING
    version = pending.read_text().strip() if pending.is_file() else ""
    try:
        latest = latest_version(curated_root)
    except NoRelease:
        return None  # a LATEST without a version hides nothing; each reader of it says what is wrong
    return version if version and version != latest else None


def manifest_gaps(manifest: dict) -> list[str]:
    """The keys that readers need (MANIFEST_KEYS) that ``manifest`` lacks or holds as another type."""
    return [key for key, kind in MANIFEST_KEYS.items() if not isinstance(manifest.get(key, _MISSING), kind)]


def list_releases(curated_root: Path, with_unpublished: bool = False) -> list[dict]:
    """The manifests of all published releases (``with_unpublished``: and of the ``unpublished`` one), oldest version
    first; a manifest that is no complete JSON object of its own folder's version is left out (``damaged_releases``)."""
    found = []
    manifests = list(releases_dir(curated_root).glob(f"*/{MANIFEST}"))  # before .pending is read: a publish writes it first
    hidden = None if with_unpublished else unpublished(curated_root)
    for folder in manifests:
        with contextlib.suppress(ValueError):
            manifest = json.loads(folder.read_text())
            if isinstance(manifest, dict) and manifest.get("version") == folder.parent.name != hidden and not manifest_gaps(manifest):
                found.append((parse_version(folder.parent.name), manifest))
    return [manifest for _, manifest in sorted(found, key=lambda item: item[0])]


def damaged_releases(curated_root: Path, listed: list[dict]) -> list[str]:
    """The release folders, published ones as in ``list_releases``, whose manifest is missing or is not among
    ``listed`` (what ``list_releases`` gave; ``verify`` tells why)."""
    named = {path.name for path in releases_dir(curated_root).glob("*") if path.is_dir() and _is_version(path.name)}
    return sorted(named - {manifest["version"] for manifest in listed} - {unpublished(curated_root)}, key=parse_version)


def _version(curated_root: Path, version: str) -> str:
    """The release ``version`` names (``latest``: the one ``LATEST`` names); NoRelease when it names none, as any
    string that is not MAJOR.MINOR.PATCH ("..", "/"), or an ``unpublished`` one."""
    name = latest_version(curated_root) if version == "latest" else version
    if name is None:
        raise NoRelease(f"no release in {curated_root}")
    if not _is_version(name):
        raise NoRelease(f"no release {version} in {curated_root}")
    if name == unpublished(curated_root):
        raise NoRelease(f"release {name} in {curated_root} is not published (being published, or left by an interrupted run, "
                        "which the next run removes)")
    return name


def release_path(curated_root: Path, version: str = "latest") -> Path:
    """Folder of a release; ``latest`` resolves through ``LATEST``."""
    version = _version(curated_root, version)
    path = releases_dir(curated_root) / version
    if not (path / MANIFEST).is_file():
        raise NoRelease(f"no release {version} in {curated_root}")
    return path


def read_manifest(curated_root: Path, version: str = "latest") -> dict:
    return json.loads((release_path(curated_root, version) / MANIFEST).read_text())


def scan_table(curated_root: Path, table: str, version: str = "latest") -> pl.LazyFrame:
    """One table of a release, lazily (``articles``, ``furniture`` or ``changes``)."""
    if table not in RELEASE_TABLES:
        raise ValueError(f"unknown table {table!r}; a release has {', '.join(RELEASE_TABLES)}")
    return pl.scan_parquet(RELEASE_TABLES[table].paths(release_path(curated_root, version)), glob=False)


def verify_all(curated_root: Path) -> dict[str, list[str]]:
    """Check every release folder (``verify``), that ``LATEST`` names an intact one and that the ``latest`` link leads to it; returns the problems
    found by version, and under ``LATEST`` (empty lists when intact).

    Raises NoRelease when the folder holds no release and no ``LATEST``. A publish going on is waited for.
    """
    with publish_lock(curated_root, shared=True):
        return _verify_all(curated_root)


def _verify_all(curated_root: Path) -> dict[str, list[str]]:
    folders = [p.name for p in releases_dir(curated_root).glob("[!.]*") if p.is_dir() and _is_version(p.name)] \
        if releases_dir(curated_root).is_dir() else []  # before .pending is read: a publish writes it first
    hidden = unpublished(curated_root)
    try:
        latest = latest_version(curated_root)
    except NoRelease as damaged:
        return {name: _verified(releases_dir(curated_root) / name) for name in sorted(folders)} | {"LATEST": [str(damaged)]}
    versions = sorted(name for name in folders if name != hidden)
    if not versions and latest is None:
        raise NoRelease(f"no release in {curated_root}")
    problems = {version: _verified(releases_dir(curated_root) / version) for version in versions}
    if latest is not None:
        intact = latest in problems and not problems[latest]
        problems["LATEST"] = [] if intact else [f"LATEST names {latest}, which is {'incomplete' if latest in problems else 'not a release folder'}"]
        if not _leads_to(curated_root / LATEST_LINK, releases_dir(curated_root) / latest):
            target = (releases_dir(curated_root) / latest).relative_to(curated_root)
            problems["LATEST"].append(f"the {LATEST_LINK} link does not lead to {target} (the next run points it there)")
    return problems


def _leads_to(link: Path, release: Path) -> bool:
    """Whether ``link`` is a link to ``release``, or a copy of it (a curated folder copied without its links) whose
    manifest is the release's."""
    if link.is_symlink():
        return link.resolve() == release.resolve()
    with contextlib.suppress(OSError):
        return (link / MANIFEST).read_bytes() == (release / MANIFEST).read_bytes()
    return False


def verify(curated_root: Path, version: str = "latest") -> list[str]:
    """Check a release's files against its manifest; returns the problems found (empty when intact).

    A missing or unreadable manifest is a problem; a version with no folder raises NoRelease.
    """
    folder = releases_dir(curated_root) / _version(curated_root, version)
    if not folder.is_dir():
        raise NoRelease(f"no release {version} in {curated_root}")
    return _verified(folder)


def _verified(folder: Path) -> list[str]:
    """``verify`` of the release folder ``folder``."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        return [f"{folder.name}/manifest.json: missing"]
    except (OSError, ValueError, UnicodeDecodeError) as error:
        return [f"{folder.name}/manifest.json: unreadable ({error})"]
    if gaps := manifest_gaps(manifest):
        return [f"{folder.name}/manifest.json: incomplete (no valid {', '.join(gaps)})"]
    listed = manifest["files"]
    problems = []
    for rel, entry in sorted(listed.items()):
        path = folder / rel
        if not path.is_file():
            problems.append(f"{folder.name}/{rel}: missing")
        elif not isinstance(entry, dict) or path.stat().st_size != entry.get("bytes"):
            problems.append(f"{folder.name}/{rel}: {path.stat().st_size} bytes, manifest says {entry.get('bytes') if isinstance(entry, dict) else entry}")
        elif sha256_file(path) != entry.get("sha256"):
            problems.append(f"{folder.name}/{rel}: sha256 differs from the manifest")
    present = {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file() and path != folder / MANIFEST}
    problems += [f"{folder.name}/{rel}: not in the manifest" for rel in sorted(present - set(listed))]
    return problems


def _is_version(name: str) -> bool:
    try:
        parse_version(name)
    except ValueError:
        return False
    return True


def default_curated() -> Path:
    """``$COMMENTARY_CURATED`` when set, else the project's ``curated/`` folder."""
    return Path(os.environ[CURATED_VARIABLE]) if os.environ.get(CURATED_VARIABLE) else PROJECT_CURATED


def _release_folder(curated: str | Path | None, version: str) -> Path:
    """The release folder, with an error that names the folder looked in and how it was chosen."""
    root = Path(curated) if curated is not None else default_curated()
    try:
        return release_path(root, version)
    except NoRelease as error:
        chosen = "" if curated is not None else \
            f" (from ${CURATED_VARIABLE})" if os.environ.get(CURATED_VARIABLE) else f" (the project's folder; set ${CURATED_VARIABLE} or pass curated=)"
        raise NoRelease(f"{error}{chosen}") from None


def load(version: str = "latest", table: str = "articles", engine: str = "pandas", include_duplicates: bool = False,
         curated: str | Path | None = None):
    """One table of a release (``articles``, ``furniture`` or ``changes``) as a pandas, Polars or Arrow table.

    Without ``include_duplicates``, duplicate articles (``duplicate_of`` set) and their furniture
    lines are left out: one canonical copy per article. ``curated``: see the module docstring.

    pandas types: dates (``published_date``, ``syndicated_date``) are ``datetime64[ms]`` (``.dt`` works,
    missing is ``NaT``); list columns (``authors``, ``tags``, ``summary``, ``changed_fields``) are
    ``pd.ArrowDtype(list<string>)``: each value is a Python list, ``.list`` gives vectorised access;
    ``field_sources`` holds a dict per row. Polars and Arrow keep the Parquet types (``Date``, ``List(String)``).
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if table not in RELEASE_TABLES:
        raise ValueError(f"unknown table {table!r}; a release has {', '.join(RELEASE_TABLES)}")
    folder = _release_folder(curated, version)
    spec = RELEASE_TABLES[table]
    data = ds.dataset(spec.paths(folder), schema=spec.schema, format="parquet").to_table()
    if not include_duplicates and table in ("articles", "furniture"):
        canonical = _canonical_ids(folder)
        data = data.filter(pc.is_in(data["doc_id"], value_set=canonical))
    if engine == "arrow":
        return data
    if engine == "polars":
        return pl.from_arrow(data)
    return data.to_pandas(date_as_object=False, types_mapper=_pandas_type)


def _pandas_type(kind: pa.DataType):
    """List columns as Arrow-backed pandas columns (Python lists per value); the others as pandas chooses."""
    import pandas as pd

    return pd.ArrowDtype(kind) if pa.types.is_list(kind) else None


def _canonical_ids(folder: Path) -> pa.Array:
    articles = ds.dataset(RELEASE_TABLES["articles"].paths(folder), format="parquet")
    return articles.to_table(columns=["doc_id"], filter=ds.field("duplicate_of").is_null())["doc_id"].combine_chunks()


def duckdb_views(version: str = "latest", curated: str | Path | None = None, connection=None):
    """Register a release as DuckDB views: ``articles`` and ``furniture`` of the canonical copies (as ``load`` gives
    them), ``articles_all`` and ``furniture_all`` with the duplicates', and ``changes``.

    Returns the connection (a new in-memory one unless ``connection`` is given).
    """
    import duckdb

    folder = _release_folder(curated, version).resolve()
    con = connection or duckdb.connect()
    for name, spec in RELEASE_TABLES.items():
        files = ", ".join(_sql_string(str(path)) for path in spec.paths(folder))
        view = f"{name}_all" if name in ("articles", "furniture") else name
        con.execute(f"create or replace view {view} as select * from read_parquet([{files}])")
    con.execute("create or replace view articles as select * from articles_all where duplicate_of is null")
    con.execute("create or replace view furniture as select * from furniture_all where doc_id in (select doc_id from articles)")
    return con


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
