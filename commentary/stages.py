"""Pure stage functions: ingest, clean and dedup keys per shard; canonical copies over a run.

Each takes and returns in-memory tables; reading and writing shard files is the caller's job.
Rejects and repairs are plain dicts with ``source_path``, ``stage``, ``reason`` and ``detail``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import chain, pairwise
from pathlib import Path
from typing import NamedTuple, TypeVar, get_origin, get_type_hints

import numpy as np
import polars as pl
import pyarrow as pa

from commentary import language, tables, warc
from commentary.clean import CleanedPage, PageLines, released_body
from commentary.clean.extractors import brief
from commentary.clean.html import TooCostly, extract_html_shard
from commentary.clean.text import clean_shard
from commentary.ingest import RawFile, RejectedFile, cap_long_lines, http_url, read_raw, valid_text
from commentary.settings import (
    LSH_BANDS, LSH_ROWS, MAX_FIELD_CHARS, MAX_FIELD_ITEMS, MINHASH_PERMUTATIONS, NEAR_DUPLICATE_THRESHOLD, SHINGLE_WORDS,
)
from commentary.storage import RemoteFolder
from schemas import models

T = TypeVar("T")
#: White space within a line: every character ``str.isspace`` calls white space but the line break, spelled out
#: for Polars' regex engine (its ``\s`` is Unicode's White_Space, which leaves out U+001C to U+001F).
LINE_SPACE = "\t\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
#: The runs of white space within a line that normalising changes: two characters or more, or one that is not a
#: space. A single space between words (most of them) is left unmatched, and so costs no replacement.
_CHANGED_LINE_SPACE = f"[{LINE_SPACE}]{{2,}}|[{LINE_SPACE.replace(' ', '')}]"
#: The characters that Polars' ``to_lowercase`` maps otherwise than Python's ``casefold`` (``ß``, final sigma, Cherokee,
#: ligatures...), and capital sigma, whose lower case depends on its neighbours: a text without any is case-folded
#: by Polars (a test checks every code point).
_FOLDED_OTHERWISE = "[\u00b5\u00df\u0149\u017f\u01f0\u0345\u0390\u03a3\u03b0\u03c2\u03d0-\u03d1\u03d5-\u03d6\u03f0-\u03f1\u03f5\u0587\u13a0-\u13f5\u13f8-\u13fd\u1c80-\u1c89\u1e96-\u1e9b\u1e9e\u1f50\u1f52\u1f54\u1f56\u1f80-\u1faf\u1fb2-\u1fb4\u1fb6-\u1fb7\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fc7\u1fcc\u1fd2-\u1fd3\u1fd6-\u1fd7\u1fe2-\u1fe4\u1fe6-\u1fe7\u1ff2-\u1ff4\u1ff6-\u1ff7\u1ffc\ua7cb-\ua7cc\ua7ce\ua7d2\ua7d4\ua7da\ua7dc\uab70-\uabbf\ufb00-\ufb06\ufb13-\ufb17\U00010d50-\U00010d65\U00016ea0-\U00016eb8]"
#: The characters whose lower case Polars' ``\w`` takes otherwise than themselves: a body without them has as many
#: ``\w+`` words as its lower case (a test checks every code point).
_WORDS_OTHERWISE_IN_LOWER_CASE = "[\ua7d2\ua7d4]"
#: Sourced fields whose value is a list; the others are scalars.
_LIST_FIELDS = {name for name in models.SOURCED_FIELDS if get_origin(get_type_hints(models.Article)[name]) is list}
#: Fixed so that signatures, and so duplicate groups, are the same in every run.
_MINHASH_SEED = 1
#: FNV-1's 64-bit prime: the base of the polynomial hashes of words (``_word_hashes``; odd, and so invertible modulo
#: 2**64) and of signature rows (``_row_hashes``).
_FNV_PRIME = 0x100000001B3
#: Bytes of words hashed at once: the hash's arrays take about 40 bytes per byte (a shard of long CJK words, each a
#: word of its own, used to take 1 GB for 30 MB).
_HASHED_BYTES = 1 << 20
#: Signature pairs compared at once (bounds the memory of the check: about 1 KiB per pair).
_CHECKED_PAIRS = 8192
#: An LSH bucket of more rows than this (one story copied to hundreds of sites) is joined by a search from row to row
#: (``_linked_within``), not by all its pairs, whose number grows with the square of its size (8,000 copies took 9 GB).
_LARGE_BUCKET = 64
#: Fields taken from HTML metadata; a page description is a teaser, not the key-takeaway summary.
_HTML_FIELDS = set(models.SOURCED_FIELDS) - {"summary"}
#: A value with nothing visible: white space, format characters (zero-width spaces and joiners, marks of direction,
#: the soft hyphen, U+FEFF) and nothing else.
_INVISIBLE = re.compile(r"[\s\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]*")
#: Sourced fields that hold a date: a WARC record's may be at most the day after its fetch (``_article``).
_DATE_FIELDS = {name for name in models.SOURCED_FIELDS if get_type_hints(models.Article)[name] is dt.date}
#: The threads of ``on_pattern_thread``, by name.
_PATTERN_THREADS: dict[str, ThreadPoolExecutor] = {}


def on_pattern_thread(name: str, function: Callable[..., T], *args, **kwargs) -> T:
    """``function(*args, **kwargs)``, run on the thread kept for ``name`` (``cleaner``, ``measures``).

    Polars keeps the last 32 compiled regular expressions of each thread. The cleaner's patterns are
    about 30, and so are the quality measures' (the furniture rules again, tried as the measures try
    them); on one thread with each other and with the stage's other patterns (validation, normalisation,
    words), every shard would compile them all again (about 100 ms a shard). On threads of their own they
    stay compiled.
    """
    if name not in _PATTERN_THREADS:
        _PATTERN_THREADS[name] = ThreadPoolExecutor(1, thread_name_prefix=f"patterns-{name}")
    return _PATTERN_THREADS[name].submit(function, *args, **kwargs).result()


def reject(source_path: str, stage: str, reason: str, detail: str) -> dict:
    """One reject row: a raw file left out of the release, and why."""
    return {"source_path": source_path, "stage": stage, "reason": reason, "detail": detail}


def repair(source_path: str, stage: str, reason: str, detail: str) -> dict:
    """One repair row: a raw file changed to become usable, and how."""
    return {"source_path": source_path, "stage": stage, "reason": reason, "detail": detail}


def frame(records: list[dict], schema: pa.Schema) -> pl.DataFrame:
    """Build a frame with exactly the stage schema (also when there are no records)."""
    return pl.from_arrow(pa.Table.from_pylist(records, schema=schema))


def ingest(raw_root: Path | RemoteFolder, files: list[RawFile]) -> tuple[pl.DataFrame, list[dict], list[dict]]:
    """Read one shard of raw files and WARC records into ingest records; returns records, rejects and repairs.

    A file that cannot be read is a reject; an unexpected error on one file rejects that file
    (reason ``ingest-failed``) and the others go on.
    """
    records, rejects, repairs = [], [], []
    plain = [(raw, None) for raw in files if not isinstance(raw, warc.WarcRecordEntry)]
    outcomes = warc.read_records(raw_root, [raw for raw in files if isinstance(raw, warc.WarcRecordEntry)])
    for raw, outcome in chain(plain, outcomes):
        try:
            if isinstance(outcome, Exception):
                raise outcome
            record, fixes = outcome or read_raw(raw_root, raw)
        except RejectedFile as error:
            rejects.append(reject(raw.rel_path, "ingest", error.reason, error.detail))
        except Exception as error:  # noqa: BLE001 - one bad file must not stop the shard
            rejects.append(reject(raw.rel_path, "ingest", "ingest-failed", brief(error)))
        else:
            records.append(record)
            repairs.extend(repair(raw.rel_path, "ingest", reason, detail) for reason, detail in fixes)
    return frame(records, tables.INGESTED), rejects, repairs


def clean(ingested: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, list[dict], list[dict]]:
    """Strip furniture and extract fields; returns articles, the furniture audit, the articles' ``dedup_keys``, rejects
    and repairs.

    An extractor or cleaner error on one document rejects that document, not the shard. URLs that
    are not absolute http(s) URLs are repaired (``repair_page_urls``).
    """
    docs, html_meta, texts, extracted, rejects, repairs = [], [], [], [], [], []
    rows = ingested.to_dicts()
    html_rows = [doc for doc in rows if doc["format"] == "html"]
    extractions = iter(extract_html_shard([(doc["text"], doc["url"]) for doc in html_rows]) if html_rows else ())  # the HTML model loads on first use
    for doc in rows:
        meta = {}
        if doc["format"] == "html":
            extraction = next(extractions)
            if isinstance(extraction, TooCostly):
                rejects.append(reject(doc["source_path"], "clean", "too-costly", str(extraction)))
                continue
            if isinstance(extraction, Exception):
                rejects.append(reject(doc["source_path"], "clean", "extraction-failed", brief(extraction)))
                continue
            if extraction.not_an_article:
                rejects.append(reject(doc["source_path"], "clean", "not-an-article", extraction.not_an_article))
                continue
            doc["text"], cut = cap_long_lines(extraction.text)
            meta = extraction.metadata
            repairs.extend(repair(doc["source_path"], "clean", reason, detail) for reason, detail in cut)
        docs.append(doc)
        html_meta.append(meta)
        texts.append(doc["text"])
        extracted.append(doc["format"] == "html")
    articles, audited_ids, audited_pages = [], [], []
    for doc, meta, page in zip(docs, html_meta, _clean_each(texts, extracted), strict=True):
        try:
            if isinstance(page, Exception):
                raise page
            article, dropped = _article(doc, meta, page) if released_body(page) else (None, [])
        except Exception as error:  # noqa: BLE001 - one bad page must not stop the shard
            rejects.append(reject(doc["source_path"], "clean", "cleaning-failed", brief(error)))
            continue
        audited_ids.append(doc["doc_id"])
        audited_pages.append(page)
        if article is None:
            reason, detail = page.rejection or ("no-article-body", "no line was classified as article body")
            rejects.append(reject(doc["source_path"], "clean", reason, detail))
        else:
            articles.append(article)
            repairs.extend(repair(doc["source_path"], "clean", "metadata-dropped", detail) for detail in dropped)
    bodies = normalize_bodies([article["body"] for article in articles])
    for article, body, fingerprint in zip(articles, bodies.texts, bodies.fingerprints, strict=True):
        article["body"], article["body_sha256"] = body, fingerprint
    undeclared = [article for article in articles if not article["language"]]  # the page's own metadata comes first
    for article, detected in zip(undeclared, _languages([article["body"] for article in undeclared]), strict=True):
        if detected:
            article["language"], article["field_sources"]["language"] = detected, language.SOURCE
    cleaned = frame(articles, tables.ARTICLES)
    cleaned, url_repairs = repair_page_urls(cleaned.with_columns(word_count=word_counts(cleaned["body"], bodies.words)))
    return cleaned, _furniture(audited_ids, audited_pages), dedup_keys(cleaned, bodies.words), rejects, repairs + url_repairs


def _languages(bodies: list[str]) -> list[str | None]:
    """The detected language of each body; should the shard's detection fail, each body alone, and None for one that fails."""
    try:
        return language.detect_all(bodies)
    except Exception:  # noqa: BLE001 - one bad body must not stop the shard
        found = []
        for body in bodies:
            try:
                found.append(language.detect_all([body])[0])
            except Exception:  # noqa: BLE001
                found.append(None)
        return found


