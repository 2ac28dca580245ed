"""Faults: a run killed at any step, two runs at once, a full disk, a stage failing on one document.

The killed runs are real processes ended by SIGKILL at a chosen point (a driver patches one
function to kill its own process there); the next run happens in this process.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest
from conftest import REPO, text_page
from processes import alive, processes_marked

from commentary import cache, cli, locking, reader, stages, steps, tables
from commentary.ledger import ReleaseOutcome, Result
from commentary.clean import html
from commentary.ingest import discover
from commentary.release import publish as publishing
from commentary.release.manifest import sha256_file

#: Runs ``steps.run`` with shards of two files, killing itself (SIGKILL) at the named point.
DRIVER = textwrap.dedent("""
    import os, signal, sys, time
    from pathlib import Path
    from commentary import steps, tables
    from commentary.release import publish as publishing

    raw, curated, point = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    write_parquet, write_row_groups, rename = tables.write_parquet, tables.write_row_groups, os.rename

    def kill():
        os.kill(os.getpid(), signal.SIGKILL)

    def write_then_maybe_die(table, path, schema, **options):
        written = write_parquet(table, path, schema, **options)
        if point == "ingest" and path.parent.name == "ingest" and path.name == "shard-00001.parquet":
            kill()                                     # one ingest shard written, the next not yet
        if point == "clean" and path.parent.name == "clean":
            kill()                                     # ingest done, cleaning under way
        if point == "hold" and path.parent.name == "clean":
            (curated.parent / "started").touch()       # hold the lock until told to go on
            while not (curated.parent / "go").exists():
                time.sleep(0.05)
        return written

    def write_row_groups_then_maybe_die(*args):
        written = write_row_groups(*args)
        if point == "release":
            kill()                                     # first table of the release written
        return written

    def rename_then_die(source, target):
        rename(source, target)
        if ".staging-" in str(source):
            kill()                                     # release in place, LATEST not yet updated

    tables.write_parquet = write_then_maybe_die
    tables.write_row_groups = write_row_groups_then_maybe_die
    publishing.os.rename = rename_then_die if point == "latest" else rename
    if point == "link":  # LATEST names the new release, the latest link not yet
        replace_link = publishing._replace_link
        publishing._replace_link = lambda path, target: kill() if target.name == "1.1.0" else replace_link(path, target)
    print(steps.run(raw, curated, shard_size=2)["release"])
""")


#: Runs a run's steps as the Prefect flow places them (shards in this process, curate and release in its
#: whole-corpus process, ``flows.pipeline.corpus_process``); the corpus process stops at the named point of
#: the publish, writes its pid to ``<gate>/worker`` and waits 20 s there, while the test kills this process.
TREE_DRIVER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from commentary import ledger, locking, steps, tables
    from commentary.release import publish as publishing

    PASSED = {"critical_failed": [], "stages": {}}

    def hold(gate):
        (gate / "worker").write_text(str(os.getpid()))
        time.sleep(20)

    def held_release(plan, gate, point):
        write_row_groups, rename, account = tables.write_row_groups, publishing.os.rename, steps.ledger

        def write_row_groups_then_hold(*args):
            written = write_row_groups(*args)
            if point == "staging":
                hold(gate)
            return written

        def rename_then_hold(source, target):
            rename(source, target)
            if point == "rename" and ".staging-" in str(source):
                hold(gate)

        def ledger_then_hold(*args, **kwargs):
            entry = account(*args, **kwargs)
            if point == "ledger":
                hold(gate)
            return entry

        tables.write_row_groups, publishing.os.rename, steps.ledger = write_row_groups_then_hold, rename_then_hold, ledger_then_hold
        return steps.release_step(plan, PASSED)

    def held_curate(plan, gate):
        hold(gate)
        return steps.curate_step(plan)

    if __name__ == "__main__":
        from flows.pipeline import corpus_process

        raw, curated, gate, point = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
        with locking.run_lock(curated):
            plan = steps.plan_run(raw, curated, 2)
            for job in plan.jobs(set()):
                steps.ingest_step(job)
                steps.clean_step(job)
            steps.remember_shards(plan)
            with corpus_process() as corpus_worker:
                if point == "curate":
                    corpus_worker.submit(held_curate, plan, gate).result()
                corpus_worker.submit(steps.curate_step, plan).result()
                outcome = corpus_worker.submit(held_release, plan, gate, point).result()
            ledger.ledger(plan, outcome)
""")


