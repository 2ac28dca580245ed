"""The pipeline's steps, in order (``STEPS``), and the plan they share; ``run`` walks them in this process.

Each step is a function of named inputs (the run's arguments and earlier steps' outputs) to one
output, and reads and writes files of the run folder (``RunFolder``). Steps pass paths, never
tables, so that any executor can run them: the Prefect flow (``flows.pipeline``) walks the same
list and runs the shard steps as tasks and the whole-corpus steps in a process of their own.
"""
from __future__ import annotations

import filecmp
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum, auto
from pathlib import Path

import polars as pl

from commentary import cache, reader, stages, storage, tables, warc
from commentary.ingest import RawFile, discover
from commentary.ledger import ReleaseOutcome, Result, ledger, provenance
from commentary.locking import run_lock
from commentary.release import card, publish
from commentary.runfolder import NOTES, SCHEMAS, SHARD_TABLES, CuratedFolder, RunFolder
from commentary.settings import MAX_QUARANTINED_SHARE, MIN_QUARANTINED_TO_HOLD, SHARD_SIZE
from commentary.storage import RemoteFolder
from schemas import models
from schemas.measures import body_measures
from schemas.validation import DETAIL, REASON, split_valid

log = logging.getLogger(__name__)
#: Clean rejects never reused by a later run: their outcome depends on the machine's load, not on the document (an
#: extraction stopped after ``HTML_TIMEOUT_SECONDS``, or killed for want of memory), so each run cleans it again.
LOAD_DEPENDENT_REASONS = ("too-costly",)


@dataclass(frozen=True)
class ShardJob:
    """What a shard step needs: where the raw files are, the run, the shard's number and files, and where its earlier outputs are."""

    raw_root: Path | RemoteFolder
    run: RunFolder
    shard_no: int
    files: list[RawFile]
    reuse: cache.Reuse | None


@dataclass(frozen=True)
class RunPlan:
    """What a run will do: its folder, its shards, the pipeline fingerprint, the cached run and where releases are mirrored."""

    raw_root: Path | RemoteFolder
    curated_root: Path
    run: RunFolder
    layout: list[cache.Shard]
    fingerprint: str
    cached_run: RunFolder | None = None
    mirror: str | None = None

    @property
    def shards(self) -> list[list[RawFile]]:
        """The raw files of each shard."""
        return [shard.files for shard in self.layout]

    @property
    def seen(self) -> int:
        return sum(len(shard.files) for shard in self.layout)

    def may_be_linked(self, shard_no: int) -> bool:
        """Whether the shard has a twin in the cached run that it may be linked from (``link_unchanged_shards``), or must be
        cleaned: it has none, or the twin holds a document to clean again (``load_dependent``)."""
        reuse = self.layout[shard_no].reuse
        return reuse is not None and reuse.twin is not None and not load_dependent(reuse)

    def jobs(self, linked: set[int]) -> list[ShardJob]:
        """The shards that go through the shard steps: those not ``linked``."""
        return [ShardJob(self.raw_root, self.run, n, shard.files, shard.reuse) for n, shard in enumerate(self.layout) if n not in linked]


def plan_run(raw_root: Path | RemoteFolder, curated_root: Path, shard_size: int = SHARD_SIZE, mirror: str | None = None) -> RunPlan:
    """Discover raw files, cut them into shards and create the run folder.

    The cached run's shards are kept where they can be, new files go into new shards
    (``cache.lay_out``). ``mirror``: an fsspec URL each published release is copied to.
    """
    if not raw_root.is_dir():
        raise FileNotFoundError(f"raw folder {raw_root} does not exist")
    curated = CuratedFolder(curated_root)
    fingerprint = cache.pipeline_fingerprint()
    cached_path = cache.load(curated_root, fingerprint)
    if cached_path and not RunFolder(cached_path).complete():
        log.warning("the cached run %s lacks some of its shard files: every shard is made anew", cached_path.name)
        cached_path = None
    cached_run = RunFolder(cached_path) if cached_path else None
    members = [tables.read_parquet(path, cache.STAMPS, ["source_path"])["source_path"].to_list()
               for path in cached_run.shards("stamps")] if cached_run else []
    skip = curated.inside(raw_root)
    if skip is not None:
        if skip == raw_root:
            raise ValueError(f"the curated folder {curated_root} is the raw folder; give each its own folder")
        log.warning("the curated folder %s lies inside the raw folder %s: it is not read as raw input", curated_root, raw_root)
    found = warc.expand(raw_root, discover(raw_root, skip=skip), curated.warc_cache)
    layout = cache.lay_out(found, cached_path, members, shard_size)
    return RunPlan(raw_root, curated_root, curated.new_run(), layout, fingerprint, cached_run, mirror)


