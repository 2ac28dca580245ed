"""The pipeline's steps over a run folder: each reads and writes shard files, validates, rejects.

A run folder (``<curated>/runs/<run_id>/``) holds ``stages/<stage>/shard-NNNNN.parquet`` (the
curate stage: ``stages/curate/marks.parquet``), ``rejects/<stage>-NNNNN.parquet``,
``repairs/<stage>-NNNNN.parquet`` and, once merged,
``rejects.parquet``, ``repairs.parquet``, ``quality.json`` and ``ledger.json``. Steps pass
paths, never tables, so that any executor can run them. A run holds the lock of its curated
folder from start to end (``run_lock``); ``run`` executes every step in this process.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import filecmp
import hashlib
import json
import logging
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from commentary import cache, reader, stages, storage, tables, warc
from commentary.clean.model import HTML_MODEL_PATH, MODEL_PATH, LineModel
from commentary.ingest import RawFile, discover
from commentary.release import card, publish
from commentary.release.manifest import sha256_file
from commentary.settings import KEEP_RUNS, MAX_QUARANTINED_SHARE, SHARD_SIZE
from commentary.storage import RemoteFolder
from schemas import models
from schemas.validation import DETAIL, REASON, split_valid

log = logging.getLogger(__name__)
#: The release outcome of a run that found its tables equal to the latest release's.
NOTHING_CHANGED = "nothing changed since the latest release"


@dataclass(frozen=True)
class RunPlan:
    """What a run will do: its folder, its shards, the pipeline fingerprint, the cached run and where releases are mirrored."""

    raw_root: Path | RemoteFolder
    curated_root: Path
    run_dir: Path
    layout: list[cache.Shard]
    fingerprint: str
    cached_run: Path | None = None
    mirror: str | None = None

    @property
    def shards(self) -> list[list[RawFile]]:
        """The raw files of each shard."""
        return [shard.files for shard in self.layout]

    @property
    def seen(self) -> int:
        return sum(len(shard.files) for shard in self.layout)


class RunLocked(RuntimeError):
    """Another run holds the curated folder."""


@contextmanager
def run_lock(curated_root: Path) -> Iterator[list[str]]:
    """Hold ``<curated>/.run.lock`` for one run, then repair what a killed run left behind.

    A second run on the same folder fails at once with RunLocked. The lock is an ``flock`` on an
    open file, so the kernel releases it when the holder dies, even by SIGKILL. Yields what an
    interrupted run left and was removed (``publish.clean_unfinished``); run folders beyond KEEP_RUNS are
    removed (``prune_runs``). "No space left on device" anywhere in the run becomes DiskFull with a
    message that says whether anything was published; when nothing was, the run's folder is removed.
    """
    curated_root.mkdir(parents=True, exist_ok=True)
    handle = (curated_root / ".run.lock").open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown process"
            raise RunLocked(f"another run is using {curated_root} ({holder}); start this one when it has finished") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, started {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}\n")
        handle.flush()
        removed = publish.clean_unfinished(curated_root)
        prune_runs(curated_root)
        latest = reader.latest_version(curated_root)
        runs_before = set(_run_folders(curated_root))
        try:
            yield removed
        except (OSError, tables.DiskFull) as error:
            if isinstance(error, OSError) and error.errno not in tables.NO_SPACE:
                raise
            cause = str(error) if isinstance(error, tables.DiskFull) else f"no space left on the device under {curated_root}"
            now = reader.latest_version(curated_root)
            if now == latest:  # the failed run's folder goes: it would only hold the space the next run needs
                for run_dir in set(_run_folders(curated_root)) - runs_before:
                    shutil.rmtree(run_dir, ignore_errors=True)
            outcome = f"nothing was published, LATEST is still {latest}; the run's folder was removed" if now == latest else \
                f"release {now} was published, but the run's records are incomplete"
            raise tables.DiskFull(f"{cause}; {outcome}") from error
    finally:
        handle.close()


def check_unlocked(curated_root: Path) -> None:
    """Raise RunLocked when another run holds ``curated_root``; creates nothing (a run takes the lock with ``run_lock``)."""
    path = curated_root / ".run.lock"
    if not path.is_file():
        return
    with path.open() as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = handle.read().strip() or "unknown process"
            raise RunLocked(f"another run is using {curated_root} ({holder}); start this one when it has finished") from None


def _run_folders(curated_root: Path) -> list[Path]:
    """The run folders under ``<curated>/runs``, oldest first (run ids are UTC timestamps)."""
    runs = curated_root / "runs"
    return sorted(path for path in runs.iterdir() if path.is_dir()) if runs.is_dir() else []


def prune_runs(curated_root: Path, keep: int | None = None) -> list[str]:
    """Remove all but the newest ``keep`` (KEEP_RUNS) run folders; returns the run ids removed.

    The cached run (whose shards later runs reuse) and the run that made the ``LATEST`` release
    are always kept. Shards shared by hard links stay with the runs that still hold them.
    """
    spared = {cache.load_index_run(curated_root)}
    latest = reader.latest_version(curated_root)
    if latest:
        spared.add((tables.read_record(reader.releases_dir(curated_root) / latest / "manifest.json") or {}).get("run_id"))
    folders = _run_folders(curated_root)
    keep = KEEP_RUNS if keep is None else keep
    removed = [run_dir.name for run_dir in folders[:max(0, len(folders) - keep)] if run_dir.name not in spared]
    for name in removed:
        shutil.rmtree(curated_root / "runs" / name, ignore_errors=True)
    return removed


def plan_run(raw_root: Path | RemoteFolder, curated_root: Path, shard_size: int = SHARD_SIZE, mirror: str | None = None) -> RunPlan:
    """Discover raw files, cut them into shards and create the run folder.

    The cached run's shards are kept where they can be, new files go into new shards
    (``cache.lay_out``). ``mirror``: an fsspec URL each published release is copied to.
    """
    if not raw_root.is_dir():
        raise FileNotFoundError(f"raw folder {raw_root} does not exist")
    fingerprint = cache.pipeline_fingerprint()
    cached_run = cache.load(curated_root, fingerprint)
    members = [tables.read_parquet(path, cache.STAMPS, ["source_path"])["source_path"].to_list()
               for path in stage_paths(cached_run, "stamps")] if cached_run else []
    found = warc.expand(raw_root, discover(raw_root, skip=_curated_inside(raw_root, curated_root)), cache.index_path(curated_root).parent / "warc")
    layout = cache.lay_out(found, cached_run, members, shard_size)
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    run_dir = curated_root / "runs" / run_id
    run_dir.mkdir(parents=True)
    return RunPlan(raw_root, curated_root, run_dir, layout, fingerprint, cached_run, mirror)


def _curated_inside(raw_root: Path | RemoteFolder, curated_root: Path) -> Path | None:
    """The curated folder as a folder of ``raw_root`` when it lies inside it (said in a warning), else None.

    Its releases and reports are not raw input. The raw folder itself cannot be the curated folder.
    """
    if isinstance(raw_root, RemoteFolder) or not curated_root.resolve().is_relative_to(raw_root.resolve()):
        return None
    if curated_root.resolve() == raw_root.resolve():
        raise ValueError(f"the curated folder {curated_root} is the raw folder; give each its own folder")
    log.warning("the curated folder %s lies inside the raw folder %s: it is not read as raw input", curated_root, raw_root)
    return raw_root / curated_root.resolve().relative_to(raw_root.resolve())


def shard_path(run_dir: Path, stage: str, shard_no: int) -> Path:
    return run_dir / "stages" / stage / f"shard-{shard_no:05d}.parquet"


def stage_paths(run_dir: Path, stage: str) -> list[Path]:
    return sorted((run_dir / "stages" / stage).glob("shard-*.parquet"))


#: The stage tables each shard step writes (the first is what its cache look-up compares), and their schemas.
STEP_TABLES = {"ingest": ("stamps", "ingest"), "clean": ("keys", "clean", "furniture", "dedup")}
SCHEMAS = {"stamps": cache.STAMPS, "ingest": tables.INGESTED, "keys": cache.KEYS, "clean": tables.ARTICLES,
           "furniture": tables.FURNITURE, "dedup": tables.DEDUP_KEYS}


def link_unchanged_shards(plan: RunPlan) -> list[int]:
    """Link every shard whose raw files all kept their stamps from its twin in the cached run; returns their numbers.

    Such a shard's ingest outputs are its twin's, and so are its clean outputs, which depend only
    on the ingest outputs and the pipeline fingerprint. One pass over the run, so that an unchanged
    shard costs no task of its own; the other shards go through ``ingest_step`` and ``clean_step``.
    """
    linked = []
    for shard_no, shard in enumerate(plan.layout):
        if shard.reuse is None or shard.reuse.twin is None:
            continue
        stamps = cache.file_stamps(plan.raw_root, shard.files)
        if stamps["stamp"].null_count() == 0 and _is_twin(shard.reuse, "stamps", stamps):
            for step in STEP_TABLES:
                _link_step(shard.reuse.run_dir, shard.reuse.twin, plan.run_dir, shard_no, step)
            linked.append(shard_no)
    return linked


def ingest_step(raw_root: Path | RemoteFolder, run_dir: Path, shard_no: int, files: list[RawFile], reuse: cache.Reuse | None) -> Path:
    """Read one shard of raw files; invalid records and unreadable files become rejects.

    A file whose stamp matches the cached run (``reuse``) is not read: its record, rejects and
    repairs are copied from that run.
    """
    stamps = cache.file_stamps(raw_root, files)
    reused = _cached_outputs(reuse, "ingest", stamps, ["doc_id", "source_path", "stamp"])
    known = set(reused["hits"]["source_path"].to_list())
    ingested, rejects, repairs = stages.ingest(raw_root, [raw for raw in files if raw.rel_path not in known])
    valid, failed = split_valid(ingested, models.IngestedRecord)
    _write_rejects(run_dir, "ingest", shard_no, rejects + reused["rejects"].to_dicts(), failed)
    _write_repairs(run_dir, "ingest", shard_no, repairs + reused["repairs"].to_dicts())
    tables.write_parquet(stamps.to_arrow(), shard_path(run_dir, "stamps", shard_no), cache.STAMPS)
    return tables.write_parquet(pl.concat([valid, reused["ingest"]]).sort("doc_id").to_arrow(),
                                shard_path(run_dir, "ingest", shard_no), tables.INGESTED)


def clean_step(run_dir: Path, shard_no: int, reuse: cache.Reuse | None) -> Path:
    """Clean one ingested shard into articles, the furniture audit and the articles' dedup keys.

    Documents whose key matches the cached run (``reuse``, same pipeline fingerprint) are copied
    from it, not cleaned again (a shard whose keys all match one cached shard is linked whole).
    """
    ingest_file = shard_path(run_dir, "ingest", shard_no)
    keys = cache.document_keys(pl.read_parquet(ingest_file, columns=["doc_id", *cache.KEY_COLUMNS]))
    if _is_twin(reuse, "keys", keys):
        return _link_step(reuse.run_dir, reuse.twin, run_dir, shard_no, "clean")
    reused = _cached_outputs(reuse, "clean", keys, ["doc_id", "cache_key"])
    ingested = tables.read_parquet(ingest_file, tables.INGESTED).join(reused["hits"], on="doc_id", how="anti")
    articles, furniture, rejects, repairs = stages.clean(ingested)
    articles, url_repairs = repair_page_urls(articles)
    valid, failed = split_valid(articles, models.Article)
    audit_ok, audit_failed = split_valid(furniture, models.FurnitureLine)
    bad_audit_docs = audit_failed.select("doc_id", REASON, DETAIL).unique("doc_id", keep="first")
    failed_audit = valid.join(bad_audit_docs, on="doc_id", how="inner")
    valid = valid.join(bad_audit_docs, on="doc_id", how="anti")
    _write_rejects(run_dir, "clean", shard_no, rejects + reused["rejects"].to_dicts(),
                   pl.concat([failed, failed_audit], how="diagonal_relaxed"))
    _write_repairs(run_dir, "clean", shard_no, repairs + url_repairs + reused["repairs"].to_dicts())
    audit = audit_ok.filter(pl.col("doc_id").is_in(valid["doc_id"].implode()))
    tables.write_parquet(pl.concat([audit, reused["furniture"]]).sort("doc_id", "line_no").to_arrow(),
                         shard_path(run_dir, "furniture", shard_no), tables.FURNITURE)
    tables.write_parquet(pl.concat([stages.dedup_keys(valid), reused["dedup"]]).sort("doc_id").to_arrow(),
                         shard_path(run_dir, "dedup", shard_no), tables.DEDUP_KEYS)
    tables.write_parquet(keys.to_arrow(), shard_path(run_dir, "keys", shard_no), cache.KEYS)
    return tables.write_parquet(pl.concat([valid, reused["clean"]]).sort("doc_id").to_arrow(),
                                shard_path(run_dir, "clean", shard_no), tables.ARTICLES)


def repair_page_urls(articles: pl.DataFrame) -> tuple[pl.DataFrame, list[dict]]:
    """Make every article's ``url`` an absolute http(s) URL or null; returns the articles and the repairs.

    A URL taken from the page that is not one (a relative canonical link, ``javascript:``, ``file:``)
    is a bad metadata field, never a reason to reject the article: it is dropped (repair
    ``metadata-dropped``). A page with a sidecar URL, its own address, has that one (``fields.py``).
    An upper-case scheme is lower-cased.
    """
    from urllib.parse import urlsplit

    fixed, repairs = {}, []
    for doc_id, source_path, url in articles.filter(pl.col("url").is_not_null()).select("doc_id", "source_path", "url").iter_rows():
        parts = urlsplit(url)
        good = parts._replace(scheme=parts.scheme.lower()).geturl() if parts.scheme.lower() in ("http", "https") and parts.hostname else None
        if good == url:
            continue
        fixed[doc_id] = good
        if good is None:
            repairs.append(stages.reject(source_path, "clean", "metadata-dropped", f"url {url[:200]!r} from the page is not an absolute http(s) URL"))
    if not fixed:
        return articles, repairs
    ids = list(fixed)
    url = pl.col("doc_id").replace_strict(ids, list(fixed.values()), default=pl.col("url"), return_dtype=pl.String)
    sources = pl.col("field_sources").struct.with_fields(
        url=pl.when(pl.col("doc_id").is_in(ids) & url.is_null()).then(None).otherwise(pl.col("field_sources").struct.field("url")))
    return articles.with_columns(url=url, field_sources=sources), repairs


def _is_twin(reuse: cache.Reuse | None, table: str, frame: pl.DataFrame) -> bool:
    """Whether the cached shard of ``reuse`` has ``table`` equal to ``frame`` row for row: its step's outputs can be linked."""
    if reuse is None or reuse.twin is None or not frame.height:
        return False
    cached = shard_path(reuse.run_dir, table, reuse.twin)
    return cached.is_file() and tables.read_parquet(cached, SCHEMAS[table]).equals(frame)


