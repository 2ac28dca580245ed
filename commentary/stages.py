"""Pure stage functions over one shard: ingest, clean, curate.

Each takes and returns in-memory tables; reading and writing shard files is the caller's job.
Rejects are plain dicts with ``source_path``, ``stage``, ``reason`` and ``detail``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import polars as pl
import pyarrow as pa

from commentary import tables
from commentary.clean import CleanedPage
from commentary.clean.html import extract_html
from commentary.clean.text import clean_shard
from commentary.ingest import RawFile, RejectedFile, read_raw
from schemas import models

_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")
#: Fields whose value is a list; the others are scalars.
_LIST_FIELDS = {"authors", "tags", "summary"}
#: Fields taken from HTML metadata; a page description is a teaser, not the key-takeaway summary.
_HTML_FIELDS = set(models.SOURCED_FIELDS) - {"summary"}


def reject(source_path: str, stage: str, reason: str, detail: str) -> dict:
    """One reject row."""
    return {"source_path": source_path, "stage": stage, "reason": reason, "detail": detail}


def frame(records: list[dict], schema: pa.Schema) -> pl.DataFrame:
    """Build a frame with exactly the stage schema (also when there are no records)."""
    return pl.from_arrow(pa.Table.from_pylist(records, schema=schema))


def ingest(raw_root: Path, files: list[RawFile]) -> tuple[pl.DataFrame, list[dict]]:
    """Read one shard of raw files into ingest records; failures become rejects."""
    records, rejects = [], []
    for raw in files:
        try:
            records.append(read_raw(raw_root, raw))
        except RejectedFile as error:
            rejects.append(reject(raw.rel_path, "ingest", error.reason, error.detail))
    return frame(records, tables.INGESTED), rejects


def clean(ingested: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, list[dict]]:
    """Strip furniture and extract fields; returns articles, the furniture audit and rejects."""
    docs, html_meta, texts, rejects = [], [], [], []
    for doc in ingested.to_dicts():
        meta = {}
        if doc["format"] == "html":
            extraction = extract_html(doc["text"], url=doc["url"])
            if extraction.is_listing:
                rejects.append(reject(doc["source_path"], "clean", "not-an-article", f"listing or index page: {extraction.listing_reason}"))
                continue
            doc["text"], meta = extraction.text, extraction.metadata
        docs.append(doc)
        html_meta.append(meta)
        texts.append(doc["text"])
    articles, furniture = [], []
    for doc, meta, page in zip(docs, html_meta, clean_shard(texts), strict=True):
        furniture.extend(
            {"doc_id": doc["doc_id"], "line_no": d.line_no, "category": d.category, "rule_id": d.rule_id, "text": d.text}
            for d in page.lines if d.category != "body"
        )
        if not page.body.strip():
            rejects.append(reject(doc["source_path"], "clean", "no-article-body", "no line was classified as article body"))
            continue
        articles.append(_article(doc, meta, page))
    return frame(articles, tables.ARTICLES), frame(furniture, tables.FURNITURE), rejects


def _article(doc: dict, html_meta: dict, page: CleanedPage) -> dict:
    """Merge fields by precedence (sidecar, then HTML metadata, then the visible text)."""
    row = {key: doc[key] for key in ("doc_id", "source_path", "source_sha256", "format")}
    sources = {}
    page_fields = dataclasses.asdict(page)
    for name in models.SOURCED_FIELDS:
        from_html = html_meta.get(name, (None, None)) if name in _HTML_FIELDS else (None, None)
        candidates = [(doc.get(name), "sidecar"), from_html,
                      (page_fields.get(name), page.field_sources.get(name))]
        value, source = next(((v, s) for v, s in candidates if v), (None, None))
        row[name] = value if value or name not in _LIST_FIELDS else []
        sources[name] = source
    row["field_sources"] = sources
    row["body"] = page.body
    row["word_count"] = len(_WORD.findall(page.body))
    row["body_sha256"] = body_fingerprint(page.body)
    row["duplicate_of"] = None
    return row


def body_fingerprint(body: str) -> str:
    """Hash of the body with case and white space normalised: equal for exact duplicates."""
    return hashlib.sha256(_SPACE.sub(" ", body).strip().casefold().encode("utf-8")).hexdigest()


def canonical_copies(keys: pl.DataFrame) -> pl.DataFrame:
    """``doc_id`` -> ``duplicate_of`` for exact duplicates (equal ``body_sha256``).

    The canonical copy of a group is the one with the earliest date, then the first source path;
    it keeps ``duplicate_of`` null.
    """
    canonical = (
        keys.sort(["body_sha256", "published_date", "source_path"], nulls_last=True)
        .group_by("body_sha256", maintain_order=True)
        .agg(pl.col("doc_id").first().alias("canonical"))
    )
    return keys.join(canonical, on="body_sha256").select(
        "doc_id", pl.when(pl.col("canonical") != pl.col("doc_id")).then(pl.col("canonical")).alias("duplicate_of"),
    )
