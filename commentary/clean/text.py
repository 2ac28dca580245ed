"""Classify every line of a shard of flattened pages and assemble the cleaned pages.

Order of decisions for each non-blank line (the first that applies wins):
1. a furniture rule from ``commentary/rules/*.toml`` (rule id ``<category>.<name>``);
2. a structural rule that combines position with the lines around it (declared, with examples, in
   ``commentary/rules/structural.toml``);
3. a line repeated in several documents of the shard (``<zone>.shard-repeat``, declared there too);
4. the line model (``MODEL_ID``) and its body-run decode (``segments.py``): body, or
   furniture named after its zone (``nav`` before the first body line, ``related`` after it);
   the lines of a paragraph broken at its links are decided together (``_chains_decided_whole``).

Text that an extractor already reduced to the main content (``extracted``) gets only the
precision tier: the furniture rules (but a long photo caption stays, ``CAPTION_RULES``) and the
structural rules that follow a rule-matched line (author boxes, bylines, comment and link-list
tails). Its other lines are body: the title and zone decisions, made for whole flattened pages,
would cut article text there.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import polars as pl

from commentary.clean import LINE_SCHEMA, CleanedPage, LineDecision, PageLines
from commentary.clean.article import STYLE_LINE, not_an_article
from commentary.clean.distinct import first_rows
from commentary.clean.extractors import DOM_COLUMNS
from commentary.clean.features import (NEAR_WINDOW, PROSE_MIN_WORDS, Pages, add_rule_matches, context_frame, feature_frame,
                                       lexical_frame, lexical_keys, line_table, shifted_in_page)
from commentary.clean.fields import FIELD_CATEGORIES, TITLE_SEPARATOR, extract_fields, folded
from commentary.clean.model import EXTRACTORS, MODEL_ID, LineModel, default_model
from commentary.clean.people import BIO_ROLE
from commentary.clean.rules import CATEGORY_PRIORITY, load_rules, load_structural_rules, matches_where
from commentary.clean.segments import page_body


#: The ids of the structural rules (``commentary/rules/structural.toml``): the line table's ``structural_id`` is an index
#: into them, and the rule ids become strings once, for the decided lines.
STRUCTURAL_IDS = tuple(load_structural_rules())


def structural(rule_id: str) -> int:
    """The index in ``STRUCTURAL_IDS`` of ``rule_id``, which must be declared in ``commentary/rules/structural.toml``."""
    if rule_id not in STRUCTURAL_IDS:
        raise KeyError(f"structural rule {rule_id} is not declared in commentary/rules/structural.toml")
    return STRUCTURAL_IDS.index(rule_id)


def _structural_lit(rule_id: str) -> pl.Expr:
    """``structural(rule_id)`` as a ``structural_id`` value."""
    return pl.lit(structural(rule_id), dtype=pl.Int8)


#: A title is a short line of several words (the benchmark's <title> and <h1> lines have 2-25).
TITLE_MIN_WORDS = 2
TITLE_MAX_WORDS = 30
#: A shorter repeat of the title (e.g. without the " - Site" suffix) needs this many words.
TITLE_REPEAT_MIN_WORDS = 3
#: The most words of a site or section name in a page title ("BBC - Future - Headline").
TITLE_NAME_MAX_WORDS = 3
#: A line's first letter or digit: what ``fields.folded`` makes of it starts there.
_FIRST_LETTER = re.compile(r"[^\W_]")
#: A name line after a bare "BY" label, and a role line after a byline, are this short at most.
BYLINE_NAME_MAX_WORDS = 5
BYLINE_ROLE_MAX_WORDS = 8
#: Key-takeaway items are single sentences (the seed's are 16-21 words; its body paragraphs 30+); a line of
#: fewer words after such a heading is a link or a menu item ("Highlights", then "Basketball", "Golf").
SUMMARY_ITEM_MAX_WORDS = 35
SUMMARY_ITEM_MIN_WORDS = 4
SUMMARY_MAX_ITEMS = 6
#: An author box holds a paragraph or two after its heading; a bio sentence is one paragraph.
BIO_MAX_LINES = 3
BIO_MAX_WORDS = 120
#: "Name Surname is a ...": two to four capitalised words, then a copula or typical bio verb.
BIO_SENTENCE = (r"^\p{Lu}[\p{L}.'’-]+(\s+\p{Lu}[\p{L}.'’-]*){1,3},?\s+"
                r"(is|was|has been|serves as|writes|covers|specializes|specialises|teaches|directs|leads)\s")
#: Capitalised words that open a sentence but no person's name ("The Obama Administration is ..."):
#: a bio sentence does not open with one.
NOT_A_NAME = r"^(The|This|That|These|Those|A|An|Our|Their|His|Her|Its|My|Your|We|They|It|He|She|There|Here|When|If|As|After|Before|While|Since)\s"
#: "Name Surname" (for a line after a bare "BY" label).
NAME_LINE = r"^\p{Lu}[\p{L}.'’-]+(\s+\p{Lu}[\p{L}.'’-]*){1,3}$"
#: "Name Surname verb ..." (a bio that opens with the byline's author name).
NAME_THEN_VERB = r"^\p{Lu}[\p{L}.'’-]+(\s+\p{Lu}[\p{L}.'’-]*){1,3}\s+\p{Ll}"
#: Headings after which the rest of the page is comments. They end the article once this share
#: of the model's body text lies before them: a comment section can be longer than the article
#: (one benchmark page has 77% of its prose in comments), a header link holds none of it.
COMMENT_MARKERS = ("comments.header", "comments.email-not-published")
COMMENT_MIN_BODY_SHARE = 0.2
#: Comment author lines ("Posted by: NAME at DATE", "NAME says:"). A thread without a header
#: starts at the first of at least this many of them, under the same body share.
COMMENT_ENTRIES = ("comments.posted-by", "comments.says", "comments.name-date")
COMMENT_THREAD_MIN_ENTRIES = 2
#: Link-list headings end the article only once this share of the model's body text lies before
#: them (so a "Related" box mid-article does not cut it).
LIST_MARKERS = ("related.list-heading",)
TAIL_MIN_BODY_SHARE = 0.7
#: A line found in this many documents of a shard is site furniture, named after its zone like
#: the model's decisions: a site repeats its menus and footers in every page, and the shard's
#: pages are cleaned together. The benchmark's pages (one per site) share no such line.
SHARD_REPEAT_MIN_DOCS = 3
SHARD_REPEAT_SUFFIX = ".shard-repeat"
#: Only short lines of some words that start with a letter count: single words and fragments
#: (", and", "The") recur in many documents as pieces of sentences split at links, and prose
#: recurs in syndicated copies of one story (deduplication, after cleaning, handles those).
SHARD_REPEAT_MIN_WORDS = 2
#: The index of the first body line of a page without body (past any line).
NO_BODY_INDEX = 1 << 30
#: Structural rules that are not applied to extracted text (it rarely starts with the title).
NOT_FOR_EXTRACTED = (structural("title.first-line"), structural("title.repeat"))
#: Prefix of the ids of the lines after a tail marker (``zone.tail-<marker's category>``).
TAIL_ZONE_PREFIX = "zone.tail-"
#: The ``structural_id`` of the lines after a tail marker, by the marker's category.
_TAIL_ZONES = {category: structural(TAIL_ZONE_PREFIX + category)
               for category in sorted({rule_id.split(".")[0] for rule_id in (*COMMENT_MARKERS, *COMMENT_ENTRIES, *LIST_MARKERS)})}
#: Rule id of the body lines of extracted text (kept as the extractor returned them).
EXTRACTOR_ID = "extractor.main-content"
#: Caption rules that leave a line of extracted text of at least ``EXTRACTED_CAPTION_MIN_WORDS`` words
#: as body: there the line is a photo caption that the extractors kept inside the article.
CAPTION_RULES = ("media.agency-credit",)
EXTRACTED_CAPTION_MIN_WORDS = 15


def kept_caption(extracted: pl.Expr, rule_id: pl.Expr, n_words: pl.Expr) -> pl.Expr:
    """Whether a line is a photo caption that stays in extracted text (``CAPTION_RULES``)."""
    return extracted & rule_id.is_in(CAPTION_RULES) & (n_words >= EXTRACTED_CAPTION_MIN_WORDS)

MODEL_HEAD_CATEGORY = "nav"
MODEL_LATER_CATEGORY = "related"
#: A paragraph of a flattened page breaks at each link or emphasis into lines that continue one another
#: (a line not ending a sentence, then one opening in lower case or with a character other than a letter); the lines of such a
#: chain that the model decides are body together when the decode kept more than this share of their
#: characters. At 0 one kept line carries its chain; a majority (0.5) gained less, and a majority over the
#: whole block between blank lines (often a menu in flat-naive) lost the dev split (docs/ACCURACY.md, "Text path").
CHAIN_BODY_SHARE = 0.0
#: A line of page source that a broken page's flattening left in its text: a line of markup or data (``article.STYLE_LINE``:
#: a tag, a brace or a JSON key first, no prose ending) of at least SOURCE_MARKUP_MIN_CHARS characters (a JSON-LD block,
#: a run of tags), or any line of at least SOURCE_LINE_MIN_CHARS of which this share is the punctuation of code (a
#: script: ``var a = b || [];`` is 8%, a technical paper's prose at most 4%, a paragraph of links and brackets none).
#: Shorter lines are left to the model: a code sample in an article is body. On the benchmark and pool pages the 15 lines
#: of 2,000 characters or more are prose (at most 0.6% code punctuation), the 17 lines of markup of 1,000 or more page
#: source, and the code samples of gold bodies lines of 1,398 characters or fewer.
SOURCE_MARKUP_MIN_CHARS = 1000
SOURCE_LINE_MIN_CHARS = 2000
SOURCE_LINE_MIN_CODE_SHARE = 0.06
_CODE_CHARACTER = re.compile(r'[{};=<>|&\\]')


def _filled_in_page(expr: pl.Expr) -> pl.Expr:
    """The last non-null value of ``expr`` up to each line in its page, else null: one forward fill over the
    shard, kept where the value comes from the same page."""
    doc = pl.col("doc")
    return pl.when(pl.when(expr.is_not_null()).then(doc).forward_fill() == doc).then(expr.forward_fill())


def _structural_rules(lines: pl.DataFrame) -> pl.DataFrame:
    """Add ``structural_id``: decisions that need a line's neighbours or zone (null when none)."""
    rule_id = pl.col("rule_id")
    unclaimed = rule_id.is_null()
    prev_rule = shifted_in_page(rule_id, 1)
    # Segments start at every rule-matched line and at every document's first line; lines after a
    # heading belong to its segment. A segment is a run of rows: what it holds up to a line is a
    # running total over the shard minus that total before the segment's first line.
    segment_start = rule_id.is_not_null() | (pl.col("doc") != pl.col("doc").shift(1)).fill_null(True)
    row = pl.int_range(pl.len())
    long_line = (pl.col("n_words") > SUMMARY_ITEM_MAX_WORDS).cast(pl.Int32)
    long_lines = long_line.cum_sum()
    # Sums and positions within the page in NumPy (the same values as Polars' windows over the page).
    pages = Pages(lines["doc"].to_numpy())
    model_body = lines["model_body"].to_numpy().astype(np.int32)
    body_from_here = pages.total_from_here(model_body)
    lines = lines.with_columns(
        (row - pl.when(segment_start).then(row).forward_fill()).alias("segment_offset"),
        (long_lines - pl.when(segment_start).then(long_lines - long_line).forward_fill()).alias("segment_long_lines"),
        pl.Series("index", pages.row - pages.first),
        pl.Series("body_from_here", body_from_here, dtype=pl.Int32),
        pl.Series("body_before_page_end", body_from_here < pages.total(model_body)),
        _filled_in_page(rule_id).alias("segment_rule"),
    )
    segment_rule, offset = pl.col("segment_rule"), pl.col("segment_offset")
    short_item = pl.col("segment_long_lines") == 0
    body_after = pl.col("body_from_here") - pl.col("model_body").cast(pl.Int32)
    name_line = matches_where(lines, NAME_LINE, unclaimed & (prev_rule == "byline.by-label")
                               & (pl.col("n_words") <= BYLINE_NAME_MAX_WORDS))
    may_be_bio = unclaimed & (pl.col("n_words") <= BIO_MAX_WORDS) & (body_after == 0) & pl.col("body_before_page_end")
    # Each test runs only where the ones before it held: the role words' search is the slowest.
    bio_sentence = matches_where(lines, BIO_SENTENCE, may_be_bio)
    bio_sentence &= ~matches_where(lines, NOT_A_NAME, pl.lit(bio_sentence))
    bio_sentence &= matches_where(lines, "(?i)" + BIO_ROLE.pattern, pl.lit(bio_sentence))
    lines = lines.with_columns(
        pl.when(unclaimed & (segment_rule == "summary.heading") & (offset <= SUMMARY_MAX_ITEMS) & short_item
                & (pl.col("n_words") >= SUMMARY_ITEM_MIN_WORDS))
        .then(_structural_lit("summary.item"))
        .when(unclaimed & (segment_rule == "bio.heading") & (offset <= BIO_MAX_LINES))
        .then(_structural_lit("bio.after-heading"))
        .when(name_line).then(_structural_lit("byline.after-label"))
        .when(bio_sentence).then(_structural_lit("bio.name-after-body"))
        .alias("structural_id")
    )
    # A role line ("Senior Fellow, Asia") follows a byline name; a bio may open with that name.
    byline_name = shifted_in_page(pl.col("structural_id"), 1) == structural("byline.after-label")
    lines = lines.with_columns(_filled_in_page(pl.when(pl.col("structural_id") == structural("byline.after-label"))
                                               .then(pl.col("text"))).alias("author"))
    author = pl.col("author")
    name_then_verb = matches_where(lines, NAME_THEN_VERB, unclaimed & author.is_not_null()
                                    & pl.col("text").str.starts_with(author.fill_null("\x00"))
                                    & (pl.col("n_words") <= BIO_MAX_WORDS))
    lines = lines.with_columns(
        pl.when(pl.col("structural_id").is_not_null()).then(pl.col("structural_id"))
        .when(unclaimed & byline_name & (pl.col("n_words") <= BYLINE_ROLE_MAX_WORDS)
              & ~pl.col("ends_stop"))
        .then(_structural_lit("byline.role"))
        .when(name_then_verb).then(_structural_lit("bio.author-name"))
        .otherwise(pl.col("structural_id"))
        .alias("structural_id")
    )
    return _title_rules(_tail_zone(lines, pages), pages)