def _start(raw, curated, point) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", DRIVER, str(raw), str(curated), point], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _assert_releases_intact(curated, latest, folders):
    """LATEST names ``latest``; the release folders are exactly ``folders``, each complete and matching its manifest;
    readers see all of them but one that an interrupted run left before LATEST named it."""
    assert reader.latest_version(curated) == latest
    releases = reader.releases_dir(curated)
    assert sorted(p.name for p in releases.iterdir() if not p.name.startswith(".")) == folders
    for version in folders:
        for name, entry in json.loads((releases / version / "manifest.json").read_text())["files"].items():
            assert sha256_file(releases / version / name) == entry["sha256"]
    assert [m["version"] for m in reader.list_releases(curated)] == [v for v in folders if v != reader.unpublished(curated)]


def _leftovers(curated) -> list[str]:
    return sorted(p.name for p in reader.releases_dir(curated).glob(".staging-*")) + \
        sorted(p.name for p in reader.releases_dir(curated).glob(".pending"))


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, articles):
    """A raw folder of four articles and a curated folder holding their release 1.0.0."""
    base = tmp_path_factory.mktemp("baseline")
    raw, curated = base / "raw", base / "curated"
    raw.mkdir()
    for n, article in enumerate(articles[:4]):
        (raw / f"{n}.txt").write_text(text_page(*article))
    assert steps.run(raw, curated, shard_size=2)["release"]["version"] == "1.0.0"
    return raw, curated


@pytest.fixture
def grown(baseline, tmp_path, articles):
    """A private copy of the baseline with a fifth article added: the next run should publish 1.1.0."""
    raw, curated = tmp_path / "raw", tmp_path / "curated"
    shutil.copytree(baseline[0], raw)
    shutil.copytree(baseline[1], curated)
    (raw / "4.txt").write_text(text_page(*articles[4]))
    return raw, curated


@pytest.mark.parametrize("point", ["ingest", "clean", "release", "latest"])
def test_a_run_killed_at_any_point_leaves_the_last_release_and_the_next_run_completes(grown, point):
    raw, curated = grown
    killed = _start(raw, curated, point)
    _, err = killed.communicate(timeout=300)
    assert killed.returncode == -9, err[-3000:]
    published_before_latest = ["1.0.0", "1.1.0"] if point == "latest" else ["1.0.0"]
    _assert_releases_intact(curated, "1.0.0", published_before_latest)

    entry = steps.run(raw, curated, shard_size=2)
    _assert_releases_intact(curated, "1.1.0", ["1.0.0", "1.1.0"])
    assert _leftovers(curated) == []
    assert entry["balanced"] and entry["released"] == 5
    assert reader.read_manifest(curated)["counts"]["articles"] == 5
    assert entry["release"]["published"]  # killed after the rename: the pending release is removed and published again


def test_a_run_killed_between_latest_and_its_link_has_the_link_repaired_by_the_next_run(grown):
    raw, curated = grown
    killed = _start(raw, curated, "link")
    _, err = killed.communicate(timeout=300)
    assert killed.returncode == -9, err[-3000:]

    def linked_version():
        return json.loads((curated / reader.LATEST_LINK / "manifest.json").read_text())["version"]

    assert (reader.latest_version(curated), linked_version()) == ("1.1.0", "1.0.0")

    entry = steps.run(raw, curated, shard_size=2)
    assert not entry["release"]["published"]  # nothing changed since 1.1.0
    assert os.readlink(curated / reader.LATEST_LINK) == "releases/1.1.0" and linked_version() == "1.1.0"
    assert _leftovers(curated) == []


