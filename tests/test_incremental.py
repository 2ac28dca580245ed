"""Incremental runs: only new or changed files are read and cleaned, and the outputs equal a full run's."""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import polars as pl
import pytest

from commentary import cache, ingest, load, reader, settings, stages, steps, storage, tables
from commentary.ledger import Result
from commentary.runfolder import RunFolder
from tools import synthetic
from builders import build_release, clean_run, replace_step
from conftest import html_page


@pytest.fixture(autouse=True)
def settled(monkeypatch):
    """Stamp files however recently they were written (the settle rule has its own test)."""
    monkeypatch.setattr(cache, "STAMP_SETTLE_SECONDS", 0)


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """Names of the raw files and sidecars whose bytes were read, one entry per read."""
    calls, real_read = [], ingest._read_capped

    def counting_read(raw_root, path, limit):
        calls.append(path.name)
        return real_read(raw_root, path, limit)

    monkeypatch.setattr(ingest, "_read_capped", counting_read)
    return calls


@pytest.fixture
def cleaned_docs(monkeypatch) -> list[int]:
    """Number of documents handed to the cleaner, one entry per call."""
    calls, real_clean = [], stages.clean

    def counting_clean(ingested):
        calls.append(ingested.height)
        return real_clean(ingested)

    monkeypatch.setattr(stages, "clean", counting_clean)
    return calls


def _clean_run(raw: Path, curated: Path, shard_size: int = 4) -> Path:
    """Ingest and clean every shard, then remember the run as the cache; returns the run folder."""
    return clean_run(raw, curated, shard_size).run.path


def _outputs(run_dir: Path) -> dict[str, list]:
    """Everything the clean stage produced, in a comparable form."""
    rejects = tables.read_parquet(sorted((run_dir / "rejects").glob("clean-*.parquet")), tables.REJECTS)
    return {
        "articles": tables.read_parquet(RunFolder(run_dir).shards("clean"), tables.ARTICLES).sort("doc_id").rows(),
        "furniture": tables.read_parquet(RunFolder(run_dir).shards("furniture"), tables.FURNITURE).sort("doc_id", "line_no").rows(),
        "rejects": rejects.sort("source_path").rows(),
    }


@pytest.fixture
def corpus(tmp_path) -> Path:
    raw = tmp_path / "raw"
    synthetic.generate(raw, 10, furniture=False)
    (raw / "title-only.txt").write_text("Home\n")  # rejected by the cleaner: no body
    return raw


def test_an_unchanged_rerun_reads_and_cleans_nothing_and_gives_the_same_outputs(tmp_path, corpus, cleaned_docs, reads):
    first = _clean_run(corpus, tmp_path / "curated")
    assert sum(cleaned_docs) == 11 and len(reads) == 11
    assert _outputs(first)["rejects"] and _outputs(first)["articles"]
    cleaned_docs.clear()
    reads.clear()
    second = _clean_run(corpus, tmp_path / "curated")
    assert sum(cleaned_docs) == 0 and reads == []
    assert _outputs(second) == _outputs(first)
    assert all(os.path.samefile(ours, theirs) for table in ("ingest", "clean", "furniture", "dedup")
               for ours, theirs in zip(RunFolder(second).shards(table), RunFolder(first).shards(table), strict=True))


def test_a_touched_file_is_read_again_and_still_hits_the_clean_cache(tmp_path, corpus, cleaned_docs, reads):
    _clean_run(corpus, tmp_path / "curated")
    touched = sorted(corpus.rglob("page-*.txt"))[2]
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    cleaned_docs.clear()
    reads.clear()
    _clean_run(corpus, tmp_path / "curated")
    assert reads == [touched.name]
    assert sum(cleaned_docs) == 0


def test_a_page_whose_extraction_ran_out_of_time_is_cleaned_again_by_the_next_run(tmp_path, articles, monkeypatch, cleaned_docs):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "page.html").write_text(html_page(*articles[0]))
    (raw / "other.html").write_text(html_page(*articles[1]))
    monkeypatch.setattr(settings, "HTML_ISOLATE_CHARS", 0)  # every page extracted in a process of its own
    monkeypatch.setattr(settings, "HTML_TIMEOUT_SECONDS", 0.01)  # a loaded machine: no page in time
    first = _clean_run(raw, tmp_path / "curated")
    assert {row[0]: row[2] for row in _outputs(first)["rejects"]} == {"page.html": "too-costly", "other.html": "too-costly"}
    monkeypatch.setattr(settings, "HTML_TIMEOUT_SECONDS", 60)
    cleaned_docs.clear()
    second = _clean_run(raw, tmp_path / "curated")  # unchanged files: their shard would be linked whole
    assert sum(cleaned_docs) == 2 and not _outputs(second)["rejects"]
    assert sorted(row[1] for row in _outputs(second)["articles"]) == ["other.html", "page.html"]


