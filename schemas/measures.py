"""What the quality suite checks of each article, measured where the article is made (a shard at a time).

The clean step writes each shard's measures beside its articles (``stages/measures``), so the
quality step reads narrow columns instead of every body of the run again. This module imports no
Great Expectations: the shard processes use it.
"""
from __future__ import annotations

import polars as pl

from commentary.clean.features import RULE_MAX_WORDS
from commentary.clean.rules import first_matching_rule, load_rules, rule_groups
from commentary.clean.text import kept_caption

#: The columns of the ``articles`` table the suite checks (``body_measures`` of the cleaned articles).
ARTICLE_MEASURES = ("doc_id", "title", "word_count", "published_date", "body_chars", "known_furniture")


def body_measures(articles: pl.DataFrame) -> pl.DataFrame:
    """``ARTICLE_MEASURES`` of ``articles``: ``body`` replaced by ``body_chars``, and ``known_furniture``, the id of
    the furniture rule (``commentary/rules/*.toml``) that the first matching line of the body matches
    (a body's lines are its paragraphs, joined by a blank line).

    The cleaner removes every line a rule matches, so a body line that matches one is furniture that
    slipped through; but for a long photo caption that an HTML page's extractors kept (``text.kept_caption``).
    Each document is measured on its own: a shard's measures are those of its articles.
    """
    rules = load_rules()
    groups = rule_groups(rules)
    text, n_words = pl.col("text"), pl.col("n_words")
    lines = (articles.select("doc_id", "format", text=pl.col("body").str.split("\n\n")).explode("text")
             .with_columns(text=text.str.strip_chars()).with_columns(n_words=text.str.count_matches(r"\S+"))
             .filter(n_words.is_between(1, RULE_MAX_WORDS)).with_row_index("line"))
    hits = []
    for cap in sorted({group.max_words or RULE_MAX_WORDS for group in groups}):  # each group tried only on lines within its word cap
        within = lines.filter(n_words <= cap) if cap < RULE_MAX_WORDS else lines
        hits.append(within.filter(pl.any_horizontal(text.str.contains(group.regex) for group in groups
                                                    if (group.max_words or RULE_MAX_WORDS) == cap))["line"])
    hit = lines[pl.concat(hits).unique().sort()]
    hit = hit.with_columns(rule_id=pl.Series([rules[i].id for i in first_matching_rule(hit, rules)], dtype=pl.String))
    furniture = hit.filter(~kept_caption(pl.col("format") == "html", pl.col("rule_id"), n_words))
    matched = furniture.unique("doc_id", keep="first", maintain_order=True).select("doc_id", known_furniture="rule_id")
    measured = articles.select("doc_id", "title", "word_count", "published_date", body_chars=pl.col("body").str.len_chars())
    return measured.join(matched, on="doc_id", how="left", maintain_order="left")
