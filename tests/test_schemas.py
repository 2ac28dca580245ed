"""The stage contracts reject invalid rows with a reason and keep the valid ones."""
from __future__ import annotations

import datetime as dt

import polars as pl

from commentary import stages, tables
from schemas import models
from schemas.validation import DETAIL, REASON, split_valid


def _article(**overrides) -> dict:
    row = {name: None for name in tables.ARTICLES.names}
    row.update(
        doc_id="0123456789abcdef", source_path="a.txt", source_sha256="0" * 64, format="text",
        title="A title", authors=["Ann Author"], tags=[], summary=[], body="First paragraph.\n\nSecond one.",
        word_count=4, body_sha256="1" * 64, field_sources={name: None for name in models.SOURCED_FIELDS},
        published_date=dt.date(2021, 6, 25),
    )
    row.update(overrides)
    return row


def test_valid_articles_pass_unchanged():
    frame = stages.frame([_article()], tables.ARTICLES)
    valid, failed = split_valid(frame, models.Article)
    assert valid.height == 1 and failed.height == 0


def test_each_invalid_row_is_failed_with_the_check_that_failed():
    rows = [
        _article(),
        _article(doc_id="NOT-HEX", source_path="b.txt"),
        _article(doc_id="fedcba9876543210", source_path="c.txt", body=""),
        _article(doc_id="aaaaaaaaaaaaaaaa", source_path="d.txt", body=" leading space"),
        _article(doc_id="bbbbbbbbbbbbbbbb", source_path="e.txt", format="pdf"),
    ]
    valid, failed = split_valid(stages.frame(rows, tables.ARTICLES), models.Article)
    assert valid["source_path"].to_list() == ["a.txt"]
    reasons = dict(zip(failed["source_path"], failed[REASON], strict=True))
    assert reasons["b.txt"] == "schema:doc_id:str_matches"
    assert reasons["c.txt"].startswith("schema:body:")
    assert reasons["d.txt"] == "schema:Article:body_paragraphs_are_trimmed"
    assert reasons["e.txt"] == "schema:format:isin"
    assert all(failed[DETAIL].str.len_chars() > 0)


def test_duplicate_ids_fail_both_rows():
    rows = [_article(), _article(source_path="other.txt")]
    valid, failed = split_valid(stages.frame(rows, tables.ARTICLES), models.Article)
    assert valid.height == 0 and set(failed[REASON]) == {"schema:doc_id:field_uniqueness"}


def test_missing_column_fails_the_whole_table():
    frame = stages.frame([_article()], tables.ARTICLES).drop("body")
    valid, failed = split_valid(frame, models.Article)
    assert valid.height == 0 and failed.height == 1
    assert failed[REASON][0].startswith("schema:")


def test_furniture_categories_are_closed():
    frame = pl.DataFrame({"doc_id": ["0123456789abcdef"] * 2, "line_no": [1, 2], "category": ["nav", "sidebar"],
                          "rule_id": ["nav.breadcrumb", "x.y"], "text": ["Home", "Ads"]})
    valid, failed = split_valid(frame, models.FurnitureLine)
    assert valid["category"].to_list() == ["nav"] and failed[REASON].to_list() == ["schema:category:isin"]


def test_arrow_schemas_follow_the_models():
    assert tables.ARTICLES.names == list(models.Article.to_schema().columns)
    assert str(tables.ARTICLES.field("authors").type) == "list<item: string>"
    assert str(tables.ARTICLES.field("published_date").type) == "date32[day]"