def _step_files(run_dir: Path, step: str, shard_no: int) -> list[Path]:
    """Every file a shard step writes: its stage tables, rejects and repairs."""
    return [shard_path(run_dir, table, shard_no) for table in STEP_TABLES[step]] + \
        [run_dir / kind / f"{step}-{shard_no:05d}.parquet" for kind in ("rejects", "repairs")]


def _link_step(cached_run: Path, cached_shard: int, run_dir: Path, shard_no: int, step: str) -> Path:
    """Link a cached shard's outputs of ``step`` into this run; returns the step's main table."""
    for source, target in zip(_step_files(cached_run, step, cached_shard), _step_files(run_dir, step, shard_no), strict=True):
        tables.link_file(source, target)
    return shard_path(run_dir, step, shard_no)


def _cached_outputs(reuse: cache.Reuse | None, step: str, frame: pl.DataFrame, on: list[str]) -> dict[str, pl.DataFrame]:
    """From the cached shards of ``reuse``: the rows of ``frame`` equal on ``on`` to its first step table (``hits``), and their outputs of ``step``.

    Outputs are the step's other tables (by ``doc_id``) and its ``rejects`` and ``repairs`` (by ``source_path``).
    """
    match, *outputs = STEP_TABLES[step]
    found = {"hits": frame.head(0), "rejects": stages.frame([], tables.REJECTS), "repairs": stages.frame([], tables.REPAIRS)} | \
        {table: stages.frame([], SCHEMAS[table]) for table in outputs}
    if reuse is None or not frame.height:
        return found
    for n in reuse.shards:
        hits = frame.join(tables.read_parquet(shard_path(reuse.run_dir, match, n), SCHEMAS[match]).select(on), on=on)
        if not hits.height:
            continue
        ids, paths = hits["doc_id"].implode(), hits["source_path"].implode()
        rows = {"hits": hits} | {
            table: tables.read_parquet(shard_path(reuse.run_dir, table, n), SCHEMAS[table]).filter(pl.col("doc_id").is_in(ids))
            for table in outputs
        } | {
            kind: tables.read_parquet(reuse.run_dir / kind / f"{step}-{n:05d}.parquet", schema).filter(pl.col("source_path").is_in(paths))
            for kind, schema in (("rejects", tables.REJECTS), ("repairs", tables.REPAIRS))
        }
        found = {name: pl.concat([found[name], part]) for name, part in rows.items()}
    return found