@pytest.mark.parametrize("point", ["curate", "staging", "rename", "ledger"])
def test_a_run_killed_while_its_corpus_process_publishes_publishes_nothing(grown, tmp_path, point):
    raw, curated = grown
    gate = tmp_path / "gate"
    gate.mkdir()
    (tmp_path / "driver.py").write_text(TREE_DRIVER)
    run = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(raw), str(curated), str(gate), point], cwd=REPO,
                           env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (gate / "worker").is_file() or not (gate / "worker").read_text():
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.05)
    worker = int((gate / "worker").read_text())
    run.kill()  # the run's own process only, as the kernel's OOM killer or a `kill -9 PID` would
    run.communicate(timeout=60)
    deadline = time.monotonic() + 30
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    died = time.monotonic() - deadline + 30
    assert not alive(worker)
    assert died < 5, f"the corpus process lived on {died:.1f} s after its run"
    _assert_releases_intact(curated, "1.0.0", ["1.0.0", "1.1.0"] if point in ("rename", "ledger") else ["1.0.0"])

    killed_run = max((curated / "runs").iterdir())
    entry = steps.run(raw, curated, shard_size=2)
    _assert_releases_intact(curated, "1.1.0", ["1.0.0", "1.1.0"])
    assert _leftovers(curated) == [] and entry["balanced"] and entry["released"] == 5
    killed_ledger = tables.read_record(killed_run / "ledger.json")
    if point == "ledger":  # its ledger said published; the next run removed the release and corrected the ledger
        assert ReleaseOutcome.from_record(killed_ledger["release"]) == ReleaseOutcome(Result.INTERRUPTED, "1.1.0")
    else:
        assert killed_ledger is None or not killed_ledger["release"]["published"]


def _prefect_run_started(raw, curated, log: Path, **popen) -> tuple[subprocess.Popen, str]:
    """``commentary run`` under Prefect, once its temporary API server and its whole-corpus process run; returns the run
    and the environment mark of every process it starts."""
    name, value = "COMMENTARY_KILL_TREE", f"{os.getpid()}-{time.monotonic_ns()}"
    with log.open("w") as output:  # a file, not a pipe: a surviving child would hold a pipe open
        run = subprocess.Popen([sys.executable, "-m", "commentary.cli", "run", "--raw", str(raw), "--curated", str(curated)],
                               cwd=REPO, env={**os.environ, name: value}, stdout=output, stderr=subprocess.STDOUT, **popen)
    mark = f"{name}={value}"
    deadline = time.monotonic() + 240
    while not all(any(part in command for command in processes_marked(mark).values()) for part in ("create_app", "multiprocessing")):
        assert run.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    return run, mark


def _assert_gone_and_the_next_run_publishes(mark: str, raw, curated) -> None:
    deadline = time.monotonic() + 10
    while processes_marked(mark) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_marked(mark) == {}
    entry = steps.run(raw, curated, shard_size=2)
    assert entry["balanced"] and entry["released"] == 5 and not any(reader.verify_all(curated).values())
    assert _leftovers(curated) == []


def test_a_killed_prefect_run_takes_its_api_server_and_corpus_process_with_it(grown, tmp_path):
    """``commentary run`` under Prefect, killed with SIGKILL while its temporary API server and its whole-corpus
    process run: every process it started dies with it, and the next run publishes on an intact release."""
    raw, curated = grown
    run, mark = _prefect_run_started(raw, curated, tmp_path / "run.log")
    run.kill()
    run.wait(timeout=60)
    _assert_gone_and_the_next_run_publishes(mark, raw, curated)


def test_ctrl_c_at_the_terminal_interrupts_a_prefect_run_at_once_with_exit_130(grown, tmp_path):
    """A Ctrl-C reaches the run's whole process group, its temporary API server not included: the run stops with exit
    130 and takes every process it started with it (the server used to die first, and the run then retried it for a
    minute and exited 70)."""
    raw, curated = grown
    log = tmp_path / "run.log"
    run, mark = _prefect_run_started(raw, curated, log, start_new_session=True)  # a terminal's foreground group of its own
    os.killpg(run.pid, signal.SIGINT)
    assert run.wait(timeout=30) == 130, log.read_text()[-3000:]
    assert log.read_text().rstrip().endswith("commentary run: interrupted")
    _assert_gone_and_the_next_run_publishes(mark, raw, curated)


