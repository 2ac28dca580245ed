"""Bulk line table and line features for a whole shard (Polars expressions and NumPy over the pages, no per-line loops).

The features of :func:`feature_frame` are language-neutral: they look at lengths, punctuation,
letter case, position in the page and the neighbouring lines, never at the words of one language.
The text model adds lexical inputs (:func:`lexical_keys`, :func:`lexical_frame`): the first and last
tokens of each line, scored by a vocabulary learned across sites in training. What a feature reads
from a line's characters (classes counted, first and last characters) comes from one pass over
the code points of the shard's distinct texts in NumPy (:func:`char_profile`), not from a regex per feature.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cache

import numpy as np
import polars as pl
import pyarrow as pa

from commentary.clean.distinct import first_rows, text_ids
from commentary.clean.rules import Rule, rule_of_every_line

#: Characters Python's ``str.strip()`` removes, so that "blank line" means what it means in Python.
WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
#: Character classes of the profile, in the regex dialect of Polars (which decides membership).
#: Sentence ends in the scripts seen in the benchmark (Latin, Cyrillic, CJK, Arabic, Devanagari),
#: the quotes and brackets that may close a sentence, and those that may open a capitalised word.
CHAR_CLASSES = {
    "space": r"\s", "letter": r"\p{L}", "upper": r"\p{Lu}", "lower": r"\p{Ll}", "number": r"\p{N}",
    "punct_symbol": r"[\p{P}\p{S}]", "comma": ",", "slash": "/", "stop": r"[.!?]",
    "terminal": r"[.!?…。！？؟।]", "sentence_end": r"[.!?。！？؟।]", "closing": r"""["'”’»)\]]""",
    "opening": r"""["“‘'(]""", "leading_punct": r"[,.;:)\]]", "separator": r"[|»›•·]",
}
#: A line of this many words or more reads as prose, not as a menu entry (C4 uses 5 for sentences).
PROSE_MIN_WORDS = 8
#: Longest line a furniture rule is tried on (the longest rule example, a caption, has 31 words).
RULE_MAX_WORDS = 60
#: Window sizes (lines, centred) over which neighbour context is averaged.
NEAR_WINDOW = 5
WIDE_WINDOW = 15
#: Distance (in lines) given to a line with no prose line, or no comment line, on that side.
FAR_LINES = 1000
#: Lexical slots of a line: its first one, two and three tokens and its last one and two (lowercased,
#: digit runs folded to "0"), read from its first ``LEXICAL_HEAD`` characters and, when it is longer,
#: its last ``LEXICAL_TAIL``.
LEXICAL_SLOTS = {"first_1": (0, 1), "first_2": (0, 2), "first_3": (0, 3), "last_1": (-1, 1), "last_2": (-2, 2)}
LEXICAL_HEAD = 24
LEXICAL_TAIL = 12


class _CharFlags:
    """Bit flags of the CHAR_CLASSES each code point belongs to, filled in as code points appear."""

    KNOWN = 1 << len(CHAR_CLASSES)

    def __init__(self) -> None:
        self._table = np.zeros(0x110000, dtype=np.uint16)
        self._lock = threading.Lock()

    def __call__(self, code_points: np.ndarray) -> np.ndarray:
        flags = self._table.take(code_points)
        if flags.min(initial=self.KNOWN) < self.KNOWN:  # KNOWN lies above every class bit
            with self._lock:
                new = np.unique(code_points[(flags & self.KNOWN) == 0])
                chars = pl.Series([chr(c) for c in new], dtype=pl.String)
                bits = np.full(len(new), self.KNOWN, dtype=np.uint16)
                for bit, pattern in enumerate(CHAR_CLASSES.values()):
                    bits |= chars.str.contains(pattern).to_numpy().astype(np.uint16) << bit
                self._table[new] = bits
            flags = self._table.take(code_points)
        return flags


_CHAR_FLAGS = _CharFlags()
#: What ``char_profile`` counts of the rare characters, one class each (digits, commas, the other punctuation and
#: symbols, capitals, characters of no class): per line in one count over the shard.
_RARE_COUNTS = ("number", "comma", "punct_symbol", "upper", "unclassed")


@cache
def _rare_count_class() -> np.ndarray:
    """The index in ``_RARE_COUNTS`` of a rare character (a capital or neither letter nor space), by its flags."""
    flags = np.arange(1 << 16, dtype=np.uint32)
    bits = [(flags & (1 << list(CHAR_CLASSES).index(name))) != 0 for name in _RARE_COUNTS[:-1]]
    return np.select(bits, np.arange(len(bits)), len(bits)).astype(np.int64)


def _code_points(text: pl.Series) -> np.ndarray:
    """Code points of all the strings of ``text`` (no nulls), one after another."""
    array = text.rechunk().to_arrow().cast(pa.large_string())
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset:array.offset + len(array) + 1]
    utf8 = str(memoryview(array.buffers()[2])[offsets[0]:offsets[-1]], "utf-8")
    return np.frombuffer(utf8.encode("utf-32-le"), dtype=np.uint32)