def link_unchanged_shards(plan: RunPlan) -> set[int]:
    """Link every shard whose raw files all kept their stamps from its twin in the cached run; returns their numbers.

    Such a shard's ingest outputs are its twin's, and so are its clean outputs, which depend only
    on the ingest outputs and the pipeline fingerprint. One pass over the run, so that an unchanged
    shard costs no task of its own; the other shards go through ``ingest_step`` and ``clean_step``.
    """
    linked = set()
    for shard_no, shard in enumerate(plan.layout):
        if not plan.may_be_linked(shard_no):
            continue
        stamps = cache.file_stamps(plan.raw_root, shard.files)
        if stamps["stamp"].null_count() == 0 and _is_twin(shard.reuse, "stamps", stamps):
            for step in SHARD_TABLES:
                plan.run.link_step(RunFolder(shard.reuse.run_dir), shard.reuse.twin, step, shard_no)
            linked.add(shard_no)
    return linked


@dataclass
class Made:
    """What a shard step made: its stage tables (in the order they are written, main table last), rejects and repairs."""

    tables: dict[str, pl.DataFrame]
    rejects: pl.DataFrame
    repairs: pl.DataFrame

    def save(self, run: RunFolder, step: str, shard_no: int) -> Path:
        """Write it all into ``run``; returns the step's main table."""
        run.write_notes("rejects", step, shard_no, self.rejects)
        run.write_notes("repairs", step, shard_no, self.repairs)
        for table, rows in self.tables.items():
            run.write(table, shard_no, rows)
        return run.shard(step, shard_no)


def ingest_step(job: ShardJob) -> Path:
    """Read one shard of raw files; invalid records and unreadable files become rejects. Returns the shard's ingest table.

    A file whose stamp matches the cached run (``reuse``) is not read: its record, rejects and
    repairs are copied from that run. A file still being written keeps the record that run read of it
    (``earlier_versions``), so a page being fetched again does not leave the release meanwhile.
    """
    stamps = cache.file_stamps(job.raw_root, job.files)
    reused = _cached_outputs(job.reuse, "ingest", stamps, ["doc_id", "source_path", "stamp"])
    known = set(reused["hits"]["source_path"].to_list())
    ingested, rejects, repairs = stages.ingest(job.raw_root, [raw for raw in job.files if raw.rel_path not in known])
    earlier, rejects, kept = earlier_versions(job.reuse, stamps, rejects)
    valid, failed = split_valid(ingested, models.IngestedRecord)
    return Made(
        {"stamps": stamps, "ingest": pl.concat([valid, reused["ingest"], earlier]).sort("doc_id")},
        _rejects("ingest", rejects + reused["rejects"].to_dicts(), failed),
        pl.concat([stages.frame(repairs, tables.REPAIRS), reused["repairs"], kept]),
    ).save(job.run, "ingest", job.shard_no)


