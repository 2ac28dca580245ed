"""The scheduled deployment against a real Prefect server: a triggered run publishes a release, runs never overlap."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from commentary import release
from commentary.server import local_server
from flows.serve import DEFAULT_CRON, DEPLOYMENT
from tools import synthetic

NAME = f"commentary-pipeline/{DEPLOYMENT}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A fresh server and `python -m flows.serve` over a small synthetic corpus."""
    root = tmp_path_factory.mktemp("served")
    synthetic.generate(root / "raw", 12, furniture=False)
    env_home = {"PREFECT_HOME": str(root / "prefect")}
    os.environ.update(env_home)
    try:
        with local_server(_free_port(), log=root / "server.log") as url:
            env = {**os.environ, "PREFECT_API_URL": url, "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
            with (root / "serve.log").open("wb") as log:
                server = subprocess.Popen([sys.executable, "-m", "flows.serve", "--raw", str(root / "raw"), "--curated", str(root / "curated")],
                                          env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                with temporary_settings(updates={PREFECT_API_URL: url}):
                    yield root
            finally:
                server.terminate()
                server.wait(timeout=30)
    finally:
        os.environ.pop("PREFECT_HOME")


def _trigger(deadline: float):
    while True:
        try:
            return run_deployment(NAME, timeout=0)
        except Exception:  # the deployment is not registered yet
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_triggered_runs_publish_a_release_one_at_a_time(served):
    deadline = time.monotonic() + 150
    first, second = _trigger(deadline), _trigger(deadline)
    with get_client(sync_client=True) as client:
        while True:
            runs = [client.read_flow_run(run.id) for run in (first, second)]
            if all(run.state.is_final() for run in runs) or time.monotonic() > deadline:
                break
            time.sleep(1)
        (deployment,) = client.read_deployments(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[DEPLOYMENT])))
    assert [run.state.type.value for run in runs] == ["COMPLETED", "COMPLETED"], (served / "serve.log").read_text()[-3000:]
    assert runs[0].end_time <= runs[1].start_time or runs[1].end_time <= runs[0].start_time
    assert release.read_manifest(served / "curated")["counts"]["articles"] == 12
    assert deployment.global_concurrency_limit.limit == 1
    assert deployment.concurrency_options.collision_strategy == "ENQUEUE"
    assert [s.schedule.cron for s in deployment.schedules] == [DEFAULT_CRON]