def repair_page_urls(articles: pl.DataFrame) -> tuple[pl.DataFrame, list[dict]]:
    """Make every article's ``url`` an absolute http(s) URL or null; returns the articles and the repairs.

    A URL taken from the page that is not one (a relative canonical link, ``javascript:``, ``file:``)
    is a bad metadata field, never a reason to reject the article: it is dropped (repair
    ``metadata-dropped``). A page with a sidecar URL, its own address, has that one (``fields.py``).
    An upper-case scheme is lower-cased.
    """
    fixed, repairs = {}, []
    for doc_id, source_path, url in articles.filter(pl.col("url").is_not_null()).select("doc_id", "source_path", "url").iter_rows():
        good = http_url(url)
        if good == url:
            continue
        fixed[doc_id] = good
        if good is None:
            repairs.append(repair(source_path, "clean", "metadata-dropped", f"url {url[:200]!r} from the page is not an absolute http(s) URL"))
    if not fixed:
        return articles, repairs
    ids = list(fixed)
    url = pl.col("doc_id").replace_strict(ids, list(fixed.values()), default=pl.col("url"), return_dtype=pl.String)
    sources = pl.col("field_sources").struct.with_fields(
        url=pl.when(pl.col("doc_id").is_in(ids) & url.is_null()).then(None).otherwise(pl.col("field_sources").struct.field("url")))
    return articles.with_columns(url=url, field_sources=sources), repairs


