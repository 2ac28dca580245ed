"""The flow gives the same release on local threads and on a Dask LocalCluster; a scheduler that cannot be reached stops
the run before it creates anything."""
from __future__ import annotations

import pytest
from builders import unused_port
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness

from commentary import reader
from flows.pipeline import with_runner
from tools import synthetic


@pytest.fixture(scope="module")
def test_api():
    """A test server for the flow and, through the environment, for the Dask worker processes."""
    with prefect_test_harness(server_startup_timeout=120), pytest.MonkeyPatch.context() as env:
        env.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
        yield


def test_dask_and_local_runners_publish_identical_releases(tmp_path, test_api):
    raw = tmp_path / "raw"
    synthetic.generate(raw, 30, furniture=False)
    (raw / "broken.txt.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    local = with_runner("local")(raw=str(raw), curated=str(tmp_path / "local"), shard_size=7)
    dask = with_runner("dask")(raw=str(raw), curated=str(tmp_path / "dask"), shard_size=7)
    assert local["release"]["published"] and dask["release"]["published"]
    assert (local["released"], local["rejected"]) == (dask["released"], dask["rejected"]) == (30, 1)
    manifests = [reader.read_manifest(tmp_path / name) for name in ("local", "dask")]
    assert manifests[0]["content_fingerprint"] == manifests[1]["content_fingerprint"]
    parquet = [{name: entry for name, entry in m["files"].items() if name.endswith(".parquet")} for m in manifests]
    assert parquet[0] and parquet[0] == parquet[1]


def test_a_dask_scheduler_that_cannot_be_reached_stops_the_run_with_its_own_exit_code_before_it_creates_anything(
        tmp_path, test_api, capsys):
    import dask

    from commentary.cli import EXIT_UNAVAILABLE, main

    raw, curated, scheduler = tmp_path / "raw", tmp_path / "curated", f"tcp://127.0.0.1:{unused_port()}"
    synthetic.generate(raw, 3, furniture=False)
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):  # 30 s by default
        assert main(["run", "--runner", "dask", "--scheduler", scheduler, "--raw", str(raw), "--curated", str(curated)]) == EXIT_UNAVAILABLE
    message = (f"commentary run: the Dask scheduler at {scheduler} cannot be reached (connection refused): "
               "check that it is running at that address; nothing was published")
    assert capsys.readouterr().err.splitlines() == [message]
    assert not curated.exists()  # no run folder, no lock: the scheduler is reached before the run takes its lock
