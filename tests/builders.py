"""Build release inputs for tests: article frames from bodies, or a release from a raw folder (no Prefect, no GX); settle raw
files for the file-age limit."""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
import time
from pathlib import Path

import polars as pl

from commentary import stages, steps, tables
from commentary.release import publish as publishing
from commentary.settings import SHARD_SIZE
from commentary.ingest import doc_id_for
from schemas import models

#: A quality report in which every expectation held (the suites themselves are tested with the flow).
PASSED = {"critical_failed": [], "stages": {}}


def article_frames(bodies: dict[str, str], duplicate_of: dict[str, str] | None = None, **fields) -> dict[str, pl.DataFrame]:
    """Articles (ids from their paths) with one furniture line each; ``duplicate_of`` maps path to path."""
    ids = {path: doc_id_for(path) for path in bodies}
    rows = [{name: None for name in tables.ARTICLES.names} | {
        "doc_id": ids[path], "source_path": path, "source_sha256": "0" * 64, "format": "text",
        "title": f"Title of {path}", "outlet": "Example Review", "language": "en",
        "authors": [], "tags": [], "summary": [], "body": body, "word_count": len(body.split()),
        "body_sha256": stages.body_fingerprint(body), "published_date": dt.date(2021, 1, 1),
        "duplicate_of": ids.get((duplicate_of or {}).get(path)), "field_sources": dict.fromkeys(models.SOURCED_FIELDS),
    } | fields for path, body in bodies.items()]
    furniture = [{"doc_id": r["doc_id"], "line_no": 1, "category": "nav", "rule_id": "nav.test", "text": "Home"} for r in rows]
    return {"articles": stages.frame(rows, tables.ARTICLES), "furniture": stages.frame(furniture, tables.FURNITURE)}


def write_shards(frames: dict[str, pl.DataFrame], folder: Path) -> dict[str, tables.TableFiles]:
    """Write each frame, sorted by its release key, as one shard file under ``folder``: the input of ``publish``."""
    shards = {}
    for name, frame in frames.items():
        spec = tables.RELEASE_TABLES[name]
        path = tables.write_parquet(tables.to_arrow(frame.sort(spec.key), spec.schema), folder / f"{name}.parquet", spec.schema)
        shards[name] = tables.TableFiles([path], spec.schema)
    return shards


def publish_frames(curated: Path, run_id: str, frames: dict[str, pl.DataFrame], provenance: dict, report=None) -> dict | None:
    """Publish ``frames`` through shard files written into the run's folder, as a run would."""
    return publishing.publish(curated, run_id, write_shards(frames, curated / "runs" / run_id), provenance, report)


def clean_run(raw, curated: Path, shard_size: int = SHARD_SIZE, mirror: str | None = None) -> steps.RunPlan:
    """Plan a run, ingest and clean every shard, and remember the run as the clean cache."""
    plan = steps.plan_run(raw, curated, shard_size, mirror)
    linked = set(steps.link_unchanged_shards(plan))
    for job in plan.jobs(linked):
        steps.ingest_step(job)
        steps.clean_step(job)
    steps.remember_shards(plan)
    return plan


def build_release(raw, curated: Path, mirror: str | None = None, shard_size: int = SHARD_SIZE) -> dict:
    """Run every step but the quality suites on ``raw`` and publish into ``curated``; returns the release outcome."""
    plan = clean_run(raw, curated, shard_size, mirror)
    steps.curate_step(plan)
    return steps.release_step(plan, PASSED).record()


def unused_port() -> int:
    """A port of 127.0.0.1 that nothing listens on (free when asked)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def replace_step(monkeypatch, name: str, function) -> None:
    """Make ``steps.run`` call ``function`` for the step ``name``."""
    monkeypatch.setattr(steps, "STEPS", tuple(dataclasses.replace(step, function=function) if step.name == name else step
                                              for step in steps.STEPS))


def settle(monkeypatch, *paths: Path) -> None:
    """Make the runs that follow read with a file-age limit of 30 s (``MIN_FILE_AGE_SECONDS``), ``paths`` modified a
    minute ago and their stamps settled: the stamps' clock set an hour ahead (undone by
    ``monkeypatch.setattr("commentary.cache.time.time_ns", time.time_ns)``)."""
    for path in paths:
        info = path.stat()
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns - 60 * 10**9))
    monkeypatch.setattr("commentary.ingest.MIN_FILE_AGE_SECONDS", 30)
    monkeypatch.setattr("commentary.cache.MIN_FILE_AGE_SECONDS", 30)
    start = time.time_ns()
    monkeypatch.setattr("commentary.cache.time.time_ns", lambda: start + 3600 * 10**9)
