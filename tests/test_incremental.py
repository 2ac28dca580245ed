"""Incremental runs: only new or changed documents are cleaned, and the outputs equal a full run's."""
from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from commentary import cache, pipeline, stages, synthetic, tables
from builders import clean_run


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
    return clean_run(raw, curated, shard_size).run_dir


def _outputs(run_dir: Path) -> dict[str, list]:
    """Everything the clean stage produced, in a comparable form."""
    rejects = tables.read_parquet(sorted((run_dir / "rejects").glob("clean-*.parquet")), tables.REJECTS)
    return {
        "articles": tables.read_parquet(pipeline.stage_paths(run_dir, "clean"), tables.ARTICLES).sort("doc_id").rows(),
        "furniture": tables.read_parquet(pipeline.stage_paths(run_dir, "furniture"), tables.FURNITURE).sort("doc_id", "line_no").rows(),
        "rejects": rejects.sort("source_path").rows(),
    }


@pytest.fixture
def corpus(tmp_path) -> Path:
    raw = tmp_path / "raw"
    synthetic.generate(raw, 10, furniture=False)
    (raw / "title-only.txt").write_text("Home\n")  # rejected by the cleaner: no body
    return raw


def test_an_unchanged_rerun_cleans_nothing_and_gives_the_same_outputs(tmp_path, corpus, cleaned_docs):
    first = _clean_run(corpus, tmp_path / "curated")
    assert sum(cleaned_docs) == 11
    assert _outputs(first)["rejects"] and _outputs(first)["articles"]
    cleaned_docs.clear()
    second = _clean_run(corpus, tmp_path / "curated")
    assert sum(cleaned_docs) == 0
    assert _outputs(second) == _outputs(first)


def test_only_new_and_changed_files_are_cleaned_and_removed_files_leave(tmp_path, corpus, cleaned_docs):
    _clean_run(corpus, tmp_path / "curated")
    synthetic.generate(corpus, 2, start=100, furniture=False)
    changed = sorted(corpus.rglob("page-*.txt"))[3]
    changed.write_text(synthetic.page(200, furniture=False))
    removed = sorted(corpus.rglob("page-*.txt"))[5]
    removed.unlink()
    (corpus / "0000" / f"{sorted(corpus.rglob('page-*.txt'))[0].name}.meta.json").write_text('{"outlet": "New Outlet"}')
    cleaned_docs.clear()
    incremental = _clean_run(corpus, tmp_path / "curated")
    assert sum(cleaned_docs) == 4  # two new, one changed, one with a new sidecar
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
    (tmp_path / "commentary" / "release.py").write_text("VERSION = 1\n")
    before = cache.pipeline_fingerprint(tmp_path)
    (tmp_path / "commentary" / "release.py").write_text("VERSION = 2\n")
    assert cache.pipeline_fingerprint(tmp_path) == before
    (tmp_path / "commentary" / "clean" / "text.py").write_text("RULE = 2\n")
    assert cache.pipeline_fingerprint(tmp_path) != before


def test_shards_cover_contiguous_doc_id_ranges(tmp_path, corpus):
    run_dir = _clean_run(corpus, tmp_path / "curated", shard_size=3)
    ranges = [pl.read_parquet(p)["doc_id"] for p in pipeline.stage_paths(run_dir, "keys")]
    assert all(a.max() < b.min() for a, b in zip(ranges, ranges[1:]))
    assert all(r.is_sorted() for r in ranges)