def _furniture(doc_ids: list[str], pages: list[CleanedPage]) -> pl.DataFrame:
    """The furniture audit of ``pages`` (one per id of ``doc_ids``): every line not classified as body, from the
    pages' line tables."""
    owner = np.repeat(np.arange(len(pages)), [len(page.lines) for page in pages])
    audit = pl.concat([PageLines().frame, *(page.lines.frame for page in pages)])  # an empty table first: there may be no pages
    return (audit.with_columns(pl.col("line_no").cast(pl.Int64), doc_id=pl.Series(doc_ids, dtype=pl.String).gather(owner))
            .filter(pl.col("category") != "body").select(tables.FURNITURE.names))


def _clean_each(texts: list[str], extracted: list[bool]) -> list[CleanedPage | Exception]:
    """Clean the shard in one call; if that fails, clean document by document to isolate the failure.

    ``extracted[i]`` marks HTML extractor output, which gets only the cleaner's precision tier.
    """
    try:
        pages = on_pattern_thread("cleaner", clean_shard, texts, extracted=extracted)
        if len(pages) == len(texts):
            return pages
    except Exception:  # noqa: BLE001 - retried one by one below, where the error is recorded
        pass
    out = []
    for text, is_extracted in zip(texts, extracted, strict=True):
        try:
            (page,) = on_pattern_thread("cleaner", clean_shard, [text], extracted=[is_extracted])
            out.append(page)
        except Exception as error:  # noqa: BLE001
            out.append(error)
    return out


