"""Releases: semantic versions, no release when nothing changed, determinism, atomic LATEST."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from commentary import release, stages, tables
from schemas import models


def _frames(bodies: dict[str, str]) -> dict[str, pl.DataFrame]:
    rows = []
    for n, (path, body) in enumerate(sorted(bodies.items())):
        rows.append({name: None for name in tables.ARTICLES.names} | {
            "doc_id": f"{n:016x}", "source_path": path, "source_sha256": "0" * 64, "format": "text",
            "authors": [], "tags": [], "summary": [], "body": body, "word_count": len(body.split()),
            "body_sha256": stages.body_fingerprint(body), "published_date": dt.date(2021, 1, 1),
            "field_sources": dict.fromkeys(models.SOURCED_FIELDS),
        })
    furniture = [{"doc_id": r["doc_id"], "line_no": 1, "category": "nav", "rule_id": "nav.test", "text": "Home"} for r in rows]
    return {"articles": stages.frame(rows, tables.ARTICLES), "furniture": stages.frame(furniture, tables.FURNITURE)}


def _publish(root, run, bodies):
    return release.publish(root, run, _frames(bodies), {"raw_fingerprint": run})


def test_versions_follow_the_kind_of_change(tmp_path):
    assert _publish(tmp_path, "r1", {"a.txt": "one", "b.txt": "two"})["version"] == "1.0.0"
    assert _publish(tmp_path, "r2", {"a.txt": "one", "b.txt": "two"}) is None
    assert _publish(tmp_path, "r3", {"a.txt": "one, better", "b.txt": "two"})["version"] == "1.0.1"
    assert _publish(tmp_path, "r4", {"a.txt": "one, better", "b.txt": "two", "c.txt": "three"})["version"] == "1.1.0"
    assert release.latest_version(tmp_path) == "1.1.0"
    assert sorted(p.name for p in release.releases_dir(tmp_path).iterdir()) == ["1.0.0", "1.0.1", "1.1.0"]


def test_a_removed_or_retyped_column_is_major():
    previous = {"version": "1.4.2", "schema": {"articles": {"doc_id": "string", "body": "string"}}, "content_fingerprint": "x"}
    ids = pl.Series(["a"])
    assert release.next_version(previous, {"doc_id": "string"}, ids, "y", ids) == "2.0.0"
    assert release.next_version(previous, {"doc_id": "string", "body": "int64"}, ids, "y", ids) == "2.0.0"
    assert release.next_version(previous, {"doc_id": "string", "body": "string", "new": "string"}, ids, "x", ids) == "1.5.0"


def test_same_rows_give_byte_identical_files(tmp_path):
    first = _publish(tmp_path / "one", "r1", {"a.txt": "alpha beta", "b.txt": "gamma"})
    second = _publish(tmp_path / "two", "r2", {"b.txt": "gamma", "a.txt": "alpha beta"})
    assert first["files"] == second["files"]
    assert first["content_fingerprint"] == second["content_fingerprint"]


def test_manifest_lists_every_file_with_its_checksum(tmp_path):
    manifest = _publish(tmp_path, "r1", {"a.txt": "alpha"})
    folder = release.release_path(tmp_path)
    for name, entry in manifest["files"].items():
        assert release.sha256_file(folder / name) == entry["sha256"]
        assert (folder / name).stat().st_size == entry["bytes"]
    assert release.read_release_table(tmp_path)["body"].to_list() == ["alpha"]


def test_unknown_release_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no release"):
        release.release_path(tmp_path)
