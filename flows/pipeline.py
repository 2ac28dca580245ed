"""The pipeline as a Prefect flow: one task per stage per shard, paths between tasks."""
from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from commentary import pipeline
from commentary.settings import SHARD_SIZE


@task(retries=2, retry_delay_seconds=1)
def ingest(plan: pipeline.RunPlan, shard_no: int) -> Path:
    return pipeline.ingest_step(plan, shard_no)


@task
def clean(run_dir: Path, shard_no: int) -> Path:
    return pipeline.clean_step(run_dir, shard_no)


@task
def curate(run_dir: Path) -> list[Path]:
    return pipeline.curate_step(run_dir)


@task
def check_quality(run_dir: Path) -> dict:
    report = pipeline.quality_step(run_dir)
    create_table_artifact(
        key="quality", description="Great Expectations results per stage",
        table=[{"stage": stage, **outcome} for stage, result in report["stages"].items() for outcome in result["expectations"]],
    )
    return report


@task(retries=2, retry_delay_seconds=1)
def publish(plan: pipeline.RunPlan, quality: dict) -> dict:
    return pipeline.release_step(plan, quality)


@task
def account(plan: pipeline.RunPlan, outcome: dict) -> dict:
    rejects = pipeline.merge_rejects(plan.run_dir)
    entry = pipeline.ledger(plan, rejects, outcome)
    reasons = "\n".join(f"| {reason} | {count} |" for reason, count in entry["rejected_by_reason"].items()) or "| none | 0 |"
    create_markdown_artifact(
        key="ledger",
        markdown=(f"# Run {entry['run_id']}\n\nseen {entry['seen']} = released {entry['released']} + rejected "
                  f"{entry['rejected']} + duplicates {entry['duplicates']}\n\nRelease: {outcome}\n\n"
                  f"| reject reason | files |\n|---|---|\n{reasons}\n"),
    )
    return entry


@flow(name="commentary-pipeline", log_prints=True)
def run_pipeline(raw: str = "raw", curated: str = "curated", shard_size: int = SHARD_SIZE) -> dict:
    """Ingest, clean, curate, check and release every raw file under ``raw`` into ``curated``.

    The run holds the curated folder's lock throughout; a second run fails at once (RunLocked).
    """
    with pipeline.run_lock(Path(curated)) as recovered:
        for action in recovered:
            print(f"recovered: {action}")
        plan = pipeline.plan_run(Path(raw), Path(curated), shard_size)
        print(f"run {plan.run_dir.name}: {plan.seen} raw files in {len(plan.shards)} shards")
        shard_numbers = range(len(plan.shards))
        ingested = [ingest.submit(plan, n) for n in shard_numbers]
        cleaned = [clean.submit(plan.run_dir, n, wait_for=[i]) for n, i in zip(shard_numbers, ingested, strict=True)]
        curated_paths = curate.submit(plan.run_dir, wait_for=cleaned)
        quality = check_quality.submit(plan.run_dir, wait_for=[curated_paths])
        outcome = publish(plan, quality.result())
        entry = account(plan, outcome)
    print(f"seen {entry['seen']}: released {entry['released']}, rejected {entry['rejected']}, "
          f"duplicates {entry['duplicates']}, repaired {entry['repaired']}; release: {outcome}")
    return entry