def earlier_versions(reuse: cache.Reuse | None, stamps: pl.DataFrame, rejects: list[dict]) -> tuple[pl.DataFrame, list[dict], pl.DataFrame]:
    """The files rejected ``still-being-written`` of which the cached run (``reuse``) holds a record: that record, the
    rejects left, and the repairs of the records kept (theirs from that run, and ``earlier-version-kept``).

    A file the cached run rejected, or never saw, stays rejected: a later run reads it.
    """
    writing = {row["source_path"]: row["detail"] for row in rejects if row["reason"] == "still-being-written"}
    found = _cached_outputs(reuse, "ingest", stamps.filter(pl.col("source_path").is_in(list(writing))), ["doc_id", "source_path"])
    kept = set(found["ingest"]["source_path"].to_list())
    notes = [stages.repair(path, "ingest", "earlier-version-kept", f"the version an earlier run read is released: {writing[path]}")
             for path in sorted(kept)]
    return (found["ingest"], [row for row in rejects if row["reason"] != "still-being-written" or row["source_path"] not in kept],
            pl.concat([found["repairs"].filter(pl.col("source_path").is_in(list(kept))), stages.frame(notes, tables.REPAIRS)]))


def clean_step(job: ShardJob) -> Path:
    """Clean one ingested shard into articles, the furniture audit, the articles' dedup keys and what the quality suite
    checks of them (``measures``). Returns the shard's clean table.

    Documents whose key matches the cached run (``reuse``, same pipeline fingerprint) are copied
    from it, not cleaned again (a shard whose keys all match one cached shard is linked whole).
    """
    run, reuse = job.run, job.reuse
    keys = cache.document_keys(pl.read_parquet(run.shard("ingest", job.shard_no), glob=False, columns=["doc_id", *cache.KEY_COLUMNS]))
    retried = load_dependent(reuse)
    if not retried and _is_twin(reuse, "keys", keys):
        return run.link_step(RunFolder(reuse.run_dir), reuse.twin, "clean", job.shard_no)
    reused = _cached_outputs(reuse, "clean", keys.filter(~pl.col("source_path").is_in(retried)), ["doc_id", "cache_key"])
    ingested = run.read("ingest", job.shard_no).join(reused["hits"], on="doc_id", how="anti")
    articles, furniture, dedup, rejects, repairs = stages.clean(ingested)
    valid, failed = split_valid(articles, models.Article)
    audit_ok, audit_failed = split_valid(furniture, models.FurnitureLine)
    bad_audit_docs = audit_failed.select("doc_id", REASON, DETAIL).unique("doc_id", keep="first")
    failed_audit = valid.join(bad_audit_docs, on="doc_id", how="inner")
    valid = valid.join(bad_audit_docs, on="doc_id", how="anti")
    audit = audit_ok.filter(pl.col("doc_id").is_in(valid["doc_id"].implode()))
    return Made(
        {"furniture": pl.concat([audit, reused["furniture"]]).sort("doc_id", "line_no"),
         "dedup": pl.concat([dedup.join(valid.select("doc_id"), on="doc_id", how="semi"), reused["dedup"]]).sort("doc_id"),
         "keys": keys,
         "measures": pl.concat([stages.on_pattern_thread("measures", body_measures, valid), reused["measures"]]).sort("doc_id"),
         "clean": pl.concat([valid, reused["clean"]]).sort("doc_id")},
        _rejects("clean", rejects + reused["rejects"].to_dicts(), pl.concat([failed, failed_audit], how="diagonal_relaxed")),
        pl.concat([stages.frame(repairs, tables.REPAIRS), reused["repairs"]]),
    ).save(run, "clean", job.shard_no)


def load_dependent(reuse: cache.Reuse | None) -> list[str]:
    """The source paths of the cached clean rejects of ``reuse`` whose reason depends on the load (LOAD_DEPENDENT_REASONS)."""
    if reuse is None:
        return []
    cached = RunFolder(reuse.run_dir)
    return [path for n in reuse.shards for path in cached.read_note("rejects", "clean", n)
            .filter(pl.col("reason").is_in(LOAD_DEPENDENT_REASONS))["source_path"]]


def _rejects(stage: str, rejects: list[dict], failed: pl.DataFrame) -> pl.DataFrame:
    """A stage's rejects: ``rejects``, then the rows that failed validation, with the failed check as reason."""
    return stages.frame(rejects + [stages.reject(row["source_path"], stage, row[REASON], row[DETAIL])
                                   for row in failed.select("source_path", REASON, DETAIL).iter_rows(named=True)], tables.REJECTS)