def _article(doc: dict, html_meta: dict, page: CleanedPage) -> tuple[dict, list[str]]:
    """Merge fields by precedence (sidecar or WARC record, then HTML metadata, then the visible text); returns the article and why
    each value passed over was dropped, the next source's being taken: one too large (``_oversized``), or a WARC
    record's date more than a day after its fetch (a page's time zone may be ahead of UTC)."""
    row = {key: doc[key] for key in ("doc_id", "source_path", "source_sha256", "format")}
    fetched = warc.fetched_on(doc.get("fetched_at"))
    latest = fetched + dt.timedelta(days=1) if fetched else None
    sources, dropped = {}, []
    ingest_source = "warc" if warc.is_record_path(doc["source_path"]) else "sidecar"  # a WARC file takes no sidecar
    for name in models.SOURCED_FIELDS:
        from_html = html_meta.get(name, (None, None)) if name in _HTML_FIELDS else (None, None)
        sourced = ((doc.get(name), ingest_source), from_html, (getattr(page, name, None), page.field_sources.get(name)))
        candidates = [(value, source) for value, source in ((_valid(v), s) for v, s in sourced) if value]
        while candidates:  # the values passed over before the one taken, each with why
            value, source = candidates[0]
            if why := _oversized(value):
                dropped.append(f"{name} from {source}: {why}")
            elif name in _DATE_FIELDS and latest is not None and value > latest:
                dropped.append(f"{name} {value.isoformat()} from {source} is more than a day after the page was fetched, on "
                               f"{fetched.isoformat()}")
            else:
                break
            candidates.pop(0)
        value, source = candidates[0] if candidates else (None, None)
        row[name] = value if value or name not in _LIST_FIELDS else []
        sources[name] = source
    row["field_sources"] = sources
    row["body"] = page.body  # normalised, fingerprinted and counted over the shard's bodies at once (``clean``)
    row["word_count"] = None
    row["body_sha256"] = None
    row["duplicate_of"] = None
    return row, dropped


