"""Stage functions: field precedence, body fingerprints, rejects."""
from __future__ import annotations

import datetime as dt
import json
import re

import polars as pl
from builders import clean_run
from hypothesis import given, strategies as st

from commentary import stages, steps, tables
from commentary.clean.text import clean_shard
from commentary.ingest import discover
from commentary.settings import MAX_FIELD_CHARS, MAX_FIELD_ITEMS


def test_body_fingerprint_ignores_case_and_spacing_only():
    assert stages.body_fingerprint("One  two\n\nThree") == stages.body_fingerprint("one two three")
    assert stages.body_fingerprint("one two three") != stages.body_fingerprint("one two four")


def test_bodies_are_normalised_as_python_splits_lines_and_strips_white_space():
    spaces = [chr(c) for c in range(0x110000) if chr(c).isspace() and chr(c) != "\n"]
    bodies = [f"{space}a{space}{space}b {space}\n{space}\n\n c{space}" for space in spaces] + ["", "\n", "one\r\ntwo\t three  "]
    expected = ["\n".join(re.sub(r"[^\S\n]+", " ", line).strip() for line in body.split("\n")) for body in bodies]
    normalized = stages.normalize_bodies(bodies)
    assert (normalized.texts, normalized.fingerprints) == (expected, [stages.body_fingerprint(body) for body in bodies])
    assert normalized.words.to_list() == stages.minhash_words(expected).to_list()
    assert stages.normalize_bodies(["x\u200by"]).texts == ["x\u200by"]  # a zero-width space is no white space to Python either


@given(st.lists(st.text(alphabet="ab \n\t\r\x1c\xa0\u3000", max_size=40), max_size=5))
def test_bodies_of_any_white_space_runs_are_normalised_as_python_does(bodies):
    expected = ["\n".join(" ".join(line.split()) for line in body.split("\n")) for body in bodies]
    normalized = stages.normalize_bodies(bodies)
    assert (normalized.texts, normalized.fingerprints) == (expected, [stages.body_fingerprint(body) for body in bodies])


def test_polars_folds_case_as_python_does_but_for_the_characters_set_apart():
    characters = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    set_apart = pl.Series(characters).str.contains(stages._FOLDED_OTHERWISE).to_list()
    lowered = pl.Series(characters).str.to_lowercase().to_list()
    assert [c for c, lower, apart in zip(characters, lowered, set_apart) if not apart and lower != c.casefold()] == []
    assert "\u03a3" in "".join(c for c, apart in zip(characters, set_apart) if apart)  # its lower case depends on its neighbours


@given(st.lists(st.text(alphabet="aAß\u03a3\u03c3\u03c2\u0130I\ufb00\u13a0 .\n", max_size=30), max_size=5))
def test_fingerprints_fold_case_as_python_casefold(bodies):
    assert stages.normalize_bodies(bodies).fingerprints == [stages.body_fingerprint(body) for body in bodies]
    assert stages.normalize_bodies(["Straße \u0391\u03a3."]).fingerprints == [stages.body_fingerprint("strasse \u03b1\u03c3.")]


def test_word_counts_from_the_minhash_words_are_the_bodies_own():
    characters = pl.Series([chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF])
    kept = ~characters.str.contains(stages._WORDS_OTHERWISE_IN_LOWER_CASE)
    lowered = characters.str.to_lowercase()
    word = characters.str.contains(r"^\w$")
    changed = (word & ~lowered.str.contains(r"^\w+$")) | (~word & ~lowered.str.contains(r"^\W+$"))
    assert (changed & kept).sum() == 0 and changed.sum() > 0
    bodies = pl.Series(["One two, three", "x\ua7d2y z", "\u0130stanbul \u03a3\u03a3. ok", "?!", "\ua7d4"])
    expected = bodies.str.count_matches(r"\w+").cast(pl.Int64)
    assert stages.word_counts(bodies, stages.minhash_words(bodies)).to_list() == expected.to_list()


def test_sidecar_fields_win_over_text_fields(raw_copy):
    name = "003_0f58b206a21a80c4.txt"
    (raw_copy / f"{name}.meta.json").write_text('{"outlet": "Sidecar Outlet", "url": "https://example.org/x"}')
    ingested, rejects, _ = stages.ingest(raw_copy, [f for f in discover(raw_copy) if f.rel_path == name])
    articles, _, _, _, _ = stages.clean(ingested)
    row = articles.row(0, named=True)
    assert not rejects
    assert row["outlet"] == "Sidecar Outlet" and row["field_sources"]["outlet"] == "sidecar"
    assert row["url"] == "https://example.org/x"
    assert row["title"] and row["field_sources"]["title"].startswith("text:")


_BUS_STORY = ("The council voted on Tuesday to expand the night bus network across the city, adding six routes.\n"
              "Officials said the new routes would start running in the autumn and serve the outer districts first.\n"
              "Residents of the eastern estates had asked for a later service for several years, a survey showed.\n")


