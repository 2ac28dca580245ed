"""Releases: semantic versions, changelogs, byte-identical rebuilds, crash safety, checksums, file sizes."""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import article_frames, build_release, publish_frames

from commentary import ledger, reader, steps, tables
from commentary.runfolder import RunFolder
from commentary.cli import main
from commentary.release import publish as publishing
from commentary.release import versions
from commentary.release.manifest import Files

BASE = {"a.txt": "one fine day", "b.txt": "two fine days"}


def _publish(root, run, bodies, **fields):
    return publish_frames(root, run, article_frames(bodies, **fields), {"raw_fingerprint": run})


def _changes(root, version):
    return sorted(reader.scan_table(root, "changes", version).collect().select("change", "changed_fields")
                  .with_columns(pl.col("changed_fields").list.join(",")).rows())


def test_versions_follow_the_kind_of_change(tmp_path):
    first = _publish(tmp_path, "r1", BASE)
    assert (first["version"], first["changes"]["bump"]) == ("1.0.0", "first")
    assert _publish(tmp_path, "r2", BASE) is None
    patch = _publish(tmp_path, "r3", {**BASE, "a.txt": "one better day"})
    assert (patch["version"], patch["changes"]["bump"]) == ("1.0.1", "patch")
    assert _changes(tmp_path, "1.0.1") == [("modified", "body,body_sha256")]
    assert _publish(tmp_path, "r4", {**BASE, "a.txt": "one better day", "c.txt": "three"})["version"] == "1.1.0"
    assert _publish(tmp_path, "r5", {"a.txt": "one better day", "c.txt": "three"})["version"] == "1.2.0"
    assert _changes(tmp_path, "1.2.0") == [("removed", "")]
    assert reader.latest_version(tmp_path) == "1.2.0"
    assert [m["version"] for m in reader.list_releases(tmp_path)] == ["1.0.0", "1.0.1", "1.1.0", "1.2.0"]
    assert not list(reader.releases_dir(tmp_path).glob(".*"))


def test_only_the_removed_lines_changing_is_a_patch(tmp_path):
    _publish(tmp_path, "r1", BASE)
    frames = article_frames(BASE)
    frames["furniture"] = frames["furniture"].with_columns(rule_id=pl.lit("nav.breadcrumb"))
    manifest = publish_frames(tmp_path, "r2", frames, {})
    assert manifest["version"] == "1.0.1" and manifest["changes"]["fields"] == {"furniture": 2}


def _renamed(frame: pl.DataFrame) -> tuple[pl.DataFrame, pa.Schema]:
    schema = tables.ARTICLES
    index = schema.get_field_index("section")
    return frame.rename({"section": "rubric"}), schema.set(index, pa.field("rubric", pa.string()))


@pytest.mark.parametrize("change, bump", [
    (lambda f: (f.drop("section"), tables.ARTICLES.remove(tables.ARTICLES.get_field_index("section"))), "2.0.0"),
    (_renamed, "2.0.0"),
    (lambda f: (f, tables.ARTICLES.set(tables.ARTICLES.get_field_index("word_count"), pa.field("word_count", pa.int32()))), "2.0.0"),
    (lambda f: (f.with_columns(pl.lit("x").alias("extra")), tables.ARTICLES.append(pa.field("extra", pa.string()))), "1.1.0"),
])
def test_column_changes_are_major_unless_a_column_is_only_added(tmp_path, monkeypatch, change, bump):
    _publish(tmp_path, "r1", BASE)
    frames = article_frames(BASE)
    frames["articles"], schema = change(frames["articles"])
    monkeypatch.setitem(tables.RELEASE_TABLES, "articles", dataclasses.replace(tables.RELEASE_TABLES["articles"], schema=schema))
    manifest = publish_frames(tmp_path, "r2", frames, {})
    assert manifest["version"] == bump
    assert manifest["changes"]["articles"] == {"added": 0, "removed": 0, "modified": 0}
    assert "Columns" in (reader.release_path(tmp_path) / "CHANGELOG.md").read_text()