def remember_clean_shards(run_dir: Path, fingerprint: str) -> Path:
    """Once every shard is cleaned, make this run's shards the cache of later runs."""
    return cache.remember(run_dir.parents[1], run_dir, fingerprint)


def unchanged_since(plan: RunPlan) -> Path | None:
    """The cached run, when this run's ingest and clean outputs equal its own, its release is still LATEST
    and the mirror, if any, holds that release.

    Then curating, checking and publishing again would give the same tables and no new release
    (``carry_forward`` takes that run's results into ``plan.run_dir`` instead). Call it before
    ``remember_clean_shards``.
    """
    previous = plan.cached_run
    entry = tables.read_record(previous / "ledger.json") if previous else None
    outcome = entry.get("release") if entry else None
    if not isinstance(outcome, dict):
        return None
    current = outcome.get("published") or outcome.get("reason") == NOTHING_CHANGED
    latest = reader.latest_version(plan.curated_root)
    if entry.get("balanced") is not True or not current or outcome.get("version") != latest:
        return None
    if plan.mirror and storage.mirrored_version(plan.mirror) != latest:
        return None
    if len(stage_paths(previous, "stamps")) != len(plan.layout):
        return None
    same = all(_same_file(ours, theirs) for n in range(len(plan.layout)) for step in STEP_TABLES
               for ours, theirs in zip(_step_files(plan.run_dir, step, n), _step_files(previous, step, n), strict=True))
    return previous if same else None


