"""Raw folders behind fsspec URLs and release mirrors (``memory://`` stands for an object store)."""
from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pytest
from builders import PASSED, build_release

from commentary import ingest, pipeline, release, storage


@pytest.fixture
def memory_raw(raw_copy):
    """The sample raw folder copied into a fresh ``memory://`` folder, with a sidecar, an orphan sidecar and an unknown format."""
    url = f"memory://raw-{uuid.uuid4().hex}"
    fs, root = fsspec.core.url_to_fs(url)
    (raw_copy / "nested").mkdir()
    (raw_copy / "nested" / "notes.pdf").write_bytes(b"%PDF-1.4")
    (raw_copy / "nested" / "lost.txt.meta.json").write_text("{}")
    first = sorted(raw_copy.glob("*.txt"))[0]
    (raw_copy / f"{first.name}.meta.json").write_text('{"outlet": "Example Review", "published_date": "2021-06-25"}')
    for path in sorted(p for p in raw_copy.rglob("*") if p.is_file()):
        fs.pipe_file(f"{root}/{path.relative_to(raw_copy).as_posix()}", path.read_bytes())
    yield url, raw_copy
    fs.rm(root, recursive=True)


def test_a_url_and_a_local_path_name_the_right_kind_of_folder(tmp_path):
    assert storage.raw_folder("raw") == Path("raw")
    assert storage.raw_folder(f"file://{tmp_path}") == tmp_path
    assert storage.raw_folder("s3://bucket/raw/") == storage.RemoteFolder("s3://bucket/raw")


def test_discovery_through_fsspec_finds_what_local_discovery_finds(memory_raw):
    url, local = memory_raw
    assert ingest.discover(storage.raw_folder(url)) == ingest.discover(local)
    refusals = {raw.rel_path: raw.refusal for raw in ingest.discover(storage.raw_folder(url)) if raw.refusal}
    assert refusals == {"nested/lost.txt.meta.json": ("orphan-sidecar", "sidecar without the document it describes")}


def test_a_raw_folder_behind_a_url_gives_the_same_release_as_the_local_folder(memory_raw, tmp_path):
    url, local = memory_raw
    remote = build_release(storage.raw_folder(url), tmp_path / "remote")
    nearby = build_release(local, tmp_path / "local")
    assert remote["published"] and remote["counts"] == nearby["counts"]
    manifests = [release.read_manifest(tmp_path / name) for name in ("remote", "local")]
    assert manifests[0]["content_fingerprint"] == manifests[1]["content_fingerprint"]
    assert manifests[0]["raw_fingerprint"] == manifests[1]["raw_fingerprint"]
    articles = release.scan_table(tmp_path / "remote", "articles").collect()
    assert articles.filter(articles["outlet"] == "Example Review").height == 1


def test_remote_files_over_the_cap_are_rejected(memory_raw, monkeypatch):
    url, _ = memory_raw
    folder = storage.raw_folder(url)
    (big,) = [raw for raw in ingest.discover(folder) if raw.format == "text"][:1]
    monkeypatch.setattr(ingest, "MAX_RAW_BYTES", 10)
    with pytest.raises(ingest.RejectedFile, match="too-large"):
        ingest.read_raw(folder, big)


def test_a_mirror_gets_the_release_files_and_latest_last(tmp_path, raw_copy):
    url = f"memory://mirror-{uuid.uuid4().hex}"
    curated = tmp_path / "curated"
    plan = pipeline.plan_run(raw_copy, curated, mirror=url)
    for shard_no, files in enumerate(plan.shards):
        pipeline.ingest_step(plan.raw_root, plan.run_dir, shard_no, files)
        pipeline.clean_step(plan.run_dir, shard_no, plan.fingerprint)
    pipeline.curate_step(plan.run_dir)
    outcome = pipeline.release_step(plan, PASSED)
    assert outcome["mirrored_to"] == url
    fs, root = fsspec.core.url_to_fs(url)
    folder = release.release_path(curated)
    for name, entry in release.read_manifest(curated)["files"].items():
        assert fs.cat_file(f"{root}/releases/{folder.name}/{name}") == (folder / name).read_bytes(), name
    assert fs.cat_file(f"{root}/LATEST") == b"1.0.0\n"
    written = storage.mirror(folder, curated / "CHANGELOG.md", url)
    assert written[-1].endswith("/LATEST") and written[-3].endswith("/manifest.json")
