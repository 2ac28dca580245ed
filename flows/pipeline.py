"""The pipeline as a Prefect flow: one task per stage per shard, paths between tasks.

The flow runs its shard tasks on threads by default, or on a Dask cluster (``with_runner``). The
steps over the whole corpus (curate, quality, release) run in one new process (``corpus_process``),
so that their memory comes and goes with them instead of stacking on what the shard stages left in
the flow's process. The run plan goes to tasks ``quote``d: Prefect would otherwise walk its raw file
entries (about a second per task at 100k files) looking for futures.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

from prefect import flow, get_client, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from commentary import pipeline
from commentary.cache import Reuse
from commentary.ingest import RawFile
from commentary.storage import RemoteFolder, raw_folder
from commentary.progress import Progress, summary
from commentary.settings import DASK_WORKER_POLARS_THREADS, DASK_WORKERS, LOCAL_THREADS, SHARD_SIZE

#: Tasks that read or write files retry twice; our own cache replaces Prefect's input hashing.
IO_TASK = {"retries": 2, "retry_delay_seconds": [1, 10], "cache_policy": NO_CACHE}
SHARD_STAGES = ("ingest", "clean")


@task(**IO_TASK)
def ingest(raw_root: Path | RemoteFolder, run_dir: Path, shard_no: int, files: list[RawFile], reuse: Reuse | None) -> float:
    started = time.perf_counter()
    pipeline.ingest_step(raw_root, run_dir, shard_no, files, reuse)
    return time.perf_counter() - started


@task(cache_policy=NO_CACHE)
def clean(run_dir: Path, shard_no: int, reuse: Reuse | None) -> float:
    started = time.perf_counter()
    pipeline.clean_step(run_dir, shard_no, reuse)
    return time.perf_counter() - started


@task(**IO_TASK)
def link_unchanged_shards(plan: pipeline.RunPlan) -> list[int]:
    return pipeline.link_unchanged_shards(plan)


@task(**IO_TASK)
def remember_clean_shards(run_dir: Path, fingerprint: str) -> Path:
    return pipeline.remember_clean_shards(run_dir, fingerprint)


@task(**IO_TASK)
def carry_forward(run_dir: Path, previous_run: Path) -> dict:
    return pipeline.carry_forward(run_dir, previous_run)


@task(cache_policy=NO_CACHE)
def curate(run_dir: Path, apart: ProcessPoolExecutor) -> Path:
    return apart.submit(pipeline.curate_step, run_dir).result()


@task(cache_policy=NO_CACHE)
def check_quality(run_dir: Path, apart: ProcessPoolExecutor) -> dict:
    report = apart.submit(pipeline.quality_step, run_dir).result()
    create_table_artifact(
        key="quality", description="Great Expectations results per stage",
        table=[{"stage": stage, **outcome} for stage, result in report["stages"].items() for outcome in result["expectations"]],
    )
    return report


@task(**IO_TASK)
def publish(plan: pipeline.RunPlan, quality: dict, apart: ProcessPoolExecutor) -> dict:
    return apart.submit(pipeline.release_step, plan, quality).result()


@task(cache_policy=NO_CACHE)
def account(plan: pipeline.RunPlan, outcome: dict, timings: dict) -> dict:
    rejects = pipeline.merge_rejects(plan.run_dir)
    entry = pipeline.ledger(plan, rejects, outcome, timings)
    create_markdown_artifact(key="ledger", markdown=ledger_markdown(entry, plan.curated_root),
                             description=f"What run {entry['run_id']} did with each raw file")
    return entry


def ledger_markdown(entry: dict, curated: Path) -> str:
    """A run's ledger for the Prefect UI: the summary, then counts and reasons as Markdown tables."""
    counts = [("seen", entry["seen"]), ("released", entry["released"]), ("duplicates", entry["duplicates"]),
              ("rejected", entry["rejected"]), ("repaired", entry["repaired"])]
    reasons = [(f"rejected: {reason}", count) for reason, count in entry["rejected_by_reason"].items()] + \
        [(f"repaired: {reason}", count) for reason, count in entry["repaired_by_reason"].items()]
    release = [(name, ", ".join(value) if isinstance(value, list) else value) for name, value in entry["release"].items()
               if not isinstance(value, dict)]
    table = "\n".join(f"| {name} | {value} |" for name, value in counts + reasons)
    outcome = "\n".join(f"| {name} | {value} |" for name, value in release)
    return (f"# Run {entry['run_id']}\n\n```\n{summary(entry, curated)}\n```\n\n| files | count |\n|---|---:|\n{table}\n\n"
            f"| release | |\n|---|---|\n{outcome}\n")


def _name_flow_run(run_id: str) -> None:
    """Name the current flow run after the pipeline's run, so that the UI and ``<curated>/runs/`` match."""
    context = FlowRunContext.get()
    if context and context.flow_run:
        with get_client(sync_client=True) as client:
            client.update_flow_run(context.flow_run.id, name=run_id)