def _same_file(ours: Path, theirs: Path) -> bool:
    return ours.is_file() and theirs.is_file() and (os.path.samefile(ours, theirs) or filecmp.cmp(ours, theirs, shallow=False))


def carry_forward(run_dir: Path, previous_run: Path) -> dict:
    """Take the duplicate marks, curate and quality rejects and quality results of ``previous_run``; returns the release outcome.

    Only for a run whose inputs equal that run's (``unchanged_since``): no release is made.
    """
    for path in [marks_path(previous_run), *sorted((previous_run / "rejects").glob("curate-*.parquet")),
                 *sorted((previous_run / "rejects").glob("quality-*.parquet")), previous_run / "quality.json"]:
        if path.is_file():
            tables.link_file(path, run_dir / path.relative_to(previous_run))
    entry = tables.read_record(previous_run / "ledger.json")
    if entry is None:
        raise FileNotFoundError(f"no readable ledger.json in {previous_run}")
    version = entry["release"]["version"]
    return {"published": False, "reason": NOTHING_CHANGED, "version": version, "same_inputs_as_run": previous_run.name}


def marks_path(run_dir: Path) -> Path:
    """The curate stage's table: every article of the run and the canonical copy it duplicates."""
    return run_dir / "stages" / "curate" / "marks.parquet"