def test_a_rewrite_that_keeps_size_and_mtime_is_still_read_and_cleaned(tmp_path, corpus, cleaned_docs, reads):
    first = _clean_run(corpus, tmp_path / "curated")
    changed = sorted(corpus.rglob("page-*.txt"))[4]
    before = changed.stat()
    text = changed.read_text()
    changed.write_text(text.replace("e", "E", 1))
    os.utime(changed, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert changed.stat().st_size == before.st_size and changed.stat().st_mtime_ns == before.st_mtime_ns
    cleaned_docs.clear()
    reads.clear()
    second = _clean_run(corpus, tmp_path / "curated")
    assert reads == [changed.name] and sum(cleaned_docs) == 1
    digest = {run: tables.read_parquet(RunFolder(run).shards("ingest"), tables.INGESTED)
              .filter(pl.col("source_path") == changed.relative_to(corpus).as_posix())["source_sha256"].item() for run in (first, second)}
    assert digest[first] != digest[second]


def test_a_file_changed_just_before_it_was_stamped_is_read_again_next_time(tmp_path, corpus, reads, monkeypatch):
    monkeypatch.setattr(cache, "STAMP_SETTLE_SECONDS", 3600)
    _clean_run(corpus, tmp_path / "curated")
    reads.clear()
    _clean_run(corpus, tmp_path / "curated")
    assert len(reads) == 11


def test_only_new_and_changed_files_are_read_and_cleaned_and_removed_files_leave(tmp_path, corpus, cleaned_docs, reads):
    _clean_run(corpus, tmp_path / "curated")
    synthetic.generate(corpus, 2, start=100, furniture=False)
    changed = sorted(corpus.rglob("page-*.txt"))[3]
    changed.write_text(synthetic.page(200, furniture=False))
    removed = sorted(corpus.rglob("page-*.txt"))[5]
    removed.unlink()
    described = sorted(corpus.rglob("page-*.txt"))[0]
    (corpus / "0000" / f"{described.name}.meta.json").write_text('{"outlet": "New Outlet"}')
    cleaned_docs.clear()
    reads.clear()
    incremental = _clean_run(corpus, tmp_path / "curated")
    assert sum(cleaned_docs) == 4  # two new, one changed, one with a new sidecar
    new = [p.name for p in sorted(corpus.rglob("page-*.txt"))[-2:]]
    assert sorted(reads) == sorted([*new, changed.name, described.name, f"{described.name}.meta.json"])
    full = _clean_run(corpus, tmp_path / "fresh")
    assert _outputs(incremental) == _outputs(full)
    paths = {row[1] for row in _outputs(incremental)["articles"]}
    assert removed.relative_to(corpus).as_posix() not in paths


def test_a_new_pipeline_fingerprint_cleans_everything_again(tmp_path, corpus, cleaned_docs, monkeypatch):
    _clean_run(corpus, tmp_path / "curated")
    monkeypatch.setattr(cache, "pipeline_fingerprint", lambda: "other code")
    cleaned_docs.clear()
    _clean_run(corpus, tmp_path / "curated")
    assert sum(cleaned_docs) == 11


def test_a_lost_cache_run_folder_means_a_full_run(tmp_path, corpus, cleaned_docs):
    first = _clean_run(corpus, tmp_path / "curated")
    shutil.rmtree(first)
    cleaned_docs.clear()
    _clean_run(corpus, tmp_path / "curated")
    assert sum(cleaned_docs) == 11


def test_fingerprint_covers_processing_code_only(tmp_path):
    (tmp_path / "commentary" / "clean").mkdir(parents=True)
    (tmp_path / "commentary" / "clean" / "text.py").write_text("RULE = 1\n")
    (tmp_path / "commentary" / "reader.py").write_text("VERSION = 1\n")
    before = cache.pipeline_fingerprint(tmp_path)
    (tmp_path / "commentary" / "reader.py").write_text("VERSION = 2\n")
    assert cache.pipeline_fingerprint(tmp_path) == before
    (tmp_path / "commentary" / "clean" / "text.py").write_text("RULE = 2\n")
    assert cache.pipeline_fingerprint(tmp_path) != before


def test_shards_cover_contiguous_doc_id_ranges(tmp_path, corpus):
    run_dir = _clean_run(corpus, tmp_path / "curated", shard_size=3)
    ranges = [pl.read_parquet(p)["doc_id"] for p in RunFolder(run_dir).shards("keys")]
    assert all(a.max() < b.min() for a, b in zip(ranges, ranges[1:]))
    assert all(r.is_sorted() for r in ranges)


def _files(*names: str) -> list[ingest.RawFile]:
    return [ingest.RawFile(name, "text", False) for name in names]


def _paths(shards: list[cache.Shard]) -> list[list[str]]:
    return [[raw.rel_path for raw in shard.files] for shard in shards]


def test_without_a_cache_shards_cover_ascending_doc_id_ranges():
    files = _files(*(f"{n}.txt" for n in range(7)))
    shards = cache.lay_out(files, None, [], 3)
    ids = [[ingest.doc_id_for(path) for path in paths] for paths in _paths(shards)]
    assert [len(s) for s in ids] == [3, 3, 1] and sum(ids, []) == sorted(ingest.doc_id_for(f.rel_path) for f in files)
    assert all(shard.reuse is None for shard in shards)


def test_cached_shards_are_kept_and_new_files_go_into_new_shards(tmp_path):
    cached = [["a.txt", "b.txt", "c.txt", "d.txt"], ["e.txt", "f.txt", "g.txt", "h.txt"], ["i.txt"]]
    files = _files("a.txt", "b.txt", "c.txt", "d.txt", "e.txt", "f.txt", "g.txt", "i.txt", "new1.txt", "new2.txt")
    shards = cache.lay_out(files, tmp_path, cached, 4)
    assert _paths(shards)[:2] == [sorted(c, key=ingest.doc_id_for) for c in (cached[0], ["e.txt", "f.txt", "g.txt"])]
    assert sorted(sum(_paths(shards)[2:], [])) == ["i.txt", "new1.txt", "new2.txt"]  # the shard under half full joins the new files
    assert [shard.reuse for shard in shards[:2]] == [cache.Reuse(tmp_path, (0,)), cache.Reuse(tmp_path, (1,))]
    assert shards[0].reuse.twin == 0 and shards[2].reuse == cache.Reuse(tmp_path, (2,))


def test_too_many_overlapping_shards_mean_a_fresh_layout(tmp_path, monkeypatch):
    cached = [[f"{n}.txt" for n in range(k, k + 2)] for k in range(0, 12, 2)]
    files = _files(*sum(cached, []))
    assert _paths(cache.lay_out(files, tmp_path, cached, 2)) == [sorted(c, key=ingest.doc_id_for) for c in cached]
    monkeypatch.setattr(cache, "MAX_OVERLAPPING_SHARDS", 2)
    fresh = cache.lay_out(files, tmp_path, cached, 2)
    assert _paths(fresh) == _paths(cache.lay_out(files, None, [], 2))
    assert all(len(shard.reuse.shards) >= 1 for shard in fresh)


def test_adding_files_rebuilds_only_new_shards_and_releases_what_a_cold_run_releases(tmp_path, corpus, cleaned_docs):
    build_release(corpus, tmp_path / "curated", shard_size=4)
    before = max((tmp_path / "curated" / "runs").iterdir())
    synthetic.generate(corpus, 3, start=100, furniture=False)
    cleaned_docs.clear()
    assert build_release(corpus, tmp_path / "curated", shard_size=4)["version"] == "1.1.0"
    after = max((tmp_path / "curated" / "runs").iterdir())
    assert sum(cleaned_docs) == 3 and len(RunFolder(after).shards("clean")) == 4
    assert all(os.path.samefile(RunFolder(after).shard(stage, n), RunFolder(before).shard(stage, n))
               for stage in ("ingest", "clean", "furniture", "dedup") for n in range(3))
    build_release(corpus, tmp_path / "cold", shard_size=4)
    incremental, cold = (reader.release_path(tmp_path / name) for name in ("curated", "cold"))
    files = sorted(p.relative_to(cold) for table in ("articles", "furniture") for p in (cold / table).glob("*.parquet"))
    assert files and all((incremental / f).read_bytes() == (cold / f).read_bytes() for f in files)


def test_an_incremental_release_is_byte_identical_to_a_cold_one(tmp_path, corpus):
    build_release(corpus, tmp_path / "curated")
    synthetic.generate(corpus, 3, start=100, furniture=False)
    sorted(corpus.rglob("page-*.txt"))[6].unlink()
    sorted(corpus.rglob("page-*.txt"))[1].write_text(synthetic.page(300, furniture=False))
    assert build_release(corpus, tmp_path / "curated")["version"] == "1.1.0"
    assert build_release(corpus, tmp_path / "cold")["version"] == "1.0.0"
    incremental, cold = (reader.release_path(tmp_path / name, reader.latest_version(tmp_path / name)) for name in ("curated", "cold"))
    files = sorted(p.relative_to(cold) for table in ("articles", "furniture") for p in (cold / table).glob("*.parquet"))
    assert files and all((incremental / f).read_bytes() == (cold / f).read_bytes() for f in files)


def test_a_run_with_nothing_changed_skips_curation_and_publishing_and_accounts_for_every_file(tmp_path, corpus, monkeypatch):
    curated = tmp_path / "curated"
    first = steps.run(corpus, curated, shard_size=4)
    assert first["release"]["version"] == "1.0.0" and first["rejected"] == 1

    def must_not_run(*args):
        raise AssertionError("a run with nothing changed ingested, cleaned, curated, checked or published again")

    for step in ("ingest", "clean", "curate", "quality", "release"):
        replace_step(monkeypatch, step, must_not_run)
    second = steps.run(corpus, curated, shard_size=4)
    assert second["release"] == {"published": False, "reason": Result.NOTHING_CHANGED, "version": "1.0.0",
                                 "same_inputs_as_run": first["run_id"]}
    counts = ("seen", "released", "duplicates", "rejected", "rejected_by_reason", "repaired")
    assert second["balanced"] and {k: second[k] for k in counts} == {k: first[k] for k in counts}
    rejects = pl.read_parquet(curated / "runs" / second["run_id"] / "rejects.parquet")
    assert rejects.select("source_path", "reason").rows() == [("title-only.txt", "no-article-body")]
    assert steps.run(corpus, curated, shard_size=4)["release"]["same_inputs_as_run"] == second["run_id"]


def test_a_run_after_one_whose_ledger_is_missing_curates_again(tmp_path, corpus, monkeypatch):
    curated = tmp_path / "curated"
    first = steps.run(corpus, curated, shard_size=4)
    (curated / "runs" / first["run_id"] / "ledger.json").unlink()  # as if the run was killed before its end
    curated_runs, real_curate = [], steps.curate_step
    replace_step(monkeypatch, "curate", lambda plan: curated_runs.append(plan) or real_curate(plan))
    second = steps.run(corpus, curated, shard_size=4)
    assert len(curated_runs) == 1
    assert second["release"] == {"published": False, "reason": Result.NOTHING_CHANGED, "version": "1.0.0"}


def test_a_run_with_nothing_changed_still_brings_a_new_mirror_up_to_the_latest_release(tmp_path, corpus):
    curated, url = tmp_path / "curated", f"memory://mirror-{uuid.uuid4().hex}"
    steps.run(corpus, curated, shard_size=4)
    second = steps.run(corpus, curated, shard_size=4, mirror=url)
    assert second["release"]["mirrored_to"] == url and "same_inputs_as_run" not in second["release"]
    assert storage.mirrored_version(url) == "1.0.0"
    assert "same_inputs_as_run" in steps.run(corpus, curated, shard_size=4, mirror=url)["release"]


def test_a_removed_file_leaves_the_next_release(tmp_path, corpus):
    curated = tmp_path / "curated"
    steps.run(corpus, curated, shard_size=4)
    removed = sorted(corpus.rglob("page-*.txt"))[7]
    removed.unlink()
    entry = steps.run(corpus, curated, shard_size=4)
    assert entry["release"]["version"] == "1.1.0" and entry["seen"] == 10 and entry["balanced"]
    released = load(curated=curated, engine="polars", include_duplicates=True)["source_path"].to_list()
    assert len(released) == 9 and removed.relative_to(corpus).as_posix() not in released


def test_writing_over_a_linked_shard_leaves_the_cached_run_untouched(tmp_path):
    rows = stages.frame([{"source_path": "a.txt", "stage": "ingest", "reason": "empty", "detail": "file holds no text"}], tables.REJECTS)
    cached = tables.write_parquet(rows.to_arrow(), tmp_path / "cached.parquet", tables.REJECTS)
    before = cached.read_bytes()
    linked = tables.link_file(cached, tmp_path / "run" / "linked.parquet")
    tables.write_parquet(rows.head(0).to_arrow(), linked, tables.REJECTS)
    assert cached.read_bytes() == before and tables.read_parquet(linked, tables.REJECTS).height == 0