def _valid(value):
    """A field's value without what cannot be stored or shown as text (``valid_text``): a string stripped (empty when
    nothing of it is visible: only white space and format characters, such as zero-width spaces), a list of strings
    without its empty items; other values as they are."""
    if isinstance(value, str):
        return _visible(valid_text(value).strip())
    if isinstance(value, list):
        return [text for text in (_visible(valid_text(item).strip()) for item in value) if text]
    return value


def _visible(text: str) -> str:
    """``text``, or nothing when nothing of it is visible (``_INVISIBLE``)."""
    return "" if _INVISIBLE.fullmatch(text) else text


def _oversized(value) -> str | None:
    """Why a field's value is too large to be one (MAX_FIELD_CHARS, MAX_FIELD_ITEMS), or None."""
    items = value if isinstance(value, list) else [value] if isinstance(value, str) else []
    if len(items) > MAX_FIELD_ITEMS:
        return f"{len(items)} items > limit {MAX_FIELD_ITEMS}"
    if items and (longest := max(map(len, items))) > MAX_FIELD_CHARS:
        return f"{longest} characters > limit {MAX_FIELD_CHARS}"
    return None


class NormalizedBodies(NamedTuple):
    """A shard's bodies normalised (``normalize_bodies``), their ``body_fingerprint`` and their ``minhash_words``."""

    texts: list[str]
    fingerprints: list[str]
    words: pl.Series


def normalize_bodies(bodies: list[str]) -> NormalizedBodies:
    """Each body with runs of white space within a line (no-break spaces, tabs) as one space and no white space at
    a line's ends, as in the other text fields; line breaks kept. One Polars pass over a shard's bodies.

    The bodies are lower-cased once, for their fingerprints and their MinHash words. A normalised body's only white
    space is spaces and line breaks, so Python's split and join of its words is the same pass with every run of those
    as one space; its case is folded by Polars unless it holds a character that Polars folds otherwise
    (``_FOLDED_OTHERWISE``).
    """
    normalized = (pl.Series(bodies, dtype=pl.String).str.replace_all(_CHANGED_LINE_SPACE, " ")
                  .str.replace_all("(?m)^ | $", ""))
    lowered = normalized.str.to_lowercase()
    folded_words = lowered.str.replace_all("[ \n]{2,}|\n", " ").str.strip_chars(" ").to_list()
    texts = normalized.to_list()
    fingerprints = [body_fingerprint(text) if otherwise else _sha256(words) for text, words, otherwise
                    in zip(texts, folded_words, normalized.str.contains(_FOLDED_OTHERWISE).to_list(), strict=True)]
    return NormalizedBodies(texts, fingerprints, _words_of_lowered(lowered))


def body_fingerprint(body: str) -> str:
    """Hash of the body with case and white space normalised: equal for exact duplicates."""
    return _sha256(" ".join(body.split()).casefold())


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def dedup_keys(articles: pl.DataFrame, words: pl.Series | None = None) -> pl.DataFrame:
    """What choosing canonical copies needs, per shard: identity, outlet, dates, richness, MinHash signature.

    ``words``: the bodies' ``minhash_words``, when already found.
    """
    filled = [pl.col(name).list.len() > 0 if name in _LIST_FIELDS else pl.col(name).is_not_null() for name in models.SOURCED_FIELDS]
    words = minhash_words(articles["body"]) if words is None else words
    signatures = pl.Series("minhash", _signatures(words), dtype=pl.Array(pl.UInt32, MINHASH_PERMUTATIONS))
    return articles.select(
        "doc_id", "source_path", "published_date", "outlet", "syndicated_from", "body_sha256",
        pl.sum_horizontal(filled).alias("metadata_fields"),
    ).with_columns(signatures)


def minhash_words(bodies: list[str] | pl.Series) -> pl.Series:
    """The words MinHash shingles: each body's ``\\w+`` words, lower-cased."""
    return _words_of_lowered(pl.Series(bodies, dtype=pl.String).str.to_lowercase())