def _tail_zone(lines: pl.DataFrame, pages: Pages) -> pl.DataFrame:
    """Lines after a tail marker (a comment header or thread, a related list) take the marker's category."""
    body_chars = np.where(lines["model_body"].to_numpy(), lines["n_chars"].to_numpy().astype(np.int64), 0)
    entry = lines["rule_id"].is_in(COMMENT_ENTRIES).fill_null(False).to_numpy()
    entries_from_here = pages.total_from_here(entry.astype(np.int32))
    lines = lines.with_columns(
        pl.Series("body_share_before", pages.running_total(body_chars) / np.maximum(pages.total(body_chars), 1)),
        pl.Series("thread_start", entry & (entries_from_here >= COMMENT_THREAD_MIN_ENTRIES)))
    body_share_before, thread_start = pl.col("body_share_before"), pl.col("thread_start")
    marker = lines.select(
        (((pl.col("rule_id").is_in(COMMENT_MARKERS) | thread_start) & (body_share_before >= COMMENT_MIN_BODY_SHARE))
         | (pl.col("rule_id").is_in(LIST_MARKERS) & (body_share_before >= TAIL_MIN_BODY_SHARE))).fill_null(False)
    ).to_series().to_numpy()
    # The zone of the nearest marker at or before each line in its page (markers are few: found in NumPy).
    marker_rows = np.flatnonzero(marker)
    zone_at = np.full(len(marker), -1, dtype=np.int8)
    zone_at[marker_rows] = lines["rule_category"].gather(marker_rows).replace_strict(
        _TAIL_ZONES, default=None, return_dtype=pl.Int8).fill_null(-1).to_numpy()
    since_zone = pages.since(zone_at >= 0)
    after_marker = np.r_[False, pages.since(marker)[:-1] >= 0] & (pages.row != pages.first)
    return lines.with_columns(
        pl.when(pl.Series(after_marker & (since_zone >= 0)) & pl.col("rule_id").is_null() & pl.col("structural_id").is_null())
        .then(pl.Series(zone_at[pages.row - np.maximum(since_zone, 0)], dtype=pl.Int8))
        .otherwise(pl.col("structural_id")).alias("structural_id")
    )


