"""Raw folders behind fsspec URLs and release mirrors (``memory://`` stands for an object store)."""
from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pytest
from builders import build_release, unused_port

from commentary import ingest, reader, storage


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
    manifests = [reader.read_manifest(tmp_path / name) for name in ("remote", "local")]
    assert manifests[0]["content_fingerprint"] == manifests[1]["content_fingerprint"]
    assert manifests[0]["raw_fingerprint"] == manifests[1]["raw_fingerprint"]
    articles = reader.scan_table(tmp_path / "remote", "articles").collect()
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
    outcome = build_release(raw_copy, curated, mirror=url)
    assert outcome["mirrored_to"] == url
    fs, root = fsspec.core.url_to_fs(url)
    folder = reader.release_path(curated)
    for name, entry in reader.read_manifest(curated)["files"].items():
        assert fs.cat_file(f"{root}/releases/{folder.name}/{name}") == (folder / name).read_bytes(), name
    assert fs.cat_file(f"{root}/LATEST") == b"1.0.0\n"
    written = storage.mirror(folder, curated / "CHANGELOG.md", url)
    assert written[-1].endswith("/LATEST") and written[-3].endswith("/manifest.json")


def test_a_mirror_whose_copy_failed_catches_up_on_the_next_run(tmp_path, raw_copy, monkeypatch):
    url = f"memory://mirror-{uuid.uuid4().hex}"
    curated = tmp_path / "curated"
    copy = storage.mirror

    def fail_after_the_first_file(release_folder, changelog, target):
        fs, root = fsspec.core.url_to_fs(target)
        fs.pipe_file(f"{root}/releases/{release_folder.name}/partial", b"")
        raise OSError("connection reset")

    monkeypatch.setattr(storage, "mirror", fail_after_the_first_file)
    with pytest.raises(OSError, match="connection reset"):
        build_release(raw_copy, curated, mirror=url)
    assert reader.latest_version(curated) == "1.0.0" and storage.mirrored_version(url) is None

    monkeypatch.setattr(storage, "mirror", copy)
    caught_up = build_release(raw_copy, curated, mirror=url)
    assert not caught_up["published"] and caught_up["mirrored_to"] == url
    assert storage.mirrored_version(url) == "1.0.0"
    assert "mirrored_to" not in build_release(raw_copy, curated, mirror=url)


def test_a_mirror_holding_another_folder_s_release_of_the_same_version_is_brought_up_to_this_one(tmp_path, raw_copy):
    url = f"memory://mirror-{uuid.uuid4().hex}"
    build_release(raw_copy, tmp_path / "first", mirror=url)
    (raw_copy / "000_019dbd7b0e031552.txt").unlink()
    mirrored = build_release(raw_copy, tmp_path / "second", mirror=url)  # another curated folder: its own 1.0.0
    assert mirrored["version"] == "1.0.0" and mirrored["mirrored_to"] == url
    fs, root = fsspec.core.url_to_fs(url)
    assert fs.cat_file(f"{root}/releases/1.0.0/manifest.json") == (tmp_path / "second" / "releases" / "1.0.0" / "manifest.json").read_bytes()


def test_a_mirror_that_cannot_be_read_does_not_keep_a_run_from_publishing_locally(tmp_path, raw_copy, monkeypatch):
    from commentary import steps

    url = f"memory://mirror-{uuid.uuid4().hex}"
    curated = tmp_path / "curated"
    build_release(raw_copy, curated, mirror=url)
    (raw_copy / "000_019dbd7b0e031552.txt").unlink()

    def unreachable(*_args):
        raise OSError("could not connect to the endpoint")

    monkeypatch.setattr(storage, "mirror_holds", unreachable)
    monkeypatch.setattr(storage, "mirror", unreachable)
    with pytest.raises(OSError, match="could not connect"):
        steps.run(raw_copy, curated, shard_size=500, mirror=url)
    assert reader.latest_version(curated) == "1.1.0"  # published locally before the mirror was tried


def test_a_release_step_retried_after_its_mirror_failed_says_that_its_run_published(tmp_path, raw_copy, monkeypatch):
    """Prefect retries the release step when the mirror copy fails; the retry finds nothing new to publish, since its
    own run published it, and must say that the run published, not that nothing changed."""
    from builders import PASSED, clean_run

    from commentary import steps

    url = f"memory://mirror-{uuid.uuid4().hex}"
    plan = clean_run(raw_copy, tmp_path / "curated", mirror=url)
    steps.curate_step(plan)
    copy = storage.mirror

    def fail(*_args):
        raise OSError("connection reset")

    monkeypatch.setattr(storage, "mirror", fail)
    with pytest.raises(OSError, match="connection reset"):
        steps.release_step(plan, PASSED)
    monkeypatch.setattr(storage, "mirror", copy)
    retried = steps.release_step(plan, PASSED)
    assert retried.published and retried.version == "1.0.0" and retried.mirrored_to == url
    assert storage.mirrored_version(url) == "1.0.0"


@pytest.fixture(scope="module")
def s3_bucket():
    """A local S3-compatible server (moto) on 127.0.0.1, reached through s3fs as a user would reach S3."""
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    port = unused_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as env:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                            "AWS_ENDPOINT_URL": endpoint}.items():
            env.setenv(name, value)
        fsspec.filesystem("s3", skip_instance_cache=True).mkdir("commentary-test")
        yield "commentary-test"
    server.stop()


