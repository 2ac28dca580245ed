"""Serve the pipeline as a scheduled Prefect deployment.

    python -m flows.serve [--raw DIR] [--curated DIR] [--cron "0 3 * * *"]

Starts a local Prefect server on 127.0.0.1 unless ``PREFECT_API_URL`` names one already, then
serves the deployment ``commentary-pipeline/scheduled`` until interrupted. Runs never overlap:
a run due while another is going waits for it (deployment concurrency limit 1, enqueued).
"""
from __future__ import annotations

import argparse
import os
from contextlib import ExitStack

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.pipeline import run_pipeline
from commentary.server import local_server

DEPLOYMENT = "scheduled"
#: Daily at 03:00 (server time zone: UTC).
DEFAULT_CRON = "0 3 * * *"
ONE_RUN_AT_A_TIME = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)


def deployment(raw: str, curated: str, cron: str = DEFAULT_CRON):
    """The scheduled deployment of ``run_pipeline`` over ``raw`` and ``curated``."""
    return run_pipeline.to_deployment(
        name=DEPLOYMENT, cron=cron, parameters={"raw": raw, "curated": curated},
        concurrency_limit=ONE_RUN_AT_A_TIME, description="Runs the pipeline on a schedule; one run at a time.",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--raw", default="raw", help="raw landing folder (default: raw)")
    parser.add_argument("--curated", default="curated", help="curated output folder (default: curated)")
    parser.add_argument("--cron", default=DEFAULT_CRON, help=f"cron schedule (default: {DEFAULT_CRON!r}, daily)")
    parser.add_argument("--port", type=int, default=4200, help="port of the local server, if one is started (default: 4200)")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        if not PREFECT_API_URL.value():
            url = stack.enter_context(local_server(args.port))
            os.environ["PREFECT_API_URL"] = url  # flow runs are subprocesses: they read the environment
            stack.enter_context(temporary_settings(updates={PREFECT_API_URL: url}))
            print(f"Prefect server and UI: {url.removesuffix('/api')}", flush=True)
        serve(deployment(os.path.abspath(args.raw), os.path.abspath(args.curated), args.cron))


if __name__ == "__main__":
    main()
