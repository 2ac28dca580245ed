"""The whole flow on the sample pages under a Prefect test server; the release read back by DuckDB and Polars."""
from __future__ import annotations

import ctypes
import json
import os
from pathlib import Path
from types import SimpleNamespace

import duckdb
import polars as pl
import pytest
from prefect.testing.utilities import prefect_test_harness

from commentary import reader, steps
from commentary.release.manifest import sha256_file
from commentary.runfolder import RunFolder
from commentary.settings import SHARD_ALLOCATOR_ENVIRONMENT, WORKER_POLARS_THREADS
from commentary.clean.model import HTML_MODEL_PATH, MODEL_PATH, LineModel
from schemas.expectations import suites


@pytest.fixture(scope="module")
def runs(tmp_path_factory, gold):
    """The curated folder, the ledger entry of a first run and that of a second run on the same files."""
    from flows.pipeline import run_pipeline

    root = tmp_path_factory.mktemp("curated")
    raw = tmp_path_factory.mktemp("raw")
    for name in gold:
        (raw / name).write_bytes((Path(__file__).parents[1] / "raw" / name).read_bytes())
    (raw / "broken.txt.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with prefect_test_harness(server_startup_timeout=120):
        entry = run_pipeline(raw=str(raw), curated=str(root))
        again = run_pipeline(raw=str(raw), curated=str(root))
        seen_by_prefect.update(_what_prefect_recorded())
    return root, entry, again


#: What the Prefect API holds once the runs are done: flow run names, each run's log lines, the ledger artifacts.
seen_by_prefect: dict = {}


def _what_prefect_recorded() -> dict:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        flow_runs = {run.name: run.id for run in client.read_flow_runs()}
        logs = {name: [log.message for log in client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))]
                for name, run_id in flow_runs.items()}
        artifacts = [a.data for a in client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["ledger"])))]
    return {"logs": logs, "ledger_artifacts": artifacts}


@pytest.fixture(scope="module")
def curated(runs):
    return runs[:2]


def test_ledger_accounts_for_every_file(curated):
    root, entry = curated
    assert entry["seen"] == 6 and entry["released"] == 5 and entry["rejected"] == 1 and entry["duplicates"] == 0
    assert entry["rejected_by_reason"] == {"corrupt-gzip": 1}
    saved = json.loads((root / "runs" / entry["run_id"] / "ledger.json").read_text())
    assert saved["balanced"] and saved["release"]["published"]
    rejects = pl.read_parquet(root / "runs" / entry["run_id"] / "rejects.parquet")
    assert rejects.select("source_path", "stage", "reason").rows() == [("broken.txt.gz", "ingest", "corrupt-gzip")]


def test_every_expectation_runs_and_holds_on_the_seeds(curated):
    root, entry = curated
    report = json.loads((root / "runs" / entry["run_id"] / "quality.json").read_text())
    outcomes = [outcome for result in report["stages"].values() for outcome in result["expectations"]]
    assert report["errors"] == [] and [o for o in outcomes if o["error"]] == []  # none raised (published_date did)
    assert len(outcomes) == sum(map(len, suites().values())) and all(o["success"] for o in outcomes)


def test_the_seeds_language_is_detected_from_their_bodies(curated):
    root, _ = curated
    articles = pl.read_parquet(reader.release_path(root) / "articles" / "*.parquet")
    assert articles["language"].to_list() == ["en"] * 5
    assert articles["field_sources"].struct.field("language").to_list() == ["detected:py3langid"] * 5


def test_release_reads_back_in_duckdb(curated, gold):
    root, _ = curated
    folder = reader.release_path(root)
    con = duckdb.connect()
    rows = con.execute(
        f"select source_path, title, len(authors), body from read_parquet('{folder}/articles/*.parquet') order by source_path"
    ).fetchall()
    assert [r[0] for r in rows] == sorted(gold)
    for source_path, title, _, body in rows:
        assert title == gold[source_path]["fields"]["title"]
        assert body == gold[source_path]["body"].replace("\u00a0", " ")  # no-break spaces become spaces
    furniture = con.execute(f"select count(*) from read_parquet('{folder}/furniture/*.parquet')").fetchone()[0]
    assert furniture == sum(1 for doc in gold.values() for label in doc["lines"].values() if label != "body")