def test_raw_on_s3_and_a_mirror_on_s3(s3_bucket, raw_copy, tmp_path):
    fs = fsspec.filesystem("s3")
    for path in sorted(raw_copy.glob("*")):
        fs.pipe_file(f"{s3_bucket}/raw/{path.name}", path.read_bytes())
    for marker in ("raw/", "raw/empty/"):  # the empty keys that the S3 console's "Create folder" writes
        fs.pipe_file(f"{s3_bucket}/{marker}", b"")
    assert storage.raw_folder(f"s3://{s3_bucket}/raw").files() == sorted(path.name for path in raw_copy.glob("*"))
    curated = tmp_path / "curated"
    outcome = build_release(storage.raw_folder(f"s3://{s3_bucket}/raw"), curated, mirror=f"s3://{s3_bucket}/curated")
    assert outcome["published"] and outcome["counts"] == build_release(raw_copy, tmp_path / "local")["counts"]
    manifest = reader.read_manifest(curated)
    assert manifest["content_fingerprint"] == reader.read_manifest(tmp_path / "local")["content_fingerprint"]
    fs.invalidate_cache()
    assert fs.cat_file(f"{s3_bucket}/curated/LATEST") == b"1.0.0\n"
    mirrored = {path.split("/releases/1.0.0/", 1)[1] for path in fs.find(f"{s3_bucket}/curated/releases/1.0.0")}
    assert mirrored == {*manifest["files"], "manifest.json"}


@pytest.fixture
def s3_as_configured(s3_bucket, monkeypatch):
    """The bucket reached with the environment each test sets: s3fs's file systems are made anew, before and after."""
    import s3fs

    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no credentials looked for on a cloud machine's address
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # a request that fails is not tried again (s3fs still retries a few times)
    s3fs.S3FileSystem.clear_instance_cache()
    yield s3_bucket
    s3fs.S3FileSystem.clear_instance_cache()


#: (how the object store is misconfigured, what the run must say of it)
UNAVAILABLE_STORES = {
    "no-credentials": ({"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None},
                       "was given no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"),
    "refused": ({"AWS_ENDPOINT_URL": "http://127.0.0.1:{port}"},
                "at http://127.0.0.1:{port} cannot be reached (connection refused): check the endpoint URL (AWS_ENDPOINT_URL)"),
    "unknown-host": ({"AWS_ENDPOINT_URL": "http://object-store.invalid:9000"},
                     "at http://object-store.invalid:9000 cannot be reached (host name not resolved"),
}


def _configure(monkeypatch, environment: dict[str, str | None], port: int) -> None:
    """Set the variables of ``environment`` (``{port}`` in a value: ``port``); unset those given None."""
    for name, value in environment.items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value.format(port=port))


@pytest.mark.parametrize("case", UNAVAILABLE_STORES)
def test_a_raw_folder_on_an_object_store_that_cannot_be_used_is_refused_with_its_own_exit_code(
        s3_as_configured, raw_copy, tmp_path, monkeypatch, capsys, case):
    from commentary.cli import EXIT_UNAVAILABLE, main

    curated = tmp_path / "curated"
    build_release(raw_copy, curated)
    port = unused_port()
    environment, message = UNAVAILABLE_STORES[case]
    _configure(monkeypatch, environment, port)
    raw = f"s3://{s3_as_configured}/raw"
    capsys.readouterr()
    assert main(["run", "--inline", "--raw", raw, "--curated", str(curated)]) == EXIT_UNAVAILABLE
    err = capsys.readouterr().err
    assert err.startswith(f"commentary run: the object store of {raw} {message.format(port=port)}") and len(err.splitlines()) == 1, err
    assert err.endswith("; nothing was published, LATEST is still 1.0.0\n")
    assert len(list((curated / "runs").iterdir())) == 1  # refused before the run made its folder


def test_a_mirror_that_cannot_be_reached_is_told_with_its_own_exit_code_after_the_local_publish(
        s3_as_configured, raw_copy, tmp_path, monkeypatch, capsys):
    import s3fs

    from commentary.cli import EXIT_OK, EXIT_UNAVAILABLE, main

    curated, mirror = tmp_path / "curated", f"s3://{s3_as_configured}/mirror-{uuid.uuid4().hex}"
    build_release(raw_copy, curated)
    (raw_copy / "000_019dbd7b0e031552.txt").unlink()
    port = unused_port()
    with monkeypatch.context() as unreachable:
        _configure(unreachable, UNAVAILABLE_STORES["refused"][0], port)
        capsys.readouterr()
        assert main(["run", "--inline", "--raw", str(raw_copy), "--curated", str(curated), "--mirror", mirror]) == EXIT_UNAVAILABLE
    err = capsys.readouterr().err.splitlines()  # after the warning that the mirror cannot be read, before the publish
    assert err[-1] == (f"commentary run: the object store of {mirror} at http://127.0.0.1:{port} cannot be reached (connection refused): "
                       "check the endpoint URL (AWS_ENDPOINT_URL) and the network; release 1.1.0 was published; "
                       "the next run brings the mirror up to it")
    assert reader.latest_version(curated) == "1.1.0"
    s3fs.S3FileSystem.clear_instance_cache()  # the file system made with the wrong endpoint
    assert main(["run", "--inline", "--raw", str(raw_copy), "--curated", str(curated), "--mirror", mirror]) == EXIT_OK
    assert storage.mirrored_version(mirror) == "1.1.0"