def test_a_page_date_is_bounded_by_fixed_years_not_by_the_day_of_the_run(tmp_path):
    (tmp_path / "page.txt").write_text("Council expands night buses\nBy Alex Smith\nPublished June 1, 2031\n" + _BUS_STORY)
    (tmp_path / "page.html").write_text(
        "<html><head><title>Council expands night buses</title>"
        "<meta property='article:published_time' content='2031-06-01T08:00:00Z'></head><body><article>"
        + "".join(f"<p>{line}</p>" for line in _BUS_STORY.splitlines()) + "</article></body></html>")
    ingested, _, _ = stages.ingest(tmp_path, discover(tmp_path))
    articles, _, _, rejects, repairs = stages.clean(ingested)
    assert not rejects and not [row for row in repairs if row["reason"] == "metadata-dropped"]
    assert articles.select("source_path", "published_date").rows() == [("page.html", dt.date(2031, 6, 1)),
                                                                      ("page.txt", dt.date(2031, 6, 1))]


def test_an_oversized_or_invisible_field_value_is_no_value(tmp_path):
    keywords = "".join(f"<meta property='article:tag' content='topic {n}'>" for n in range(MAX_FIELD_ITEMS + 1))
    (tmp_path / "page.html").write_text(
        f"<html><head><title>{'Night buses ' * 500}</title><meta name='author' content='Alex Smith'>{keywords}</head>"
        "<body><article>" + "".join(f"<p>{line}</p>" for line in _BUS_STORY.splitlines()) + "</article></body></html>")
    (tmp_path / "page.html.meta.json").write_text(json.dumps({"outlet": "\u200b\u200b", "language": "en"}))
    ingested, _, _ = stages.ingest(tmp_path, discover(tmp_path))
    articles, _, _, rejects, repairs = stages.clean(ingested)
    row = articles.row(0, named=True)
    assert not rejects and row["outlet"] is None and row["tags"] == [] and row["authors"] == ["Alex Smith"]
    assert row["field_sources"]["title"] != "html" and len(row["title"] or "") <= MAX_FIELD_CHARS
    assert sorted(r["detail"] for r in repairs if r["reason"] == "metadata-dropped") == [
        f"tags from og: {MAX_FIELD_ITEMS + 1} items > limit {MAX_FIELD_ITEMS}",
        f"title from html: {len('Night buses ' * 500) - 1} characters > limit {MAX_FIELD_CHARS}"]


def test_a_page_without_body_is_rejected(tmp_path):
    (tmp_path / "nav.txt").write_text("Home\n\nBack to top\n")
    ingested, _, _ = stages.ingest(tmp_path, discover(tmp_path))
    articles, furniture, _, rejects, _ = stages.clean(ingested)
    assert articles.height == 0
    assert [r["reason"] for r in rejects] == ["no-article-body"]
    assert furniture.height >= 1


def test_the_furniture_audit_holds_every_line_not_kept_as_body_and_word_counts_are_counted(raw_copy):
    files = sorted(discover(raw_copy), key=lambda raw: raw.rel_path)
    ingested, _, _ = stages.ingest(raw_copy, files)
    articles, furniture, _, _, _ = stages.clean(ingested)
    pages = clean_shard(ingested["text"].to_list(), extracted=[False] * ingested.height)
    expected = sorted((doc_id, line.line_no, line.category, line.rule_id, line.text)
                      for doc_id, page in zip(ingested["doc_id"], pages, strict=True) for line in page.lines if line.category != "body")
    assert expected and sorted(furniture.iter_rows()) == expected
    assert articles["word_count"].to_list() == [len(re.findall(r"\w+", body)) for body in articles["body"]]


def test_the_furniture_suite_finds_one_bad_line_among_many(raw_copy, tmp_path):
    """The suite checks (category, rule) pairs with their smallest line number: one bad line still fails it."""
    plan = clean_run(raw_copy, tmp_path / "curated")
    steps.curate_step(plan)
    doc_id = tables.read_parquet(plan.run.shards("clean"), tables.ARTICLES)["doc_id"][0]
    bad = [{"doc_id": doc_id, "line_no": 0, "category": "nav", "rule_id": "nav.menu", "text": "Home"},
           {"doc_id": doc_id, "line_no": 7, "category": "not-a-category", "rule_id": "nav.menu", "text": "Menu"}]
    tables.write_parquet(stages.frame(bad, tables.FURNITURE).to_arrow(), plan.run.shard("furniture", 99), tables.FURNITURE)
    report = steps.quality_step(plan)
    failed = {(e["expectation"], e["column"]) for e in report["stages"]["furniture"]["expectations"] if not e["success"]}
    assert failed == {("expect_column_values_to_be_in_set", "category"), ("expect_column_values_to_be_between", "line_no")}
    assert any(name.startswith("furniture:") for name in report["critical_failed"])