def char_profile(text: pl.Series) -> pl.DataFrame:
    """What the features read from each line's characters (``text``: non-empty lines).

    Counts (``n_*``) and flags, each the same as the regex it replaces, named in its comment.
    Letters and words take a pass over the shard's characters. The other classes are rare
    (capitals, digits, punctuation and symbols, characters of no class): one pass finds them, and
    their counts and patterns read only those positions.
    """
    n_chars = text.str.len_chars().to_numpy().astype(np.int64)
    if len(n_chars) == 0:
        return char_profile(pl.Series(["x"])).clear()
    flags = _CHAR_FLAGS(_code_points(text))
    bit = {name: np.uint16(1 << index) for index, name in enumerate(CHAR_CLASSES)}
    starts = np.r_[0, np.cumsum(n_chars)[:-1]]
    ends = starts + n_chars - 1

    # Capitals and the characters that are neither letters nor spaces: a few percent of a page.
    rare = np.flatnonzero(((flags & (bit["letter"] | bit["space"])) == 0) | ((flags & bit["upper"]) != 0))
    rare_flags = flags[rare]
    rare_lines = np.repeat(np.arange(len(starts)), np.diff(np.r_[np.searchsorted(rare, starts), len(rare)]))

    def positions(bits: np.uint16) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the characters in any of ``bits`` (rare classes only), and their lines."""
        found = (rare_flags & bits) != 0
        return rare[found], rare_lines[found]

    def per_line(lines: np.ndarray) -> np.ndarray:
        return np.bincount(lines, minlength=len(starts)).astype(np.uint32)

    def at(where: np.ndarray, bits: np.uint16) -> np.ndarray:
        return (flags[where] & bits) != 0

    space = (flags & bit["space"]) != 0
    word_start = ~space
    word_start[1:] &= space[:-1]
    word_start[starts] = ~space[starts]
    n_letters = np.add.reduceat((flags & bit["letter"]) != 0, starts, dtype=np.uint32)
    # Letters, digits, punctuation and symbols, and spaces are disjoint classes in Unicode; a comma is punctuation.
    counts = np.bincount(rare_lines * len(_RARE_COUNTS) + _rare_count_class()[rare_flags],
                         minlength=len(starts) * len(_RARE_COUNTS)).astype(np.uint32).reshape(len(starts), -1)
    n_numbers, n_commas, n_other_punct, n_upper, n_unclassed = counts.T

    # A capital opens a match after the line start or a space, maybe behind an opening quote.
    upper, upper_line = positions(bit["upper"])
    first = upper == starts[upper_line]
    behind = np.maximum(upper - 1, 0)
    quoted = ~first & at(behind, bit["opening"])
    capitalised = first | ~first & at(behind, bit["space"]) | quoted & (
        (behind == starts[upper_line]) | at(np.maximum(upper - 2, 0), bit["space"]))

    # A sentence mark ends a sentence when the closing quotes and brackets after it run to the
    # line's end or to a space; it ends the line when they run to the line's end.
    marks, mark_line = positions(bit["terminal"] | bit["sentence_end"])
    after = marks + 1
    closing = positions(bit["closing"])[0]
    if len(closing):
        run_last = closing[np.r_[np.flatnonzero(np.diff(closing) != 1), len(closing) - 1]]
        run_of = np.cumsum(np.r_[True, np.diff(closing) != 1]) - 1
        next_closing = np.minimum(np.searchsorted(closing, after), len(closing) - 1)
        in_run = closing[next_closing] == after
        after = np.where(in_run, run_last[run_of[next_closing]] + 1, after)
    line_end = after > ends[mark_line]
    sentence_end = at(marks, bit["sentence_end"]) & (line_end | at(np.minimum(after, len(flags) - 1), bit["space"]))
    terminal = at(marks, bit["terminal"]) & line_end

    slashes, slash_line = positions(bit["slash"])
    inner = (slashes > starts[slash_line]) & (slashes < ends[slash_line])
    spaced = inner & at(np.maximum(slashes - 1, 0), bit["space"]) & at(np.minimum(slashes + 1, len(flags) - 1), bit["space"])
    separator_line = positions(bit["separator"])[1]

    return pl.DataFrame({
        "n_chars": n_chars.astype(np.uint32),
        "n_words": np.add.reduceat(word_start, starts, dtype=np.uint32),  # \S+
        "n_letters": n_letters,  # \p{L}
        "n_upper": n_upper,  # \p{Lu}
        "n_numbers": n_numbers,  # \p{N}
        "n_punct_symbols": n_other_punct + n_commas,  # [\p{P}\p{S}]
        "n_commas": n_commas,
        "n_capitalised": per_line(upper_line[capitalised]),  # (^|\s)["“‘'(]?\p{Lu}
        "n_sentence_ends": per_line(mark_line[sentence_end]),  # SENTENCE_BREAK
        "ends_terminal": per_line(mark_line[terminal]) > 0,  # [.!?…。！？؟।]["'”’»)\]]*$
        "ends_stop": at(ends, bit["stop"]),  # [.!?]$
        "opens_upper": at(starts, bit["upper"]) | at(starts, bit["opening"]) & (n_chars > 1)
        & at(np.minimum(starts + 1, len(flags) - 1), bit["upper"]),  # ^["“‘'(]?\p{Lu}
        "opens_lower": at(starts, bit["lower"]),  # ^\p{Ll}
        "opens_letter": at(starts, bit["letter"]),  # ^\p{L}
        "opens_punct": at(starts, bit["leading_punct"]),  # ^[,.;:)\]]
        "has_separator_char": per_line(np.r_[separator_line, slash_line[spaced]]) > 0,  # [|»›•·]|\s/\s
        "letterless": (n_letters == 0) & (n_unclassed == 0),  # ^[\p{N}\p{P}\p{S}\s]+$
    })


def line_table(texts: Sequence[str]) -> pl.DataFrame:
    """One row per non-blank line: ``doc``, ``line_no`` (1-based), stripped ``text``, ``block``, ``text_id``
    (:func:`distinct.text_ids`) and the line's :func:`char_profile` (``n_chars``, ``n_words``, ...), computed once per
    distinct text.

    A block is a run of lines between blank lines (one text node per line in flat-naive pages);
    ``block`` numbers the blocks across the whole shard, so it alone identifies one.
    """
    try:
        docs = pl.DataFrame({"raw": list(texts)}, schema={"raw": pl.String})
    except (UnicodeEncodeError, pl.exceptions.ComputeError):
        docs = pl.DataFrame({"raw": [t.encode("utf-8", "replace").decode("utf-8") for t in texts]},
                            schema={"raw": pl.String})
    lines = (
        docs.with_row_index("doc")
        .select("doc", pl.col("raw").fill_null("").str.split("\n").alias("text"))
        .with_columns(pl.int_ranges(1, pl.col("text").list.len() + 1, dtype=pl.Int32).alias("line_no"))
        .explode("text", "line_no")
        .with_columns(pl.col("text").fill_null("").str.strip_chars(WHITESPACE))
        .with_columns(((pl.col("text") == "") | (pl.col("line_no") == 1)).cum_sum().alias("block"))
        .filter(pl.col("text") != "")
        # Both keys of the window expressions are sorted: Polars then slices groups instead of hashing.
        .with_columns(pl.col("doc").set_sorted(), pl.col("block").set_sorted())
    )
    ids = text_ids(lines["text"])
    profile = char_profile(lines["text"].gather(first_rows(ids)))
    return pl.concat([lines.with_columns(text_id=pl.Series(ids, dtype=pl.UInt32)), profile[ids]], how="horizontal")


def _ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    return (numerator / pl.max_horizontal(denominator, pl.lit(1))).cast(pl.Float32)


#: Counts below this have their ``log1p`` looked up in a table of Polars' own values (``_log1p``).
LOG1P_TABLE_SIZE = 1 << 17


@cache
def _log1p_table() -> np.ndarray:
    return pl.Series(np.arange(LOG1P_TABLE_SIZE, dtype=np.uint32)).cast(pl.Float32).log1p().to_numpy()


def _log1p(values: pl.Series) -> pl.Series:
    """``values.cast(pl.Float32).log1p()``, looked up when they are counts below ``LOG1P_TABLE_SIZE`` (a gather
    costs a fraction of Polars' ``log1p``)."""
    if (values.dtype.is_integer() and len(values) and not values.has_nulls()
            and 0 <= values.min() and values.max() < LOG1P_TABLE_SIZE):
        return pl.Series(values.name, _log1p_table()[values.to_numpy()], dtype=pl.Float32)
    return values.cast(pl.Float32).log1p()


def _log(expr: pl.Expr) -> pl.Expr:
    """``log1p`` of ``expr`` as Float32 (``_log1p``); not for use inside a window, which would call it once per group."""
    return expr.map_batches(_log1p, return_dtype=pl.Float32, is_elementwise=True)


def shifted_in_page(expr: pl.Expr, offset: int) -> pl.Expr:
    """``expr`` of the line ``offset`` lines before (after, when negative) in the same document, else null."""
    doc = pl.col("doc")  # sorted: a shift over the shard, kept where it stays in the document
    return pl.when(doc.shift(offset) == doc).then(expr.shift(offset))


def _neighbour(expr: pl.Expr, offset: int) -> pl.Expr:
    """``expr`` of the line ``offset`` lines before (after, when negative) in the same document, else 0."""
    return shifted_in_page(expr, offset).otherwise(0.0)


def _window_mean(expr: pl.Expr, size: int) -> pl.Expr:
    return expr.rolling_mean(size, center=True, min_samples=1).over("doc")


#: White space that a rule reads as one space: "Share on Facebook" with no-break spaces or tabs is the same line.
SPACE_RUN = r"\s{2,}|[^\S ]"


def add_rule_matches(lines: pl.DataFrame, rules: tuple[Rule, ...]) -> pl.DataFrame:
    """Add ``rule``: index of the first matching furniture rule (null when none).

    Only lines of at most RULE_MAX_WORDS words are tried, each distinct text once (``SPACE_RUN`` as a space): furniture is short.
    """
    ids = lines["text_id"].to_numpy()
    distinct = lines.select("text", "n_words")[first_rows(ids)]
    tried = (distinct.with_row_index("id").filter(pl.col("n_words") <= RULE_MAX_WORDS)
             .with_columns(pl.col("text").str.replace_all(SPACE_RUN, " ")))
    rule = pl.repeat(None, distinct.height, dtype=pl.Int16, eager=True).scatter(tried["id"], rule_of_every_line(tried, rules))
    return lines.with_columns(rule.gather(ids).alias("rule"))


#: A web or e-mail address, or a domain name.
ADDRESS = r"https?://|www\.|@\w|\.(com|org|net)(?-u:\b)"


def _has_address(text: pl.Series, ids: np.ndarray) -> np.ndarray:
    """Whether each line holds an ``ADDRESS`` (``ids``: :func:`distinct.text_ids` of ``text``), tried once per distinct text."""
    return text.gather(first_rows(ids)).str.contains(ADDRESS).to_numpy()[ids]


def _repeated_in_doc(doc: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Whether each line's text (``ids``: :func:`distinct.text_ids`) occurs more than once in its document (``doc``)."""
    repeated = np.zeros(len(ids), dtype=bool)
    in_shard = np.flatnonzero(np.bincount(ids)[ids] > 1)  # only a text found more than once in the shard can repeat in a page
    _, inverse, counts = np.unique(doc[in_shard].astype(np.uint64) << np.uint64(32) | ids[in_shard],
                                   return_inverse=True, return_counts=True)
    repeated[in_shard] = counts[inverse] > 1
    return repeated


def feature_frame(lines: pl.DataFrame, categories: Sequence[str]) -> pl.DataFrame:
    """Numeric features of every line of a :func:`line_table` with ``rule_category`` (null when no rule)."""
    ids = lines["text_id"].to_numpy()
    n_words = pl.col("n_words")
    # Sums, counts, maxima and shares of flags over pages and blocks in NumPy (the same values as Polars' windows:
    # a block is a group of one to a few rows, and a window per group costs Polars more than the work).
    pages, blocks = Pages(lines["doc"].to_numpy()), Pages(lines["block"].to_numpy())
    is_prose, is_terminal = lines["n_words"].to_numpy() >= PROSE_MIN_WORDS, lines["ends_terminal"].to_numpy()
    # Sub-expressions that several features use are computed once, as columns dropped at the end.
    shared = {
        "_terminal": pl.col("ends_terminal").cast(pl.Float32),
        "_index": pl.int_range(pl.len()).over("doc"),
        "_n_lines": pl.len().over("doc"),
        "_block_chars": pl.Series(blocks.total(lines["n_chars"].to_numpy())),
        "_dense": _window_mean(pl.col("_log_chars"), NEAR_WINDOW),
    }
    terminal, index, n_lines, block_chars, dense = map(pl.col, shared)
    n_chars, letters = pl.col("n_chars"), pl.col("n_letters")
    prose = (n_words >= PROSE_MIN_WORDS).cast(pl.Float32)
    log_chars = pl.col("_log_chars")  # a column before the windows that read it (``_log``)
    doc_chars = n_chars.sum().over("doc")
    return lines.with_columns(_log(n_chars).alias("_log_chars")).with_columns(**shared).with_columns(
        log_chars.alias("log_chars"),
        _log(n_words).alias("log_words"),
        _ratio(letters, n_chars).alias("letter_share"),
        _ratio(pl.col("n_upper"), letters).alias("upper_share"),
        _ratio(pl.col("n_numbers"), n_chars).alias("digit_share"),
        _ratio(pl.col("n_punct_symbols"), n_chars).alias("punct_share"),
        _ratio(pl.col("n_capitalised"), n_words).alias("capitalised_share"),
        _ratio(pl.col("n_commas"), n_words).alias("comma_rate"),
        _log(pl.col("n_sentence_ends")).alias("log_sentences"),
        terminal.alias("terminal"),
        prose.alias("prose"),
        pl.col("opens_upper").cast(pl.Float32).alias("starts_upper"),
        pl.col("opens_lower").cast(pl.Float32).alias("starts_lower"),
        pl.col("opens_punct").cast(pl.Float32).alias("starts_punct"),
        pl.col("has_separator_char").cast(pl.Float32).alias("has_separator"),
        pl.Series("has_address", _has_address(lines["text"], ids), dtype=pl.Boolean).cast(pl.Float32),
        pl.col("letterless").cast(pl.Float32).alias("no_letters"),
        pl.Series("repeated", _repeated_in_doc(lines["doc"].to_numpy(), ids)).cast(pl.Float32),
        _ratio(index, n_lines - 1).alias("position"),
        _log(index).alias("log_from_start"),
        _log(n_lines - 1 - index).alias("log_to_end"),
        _ratio(n_chars.cum_sum().over("doc") - n_chars, doc_chars).alias("chars_before"),
        _log(n_lines).alias("log_doc_lines"),
        _ratio(n_chars, n_chars.max().over("doc")).alias("length_vs_longest"),
        _log1p(pl.Series("log_block_lines", blocks.size())),
        _log(block_chars).alias("log_block_chars"),
        _ratio(n_chars, block_chars).alias("block_share"),
        pl.Series("block_terminal", blocks.highest(is_terminal).astype(np.float32)),
        _neighbour(log_chars, 1).alias("prev_log_chars"),
        _neighbour(log_chars, -1).alias("next_log_chars"),
        _neighbour(terminal, 1).alias("prev_terminal"),
        _neighbour(terminal, -1).alias("next_terminal"),
        pl.Series("near_prose", pages.window_mean(is_prose, NEAR_WINDOW)),
        pl.Series("wide_prose", pages.window_mean(is_prose, WIDE_WINDOW)),
        pl.Series("near_terminal", pages.window_mean(is_terminal, NEAR_WINDOW)),
        dense.alias("near_log_chars"),
        _ratio(dense, dense.max().over("doc")).alias("density_vs_peak"),
        *[(pl.col("rule_category") == c).fill_null(False).cast(pl.Float32).alias(f"rule_{c}")
          for c in categories],
    ).drop("_log_chars", *shared)


def feature_names(categories: Sequence[str]) -> list[str]:
    """Names of the columns of :func:`feature_frame` used as model inputs, in order."""
    probe = line_table(["x"]).with_columns(rule_category=pl.lit(None, dtype=pl.String))
    return [c for c in feature_frame(probe, categories).columns if c not in probe.columns]


class _Lowercase:
    """The lowercase code point of each capital (itself when its lowercase is several), filled in as capitals appear."""

    def __init__(self) -> None:
        self._table = np.zeros(0x110000, dtype=np.uint32)  # 0: not yet seen
        self._lock = threading.Lock()

    def __call__(self, capitals: np.ndarray) -> np.ndarray:
        lower = self._table.take(capitals)
        if not lower.all():
            with self._lock:
                for c in np.unique(capitals[lower == 0]).tolist():
                    folded = chr(c).lower()
                    self._table[c] = ord(folded) if len(folded) == 1 else c
            lower = self._table.take(capitals)
        return lower


_LOWERCASE = _Lowercase()
#: Multipliers of the 64-bit polynomial hashes of a token's characters and of a slot's tokens.
_CHAR_BASE = np.uint64(0x100000001B3)
_TOKEN_BASE = np.uint64(0x9E3779B97F4A7C15)
#: Most tokens a slot holds (first three, last two).
_HEAD_TOKENS = max(length for first, length in LEXICAL_SLOTS.values() if first >= 0)
_TAIL_TOKENS = max(length for first, length in LEXICAL_SLOTS.values() if first < 0)


def _tokens(text: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The tokens of the strings of ``text`` (a run of letters, digits and underscores, or one other
    non-space character such as "|", "»" or "©"; lowercased, a run of digits as one "0"),
    in reading order: each token's string index and hash, and the tokens' folded characters (each
    code point plus one) with each token's first position among them."""
    n_chars = text.str.len_chars().to_numpy().astype(np.int64)
    if not n_chars.sum():
        return np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(0, np.int64)
    code_points = _code_points(text)
    flags = _CHAR_FLAGS(code_points)
    bit = {name: np.uint16(1 << index) for index, name in enumerate(CHAR_CLASSES)}
    number = (flags & bit["number"]) != 0
    word = ((flags & (bit["letter"] | bit["number"])) != 0) | (code_points == ord("_"))
    starts = (np.cumsum(n_chars) - n_chars)[n_chars > 0]  # an empty string opens nothing (and may end the input)
    after_word, after_number = np.r_[False, word[:-1]], np.r_[False, number[:-1]]
    after_word[starts] = after_number[starts] = False
    kept = np.flatnonzero(((flags & bit["space"]) == 0) & ~(number & after_number))
    token_start = np.flatnonzero(~word[kept] | ~after_word[kept])
    chars = code_points[kept]
    capital = np.flatnonzero((flags[kept] & bit["upper"]) != 0)
    chars[capital] = _LOWERCASE(chars[capital])
    chars[number[kept]] = ord("0")
    chars = chars.astype(np.uint64) + np.uint64(1)
    # Each character's place in its token (the first kept character always opens a token).
    offset = np.arange(len(chars)) - np.repeat(token_start, np.diff(np.r_[token_start, len(chars)]))
    powers = np.cumprod(np.r_[np.uint64(1), np.full(int(offset.max(initial=0)), _CHAR_BASE)], dtype=np.uint64)
    hashes = np.add.reduceat(chars * powers[offset], token_start)
    lines = np.repeat(np.arange(len(n_chars)), n_chars)[kept[token_start]]
    return lines, hashes, chars, token_start


def _by_position(n_lines: int, lines: np.ndarray, values: np.ndarray, columns: int,
                 last: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each line's first ``columns`` values in reading order, or its last ones right-aligned (``last``),
    a row per line (``lines``: sorted), and which of those columns the line fills."""
    count = np.bincount(lines, minlength=n_lines)
    rank = np.arange(len(lines)) - (np.cumsum(count) - count)[lines]
    column = columns - count[lines] + rank if last else rank
    chosen = np.flatnonzero((column >= 0) & (column < columns))
    table = np.zeros(n_lines * columns, dtype=values.dtype)  # written through flat indices: cheaper than a 2-D index
    table[lines[chosen] * columns + column[chosen]] = values[chosen]
    table = table.reshape(n_lines, columns)
    filled = np.minimum(count, columns)[:, None]
    present = np.arange(columns) >= columns - filled if last else np.arange(columns) < filled
    return table, present


def lexical_keys(text: pl.Series, whole: bool = False) -> np.ndarray:
    """The key of each :data:`LEXICAL_SLOTS` slot (columns, in order) of each line of ``text``: a hash
    of the slot's tokens, read from the line's ends (from the whole line when ``whole``).
    A line's keys depend on its own text only."""
    n = len(text)
    # A line that the head holds whole gives its last tokens from the head.
    long = np.zeros(n, dtype=bool) if whole else (text.str.len_chars() > LEXICAL_HEAD).to_numpy()
    long_rows = np.flatnonzero(long)
    lines, hashes, _, _ = _tokens(pl.concat([text if whole else text.str.slice(0, LEXICAL_HEAD),
                                             text.gather(long_rows).str.slice(-LEXICAL_TAIL)]))
    head = lines < n
    tail = ~head | ~long[np.minimum(lines, n - 1)]
    tail_lines = np.where(head, lines, long_rows[np.maximum(lines - n, 0)] if len(long_rows) else 0)[tail]
    order = np.argsort(tail_lines, kind="stable")
    tables = {False: _by_position(n, lines[head], hashes[head], _HEAD_TOKENS, last=False),
              True: _by_position(n, tail_lines[order], hashes[tail][order], _TAIL_TOKENS, last=True)}
    keys = np.empty((n, len(LEXICAL_SLOTS)), dtype=np.uint64)
    for index, (first, length) in enumerate(LEXICAL_SLOTS.values()):
        table, present = tables[first < 0]
        key = np.full(n, _TOKEN_BASE, dtype=np.uint64)
        for column in range(length) if first >= 0 else range(_TAIL_TOKENS - length, _TAIL_TOKENS):
            key = np.where(present[:, column], key * _TOKEN_BASE + table[:, column], key)
        keys[:, index] = key
    return keys


def lexical_strings(text: Sequence[str], slot: str) -> list[str]:
    """The folded tokens of ``slot`` of each line of ``text`` joined by a space: the readable form of
    :func:`lexical_keys` (``lexical_keys`` of a returned string, read whole, equals that of its line)."""
    first, length = LEXICAL_SLOTS[slot]
    series = pl.Series(list(text), dtype=pl.String)
    lines, _, chars, token_start = _tokens(series.str.slice(0, LEXICAL_HEAD) if first >= 0 else pl.select(
        pl.when(series.str.len_chars() > LEXICAL_HEAD).then(series.str.slice(-LEXICAL_TAIL)).otherwise(series)).to_series())
    tokens: list[list[str]] = [[] for _ in text]
    for line, start, end in zip(lines.tolist(), token_start.tolist(), np.r_[token_start[1:], len(chars)].tolist()):
        tokens[line].append("".join(chr(c - 1) for c in chars[start:end].tolist()))
    return [" ".join(t[:length] if first >= 0 else t[-length:]) for t in tokens]


def lexical_names() -> list[str]:
    """Names of the columns of :func:`lexical_frame`, in order."""
    return [f"lex_{slot}" for slot in LEXICAL_SLOTS]


def lexical_index(lexicon: dict[str, dict[str, float]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per slot of ``lexicon`` (``{slot: {key string: weight}}``), its keys' distinct hashes and their weights (of the
    first key string with that hash)."""
    index = []
    for column, slot in enumerate(LEXICAL_SLOTS):
        words = lexicon.get(slot, {})
        keys, first = np.unique(lexical_keys(pl.Series(list(words), dtype=pl.String), whole=True)[:, column], return_index=True)
        index.append((keys, np.array(list(words.values()), dtype=np.float64)[first]))
    return index


def lexical_frame(keys: np.ndarray, index: list[tuple[np.ndarray, np.ndarray]]) -> pl.DataFrame:
    """The lexical inputs of every line (``keys``: :func:`lexical_keys`): per slot, the weight that the
    vocabulary (:func:`lexical_index`) gives the line's key, 0 for a key outside it (a hash look-up in Polars)."""
    return pl.DataFrame({name: pl.Series(column).replace_strict(known, weights, default=0.0, return_dtype=pl.Float64)
                         for name, column, (known, weights) in zip(lexical_names(), keys.T, index)})


class Pages:
    """Where the pages of a shard's rows (``doc``: sorted) start and end, for per-page work in NumPy."""

    def __init__(self, doc: np.ndarray) -> None:
        self.row = np.arange(len(doc))
        opens = np.r_[True, doc[1:] != doc[:-1]] if len(doc) else np.zeros(0, dtype=bool)
        self.starts = np.flatnonzero(opens)
        self.page = np.cumsum(opens) - 1  # each row's page, counted from 0
        self.first = self.starts[self.page]
        self.end = np.r_[self.starts[1:], len(doc)][self.page]  # the row after each row's page

    def since(self, flag: np.ndarray) -> np.ndarray:
        """Rows from each row back to the nearest row with ``flag`` in its page, itself included; -1 when none."""
        nearest = np.maximum.accumulate(np.where(flag, self.row, -1))
        return np.where(nearest >= self.first, self.row - nearest, -1)

    def until(self, flag: np.ndarray) -> np.ndarray:
        """Rows from each row on to the nearest row with ``flag`` in its page, itself included; -1 when none."""
        nearest = np.minimum.accumulate(np.where(flag, self.row, len(flag))[::-1])[::-1]
        return np.where(nearest < self.end, nearest - self.row, -1)

    def running_max(self, value: np.ndarray, reverse: bool = False) -> np.ndarray:
        """The greatest of ``value`` (float32, not negative) in each row's page up to it (from it on with ``reverse``).

        A non-negative float32 orders as its bits: the page number above them keeps one maximum from running
        into the next page.
        """
        page = (self.page[::-1].max(initial=0) - self.page if reverse else self.page).astype(np.uint64)
        key = page << np.uint64(32) | value.view(np.uint32)
        key = np.maximum.accumulate(key[::-1])[::-1] if reverse else np.maximum.accumulate(key)
        return (key & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.float32)

    def total(self, value: np.ndarray) -> np.ndarray:
        """The sum of ``value`` (integers, not booleans: NumPy adds those as "or") over each row's page."""
        return np.add.reduceat(value, self.starts)[self.page] if len(value) else value

    def running_total(self, value: np.ndarray) -> np.ndarray:
        """The sum of ``value`` (integers) over each row's page up to it, itself included."""
        running = np.cumsum(value)
        return running - (running - value)[self.first]

    def total_from_here(self, value: np.ndarray) -> np.ndarray:
        """The sum of ``value`` (integers) over each row's page from it on, itself included."""
        return self.total(value) - self.running_total(value) + value

    def highest(self, value: np.ndarray) -> np.ndarray:
        """The greatest of ``value`` in each row's page."""
        return np.maximum.reduceat(value, self.starts)[self.page] if len(value) else value

    def first_row(self, flag: np.ndarray) -> np.ndarray:
        """The first row with ``flag`` in each row's page (one after the page when none)."""
        return np.minimum.reduceat(np.where(flag, self.row, len(flag)), self.starts)[self.page] if len(flag) else self.row

    def size(self) -> np.ndarray:
        """The number of rows of each row's page."""
        return self.end - self.first

    def share(self, flag: np.ndarray) -> np.ndarray:
        """The share of rows with ``flag`` in each row's page (float32): Polars' ``mean().over(page)`` of the flag as 0.0
        and 1.0."""
        return (self.total(flag.astype(np.int64)) / self.size()).astype(np.float32)

    def window_mean(self, flag: np.ndarray, size: int) -> np.ndarray:
        """The share of rows with ``flag`` among the ``size`` rows centred on each row, within its page (float32): Polars'
        ``rolling_mean(size, center=True, min_samples=1).over(page)`` of the flag as 0.0 and 1.0, whose sums are exact."""
        if size % 2 == 0:
            raise ValueError("a centred window has an odd size")
        running = np.r_[0, np.cumsum(flag, dtype=np.int64)]
        low, high = np.maximum(self.row - size // 2, self.first), np.minimum(self.row + size // 2 + 1, self.end)
        return ((running[high] - running[low]) / (high - low)).astype(np.float32)


def context_frame(lines: pl.DataFrame, probability: np.ndarray, names: Sequence[str]) -> pl.DataFrame:
    """Second-stage features ``names`` of every line: the first-stage body probability of the line
    and its neighbours (``p_*``), and what surrounds the line itself: the lines two away, the
    nearest prose lines, the share of prose in its block, the comment lines (by rule) before
    and around it, and the line against its page: the rank of its length, its length against the
    page's median prose line, the share of unterminated prose around it (teasers, link lists),
    and its distance to the page's most confident line."""
    p = pl.col("p")
    n_words = pl.col("n_words")
    prose = (n_words >= PROSE_MIN_WORDS).cast(pl.Float32)
    p_values = pl.Series("p", probability, dtype=pl.Float32)
    # Distances, counts, maxima and shares of flags per page and block in NumPy (integers, maxima and shares of
    # exact sums: the same values as Polars' windows); the float arithmetic after them stays in Polars.
    pages, blocks = Pages(lines["doc"].to_numpy()), Pages(lines["block"].to_numpy())
    is_prose = lines["n_words"].to_numpy() >= PROSE_MIN_WORDS
    is_comment = (lines["rule_category"] == "comments").fill_null(False).to_numpy()
    is_rule = lines["rule_category"].is_not_null().to_numpy()
    p32 = p_values.to_numpy()
    p_doc_max = pages.highest(p32)
    comments_before = np.cumsum(is_comment) - (np.cumsum(is_comment) - is_comment)[pages.first]
    helpers = {
        "_since_prose": pages.since(is_prose), "_until_prose": pages.until(is_prose),
        "_since_comment": pages.since(is_comment), "_comments_before": comments_before,
        "_comments_in_doc": pages.total(is_comment.astype(np.int64)), "_doc_lines": pages.end - pages.first,
        "_p_max_before": pages.running_max(p32), "_p_max_after": pages.running_max(p32, reverse=True),
        "_p_doc_max": p_doc_max,
        "_to_peak": np.abs(pages.row - pages.first_row(p32 == p_doc_max)),  # the first highest, as Polars' ``arg_max``
        "_log_words": _log1p(lines["n_words"]),  # a column: a window reads it
        "_block_prose": blocks.share(is_prose), "_near_comments": pages.window_mean(is_comment, NEAR_WINDOW),
        "_near_rules": pages.window_mean(is_rule, NEAR_WINDOW),
        "_near_open_prose": pages.window_mean(is_prose & ~lines["ends_terminal"].to_numpy(), NEAR_WINDOW),
    }
    log_words = pl.col("_log_words")

    def distance(name: str) -> pl.Expr:
        """``_log`` of a distance of ``helpers`` (FAR_LINES when there is none)."""
        return _log(pl.when(pl.col(name) >= 0).then(pl.col(name)).otherwise(FAR_LINES))

    expressions = {
        "p_self": p,
        "p_prev": _neighbour(p, 1),
        "p_next": _neighbour(p, -1),
        "p_window_3": _window_mean(p, 3),
        "p_window_near": _window_mean(p, NEAR_WINDOW),
        "p_window_wide": _window_mean(p, WIDE_WINDOW),
        "p_doc_max": pl.col("_p_doc_max"),
        "p_doc_mean": p.mean().over("doc"),
        "p_below_running_max": pl.col("_p_max_before") - p,
        "p_max_after": pl.col("_p_max_after"),
        "p_max_before": pl.col("_p_max_before"),
        "prev2_log_words": _neighbour(log_words, 2),
        "next2_log_words": _neighbour(log_words, -2),
        "prev_prose": _neighbour(prose, 1),
        "next_prose": _neighbour(prose, -1),
        "log_since_prose": distance("_since_prose"),
        "log_until_prose": distance("_until_prose"),
        "block_prose": pl.col("_block_prose"),
        "after_comments": (pl.col("_comments_before") > 0).cast(pl.Float32),
        "log_comments_before": _log(pl.col("_comments_before")),
        "log_since_comment": distance("_since_comment"),
        "near_comments": pl.col("_near_comments"),
        "near_rules": pl.col("_near_rules"),
        "doc_comment_share": _ratio(pl.col("_comments_in_doc").cast(pl.Float32), pl.col("_doc_lines").cast(pl.UInt32)),
        "length_rank": _ratio(n_words.rank("average").over("doc"), pl.len().over("doc")),
        "words_vs_page_prose": log_words - log_words.filter(prose > 0).median().over("doc").fill_null(0.0),
        "near_open_prose": pl.col("_near_open_prose"),
        "log_to_peak": _log(pl.col("_to_peak")),
    }
    return (lines.select("doc", "block", "n_words", "ends_terminal", "rule_category")
            .with_columns(p_values, **{name: pl.Series(name, values) for name, values in helpers.items()})
            .select(expressions[name].alias(name) for name in names))
