"""The scheduled deployment against a real Prefect server: a triggered run publishes a release, runs never overlap;
`make serve` refuses a port that is taken, says how to use it from another shell, stops cleanly on SIGTERM, and stops
when its server dies; its server dies with it."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from builders import unused_port
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings
from processes import processes_marked

from commentary import reader
from commentary.server import local_server
from flows.serve import DEFAULT_CRON, DEPLOYMENT, _ended
from tools import synthetic

NAME = f"commentary-pipeline/{DEPLOYMENT}"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A fresh server and `python -m flows.serve` over a small synthetic corpus."""
    root = tmp_path_factory.mktemp("served")
    synthetic.generate(root / "raw", 12, furniture=False)
    env_home = {"PREFECT_HOME": str(root / "prefect")}
    os.environ.update(env_home)
    try:
        with local_server(unused_port(), log=root / "server.log") as url:
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


def _trigger(deadline: float, **parameters):
    while True:
        try:
            return run_deployment(NAME, timeout=0, parameters=parameters or None)
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
    assert reader.read_manifest(served / "curated")["counts"]["articles"] == 12
    assert deployment.global_concurrency_limit.limit == 1
    assert deployment.concurrency_options.collision_strategy == "ENQUEUE"
    assert [s.schedule.cron for s in deployment.schedules] == [DEFAULT_CRON]


def test_a_scheduled_run_whose_release_is_held_ends_failed(served):
    """Pages that are no articles: the quality gate holds the release. The flow run used to end Completed."""
    (served / "no-articles").mkdir()
    for n in range(3):
        (served / "no-articles" / f"{n}.txt").write_text(f"Title {n}\n\nToo short a page.\n")
    held = _trigger(time.monotonic() + 150, raw=str(served / "no-articles"), curated=str(served / "held"))
    _wait_for(lambda: _state(held.id) in ("COMPLETED", "FAILED", "CRASHED"), time.monotonic() + 150)
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(held.id).state
    assert state.type.value == "FAILED", (served / "serve.log").read_text()[-3000:]
    assert state.message == "No release published: critical expectations failed (articles: expect_table_row_count_to_be_between())."


