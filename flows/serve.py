"""Serve the pipeline as a scheduled Prefect deployment.

    python -m flows.serve [--raw DIR] [--curated DIR] [--cron "0 3 * * *"] [--port 4200]

Starts a local Prefect server on 127.0.0.1:PORT unless ``PREFECT_API_URL`` names one already, then
serves the deployment ``commentary-pipeline/scheduled`` until interrupted (Ctrl-C or SIGTERM: exit status 130 or 143;
a server started here stops with it, and dies with it if it is killed). When the server started here exits, serve
stops too, with status 1 and a line saying so. Runs never overlap: a run due while another is going waits for
it (deployment concurrency limit 1, enqueued); a run that a serve which stopped left going is marked Crashed when
serve starts again, so that it frees its slot. A port already taken, by another program or by a
Prefect server this command did not start, stops it at once with a message saying what to do.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from contextlib import ExitStack

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (DeploymentFilter, DeploymentFilterName, FlowFilter, FlowFilterName, FlowRunFilter,
                                            FlowRunFilterState, FlowRunFilterStateType)
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy, StateType
from prefect.client.schemas.schedules import CronSchedule
from prefect.runner import Runner
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Crashed

from commentary.cli import EXIT_USAGE, UserError, in_utf8_mode, refuse_bad_environment, refuse_empty
from commentary.server import api_url, server_process
from flows.pipeline import run_pipeline

DEPLOYMENT = "scheduled"
#: Daily at 03:00 (server time zone: UTC).
DEFAULT_CRON = "0 3 * * *"
DEFAULT_PORT = 4200
ONE_RUN_AT_A_TIME = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)
#: Seconds between two looks at the server started here; the longest wait for the runner to stop.
SERVER_POLL_SECONDS = 0.5
RUNNER_STOP_SECONDS = 20


def deployment(raw: str, curated: str, cron: str = DEFAULT_CRON):
    """The scheduled deployment of ``run_pipeline`` over ``raw`` and ``curated``."""
    return run_pipeline.to_deployment(
        name=DEPLOYMENT, cron=cron, parameters={"raw": raw, "curated": curated},
        concurrency_limit=ONE_RUN_AT_A_TIME, description="Runs the pipeline on a schedule; one run at a time.",
    )


def crash_orphaned_runs() -> int:
    """Mark Crashed the runs of the deployment that a serve process left Pending or Running when it stopped (killed, or
    its server gone); returns how many. Each holds the deployment's one concurrency slot, and the runs due after it
    would wait for it for ever."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[run_pipeline.name])),
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[DEPLOYMENT])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
                any_=[StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]))))
        for run in runs:
            client.set_flow_run_state(run.id, Crashed(message="its serve process stopped before the run ended"), force=True)
    return len(runs)


