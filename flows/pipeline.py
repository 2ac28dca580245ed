"""The pipeline as a Prefect flow: one task per shard for the shard steps, one per whole-run step, paths between tasks.

The flow runs its shard tasks on threads by default, or on a Dask cluster (``with_runner``). On
threads, each task hands its shard to one of WORKER_PROCESSES new processes (``shard_processes``),
so that the shard stages use every core instead of sharing the flow's GIL. The steps over the whole
corpus (curate, quality, release) run in one more new process (``corpus_process``), so that their
memory comes and goes with them. The run plan goes to tasks ``quote``d: Prefect would otherwise walk
its raw file entries (about a second per task at 100k files) looking for futures.
"""
from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

from prefect import flow, get_client, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.futures import as_completed
from prefect.states import Failed, State
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from commentary import lifetime
from commentary.ledger import ReleaseOutcome
from commentary.locking import run_lock
from commentary.progress import Progress, release_line, summary
from commentary.settings import (LOCAL_THREADS, SHARD_ALLOCATOR_ENVIRONMENT, SHARD_MALLOC_OPTIONS, SHARD_SIZE, WORKER_POLARS_THREADS,
                                 WORKER_PROCESSES)
from commentary.steps import SHARD_STEPS, STEPS, RunPlan, Scope, ShardJob, Step, run_shard, serve_corpus_steps
from commentary.storage import RemoteFolder, raw_folder

#: Tasks that read or write files retry twice; our own cache replaces Prefect's input hashing.
IO_TASK = {"retries": 2, "retry_delay_seconds": [1, 10], "cache_policy": NO_CACHE}
#: The steps whose tasks retry (IO_TASK); the suites would only fail again. The shard task retries too: it reads the
#: raw files (a retry after a failed cleaning reads and cleans the shard again).
RETRIED = {"link", "remember", "carry_forward", "release"}


def quality_artifact(report: dict, _arguments: list) -> None:
    create_table_artifact(
        key="quality", description="Great Expectations results per stage",
        table=[{"stage": stage, **outcome} for stage, result in report["stages"].items() for outcome in result["expectations"]],
    )


def ledger_artifact(entry: dict, arguments: list) -> None:
    create_markdown_artifact(key="ledger", markdown=ledger_markdown(entry, arguments[0].curated_root),
                             description=f"What run {entry['run_id']} did with each raw file")


#: What a step's task shows in the Prefect UI besides its state, given its result and arguments.
ARTIFACTS = {"quality": quality_artifact, "ledger": ledger_artifact}


@task(name="shard", **IO_TASK)
def shard_task(job: ShardJob, shard_worker: ProcessPoolExecutor | None = None) -> dict[str, float]:
    """Every shard step on one shard (``steps.run_shard``), in the shard process it is given (else in the task's own
    thread or Dask worker): one task run per shard, not one per step. Returns the seconds of each stage."""
    return shard_worker.submit(run_shard, job).result() if shard_worker else run_shard(job)


def step_task(step: Step):
    """The Prefect task of a whole-run step; a corpus step runs in the corpus worker it is given."""
    options = {"name": step.name, **(IO_TASK if step.name in RETRIED else {"cache_policy": NO_CACHE})}

    def once(arguments: list, corpus_worker: ProcessPoolExecutor | None = None):
        result = corpus_worker.submit(step.function, *arguments).result() if step.scope is Scope.CORPUS else step.function(*arguments)
        if step.name in ARTIFACTS:
            ARTIFACTS[step.name](result, arguments)
        return result
    return task(once, **options)


#: The plan is made in the flow itself (its run id names the flow run); the shard steps run in ``shard_task``; every
#: other step is a task of its own.
TASKS = {step.name: step_task(step) for step in STEPS if step.name != "plan" and step.scope is not Scope.SHARD}


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
def run_pipeline(raw: str = "raw", curated: str = "curated", shard_size: int = SHARD_SIZE, mirror: str | None = None) -> dict | State:
    """Ingest, clean, curate, check and release every raw file under ``raw`` into ``curated``: the steps of ``STEPS`` in order.
    Returns the run's ledger entry; a Failed state holding it when the quality gate held the release (``ledger_entry``).

    ``raw`` is a local folder or an fsspec URL; ``mirror``, an fsspec URL each published release is
    copied to. The run holds the curated folder's lock throughout; a second run fails at once (RunLocked).
    """
    connect_scheduler()
    with run_lock(Path(curated)) as removed, ExitStack() as stack, ExitStack() as shard_stack:
        values = {"raw": raw_folder(raw), "curated": Path(curated), "shard_size": shard_size, "mirror": mirror}
        corpus_worker, shard_worker, running = None, None, {}
        on_threads = isinstance(getattr(FlowRunContext.get(), "task_runner", None), ThreadPoolTaskRunner)
        in_processes = on_threads and not (isinstance(values["raw"], RemoteFolder) and values["raw"].process_local)
        for number, step in enumerate(STEPS):
            if not step.applies(values):
                continue
            if step.scope is Scope.SHARD:
                if step is not SHARD_STEPS[0]:
                    continue  # the shard task ran it with the first
                jobs = values["plan"].jobs(values["linked"])
                if len(jobs) > 1 and in_processes and shard_worker is None:  # one shard gains nothing from them
                    shard_worker = shard_stack.enter_context(shard_processes())
                for job in jobs:
                    # Quoted, Prefect does not walk the job's file list; a Dask worker would get the quote itself, not its value.
                    future = shard_task.submit(*((quote(job), quote(shard_worker)) if on_threads else (job,)))
                    running[future.task_run_id] = (future, len(job.files))
                continue
            for future in as_completed([future for future, _ in running.values()]):
                _, pages = running.pop(future.task_run_id)
                for stage, seconds in future.result().items():
                    progress.shard_done(stage, seconds, pages)
            shard_stack.close()  # the shard processes exit: their memory is not held through the whole-corpus steps
            if corpus_worker and not any(later.scope is Scope.CORPUS and later.applies(values) for later in STEPS[number:]):
                stack.close()  # the whole-corpus process exits (about a second) while the rest runs
                corpus_worker = None
            if "timings" in step.inputs:
                values["timings"] = progress.timings()
            if step.name == "plan":
                plan = values["plan"] = step.function(*step.arguments(values))
                progress = start_progress(plan, removed)
                # The process of the whole-corpus steps starts as soon as a shard is known to need cleaning (the run
                # will then most likely curate and publish), so that its imports overlap the shard stages.
                if not all(plan.may_be_linked(n) for n in range(len(plan.layout))):
                    corpus_worker = stack.enter_context(corpus_process())
                continue
            if step.scope is Scope.CORPUS and corpus_worker is None:
                corpus_worker = stack.enter_context(corpus_process())
            arguments = quote(step.arguments(values)), quote(corpus_worker if step.scope is Scope.CORPUS else None)
            values[step.output] = progress.timed(step.stage, TASKS[step.name], *arguments) if step.stage else TASKS[step.name](*arguments)
            if step.name == "link":
                if values["linked"]:
                    progress.shards_linked(len(values["linked"]), sum(len(plan.layout[n].files) for n in values["linked"]))
                if plan.jobs(values["linked"]) and corpus_worker is None:
                    corpus_worker = stack.enter_context(corpus_process())
            if step.name == "remember" and values["previous"]:
                progress.note(f"inputs and code as in run {values['previous'].run_id}, whose release is still the latest: "
                              "nothing to curate or publish")
    entry = values["entry"]
    get_run_logger().info(summary(entry, Path(curated)))
    outcome = ReleaseOutcome.from_record(entry["release"])
    if not outcome.current:  # the quality gate held the release: the flow run ends Failed, as `commentary run` exits 1
        return Failed(message=release_line(outcome), data=entry)
    return entry


