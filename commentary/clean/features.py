"""Bulk line table and line features for a whole shard (Polars expressions, no per-line loops).

Every feature is language-neutral: it looks at lengths, punctuation, letter case, position in
the page and the neighbouring lines, never at the words of one language.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from commentary.clean.rules import Rule, first_matching_rule

#: Characters Python's ``str.strip()`` removes, so that "blank line" means what it means in Python.
WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
#: End of a sentence in the scripts seen in the benchmark (Latin, Cyrillic, CJK, Arabic, Devanagari).
TERMINAL = r"""[.!?…。！？؟।]["'”’»)\]]*$"""
SENTENCE_BREAK = r"""[.!?。！？؟।]["'”’»)\]]*(\s|$)"""
#: A line of this many words or more reads as prose, not as a menu entry (C4 uses 5 for sentences).
PROSE_MIN_WORDS = 8
#: Longest line a furniture rule is tried on (the longest rule example, a caption, has 31 words).
RULE_MAX_WORDS = 60
#: Window sizes (lines, centred) over which neighbour context is averaged.
NEAR_WINDOW = 5
WIDE_WINDOW = 15


def line_table(texts: Sequence[str]) -> pl.DataFrame:
    """One row per non-blank line: ``doc``, ``line_no`` (1-based), stripped ``text``, ``block``.

    A block is a run of lines between blank lines (one text node per line in flat-naive pages);
    ``block`` numbers the blocks across the whole shard, so it alone identifies one.
    """
    try:
        docs = pl.DataFrame({"raw": list(texts)}, schema={"raw": pl.String})
    except (UnicodeEncodeError, pl.exceptions.ComputeError):
        docs = pl.DataFrame({"raw": [t.encode("utf-8", "replace").decode("utf-8") for t in texts]},
                            schema={"raw": pl.String})
    return (
        docs.with_row_index("doc")
        .select("doc", pl.col("raw").fill_null("").str.split("\n").alias("text"))
        .with_columns(pl.int_ranges(1, pl.col("text").list.len() + 1, dtype=pl.Int32).alias("line_no"))
        .explode("text", "line_no")
        .with_columns(pl.col("text").fill_null("").str.strip_chars(WHITESPACE))
        .with_columns(((pl.col("text") == "") | (pl.col("line_no") == 1)).cum_sum().alias("block"))
        .filter(pl.col("text") != "")
        .with_columns(pl.col("text").str.count_matches(r"\S+").alias("n_words"))
    )


def _ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    return (numerator / pl.max_horizontal(denominator, pl.lit(1))).cast(pl.Float32)


def _log(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Float32).log1p()


def _neighbour(expr: pl.Expr, offset: int) -> pl.Expr:
    return expr.shift(offset).over("doc").fill_null(0.0)


def _window_mean(expr: pl.Expr, size: int) -> pl.Expr:
    return expr.rolling_mean(size, center=True, min_samples=1).over("doc")


def add_rule_matches(lines: pl.DataFrame, rules: tuple[Rule, ...]) -> pl.DataFrame:
    """Add ``rule``: index of the first matching furniture rule (null when none).

    Only lines of at most RULE_MAX_WORDS words are tried: furniture is short.
    """
    rows = pl.int_range(pl.len(), dtype=pl.UInt32)
    tried = lines.select(rows.alias("row"), "text", "n_words").filter(pl.col("n_words") <= RULE_MAX_WORDS)
    matched = tried.select("row", first_matching_rule(tried, rules)).drop_nulls()
    return (lines.with_columns(rows.alias("row")).join(matched, on="row", how="left", maintain_order="left")
            .drop("row"))


def feature_frame(lines: pl.DataFrame, categories: Sequence[str]) -> pl.DataFrame:
    """Numeric features of every line of a :func:`line_table` with ``rule_category`` (null when no rule)."""
    text = pl.col("text")
    n_words = pl.col("n_words")
    # Sub-expressions that several features use are computed once, as columns dropped at the end.
    shared = {
        "_n_chars": text.str.len_chars(),
        # Counting the few non-letters is much faster than counting the many letters.
        "_letters": text.str.len_chars() - text.str.count_matches(r"\P{L}"),
        "_terminal": text.str.contains(TERMINAL).cast(pl.Float32),
        "_index": pl.int_range(pl.len()).over("doc"),
        "_n_lines": pl.len().over("doc"),
        "_block_chars": text.str.len_chars().sum().over("block"),
        "_dense": _window_mean(_log(text.str.len_chars()), NEAR_WINDOW),
    }
    n_chars, letters, terminal, index, n_lines, block_chars, dense = map(pl.col, shared)
    prose = (n_words >= PROSE_MIN_WORDS).cast(pl.Float32)
    log_chars = _log(n_chars)
    doc_chars = n_chars.sum().over("doc")
    return lines.with_columns(**shared).with_columns(
        log_chars.alias("log_chars"),
        _log(n_words).alias("log_words"),
        _ratio(letters, n_chars).alias("letter_share"),
        _ratio(text.str.count_matches(r"\p{Lu}"), letters).alias("upper_share"),
        _ratio(text.str.count_matches(r"\p{N}"), n_chars).alias("digit_share"),
        _ratio(text.str.count_matches(r"[\p{P}\p{S}]"), n_chars).alias("punct_share"),
        _ratio(text.str.count_matches(r"(^|\s)[\"“‘'(]?\p{Lu}"), n_words).alias("capitalised_share"),
        _ratio(text.str.count_matches(","), n_words).alias("comma_rate"),
        _log(text.str.count_matches(SENTENCE_BREAK)).alias("log_sentences"),
        terminal.alias("terminal"),
        prose.alias("prose"),
        text.str.contains(r"^[\"“‘'(]?\p{Lu}").cast(pl.Float32).alias("starts_upper"),
        text.str.contains(r"^\p{Ll}").cast(pl.Float32).alias("starts_lower"),
        text.str.contains(r"^[,.;:)\]]").cast(pl.Float32).alias("starts_punct"),
        text.str.contains(r"[|»›•·]|\s/\s").cast(pl.Float32).alias("has_separator"),
        text.str.contains(r"https?://|www\.|@\w|\.(com|org|net)(?-u:\b)").cast(pl.Float32).alias("has_address"),
        text.str.contains(r"^[\p{N}\p{P}\p{S}\s]+$").cast(pl.Float32).alias("no_letters"),
        (pl.len().over("doc", "text") > 1).cast(pl.Float32).alias("repeated"),
        _ratio(index, n_lines - 1).alias("position"),
        _log(index).alias("log_from_start"),
        _log(n_lines - 1 - index).alias("log_to_end"),
        _ratio(n_chars.cum_sum().over("doc") - n_chars, doc_chars).alias("chars_before"),
        _log(n_lines).alias("log_doc_lines"),
        _ratio(n_chars, n_chars.max().over("doc")).alias("length_vs_longest"),
        _log(pl.len().over("block")).alias("log_block_lines"),
        _log(block_chars).alias("log_block_chars"),
        _ratio(n_chars, block_chars).alias("block_share"),
        terminal.max().over("block").alias("block_terminal"),
        _neighbour(log_chars, 1).alias("prev_log_chars"),
        _neighbour(log_chars, -1).alias("next_log_chars"),
        _neighbour(terminal, 1).alias("prev_terminal"),
        _neighbour(terminal, -1).alias("next_terminal"),
        _window_mean(prose, NEAR_WINDOW).alias("near_prose"),
        _window_mean(prose, WIDE_WINDOW).alias("wide_prose"),
        _window_mean(terminal, NEAR_WINDOW).alias("near_terminal"),
        dense.alias("near_log_chars"),
        _ratio(dense, dense.max().over("doc")).alias("density_vs_peak"),
        *[(pl.col("rule_category") == c).fill_null(False).cast(pl.Float32).alias(f"rule_{c}")
          for c in categories],
    ).drop(*shared)


def feature_names(categories: Sequence[str]) -> list[str]:
    """Names of the columns of :func:`feature_frame` used as model inputs, in order."""
    probe = pl.DataFrame({"doc": [0], "text": ["x"], "block": [0], "n_words": [1], "rule_category": [None]},
                         schema_overrides={"rule_category": pl.String})
    return [c for c in feature_frame(probe, categories).columns if c not in probe.columns]


def context_frame(lines: pl.DataFrame, probability: np.ndarray) -> pl.DataFrame:
    """Second-stage features: the first-stage body probability of each line and its neighbours."""
    p = pl.col("p")
    return lines.select("doc").with_columns(pl.Series("p", probability, dtype=pl.Float32)).select(
        p.alias("p_self"),
        _neighbour(p, 1).alias("p_prev"),
        _neighbour(p, -1).alias("p_next"),
        _window_mean(p, 3).alias("p_window_3"),
        _window_mean(p, NEAR_WINDOW).alias("p_window_near"),
        _window_mean(p, WIDE_WINDOW).alias("p_window_wide"),
        p.max().over("doc").alias("p_doc_max"),
        p.mean().over("doc").alias("p_doc_mean"),
        (p.cum_max().over("doc") - p).alias("p_below_running_max"),
        p.reverse().cum_max().reverse().over("doc").alias("p_max_after"),
        p.cum_max().over("doc").alias("p_max_before"),
    )
