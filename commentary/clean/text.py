"""Classify every line of a shard of flattened pages and assemble the cleaned pages.

Order of decisions for each non-blank line (the first that applies wins):
1. a furniture rule from ``commentary/rules/*.toml`` (rule id ``<category>.<name>``);
2. a structural rule that combines position with the lines around it (ids below);
3. the line model (``model.line-v1``): body, or furniture named after its zone
   (``nav`` before the first body line, ``related`` after it).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from commentary.clean import CleanedPage, LineDecision
from commentary.clean.features import add_rule_matches, context_frame, feature_frame, line_table
from commentary.clean.fields import extract_fields
from commentary.clean.model import MODEL_ID, LineModel, default_model
from commentary.clean.rules import CATEGORY_PRIORITY, load_rules

#: A title is a short line of several words (the benchmark's <title> and <h1> lines have 2-25).
TITLE_MIN_WORDS = 2
TITLE_MAX_WORDS = 30
#: A shorter repeat of the title (e.g. without the " - Site" suffix) needs this many words.
TITLE_REPEAT_MIN_WORDS = 3
#: A name line after a bare "BY" label, and a role line after a byline, are this short at most.
BYLINE_NAME_MAX_WORDS = 5
BYLINE_ROLE_MAX_WORDS = 8
#: Key-takeaway items are single sentences (the seed's are 16-21 words; its body paragraphs 30+).
SUMMARY_ITEM_MAX_WORDS = 35
SUMMARY_MAX_ITEMS = 6
#: An author box holds a paragraph or two after its heading; a bio sentence is one paragraph.
BIO_MAX_LINES = 3
BIO_MAX_WORDS = 120
#: "Name Surname is a ...": two to four capitalised words, then a copula or typical bio verb.
BIO_SENTENCE = (r"^\p{Lu}[\p{L}.'’-]+(\s+\p{Lu}[\p{L}.'’-]*){1,3},?\s+"
                r"(is|was|has been|serves as|writes|covers|specializes|specialises|teaches|directs|leads)\s")
#: "Name Surname" (for a line after a bare "BY" label).
NAME_LINE = r"^\p{Lu}[\p{L}.'’-]+(\s+\p{Lu}[\p{L}.'’-]*){1,3}$"
#: "Name Surname verb ..." (a bio that opens with the byline's author name).
NAME_THEN_VERB = r"^\p{Lu}[\p{L}.'’-]+(\s+\p{Lu}[\p{L}.'’-]*){1,3}\s+\p{Ll}"
#: Headings after which the rest of the page is comments: comments never precede the article's
#: end, so any such heading after some body text ends it.
COMMENT_MARKERS = ("engagement.comment-prompt", "engagement.email-not-published")
#: Link-list headings end the article only once this share of the model's body text lies before
#: them (so a "Related" box mid-article does not cut it).
LIST_MARKERS = ("related.list-heading",)
TAIL_MIN_BODY_SHARE = 0.7
MODEL_HEAD_CATEGORY = "nav"
MODEL_LATER_CATEGORY = "related"


def _structural_rules(lines: pl.DataFrame) -> pl.DataFrame:
    """Add ``structural_id``: decisions that need a line's neighbours or zone (null when none)."""
    rule_id = pl.col("rule_id")
    unclaimed = rule_id.is_null()
    prev_rule = rule_id.shift(1).over("doc")
    # Segments start at every rule-matched line; lines after a heading belong to its segment.
    lines = lines.with_columns(
        rule_id.is_not_null().cum_sum().over("doc").alias("segment"),
        pl.int_range(pl.len()).over("doc").alias("index"),
        pl.col("model_body").cast(pl.Int32).reverse().cum_sum().reverse().over("doc").alias("body_from_here"),
    )
    segment_rule = rule_id.forward_fill().over("doc")
    offset = pl.int_range(pl.len()).over("doc", "segment")
    short_item = (pl.col("n_words") <= SUMMARY_ITEM_MAX_WORDS).cast(pl.Int8).cum_min().over("doc", "segment") == 1
    body_after = pl.col("body_from_here") - pl.col("model_body").cast(pl.Int32)
    lines = lines.with_columns(
        pl.when(unclaimed & (segment_rule == "summary.heading") & (offset <= SUMMARY_MAX_ITEMS) & short_item)
        .then(pl.lit("summary.item"))
        .when(unclaimed & (segment_rule == "bio.heading") & (offset <= BIO_MAX_LINES))
        .then(pl.lit("bio.after-heading"))
        .when(unclaimed & (prev_rule == "byline.by-label") & pl.col("text").str.contains(NAME_LINE)
              & (pl.col("n_words") <= BYLINE_NAME_MAX_WORDS))
        .then(pl.lit("byline.after-label"))
        .when(unclaimed & pl.col("text").str.contains(BIO_SENTENCE) & (pl.col("n_words") <= BIO_MAX_WORDS)
              & (body_after == 0) & (pl.col("body_from_here") < pl.col("body_from_here").max().over("doc")))
        .then(pl.lit("bio.name-after-body"))
        .alias("structural_id")
    )
    # A role line ("Senior Fellow, Asia") follows a byline name; a bio may open with that name.
    byline_name = pl.col("structural_id").shift(1).over("doc") == "byline.after-label"
    author = (pl.when(pl.col("structural_id") == "byline.after-label").then(pl.col("text"))
              .forward_fill().over("doc"))
    lines = lines.with_columns(
        pl.when(pl.col("structural_id").is_not_null()).then(pl.col("structural_id"))
        .when(unclaimed & byline_name & (pl.col("n_words") <= BYLINE_ROLE_MAX_WORDS)
              & ~pl.col("text").str.contains(r"[.!?]$"))
        .then(pl.lit("byline.role"))
        .when(unclaimed & author.is_not_null() & pl.col("text").str.starts_with(author.fill_null("\x00"))
              & pl.col("text").str.contains(NAME_THEN_VERB) & (pl.col("n_words") <= BIO_MAX_WORDS))
        .then(pl.lit("bio.author-name"))
        .otherwise(pl.col("structural_id"))
        .alias("structural_id")
    )
    return _title_rules(_tail_zone(lines))