def _serve(port: int, root, **env):
    environment = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {"PREFECT_HOME": str(root / "prefect")} | env
    return subprocess.Popen([sys.executable, "-m", "flows.serve", "--port", str(port), "--raw", str(root / "raw"),
                             "--curated", str(root / "curated")], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _marked_serve(port: int, root) -> tuple[subprocess.Popen, str, int]:
    """A serve on ``port`` once it says how to use it, the environment mark of every process it starts, and the pid of
    the Prefect server it started."""
    name, value = "COMMENTARY_SERVE_TREE", f"{os.getpid()}-{time.monotonic_ns()}"
    serve = _serve(port, root, **{name: value})
    mark = f"{name}={value}"
    try:
        said = [serve.stdout.readline() for _ in range(6)]  # printed once the server is healthy
        assert any("Stop with Ctrl-C or SIGTERM" in line for line in said), said + [serve.stderr.read()]
        (server,) = [pid for pid, command in processes_marked(mark).items() if " server start --host 127.0.0.1 " in command]
    except BaseException:
        _kill_all(mark)
        raise
    return serve, mark, server


def _kill_all(mark: str) -> None:
    """Kill what a failed test left of the processes with ``mark``."""
    for pid in processes_marked(mark):
        os.kill(pid, signal.SIGKILL)


def _registered(port: int) -> bool:
    """Whether the deployment is registered with the server on ``port``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/deployments/name/{NAME}", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _within(seconds: float, condition) -> bool:
    """Whether ``condition()`` holds within ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    return condition()


def _gone(mark: str, port: int) -> bool:
    """Whether every process with ``mark`` is gone, and ``port`` free, within five seconds."""
    return _within(5, lambda: not processes_marked(mark)) and _within(5, lambda: _port_is_free(port))


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_a_cron_schedule_prefect_cannot_read_or_an_empty_folder_stops_serve_with_a_usage_line(capsys):
    from flows.serve import main

    with pytest.raises(SystemExit) as stopped:
        main(["--cron", "every day"])
    assert stopped.value.code == 2 and "argument --cron: 'every day' is not a cron schedule such as '0 3 * * *'" in capsys.readouterr().err
    assert main(["--raw", ""]) == 2 and capsys.readouterr().err == "make serve: --raw is empty: pass a folder (is a variable of the command unset?)\n"


def test_a_port_taken_by_another_program_stops_serve_with_one_line(tmp_path):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        out, err = _serve(port, tmp_path).communicate(timeout=120)
    assert err == f"make serve: port {port} is taken by another program: choose a free one with make serve PORT={port + 1} " \
                  "(python -m flows.serve --port ...)\n" and out == ""


def test_serve_says_how_to_use_it_refuses_a_second_serve_on_its_port_and_stops_with_its_server_on_sigterm(tmp_path):
    port = unused_port()
    first = _serve(port, tmp_path, COMMENTARY_SERVE_TREE=str(port))
    try:
        said = [first.stdout.readline() for _ in range(6)]  # printed once the server is healthy
        assert f"  export PREFECT_API_URL=http://127.0.0.1:{port}/api\n" in said, said + [first.stderr.read()]
        assert any("prefect deployment run commentary-pipeline/scheduled --watch" in line for line in said)
        second = _serve(port, tmp_path)
        out, err = second.communicate(timeout=120)
        assert second.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
        assert f"a Prefect server that this command did not start is already running on port {port}" in err
    finally:
        first.send_signal(signal.SIGTERM)
        code = first.wait(timeout=20)
    assert code == 128 + signal.SIGTERM and "Traceback" not in first.stderr.read()
    assert _gone(f"COMMENTARY_SERVE_TREE={port}", port), "the server started by serve is still running"


def test_serve_whose_server_dies_stops_at_once_with_one_line_saying_so(tmp_path):
    port = unused_port()
    serve, mark, server = _marked_serve(port, tmp_path)
    try:
        assert _within(60, lambda: _registered(port))  # the runner is going
        os.kill(server, signal.SIGKILL)
        _, err = serve.communicate(timeout=15)  # it used to serve on, with nothing to serve from
    finally:
        _kill_all(mark)
    assert serve.returncode == 1 and err.splitlines() == [
        "make serve: the Prefect server started here was killed by signal 9 (SIGKILL): serve stopped too; start make serve again"]
    assert _gone(mark, port)


def test_a_killed_serve_takes_its_server_with_it(tmp_path):
    port = unused_port()
    serve, mark, _ = _marked_serve(port, tmp_path)
    serve.kill()
    serve.wait()
    try:
        assert _gone(mark, port), processes_marked(mark)  # the server used to live on and hold the port
    finally:
        _kill_all(mark)


def _state(run_id) -> str:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id).state.type.value


def _wait_for(condition, deadline: float) -> None:
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(1)


def test_a_run_left_going_by_a_killed_serve_is_marked_crashed_and_the_next_run_goes(tmp_path, monkeypatch):
    synthetic.generate(tmp_path / "raw", 12, furniture=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    with local_server(unused_port(), log=tmp_path / "server.log") as url, temporary_settings(updates={PREFECT_API_URL: url}):
        env = {**os.environ, "PREFECT_API_URL": url, "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
        command = [sys.executable, "-m", "flows.serve", "--raw", str(tmp_path / "raw"), "--curated", str(tmp_path / "curated")]
        deadline = time.monotonic() + 240
        with (tmp_path / "serve.log").open("wb") as log:
            first = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            orphan = _trigger(deadline)
            _wait_for(lambda: _state(orphan.id) == "RUNNING", deadline)
            os.killpg(first.pid, signal.SIGKILL)  # as the out-of-memory killer, or a lost machine, would
            first.wait()
            second = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                _wait_for(lambda: _state(orphan.id) == "CRASHED", deadline)
                after = _trigger(deadline)
                _wait_for(lambda: _state(after.id) in ("COMPLETED", "FAILED", "CRASHED"), deadline)
            finally:
                os.killpg(second.pid, signal.SIGTERM)
                second.wait(timeout=30)
        assert _state(after.id) == "COMPLETED", (tmp_path / "serve.log").read_text()[-3000:]
        assert reader.read_manifest(tmp_path / "curated")["counts"]["articles"] == 12


@pytest.mark.parametrize(("code", "said"), [(3, "exited with status 3"), (-9, "was killed by signal 9 (SIGKILL)"),
                                            (-35, "was killed by signal 35")])  # a real-time signal has no name
def test_how_the_server_ended_is_told_for_every_signal(code, said):
    assert _ended(code) == said
