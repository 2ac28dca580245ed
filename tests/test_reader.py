"""Loading a release: the three engines, duplicates left out by default, DuckDB views."""
from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from builders import article_frames, publish_frames

from commentary import duckdb_views, load, reader

BODIES = {"a.txt": "the original piece", "b.txt": "the original piece", "c.txt": "another piece"}


@pytest.fixture
def curated(tmp_path):
    publish_frames(tmp_path, "r1", article_frames(BODIES, duplicate_of={"b.txt": "a.txt"}), {})
    return tmp_path


@pytest.mark.parametrize("engine, kind", [("pandas", pd.DataFrame), ("polars", pl.DataFrame), ("arrow", pa.Table)])
def test_every_engine_loads_the_canonical_articles(curated, engine, kind):
    articles = load(curated=curated, engine=engine)
    assert isinstance(articles, kind)
    frame = pl.from_pandas(articles) if engine == "pandas" else pl.from_arrow(articles) if engine == "arrow" else articles
    assert sorted(frame["source_path"]) == ["a.txt", "c.txt"]
    assert frame.filter(pl.col("source_path") == "a.txt")["published_date"].to_list() in ([dt.date(2021, 1, 1)], [dt.datetime(2021, 1, 1)])
    everything = load(curated=str(curated), engine=engine, include_duplicates=True, version="1.0.0")
    assert len(everything) == 3


def test_furniture_and_changes_follow_the_same_rules(curated):
    assert load(table="furniture", engine="polars", curated=curated).height == 2
    assert load(table="furniture", engine="polars", curated=curated, include_duplicates=True).height == 3
    changes = load(table="changes", engine="polars", curated=curated)
    assert changes["change"].to_list() == ["added"] * 3


def test_duckdb_views_cover_every_table(curated):
    con = duckdb_views(curated=curated)
    counts = {view: con.execute(f"select count(*) from {view}").fetchone()[0]
              for view in ("articles", "articles_all", "furniture", "furniture_all", "changes")}
    assert counts == {"articles": 2, "articles_all": 3, "furniture": len(load("latest", "furniture", curated=curated)),
                      "furniture_all": 3, "changes": 3}
    assert counts["furniture"] < counts["furniture_all"]  # as load: the duplicates' furniture only with them
    authors, date = con.execute("select authors, published_date from articles limit 1").fetchone()
    assert authors == [] and date == dt.date(2021, 1, 1)


def test_wrong_arguments_are_clear_errors(curated, tmp_path):
    with pytest.raises(ValueError, match="unknown engine"):
        load(curated=curated, engine="spark")
    with pytest.raises(ValueError, match="unknown table"):
        load(curated=curated, table="authors")
    with pytest.raises(FileNotFoundError, match="no release 9.9.9"):
        load(curated=curated, version="9.9.9")
    with pytest.raises(FileNotFoundError, match="no release"):
        load(curated=tmp_path / "empty")


def test_pandas_gets_real_dates_and_python_lists(curated):
    articles = load(curated=curated)
    assert str(articles["published_date"].dtype).startswith("datetime64") and articles["published_date"].dt.year.tolist() == [2021, 2021]
    assert isinstance(articles["authors"].dtype, pd.ArrowDtype) and articles["authors"].iloc[0] == []
    assert articles["tags"].list.len().tolist() == [0, 0]
    changes = load(table="changes", curated=curated)
    assert changes["changed_fields"].iloc[0] == []


def test_the_default_folder_comes_from_the_environment_whatever_the_current_folder(curated, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path / "..")
    monkeypatch.setenv("COMMENTARY_CURATED", str(curated))
    assert len(load()) == 2 and duckdb_views().execute("select count(*) from articles").fetchone() == (2,)
    monkeypatch.setenv("COMMENTARY_CURATED", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=f"no release in {tmp_path / 'nowhere'} \\(from \\$COMMENTARY_CURATED\\)"):
        load()
    monkeypatch.delenv("COMMENTARY_CURATED")
    assert reader.default_curated() == Path(reader.__file__).resolve().parents[1] / "curated"