def _tail_zone(lines: pl.DataFrame) -> pl.DataFrame:
    """Lines after a tail marker (comments, related lists) take the marker's category."""
    body_chars = pl.when(pl.col("model_body")).then(pl.col("text").str.len_chars()).otherwise(0)
    body_share_before = body_chars.cum_sum().over("doc") / pl.max_horizontal(body_chars.sum().over("doc"), 1)
    marker = ((pl.col("rule_id").is_in(COMMENT_MARKERS) & (body_share_before > 0))
              | (pl.col("rule_id").is_in(LIST_MARKERS) & (body_share_before >= TAIL_MIN_BODY_SHARE)))
    after_marker = marker.cast(pl.Int32).cum_max().shift(1).over("doc").fill_null(0) == 1
    marker_category = pl.when(marker).then(pl.col("rule_category")).forward_fill().over("doc")
    return lines.with_columns(
        pl.when(after_marker & pl.col("rule_id").is_null() & pl.col("structural_id").is_null())
        .then(pl.lit("zone.tail-") + marker_category)
        .otherwise(pl.col("structural_id")).alias("structural_id")
    )


def _title_rules(lines: pl.DataFrame) -> pl.DataFrame:
    """Mark the title (first short unclaimed line up to the body) and its repeats."""
    free = pl.col("rule_id").is_null() & pl.col("structural_id").is_null()
    first_body = pl.when(pl.col("model_body")).then(pl.col("index")).min().over("doc")
    candidate = free & pl.col("n_words").is_between(TITLE_MIN_WORDS, TITLE_MAX_WORDS) & (pl.col("index") <= first_body.fill_null(1 << 30))
    title = pl.col("text").filter(candidate).first().over("doc")
    is_repeat = free & (
        (pl.col("text") == title)
        | (title.str.starts_with(pl.col("text")) & (pl.col("n_words") >= TITLE_REPEAT_MIN_WORDS))
    )
    first_title_index = pl.col("index").filter(candidate).first().over("doc")
    return lines.with_columns(
        pl.when(free & (pl.col("index") == first_title_index)).then(pl.lit("title.first-line"))
        .when(is_repeat & (pl.col("index") <= first_body.fill_null(1 << 30) + 1)).then(pl.lit("title.repeat"))
        .otherwise(pl.col("structural_id"))
        .alias("structural_id")
    )