@flow(name="commentary-pipeline", task_runner=ThreadPoolTaskRunner(max_workers=LOCAL_THREADS))
def run_pipeline(raw: str = "raw", curated: str = "curated", shard_size: int = SHARD_SIZE, mirror: str | None = None) -> dict:
    """Ingest, clean, curate, check and release every raw file under ``raw`` into ``curated``.

    ``raw`` is a local folder or an fsspec URL; ``mirror``, an fsspec URL each published release is
    copied to. The run holds the curated folder's lock throughout; a second run fails at once (RunLocked).
    """
    with pipeline.run_lock(Path(curated)) as removed, ExitStack() as stack:
        plan = pipeline.plan_run(raw_folder(raw), Path(curated), shard_size, mirror)
        _name_flow_run(plan.run_dir.name)
        logger = get_run_logger()
        progress = Progress(SHARD_STAGES, len(plan.shards), plan.seen, log=logger.info)
        if removed:
            progress.note(f"removed what an interrupted run left: {', '.join(removed)}")
        progress.note(f"run {plan.run_dir.name}: {plan.seen} raw files in {len(plan.shards)} shards")
        # The process of the whole-corpus steps starts as soon as a shard is known to need cleaning (the run
        # will then most likely curate and publish), so that its imports overlap the shard stages. A shard
        # without a twin in the cached run is never linked.
        apart = None
        if any(shard.reuse is None or shard.reuse.twin is None for shard in plan.layout):
            apart = stack.enter_context(corpus_process())
        linked = set(link_unchanged_shards(quote(plan)))
        if linked:
            progress.shards_linked(len(linked), sum(len(plan.layout[n].files) for n in linked))
        todo = [(n, shard) for n, shard in enumerate(plan.layout) if n not in linked]
        if todo and apart is None:
            apart = stack.enter_context(corpus_process())
        ingested = [ingest.submit(plan.raw_root, plan.run_dir, n, shard.files, shard.reuse) for n, shard in todo]
        cleaned = [clean.submit(plan.run_dir, n, shard.reuse, wait_for=[i]) for (n, shard), i in zip(todo, ingested, strict=True)]
        stage_of = {f.task_run_id: ("ingest", len(shard.files)) for f, (_, shard) in zip(ingested, todo, strict=True)} | \
            {f.task_run_id: ("clean", len(shard.files)) for f, (_, shard) in zip(cleaned, todo, strict=True)}
        for future in as_completed(ingested + cleaned):
            stage, pages = stage_of[future.task_run_id]
            progress.shard_done(stage, future.result(), pages)
        previous = pipeline.unchanged_since(plan)
        remember_clean_shards(plan.run_dir, plan.fingerprint)
        if previous:
            progress.note(f"inputs and code as in run {previous.name}, whose release is still the latest: nothing to curate or publish")
            outcome = progress.timed("release", carry_forward, plan.run_dir, previous)
        else:
            corpus = quote(apart or stack.enter_context(corpus_process()))
            progress.timed("curate", curate, plan.run_dir, corpus)
            quality = progress.timed("quality", check_quality, plan.run_dir, corpus)
            outcome = progress.timed("release", publish, quote(plan), quality, corpus)
        stack.close()  # the whole-corpus process exits (about a second) while the ledger is written
        entry = account(quote(plan), outcome, progress.timings())
    logger.info(summary(entry, Path(curated)))
    return entry


@contextmanager
def corpus_process() -> Iterator[ProcessPoolExecutor]:
    """One new process for the whole-corpus steps, started at once and importing what they need; it dies
    with this process (``pipeline.serve_corpus_steps``). On exit it is told to stop and left to finish
    exiting on its own."""
    apart = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                initializer=pipeline.serve_corpus_steps, initargs=(os.getpid(),))
    try:
        apart.submit(int)  # the process starts with its first job
        yield apart
    finally:
        apart.shutdown(wait=False, cancel_futures=True)


def with_runner(runner: str = "local", scheduler: str | None = None):
    """``run_pipeline`` on threads (``local``) or on Dask: a new LocalCluster, or the scheduler at ``scheduler``."""
    if runner == "local":
        return run_pipeline
    if runner != "dask":
        raise ValueError(f"unknown runner {runner!r}: use local or dask")
    from prefect_dask import DaskTaskRunner

    dask = DaskTaskRunner(address=scheduler) if scheduler else DaskTaskRunner(cluster_kwargs={
        "n_workers": DASK_WORKERS, "threads_per_worker": 1, "dashboard_address": "127.0.0.1:0",
        "env": {"POLARS_MAX_THREADS": str(DASK_WORKER_POLARS_THREADS)}})
    return run_pipeline.with_options(task_runner=dask)
