"""The run's Prefect API server: without a configured one, a temporary server that dies with the run."""
from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from commentary import lifetime

#: Ports tried for the temporary server (Prefect's own range for it).
PORTS = range(8000, 9000)
#: uvicorn's exit status when its port was taken meanwhile: the server is started again on another port.
PORT_TAKEN = 3


def start_api_server(stack: ExitStack) -> RunApiServer | None:
    """Unless an API is configured, start the run's temporary server (``RunApiServer``), stopped with ``stack``, and
    return it at once: it starts up in its own process while this one imports Prefect and the flow
    (``use_api_server``). None when the environment, or Prefect's settings if already imported, name an API."""
    settings = {}
    if "prefect.settings" in sys.modules:  # a process that set Prefect's settings in code: the server gets them too
        from prefect.settings import PREFECT_API_URL, get_current_settings

        if PREFECT_API_URL.value():
            return None
        settings = get_current_settings().to_environment_variables(exclude_unset=True)
    if os.environ.get("PREFECT_API_URL"):
        return None
    server = RunApiServer(settings)
    stack.callback(server.stop)
    return server


def use_api_server(stack: ExitStack, server: RunApiServer | None) -> None:
    """Point this run, its Dask workers and its processes at ``server`` (``start_api_server``) once it answers, until
    ``stack`` closes; the server dies with the run, even one killed with SIGKILL. An API configured in Prefect's
    profile is used instead, and the server stopped.

    Prefect would otherwise start a temporary server of its own that outlives a killed run, and each Dask
    worker process one more (slow).
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, temporary_settings

    if server is None:
        return
    if PREFECT_API_URL.value():
        server.stop()
        return
    server.wait_until_healthy(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
    for worker in (APILogWorker, EventsWorker):  # what the run logged and emitted reaches the server before it stops
        stack.callback(worker.drain_all, timeout=5, at_exit=False)
    os.environ["PREFECT_API_URL"] = server.api_url
    stack.callback(os.environ.pop, "PREFECT_API_URL", None)
    stack.enter_context(temporary_settings(updates={PREFECT_API_URL: server.api_url}))


class RunApiServer:
    """Prefect's temporary API server, run by this module's ``__main__`` so that it dies with the process that started
    it, with the uvicorn arguments of Prefect's ``SubprocessASGIServer``. It is started before this process imports
    Prefect (about two CPU seconds) and Prefect's server modules (three more, which this process never imports): the
    server reads the same settings from the same environment, profile and working folder, and is given ``settings``
    (those set in code)."""

    def __init__(self, settings: dict[str, str]):
        self.settings = settings
        self.port = _free_port()
        self.process = self._launch()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def _launch(self) -> subprocess.Popen:
        site = Path(importlib.util.find_spec("prefect").submodule_search_locations[0]).parent
        arguments = ["--app-dir", str(site), "--factory", "prefect.server.api.server:create_app",
                     "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error", "--lifespan", "on"]
        environment = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1", **self.settings}
        # In a session of its own: a Ctrl-C at the terminal interrupts the run, which then stops it (``stop``), and not
        # the server under the run's last calls to it.
        return subprocess.Popen([sys.executable, "-m", __name__, str(os.getpid()), *arguments], env=environment,
                                start_new_session=True)

    def wait_until_healthy(self, timeout: float) -> None:
        """Return once the server answers its health check; RuntimeError when it does not within ``timeout`` seconds."""
        import httpx

        deadline = time.monotonic() + timeout
        with httpx.Client() as client:
            while time.monotonic() < deadline:
                if self.process.poll() == PORT_TAKEN:
                    self.port = _free_port()
                    self.process = self._launch()
                    continue
                if self.process.poll() is not None:
                    raise RuntimeError(f"the temporary Prefect API server exited with status {self.process.returncode}")
                with contextlib.suppress(httpx.TransportError):
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return
                time.sleep(0.1)
        raise RuntimeError(f"the temporary Prefect API server did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _free_port() -> int:
    """A port of PORTS free now (tried at random, as Prefect does)."""
    for _ in range(10):
        port = random.choice(PORTS)
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
            try:
                probe.bind(("127.0.0.1", port))
                return port
            except OSError:
                time.sleep(random.uniform(0.1, 0.5))
    raise RuntimeError(f"no free port for the temporary Prefect API server in {PORTS.start}-{PORTS.stop - 1}")


if __name__ == "__main__":  # python -m flows.api_server PARENT_PID UVICORN_ARGUMENTS...
    import uvicorn

    lifetime.die_with(int(sys.argv[1]))
    uvicorn.main(sys.argv[2:], prog_name="uvicorn")