def test_changelogs_accumulate_newest_first(tmp_path):
    _publish(tmp_path, "r1", BASE)
    _publish(tmp_path, "r2", {**BASE, "c.txt": "three"})
    notes = (reader.release_path(tmp_path) / "CHANGELOG.md").read_text()
    assert notes.startswith("## 1.1.0 (") and "Changes since 1.0.0: 1 article added, 0 removed, 0 modified." in notes
    assert "| added | " in notes and "c.txt" in notes and "a.txt" not in notes
    history = (tmp_path / "CHANGELOG.md").read_text()
    assert history.index("## 1.1.0") < history.index("## 1.0.0")
    assert history.count("## ") == 2


def test_same_raw_input_and_code_give_byte_identical_releases(tmp_path, raw_copy):
    first = build_release(raw_copy, tmp_path / "one")
    second = build_release(raw_copy, tmp_path / "two")
    assert first["published"] and second["published"]
    one, two = reader.read_manifest(tmp_path / "one"), reader.read_manifest(tmp_path / "two")
    parquet = {name: entry for name, entry in one["files"].items() if name.endswith(".parquet")}
    assert len(parquet) == 3 and parquet == {name: two["files"][name] for name in parquet}
    assert one["content_fingerprint"] == two["content_fingerprint"]
    assert one["raw_fingerprint"] == two["raw_fingerprint"] and one["lock_sha256"] == two["lock_sha256"]
    assert one["code_version"] and one["rules_version"]
    (raw_copy / "000_019dbd7b0e031552.txt").write_text("Another title\n\nAnother body, long enough to be an article: ten words or more.\n")
    assert build_release(raw_copy, tmp_path / "one")["version"] == "1.0.1"
    assert reader.read_manifest(tmp_path / "one")["raw_fingerprint"] != one["raw_fingerprint"]