def test_a_second_run_on_the_same_folder_exits_with_a_clear_message(grown, capsys):
    raw, curated = grown
    first = _start(raw, curated, "hold")
    try:
        deadline = time.monotonic() + 120
        while not (curated.parent / "started").exists():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        with pytest.raises(locking.RunLocked, match=f"another run is using .*pid {first.pid}"):
            steps.run(raw, curated)
        assert cli.main(["run", "--inline", "--raw", str(raw), "--curated", str(curated)]) == cli.EXIT_LOCKED
        assert "another run is using" in capsys.readouterr().err
    finally:
        (curated.parent / "go").touch()
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    _assert_releases_intact(curated, "1.1.0", ["1.0.0", "1.1.0"])
    assert len(list((curated / "runs").iterdir())) == 2  # the refused runs created no run folder


def test_the_prefect_flow_takes_the_same_lock(grown):
    from flows.pipeline import run_pipeline

    raw, curated = grown
    with locking.run_lock(curated), pytest.raises(locking.RunLocked):
        run_pipeline.fn(raw=str(raw), curated=str(curated))


def _no_space(monkeypatch, where: str):
    """Make Parquet writes to paths containing ``where`` fail as on a full disk (whole files and streamed ones)."""
    write_table = tables.pq.write_table

    def half_a_file(path):
        with open(path, "wb") as handle:
            handle.write(b"PAR1 half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    def write_or_fail(table, path, **kwargs):
        return half_a_file(path) if where in str(path) else write_table(table, path, **kwargs)

    class WriterOrFail(tables.pq.ParquetWriter):
        def __init__(self, path, *args, **kwargs):
            if where in str(path):
                half_a_file(path)
            super().__init__(path, *args, **kwargs)

    monkeypatch.setattr(tables.pq, "write_table", write_or_fail)
    monkeypatch.setattr(tables.pq, "ParquetWriter", WriterOrFail)


def test_a_full_disk_while_writing_the_release_publishes_nothing(grown, monkeypatch):
    raw, curated = grown
    _no_space(monkeypatch, ".staging-")
    with pytest.raises(tables.DiskFull, match="nothing was published, LATEST is still 1.0.0"):
        steps.run(raw, curated)
    _assert_releases_intact(curated, "1.0.0", ["1.0.0"])
    assert _leftovers(curated) == []
    monkeypatch.undo()
    assert steps.run(raw, curated)["release"]["version"] == "1.1.0"


def test_a_full_disk_during_a_stage_is_a_clean_failure_of_the_command(grown, monkeypatch, capsys):
    raw, curated = grown
    earlier_runs = set((curated / "runs").iterdir())
    _no_space(monkeypatch, "stages/clean/")
    assert cli.main(["run", "--inline", "--raw", str(raw), "--curated", str(curated)]) == cli.EXIT_DISK_FULL
    message = capsys.readouterr().err
    assert "no space left on the device" in message and "nothing was published" in message
    _assert_releases_intact(curated, "1.0.0", ["1.0.0"])
    assert set((curated / "runs").iterdir()) == earlier_runs  # what the failed run wrote was removed
    assert "the run's folder was removed" in message


def test_run_folders_beyond_the_retention_setting_are_removed_but_the_cached_and_released_runs_kept(grown, monkeypatch):
    raw, curated = grown
    released_run = reader.read_manifest(curated)["run_id"]
    for n in range(5):
        (curated / "runs" / f"20000101T00000{n}000000Z").mkdir()
    monkeypatch.setattr("commentary.locking.KEEP_RUNS", 2)
    entry = steps.run(raw, curated, shard_size=2)
    runs = sorted(p.name for p in (curated / "runs").iterdir())
    assert runs == ["20000101T000004000000Z", released_run, entry["run_id"]]  # the two newest when it started, and its own
    assert cache.load_index_run(curated) == entry["run_id"]
    assert locking.prune_runs(curated, 0) == ["20000101T000004000000Z", released_run]  # this run, cached and of LATEST, stays
    assert [p.name for p in (curated / "runs").iterdir()] == [entry["run_id"]]


def _mount_tmpfs(path, size: str) -> bool:
    path.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True).returncode == 0