def serve_corpus_steps(run_pid: int) -> None:
    """Start a process of the whole-corpus steps for the run ``run_pid``: it dies with the run and publishes
    nothing once the run is gone (``publish.serve_run``); then import what the steps import when first
    called (Great Expectations and matplotlib take seconds)."""
    publish.serve_run(run_pid)
    import matplotlib.pyplot  # noqa: F401

    from schemas import expectations  # noqa: F401


def curate_step(run_dir: Path) -> Path:
    """Mark exact and near duplicates across all shards; writes and returns ``marks_path``.

    The cleaned shards are not rewritten: a run's articles are its cleaned articles with these
    marks (``articles``), which is what the release streams.
    """
    dedup = stage_paths(run_dir, "dedup")
    signatures = tables.read_matrix(dedup, "minhash", tables.DEDUP_KEYS)
    keys = tables.read_parquet(dedup, tables.DEDUP_KEYS, [name for name in tables.DEDUP_KEYS.names if name != "minhash"])
    valid, failed = split_valid(stages.canonical_copies(keys, signatures).sort("doc_id"), models.DuplicateMark)
    _write_rejects(run_dir, "curate", 0, [], failed.join(keys.select("doc_id", "source_path"), on="doc_id"))
    return tables.write_parquet(valid.to_arrow(), marks_path(run_dir), tables.MARKS)