def test_latest_links_the_newest_release_for_plain_globs(curated):
    publish_frames(curated, "r2", article_frames(BODIES | {"d.txt": "a fourth piece"}, duplicate_of={"b.txt": "a.txt"}), {})
    assert (curated / "latest").resolve() == (curated / "releases" / "1.1.0").resolve()
    assert pl.read_parquet(curated / "latest" / "articles" / "*.parquet").height == 4
    rows = duckdb.connect().execute(f"select count(*) from read_parquet('{curated}/latest/articles/*.parquet')").fetchone()
    assert rows == (4,) and not list(curated.glob(".latest*"))


def test_a_copied_curated_folder_gets_its_latest_link_back_at_the_next_publish(curated, tmp_path):
    import shutil

    copy = tmp_path.with_name(tmp_path.name + "-copy")
    shutil.copytree(curated, copy)  # follows the link: latest/ is a real folder in the copy
    assert (copy / "latest").is_dir() and not (copy / "latest").is_symlink()
    publish_frames(copy, "r2", article_frames(BODIES | {"d.txt": "a fourth piece"}), {})
    assert (copy / "latest").is_symlink() and (copy / "latest").resolve() == (copy / "releases" / "1.1.0").resolve()


def test_a_release_an_interrupted_run_left_before_latest_named_it_is_not_read(curated):
    """The next run removes such a release and may publish another under its version: no reader may see it meanwhile."""
    releases = reader.releases_dir(curated)
    shutil.copytree(releases / "1.0.0", releases / "1.1.0")
    manifest = json.loads((releases / "1.1.0" / "manifest.json").read_text())
    (releases / "1.1.0" / "manifest.json").write_text(json.dumps({**manifest, "version": "1.1.0"}))
    (releases / reader.PENDING).write_text("1.1.0\n")
    assert [m["version"] for m in reader.list_releases(curated)] == ["1.0.0"]
    assert list(reader.verify_all(curated)) == ["1.0.0", "LATEST"] and reader.damaged_releases(curated, reader.list_releases(curated)) == []
    for read in (lambda: load("1.1.0", curated=curated), lambda: reader.verify(curated, "1.1.0")):
        with pytest.raises(reader.NoRelease, match=r"release 1.1.0 in .* is not published \(being published, or left by an interrupted run"):
            read()
    (curated / "LATEST").write_text("1.1.0\n")  # once LATEST names it, it is published
    assert [m["version"] for m in reader.list_releases(curated)] == ["1.0.0", "1.1.0"]


@pytest.mark.parametrize("damage", ["older release", "dangling", "copy of an older release"])
def test_verify_fails_when_the_latest_link_does_not_lead_to_the_latest_release(tmp_path, damage):
    curated = tmp_path / "curated"
    publish_frames(curated, "r1", article_frames(BODIES), {})
    publish_frames(curated, "r2", article_frames(BODIES | {"d.txt": "a fourth piece"}), {})
    link = curated / reader.LATEST_LINK
    link.unlink()
    if damage == "older release":
        link.symlink_to(Path("releases") / "1.0.0", target_is_directory=True)
    elif damage == "dangling":
        link.symlink_to(Path("releases") / "9.9.9", target_is_directory=True)
    else:
        shutil.copytree(reader.releases_dir(curated) / "1.0.0", link)
    problems = reader.verify_all(curated)
    assert problems["LATEST"] == ["the latest link does not lead to releases/1.1.0 (the next run points it there)"]
    assert not problems["1.0.0"] and not problems["1.1.0"]

    if link.is_symlink():
        link.unlink()
    else:
        shutil.rmtree(link)
    shutil.copytree(reader.releases_dir(curated) / "1.1.0", link)  # a curated folder copied without its links
    assert not any(reader.verify_all(curated).values())
    shutil.rmtree(link)
    link.symlink_to(reader.releases_dir(curated).resolve() / "1.1.0", target_is_directory=True)  # made by hand, absolute
    assert not any(reader.verify_all(curated).values())


@pytest.mark.parametrize("content", ["", "latest\n"])
def test_a_latest_file_without_a_version_is_named_not_read_as_one(curated, content):
    (curated / "LATEST").write_text(content)
    assert "not a release version" in reader.verify_all(curated)["LATEST"][0]
    with pytest.raises(reader.NoRelease, match="not a release version"):
        load(curated=curated)