def _title_rules(lines: pl.DataFrame, pages: Pages) -> pl.DataFrame:
    """Mark the title (first short unclaimed line up to the body) and its repeats."""
    free = pl.col("rule_id").is_null() & pl.col("structural_id").is_null()
    first_body = pages.first_row(lines["model_body"].to_numpy())
    first_body = np.where(first_body < pages.end, first_body - pages.first, NO_BODY_INDEX)
    candidate = lines.select(free & pl.col("n_words").is_between(TITLE_MIN_WORDS, TITLE_MAX_WORDS)).to_series().to_numpy()
    title_row = pages.first_row(candidate & (pages.row - pages.first <= first_body))
    has_title = title_row < pages.end
    title_row = np.where(has_title, title_row, 0)
    lines = lines.with_columns(pl.Series("first_body", first_body),
                               pl.when(pl.Series(has_title)).then(lines["text"].gather(title_row)).alias("title"),
                               pl.when(pl.Series(has_title)).then(pl.Series(title_row - pages.first)).alias("first_title_index"))
    title = pl.col("title")
    may_repeat = free & (pl.col("index") > pl.col("first_title_index")) & (pl.col("index") <= pl.col("first_body") + 1)
    long_enough = pl.col("n_words") >= TITLE_REPEAT_MIN_WORDS
    is_repeat = may_repeat & ((pl.col("text") == title) | _headline_of_title(lines.select("text", "title", (may_repeat & long_enough).alias("may"))))
    return lines.with_columns(
        pl.when(free & (pl.col("index") == pl.col("first_title_index"))).then(_structural_lit("title.first-line"))
        .when(is_repeat).then(_structural_lit("title.repeat"))
        .otherwise(pl.col("structural_id"))
        .alias("structural_id")
    )