def articles(run_dir: Path) -> tables.TableFiles:
    """The run's articles: its cleaned shards with the duplicate marks of the curate stage (rows without a mark are left out)."""
    return tables.TableFiles(stage_paths(run_dir, "clean"), tables.ARTICLES, overrides=marks_path(run_dir))


def _write_rejects(run_dir: Path, stage: str, shard_no: int, rejects: list[dict], failed: pl.DataFrame | None = None) -> None:
    """Write a stage's rejects: the stage's own plus the rows that failed validation."""
    rows = list(rejects)
    if failed is not None:
        rows += [stages.reject(row["source_path"], stage, row[REASON], row[DETAIL])
                 for row in failed.select("source_path", REASON, DETAIL).iter_rows(named=True)]
    tables.write_parquet(stages.frame(rows, tables.REJECTS).to_arrow(),
                         run_dir / "rejects" / f"{stage}-{shard_no:05d}.parquet", tables.REJECTS)


def _write_repairs(run_dir: Path, stage: str, shard_no: int, repairs: list[dict]) -> None:
    """Write a stage's repairs: files changed to become usable, with the reason."""
    tables.write_parquet(stages.frame(repairs, tables.REPAIRS).to_arrow(),
                         run_dir / "repairs" / f"{stage}-{shard_no:05d}.parquet", tables.REPAIRS)


def merge_rejects(run_dir: Path) -> pl.DataFrame:
    """Gather every stage's rejects into ``rejects.parquet``."""
    return _merge_notes(run_dir, "rejects", models.Reject, tables.REJECTS)


def merge_repairs(run_dir: Path) -> pl.DataFrame:
    """Gather every stage's repairs into ``repairs.parquet``."""
    return _merge_notes(run_dir, "repairs", models.Repair, tables.REPAIRS)


def _merge_notes(run_dir: Path, kind: str, model, schema) -> pl.DataFrame:
    notes = tables.read_parquet(sorted((run_dir / kind).glob("*.parquet")), schema).sort("source_path", "stage", "reason")
    valid, failed = split_valid(notes, model)
    if failed.height:
        raise ValueError(f"{kind} records break their own schema: {failed.head(3).to_dicts()}")
    tables.write_parquet(valid.to_arrow(), run_dir / f"{kind}.parquet", schema)
    return valid


def ledger(plan: RunPlan, rejects: pl.DataFrame, outcome: dict, timings: dict | None = None) -> dict:
    """Account for every raw file: seen = released + rejected + duplicates, checked here.

    The check is by path, not only by count: each raw file must have exactly one outcome. When
    the quality gate holds a release back, its articles are rejected at stage ``release``.
    Repairs (files changed to become usable) are counted beside the balance. ``timings``
    (seconds per stage) are recorded as given.
    """
    released = articles(plan.run_dir).frame(["source_path", "duplicate_of"])
    if outcome.get("reason") == "critical expectations failed":
        released = released.head(0)
    repairs = merge_repairs(plan.run_dir)
    duplicates = released["duplicate_of"].is_not_null().sum()
    seen = Counter(raw.rel_path for shard in plan.shards for raw in shard)
    accounted = Counter(released["source_path"].to_list() + rejects["source_path"].to_list())
    entry = {
        "run_id": plan.run_dir.name,
        "seen": plan.seen,
        "released": released.height - duplicates,
        "duplicates": duplicates,
        "rejected": rejects.height,
        "rejected_by_reason": dict(sorted(rejects.group_by("reason").len().iter_rows())),
        "repaired": repairs["source_path"].n_unique(),
        "repaired_by_reason": dict(sorted(repairs.group_by("reason").len().iter_rows())),
        "unaccounted": sorted((seen - accounted).elements()),
        "counted_twice_or_unknown": sorted((accounted - seen).elements()),
        "release": outcome,
        "timings": timings,
    }
    entry["balanced"] = (entry["seen"] == entry["released"] + entry["rejected"] + entry["duplicates"]
                         and not entry["unaccounted"] and not entry["counted_twice_or_unknown"])
    tables.write_text(plan.run_dir / "ledger.json", json.dumps(entry, indent=2, default=str) + "\n")
    if not entry["balanced"]:
        raise RuntimeError(f"ledger does not balance: {entry}")
    return entry


