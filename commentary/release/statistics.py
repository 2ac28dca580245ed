"""The numbers a release's manifest and card give, counted from its rows as they are written (nothing is read back)."""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import polars as pl
import pyarrow as pa

from commentary.tables import RELEASE_TABLES

#: Fields whose share of canonical articles without a value the card shows.
MISSING_FIELDS = ("title", "authors", "published_date", "outlet", "language")
#: Rows shown in the card's count tables and bars drawn per chart; the rest are summed as "(other)".
TOP_ROWS = 15
#: The columns of ``articles`` the statistics keep (never the bodies).
ARTICLE_COLUMNS = ("doc_id", "duplicate_of", "body_sha256", "word_count", *MISSING_FIELDS)


class Tally:
    """Counts a release's ``articles`` and ``furniture`` as their rows stream into it (``tee``).

    Of ``articles`` only narrow columns are kept (``ARTICLE_COLUMNS``); ``furniture`` is counted by
    category chunk by chunk. Rows may stream in from another thread than the one that asks for the result.
    """

    def __init__(self):
        schema = RELEASE_TABLES["articles"].schema
        self._article_schema = pa.schema([schema.field(name) for name in ARTICLE_COLUMNS])
        self._articles: list[pl.DataFrame] = []
        self._categories: list[pl.DataFrame] = []

    def tee(self, table: str, chunks: Iterable[pa.Table]) -> Iterator[pa.Table]:
        """Pass the chunks of ``table`` through, counting them."""
        for chunk in chunks:
            if table == "articles":
                self._articles.append(pl.from_arrow(chunk.select(list(ARTICLE_COLUMNS)).cast(self._article_schema)))
            elif table == "furniture":
                self._categories.append(pl.from_arrow(chunk.select(["doc_id", "category"])).group_by("doc_id", "category").len())
            yield chunk

    def result(self) -> dict:
        """The statistics, over the canonical articles unless named otherwise."""
        articles = pl.concat(self._articles) if self._articles else pl.from_arrow(self._article_schema.empty_table())
        canonical = articles.filter(pl.col("duplicate_of").is_null())
        copies = articles.filter(pl.col("duplicate_of").is_not_null()).join(
            articles.select(pl.col("doc_id").alias("duplicate_of"), pl.col("body_sha256").alias("canonical_sha256")), on="duplicate_of")
        words = canonical["word_count"]
        lines = pl.concat(self._categories) if self._categories else pl.DataFrame(
            schema={"doc_id": pl.String, "category": pl.String, "len": pl.UInt32})
        by_category = _ranked(lines.filter(pl.col("doc_id").is_in(canonical["doc_id"].implode()))
                              .group_by(pl.col("category").alias("key")).agg(pl.col("len").sum()), top=None)
        return {
            "articles": articles.height,
            "canonical": canonical.height,
            "exact_duplicates": copies.filter(pl.col("body_sha256") == pl.col("canonical_sha256")).height,
            "near_duplicates": copies.filter(pl.col("body_sha256") != pl.col("canonical_sha256")).height,
            "by_outlet": _counts(canonical, pl.col("outlet").fill_null("(unknown)")),
            "by_year": sorted(_counts(canonical, pl.col("published_date").dt.year().cast(pl.String).fill_null("(unknown)"), top=None)),
            "by_language": _counts(canonical, pl.col("language").fill_null("(unknown)")),
            "body_words": {name: round(getattr(words, name)() or 0) if canonical.height else 0 for name in ("min", "median", "mean", "max")}
            | {f"p{q}": int(words.quantile(q / 100, "nearest") or 0) if canonical.height else 0 for q in (10, 90)},
            "word_counts": words.to_list(),
            "missing": {name: round(_missing_share(canonical, name), 3) for name in MISSING_FIELDS},
            "furniture_lines": int(lines["len"].sum()),
            "furniture_by_category": by_category,
        }


def counts(stats: dict) -> dict[str, int]:
    """The manifest's ``counts``."""
    return {"articles": stats["articles"], "canonical_articles": stats["canonical"],
            "duplicates": stats["articles"] - stats["canonical"], "furniture_lines": stats["furniture_lines"]}


def _counts(frame: pl.DataFrame, key: pl.Expr, top: int | None = TOP_ROWS) -> list[tuple[str, int]]:
    return _ranked(frame.group_by(key.alias("key")).len(), top)


def _ranked(counted: pl.DataFrame, top: int | None) -> list[tuple[str, int]]:
    """``(key, len)`` rows, most first; beyond ``top`` rows the rest summed as "(other)"."""
    rows = counted.sort(["len", "key"], descending=[True, False]).rows()
    if top is None or len(rows) <= top:
        return rows
    return rows[:top] + [("(other)", sum(n for _, n in rows[top:]))]


def _missing_share(frame: pl.DataFrame, name: str) -> float:
    if not frame.height:
        return 0.0
    column = frame[name]
    missing = column.list.len().eq(0).sum() if isinstance(column.dtype, pl.List) else column.is_null().sum()
    return missing / frame.height
