"""Pure stage functions: ingest, clean and dedup keys per shard; canonical copies over a run.

Each takes and returns in-memory tables; reading and writing shard files is the caller's job.
Rejects are plain dicts with ``source_path``, ``stage``, ``reason`` and ``detail``.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from commentary import tables
from commentary.clean import CleanedPage
from commentary.clean.html import extract_html
from commentary.clean.text import clean_shard
from commentary.ingest import RawFile, RejectedFile, cap_long_lines, read_raw
from commentary.settings import LSH_BANDS, LSH_ROWS, MINHASH_PERMUTATIONS, NEAR_DUPLICATE_THRESHOLD, SHINGLE_WORDS
from schemas import models

_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")
#: Fields whose value is a list; the others are scalars.
_LIST_FIELDS = {"authors", "tags", "summary"}
#: Fixed so that signatures, and so duplicate groups, are the same in every run.
_MINHASH_SEED = 1
#: Candidate pairs whose signatures are compared at once (bounds the memory of the check).
_CHECKED_PAIRS = 65_536
#: Fields taken from HTML metadata; a page description is a teaser, not the key-takeaway summary.
_HTML_FIELDS = set(models.SOURCED_FIELDS) - {"summary"}


def reject(source_path: str, stage: str, reason: str, detail: str) -> dict:
    """One reject row."""
    return {"source_path": source_path, "stage": stage, "reason": reason, "detail": detail}


def frame(records: list[dict], schema: pa.Schema) -> pl.DataFrame:
    """Build a frame with exactly the stage schema (also when there are no records)."""
    return pl.from_arrow(pa.Table.from_pylist(records, schema=schema))


def ingest(raw_root: Path, files: list[RawFile]) -> tuple[pl.DataFrame, list[dict], list[dict]]:
    """Read one shard of raw files into ingest records; returns records, rejects and repairs.

    A file that cannot be read is a reject; an unexpected error on one file rejects that file
    (reason ``ingest-failed``) and the others go on.
    """
    records, rejects, repairs = [], [], []
    for raw in files:
        try:
            record, fixes = read_raw(raw_root, raw)
        except RejectedFile as error:
            rejects.append(reject(raw.rel_path, "ingest", error.reason, error.detail))
        except Exception as error:  # noqa: BLE001 - one bad file must not stop the shard
            rejects.append(reject(raw.rel_path, "ingest", "ingest-failed", _describe(error)))
        else:
            records.append(record)
            repairs.extend(reject(raw.rel_path, "ingest", reason, detail) for reason, detail in fixes)
    return frame(records, tables.INGESTED), rejects, repairs


def clean(ingested: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, list[dict], list[dict]]:
    """Strip furniture and extract fields; returns articles, the furniture audit, rejects and repairs.

    An extractor or cleaner error on one document rejects that document, not the shard.
    """
    docs, html_meta, texts, extracted, rejects, repairs = [], [], [], [], [], []
    for doc in ingested.to_dicts():
        meta = {}
        if doc["format"] == "html":
            try:
                extraction = extract_html(doc["text"], url=doc["url"])
            except Exception as error:  # noqa: BLE001 - one bad page must not stop the shard
                rejects.append(reject(doc["source_path"], "clean", "extraction-failed", _describe(error)))
                continue
            if extraction.is_listing:
                rejects.append(reject(doc["source_path"], "clean", "not-an-article", f"listing or index page: {extraction.listing_reason}"))
                continue
            doc["text"], cut = cap_long_lines(extraction.text)
            meta = extraction.metadata
            repairs.extend(reject(doc["source_path"], "clean", reason, detail) for reason, detail in cut)
        docs.append(doc)
        html_meta.append(meta)
        texts.append(doc["text"])
        extracted.append(doc["format"] == "html")
    articles, furniture = [], []
    for doc, meta, page in zip(docs, html_meta, _clean_each(texts, extracted), strict=True):
        try:
            if isinstance(page, Exception):
                raise page
            lines = [{"doc_id": doc["doc_id"], "line_no": d.line_no, "category": d.category, "rule_id": d.rule_id, "text": d.text}
                     for d in page.lines if d.category != "body"]
            article = _article(doc, meta, page) if page.body.strip() else None
        except Exception as error:  # noqa: BLE001 - one bad page must not stop the shard
            rejects.append(reject(doc["source_path"], "clean", "cleaning-failed", _describe(error)))
            continue
        furniture.extend(lines)
        if article is None:
            rejects.append(reject(doc["source_path"], "clean", "no-article-body", "no line was classified as article body"))
        else:
            articles.append(article)
    return frame(articles, tables.ARTICLES), frame(furniture, tables.FURNITURE), rejects, repairs


def _clean_each(texts: list[str], extracted: list[bool]) -> list[CleanedPage | Exception]:
    """Clean the shard in one call; if that fails, clean document by document to isolate the failure.

    ``extracted[i]`` marks HTML extractor output, which gets only the cleaner's precision tier.
    """
    try:
        pages = clean_shard(texts, extracted=extracted)
        if len(pages) == len(texts):
            return pages
    except Exception:  # noqa: BLE001 - retried one by one below, where the error is recorded
        pass
    out = []
    for text, is_extracted in zip(texts, extracted, strict=True):
        try:
            (page,) = clean_shard([text], extracted=[is_extracted])
            out.append(page)
        except Exception as error:  # noqa: BLE001
            out.append(error)
    return out


def _describe(error: Exception) -> str:
    """An exception as a one-line reject detail."""
    message = str(error).strip()
    return f"{type(error).__name__}: {message.splitlines()[0][:300]}" if message else type(error).__name__


def _article(doc: dict, html_meta: dict, page: CleanedPage) -> dict:
    """Merge fields by precedence (sidecar, then HTML metadata, then the visible text)."""
    row = {key: doc[key] for key in ("doc_id", "source_path", "source_sha256", "format")}
    sources = {}
    for name in models.SOURCED_FIELDS:
        from_html = html_meta.get(name, (None, None)) if name in _HTML_FIELDS else (None, None)
        candidates = [(doc.get(name), "sidecar"), from_html,
                      (getattr(page, name, None), page.field_sources.get(name))]
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


def dedup_keys(articles: pl.DataFrame) -> pl.DataFrame:
    """What choosing canonical copies needs, per shard: identity, outlet, dates, richness, MinHash signature."""
    filled = [pl.col(name).list.len() > 0 if name in _LIST_FIELDS else pl.col(name).is_not_null() for name in models.SOURCED_FIELDS]
    signatures = pl.Series("minhash", minhash_signatures(articles["body"].to_list()),
                           dtype=pl.Array(pl.UInt32, MINHASH_PERMUTATIONS))
    return articles.select(
        "doc_id", "source_path", "published_date", "outlet", "syndicated_from", "body_sha256",
        pl.sum_horizontal(filled).alias("metadata_fields"),
    ).with_columns(signatures)


def minhash_signatures(bodies: list[str]) -> np.ndarray:
    """One MinHash signature (uint32 per permutation) per body, over its lower-cased word 5-grams."""
    from datasketch import MinHash  # imports scipy (about 1 s); a run with nothing to clean or curate never needs it

    shingle_sets = []
    for body in bodies:
        words = _WORD.findall(body.casefold())
        size = min(SHINGLE_WORDS, len(words))
        shingle_sets.append({" ".join(words[i:i + size]).encode() for i in range(len(words) - size + 1)})
    sketches = MinHash.bulk(shingle_sets, num_perm=MINHASH_PERMUTATIONS, seed=_MINHASH_SEED)
    return np.array([sketch.hashvalues for sketch in sketches], dtype=np.uint32).reshape(len(bodies), MINHASH_PERMUTATIONS)


def near_duplicate_pairs(signatures: np.ndarray) -> list[tuple[int, int]]:
    """Index pairs whose estimated Jaccard similarity reaches NEAR_DUPLICATE_THRESHOLD, enough to connect their groups.

    Rows with identical signatures are paired with the first of them only. Among the distinct
    signatures, candidates are the pairs that agree on a whole LSH band (LSH_BANDS bands of LSH_ROWS
    values, the banding datasketch's MinHashLSH picks for this threshold); each is then checked on the
    whole signature, a chunk of pairs at a time. Everything is NumPy arrays of a few bytes per
    document, band or candidate pair.
    """
    rows = np.ascontiguousarray(signatures)
    _, first, same = np.unique(rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel(),
                               return_index=True, return_inverse=True)
    copies = [(int(first[c]), i) for i, c in enumerate(same.ravel()) if first[c] != i]
    distinct = rows[first]
    candidates = []
    for band in range(LSH_BANDS):
        values = np.ascontiguousarray(distinct[:, band * LSH_ROWS:(band + 1) * LSH_ROWS])
        _, bucket = np.unique(values.view(np.dtype((np.void, values.dtype.itemsize * LSH_ROWS))).ravel(), return_inverse=True)
        order = np.argsort(bucket.ravel(), kind="stable")
        for members in np.split(order, np.flatnonzero(np.diff(bucket.ravel()[order])) + 1):
            if len(members) > 1:
                left, right = np.triu_indices(len(members), 1)
                candidates.append(np.minimum(members[left], members[right]) * len(distinct) + np.maximum(members[left], members[right]))
    codes = np.unique(np.concatenate(candidates)) if candidates else np.empty(0, dtype=np.int64)
    similar = []
    for start in range(0, len(codes), _CHECKED_PAIRS):
        left, right = np.divmod(codes[start:start + _CHECKED_PAIRS], len(distinct))
        keep = (distinct[left] == distinct[right]).mean(axis=1) >= NEAR_DUPLICATE_THRESHOLD
        similar += zip(first[left[keep]].tolist(), first[right[keep]].tolist(), strict=True)
    return sorted({(min(i, j), max(i, j)) for i, j in [*copies, *similar]})


def canonical_copies(keys: pl.DataFrame) -> pl.DataFrame:
    """``doc_id`` -> ``duplicate_of`` over a whole run's ``dedup_keys``.

    A group joins exact duplicates (equal ``body_sha256``) and near duplicates (MinHash, estimated
    Jaccard >= NEAR_DUPLICATE_THRESHOLD), transitively. Its canonical copy, which keeps ``duplicate_of`` null, is
    chosen by: the original outlet (an outlet that another copy names as ``syndicated_from``, then a
    copy that names no other outlet), then the earliest ``published_date``, then the most metadata
    fields filled, then the first ``source_path``.
    """
    parent = list(range(keys.height))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with_hash: dict[str, int] = {}
    pairs = [(first_with_hash.setdefault(digest, i), i) for i, digest in enumerate(keys["body_sha256"])]
    pairs += near_duplicate_pairs(keys["minhash"].to_numpy()) if keys.height > 1 else []
    for i, j in pairs:
        parent[root(j)] = root(i)
    grouped = keys.with_columns(group=pl.Series([root(i) for i in range(keys.height)], dtype=pl.Int64),
                                outlet_key=pl.col("outlet").str.to_lowercase())
    named_as_source = (grouped.select("group", outlet_key=pl.col("syndicated_from").str.to_lowercase())
                       .drop_nulls().unique().with_columns(named=pl.lit(True)))
    ranked = grouped.join(named_as_source, on=["group", "outlet_key"], how="left").with_columns(
        original_rank=pl.when(pl.col("named")).then(0).when(pl.col("syndicated_from").is_null()).then(1).otherwise(2),
    )
    canonical = (
        ranked.sort(["group", "original_rank", "published_date", "metadata_fields", "source_path"],
                    descending=[False, False, False, True, False], nulls_last=True)
        .group_by("group", maintain_order=True)
        .agg(pl.col("doc_id").first().alias("canonical"))
    )
    return ranked.join(canonical, on="group").select(
        "doc_id", pl.when(pl.col("canonical") != pl.col("doc_id")).then(pl.col("canonical")).alias("duplicate_of"),
    )
