"""The run's Prefect API server: without a configured one, a temporary server that dies with the run."""
from __future__ import annotations

import os
import subprocess
import sys
from contextlib import ExitStack

import prefect
from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

from commentary import lifetime


def shared_api_server(stack: ExitStack) -> None:
    """Without a configured Prefect API, start one temporary server for this run, its Dask workers and its
    processes; it dies with the run, even one killed with SIGKILL (``run_api_server``).

    Prefect would otherwise start a temporary server of its own that outlives a killed run, and each Dask
    worker process one more (slow).
    """
    if PREFECT_API_URL.value():
        return
    server = run_api_server()
    server.start()
    stack.callback(server.stop)
    for worker in (APILogWorker, EventsWorker):  # what the run logged and emitted reaches the server before it stops
        stack.callback(worker.drain_all, timeout=5, at_exit=False)
    os.environ["PREFECT_API_URL"] = server.api_url
    stack.callback(os.environ.pop, "PREFECT_API_URL", None)
    stack.enter_context(temporary_settings(updates={PREFECT_API_URL: server.api_url}))


def run_api_server():
    """A new (not yet started) ``RunApiServer``. Prefect's server modules are imported here, only when a server is
    started: they take about two seconds of CPU, which a run against a configured API does not spend."""
    from prefect.server.api.server import SubprocessASGIServer

    class RunApiServer(SubprocessASGIServer):
        """Prefect's temporary API server, run by this module's ``__main__`` so that it dies with the process that
        started it. The uvicorn arguments and environment are Prefect's own (``SubprocessASGIServer._run_uvicorn_command``)."""

        def _run_uvicorn_command(self) -> subprocess.Popen:
            arguments = ["--app-dir", str(prefect.__module_path__.parent), "--factory", "prefect.server.api.server:create_app",
                         "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error", "--lifespan", "on"]
            environment = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1",
                           **get_current_settings().to_environment_variables(exclude_unset=True)}
            return subprocess.Popen([sys.executable, "-m", __name__, str(os.getpid()), *arguments], env=environment)

    return RunApiServer()


if __name__ == "__main__":  # python -m flows.api_server PARENT_PID UVICORN_ARGUMENTS...
    import uvicorn

    lifetime.die_with(int(sys.argv[1]))
    uvicorn.main(sys.argv[2:], prog_name="uvicorn")