def _headline_of_title(lines: pl.DataFrame) -> pl.Series:
    """Whether each line (of those marked ``may``) is its page title's headline: the title's start ("Headline - Site"),
    or its last part after short site and section names ("BBC News - Headline", ``_headline_after_names``), compared
    word by word in lower case without punctuation ("‘The Medium…’" repeats "'The Medium…'"). A line cut short with
    an ellipsis is a teaser of the story, not its headline, unless the title starts with it as it is."""
    rows = np.flatnonzero(lines["may"].fill_null(False).to_numpy())
    found = np.zeros(lines.height, dtype=bool)
    parts: dict[str, tuple[str, str, set[str]]] = {}
    for row, text, title in zip(rows, lines["text"].gather(rows).to_list(), lines["title"].gather(rows).to_list(), strict=True):
        if title.startswith(text):
            found[row] = True
            continue
        if title not in parts:
            whole, last = folded(title) + " ", folded(_headline_after_names(title))
            parts[title] = whole, last, {whole[:1], last[:1]} - {""}
        whole, last, first_letters = parts[title]
        if text.endswith(("…", "...")) or ((letter := _FIRST_LETTER.search(text)) and letter[0].lower()[:1] not in first_letters):
            continue  # a teaser cut short, or a line that opens otherwise (most lines before an article: no folding)
        line = folded(text)
        found[row] = bool(line) and (whole.startswith(line + " ") or line == last)
    return pl.Series(found)


