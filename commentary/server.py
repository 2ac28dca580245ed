"""A real local Prefect server on 127.0.0.1, started as a subprocess (``prefect server start``) that dies with the
process that started it."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from commentary import lifetime

#: A fresh database takes about 20 s to migrate on two cores; allow for slower machines.
STARTUP_TIMEOUT_SECONDS = 120


def api_url(port: int) -> str:
    """The API URL of the local server on ``port``."""
    return f"http://127.0.0.1:{port}/api"


@contextmanager
def local_server(port: int = 4200, log: Path | None = None) -> Iterator[str]:
    """Run a Prefect server on ``127.0.0.1:port`` while the block runs; yields its API URL."""
    with server_process(port, log):
        yield api_url(port)


@contextmanager
def server_process(port: int = 4200, log: Path | None = None) -> Iterator[subprocess.Popen]:
    """Run a Prefect server on ``127.0.0.1:port`` while the block runs; yields its process once it answers.

    The server dies with this process, even one killed with SIGKILL (``lifetime.die_with``). It runs in a session of
    its own: a Ctrl-C at the terminal interrupts this process, which then stops the server, instead of reaching both.
    """
    url = api_url(port)
    log = log or Path(os.environ.get("PREFECT_HOME", ".prefect")) / f"server-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        server = subprocess.Popen([sys.executable, "-m", __name__, str(os.getpid()), "server", "start", "--host", "127.0.0.1",
                                   "--port", str(port)], stdout=output, stderr=subprocess.STDOUT, env={**os.environ, "PREFECT_API_URL": url},
                                  start_new_session=True)
    try:
        _wait_healthy(url, server, log)
        yield server
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"Prefect server exited with {server.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"Prefect server at {url} not healthy after {STARTUP_TIMEOUT_SECONDS} s; see {log}")


if __name__ == "__main__":  # python -m commentary.server PARENT_PID PREFECT_CLI_ARGUMENTS...
    from prefect.cli import app

    lifetime.die_with(int(sys.argv.pop(1)))
    app()
