"""The flow gives the same release on local threads and on a Dask LocalCluster."""
from __future__ import annotations

import pytest
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