def test_release_reads_back_in_polars_with_its_types(curated, gold):
    root, _ = curated
    articles = pl.read_parquet(reader.release_path(root) / "articles" / "*.parquet")
    assert articles.schema["authors"] == pl.List(pl.String)
    assert articles.schema["published_date"] == pl.Date
    by_path = {row["source_path"]: row for row in articles.iter_rows(named=True)}
    for name, doc in gold.items():
        bodies = set(by_path[name]["body"].split("\n\n"))
        lines = (Path(__file__).parents[1] / "raw" / name).read_text().split("\n")
        furniture = {lines[int(n) - 1].strip() for n, label in doc["lines"].items() if label != "body"}
        assert not bodies & furniture


def test_manifest_and_latest_describe_the_release(curated):
    root, entry = curated
    manifest = reader.read_manifest(root)
    assert (root / "LATEST").read_text().strip() == manifest["version"] == entry["release"]["version"]
    assert manifest["counts"]["articles"] == 5
    assert {"articles/part-00000.parquet", "furniture/part-00000.parquet", "changes.parquet", "README.md",
            "datapackage.json", "report.html", "CHANGELOG.md"} <= set(manifest["files"])
    assert manifest["raw_fingerprint"] and manifest["lock_sha256"] and manifest["code_version"]
    assert (root / "runs" / entry["run_id"] / "quality" / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html").is_file()


def test_a_second_run_on_the_same_files_carries_the_first_forward(runs):
    root, first, again = runs
    assert again["release"] == {"published": False, "reason": "nothing changed since the latest release",
                                "version": first["release"]["version"], "same_inputs_as_run": first["run_id"]}
    counts = ("seen", "released", "rejected", "rejected_by_reason", "duplicates")
    assert again["balanced"] and {k: again[k] for k in counts} == {k: first[k] for k in counts}
    assert set(again["timings"]["stages"]) == {"ingest", "clean", "release"}
    assert sorted(p.name for p in reader.releases_dir(root).iterdir() if not p.name.startswith(".")) == [first["release"]["version"]]


def test_the_whole_corpus_steps_run_in_a_process_of_their_own_whose_errors_come_back(tmp_path):
    from flows.pipeline import corpus_process

    with corpus_process() as corpus_worker:
        assert corpus_worker.submit(os.getpid).result() != os.getpid()
        with pytest.raises(FileNotFoundError, match="ledger.json"):
            corpus_worker.submit(steps.carry_forward, SimpleNamespace(run=RunFolder(tmp_path)), RunFolder(tmp_path / "no-such-run")).result()


def test_the_shard_steps_run_in_processes_of_their_own_each_with_its_share_of_polars_threads():
    from flows.pipeline import shard_processes

    with shard_processes() as shard_worker:
        assert shard_worker.submit(os.getpid).result() != os.getpid()
        assert shard_worker.submit(pl.thread_pool_size).result() == WORKER_POLARS_THREADS
        with pytest.raises(FileNotFoundError):
            shard_worker.submit(pl.read_parquet, "no-such-shard.parquet").result()


class _MallocInfo(ctypes.Structure):
    """glibc's ``struct mallinfo2``."""

    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _mapped_on_its_own(size: int = 64 * 1024 * 1024) -> bool:
    """Whether glibc's malloc gives a block of ``size`` bytes a mapping of its own (by default, blocks of more than
    32 MiB), rather than a place in its heap, where freed memory is kept for reuse."""
    mallinfo2 = ctypes.CDLL(None).mallinfo2
    mallinfo2.restype = _MallocInfo
    before = mallinfo2().hblkhd
    block = bytearray(size)
    mapped = mallinfo2().hblkhd - before >= size
    del block
    return mapped


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "mallinfo2"), reason="needs glibc 2.33 or later")
def test_shard_processes_keep_freed_memory_for_the_next_shard():
    from flows.pipeline import shard_processes

    assert _mapped_on_its_own()
    with shard_processes() as shard_worker:
        assert not shard_worker.submit(_mapped_on_its_own).result()
        for name, value in SHARD_ALLOCATOR_ENVIRONMENT.items():
            assert shard_worker.submit(os.getenv, name).result() == value