def _headline_after_names(title: str) -> str:
    """The last part of a title whose other parts are names ("BBC - Future - Headline": at most
    ``TITLE_NAME_MAX_WORDS`` words each) and which is longer than each of them (at least ``TITLE_NAME_MAX_WORDS`` + 1
    words); ``""`` when the title has no such part."""
    *names, last = TITLE_SEPARATOR.split(title)
    fits = names and len(last.split()) > TITLE_NAME_MAX_WORDS and all(len(name.split()) <= TITLE_NAME_MAX_WORDS for name in names)
    return last if fits else ""



def rule_lines(texts: Sequence[str]) -> pl.DataFrame:
    """The line table with ``rule_id`` and ``rule_category`` of the first matching rule (or null)."""
    rules = load_rules()
    lines = add_rule_matches(line_table(texts), rules)
    return lines.with_columns(pl.Series("rule_id", [r.id for r in rules], dtype=pl.String).gather(lines["rule"]),
                              pl.Series("rule_category", [r.category for r in rules], dtype=pl.String).gather(lines["rule"]))


def classify_shard(texts: Sequence[str], model: LineModel | None = None,
                   extracted: Sequence[bool] | None = None) -> pl.DataFrame:
    """One row per non-blank line: ``doc``, ``line_no``, ``text``, ``category``, ``rule_id``.

    ``extracted[i]`` says that ``texts[i]`` is main-content extractor output (see module docstring).
    """
    model = default_model() if model is None else model
    lines = rule_lines(texts)
    if lines.height == 0:
        return lines.select("doc", "line_no", "text", category=pl.lit(""), rule_id=pl.lit(""))
    is_extracted = pl.Series("extracted", [False] * len(texts) if extracted is None else list(extracted),
                             dtype=pl.Boolean).gather(lines["doc"])
    lines = lines.with_columns(is_extracted)
    probability = body_probability(lines, model)
    if extracted is not None and any(extracted):
        caption = kept_caption(pl.col("extracted"), pl.col("rule_id"), pl.col("n_words"))
        lines = lines.with_columns(pl.when(caption).then(None).otherwise(pl.col(name)).alias(name)
                                   for name in ("rule", "rule_id", "rule_category"))
    repeat_text = pl.col("n_words").is_between(SHARD_REPEAT_MIN_WORDS, PROSE_MIN_WORDS - 1) & pl.col("opens_letter")
    shard_repeat = ~pl.col("extracted") & repeat_text & pl.Series(_in_documents(lines, repeat_text, SHARD_REPEAT_MIN_DOCS))
    lines = lines.with_columns(shard_repeat.alias("shard_repeat")).with_columns(
        pl.when(pl.col("extracted")).then(pl.col("rule_id").is_null())
        .otherwise(pl.Series(body_runs(lines, probability, model.threshold, model.run_cost, rescue=True)) & ~pl.col("shard_repeat")).alias("model_body"))
    lines = _page_source(_structural_rules(_chains_decided_whole(lines))).with_columns(
        pl.when(pl.col("extracted") & pl.col("structural_id").is_in(NOT_FOR_EXTRACTED)).then(None)
        .otherwise(pl.col("structural_id")).alias("structural_id"),
        _filled_in_page(pl.when(pl.col("model_body")).then(pl.lit(True))).fill_null(False).alias("seen_body"))
    return lines.select("doc", "line_no", "text", **_decisions(lines))