def _is_twin(reuse: cache.Reuse | None, table: str, frame: pl.DataFrame) -> bool:
    """Whether the cached shard of ``reuse`` has ``table`` equal to ``frame`` row for row: its step's outputs can be linked."""
    if reuse is None or reuse.twin is None or not frame.height:
        return False
    cached = RunFolder(reuse.run_dir)
    return cached.shard(table, reuse.twin).is_file() and cached.read(table, reuse.twin).equals(frame)


def _cached_outputs(reuse: cache.Reuse | None, step: str, frame: pl.DataFrame, on: list[str]) -> dict[str, pl.DataFrame]:
    """From the cached shards of ``reuse``: the rows of ``frame`` equal on ``on`` to its first step table (``hits``), and their outputs of ``step``.

    Outputs are the step's other tables (by ``doc_id``) and its ``rejects`` and ``repairs`` (by ``source_path``).
    """
    match, *outputs = SHARD_TABLES[step]
    found = {"hits": frame.head(0)} | {kind: stages.frame([], schema) for kind, schema in NOTES.items()} | \
        {table: stages.frame([], SCHEMAS[table]) for table in outputs}
    if reuse is None or not frame.height:
        return found
    cached = RunFolder(reuse.run_dir)
    for n in reuse.shards:
        hits = frame.join(cached.read(match, n).select(on), on=on)
        if not hits.height:
            continue
        ids, paths = hits["doc_id"].implode(), hits["source_path"].implode()
        rows = {"hits": hits} | {table: cached.read(table, n).filter(pl.col("doc_id").is_in(ids)) for table in outputs} | \
            {kind: cached.read_note(kind, step, n).filter(pl.col("source_path").is_in(paths)) for kind in NOTES}
        found = {name: pl.concat([found[name], part]) for name, part in rows.items()}
    return found


def remember_shards(plan: RunPlan) -> RunFolder | None:
    """Once every shard is cleaned, make this run's shards the cache of later runs; returns the cached run when nothing changed since it.

    That is the cached run when this run's ingest and clean outputs equal its own, its release is
    still LATEST and the mirror, if any, holds that release. Then curating, checking and publishing
    again would give the same tables and no new release (``carry_forward`` takes that run's results
    instead).
    """
    previous = _unchanged_since(plan)
    cache.remember(plan.curated_root, plan.run.path, plan.fingerprint)
    return previous


def _unchanged_since(plan: RunPlan) -> RunFolder | None:
    previous = plan.cached_run
    entry = tables.read_record(previous.ledger) if previous else None
    outcome = ReleaseOutcome.from_record(entry.get("release")) if entry else None
    latest = reader.latest_version(plan.curated_root)
    if outcome is None or entry.get("balanced") is not True or not outcome.current or outcome.version != latest:
        return None
    if plan.mirror and not _mirror_holds(plan.mirror, reader.release_path(plan.curated_root, latest)):
        return None
    if len(previous.shards("stamps")) != len(plan.layout):
        return None
    same = all(_same_file(ours, theirs) for n in range(len(plan.layout)) for step in SHARD_TABLES
               for ours, theirs in zip(plan.run.step_files(step, n), previous.step_files(step, n), strict=True))
    return previous if same else None


def _mirror_holds(url: str, release_folder: Path) -> bool:
    """``storage.mirror_holds``; False, with a warning, when the mirror cannot be read: the run goes on and publishes
    locally, and its release step tries the mirror again."""
    try:
        return storage.mirror_holds(url, release_folder)
    except Exception as error:  # noqa: BLE001 - any file system's error: the mirror is only a copy
        log.warning("the mirror %s cannot be read (%s: %s): it is copied to after the release", url, type(error).__name__, error)
        return False


def _same_file(ours: Path, theirs: Path) -> bool:
    return ours.is_file() and theirs.is_file() and (os.path.samefile(ours, theirs) or filecmp.cmp(ours, theirs, shallow=False))


