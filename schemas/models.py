"""Pandera models of every stage table: the one source of the data contract.

Arrow schemas for Parquet (``commentary.tables``) and the release's ``datapackage.json`` are
derived from these models. Later stages inherit the identity columns from ``SourceRecord``.
"""
from __future__ import annotations

import datetime as dt

import pandera.polars as pa
import polars as pl

from commentary.settings import MINHASH_PERMUTATIONS

HEX16 = r"^[0-9a-f]{16}$"
HEX64 = r"^[0-9a-f]{64}$"
#: Fields that can come from several sources; ``field_sources`` says which one won.
SOURCED_FIELDS = (
    "title", "authors", "published_date", "outlet", "section", "tags", "summary",
    "author_bio", "syndicated_from", "syndicated_date", "url", "language",
)
CATEGORIES = (
    "body", "title", "byline", "bio", "summary", "syndication", "section",
    "nav", "media", "engagement", "comments", "related", "disclaimer", "tags", "code",
)

CHANGE_KINDS = ("added", "removed", "modified")


class _Strict(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = True


class SourceRecord(_Strict):
    """Identity of a document: which raw file it came from."""

    doc_id: str = pa.Field(unique=True, str_matches=HEX16, description="sha256 of source_path, 16 hex digits; stable across releases")
    source_path: str = pa.Field(unique=True, str_length={"min_value": 1}, description="path of the raw file relative to the raw root")
    source_sha256: str = pa.Field(str_matches=HEX64, description="sha256 of the raw file's bytes")
    format: str = pa.Field(isin=["text", "html"], description="raw format")


class IngestedRecord(SourceRecord):
    """A decoded raw file with its sidecar metadata."""

    bytes: int = pa.Field(ge=1, description="size of the raw file on disk")
    url: str = pa.Field(nullable=True, str_matches=r"^https?://", description="from the sidecar, or a WARC record's target URI")
    outlet: str = pa.Field(nullable=True, description="from the sidecar")
    published_date: dt.date = pa.Field(nullable=True, description="from the sidecar")
    language: str = pa.Field(nullable=True, description="from the sidecar")
    text: str = pa.Field(str_length={"min_value": 1}, description="decoded text, line ends normalised")
    fetched_at: str = pa.Field(nullable=True, description="WARC-Date of a WARC response record (when the page was fetched); null for other files")


class Article(SourceRecord):
    """One cleaned article: the released table."""

    url: str = pa.Field(nullable=True, str_matches=r"^https?://", description="the sidecar's URL, a WARC record's target URI, else the page's canonical URL")
    outlet: str = pa.Field(nullable=True, description="publishing outlet; null when unknown, never guessed")
    title: str = pa.Field(nullable=True, description="headline")
    authors: list[str] = pa.Field(description="author names; empty when unknown")
    published_date: dt.date = pa.Field(nullable=True, description="publication date")
    section: str = pa.Field(nullable=True, description="section or content type")
    tags: list[str] = pa.Field(description="topic tags")
    summary: list[str] = pa.Field(description="key-takeaway items")
    author_bio: str = pa.Field(nullable=True, description="author biography")
    syndicated_from: str = pa.Field(nullable=True, description="outlet where the piece first appeared")
    syndicated_date: dt.date = pa.Field(nullable=True, description="date of the first appearance")
    body: str = pa.Field(str_length={"min_value": 1}, description="article text, paragraphs joined by one blank line")
    word_count: int = pa.Field(ge=1, description="number of \\w+ tokens in body")
    language: str = pa.Field(nullable=True, description="language tag: from the sidecar or page metadata, else detected from the body")
    body_sha256: str = pa.Field(str_matches=HEX64, description="sha256 of the case- and space-normalised body")
    duplicate_of: str = pa.Field(nullable=True, str_matches=HEX16, description="doc_id of the canonical copy, null for canonical articles")
    field_sources: pl.Struct = pa.Field(
        dtype_kwargs={"fields": {name: pl.String for name in SOURCED_FIELDS}},
        description="for each field, where its value came from (sidecar, warc, jsonld, og, meta, html, trafilatura, text:<rule>, "
                    "detected:py3langid)",
    )

    @pa.dataframe_check
    def body_paragraphs_are_trimmed(cls, data) -> pl.LazyFrame:
        """No paragraph of the body starts or ends with white space."""
        return data.lazyframe.select(~pl.col("body").str.contains(r"(^|\n\n)\s|\s(\n\n|$)"))


class FurnitureLine(_Strict):
    """One removed line of one document and the rule that removed it."""

    doc_id: str = pa.Field(str_matches=HEX16)
    line_no: int = pa.Field(ge=1, description="1-based line number in the cleaned text")
    category: str = pa.Field(isin=[c for c in CATEGORIES if c != "body"])
    rule_id: str = pa.Field(str_matches=r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")
    text: str


class DuplicateMark(_Strict):
    """One article of a run and the canonical copy it duplicates: the curate stage's table."""

    doc_id: str = pa.Field(unique=True, str_matches=HEX16)
    duplicate_of: str = pa.Field(nullable=True, str_matches=HEX16, description="doc_id of the canonical copy, null for canonical articles")

    @pa.dataframe_check
    def not_a_copy_of_itself(cls, data) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("duplicate_of").ne_missing(pl.col("doc_id")))


class ArticleChange(_Strict):
    """One article that differs from the previous release (a release's ``changes.parquet``)."""

    doc_id: str = pa.Field(unique=True, str_matches=HEX16, description="the article")
    change: str = pa.Field(isin=list(CHANGE_KINDS), description="added, removed or modified since the previous release")
    changed_fields: list[str] = pa.Field(description="columns whose value differs, and 'furniture' when its removed lines differ; empty unless modified")


class DocumentKey(_Strict):
    """What decides a document's clean outputs (the clean cache's key), per shard of a run."""

    doc_id: str = pa.Field(str_matches=HEX16)
    source_path: str
    cache_key: str = pa.Field(str_matches=HEX64, description="sha256 of the source hash, path and sidecar fields")


class FileStamp(_Strict):
    """Size and change times of a raw file and its sidecar, per shard of a run (the ingest cache's key)."""

    doc_id: str = pa.Field(str_matches=HEX16)
    source_path: str
    stamp: str = pa.Field(nullable=True, description="null: read the file again next time")


class DedupKey(_Strict):
    """What choosing canonical copies needs of each article, per shard of a run; never released."""

    doc_id: str = pa.Field(str_matches=HEX16)
    source_path: str
    published_date: dt.date = pa.Field(nullable=True)
    outlet: str = pa.Field(nullable=True)
    syndicated_from: str = pa.Field(nullable=True)
    body_sha256: str = pa.Field(str_matches=HEX64)
    metadata_fields: pl.UInt32 = pa.Field(description="number of the sourced fields filled")
    minhash: pl.Array = pa.Field(dtype_kwargs={"inner": pl.UInt32, "shape": MINHASH_PERMUTATIONS},
                                 description="MinHash signature of the body's word shingles")


class ArticleMeasure(_Strict):
    """What the quality suite checks of each cleaned article (``schemas.measures``), per shard of a run; never released."""

    doc_id: str = pa.Field(str_matches=HEX16)
    title: str = pa.Field(nullable=True)
    word_count: int
    published_date: dt.date = pa.Field(nullable=True)
    body_chars: pl.UInt32 = pa.Field(description="length of the body in characters")
    known_furniture: str = pa.Field(nullable=True, description="the furniture rule the body's first matching paragraph matches")


class Reject(_Strict):
    """A raw file (or record) that did not make it into the release, and why."""

    source_path: str
    stage: str = pa.Field(isin=["ingest", "clean", "curate", "quality", "release"])
    reason: str = pa.Field(str_matches=r"^[a-z0-9:_.-]+$")
    detail: str = pa.Field(str_length={"min_value": 1})


class Repair(Reject):
    """A raw file changed to become usable (a guessed encoding, repaired mojibake, cut lines), and how."""

    stage: str = pa.Field(isin=["ingest", "clean"])