def _page_source(lines: pl.DataFrame) -> pl.DataFrame:
    """Long lines of page source (``SOURCE_MARKUP_MIN_CHARS``) that no other rule claimed get the ``structural_id`` of
    ``code.page-source``, whatever the model decided (text path only: extractors drop a page's scripts and styles)."""
    rows = np.flatnonzero((lines["n_chars"].to_numpy() >= SOURCE_MARKUP_MIN_CHARS) & ~lines["extracted"].to_numpy()
                          & lines["rule"].is_null().to_numpy() & lines["structural_id"].is_null().to_numpy())
    source = [row for row, text in zip(rows, lines["text"].gather(rows))
              if STYLE_LINE.fullmatch(text) or len(text) >= SOURCE_LINE_MIN_CHARS
              and len(_CODE_CHARACTER.findall(text)) >= SOURCE_LINE_MIN_CODE_SHARE * len(text)]
    if not source:
        return lines
    return lines.with_columns(lines["structural_id"].clone().scatter(source, structural("code.page-source")))


def _continuation_chains(lines: pl.DataFrame) -> np.ndarray:
    """A number per line, shared by the lines of one chain: a chain breaks at each block (``features.line_table``)
    and before a line that does not continue the one before it: that one ends a sentence, or this one opens
    with a letter in upper case or without case."""
    block = lines["block"].to_numpy()
    continues = (np.r_[False, ~lines["ends_terminal"].to_numpy()[:-1]]
                 & (lines["opens_lower"].to_numpy() | ~lines["opens_letter"].to_numpy()))
    return np.cumsum(np.r_[True, block[1:] != block[:-1]] | ~continues)


def _chains_decided_whole(lines: pl.DataFrame) -> pl.DataFrame:
    """``model_body`` decided per continuation chain (``_continuation_chains``) for the lines the model decides
    (no furniture rule, not extracted, not a shard repeat): body when the decode kept more than
    ``CHAIN_BODY_SHARE`` of their characters in the chain."""
    decided = (lines["rule"].is_null() & ~lines["extracted"] & ~lines["shard_repeat"]).to_numpy()
    body = lines["model_body"].to_numpy()
    chars = np.where(decided, lines["n_chars"].to_numpy().astype(np.int64), 0)
    chains = Pages(_continuation_chains(lines))
    whole = chains.total(np.where(body, chars, 0)) > CHAIN_BODY_SHARE * chains.total(chars)
    return lines.with_columns(pl.Series("model_body", np.where(decided, whole, body)))


def _decisions(lines: pl.DataFrame) -> dict[str, pl.Series]:
    """``category`` and ``rule_id`` of every line: its furniture rule's (``rule``), else its structural rule's
    (``structural_id``), else the extractor's (``extracted``: body), else the model's (body, or the zone before or
    after the first body line; a shard repeat there is named after that zone). Decided as indices into the few
    strings they can be, which are gathered once at the end."""
    rules, declared = load_rules(), load_structural_rules()
    rule_ids = [*(rule.id for rule in rules), *STRUCTURAL_IDS, EXTRACTOR_ID, MODEL_ID]
    categories = list(dict.fromkeys([*(rule.category for rule in rules), *(rule.category for rule in declared.values()),
                                     "body", MODEL_LATER_CATEGORY, MODEL_HEAD_CATEGORY]))
    rule = lines["rule"].fill_null(-1).to_numpy().astype(np.int64)
    structural_rule = lines["structural_id"].fill_null(-1).to_numpy().astype(np.int64)
    extracted, shard_repeat, body, seen_body = (lines[name].to_numpy() for name in ("extracted", "shard_repeat", "model_body", "seen_body"))
    has_rule, has_structural = rule >= 0, structural_rule >= 0
    model_zone = np.where(body, categories.index("body"),
                          np.where(seen_body, categories.index(MODEL_LATER_CATEGORY), categories.index(MODEL_HEAD_CATEGORY)))
    category = np.select(
        [has_rule, has_structural],
        [np.array([categories.index(r.category) for r in rules])[rule],
         np.array([categories.index(declared[i].category) for i in STRUCTURAL_IDS])[structural_rule]], model_zone)
    repeat_id = np.where(seen_body, structural(MODEL_LATER_CATEGORY + SHARD_REPEAT_SUFFIX),
                         structural(MODEL_HEAD_CATEGORY + SHARD_REPEAT_SUFFIX)) + len(rules)
    rule_id = np.select([has_rule, has_structural, extracted, shard_repeat],
                        [rule, structural_rule + len(rules), len(rule_ids) - 2, repeat_id], len(rule_ids) - 1)
    return {"category": pl.Series(categories, dtype=pl.String).gather(category),
            "rule_id": pl.Series(rule_ids, dtype=pl.String).gather(rule_id)}