def carry_forward(plan: RunPlan, previous: RunFolder) -> ReleaseOutcome:
    """Take the duplicate marks, curate and quality rejects and quality results of ``previous``; returns the release outcome.

    Only for a run whose inputs equal that run's (``remember_shards``): no release is made. Raises
    ``publish.BaseReleaseDamaged`` when that release no longer matches its manifest, as a publish on top of it would.
    """
    entry = tables.read_record(previous.ledger)
    if entry is None:
        raise FileNotFoundError(f"no readable ledger.json in {previous.path}")
    version = entry["release"]["version"]
    if damaged := reader.verify(plan.curated_root, version):
        raise publish.BaseReleaseDamaged(f"nothing changed since release {version}, but it does not match its manifest: "
                                         f"{'; '.join(damaged[:3])}")
    for path in [previous.marks, *previous.notes("rejects", "curate"), *previous.notes("rejects", "quality"), previous.quality]:
        if path.is_file():
            plan.run.link_from(previous, path)
    return ReleaseOutcome(Result.NOTHING_CHANGED, version, same_inputs_as_run=previous.run_id)


def run_shard(job: ShardJob) -> dict[str, float]:
    """Every shard step on one shard, in order; returns the seconds of work of each stage (what a runner reports)."""
    seconds = {}
    for step in SHARD_STEPS:
        started = time.perf_counter()
        step.function(job)
        seconds[step.stage] = time.perf_counter() - started
    return seconds


def serve_corpus_steps(run_pid: int) -> None:
    """Start a process of the whole-corpus steps for the run ``run_pid``: it dies with the run and publishes
    nothing once the run is gone (``publish.serve_run``); then import what the steps import when first
    called (Great Expectations and matplotlib take seconds)."""
    publish.serve_run(run_pid)
    import matplotlib.pyplot  # noqa: F401

    from schemas import expectations  # noqa: F401


def curate_step(plan: RunPlan) -> Path:
    """Mark exact and near duplicates across all shards; writes and returns the run's marks.

    The cleaned shards are not rewritten: a run's articles are its cleaned articles with these
    marks (``RunFolder.articles``), which is what the release streams.
    """
    run = plan.run
    dedup = run.shards("dedup")
    signatures = tables.read_matrix(dedup, "minhash", tables.DEDUP_KEYS)
    keys = tables.read_parquet(dedup, tables.DEDUP_KEYS, [name for name in tables.DEDUP_KEYS.names if name != "minhash"])
    valid, failed = split_valid(stages.canonical_copies(keys, signatures).sort("doc_id"), models.DuplicateMark)
    run.write_notes("rejects", "curate", 0, _rejects("curate", [], failed.join(keys.select("doc_id", "source_path"), on="doc_id")))
    return run.write_marks(valid)


def quality_step(plan: RunPlan) -> dict:
    """Run the Great Expectations suites on each stage's whole table; write ``quality.json``.

    Bodies are not read here: the clean step measured each article (``schemas.measures``) in the
    shard processes, and the suites check those measures of the marked articles. Ingested texts are
    measured by Polars' streaming engine a batch at a time. The furniture suite checks each
    (category, rule) pair once, with its smallest line number: the same verdicts as over every
    removed line (none of its expectations allows a share of failures), in memory that does not grow
    with the corpus (about 180 removed lines per real page: 18 million rows at 100k pages).
    """
    from schemas.expectations import run_suites  # heavy import, only where suites run

    run = plan.run
    ingested = pl.scan_parquet(run.shards("ingest"), glob=False).select(
        "doc_id", "format", "bytes", text_chars=pl.col("text").str.len_chars()).collect(engine="streaming")
    measured = tables.read_parquet(run.shards("measures"), tables.MEASURES).join(
        tables.read_parquet(run.marks, tables.MARKS, ["doc_id"]), on="doc_id", how="semi", maintain_order="left")
    furniture = (pl.scan_parquet(run.shards("furniture"), glob=False).group_by("category", "rule_id").agg(pl.col("line_no").min())
                 .sort("category", "rule_id", nulls_last=True).collect(engine="streaming"))
    frames = {
        "ingested": ingested.to_pandas(),
        "articles": measured.to_pandas(),
        "furniture": furniture.to_pandas(),
    }
    report = run_suites(run.quality_files, frames)
    quarantine(run, report)
    run.write_record(run.quality, report)
    return report