def _words_of_lowered(lowered: pl.Series) -> pl.Series:
    """``minhash_words`` of bodies already lower-cased."""
    return lowered.str.extract_all(r"\w+")


def word_counts(bodies: pl.Series, words: pl.Series) -> pl.Series:
    """The number of ``\\w+`` words of each body, from its ``minhash_words`` where lower-casing keeps them."""
    otherwise = bodies.str.contains(_WORDS_OTHERWISE_IN_LOWER_CASE)
    counts = words.list.len().cast(pl.Int64)
    if otherwise.any():
        counts = counts.zip_with(~otherwise, bodies.str.count_matches(r"\w+").cast(pl.Int64))
    return counts


def minhash_signatures(bodies: list[str] | pl.Series) -> np.ndarray:
    """One MinHash signature (uint32 per permutation) per body, over its lower-cased word 5-grams (all its words when fewer)."""
    return _signatures(minhash_words(bodies))


def _signatures(words: pl.Series) -> np.ndarray:
    """``minhash_signatures`` of bodies whose ``minhash_words`` are ``words``.

    Words are hashed by ``_word_hashes``, a shingle's hash mixes its words' hashes (NumPy), and rensa computes the
    signatures of the whole shard from those hashes in one call.
    """
    from rensa import RMinHash

    counts = words.list.len().to_numpy().astype(np.int64)
    hashes = _word_hashes(words.explode().drop_nulls())
    starts = np.cumsum(counts) - counts
    size = np.minimum(SHINGLE_WORDS, counts)
    shingles = np.where(counts > 0, counts - size + 1, 0)  # per body: its number of shingles
    first = np.repeat(starts - (np.cumsum(shingles) - shingles), shingles) + np.arange(shingles.sum())
    mixed = _shingle_hashes(hashes, first, np.repeat(size, shingles))
    offsets = np.r_[0, np.cumsum(shingles)].astype(np.uint64)
    matrix = RMinHash.digest_matrix_from_flat_token_hashes(_mix64(mixed), offsets, MINHASH_PERMUTATIONS, _MINHASH_SEED)
    return np.array(matrix.to_rows(), dtype=np.uint32).reshape(len(words), MINHASH_PERMUTATIONS)


def _word_hashes(words: pl.Series) -> np.ndarray:
    """A 64-bit hash of each of ``words``: the polynomial of its UTF-8 bytes in _FNV_PRIME modulo 2**64, mixed
    (``_mix64``); the same on every machine, where Polars' string hash differs between x86-64 and arm64
    (pola-rs/polars#10439).

    Words are hashed from prefix sums over the bytes of words of about _HASHED_BYTES at a time: with ``b`` a word's
    bytes from position ``s`` to ``e - 1`` and ``B`` the base, ``sum(b[i] * B**(e-1-i)) = B**(e-1) * sum(b[i] * B**-i)``.
    """
    text = words.to_arrow().cast(pa.large_string())
    if not len(text):
        return np.empty(0, np.uint64)
    offsets = np.frombuffer(text.buffers()[1], np.int64)[text.offset:text.offset + len(text) + 1]
    data = np.frombuffer(text.buffers()[2], np.uint8)
    bounds = [0]
    while bounds[-1] < len(text):
        bounds.append(max(bounds[-1] + 1, int(np.searchsorted(offsets, offsets[bounds[-1]] + _HASHED_BYTES, side="right")) - 1))
    longest = int(np.diff(offsets[bounds]).max())
    powers, inverse_powers = _powers(_FNV_PRIME, longest), _powers(pow(_FNV_PRIME, -1, 2**64), longest)
    hashes = np.empty(len(text), np.uint64)
    for first, last in pairwise(bounds):
        chunk = data[offsets[first]:offsets[last]].astype(np.uint64)
        starts, ends = offsets[first:last] - offsets[first], offsets[first + 1:last + 1] - offsets[first]
        prefix = np.zeros(len(chunk) + 1, np.uint64)
        np.cumsum(chunk * inverse_powers[:len(chunk)], out=prefix[1:])
        hashes[first:last] = (prefix[ends] - prefix[starts]) * powers[np.maximum(ends - 1, 0)]
    return _mix64(hashes)


