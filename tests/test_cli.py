"""The command line: errors a person can act on, the run's summary, and the release commands releases, list, diff,
show (verify is tested with the releases)."""
from __future__ import annotations

import errno
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import fsspec
import polars as pl
import pytest
from builders import build_release, replace_step

from commentary import cli, load, locking
from commentary.cli import main
from commentary.ingest import doc_id_for
from conftest import REPO, SEEDS

CHANGED = "000_019dbd7b0e031552.txt"


def test_releases_diff_and_show_after_one_raw_file_changed(raw_copy, tmp_path, capsys):
    curated = str(tmp_path / "curated")
    build_release(raw_copy, tmp_path / "curated")
    text = (raw_copy / CHANGED).read_text()
    (raw_copy / CHANGED).write_text(text.replace("Low-level talks", "Low-level negotiations"))
    assert build_release(raw_copy, tmp_path / "curated")["version"] == "1.0.1"
    capsys.readouterr()

    assert main(["releases", "--curated", curated]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["version", "created", "change", "articles"]
    assert lines[1].split()[:2] == ["1.0.1", "(latest)"] and lines[1].split()[4:] == ["patch", "5", "5", "0", "0", "0", "1"]
    assert lines[2].split()[0] == "1.0.0" and lines[2].split()[3:] == ["first", "5", "5", "0", "5", "0", "0"]

    assert main(["diff", "1.0.0", "1.0.1", "--curated", curated]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1.0.0 -> 1.0.1: patch change\n0 articles added, 0 removed, 1 modified.")
    assert f"| modified | {doc_id_for(CHANGED)} | {CHANGED} |" in out
    assert "Fields changed: `source_sha256` (1), `body` (1), `body_sha256` (1)." in out

    assert main(["show", doc_id_for(CHANGED), "--curated", curated]) == 0
    out = capsys.readouterr().out
    assert "Low-level negotiations" in out and "1.0.1    modified (source_sha256, body, body_sha256)" in out
    assert "1.0.0    added" in out
    removed = load(table="furniture", engine="polars", curated=curated).filter(pl.col("doc_id") == doc_id_for(CHANGED))
    assert f"furniture removed ({removed.height} lines):" in out and removed.height
    assert all(f"{n:5} {category:12} {rule}" in out for n, category, rule in removed.select("line_no", "category", "rule_id").rows())

    assert main(["show", "ffffffffffffffff", "--curated", curated]) == 2
    assert "no article ffffffffffffffff in release 1.0.1" in capsys.readouterr().err


def test_show_into_a_closed_pipe_stops_quietly(raw_copy, tmp_path):
    """``commentary show ID | head`` must not print a traceback when the reader leaves early."""
    build_release(raw_copy, tmp_path / "curated")
    process = subprocess.Popen([sys.executable, "-m", "commentary.cli", "show", doc_id_for(CHANGED),
                                "--curated", str(tmp_path / "curated")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    errors = process.stderr.read()
    assert process.wait(timeout=120) == 141 and errors == b""


def _one_line_error(capsys) -> str:
    """What the command wrote on stderr, checked to be one line and no traceback; nothing on stdout."""
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


@pytest.fixture
def paths(tmp_path):
    """Places for the wrong arguments: a file, an empty folder, a raw folder with one page."""
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "empty").mkdir()
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "page.txt").write_text("Title\n\nBody.\n")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    fsspec.filesystem("memory").makedirs("/empty-raw/empty-folder", exist_ok=True)  # an object store's folder without files
    return tmp_path


WRONG_ARGUMENTS = [  # (arguments under tmp_path, exit code, what the message must say)
    (["--raw", "missing"], cli.EXIT_USAGE, "raw folder {t}/missing does not exist: create it"),
    (["--raw", "a-file"], cli.EXIT_USAGE, "--raw {t}/a-file is a file: pass the folder"),
    (["--raw", "empty"], cli.EXIT_USAGE, "raw folder {t}/empty holds no files"),
    (["--curated", "a-file"], cli.EXIT_USAGE, "--curated {t}/a-file is a file"),
    (["--curated", "a-file/curated"], cli.EXIT_USAGE, "cannot be created: {t}/a-file is a file"),
    (["--curated", "raw/curated"], cli.EXIT_USAGE, "lies inside the raw folder"),
    (["--curated", "dangling"], cli.EXIT_USAGE, "cannot be created: {t}/dangling is a link to {t}/nowhere, which does not exist"),
    (["--curated", "dangling/curated"], cli.EXIT_USAGE, "cannot be created: {t}/dangling is a link to {t}/nowhere, which does not exist"),
    (["--curated", "cur\udcffb"], cli.EXIT_USAGE, "--curated {t}/cur\\xffb is not a UTF-8 name"),
    (["--shard-size", "0"], cli.EXIT_USAGE, "--shard-size must be at least 1"),
    (["--mirror", "nosuch://bucket/curated"], cli.EXIT_USAGE, "--mirror nosuch://bucket/curated names no file system"),
    (["--raw", "nosuch://bucket/raw"], cli.EXIT_USAGE, "--raw nosuch://bucket/raw names no file system"),
    (["--raw", "memory://empty-raw"], cli.EXIT_USAGE, "raw folder memory://empty-raw holds no files"),
    (["--mirror", "raw/copy"], cli.EXIT_USAGE, "--mirror {t}/raw/copy lies inside the raw folder"),
]


@pytest.mark.parametrize("mode", [["--inline"], []], ids=["inline", "prefect"])
@pytest.mark.parametrize("wrong, code, message", WRONG_ARGUMENTS, ids=[" ".join(w) for w, _, _ in WRONG_ARGUMENTS])
def test_wrong_arguments_stop_the_run_with_one_line_before_anything_starts(paths, capsys, mode, wrong, code, message):
    given = dict(zip(wrong[::2], wrong[1::2], strict=True))
    arguments = {"--raw": str(paths / "raw"), "--curated": str(paths / "curated"), "--shard-size": "500"}
    arguments |= {name: value if name == "--shard-size" or "://" in value else str(paths / value) for name, value in given.items()}
    assert main(["run", *mode, *(item for pair in arguments.items() for item in pair)]) == code
    assert message.format(t=paths) in _one_line_error(capsys)
    assert not (paths / "curated").exists()  # nothing created: no curated folder, no .run.lock


@pytest.mark.parametrize("value", ["", "abc", "inf", "-1"])
def test_a_setting_s_environment_variable_that_holds_no_value_it_can_use_stops_the_run_in_one_line(paths, value):
    # The settings read it when the package is imported: a new process. Importing the package (readers) still works.
    environment = {**os.environ, "COMMENTARY_MIN_FILE_AGE_SECONDS": value}
    done = subprocess.run([sys.executable, "-m", "commentary.cli", "run", "--inline", "--raw", str(paths / "raw"), "--curated",
                           str(paths / "curated")], capture_output=True, text=True, cwd=REPO, env=environment)
    assert subprocess.run([sys.executable, "-c", "from commentary import load"], cwd=REPO, env=environment).returncode == 0
    assert done.returncode == cli.EXIT_USAGE and done.stdout == "" and done.stderr == (
        f"commentary run: $COMMENTARY_MIN_FILE_AGE_SECONDS must be a number of seconds, 0 or more, not {value!r}\n")
    assert not (paths / "curated").exists()


def test_file_names_read_the_same_under_a_locale_of_another_encoding(raw_copy, tmp_path):
    # An ASCII locale (no coercion to UTF-8, no UTF-8 mode): Python would decode file names as ASCII (or Latin-1 under a
    # Latin-1 locale), so "café.txt" failed the run, or got another source_path and doc_id than under a UTF-8 locale.
    first = sorted(raw_copy.glob("*.txt"))[0]
    first.rename(raw_copy / "café.txt")
    command = [sys.executable, "-m", "commentary.cli", "run", "--inline", "--raw", str(raw_copy), "--curated", str(tmp_path / "curated")]
    ascii_locale = {**os.environ, "LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    assert subprocess.run(command, cwd=REPO, env=ascii_locale, capture_output=True).returncode == cli.EXIT_OK
    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert again.returncode == cli.EXIT_OK and "nothing changed since release 1.0.0" in again.stdout
    assert "café.txt" in load(curated=tmp_path / "curated", engine="polars")["source_path"].to_list()


def test_the_command_run_again_in_utf8_mode_is_the_one_started_not_a_package_in_the_current_folder(tmp_path):
    (tmp_path / "commentary").mkdir()
    (tmp_path / "commentary" / "__init__.py").write_text("raise SystemExit('a decoy package was imported')\n")
    ascii_locale = {**os.environ, "LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    done = subprocess.run([str(Path(sys.executable).parent / "commentary"), "--help"], cwd=tmp_path, env=ascii_locale,
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("usage: commentary") and "decoy" not in done.stderr


@pytest.mark.parametrize("wrong, message", [
    (["--scheduler", "tcp://127.0.0.1:9"], "--scheduler is the address of a Dask scheduler: add --runner dask"),
    (["--inline", "--runner", "dask"], "--runner dask runs the shards through Prefect: leave out --inline"),
])
def test_runner_options_that_would_be_ignored_stop_the_run_in_one_line(paths, capsys, wrong, message):
    assert main(["run", "--raw", str(paths / "raw"), "--curated", str(paths / "curated"), *wrong]) == cli.EXIT_USAGE
    assert message in _one_line_error(capsys)
    assert not (paths / "curated").exists()


def test_a_curated_folder_on_a_read_only_disk_is_refused_in_one_line(paths, capsys):
    disk = paths / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(disk)],
                                           capture_output=True).returncode:
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        for curated in (disk, disk / "curated"):
            assert main(["run", "--inline", "--raw", str(paths / "raw"), "--curated", str(curated)]) == cli.EXIT_CANNOT_WRITE
            assert f"curated folder {curated} cannot be written" in _one_line_error(capsys)
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_held_lock_is_told_in_one_line_before_prefect_starts_and_the_lock_file_is_left_as_it_was(paths, capsys):
    curated = paths / "curated"
    with locking.run_lock(curated):
        before = (curated / ".run.lock").read_text()
        for mode in (["--inline"], []):
            assert main(["run", *mode, "--raw", str(paths / "raw"), "--curated", str(curated)]) == cli.EXIT_LOCKED
            assert f"another run is using {curated} (pid {os.getpid()}" in _one_line_error(capsys)
        assert (curated / ".run.lock").read_text() == before
    assert not (curated / "runs").exists()


@pytest.mark.parametrize("error", [KeyError("field"), ValueError("bad value"), FileNotFoundError("shard 3"), TimeoutError("no answer"),
                                   ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")])
def test_an_error_of_the_program_is_one_line_and_debug_shows_its_traceback(paths, capsys, monkeypatch, error):
    """Also a TimeoutError or a refused connection that no client of a service raised."""
    def broken(*args):
        raise error

    replace_step(monkeypatch, "plan", broken)
    arguments = ["run", "--inline", "--raw", str(paths / "raw"), "--curated", str(paths / "curated")]
    assert main(arguments) == cli.EXIT_SOFTWARE  # never "wrong arguments": the user's arguments were checked
    assert f"internal error ({type(error).__name__}: {str(error)}); rerun with --debug" in _one_line_error(capsys)
    with pytest.raises(type(error)):
        main([*arguments, "--debug"])


def test_an_object_store_that_refuses_the_credentials_is_named_not_a_folder_without_permission(paths, capsys, monkeypatch):
    """s3fs raises a PermissionError from botocore's ClientError when the object store denies access."""
    s3fs = pytest.importorskip("s3fs")
    from botocore.exceptions import ClientError

    def refused(*args):
        raise s3fs.errors.translate_boto_error(ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "PutObject"))

    replace_step(monkeypatch, "plan", refused)
    mirror = "s3://bucket/curated"
    arguments = ["run", "--inline", "--raw", str(paths / "raw"), "--curated", str(paths / "curated"), "--mirror", mirror]
    assert main(arguments) == cli.EXIT_UNAVAILABLE  # not 73, "check who owns the folder"
    assert (f"commentary run: the object store of {mirror} refused the credentials (AccessDenied): check them and the bucket's "
            "permissions; nothing was published\n") == _one_line_error(capsys)


def test_unknown_releases_and_articles_are_usage_errors(tmp_path, capsys):
    for command in (["show", "0123"], ["list"], ["releases"], ["diff", "1.0.0"]):
        assert main([*command, "--curated", str(tmp_path)]) == cli.EXIT_USAGE
        assert re.search(f"no release (1.0.0 )?in {tmp_path}", _one_line_error(capsys))


@pytest.mark.parametrize("command", [["run", "--inline", "--raw", "RAW", "--curated", ""], ["run", "--raw", "", "--curated", "C"],
                                     ["releases", "--curated", ""]])
def test_an_empty_folder_argument_is_refused_not_read_as_the_current_folder(paths, capsys, monkeypatch, command):
    monkeypatch.chdir(paths / "empty")
    given = [str(paths / "raw") if item == "RAW" else str(paths / "curated") if item == "C" else item for item in command]
    assert main(given) == cli.EXIT_USAGE
    assert re.search("--(raw|curated) is empty: pass a folder", _one_line_error(capsys))
    assert not any((paths / "empty").iterdir()) and not (paths / "curated").exists()


@pytest.mark.parametrize("version", [".", "..", "/", "1.0"])
def test_a_version_that_is_not_major_minor_patch_names_no_release(tmp_path, capsys, version):
    (tmp_path / "releases").mkdir()
    for command in (["verify", version], ["list", "--version", version]):
        assert main([*command, "--curated", str(tmp_path)]) == cli.EXIT_USAGE
        assert f"no release {version} in {tmp_path}" in _one_line_error(capsys)


def test_a_release_with_an_incomplete_manifest_is_named_and_the_others_listed(raw_copy, tmp_path, capsys):
    curated = tmp_path / "curated"
    build_release(raw_copy, curated)
    (raw_copy / "extra.txt").write_text((raw_copy / sorted(p.name for p in raw_copy.iterdir())[0]).read_text() + "\nOne more line of text.\n")
    assert build_release(raw_copy, curated)["version"] == "1.1.0"
    manifest_path = curated / "releases" / "1.0.0" / "manifest.json"
    manifest_path.write_text(json.dumps({key: value for key, value in json.loads(manifest_path.read_text()).items()
                                         if key != "counts"}))
    assert main(["releases", "--curated", str(curated)]) == cli.EXIT_FAILED
    out, err = capsys.readouterr()
    assert "1.1.0 (latest)" in out and "1.0.0 " not in out
    assert "1.0.0: its manifest is missing, unreadable or incomplete; see commentary verify 1.0.0" in err
    assert main(["verify", "1.0.0", "--curated", str(curated)]) == cli.EXIT_FAILED  # as the message says, verify tells why
    assert "1.0.0/manifest.json: incomplete (no valid counts)" in capsys.readouterr().out
    manifest_path.write_text('{"files": []}')
    assert main(["releases", "--curated", str(curated)]) == cli.EXIT_FAILED and "1.0.0: its manifest" in capsys.readouterr().err
    (curated / "releases" / "1.0.0" / "manifest.json").unlink()
    assert main(["releases", "--curated", str(curated)]) == cli.EXIT_FAILED and "1.0.0: its manifest is missing" in capsys.readouterr().err


def test_a_damaged_latest_release_and_a_read_only_file_system_are_not_errors_of_the_program():
    from commentary.release.publish import BaseReleaseDamaged

    assert cli._explain(BaseReleaseDamaged("the latest release 1.0.0 does not match its manifest"))[0] == cli.EXIT_USAGE
    code, message = cli._explain(OSError(errno.EROFS, "Read-only file system", "/c/releases/.staging-1"))
    assert code == cli.EXIT_CANNOT_WRITE and message.startswith("read-only file system: /c/releases/.staging-1")


def test_a_process_of_the_run_killed_by_the_system_is_named_so():
    from concurrent.futures.process import BrokenProcessPool

    code, message = cli._explain(BrokenProcessPool("A child process terminated abruptly, the process pool is not usable anymore"))
    assert code == cli.EXIT_SOFTWARE and message.startswith("a process of the run died (killed by a signal")


def test_diff_limit_is_a_count(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["diff", "1.0.0", "--limit", "-1", "--curated", str(tmp_path)])
    assert stopped.value.code == cli.EXIT_USAGE and "'-1' is not a whole number of at least 0" in capsys.readouterr().err


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The summaries (stdout) of a first run (inline) on the seeds and a broken page, and of a second run (under
    Prefect, with its temporary API server) on the same files."""
    root = tmp_path_factory.mktemp("runs")
    shutil.copytree(SEEDS, root / "raw")
    (root / "raw" / "broken.txt.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    arguments = ["run", "--raw", str(root / "raw"), "--curated", str(root / "curated")]
    outputs = []
    for extra in (["--inline"], ["--json"]):
        process = subprocess.run([sys.executable, "-m", "commentary.cli", *arguments, *extra], capture_output=True, text=True,
                                 cwd=REPO, timeout=600)
        assert process.returncode == 0 and "Error logging to API" not in process.stderr, process.stderr
        outputs.append(process.stdout)
    return root / "curated", *outputs


def test_a_run_ends_with_a_summary_that_says_what_became_of_the_files_and_where_to_look(two_runs):
    curated, first, _ = two_runs
    (run_id,) = [p.name for p in sorted((curated / "runs").iterdir())][:1]
    lines = first.splitlines()
    assert lines[0] == f"Run {run_id}: 6 raw files seen"
    assert lines[1] == "  5 articles, 0 duplicates, 1 rejected (corrupt-gzip 1), 0 repaired"
    assert "Published release 1.0.0." in lines
    assert f"  release  {curated}/releases/1.0.0" in lines and f"  report   {curated}/releases/1.0.0/report.html" in lines
    assert f"  rejects  {curated}/runs/{run_id}/rejects.parquet" in lines
    assert "{" not in first  # no dict, no JSON


def test_a_run_with_nothing_new_says_so_and_json_gives_the_ledger(two_runs):
    curated, _, second = two_runs
    entry = json.loads(second)
    assert entry["release"]["reason"] == "nothing changed since the latest release" and entry["release"]["version"] == "1.0.0"
    assert entry == json.loads((curated / "runs" / entry["run_id"] / "ledger.json").read_text())
    from commentary.progress import summary

    text = summary(entry, curated)
    assert "No new release: nothing changed since release 1.0.0, still the latest." in text
    assert "Published" not in text and "released" not in text


class _Stream(io.StringIO):
    def __init__(self, terminal: bool):
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


@pytest.mark.parametrize("terminal", [False, True], ids=["log", "terminal"])
def test_progress_shows_pages_per_second_and_the_time_left_as_lines_in_a_log_and_a_bar_on_a_terminal(terminal):
    from commentary.progress import Progress

    stream, logged = _Stream(terminal), []
    progress = Progress(("ingest", "clean"), shards=4, pages=400, stream=stream, interval=0.0, log=logged.append)
    progress.started -= 10.0  # ten seconds in
    progress.shard_done("ingest", 1.0, 100)
    progress.shard_done("clean", 1.0, 100)  # 100 pages through the last stage in 10 s: 300 left at 10 pages/s
    out = stream.getvalue()
    assert "ingest 1/4 | clean 1/4 shards | 10 pages/s | 0:30 left" in out
    bar = "\r\x1b[K[" + "#" * 6 + "." * 18 + "]  25% ingest 1/4"  # a quarter of the shards through the last stage
    assert (out.count("\r\x1b[K[") == 2 and bar in out and "\n" not in out) if terminal else (out.count("\n") == 2 and "\r" not in out)
    assert logged == ([] if terminal else [out.splitlines()[0].split("] ", 1)[1], out.splitlines()[1].split("] ", 1)[1]])
    progress.note("a line")
    assert stream.getvalue().endswith("] a line\n") and logged[-1] == "a line"
    if terminal:
        assert "\r\x1b[K[" in stream.getvalue().rsplit("\n", 2)[-2]  # the bar is cleared before a line is written


def test_a_check_that_raised_is_shown_in_the_summary_and_fails_the_command(tmp_path, capsys, monkeypatch):
    import datetime as dt

    import great_expectations.expectations as gxe

    from schemas import expectations

    shutil.copytree(SEEDS, tmp_path / "raw")
    raises = gxe.ExpectColumnValuesToBeBetween(column="published_date", min_value=dt.date(1990, 1, 1))  # date against datetime64
    monkeypatch.setattr(expectations, "suites", lambda: {"articles": [raises]})
    assert main(["run", "--inline", "--raw", str(tmp_path / "raw"), "--curated", str(tmp_path / "curated")]) == cli.EXIT_FAILED
    out = capsys.readouterr().out
    assert "quality: 0 of 1 expectations met; ERRORS (the check itself failed): articles: expect_column_values_to_be_between" in out
    assert "Published release 1.0.0." in out


def test_list_and_show_print_no_control_character_nor_direction_override_of_a_stored_field(tmp_path, capsys):
    from builders import article_frames, publish_frames

    frames = article_frames({"a.txt": "the original piece"})
    frames["articles"] = frames["articles"].with_columns(title=pl.lit("Red \x1b[31malert\x07"), outlet=pl.lit("\u202eNews Daily"))
    publish_frames(tmp_path, "r1", frames, {})
    assert main(["list", "--curated", str(tmp_path)]) == 0
    assert main(["show", doc_id_for("a.txt"), "--curated", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("Red [31malert") == 2 and "\x1b" not in out and "\x07" not in out
    assert out.count("News Daily") == 2 and "\u202e" not in out


def test_diff_counts_in_good_grammar_marks_added_copies_and_ignores_furniture_that_only_moved(tmp_path, capsys):
    from builders import article_frames, publish_frames

    bodies = {"a.txt": "the original piece", "b.txt": "another piece"}
    first = article_frames(bodies)
    publish_frames(tmp_path, "r1", first, {})
    second = article_frames(bodies | {"a.txt": "the original piece, longer", "c.txt": "the original piece"},
                            duplicate_of={"c.txt": "a.txt"})
    moved = pl.col("doc_id") == doc_id_for("a.txt")  # a.txt's removed line is the same, one line further down
    second["furniture"] = second["furniture"].with_columns(line_no=pl.when(moved).then(2).otherwise(pl.col("line_no")))
    publish_frames(tmp_path, "r2", second, {})
    assert main(["diff", "1.0.0", "--curated", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 article added, 0 removed, 1 modified." in out
    assert f"| added (duplicate of {doc_id_for('a.txt')}) | {doc_id_for('c.txt')} | c.txt |" in out
    assert f"| modified | {doc_id_for('a.txt')} | a.txt | Title of a.txt | body, word_count, body_sha256 |" in out


def test_show_of_an_article_with_a_copy_lists_the_copy_and_the_articles_own_removed_lines(raw_copy, tmp_path, capsys):
    (raw_copy / "zz_copy.txt").write_text((raw_copy / CHANGED).read_text() + "\nLeave a Reply\n")  # one removed line more
    build_release(raw_copy, tmp_path / "curated")
    capsys.readouterr()
    assert main(["show", doc_id_for(CHANGED), "--curated", str(tmp_path / "curated")]) == 0
    out = capsys.readouterr().out
    assert f"copy             {doc_id_for('zz_copy.txt')} zz_copy.txt" in out
    removed = load(table="furniture", engine="polars", curated=str(tmp_path / "curated")).filter(pl.col("doc_id") == doc_id_for(CHANGED))
    assert f"furniture removed ({removed.height} lines):" in out and removed.height


def test_a_curated_folder_named_with_glob_characters_is_an_ordinary_folder(tmp_path, raw_copy, capsys):
    curated = tmp_path / "curated [old]"
    assert main(["run", "--inline", "--raw", str(raw_copy), "--curated", str(curated)]) == cli.EXIT_OK
    assert main(["list", "--curated", str(curated)]) == cli.EXIT_OK
    assert "Time Has Almost Run Out With North Korea" in capsys.readouterr().out


def test_prefect_keeps_its_folder_in_the_home_folder_when_the_current_one_cannot_be_written(monkeypatch, tmp_path):
    from commentary import settings

    monkeypatch.delenv("PREFECT_HOME")
    monkeypatch.delenv("DASK_TEMPORARY_DIRECTORY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    settings.apply_environment_defaults(Path("/proc"))  # not writable, even by root
    assert os.environ["PREFECT_HOME"] == str(tmp_path / ".prefect")


def test_releases_are_listed_when_latest_holds_no_version(tmp_path, raw_copy, capsys):
    curated = tmp_path / "curated"
    assert main(["run", "--inline", "--raw", str(raw_copy), "--curated", str(curated)]) == cli.EXIT_OK
    (curated / "LATEST").write_text("")
    (curated / "releases" / ".pending").write_text("1.0.0\n")  # left by a run: it hides nothing while LATEST is unreadable
    capsys.readouterr()
    assert main(["releases", "--curated", str(curated)]) == cli.EXIT_FAILED
    out, err = capsys.readouterr()
    assert "1.0.0" in out and "(latest)" not in out and "not a release version" in err
    assert main(["verify", "1.0.0", "--curated", str(curated)]) == cli.EXIT_OK


def test_a_release_file_changed_by_hand_is_named_a_problem_of_the_data_not_of_the_program(tmp_path, raw_copy, capsys):
    curated = tmp_path / "curated"
    assert main(["run", "--inline", "--raw", str(raw_copy), "--curated", str(curated)]) == cli.EXIT_OK
    (part,) = (curated / "releases" / "1.0.0" / "articles").glob("*.parquet")
    data = bytearray(part.read_bytes())
    data[-300:-200] = bytes(100)  # the footer's schema and statistics
    part.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["list", "--curated", str(curated)]) == cli.EXIT_FAILED
    assert "a file of the release cannot be read" in _one_line_error(capsys)


def test_a_prefect_api_lost_during_the_run_is_told_with_its_own_exit_code(paths, capsys, monkeypatch):
    """The run's temporary API server is stopped once the run has made its plan; the run's next call to the API fails."""
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    from flows import api_server, pipeline

    servers, start, start_progress = [], api_server.start_api_server, pipeline.start_progress
    monkeypatch.setattr(api_server, "start_api_server", lambda stack: servers.append(start(stack)) or servers[-1])

    def lose_the_server(*arguments):
        servers[0].stop()
        return start_progress(*arguments)

    monkeypatch.setattr(pipeline, "start_progress", lose_the_server)
    with temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: 0}):  # not tried again for a minute
        assert main(["run", "--raw", str(paths / "raw"), "--curated", str(paths / "curated")]) == cli.EXIT_UNAVAILABLE
    # Prefect's log workers print their failed calls to the API on stderr too, one without a line break.
    assert (f"commentary run: the Prefect API at http://127.0.0.1:{servers[0].port} cannot be reached (connection refused): "
            "check that its server is running (PREFECT_API_URL; without it, the run starts its own); nothing was published\n"
            ) in capsys.readouterr().err