def quarantine(run: RunFolder, report: dict) -> None:
    """Take the articles that failed a per-row critical expectation (``report["quarantined"]``) out of the run.

    They are rejected at stage ``quality`` with the expectation as reason and left out of the
    duplicate marks, so neither they nor their furniture are released; a duplicate of one of
    them points to the first (by ``doc_id``) of its remaining copies instead. When more than
    MAX_QUARANTINED_SHARE of the articles fail, and at least MIN_QUARANTINED_TO_HOLD, the batch as a whole has
    failed: nothing is taken out and the failure is added to ``report["critical_failed"]``, which holds the release.
    """
    marks = tables.read_parquet(run.marks, tables.MARKS)
    failed = pl.DataFrame(report["quarantined"], schema={"doc_id": pl.String, "check": pl.String, "reason": pl.String, "value": pl.String},
                          strict=False).filter(pl.col("doc_id").is_in(marks["doc_id"].implode()))
    failed = failed.sort("doc_id", "check").unique("doc_id", keep="first", maintain_order=True)
    report["quarantined_articles"] = failed.height
    if not failed.height:
        return
    if failed.height > MAX_QUARANTINED_SHARE * marks.height and failed.height >= MIN_QUARANTINED_TO_HOLD:
        report["critical_failed"].append(f"articles: {failed.height} of {marks.height} failed a per-row critical expectation "
                                         f"(more than {MAX_QUARANTINED_SHARE:.0%})")
        return
    sources = run.articles().frame(["doc_id", "source_path"]).join(failed, on="doc_id")
    run.write_notes("rejects", "quality", 0, [stages.reject(row["source_path"], "quality", row["reason"], f"{row['check']} failed on {row['value']}")
                                               for row in sources.iter_rows(named=True)])
    ids = failed["doc_id"].implode()
    kept = marks.filter(~pl.col("doc_id").is_in(ids))
    heirs = kept.filter(pl.col("duplicate_of").is_in(ids)).group_by("duplicate_of").agg(heir=pl.col("doc_id").min())
    kept = kept.join(heirs, on="duplicate_of", how="left").with_columns(
        duplicate_of=pl.when(pl.col("heir").is_null()).then("duplicate_of")
        .when(pl.col("heir") != pl.col("doc_id")).then("heir")).drop("heir")
    run.write_marks(kept.sort("doc_id"))


def release_step(plan: RunPlan, quality: dict) -> ReleaseOutcome:
    """Publish the run's articles and furniture unless a critical expectation failed; then mirror the release if asked."""
    run = plan.run
    if quality["critical_failed"]:
        detail = "; ".join(quality["critical_failed"])
        run.write_notes("rejects", "release", 0, [stages.reject(path, "release", "quality-gate", detail)
                                                   for path in run.articles().frame(["source_path"])["source_path"]])
        return ReleaseOutcome(Result.HELD, failed=tuple(quality["critical_failed"]))
    rejects = tables.read_parquet(run.notes("rejects"), tables.REJECTS, ["stage", "reason"])
    report = card.RunReport(seen=plan.seen, quality=quality, rejects=rejects)

    def published(manifest: dict) -> ReleaseOutcome:
        return ReleaseOutcome(Result.PUBLISHED, manifest["version"], manifest["counts"])

    # The run's ledger is written before LATEST names the release: no release is ever published without it.
    manifest = publish.publish(plan.curated_root, run.run_id, {"articles": run.articles(), "furniture": run.furniture()},
                               provenance(run), report, before_latest=lambda manifest: ledger(plan, published(manifest)))
    if manifest is None and CuratedFolder(plan.curated_root).latest_run_id() == run.run_id:
        manifest = reader.read_manifest(plan.curated_root)  # this step retried after its own publish (the mirror failed)
    outcome = published(manifest) if manifest else ReleaseOutcome(Result.NOTHING_CHANGED, reader.latest_version(plan.curated_root))
    # A mirror behind the latest release (its copy failed, or it was added since) catches up here.
    if plan.mirror and not storage.mirror_holds(plan.mirror, reader.release_path(plan.curated_root, outcome.version)):
        storage.mirror(reader.release_path(plan.curated_root, outcome.version), plan.curated_root / "CHANGELOG.md", plan.mirror)
        outcome = replace(outcome, mirrored_to=plan.mirror)
    return outcome