def quality_step(run_dir: Path) -> dict:
    """Run the Great Expectations suites on each stage's whole table; write ``quality.json``.

    Text columns are not loaded whole: Polars' streaming engine measures them (length, known
    furniture) a batch at a time and the suites check the measures, so memory is bounded by the
    batch size plus a few narrow columns per document. The furniture suite checks each (category,
    rule) pair once, with its smallest line number: the same verdicts as over every removed line
    (none of its expectations allows a share of failures), in memory that does not grow with the
    corpus (about 180 removed lines per real page: 18 million rows at 100k pages).
    """
    from schemas.expectations import body_measures, run_suites  # heavy import, only where suites run

    ingested = pl.scan_parquet(stage_paths(run_dir, "ingest")).select(
        "doc_id", "format", "bytes", text_chars=pl.col("text").str.len_chars()).collect(engine="streaming")
    cleaned = pl.scan_parquet(stage_paths(run_dir, "clean")).select("doc_id", "title", "body", "word_count", "published_date")
    marked = pl.scan_parquet(marks_path(run_dir)).select("doc_id")
    measured = body_measures(cleaned.join(marked, on="doc_id", how="semi"))
    furniture = (pl.scan_parquet(stage_paths(run_dir, "furniture")).group_by("category", "rule_id").agg(pl.col("line_no").min())
                 .sort("category", "rule_id", nulls_last=True).collect(engine="streaming"))
    frames = {
        "ingested": ingested.to_pandas(),
        "articles": measured.to_pandas(),
        "furniture": furniture.to_pandas(),
    }
    report = run_suites(run_dir / "quality", frames)
    quarantine(run_dir, report)
    tables.write_text(run_dir / "quality.json", json.dumps(report, indent=2) + "\n")
    return report


def quarantine(run_dir: Path, report: dict) -> None:
    """Take the articles that failed a per-row critical expectation (``report["quarantined"]``) out of the run.

    They are rejected at stage ``quality`` with the expectation as reason and left out of the
    duplicate marks (``marks_path``), so neither they nor their furniture are released; a duplicate
    of one of them points to the first (by ``doc_id``) of its remaining copies instead. When more
    than MAX_QUARANTINED_SHARE of the articles fail, the batch as a whole has failed: nothing is
    taken out and the failure is added to ``report["critical_failed"]``, which holds the release.
    """
    marks = tables.read_parquet(marks_path(run_dir), tables.MARKS)
    failed = pl.DataFrame(report["quarantined"], schema={"doc_id": pl.String, "check": pl.String, "reason": pl.String, "value": pl.String},
                          strict=False).filter(pl.col("doc_id").is_in(marks["doc_id"].implode()))
    failed = failed.sort("doc_id", "check").unique("doc_id", keep="first", maintain_order=True)
    report["quarantined_articles"] = failed.height
    if not failed.height:
        return
    if failed.height > MAX_QUARANTINED_SHARE * marks.height:
        report["critical_failed"].append(f"articles: {failed.height} of {marks.height} failed a per-row critical expectation "
                                         f"(more than {MAX_QUARANTINED_SHARE:.0%})")
        return
    sources = articles(run_dir).frame(["doc_id", "source_path"]).join(failed, on="doc_id")
    _write_rejects(run_dir, "quality", 0, [stages.reject(row["source_path"], "quality", row["reason"], f"{row['check']} failed on {row['value']}")
                                           for row in sources.iter_rows(named=True)])
    ids = failed["doc_id"].implode()
    kept = marks.filter(~pl.col("doc_id").is_in(ids))
    heirs = kept.filter(pl.col("duplicate_of").is_in(ids)).group_by("duplicate_of").agg(heir=pl.col("doc_id").min())
    kept = kept.join(heirs, on="duplicate_of", how="left").with_columns(
        duplicate_of=pl.when(pl.col("heir").is_null()).then("duplicate_of")
        .when(pl.col("heir") != pl.col("doc_id")).then("heir")).drop("heir")
    tables.write_parquet(kept.sort("doc_id").to_arrow(), marks_path(run_dir), tables.MARKS)


