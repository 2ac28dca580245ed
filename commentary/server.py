"""A real local Prefect server on 127.0.0.1, started as a subprocess (``prefect server start``)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: A fresh database takes about 20 s to migrate on two cores; allow for slower machines.
STARTUP_TIMEOUT_SECONDS = 120


@contextmanager
def local_server(port: int = 4200, log: Path | None = None) -> Iterator[str]:
    """Run a Prefect server on ``127.0.0.1:port`` while the block runs; yields its API URL."""
    url = f"http://127.0.0.1:{port}/api"
    log = log or Path(os.environ.get("PREFECT_HOME", ".prefect")) / f"server-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                  stdout=output, stderr=subprocess.STDOUT, env={**os.environ, "PREFECT_API_URL": url})
    try:
        _wait_healthy(url, server, log)
        yield url
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