def test_a_really_full_disk_publishes_nothing(grown, tmp_path):
    """The same on a small tmpfs that really fills up (needs root and permission to mount)."""
    raw, baseline_curated = grown
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "8m"):
        pytest.skip("cannot mount a tmpfs here; the injected disk-full tests cover this")
    try:
        curated = disk / "curated"
        shutil.copytree(baseline_curated, curated)
        free = shutil.disk_usage(disk).free
        with open(disk / "filler", "wb") as handle:  # leave 64 KiB: less than one run needs
            handle.write(bytes(free - 64 * 1024))
        with pytest.raises(tables.DiskFull, match="nothing was published"):
            steps.run(raw, curated, shard_size=2)
        _assert_releases_intact(curated, "1.0.0", ["1.0.0"])
        assert _leftovers(curated) == []
        (disk / "filler").unlink()
        shutil.rmtree(curated / "runs")
        assert steps.run(raw, curated, shard_size=2)["release"]["version"] == "1.1.0"
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_stale_staging_and_a_pending_release_are_removed_when_the_next_run_starts(grown):
    raw, curated = grown
    releases = reader.releases_dir(curated)
    (releases / ".staging-20200101T000000000000Z" / "articles").mkdir(parents=True)
    shutil.copytree(releases / "1.0.0", releases / "1.1.0")  # renamed into place, never made LATEST
    (releases / ".pending").write_text("1.1.0\n")
    with locking.run_lock(curated) as recovered:
        assert recovered == [".staging-20200101T000000000000Z", "1.1.0"]
    assert _leftovers(curated) == []
    _assert_releases_intact(curated, "1.0.0", ["1.0.0"])


def test_a_cached_run_missing_a_shard_file_is_not_reused(grown, caplog):
    raw, curated = grown
    last_run = max((curated / "runs").iterdir())
    (last_run / "stages" / "clean" / "shard-00000.parquet").unlink()
    entry = steps.run(raw, curated, shard_size=2)
    assert entry["balanced"] and entry["released"] == 5 and entry["release"]["version"] == "1.1.0"
    assert any("lacks some of its shard files" in message for message in caplog.messages)
    assert steps.run(raw, curated, shard_size=2)["release"]["reason"] == Result.NOTHING_CHANGED


def test_a_run_with_nothing_new_on_a_damaged_latest_release_says_it_is_damaged(grown):
    raw, curated = grown
    assert steps.run(raw, curated, shard_size=2)["release"]["version"] == "1.1.0"
    with (reader.releases_dir(curated) / "1.1.0" / "report.html").open("a") as report:
        report.write("x")
    with pytest.raises(publishing.BaseReleaseDamaged, match="nothing changed since release 1.1.0, but it does not match its manifest"):
        steps.run(raw, curated, shard_size=2)


@pytest.mark.parametrize("record", ["ledger.json", "clean.json"])
@pytest.mark.parametrize("damage", ["", '{"run_dir": ', "[1, 2]"])
def test_a_damaged_run_record_is_skipped_with_a_warning(grown, caplog, record, damage):
    raw, curated = grown
    last_run = max((curated / "runs").iterdir())
    (last_run / "ledger.json" if record == "ledger.json" else cache.index_path(curated)).write_text(damage)
    entry = steps.run(raw, curated, shard_size=2)
    assert entry["balanced"] and entry["released"] == 5 and entry["release"]["version"] == "1.1.0"
    assert any("skipped" in message and record in message for message in caplog.messages)
    assert steps.run(raw, curated, shard_size=2)["release"]["reason"] == Result.NOTHING_CHANGED