def ledger_entry(state: State) -> dict:
    """The ledger entry of a finished flow run of ``run_pipeline`` (called with ``return_state=True``), also when it
    ended Failed because its release was held; raises the error of a run that failed otherwise."""
    entry = state.result(raise_on_failure=False)
    if isinstance(entry, BaseException):
        raise entry
    return entry


def connect_scheduler() -> None:
    """Connect the flow's Dask task runner now to the scheduler at its address (it would connect at the first shard
    task): a scheduler that cannot be reached fails the run before the run takes its lock and creates its folder. A
    LocalCluster still starts at the first shard task: a run with nothing new needs none."""
    runner = getattr(FlowRunContext.get(), "task_runner", None)
    if getattr(runner, "address", None):
        runner.client  # noqa: B018 - the property connects


def start_progress(plan: RunPlan, removed: list[str]) -> Progress:
    """Name the flow run after the pipeline's run and start reporting its progress to the run's log."""
    _name_flow_run(plan.run.run_id)
    progress = Progress(tuple(step.stage for step in SHARD_STEPS), len(plan.shards), plan.seen, log=get_run_logger().info)
    if removed:
        progress.note(f"removed what an interrupted run left: {', '.join(removed)}")
    progress.note(f"run {plan.run.run_id}: {plan.seen} raw files in {len(plan.shards)} shards")
    return progress


@contextmanager
def shard_processes() -> Iterator[ProcessPoolExecutor]:
    """WORKER_PROCESSES new processes for the shard steps, each with its share of Polars threads and allocators that
    keep freed memory for the next shard, started at once from this thread; they die with this process. On exit they
    are told to stop and left to exit on their own."""
    environment = {"POLARS_MAX_THREADS": str(WORKER_POLARS_THREADS), **SHARD_ALLOCATOR_ENVIRONMENT}
    shard_worker = ProcessPoolExecutor(max_workers=WORKER_PROCESSES, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=lifetime.serve, initargs=(os.getpid(), environment, SHARD_MALLOC_OPTIONS))
    try:
        for _ in range(WORKER_PROCESSES):
            shard_worker.submit(int)  # each submit while none is idle starts one more process
        yield shard_worker
    finally:
        shard_worker.shutdown(wait=False, cancel_futures=True)


@contextmanager
def corpus_process() -> Iterator[ProcessPoolExecutor]:
    """One new process for the whole-corpus steps, started at once and importing what they need; it dies
    with this process (``steps.serve_corpus_steps``). On exit it is told to stop and left to finish
    exiting on its own."""
    corpus_worker = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=serve_corpus_steps, initargs=(os.getpid(),))
    try:
        corpus_worker.submit(int)  # the process starts with its first job
        yield corpus_worker
    finally:
        corpus_worker.shutdown(wait=False, cancel_futures=True)


def with_runner(runner: str = "local", scheduler: str | None = None):
    """``run_pipeline`` on threads (``local``) or on Dask: a new LocalCluster, or the scheduler at ``scheduler``."""
    if runner == "local":
        return run_pipeline
    if runner != "dask":
        raise ValueError(f"unknown runner {runner!r}: use local or dask")
    from prefect_dask import DaskTaskRunner

    dask = DaskTaskRunner(address=scheduler) if scheduler else DaskTaskRunner(cluster_kwargs={
        "n_workers": WORKER_PROCESSES, "threads_per_worker": 1, "dashboard_address": "127.0.0.1:0",
        "env": {"POLARS_MAX_THREADS": str(WORKER_POLARS_THREADS), **SHARD_ALLOCATOR_ENVIRONMENT}})
    return run_pipeline.with_options(task_runner=dask)