class Scope(Enum):
    """Where a step runs: once for the run, once per shard still to process, or once over the whole corpus."""

    RUN = auto()
    SHARD = auto()
    CORPUS = auto()


class When(Enum):
    """Whether a step runs always, or only when the run's inputs changed since the cached run's release, or only when they did not."""

    ALWAYS = auto()
    CHANGED = auto()
    UNCHANGED = auto()


@dataclass(frozen=True)
class Step:
    """One step: ``function`` takes the values named by ``inputs`` and returns the value named ``output``.

    A shard step takes ``shard`` (a ShardJob) and runs once for each shard not linked. ``stage`` is
    the name its time is reported under.
    """

    name: str
    function: Callable
    scope: Scope
    inputs: tuple[str, ...]
    output: str | None = None
    when: When = When.ALWAYS
    stage: str = ""

    def applies(self, values: dict) -> bool:
        """Whether the step runs, given the values so far (``previous``: the run that nothing changed since)."""
        return self.when is When.ALWAYS or (values.get("previous") is None) == (self.when is When.CHANGED)

    def arguments(self, values: dict) -> list:
        return [values[name] for name in self.inputs]


#: Every step of a run, in order. The run's arguments are ``raw``, ``curated``, ``shard_size``, ``mirror``
#: and ``timings`` (seconds per stage, from the runner, or None).
STEPS = (
    Step("plan", plan_run, Scope.RUN, ("raw", "curated", "shard_size", "mirror"), "plan"),
    Step("link", link_unchanged_shards, Scope.RUN, ("plan",), "linked"),
    Step("ingest", ingest_step, Scope.SHARD, ("shard",), stage="ingest"),
    Step("clean", clean_step, Scope.SHARD, ("shard",), stage="clean"),
    Step("remember", remember_shards, Scope.RUN, ("plan",), "previous"),
    Step("carry_forward", carry_forward, Scope.RUN, ("plan", "previous"), "outcome", When.UNCHANGED, stage="release"),
    Step("curate", curate_step, Scope.CORPUS, ("plan",), "marks", When.CHANGED, stage="curate"),
    Step("quality", quality_step, Scope.CORPUS, ("plan",), "quality", When.CHANGED, stage="quality"),
    Step("release", release_step, Scope.CORPUS, ("plan", "quality"), "outcome", When.CHANGED, stage="release"),
    Step("ledger", ledger, Scope.RUN, ("plan", "outcome", "timings"), "entry"),
)
SHARD_STEPS = tuple(step for step in STEPS if step.scope is Scope.SHARD)


def run(raw_root: Path | RemoteFolder, curated_root: Path, shard_size: int = SHARD_SIZE, mirror: str | None = None) -> dict:
    """Every step in order, in this process and without Prefect; returns the ledger entry.

    The Prefect flow (``flows.pipeline``) runs the same steps as tasks; this entry point serves
    small folders, debugging and the fault tests (no local API server to start).
    """
    with run_lock(curated_root):
        return walk({"raw": raw_root, "curated": curated_root, "shard_size": shard_size, "mirror": mirror, "timings": None})["entry"]


def walk(values: dict, call: Callable[[Step, list], object] | None = None) -> dict:
    """Run each step of STEPS that applies, in order, on ``values`` (the run's arguments); returns them with every step's output.

    ``call(step, arguments)`` runs one step, or one shard of a shard step (default: the step's function).
    """
    call = call or (lambda step, arguments: step.function(*arguments))
    for step in STEPS:
        if not step.applies(values):
            continue
        if step.scope is Scope.SHARD:
            for job in values["plan"].jobs(values["linked"]):
                call(step, [job])
        else:
            values[step.output] = call(step, step.arguments(values))
    return values