def test_start_up_clean_up_waits_for_a_publisher(grown):
    _, curated = grown
    (reader.releases_dir(curated) / ".staging-other-run").mkdir()
    with reader.publish_lock(curated):
        cleaner = subprocess.Popen([sys.executable, "-c", "import sys; from pathlib import Path; from commentary.release import publish; "
                                    "print(publish.clean_unfinished(Path(sys.argv[1])))", str(curated)],
                                   cwd=REPO, stdout=subprocess.PIPE, text=True)
        time.sleep(3)
        assert cleaner.poll() is None  # it waits while a publisher holds the lock
        assert (reader.releases_dir(curated) / ".staging-other-run").is_dir()
    assert cleaner.communicate(timeout=60)[0].strip() == "['.staging-other-run']"


def test_verify_waits_for_a_publish_going_on_instead_of_failing_on_its_half_moved_link(grown):
    raw, curated = grown
    steps.run(raw, curated)  # 1.1.0; the folder, as a publish holds it between renaming 1.1.0 and moving the link:
    link = curated / reader.LATEST_LINK
    with reader.publish_lock(curated):
        link.unlink()
        link.symlink_to("releases/1.0.0")
        checker = subprocess.Popen([sys.executable, "-m", "commentary.cli", "verify", "--curated", str(curated)],
                                   cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(3)
        assert checker.poll() is None  # it waits while the publisher holds the lock
        link.unlink()
        link.symlink_to("releases/1.1.0")
    output = checker.communicate(timeout=60)[0]
    assert checker.returncode == 0 and "FAIL" not in output and "ok   LATEST" in output


def test_an_existing_release_is_never_overwritten(grown):
    raw, curated = grown
    (reader.releases_dir(curated) / "1.1.0").mkdir()  # not a release (no manifest), but in the way
    with pytest.raises(FileExistsError, match="never overwritten"):
        steps.run(raw, curated)
    assert reader.latest_version(curated) == "1.0.0" and _leftovers(curated) == []


def test_an_extractor_or_cleaner_error_rejects_only_that_document(tmp_path, articles, monkeypatch):
    (tmp_path / "good.txt").write_text(text_page(*articles[0]))
    (tmp_path / "bad-text.txt").write_text(text_page(*articles[1]) + "TRIGGER\n")
    (tmp_path / "bad.html").write_text("<html><body><p>TRIGGER</p></body></html>")
    clean_shard, read_page = stages.clean_shard, html.read_page

    def fragile_clean(texts, **options):
        if any("TRIGGER" in t for t in texts):
            raise ValueError("cleaner bug\nsecond line")
        return clean_shard(texts, **options)

    def fragile_read(page, url=None):
        raise RecursionError("maximum recursion depth exceeded") if "TRIGGER" in page else read_page(page, url)

    monkeypatch.setattr(stages, "clean_shard", fragile_clean)
    monkeypatch.setattr(html, "read_page", fragile_read)
    ingested, _, _ = stages.ingest(tmp_path, discover(tmp_path))
    articles_out, _, _, rejects, _ = stages.clean(ingested)
    assert articles_out["source_path"].to_list() == ["good.txt"]
    assert {(r["source_path"], r["reason"], r["detail"]) for r in rejects} == {
        ("bad-text.txt", "cleaning-failed", "ValueError: cleaner bug"),
        ("bad.html", "extraction-failed", "RecursionError: maximum recursion depth exceeded"),
    }


def test_an_unexpected_error_on_one_file_rejects_only_that_file(tmp_path, articles, monkeypatch):
    (tmp_path / "good.txt").write_text(text_page(*articles[0]))
    (tmp_path / "odd.txt").write_text(text_page(*articles[1]))
    read_raw = stages.read_raw
    monkeypatch.setattr(stages, "read_raw", lambda root, raw: (_ for _ in ()).throw(KeyError("odd"))
                        if raw.rel_path == "odd.txt" else read_raw(root, raw))
    ingested, rejects, _ = stages.ingest(tmp_path, discover(tmp_path))
    assert ingested["source_path"].to_list() == ["good.txt"]
    assert [(r["source_path"], r["reason"]) for r in rejects] == [("odd.txt", "ingest-failed")]
    assert pl.DataFrame(rejects)["detail"].to_list() == ["KeyError: 'odd'"]