def test_prefect_shows_each_run_under_its_run_id_with_its_progress_summary_and_ledger_table(runs):
    root, first, again = runs
    logs = seen_by_prefect["logs"]
    assert {first["run_id"], again["run_id"]} <= set(logs)  # flow runs named after the pipeline's runs
    assert any(line.startswith("clean done: 1 shards, 6 pages") for line in logs[first["run_id"]])
    assert any(line.startswith(f"Run {first['run_id']}: 6 raw files seen") and "Published release 1.0.0." in line
               for line in logs[first["run_id"]])
    assert any("No new release: nothing changed since release 1.0.0" in line for line in logs[again["run_id"]])
    (table,) = [a for a in seen_by_prefect["ledger_artifacts"] if f"# Run {first['run_id']}" in a]
    assert "| seen | 6 |" in table and "| released | 5 |" in table and "| rejected: corrupt-gzip | 1 |" in table
    assert "| version | 1.0.0 |" in table and "{" not in table


def test_the_release_names_each_cleaning_model_and_the_data_it_was_trained_on(curated):
    root, _ = curated
    folder = reader.release_path(root)
    manifest = json.loads((folder / "manifest.json").read_text())
    card_text = (folder / "README.md").read_text()
    for name, path in (("text", MODEL_PATH), ("html", HTML_MODEL_PATH)):
        datasets = LineModel.load(path).trained_on["datasets"]
        assert manifest["models"][name] == {"sha256": sha256_file(path), "trained_on": LineModel.load(path).trained_on}
        assert datasets and all(f"| {name} (`{manifest['models'][name]['sha256'][:12]}`) | {dataset} | {facts['pages']} | {facts['licence']} |"
                                in card_text for dataset, facts in datasets.items())


def test_a_run_whose_release_is_held_ends_failed_in_prefect_and_the_command_exits_1_as_before(tmp_path, capsys, monkeypatch):
    """Pages that are no articles: the quality gate holds the release (no articles). Its flow run used to end Completed."""
    from prefect import get_client

    from commentary import cli

    (tmp_path / "raw").mkdir()
    for n in range(3):
        (tmp_path / "raw" / f"{n}.txt").write_text(f"Title {n}\n\nToo short a page.\n")
    monkeypatch.setenv("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")  # as the command sets it

    def run(curated: Path, *options: str) -> tuple[int, str, str]:
        """The command's exit code, its summary (its run id and curated folder named alike) and its run id."""
        code = cli.main(["run", "--raw", str(tmp_path / "raw"), "--curated", str(curated), *options])
        (run_id,) = [p.name for p in (curated / "runs").iterdir()]
        return code, capsys.readouterr().out.replace(run_id, "RUN").replace(str(curated), "CURATED"), run_id

    inline = run(tmp_path / "inline", "--inline")
    with prefect_test_harness(server_startup_timeout=120):
        prefect = run(tmp_path / "prefect")
        with get_client(sync_client=True) as client:
            (flow_run,) = [found for found in client.read_flow_runs() if found.name == prefect[2]]
    assert prefect[:2] == inline[:2] and prefect[0] == cli.EXIT_FAILED
    assert "No release published: critical expectations failed" in prefect[1]
    assert flow_run.state.type.value == "FAILED"
    assert flow_run.state.message == "No release published: critical expectations failed (articles: expect_table_row_count_to_be_between())."