@pytest.mark.parametrize("change", ["sidecar", "refused file"])
def test_the_raw_fingerprint_changes_with_a_sidecar_or_a_refused_file(tmp_path, raw_copy, change):
    build_release(raw_copy, tmp_path / "before")
    if change == "sidecar":
        (raw_copy / "000_019dbd7b0e031552.txt.meta.json").write_text('{"outlet": "Another Outlet"}')
    else:
        (raw_copy / "broken.txt.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    build_release(raw_copy, tmp_path / "after")
    assert reader.read_manifest(tmp_path / "after")["raw_fingerprint"] != reader.read_manifest(tmp_path / "before")["raw_fingerprint"]


_CRASH = """
import os, sys
from pathlib import Path
from builders import article_frames, publish_frames
from commentary.release import publish as publishing

point, root = sys.argv[1], Path(sys.argv[2])
if point == "before-rename":
    publishing.os.rename = lambda *args: os._exit(3)
else:
    write = publishing.tables.write_text
    publishing.tables.write_text = lambda path, text: os._exit(3) if path.name == "LATEST" else write(path, text)
publish_frames(root, "crashed", article_frames({"a.txt": "one fine day", "b.txt": "two fine days", "c.txt": "three"}), {})
"""


@pytest.mark.parametrize("point", ["before-rename", "before-latest"])
def test_a_crash_while_publishing_leaves_the_previous_release_and_is_cleaned_next_time(tmp_path, point):
    _publish(tmp_path, "r1", BASE)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    crashed = subprocess.run([sys.executable, "-c", _CRASH, point, str(tmp_path)], env=env, capture_output=True, text=True)
    assert crashed.returncode == 3, crashed.stderr
    assert reader.latest_version(tmp_path) == "1.0.0"
    assert main(["verify", "--curated", str(tmp_path), "1.0.0"]) == 0
    left = {p.name for p in reader.releases_dir(tmp_path).iterdir()}
    assert left == ({"1.0.0", ".staging-crashed", ".pending"} if point == "before-rename" else {"1.0.0", "1.1.0", ".pending"})
    manifest = _publish(tmp_path, "r2", {**BASE, "c.txt": "three"})
    assert manifest["version"] == "1.1.0" and reader.latest_version(tmp_path) == "1.1.0"
    assert {p.name for p in reader.releases_dir(tmp_path).iterdir()} == {"1.0.0", "1.1.0"}
    assert reader.read_manifest(tmp_path, "1.1.0")["run_id"] == "r2"
    assert (tmp_path / "CHANGELOG.md").read_text().count("## 1.1.0") == 1


def test_verify_catches_a_flipped_byte(tmp_path, capsys):
    _publish(tmp_path, "r1", BASE)
    _publish(tmp_path, "r2", {**BASE, "c.txt": "three"})
    assert main(["verify", "--curated", str(tmp_path)]) == 0
    part = reader.release_path(tmp_path, "1.0.0") / "articles" / "part-00000.parquet"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0x01
    part.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["verify", "--curated", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL 1.0.0/articles/part-00000.parquet: sha256 differs" in out and "ok   1.1.0" in out
    assert main(["verify", "--curated", str(tmp_path), "1.1.0"]) == 0
    (reader.release_path(tmp_path, "1.1.0") / "extra.txt").write_text("x")
    assert reader.verify(tmp_path, "1.1.0") == ["1.1.0/extra.txt: not in the manifest"]


@pytest.mark.parametrize("damage", ["manifest-missing", "manifest-empty", "manifest-not-json", "latest-names-nothing"])
def test_verify_fails_on_a_missing_or_unreadable_manifest_and_on_latest_naming_no_intact_release(tmp_path, capsys, damage):
    _publish(tmp_path, "r1", BASE)
    _publish(tmp_path, "r2", {**BASE, "c.txt": "three"})
    manifest = reader.releases_dir(tmp_path) / "1.1.0" / "manifest.json"
    if damage == "manifest-missing":
        manifest.unlink()
    elif damage == "manifest-empty":
        manifest.write_text("")
    elif damage == "manifest-not-json":
        manifest.write_text('{"files": [1, 2')
    else:
        (tmp_path / "LATEST").write_text("9.9.9\n")
    capsys.readouterr()
    assert main(["verify", "--curated", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "ok   1.0.0" in out
    if damage == "latest-names-nothing":
        assert "FAIL LATEST names 9.9.9, which is not a release folder" in out
    else:
        assert "FAIL 1.1.0/manifest.json: " + ("missing" if damage == "manifest-missing" else "unreadable") in out
        assert "FAIL LATEST names 1.1.0, which is incomplete" in out
        assert main(["verify", "--curated", str(tmp_path), "1.1.0"]) == 1


def test_a_publish_on_a_damaged_latest_release_is_refused(tmp_path):
    _publish(tmp_path, "r1", BASE)
    part = reader.release_path(tmp_path) / "articles" / "part-00000.parquet"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0x01
    part.write_bytes(bytes(data))
    with pytest.raises(publishing.BaseReleaseDamaged, match="latest release 1.0.0 does not match its manifest.*sha256 differs"):
        _publish(tmp_path, "r2", {**BASE, "c.txt": "three"})
    assert reader.latest_version(tmp_path) == "1.0.0"
    assert sorted(p.name for p in reader.releases_dir(tmp_path).iterdir()) == ["1.0.0"]


def test_release_files_are_split_into_row_groups_and_parts(tmp_path, monkeypatch):
    monkeypatch.setattr(publishing, "ROW_GROUP_BYTES", 1)  # the minimum: 1,000 rows per group
    monkeypatch.setattr(publishing, "PART_FILE_BYTES", 2)  # two groups per part file
    manifest = _publish(tmp_path, "r1", {f"{n:04d}.txt": f"body number {n}" for n in range(2500)})
    parts = sorted(name for name in manifest["files"] if name.startswith("articles/"))
    assert parts == ["articles/part-00000.parquet", "articles/part-00001.parquet"]
    folder = reader.release_path(tmp_path)
    first = pq.ParquetFile(folder / parts[0]).metadata
    assert [first.row_group(i).num_rows for i in range(first.num_row_groups)] == [1000, 1000]
    column = first.row_group(0).column(0)
    assert column.compression == "ZSTD" and column.statistics.has_min_max
    ids = duckdb.sql(f"select doc_id from read_parquet('{folder}/articles/*.parquet')").fetchall()
    assert len(ids) == 2500 and [r[0] for r in ids] == sorted(r[0] for r in ids)


def test_unknown_release_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no release"):
        reader.release_path(tmp_path)
    assert json.loads(json.dumps(reader.list_releases(tmp_path))) == []


def _shard_files(folder, frame, name, cuts):
    """``frame`` sorted by the table's key, cut at the row numbers ``cuts`` into one shard file each."""
    table = tables.RELEASE_TABLES[name]
    rows = tables.to_arrow(frame.sort(table.key), table.schema)
    edges = [0, *cuts, rows.num_rows]
    return tables.TableFiles([tables.write_parquet(rows.slice(a, b - a), folder / f"shard-{n:05d}.parquet", table.schema)
                              for n, (a, b) in enumerate(zip(edges, edges[1:], strict=False))], table.schema)


def test_streamed_release_files_depend_on_the_rows_not_on_the_shards(tmp_path, monkeypatch):
    articles = article_frames({f"{n:04d}.txt": f"body number {n} " * (1 + n % 7) for n in range(2600)})["articles"]
    monkeypatch.setattr(publishing, "ROW_GROUP_BYTES", 400_000)
    written = {}
    for cuts in ([], [7, 1500], [999, 1000, 1001, 2599]):
        files = _shard_files(tmp_path / f"in-{len(cuts)}", articles, "articles", cuts)
        out = tmp_path / f"out-{len(cuts)}"
        paths = publishing._write_table(publishing._in_key_order(files, ("doc_id",)), Files(out), "articles")
        written[len(cuts)] = [path.read_bytes() for path in paths]
    assert written[0] == written[2] == written[4]
    metadata = pq.ParquetFile(out / "articles" / "part-00000.parquet").metadata
    groups = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sum(groups) == 2600 and all(rows % 1000 == 0 for rows in groups[:-1]) and len(groups) > 1
    nbytes = pq.read_table(out / "articles").nbytes
    assert max(groups) * nbytes / 2600 <= 400_000 * 1.1  # each group within the byte budget


def _shards(tmp_path: Path, table: str, frame: pl.DataFrame, cuts: list[list[int]]) -> tables.TableFiles:
    """Shard files holding the rows at each list of positions of ``frame`` (sorted by the table's key)."""
    spec = tables.RELEASE_TABLES[table]
    frame = frame.sort(spec.key)
    paths = [tables.write_parquet(tables.to_arrow(frame[rows] if rows else frame.head(0), spec.schema), tmp_path / f"{table}-{n:05d}.parquet", spec.schema)
             for n, rows in enumerate(cuts)]
    return tables.TableFiles(paths, spec.schema)


def test_shards_whose_doc_id_ranges_overlap_are_merged_in_key_order(tmp_path):
    frames = article_frames({f"{n}.txt": f"body {n}" for n in range(7)})
    merged = {}
    for name in ("articles", "furniture"):
        spread = _shards(tmp_path, name, frames[name], [[0, 1, 5], [2, 3], [], [4, 6]])
        merged[name] = pa.concat_tables(publishing._in_key_order(spread, tables.RELEASE_TABLES[name].key))
    assert merged["articles"]["doc_id"].to_pylist() == sorted(frames["articles"]["doc_id"].to_list())
    assert merged["furniture"].equals(tables.to_arrow(frames["furniture"].sort("doc_id", "line_no"), tables.FURNITURE))


def test_overrides_replace_columns_and_leave_out_unmarked_rows(tmp_path):
    frames = article_frames({f"{n}.txt": f"body {n}" for n in range(4)})
    shards = _shards(tmp_path, "articles", frames["articles"], [[0, 1], [2, 3]])
    ids = sorted(frames["articles"]["doc_id"].to_list())
    marks = tables.write_parquet(pa.table({"doc_id": ids[:3], "duplicate_of": [None, ids[0], None]}), tmp_path / "marks.parquet", tables.MARKS)
    marked = tables.TableFiles(shards.paths, shards.schema, overrides=marks)
    assert marked.frame(["doc_id", "duplicate_of"]).rows() == [(ids[0], None), (ids[1], ids[0]), (ids[2], None)]
    merged = pa.concat_tables(publishing._in_key_order(marked, ("doc_id",)))
    assert merged.schema == tables.ARTICLES and merged["duplicate_of"].to_pylist() == [None, ids[0], None]
    assert marked.frame(["source_path"]).height == 3  # doc_id is read to apply the marks, then left out


def test_a_document_in_two_shards_is_refused(tmp_path):
    articles = article_frames({"a.txt": "one", "b.txt": "two", "c.txt": "three"})["articles"]
    twice = _shards(tmp_path, "articles", articles, [[1, 2], [0, 1]])
    with pytest.raises(ValueError, match="a document must be in one shard only"):
        list(publishing._in_key_order(twice, tables.RELEASE_TABLES["articles"].key))


def test_the_diff_sees_a_changed_line_of_an_article_whose_lines_span_row_groups(tmp_path):
    frames = article_frames({"a.txt": "one", "b.txt": "two", "c.txt": "three"})
    lines = pl.concat([frames["furniture"].with_columns(line_no=pl.lit(n, pl.Int64)) for n in range(1, 6)])
    edited = lines.with_columns(text=pl.when((pl.col("line_no") == 5) & (pl.col("doc_id") == lines["doc_id"].min()))
                                .then(pl.lit("Menu")).otherwise(pl.col("text")))
    sides = {}
    for side, furniture in {"old": lines, "new": edited}.items():
        schema = tables.FURNITURE
        path = tables.write_parquet(tables.to_arrow(furniture.sort("doc_id", "line_no"), schema), tmp_path / f"{side}.parquet",
                                    schema, row_group_rows=3)  # five lines per article: every article spans two groups
        sides[side] = {"articles": _shard_files(tmp_path / side, frames["articles"], "articles", []),
                       "furniture": tables.TableFiles([path], schema)}
    assert pq.ParquetFile(tmp_path / "old.parquet").metadata.num_row_groups == 5
    hashes = {side: {t: versions.hash_table(files) for t, files in tables_of.items()} for side, tables_of in sides.items()}
    result = versions.diff(hashes["old"], hashes["new"])
    assert result.changes.select("doc_id", "change", "changed_fields").rows() == [(lines["doc_id"].min(), "modified", ["furniture"])]
    assert versions.diff(hashes["old"], hashes["old"]).bump is None


def test_the_diff_sees_two_removed_lines_trading_places(tmp_path):
    frames = article_frames(BASE)
    first = frames["furniture"]["doc_id"].min()
    lines = pl.concat([frames["furniture"].with_columns(line_no=pl.lit(n, pl.Int64), text=pl.lit(f"line {n}")) for n in (1, 2)])
    swapped = lines.with_columns(text=pl.when(pl.col("doc_id") == first).then(pl.format("line {}", 3 - pl.col("line_no")))
                                 .otherwise(pl.col("text")))
    sides = {side: {"articles": versions.hash_table(_shard_files(tmp_path / side, frames["articles"], "articles", [])),
                    "furniture": versions.hash_table(_shards(tmp_path / side, "furniture", furniture, [[0, 1, 2, 3]]))}
             for side, furniture in (("old", lines), ("new", swapped))}
    result = versions.diff(sides["old"], sides["new"])
    assert result.changes.select("doc_id", "change", "changed_fields").rows() == [(first, "modified", ["furniture"])]


def test_a_publish_compares_with_the_kept_hashes_of_the_latest_release(tmp_path, monkeypatch):
    _publish(tmp_path, "r1", BASE)
    hash_table = versions.hash_table
    monkeypatch.setattr(versions, "hash_table", lambda files: pytest.fail("the latest release was read again"))
    assert _publish(tmp_path, "r2", {**BASE, "a.txt": "one better day"})["version"] == "1.0.1"
    # Polars' hashes differ between its versions and processors: hashes kept under another one are computed afresh.
    computed = []
    monkeypatch.setattr(versions, "hash_table", lambda files: computed.append(files) or hash_table(files))
    monkeypatch.setattr(pl, "__version__", "0.0.0")
    assert _publish(tmp_path, "r3", {**BASE, "a.txt": "one better day", "b.txt": "two better days"})["version"] == "1.0.2"
    assert len(computed) == 2 and _changes(tmp_path, "1.0.2") == [("modified", "body,body_sha256")]
    monkeypatch.setattr(platform, "machine", lambda: "arm64")  # the curated folder moved to another kind of machine
    assert _publish(tmp_path, "r3b", {**BASE, "a.txt": "one better day"})["version"] == "1.0.3"
    assert len(computed) == 4 and _changes(tmp_path, "1.0.3") == [("modified", "body,body_sha256")]
    # Unreadable kept hashes are computed afresh too.
    monkeypatch.undo()
    assert _publish(tmp_path, "r4", {**BASE, "a.txt": "one better day", "b.txt": "two better days"})["version"] == "1.0.4"
    (tmp_path / "cache" / "release-hashes" / "articles.parquet").write_bytes(b"PAR1 not parquet")
    assert _publish(tmp_path, "r5", {**BASE, "b.txt": "two better days"})["version"] == "1.0.5"
    assert _changes(tmp_path, "1.0.5") == [("modified", "body,body_sha256")]


def test_the_quality_suite_knows_every_furniture_rule_and_passes_prose():
    from commentary.clean.rules import load_rules
    from schemas.measures import body_measures

    rules = load_rules()
    prose = "The committee met on Tuesday and agreed on the budget after a long debate."
    bodies = {f"{n:016x}": f"{prose}\n\n{example}\n\n{prose}" for n, rule in enumerate(rules) for example in rule.examples[:1]}
    bodies["f" * 16] = f"{prose}\n\n{prose}"
    measured = body_measures(pl.DataFrame({"doc_id": list(bodies), "title": None, "word_count": 1, "published_date": None,
                                           "format": "text", "body": list(bodies.values())}))
    found = dict(measured.select("doc_id", "known_furniture").iter_rows())
    assert found.pop("f" * 16) is None
    assert all(found.values()), [bodies[doc] for doc, rule in found.items() if rule is None]
    assert measured["body_chars"].to_list() == [len(body) for body in bodies.values()]


def test_a_long_caption_that_an_html_page_keeps_is_not_flagged_as_furniture():
    from schemas.measures import body_measures

    prose = "The committee met on Tuesday and agreed on the budget after a long debate."
    caption = "The president speaks about the economy and jobs during an event at the White House on Tuesday. (AP Photo/Evan Vucci)"
    measured = body_measures(pl.DataFrame({"doc_id": ["html", "text"], "title": None, "word_count": 1, "published_date": None,
                                           "format": ["html", "text"], "body": f"{prose}\n\n{caption}\n\n{prose}"}))
    assert measured["known_furniture"].to_list() == [None, "media.agency-credit"]  # the text path removes such a line


def _tamper_clean_shard(run_dir, count: int) -> list[str]:
    """Append a furniture line to the bodies of the first ``count`` cleaned articles, as a cleaner that let it through would."""
    from schemas.measures import body_measures

    run = RunFolder(run_dir)
    frame = run.read("clean", 0)
    hit = pl.int_range(pl.len()) < count
    frame = frame.with_columns(body=pl.when(hit).then(pl.col("body") + "\n\nShare this article").otherwise("body"))
    run.write("clean", 0, frame)
    run.write("measures", 0, body_measures(frame))
    return frame.filter(hit)["source_path"].to_list()


def _release_with_suites(raw, curated, tampered: int):
    from builders import clean_run

    plan = clean_run(raw, curated)
    bad = _tamper_clean_shard(plan.run.path, tampered)
    steps.curate_step(plan)
    outcome = steps.release_step(plan, steps.quality_step(plan))
    return plan, bad, outcome, ledger.ledger(plan, outcome)


def test_one_bad_article_is_quarantined_and_the_rest_released(tmp_path, raw_copy):
    # one of five articles is 20 %, over the share of 5 %: the release goes on all the same (MIN_QUARANTINED_TO_HOLD)
    plan, bad, outcome, entry = _release_with_suites(raw_copy, tmp_path / "curated", tampered=1)
    assert outcome.published and entry["balanced"]
    assert (entry["seen"], entry["released"], entry["rejected"]) == (5, 4, 1)
    rejects = pl.read_parquet(plan.run.path / "rejects.parquet")
    assert rejects.rows() == [(bad[0], "quality", "quality:expect_column_values_to_be_null:known_furniture",
                               "articles: expect_column_values_to_be_null(known_furniture) failed on engagement.share-prompt")]
    released = reader.scan_table(tmp_path / "curated", "articles").collect()
    assert bad[0] not in released["source_path"].to_list() and released.height == 4
    assert "Share this article" not in "".join(released["body"])
    furniture = reader.scan_table(tmp_path / "curated", "furniture").collect()
    assert set(furniture["doc_id"]) <= set(released["doc_id"])


def test_a_failure_of_more_than_the_set_share_of_articles_holds_the_release(tmp_path, raw_copy, monkeypatch):
    monkeypatch.setattr("commentary.steps.MAX_QUARANTINED_SHARE", 0.25)
    monkeypatch.setattr("commentary.steps.MIN_QUARANTINED_TO_HOLD", 2)
    plan, bad, outcome, entry = _release_with_suites(raw_copy, tmp_path / "curated", tampered=2)
    assert not outcome.published and "2 of 5 failed a per-row critical expectation" in outcome.failed[-1]
    assert entry["balanced"] and entry["rejected_by_reason"] == {"quality-gate": 5}
    assert reader.latest_version(tmp_path / "curated") is None


def test_a_quarantined_canonical_copy_hands_its_duplicates_to_the_first_remaining_copy(tmp_path, monkeypatch):
    monkeypatch.setattr("commentary.steps.MAX_QUARANTINED_SHARE", 0.5)
    paths = ["a.txt", "b.txt", "c.txt", "d.txt"]
    frames = article_frames(dict.fromkeys(paths, "the same body"), duplicate_of={"b.txt": "a.txt", "c.txt": "a.txt"})
    articles = frames["articles"].sort("doc_id")
    tables.write_parquet(articles.to_arrow(), RunFolder(tmp_path).shard("clean", 0), tables.ARTICLES)
    tables.write_parquet(articles.select("doc_id", "duplicate_of").to_arrow(), RunFolder(tmp_path).marks, tables.MARKS)
    ids = dict(articles.select("source_path", "doc_id").iter_rows())
    report = {"critical_failed": [], "quarantined": [{"doc_id": ids["a.txt"], "check": "articles: check(x)", "reason": "quality:check:x", "value": "v"}]}
    steps.quarantine(RunFolder(tmp_path), report)
    marks = dict(pl.read_parquet(RunFolder(tmp_path).marks).iter_rows())
    heir = min(ids["b.txt"], ids["c.txt"])
    assert ids["a.txt"] not in marks and marks[heir] is None and marks[ids["d.txt"]] is None
    assert marks[max(ids["b.txt"], ids["c.txt"])] == heir
    assert report["quarantined_articles"] == 1 and not report["critical_failed"]
    rejects = pl.read_parquet(tmp_path / "rejects" / "quality-00000.parquet")
    assert rejects.rows() == [("a.txt", "quality", "quality:check:x", "articles: check(x) failed on v")]