#: The HTML model's inputs that ``with_kept`` adds: the share of each line that each extractor kept and
#: their mean, then how the extractors agree: how many kept most of the line, the share of the page's
#: words each kept, whether the line lies between the first and last line each kept (and how many
#: say so), and the mean kept share of the lines around it.
KEPT_FEATURES = (
    *(f"kept_by_{name}" for name in EXTRACTORS), "kept_by_mean", "kept_votes",
    *(f"{kind}_{name}" for name in EXTRACTORS for kind in ("page_kept", "inside")), "kept_near", "inside_votes",
)
#: An extractor keeps a line when it kept more than this share of the line's words.
KEPT_LINE_SHARE = 0.5


def with_kept(lines: pl.DataFrame, kept: Sequence[dict[str, dict[int, float]]]) -> pl.DataFrame:
    """``lines`` with the HTML model's inputs (``KEPT_FEATURES``), from the share of each line that each
    extractor kept (``kept[doc][extractor][line_no]``, 0 when absent)."""
    doc, number = lines["doc"].to_list(), lines["line_no"].to_list()
    columns = {f"kept_by_{name}": [kept[d].get(name, {}).get(n, 0.0) for d, n in zip(doc, number)]
               for name in EXTRACTORS}
    frame = pl.DataFrame(columns, schema={c: pl.Float64 for c in columns})
    index = pl.int_range(pl.len()).over("doc")
    words = pl.col("n_words").cast(pl.Float64)
    page_words = pl.max_horizontal(words.sum().over("doc"), pl.lit(1.0))
    agreement = {}
    for name, column in zip(EXTRACTORS, columns):
        kept_index = pl.when(pl.col(column) > KEPT_LINE_SHARE).then(index).otherwise(None)
        agreement[f"page_kept_{name}"] = (words * pl.col(column)).sum().over("doc") / page_words
        agreement[f"inside_{name}"] = ((index >= kept_index.min().over("doc")) & (index <= kept_index.max().over("doc"))
                                       ).fill_null(False).cast(pl.Float64)
    return pl.concat([lines, frame], how="horizontal").with_columns(
        pl.mean_horizontal(*columns).alias("kept_by_mean"),
        pl.sum_horizontal(*((pl.col(c) > KEPT_LINE_SHARE).cast(pl.Float64) for c in columns)).alias("kept_votes"),
        **agreement,
    ).with_columns(
        pl.col("kept_by_mean").rolling_mean(NEAR_WINDOW, center=True, min_samples=1).over("doc").alias("kept_near"),
        pl.sum_horizontal(*(pl.col(f"inside_{name}") for name in EXTRACTORS)).alias("inside_votes"),
    )


