"""CPU time per page of each stage: the steps of ``steps.run``, one after the other in this process.

    python -m tools.stagecpu RAW CURATED      prints {"pages": N, "cpu_ms_per_page": {stage: ms}, "peak_rss_mib": {stage: MiB}} as JSON

Run it with ``POLARS_MAX_THREADS=1``: the process's CPU time is then every thread's work, and the
figures do not depend on what else runs on the machine (only on how much it slows each core). It keeps
freed memory as a run's shard processes do: glibc's options are set here, Polars' allocator reads
``SHARD_ALLOCATOR_ENVIRONMENT`` from the environment (``tools.bench`` passes it).
Imports (Great Expectations, matplotlib) are done before the clock starts. ``peak_rss_mib`` is the
process's peak resident memory at the end of each stage: where it grows, that stage set a new peak.
"""
from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from commentary.lifetime import set_malloc_options
from commentary.locking import run_lock
from commentary.settings import SHARD_MALLOC_OPTIONS, SHARD_SIZE, apply_environment_defaults
from commentary.steps import walk

#: The stage each step's time counts to.
STAGE_OF = {"plan": "plan", "link": "plan", "ingest": "ingest", "clean": "clean", "remember": "clean",
            "carry_forward": "release", "curate": "curate", "quality": "quality", "release": "release", "ledger": "ledger"}


def stage_cpu(raw: Path, curated: Path) -> dict:
    """Run every step on ``raw`` into ``curated``; CPU milliseconds per raw page of each stage."""
    import matplotlib.pyplot  # noqa: F401 - the heavy imports of the corpus steps, out of their stages' time
    from schemas import expectations  # noqa: F401
    spent = dict.fromkeys(("plan", "ingest", "clean", "curate", "quality", "release", "ledger"), 0.0)
    peak = {}

    def timed(step, arguments):
        started = time.process_time()
        result = step.function(*arguments)
        spent[STAGE_OF[step.name]] += time.process_time() - started
        peak[STAGE_OF[step.name]] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        return result

    with run_lock(curated):
        plan = walk({"raw": raw, "curated": curated, "shard_size": SHARD_SIZE, "mirror": None, "timings": None}, timed)["plan"]
    return {"pages": plan.seen, "cpu_ms_per_page": {stage: round(1000 * seconds / max(1, plan.seen), 3) for stage, seconds in spent.items()},
            "peak_rss_mib": peak}


if __name__ == "__main__":
    apply_environment_defaults()
    set_malloc_options(SHARD_MALLOC_OPTIONS)
    print(json.dumps(stage_cpu(Path(sys.argv[1]), Path(sys.argv[2]))))
