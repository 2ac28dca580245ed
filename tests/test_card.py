"""The release describes itself: data card, report page (rendered in Chromium), Data Package."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
import yaml
from builders import article_frames, publish_frames
from matplotlib import image

from commentary import reader, stages, tables
from commentary.release import card, statistics
from commentary.release.manifest import sha256_file
from schemas import models

DATA_DOCS = "runs/r1/quality/gx/uncommitted/data_docs/local_site/index.html"
QUALITY = {"critical_failed": [],
           "stages": {"articles": {"success": False, "rows": 3, "expectations": [
               {"expectation": "expect_column_values_to_not_be_null", "column": "title", "success": False, "critical": False,
                "unexpected_count": 1, "observed_value": None, "error": None},
               {"expectation": "expect_column_values_to_be_between", "column": "published_date", "success": False, "critical": False,
                "unexpected_count": None, "observed_value": None, "error": "Cannot compare Timestamp with datetime.date"}]}}}
REJECTS = stages.frame([stages.reject("x.txt.gz", "ingest", "corrupt-gzip", "truncated")] * 2
                       + [stages.reject("nav.txt", "clean", "no-article-body", "none")], tables.REJECTS)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    root = tmp_path_factory.mktemp("curated")
    frames = article_frames({"a.txt": "the original piece of text", "b.txt": "the original piece of text",
                             "c.txt": "the original piece of text with a credit line", "d.txt": "something else entirely"},
                            duplicate_of={"b.txt": "a.txt", "c.txt": "a.txt"})
    frames["articles"] = frames["articles"].with_columns(
        outlet=pl.Series(["Example Review", "Example Review", "Reprints Daily", None]),
        published_date=pl.Series([dt.date(2020, 5, 1), dt.date(2021, 1, 1), dt.date(2021, 2, 1), None]))
    report = card.RunReport(seen=7, quality=QUALITY | {"data_docs": str(root / DATA_DOCS)}, rejects=REJECTS)
    manifest = publish_frames(root, "r1", frames, {"raw_fingerprint": "f" * 64}, report)
    return root, manifest, reader.release_path(root)


def test_statistics_are_counted_from_the_rows_as_written_and_give_the_manifests_counts(published):
    _, manifest, folder = published
    tally = statistics.Tally()
    for name in ("articles", "furniture"):
        for _ in tally.tee(name, tables.RELEASE_TABLES[name].in_release(folder).chunks()):
            pass
    stats = tally.result()
    assert (stats["canonical"], stats["exact_duplicates"], stats["near_duplicates"]) == (2, 1, 1)
    assert stats["by_outlet"] == [("(unknown)", 1), ("Example Review", 1)]
    assert stats["by_year"] == [("(unknown)", 1), ("2020", 1)]
    assert stats["body_words"]["min"] == 3 and stats["body_words"]["max"] == 5
    assert stats["furniture_lines"] == 4 and stats["furniture_by_category"] == [("nav", 2)]  # lines of every copy; of canonical ones
    assert statistics.counts(stats) == manifest["counts"] == {"articles": 4, "canonical_articles": 2, "duplicates": 2,
                                                              "furniture_lines": stats["furniture_lines"]}


def test_body_length_statistics_are_rounded_not_cut():
    frames = article_frames({"a.txt": "three words here", "b.txt": "four words right here"})
    tally = statistics.Tally()
    for _ in tally.tee("articles", [tables.to_arrow(frames["articles"], tables.RELEASE_TABLES["articles"].schema)]):
        pass
    words = tally.result()["body_words"]
    assert (words["mean"], words["median"]) == (4, 4)  # 3.5 each


def test_card_has_a_dataset_card_header_that_matches_the_files(published):
    _, manifest, folder = published
    text = (folder / "README.md").read_text()
    header = yaml.safe_load(text.split("---\n")[1])
    assert header["language"] == ["en"] and header["size_categories"] == ["n<1K"] and header["task_categories"]
    assert header["license"] == "other" and header["license_name"] and (folder / header["license_link"]).is_file()
    for config in header["configs"]:
        (files,) = config["data_files"]
        assert sorted(folder.glob(files["path"])), files
    assert [c["config_name"] for c in header["configs"] if c.get("default")] == ["articles_with_duplicates"]
    info = {entry["config_name"]: entry for entry in header["dataset_info"]}
    assert info["articles_with_duplicates"]["splits"][0]["num_examples"] == manifest["counts"]["articles"] == 4
    assert [f["name"] for f in info["articles_with_duplicates"]["features"]] == tables.ARTICLES.names
    assert {"name": "authors", "sequence": "string"} in info["articles_with_duplicates"]["features"]
    body = text.split("---\n", 2)[2]
    assert "from 7 raw files: 2 canonical articles and 2 duplicates (1 exact, 1 near)" in body
    assert "| articles | published_date | date32 | " in body and "| changes | changed_fields | list of string | " in body
    assert body.index("| ingest | corrupt-gzip | 2 |") < body.index("| clean | no-article-body | 1 |")
    assert "| articles | expect_column_values_to_not_be_null | title | False | False | 1 unexpected rows |" in body
    assert "0 of 2 expectations met" in body and "Not met: `articles: expect_column_values_to_not_be_null(title)` (1 unexpected rows)" in body
    assert "Could not be checked (the check raised an error): `articles: expect_column_values_to_be_between(published_date)`" in body
    assert "| error | error: Cannot compare Timestamp with datetime.date |" in body
    assert f"[../../{DATA_DOCS}](../../{DATA_DOCS})" in body
    assert f'<a href="../../{DATA_DOCS}">' in (folder / "report.html").read_text()
    assert all((folder / "charts" / f"{name}.png").is_file() for name in ("outlets", "years", "body_words", "furniture"))


def test_datapackage_lists_each_file_and_the_models_schema(published):
    _, _, folder = published
    package = json.loads((folder / "datapackage.json").read_text())
    resources = {r["name"]: r for r in package["resources"]}
    assert set(resources) == set(tables.RELEASE_TABLES)
    for name, resource in resources.items():
        for entry in resource["files"]:
            path = folder / entry["path"]
            assert entry["bytes"] == path.stat().st_size and entry["hash"] == "sha256:" + sha256_file(path)
            assert [f["name"] for f in resource["schema"]["fields"]] == pq.read_schema(path).names
    fields = {f["name"]: f for f in resources["articles"]["schema"]["fields"]}
    assert fields["doc_id"]["constraints"] == {"required": True, "unique": True, "pattern": models.HEX16}
    assert fields["authors"]["type"] == "array" and fields["published_date"]["type"] == "date"
    assert fields["word_count"]["constraints"]["minimum"] == 1 and not fields["outlet"]["constraints"]["required"]
    assert resources["changes"]["schema"]["fields"][1]["constraints"]["enum"] == list(models.CHANGE_KINDS)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs it before the tests")
        pytest.skip("chromium is not installed (apt-get install -y chromium); CI installs it")
    return found


def test_report_page_renders_in_chromium(published, tmp_path):
    _, _, folder = published
    shot = tmp_path / "report.png"
    subprocess.run([
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,1800", "--hide-scrollbars",
        f"--screenshot={shot}", (folder / "report.html").as_uri(),
    ], check=True, capture_output=True, timeout=120)
    pixels = (image.imread(shot)[..., :3] * 255).round().astype(int)
    colours, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
    background = colours[counts.argmax()]
    assert (pixels != background).any(axis=-1).mean() > 0.02, "the page is blank"
    bars = (np.abs(pixels - [0x3B, 0x6E, 0xA5]).max(axis=-1) < 8).sum()
    assert bars > 2000, "the charts did not load"


def _screenshot(page, shot, tmp_path, height: int = 1800) -> np.ndarray:
    subprocess.run([
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", f"--window-size=1000,{height}", "--hide-scrollbars",
        f"--screenshot={shot}", page.as_uri(),
    ], check=True, capture_output=True, timeout=120)
    return (image.imread(shot)[..., :3] * 255).round().astype(int)


def test_data_docs_render_offline_with_the_results_in_their_index(tmp_path):
    """GX's index fills its tables from CDN scripts; offline it was blank. The pages need no network now."""
    from schemas.expectations import run_suites

    articles = pl.DataFrame({"doc_id": ["a", "b"], "title": ["A", None], "body_chars": [900, 50], "word_count": [150, 9],
                             "published_date": [dt.date(2020, 1, 1), None], "known_furniture": [None, None]},
                            schema_overrides={"known_furniture": pl.String})
    report = run_suites(tmp_path / "quality", {"articles": articles.to_pandas()})
    assert report["errors"] == [] and all(q["error"] is None for q in report["stages"]["articles"]["expectations"])
    site = Path(report["data_docs"]).parent
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 3
    for page in pages:
        assert not re.search(r"""<(script|link|img)[^>]*(src|href)=["']https?://""", page.read_text()), page
    pixels = _screenshot(Path(report["data_docs"]), tmp_path / "index.png", tmp_path, height=900)
    failed_cells = (np.abs(pixels - [0xC6, 0x28, 0x28]).max(axis=-1) < 8).sum()
    assert failed_cells > 500, "the index shows no validation result"


def test_an_untrusted_value_in_a_card_table_stays_one_cell_of_text():
    hostile = '<script>alert(1)</script>\n| Fake | row |'
    lines = card.Markdown.table(card.Table(("outlet", "articles"), [(hostile, 2)]))
    assert lines[1] == "| &lt;script&gt;alert(1)&lt;/script&gt; \\| Fake \\| row \\| | 2 |"