def _powers(base: int, count: int) -> np.ndarray:
    """``base**0 .. base**(count - 1)`` modulo 2**64."""
    out = np.ones(max(count, 1), np.uint64)
    if count > 1:
        np.cumprod(np.full(count - 1, base, np.uint64), out=out[1:])
    return out


def _shingle_hashes(hashes: np.ndarray, first: np.ndarray, width: np.ndarray) -> np.ndarray:
    """The hash of each shingle of ``width`` words from ``first`` on: its k-th word's hash rotated by 13 k bits (so that the
    same words in another order differ), all xored.

    Full shingles (SHINGLE_WORDS words) are taken from one xor of shifted slices of the words' hashes; the few shorter ones
    (a body of fewer words) word by word.
    """
    def rotated(word: np.ndarray, k: int) -> np.ndarray:
        return word << np.uint64(13 * k) | word >> np.uint64(64 - 13 * k) if k else word

    windows = max(0, len(hashes) - SHINGLE_WORDS + 1)  # every run of SHINGLE_WORDS consecutive words, across bodies too
    full = np.zeros(windows, dtype=np.uint64)
    for k in range(SHINGLE_WORDS):
        full ^= rotated(hashes[k:k + windows], k)
    short = width < SHINGLE_WORDS
    mixed = np.zeros(len(first), dtype=np.uint64)
    mixed[~short] = full[first[~short]]
    for k in range(int(width[short].max(initial=0))):
        within = short & (width > k)
        mixed[within] ^= rotated(hashes[first[within] + k], k)
    return mixed


