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
#: Signature pairs compared at once (bounds the memory of the check: about 1 KiB per pair).
_CHECKED_PAIRS = 8192
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
            article = _article(doc, meta, page) if page.body.strip() and page.rejection is None else None
        except Exception as error:  # noqa: BLE001 - one bad page must not stop the shard
            rejects.append(reject(doc["source_path"], "clean", "cleaning-failed", _describe(error)))
            continue
        furniture.extend(lines)
        if article is None:
            reason, detail = page.rejection or ("no-article-body", "no line was classified as article body")
            rejects.append(reject(doc["source_path"], "clean", reason, detail))
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


def near_duplicate_pairs(signatures: np.ndarray) -> np.ndarray:
    """Index pairs ``(i, j)``, ``i < j``, whose estimated Jaccard similarity reaches NEAR_DUPLICATE_THRESHOLD, enough to connect their groups.

    Rows with identical signatures are paired with the first of them only (found through a 64-bit
    hash of each row, then checked on the whole row). Among the other rows, candidates are the
    pairs whose hashes of a whole LSH band agree (LSH_BANDS bands of LSH_ROWS values, the banding
    datasketch's MinHashLSH picks for this threshold); each is then checked on the whole signature,
    so a hash collision costs a check, never a wrong pair.
    Besides the signatures, only a few bytes per document, band or candidate pair are held.
    """
    everyone = np.arange(len(signatures))
    _, first_index, which = np.unique(_row_hashes(signatures), return_index=True, return_inverse=True)
    first = first_index[which.ravel()]
    copy = first != everyone
    copy[copy] = _agreement(signatures, first[copy], everyone[copy]) == 1.0
    distinct = everyone[~copy]
    candidates = [_pairs_within_buckets(_row_hashes(signatures[distinct, band * LSH_ROWS:(band + 1) * LSH_ROWS]))
                  for band in range(LSH_BANDS)]
    codes = np.unique(np.concatenate([np.minimum(a, b) * len(distinct) + np.maximum(a, b) for a, b in candidates]))
    left, right = (distinct[side] for side in np.divmod(codes, max(1, len(distinct))))
    similar = _agreement(signatures, left, right) >= NEAR_DUPLICATE_THRESHOLD
    pairs = np.concatenate([np.stack([first[copy], everyone[copy]], axis=1), np.stack([left[similar], right[similar]], axis=1)])
    return np.unique(np.sort(pairs, axis=1), axis=0) if len(pairs) else pairs.reshape(0, 2)


def _pairs_within_buckets(bucket: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of positions ``(a, b)`` whose ``bucket`` values are equal, as two index arrays."""
    order = np.argsort(bucket, kind="stable")
    ranked = bucket[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    ends = np.repeat(np.r_[starts[1:], len(ranked)], np.diff(np.r_[starts, len(ranked)]))
    partners = ends - np.arange(len(ranked)) - 1
    left = np.repeat(np.arange(len(ranked)), partners)
    right = left + 1 + np.arange(len(left)) - np.repeat(np.cumsum(partners) - partners, partners)
    return order[left], order[right]


def _row_hashes(rows: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row of an unsigned integer matrix, one column at a time (no copy of the matrix)."""
    hashes = np.zeros(len(rows), dtype=np.uint64)
    for column in rows.T:
        hashes = hashes * np.uint64(0x100000001B3) + column.astype(np.uint64)
    return hashes


def _agreement(signatures: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The share of equal values of the signatures ``left[k]`` and ``right[k]``, _CHECKED_PAIRS pairs at a time."""
    shares = np.empty(len(left))
    for k in range(0, len(left), _CHECKED_PAIRS):
        shares[k:k + _CHECKED_PAIRS] = (signatures[left[k:k + _CHECKED_PAIRS]] == signatures[right[k:k + _CHECKED_PAIRS]]).mean(axis=1)
    return shares


def canonical_copies(keys: pl.DataFrame, signatures: np.ndarray) -> pl.DataFrame:
    """``doc_id`` -> ``duplicate_of`` over a whole run's ``dedup_keys`` (``signatures``: their ``minhash`` rows, in order).

    A group joins exact duplicates (equal ``body_sha256``) and near duplicates (MinHash, estimated
    Jaccard >= NEAR_DUPLICATE_THRESHOLD), transitively. Its canonical copy, which keeps ``duplicate_of`` null, is
    chosen by: the original outlet (an outlet that another copy names as ``syndicated_from``, then a
    copy that names no other outlet), then the earliest ``published_date``, then the most metadata
    fields filled, then the first ``source_path``.
    """
    from scipy.sparse import coo_array
    from scipy.sparse.csgraph import connected_components

    if not keys.height:
        return keys.select("doc_id", duplicate_of=pl.col("doc_id").head(0))
    first_same_body = keys.with_row_index().select(pl.col("index").first().over("body_sha256")).to_series().to_numpy()
    pairs = np.concatenate([np.stack([first_same_body, np.arange(keys.height)], axis=1), near_duplicate_pairs(signatures)])
    links = coo_array((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(keys.height, keys.height))
    _, group = connected_components(links, directed=False)
    grouped = keys.with_columns(group=pl.Series(group, dtype=pl.Int64), outlet_key=pl.col("outlet").str.to_lowercase())
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