def rule_lines(texts: Sequence[str]) -> pl.DataFrame:
    """The line table with ``rule_id`` and ``rule_category`` of the first matching rule (or null)."""
    rules = load_rules()
    rule_ids = pl.Series([r.id for r in rules], dtype=pl.String)
    return add_rule_matches(line_table(texts), rules).with_columns(
        pl.col("rule").replace_strict(list(range(len(rules))), rule_ids, default=None).alias("rule_id")
    ).with_columns(pl.col("rule_id").str.extract(r"^([a-z]+)\.").alias("rule_category"))


def classify_shard(texts: Sequence[str], model: LineModel | None = None) -> pl.DataFrame:
    """One row per non-blank line: ``doc``, ``line_no``, ``text``, ``category``, ``rule_id``."""
    model = default_model() if model is None else model
    lines = rule_lines(texts)
    if lines.height == 0:
        return lines.select("doc", "line_no", "text", category=pl.lit(""), rule_id=pl.lit(""))
    probability = body_probability(lines, model)
    lines = lines.with_columns(pl.Series("model_body", probability >= model.threshold))
    lines = _structural_rules(lines)
    decided_id = pl.coalesce("rule_id", "structural_id")
    seen_body = pl.col("model_body").cast(pl.Int32).cum_sum().over("doc") > 0
    return lines.select(
        "doc", "line_no", "text",
        pl.when(decided_id.is_not_null()).then(
            pl.coalesce(decided_id.str.extract(r"^zone\.tail-([a-z]+)$"), decided_id.str.extract(r"^([a-z]+)\.")))
        .when(pl.col("model_body")).then(pl.lit("body"))
        .when(seen_body).then(pl.lit(MODEL_LATER_CATEGORY))
        .otherwise(pl.lit(MODEL_HEAD_CATEGORY)).alias("category"),
        decided_id.fill_null(MODEL_ID).alias("rule_id"),
    )


def body_probability(lines: pl.DataFrame, model: LineModel) -> np.ndarray:
    """Stage-2 body probability of every line (``lines`` with ``rule_category``)."""
    features = feature_frame(lines, CATEGORY_PRIORITY).select(model.features).to_numpy().astype(np.float64)
    first = model.stage1.predict(features)
    context = context_frame(lines, first).select(model.context_features).to_numpy().astype(np.float64)
    return model.stage2.predict(np.hstack([features, context]))


def clean_shard(texts: Sequence[str], model: LineModel | None = None) -> list[CleanedPage]:
    """Clean many documents at once; see the module docstring for how lines are decided."""
    decided = classify_shard(texts, model)
    pages = []
    columns = decided.select("doc", "line_no", "text", "category", "rule_id").to_dict(as_series=False)
    bounds = np.searchsorted(np.asarray(columns["doc"], dtype=np.int64), np.arange(len(texts) + 1))
    for doc in range(len(texts)):
        start, end = int(bounds[doc]), int(bounds[doc + 1])
        decisions = [LineDecision(n, t, c, r) for n, t, c, r in zip(
            columns["line_no"][start:end], columns["text"][start:end],
            columns["category"][start:end], columns["rule_id"][start:end])]
        body = "\n\n".join(d.text for d in decisions if d.category == "body")
        pages.append(CleanedPage(body=body, lines=decisions, **extract_fields(decisions)))
    return pages


def clean_text(text: str) -> CleanedPage:
    """Clean one document (a convenience over :func:`clean_shard`)."""
    return clean_shard([text])[0]