def _mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every output bit depends on every input bit."""
    values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


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
    candidates = [_pairs_within_buckets(_row_hashes(signatures[distinct, band * LSH_ROWS:(band + 1) * LSH_ROWS]), signatures[distinct])
                  for band in range(LSH_BANDS)]
    codes = np.unique(np.concatenate([np.minimum(a, b) * len(distinct) + np.maximum(a, b) for a, b in candidates]))
    left, right = (distinct[side] for side in np.divmod(codes, max(1, len(distinct))))
    similar = _agreement(signatures, left, right) >= NEAR_DUPLICATE_THRESHOLD
    pairs = np.concatenate([np.stack([first[copy], everyone[copy]], axis=1), np.stack([left[similar], right[similar]], axis=1)])
    return np.unique(np.sort(pairs, axis=1), axis=0) if len(pairs) else pairs.reshape(0, 2)


def _pairs_within_buckets(bucket: np.ndarray, signatures: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of positions ``(a, b)`` whose ``bucket`` values are equal, as two index arrays: every pair of a bucket of up
    to ``_LARGE_BUCKET`` positions; in a larger one, pairs whose ``signatures`` agree enough to join the same groups
    (``_linked_within``)."""
    order = np.argsort(bucket, kind="stable")
    ranked = bucket[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    sizes = np.diff(np.r_[starts, len(ranked)])
    ends = np.repeat(starts + sizes, sizes)
    partners = np.where(np.repeat(sizes > _LARGE_BUCKET, sizes), 0, ends - np.arange(len(ranked)) - 1)
    left = np.repeat(np.arange(len(ranked)), partners)
    right = left + 1 + np.arange(len(left)) - np.repeat(np.cumsum(partners) - partners, partners)
    pairs = [(order[left], order[right])]
    for start, size in zip(starts[sizes > _LARGE_BUCKET], sizes[sizes > _LARGE_BUCKET], strict=True):
        members = order[start:start + size]
        linked_left, linked_right = _linked_within(signatures[members])
        pairs.append((members[linked_left], members[linked_right]))
    return np.concatenate([left for left, _ in pairs]), np.concatenate([right for _, right in pairs])


def _linked_within(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of positions of ``rows`` (signatures) whose agreement reaches NEAR_DUPLICATE_THRESHOLD, enough to join the
    same groups as all such pairs: a search that checks each row reached against the rows not reached yet."""
    left, right = [], []
    unreached = np.arange(len(rows))
    while len(unreached):
        queue, unreached = [unreached[0]], unreached[1:]
        while queue and len(unreached):
            row = queue.pop()
            near = _agreement(rows, np.full(len(unreached), row), unreached) >= NEAR_DUPLICATE_THRESHOLD
            found = unreached[near]
            left += [row] * len(found)
            right += found.tolist()
            queue += found.tolist()
            unreached = unreached[~near]
    return np.array(left, dtype=np.int64), np.array(right, dtype=np.int64)


def _row_hashes(rows: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row of an unsigned integer matrix, one column at a time (no copy of the matrix)."""
    hashes = np.zeros(len(rows), dtype=np.uint64)
    for column in rows.T:
        hashes = hashes * np.uint64(_FNV_PRIME) + column.astype(np.uint64)
    return hashes


def _agreement(signatures: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The share of equal values of the signatures ``left[k]`` and ``right[k]``, _CHECKED_PAIRS pairs at a time."""
    shares = np.empty(len(left))
    for k in range(0, len(left), _CHECKED_PAIRS):
        shares[k:k + _CHECKED_PAIRS] = (signatures[left[k:k + _CHECKED_PAIRS]] == signatures[right[k:k + _CHECKED_PAIRS]]).mean(axis=1)
    return shares


#: A run of digits in a path.
_DIGIT_RUN = re.compile(r"\d+")


def natural_order(path: str) -> str:
    """``path`` with every run of digits padded to 20, so that paths sort as people read them: ``page9.txt`` before
    ``page10.txt``, a WARC file's record at offset 900 (``crawl.warc#900``) before the one at 10,000."""
    return _DIGIT_RUN.sub(lambda run: run.group().zfill(20), path)


def canonical_copies(keys: pl.DataFrame, signatures: np.ndarray) -> pl.DataFrame:
    """``doc_id`` -> ``duplicate_of`` over a whole run's ``dedup_keys`` (``signatures``: their ``minhash`` rows, in order).

    A group joins exact duplicates (equal ``body_sha256``) and near duplicates (MinHash, estimated
    Jaccard >= NEAR_DUPLICATE_THRESHOLD), transitively. Its canonical copy, which keeps ``duplicate_of`` null, is
    chosen by: the original outlet (an outlet that another copy names as ``syndicated_from``, then a
    copy that names no other outlet), then the earliest ``published_date``, then the most metadata
    fields filled, then the first ``source_path`` in the order people read (``natural_order``), then in code point
    order (``a01.txt`` and ``a1.txt`` read alike).
    """
    from scipy.sparse import coo_array
    from scipy.sparse.csgraph import connected_components

    if not keys.height:
        return keys.select("doc_id", duplicate_of=pl.col("doc_id").head(0))
    first_same_body = keys.with_row_index().select(pl.col("index").first().over("body_sha256")).to_series().to_numpy()
    pairs = np.concatenate([np.stack([first_same_body, np.arange(keys.height)], axis=1), near_duplicate_pairs(signatures)])
    links = coo_array((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(keys.height, keys.height))
    _, group = connected_components(links, directed=False)
    grouped = keys.with_columns(group=pl.Series(group, dtype=pl.Int64), outlet_key=pl.col("outlet").str.to_lowercase(),
                                path_order=pl.Series([natural_order(path) for path in keys["source_path"]], dtype=pl.String))
    named_as_source = (grouped.select("group", outlet_key=pl.col("syndicated_from").str.to_lowercase())
                       .drop_nulls().unique().with_columns(named=pl.lit(True)))
    ranked = grouped.join(named_as_source, on=["group", "outlet_key"], how="left").with_columns(
        original_rank=pl.when(pl.col("named")).then(0).when(pl.col("syndicated_from").is_null()).then(1).otherwise(2),
    )
    canonical = (
        ranked.sort(["group", "original_rank", "published_date", "metadata_fields", "path_order", "source_path"],
                    descending=[False, False, False, True, False, False], nulls_last=True)
        .group_by("group", maintain_order=True)
        .agg(pl.col("doc_id").first().alias("canonical"))
    )
    return ranked.join(canonical, on="group").select(
        "doc_id", pl.when(pl.col("canonical") != pl.col("doc_id")).then(pl.col("canonical")).alias("duplicate_of"),
    )