def port_taken(port: int) -> str | None:
    """Why a local server cannot be started on ``127.0.0.1:port`` (something listens there), or None when it can."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            return None
        except OSError:
            pass
    url = f"http://127.0.0.1:{port}/api"
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            prefect = response.status == 200
    except OSError:
        prefect = False
    if prefect:
        return (f"a Prefect server that this command did not start is already running on port {port}: serve on it with "
                f"PREFECT_API_URL={url} make serve, or start a server of your own on another port with make serve PORT={port + 1}")
    return f"port {port} is taken by another program: choose a free one with make serve PORT={port + 1} (python -m flows.serve --port ...)"


def how_to_use(api_url: str, cron: str) -> str:
    """What to do from another shell: trigger the deployment, watch its runs."""
    name = f"{run_pipeline.name}/{DEPLOYMENT}"
    return "\n".join([
        f"Serving {name} (cron {cron!r}, UTC). Prefect UI: {api_url.removesuffix('/api')}",
        "From another shell, in this folder:",
        f"  export PREFECT_API_URL={api_url}",
        f"  .venv/bin/prefect deployment run {name} --watch   # run it now and follow it",
        "  .venv/bin/prefect flow-run ls                                        # recent runs (named after their run_id)",
        "Stop with Ctrl-C or SIGTERM" + (" (the server started here stops too)." if "127.0.0.1" in api_url else "."),
    ])


def _stop(signum, frame) -> None:
    raise SystemExit(128 + signum)


async def serve_until_stopped(deployment, server: subprocess.Popen | None) -> int:
    """Serve ``deployment`` until SIGTERM or SIGINT (returns 128 + the signal's number) or until ``server``, the Prefect
    server started here, exits (returns 1 and says so on stderr); the runner is stopped either way."""
    loop = asyncio.get_running_loop()
    stopped = loop.create_future()

    def on_signal(signum: int, frame=None) -> None:
        loop.call_soon_threadsafe(lambda: stopped.done() or stopped.set_result(128 + signum))

    handlers = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}
    runner = Runner(pause_on_shutdown=True, limit=None)  # as prefect.serve
    runner.handle_sigterm = on_signal  # the runner makes it SIGTERM's handler as it starts (its own exits 0)

    async def run() -> None:
        await runner.add_deployment(deployment)
        await runner.start()

    serving = asyncio.create_task(run())
    try:
        while not stopped.done():
            if server and server.poll() is not None:
                print(f"make serve: the Prefect server started here {_ended(server.returncode)}: serve stopped too; "
                      "start make serve again", file=sys.stderr, flush=True)
                stopped.set_result(1)
                runner.pause_on_shutdown = False  # nothing to pause on a server that is gone
            elif serving.done():  # the runner stopped on its own: its error
                serving.result()
                return 0
            else:
                await asyncio.wait([serving, stopped], timeout=SERVER_POLL_SECONDS)
        serving.cancel()  # the runner stops its flow runs and, on a live server, pauses the deployment's schedule
        try:
            await asyncio.wait_for(serving, RUNNER_STOP_SECONDS)
        except (asyncio.CancelledError, asyncio.TimeoutError):
            pass
        except Exception:
            if not (server and server.poll() is not None):
                raise  # a runner without its server fails on its way out: the line above says why
        return stopped.result()
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def _ended(code: int) -> str:
    """How a process that exited with status ``code`` (as ``Popen.returncode`` gives it) ended."""
    if code >= 0:
        return f"exited with status {code}"
    try:
        return f"was killed by signal {-code} ({signal.Signals(-code).name})"
    except ValueError:  # a real-time signal has no name
        return f"was killed by signal {-code}"


def _cron(value: str) -> str:
    """A cron schedule Prefect accepts, else an argument error of one line."""
    try:
        CronSchedule(cron=value)
    except ValueError:  # pydantic's ValidationError
        raise argparse.ArgumentTypeError(f"{value!r} is not a cron schedule such as {DEFAULT_CRON!r}") from None
    return value


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        in_utf8_mode()
    parser = argparse.ArgumentParser(prog="python -m flows.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--raw", default="raw", help="raw landing folder (default: raw)")
    parser.add_argument("--curated", default="curated", help="curated output folder (default: curated)")
    parser.add_argument("--cron", type=_cron, default=DEFAULT_CRON, help=f"cron schedule (default: {DEFAULT_CRON!r}, daily)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port of the local server, if one is started (default: {DEFAULT_PORT})")
    args = parser.parse_args(argv)
    try:
        refuse_empty(raw=args.raw, curated=args.curated)
        refuse_bad_environment()
    except UserError as error:
        print(f"make serve: {error}", file=sys.stderr)
        return EXIT_USAGE
    # Until serving starts, SIGTERM and Ctrl-C unwind, so that a server started here stops too.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)
    with ExitStack() as stack:
        server = None
        if not PREFECT_API_URL.value():
            if problem := port_taken(args.port):
                print(f"make serve: {problem}", file=sys.stderr)
                return EXIT_USAGE
            server = stack.enter_context(server_process(args.port))
            url = api_url(args.port)
            os.environ["PREFECT_API_URL"] = url  # flow runs are subprocesses: they read the environment
            stack.enter_context(temporary_settings(updates={PREFECT_API_URL: url}))
        if orphans := crash_orphaned_runs():  # this process is the deployment's only runner: no run of it is going now
            print(f"{orphans} run(s) left going by a serve that stopped marked Crashed", flush=True)
        print(how_to_use(PREFECT_API_URL.value(), args.cron), flush=True)
        return asyncio.run(serve_until_stopped(deployment(os.path.abspath(args.raw), os.path.abspath(args.curated), args.cron), server))


if __name__ == "__main__":
    sys.exit(main())