def with_dom(lines: pl.DataFrame, dom: Sequence[np.ndarray]) -> pl.DataFrame:
    """``lines`` with the HTML model's DOM columns (``DOM_COLUMNS``): row ``line_no - 1`` of ``dom[doc]``,
    each page's matrix from :func:`extractors.page_blocks` (zeros for a line it lacks)."""
    docs, numbers = lines["doc"].to_numpy(), lines["line_no"].to_numpy().astype(np.int64) - 1
    sizes = np.array([len(rows) for rows in dom], dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    stacked = np.vstack([*(rows for rows in dom if len(rows)), np.zeros((1, len(DOM_COLUMNS)))])
    present = numbers < sizes[docs]
    values = np.zeros((len(docs), len(DOM_COLUMNS)))
    values[present] = stacked[starts[docs[present]] + numbers[present]]
    return pl.concat([lines, pl.DataFrame(values, schema=list(DOM_COLUMNS), orient="row")], how="horizontal")


#: The HTML model's stage-2 inputs from the lines whose blocks share the line's parent element
#: (``dom_parent``): their stage-1 scores (mean weighted by characters, and the highest) and how many they are.
PARENT_CONTEXT_FEATURES = ("p_parent_mean", "p_parent_max", "log_parent_lines")


def stage2_context(lines: pl.DataFrame, probability: np.ndarray, names: Sequence[str]) -> pl.DataFrame:
    """Stage-2 inputs ``names`` beside the line features, from the stage-1 scores ``probability``:
    :func:`features.context_frame`'s and ``PARENT_CONTEXT_FEATURES`` (``lines`` then needs ``dom_parent``)."""
    own = [name for name in names if name not in PARENT_CONTEXT_FEATURES]
    context = context_frame(lines, probability, own)
    if len(own) == len(names):
        return context
    p, chars, group = pl.col("p"), pl.col("n_chars").cast(pl.Float64), ("doc", "dom_parent")
    parent = lines.select("doc", "dom_parent", "n_chars").with_columns(pl.Series("p", probability, dtype=pl.Float64)).select(
        ((p * chars).sum().over(group) / pl.max_horizontal(chars.sum().over(group), pl.lit(1.0))).alias("p_parent_mean"),
        p.max().over(group).alias("p_parent_max"),
        pl.len().over(group).cast(pl.Float64).log1p().alias("log_parent_lines"))
    return pl.concat([context, parent], how="horizontal").select(names)


def body_probability(lines: pl.DataFrame, model: LineModel) -> np.ndarray:
    """Stage-2 body probability of every line (``lines`` with ``rule_category``)."""
    # One column-major matrix holds the stage-1 features, filled column by column; stage 2 reads its columns and
    # the context's as they are.
    inputs = np.empty((lines.height, len(model.features)), order="F")
    features = feature_frame(lines, CATEGORY_PRIORITY)
    if model.lexicon:
        ids = lines["text_id"].to_numpy()  # the keys of each distinct text, looked up once
        distinct = lines["text"].gather(first_rows(ids))
        features = features.hstack(lexical_frame(lexical_keys(distinct), model.lexical_index)[ids])
    for column, name in zip(inputs.T, model.features):
        column[:] = features[name].to_numpy()  # the HTML model's ``kept_by_*`` and ``dom_*`` inputs come with ``lines``
    context = stage2_context(lines, model.stage1.predict(inputs), model.context_features)
    return model.stage2.predict([*inputs.T, *(context[name].to_numpy() for name in model.context_features)])


def body_runs(lines: pl.DataFrame, probability: np.ndarray, threshold: float, run_cost: float,
              rescue: bool = False) -> np.ndarray:
    """Body flag of every line: the probabilities decoded into body runs per page at the cut-off ``threshold``
    and the price ``run_cost`` of a run; with ``rescue`` (the text path), a page left without body is decoded
    again (``segments.page_body``)."""
    prose = lines["n_words"].to_numpy() >= PROSE_MIN_WORDS if rescue else None
    return page_body(lines["doc"].to_numpy(), probability, threshold, run_cost, lines["n_chars"].to_numpy(),
                     lines["n_letters"].to_numpy() > 0, prose)


def _in_documents(lines: pl.DataFrame, tried: pl.Expr, documents: int) -> np.ndarray:
    """Whether each line's text is found in at least ``documents`` documents of the shard, for the lines where
    ``tried`` (a condition on the text alone) holds; false for the others."""
    ids = lines["text_id"].to_numpy()
    rows = np.flatnonzero(lines.select(tried).to_series().to_numpy() & (np.bincount(ids)[ids] >= documents))
    pairs = np.unique(ids[rows].astype(np.uint64) << np.uint64(32) | lines["doc"].to_numpy()[rows].astype(np.uint64))
    found = np.zeros(len(ids), dtype=bool)
    found[rows] = (np.bincount((pairs >> np.uint64(32)).astype(np.int64), minlength=len(ids))[ids[rows]] >= documents)
    return found


def clean_shard(texts: Sequence[str], model: LineModel | None = None,
                extracted: Sequence[bool] | None = None) -> list[CleanedPage]:
    """Clean many documents at once; see the module docstring for how lines are decided."""
    decided = classify_shard(texts, model, extracted)
    is_body = pl.col("category") == "body"
    bodies = (decided.lazy().filter(is_body).group_by("doc").agg(pl.col("text").str.join("\n\n"))
              .collect().rows())
    body_of = dict(bodies)
    lines = decided.select(LINE_SCHEMA.names())
    bounds = np.searchsorted(decided["doc"].to_numpy(), np.arange(len(texts) + 1)).tolist()
    # Fields only come from the FIELD_CATEGORIES lines: only they become LineDecision objects here.
    sources = decided.filter(pl.col("category").is_in(FIELD_CATEGORIES))
    source_bounds = np.searchsorted(sources["doc"].to_numpy(), np.arange(len(texts) + 1)).tolist()
    sources = list(map(LineDecision._make, sources.select(LINE_SCHEMA.names()).iter_rows()))
    pages = []
    for doc in range(len(texts)):
        body = body_of.get(doc, "")
        pages.append(CleanedPage(body=body, lines=PageLines(lines.slice(bounds[doc], bounds[doc + 1] - bounds[doc])),
                                 rejection=not_an_article(texts[doc], body),
                                 **extract_fields(sources[source_bounds[doc]:source_bounds[doc + 1]])))
    return pages


def clean_text(text: str) -> CleanedPage:
    """Clean one document (a convenience over :func:`clean_shard`)."""
    return clean_shard([text])[0]