def release_step(plan: RunPlan, quality: dict) -> dict | None:
    """Publish the run's articles and furniture unless a critical expectation failed; then mirror the release if asked."""
    if quality["critical_failed"]:
        held = articles(plan.run_dir).frame(["source_path"])
        detail = "; ".join(quality["critical_failed"])
        _write_rejects(plan.run_dir, "release", 0, [stages.reject(path, "release", "quality-gate", detail) for path in held["source_path"]])
        return {"published": False, "reason": "critical expectations failed", "failed": quality["critical_failed"]}
    shards = {"articles": articles(plan.run_dir),
              "furniture": tables.TableFiles(stage_paths(plan.run_dir, "furniture"), tables.FURNITURE, overrides=marks_path(plan.run_dir))}
    rejects = tables.read_parquet(sorted((plan.run_dir / "rejects").glob("*.parquet")), tables.REJECTS, ["stage", "reason"])
    report = card.RunReport(seen=plan.seen, quality=quality, rejects=rejects)

    def published(manifest: dict) -> dict:
        return {"published": True, "version": manifest["version"], "counts": manifest["counts"]}

    # The run's ledger is written before LATEST names the release: no release is ever published without it.
    manifest = publish.publish(plan.curated_root, plan.run_dir.name, shards, provenance(plan), report,
                               before_latest=lambda manifest: ledger(plan, merge_rejects(plan.run_dir), published(manifest)))
    outcome = published(manifest) if manifest else \
        {"published": False, "reason": NOTHING_CHANGED, "version": reader.latest_version(plan.curated_root)}
    # A mirror behind the latest release (its copy failed, or it was added since) catches up here.
    if plan.mirror and storage.mirrored_version(plan.mirror) != outcome["version"]:
        storage.mirror(reader.release_path(plan.curated_root, outcome["version"]), plan.curated_root / "CHANGELOG.md", plan.mirror)
        outcome["mirrored_to"] = plan.mirror
    return outcome


def provenance(plan: RunPlan) -> dict:
    """Fingerprints of what produced a release: raw input, rules, the lock file, and each line model with the data it was trained on."""
    sources = tables.read_parquet(stage_paths(plan.run_dir, "ingest"), tables.INGESTED, ["source_path", "source_sha256"])
    raw = hashlib.sha256()
    for path, digest in sources.sort("source_path").iter_rows():
        raw.update(f"{path}\0{digest}\n".encode())
    rules = hashlib.sha256()
    rules_root = Path(__file__).parent / "rules"
    for path in sorted(p for p in rules_root.rglob("*") if p.is_file()):
        rules.update(path.relative_to(rules_root).as_posix().encode() + b"\0" + path.read_bytes())
    lock = Path(__file__).resolve().parents[1] / "uv.lock"
    return {
        "raw_fingerprint": raw.hexdigest(),
        "rules_version": rules.hexdigest()[:16],
        "lock_sha256": sha256_file(lock) if lock.is_file() else None,
        "models": {name: {"sha256": sha256_file(path), "trained_on": LineModel.load(path).trained_on}
                   for name, path in (("text", MODEL_PATH), ("html", HTML_MODEL_PATH))},
    }


def run(raw_root: Path | RemoteFolder, curated_root: Path, shard_size: int = SHARD_SIZE, mirror: str | None = None) -> dict:
    """Every step in order, in this process and without Prefect; returns the ledger entry.

    The Prefect flow (``flows.pipeline``) runs the same steps as tasks; this entry point serves
    small folders, debugging and the fault tests (no local API server to start).
    """
    with run_lock(curated_root):
        plan = plan_run(raw_root, curated_root, shard_size, mirror)
        linked = set(link_unchanged_shards(plan))
        for shard_no, shard in enumerate(plan.layout):
            if shard_no not in linked:
                ingest_step(plan.raw_root, plan.run_dir, shard_no, shard.files, shard.reuse)
                clean_step(plan.run_dir, shard_no, shard.reuse)
        previous = unchanged_since(plan)
        remember_clean_shards(plan.run_dir, plan.fingerprint)
        if previous:
            outcome = carry_forward(plan.run_dir, previous)
        else:
            curate_step(plan.run_dir)
            outcome = release_step(plan, quality_step(plan.run_dir))
        return ledger(plan, merge_rejects(plan.run_dir), outcome)
