"""CPU time per page of each stage: the steps of ``pipeline.run``, one after the other in this process.

    python -m tools.stagecpu RAW CURATED      prints {"pages": N, "cpu_ms_per_page": {stage: ms}, "peak_rss_mib": {stage: MiB}} as JSON

Run it with ``POLARS_MAX_THREADS=1``: the process's CPU time is then every thread's work, and the
figures do not depend on what else runs on the machine (only on how much it slows each core).
Imports (Great Expectations, matplotlib) are done before the clock starts. ``peak_rss_mib`` is the
process's peak resident memory at the end of each stage: where it grows, that stage set a new peak.
"""
from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from commentary import pipeline
from commentary.settings import apply_environment_defaults


def stage_cpu(raw: Path, curated: Path) -> dict:
    """Run every step on ``raw`` into ``curated``; CPU milliseconds per raw page of each stage."""
    import matplotlib.pyplot  # noqa: F401 - the heavy imports of the corpus steps, out of their stages' time
    from schemas import expectations  # noqa: F401
    spent = dict.fromkeys(("plan", "ingest", "clean", "curate", "quality", "release", "ledger"), 0.0)
    peak = {}

    def timed(stage, step, *args):
        started = time.process_time()
        result = step(*args)
        spent[stage] += time.process_time() - started
        peak[stage] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        return result

    with pipeline.run_lock(curated):
        plan = timed("plan", pipeline.plan_run, raw, curated)
        linked = set(timed("plan", pipeline.link_unchanged_shards, plan))
        for shard_no, shard in enumerate(plan.layout):
            if shard_no not in linked:
                timed("ingest", pipeline.ingest_step, plan.raw_root, plan.run_dir, shard_no, shard.files, shard.reuse)
                timed("clean", pipeline.clean_step, plan.run_dir, shard_no, shard.reuse)
        timed("clean", pipeline.remember_clean_shards, plan.run_dir, plan.fingerprint)
        timed("curate", pipeline.curate_step, plan.run_dir)
        quality = timed("quality", pipeline.quality_step, plan.run_dir)
        outcome = timed("release", pipeline.release_step, plan, quality)
        timed("ledger", lambda: pipeline.ledger(plan, pipeline.merge_rejects(plan.run_dir), outcome))
    return {"pages": plan.seen, "cpu_ms_per_page": {stage: round(1000 * seconds / max(1, plan.seen), 3) for stage, seconds in spent.items()},
            "peak_rss_mib": peak}


if __name__ == "__main__":
    apply_environment_defaults()
    print(json.dumps(stage_cpu(Path(sys.argv[1]), Path(sys.argv[2]))))
