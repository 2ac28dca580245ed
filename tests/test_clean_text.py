"""Tests of the text cleaner: seed golden pages, rule examples, behaviour on edge cases."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commentary.clean import CATEGORIES, LineDecision
from commentary.clean.article import (
    _BLANK_AFTER_NEWLINE, _MARKUP_AFTER_NEWLINE, _STYLE_AFTER_NEWLINE, MARKUP_LINE, STYLE_LINE, _line_chars, has_words,
    other_text_format,
)
from commentary.clean.features import FAR_LINES, LOG1P_TABLE_SIZE, _log1p, Pages, char_profile, context_frame, feature_frame
from commentary.clean.dates import find_date
from commentary.clean.distinct import first_rows, text_ids
from commentary.clean.fields import extract_fields
from commentary.clean.people import byline_names
from commentary.clean.model import MODEL_ID
from commentary.clean.rules import CATEGORY_PRIORITY, first_matching_rule, load_rules, load_structural_rules, rule_groups, rule_match_expr
from commentary.clean.tags import line_tags
from commentary.clean.text import _chains_decided_whole, body_probability, clean_shard, clean_text, rule_lines
from tools.train import cross_validated_probability, design, fit_without, load_pages, train

TEST_DATA = Path(__file__).parent / "data"
RAW = Path(__file__).parents[1] / "raw"
GOLD = json.loads((TEST_DATA / "gold" / "seeds.json").read_text(encoding="utf-8"))
SEED_DOCS = GOLD["documents"]
SEED_PAGES = clean_shard([(RAW / d["file"]).read_text(encoding="utf-8") for d in SEED_DOCS])
SEEDS = list(zip(SEED_DOCS, SEED_PAGES))
SEED_IDS = [d["file"] for d in SEED_DOCS]


@pytest.mark.parametrize(("gold", "page"), SEEDS, ids=SEED_IDS)
def test_seed_line_categories(gold, page):
    got = {str(d.line_no): d.category for d in page.lines}
    wrong = {n: (got.get(n), want) for n, want in gold["lines"].items() if got.get(n) != want}
    assert not wrong, f"line: (got, gold) {wrong}"
    assert set(got) == set(gold["lines"])


@pytest.mark.parametrize(("gold", "page"), SEEDS, ids=SEED_IDS)
def test_seed_body(gold, page):
    assert page.body == gold["body"]


@pytest.mark.parametrize(("gold", "page"), SEEDS, ids=SEED_IDS)
def test_seed_fields(gold, page):
    want = dict(gold["fields"])
    bio_prefix = want.pop("author_bio_startswith")
    if bio_prefix is None:
        assert page.author_bio is None
    else:
        assert page.author_bio.startswith(bio_prefix)
    for name, value in want.items():
        got = getattr(page, name)
        if isinstance(got, dt.date):
            got = got.isoformat()
        assert got == value, name
    for name in page.field_sources:
        assert getattr(page, name), f"{name} has a source but no value"
    assert all(s.startswith("text:") for s in page.field_sources.values())


RULES = load_rules()


def _matches(rule, texts):
    frame = pl.DataFrame({"text": texts}, schema={"text": pl.String})
    return frame.select(rule_match_expr(rule, pl.col("text"), pl.col("text").str.count_matches(r"\S+"))
                        ).to_series().to_list()


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_examples(rule):
    assert rule.examples, "every rule needs examples"
    assert rule.category in CATEGORIES
    assert all(_matches(rule, list(rule.examples))), "an example does not match"
    if rule.counter_examples:
        assert not any(_matches(rule, list(rule.counter_examples))), "a counter-example matches"


def test_rule_groups_choose_the_first_matching_rule():
    texts = [t for rule in RULES for t in (*rule.examples, *rule.counter_examples)]
    texts += [f"{a} {b}" for a, b in zip(texts, texts[1:])]
    texts += texts[::-3]  # repeated lines (a site's menus), in another order
    frame = pl.DataFrame({"text": texts}).with_columns(pl.col("text").str.count_matches(r"\S+").alias("n_words"))
    one_by_one = [next((i for i, rule in enumerate(RULES) if _matches(rule, [t])[0]), None) for t in texts]
    assert first_matching_rule(frame, RULES).to_list() == one_by_one
    assert len(rule_groups(RULES)) < len(RULES)


def test_prefiltered_rules_match_as_their_plain_patterns():
    # Hostile variants: letters that case-fold to ASCII ones (long s, Kelvin sign), capitals, the
    # prefilter's words inside other words and sentences, and lines over a word cap.
    texts = [t for rule in RULES for t in (*rule.examples, *rule.counter_examples)]
    texts += [v for t in texts for v in (t.upper(), t.replace("s", "ſ"), t.replace("k", "\u212a"), f"Yes. {t}", f"{t} inboxes")]
    texts += ["Subscribe to the NEWSLETTERS", "Get it delivered straight to your inbox!", "newsletterinbox", "Thanks. Sign up for the daily newſletter now",
              "Delivered to your inboxes", "subscribe for a newsletter " + "word " * 40, "Newsletter",
              "Submit Comment *", "Response 12 Jane Roe, March 3", "Jane Roe | 3 March 2012 at 10.31 · Reply",
              "Log in or register to post comments", "Quinta-feira, 5 de Março de 2020, às 9h30"]
    frame = pl.DataFrame({"text": texts}).with_columns(pl.col("text").str.count_matches(r"\S+").alias("n_words"))
    plain = tuple(dataclasses.replace(rule, prefilter=None) for rule in RULES)
    assert any(rule.prefilter for rule in RULES) and not any(rule.prefilter for rule in plain)
    got = first_matching_rule(frame, RULES).to_list()
    assert got == first_matching_rule(frame, plain).to_list()
    assert {RULES[i].id for i in got if i is not None} >= {rule.id for rule in RULES if rule.prefilter}
    assert "Thanks. Sign up for the daily newſletter now" in [t for t, i in zip(texts, got) if i is not None and RULES[i].prefilter]


def test_rule_ids_unique():
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))


STRUCTURAL_RULES = load_structural_rules()


def _decision(example):
    """The rule id and category that clean the example's line, in its page cleaned with its shard."""
    page = clean_shard(["\n\n".join(lines) for lines in (example.page, *example.shard)])[0]
    (decision,) = {(d.rule_id, d.category) for d in page.lines if d.text == example.line}
    return decision


@pytest.mark.parametrize("rule", STRUCTURAL_RULES.values(), ids=list(STRUCTURAL_RULES))
def test_structural_rule_examples(rule):
    assert rule.examples, "every rule needs examples"
    assert rule.category in CATEGORIES
    assert all(_decision(example) == (rule.id, rule.category) for example in rule.examples)
    assert all(_decision(example)[0] != rule.id for example in rule.counter_examples)


def test_every_rule_id_the_cleaner_gives_is_declared():
    flat = sorted((TEST_DATA / "benchmark" / "flat-blocks").glob("*.txt"))
    pages = SEED_PAGES + clean_shard([p.read_text(encoding="utf-8") for p in flat])
    given = {d.rule_id for page in pages for d in page.lines} - {MODEL_ID}
    assert given - {r.id for r in RULES} <= set(STRUCTURAL_RULES)
    assert not {r.id for r in RULES} & set(STRUCTURAL_RULES)


#: What each column of the character profile counts or flags, as a regex over the line.
PROFILE_REGEXES = {
    "n_words": (r"\S+", True), "n_upper": (r"\p{Lu}", True), "n_numbers": (r"\p{N}", True),
    "n_punct_symbols": (r"[\p{P}\p{S}]", True), "n_commas": (",", True),
    "n_capitalised": (r"(^|\s)[\"“‘'(]?\p{Lu}", True),
    "n_sentence_ends": (r"""[.!?。！？؟।]["'”’»)\]]*(\s|$)""", True),
    "ends_terminal": (r"""[.!?…。！？؟।]["'”’»)\]]*$""", False), "ends_stop": (r"[.!?]$", False),
    "opens_upper": (r"^[\"“‘'(]?\p{Lu}", False), "opens_lower": (r"^\p{Ll}", False),
    "opens_letter": (r"^\p{L}", False), "opens_punct": (r"^[,.;:)\]]", False),
    "has_separator_char": (r"[|»›•·]|\s/\s", False), "letterless": (r"^[\p{N}\p{P}\p{S}\s]+$", False),
}
PROFILE_ALPHABET = st.sampled_from(list(" \t\u00a0\u3000.,!?…。！？؟।\"'”’»)]“‘(|›•·/;:-aZéДд中1٣\x1c\U0001F600")) | st.characters(codec="utf-8")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(PROFILE_ALPHABET, min_size=1, max_size=12), min_size=1, max_size=20))
def test_char_profile_equals_its_regexes(texts):
    text = pl.Series(texts, dtype=pl.String)
    profile = char_profile(text)
    assert profile["n_chars"].to_list() == text.str.len_chars().to_list()
    assert profile["n_letters"].to_list() == (text.str.len_chars() - text.str.count_matches(r"\P{L}")).to_list()
    for column, (regex, counted) in PROFILE_REGEXES.items():
        want = text.str.count_matches(regex) if counted else text.str.contains(regex)
        assert profile[column].to_list() == want.to_list(), column


LINE_ALPHABET = st.sampled_from(list(' a:.;#@\n\t\r\x0b\x1c\x85\xa0\u2028<>/!?{}[]"'))


@settings(max_examples=300, deadline=None)
@given(st.text(LINE_ALPHABET, max_size=60))
def test_blank_and_markup_lines_are_counted_as_their_patterns_find_them(text):
    blank_line = re.compile(r"^[^\S\n]+$", re.MULTILINE)
    assert _line_chars(_BLANK_AFTER_NEWLINE, text) == sum(map(len, blank_line.findall(text)))
    for after_newline, line in ((_MARKUP_AFTER_NEWLINE, MARKUP_LINE), (_STYLE_AFTER_NEWLINE, STYLE_LINE)):
        whole_line = re.compile(rf"^(?:{line.pattern})$", re.MULTILINE)
        assert _line_chars(after_newline, text) == sum(map(len, whole_line.findall(text)))


def test_empty_and_blank_documents():
    for text in ("", "\n\n  \n\t", "\u3000\n\u00a0"):
        page = clean_text(text)
        assert page.body == "" and page.lines == []
    assert clean_shard([]) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(), max_size=4))
def test_never_raises_on_unicode(texts):
    pages = clean_shard(texts)
    assert len(pages) == len(texts)
    for text, page in zip(texts, pages):
        assert {d.category for d in page.lines} <= set(CATEGORIES)
        assert len(page.lines) <= text.count("\n") + 1


def test_non_english_article_keeps_its_body():
    paragraphs = [
        "Die Bundesregierung hat am Dienstag ein neues Gesetz zur Förderung erneuerbarer Energien "
        "beschlossen, das den Ausbau von Wind- und Solaranlagen deutlich beschleunigen soll.",
        "Nach Angaben des Wirtschaftsministeriums sollen die Genehmigungsverfahren künftig nur noch "
        "halb so lange dauern wie bisher, was Investoren mehr Planungssicherheit gebe.",
        "Kritiker aus der Opposition bemängelten jedoch, dass die Finanzierung der Netze weiterhin "
        "ungeklärt sei und die Kosten am Ende bei den Verbrauchern hängen bleiben könnten.",
    ]
    page = clean_text("\n\n".join(["Startseite", "Politik", "Neues Energiegesetz beschlossen", *paragraphs,
                                   "Teilen", "Kommentare"]))
    assert page.body == "\n\n".join(paragraphs)
    assert page.title == "Neues Energiegesetz beschlossen"


def test_links_after_a_highlights_heading_are_no_summary():
    items = ["Officials expect the plan to cut waiting times by a third before the winter.",
             "Two new routes will reach the hospitals and the airport after midnight."]
    long_paragraph = " ".join(ARTICLE_PARAGRAPHS)  # an article's paragraph is longer than a takeaway
    page = clean_text("\n\n".join(["A Headline About Buses", "Key Takeaways", *items, long_paragraph, long_paragraph]))
    assert page.summary == items
    menu = clean_text("\n\n".join(["A Headline About Buses", *ARTICLE_PARAGRAPHS, "Highlights", "Basketball", "Golf",
                                     "Sports Calendar"]))
    assert menu.summary == []


def test_comment_prompt_and_credit_are_not_body():
    article = "\n\n".join([
        "A Headline About Budgets",
        "Photo: Jane Roe/Reuters",
        "The council approved the budget on Monday after a long debate about the cost of new schools.",
        "Members said the plan would be reviewed again next year, when the new tax figures are known.",
        "Leave a Reply",
        "Your email address will not be published. Required fields are marked *",
    ])
    decisions = {d.text: (d.category, d.rule_id) for d in clean_text(article).lines}
    assert decisions["Photo: Jane Roe/Reuters"] == ("media", "media.credit-label")
    assert decisions["Leave a Reply"][0] == "comments"
    assert decisions["A Headline About Budgets"][0] == "title"


@pytest.mark.parametrize("space", ["\u00a0", "\t", "  "])
def test_a_rule_reads_no_break_spaces_tabs_and_space_runs_as_one_space(space):
    line = space.join(["Share", "on", "Facebook"])
    article = "\n\n".join(["A Headline About Budgets", *ARTICLE_PARAGRAPHS[:2], line, *ARTICLE_PARAGRAPHS[2:]])
    decisions = {d.text: d.rule_id for d in clean_text(article).lines}
    assert decisions[line] == "engagement.social-network"


@pytest.mark.parametrize("title, heading", [
    ("BBC News - Councils approve the new school budget", "Councils approve the new school budget"),
    ("High Scalability - High Scalability - Councils approve the new school budget", "Councils approve the new school budget"),
    ("'Councils approve' the new school budget | The Daily Example", "‘Councils approve’ the new school budget"),
    ("Councils approve the new school budget - The Daily Example", "Councils Approve the New School Budget"),
])
def test_the_title_is_the_headline_the_page_repeats_without_the_site_name(title, heading):
    page = clean_text("\n\n".join([title, "Home", "News", "Sport", "Read more of the latest stories", heading,
                                    *ARTICLE_PARAGRAPHS, "Leave a Reply"]))
    assert page.title == heading
    assert heading not in page.body


@pytest.mark.parametrize("title, line", [
    ("Councils approve the new school budget - The Daily Example", "Councils approve the new school..."),  # a teaser, cut short
    ("Councils approve the new school budget - The Daily Example", "Councils approve"),  # too short to tell
    ("Councils approve the budget - The Blog of the Daily Example Town Council", "The Blog of the Daily Example Town Council"),  # a site name
])
def test_a_teaser_or_a_site_name_is_not_taken_for_the_headline(title, line):
    page = clean_text("\n\n".join([title, "Home", "News", line, *ARTICLE_PARAGRAPHS]))
    assert page.title == title


ARTICLE_PARAGRAPHS = [
    "The council approved the budget on Monday after a long debate about the cost of new schools in the north.",
    "Members said the plan would be reviewed again next year, when the new tax figures are known to the public.",
    "The mayor thanked the staff who had worked through the weekend to prepare the figures for the meeting.",
]


@pytest.mark.parametrize("entries", [
    ["Posted by: Tom at March 3, 2021 10:18 AM", "Posted by: Ann at March 3, 2021 11:02 AM"],
    ["Tom | March 3, 2021 10:18 AM | Reply", "Ann | March 3, 2021 11:02 AM | Reply"],
    ["Tom says: March 3, 2021 at 10:18 am", "Ann says: March 3, 2021 at 11:02 am"],
])
def test_comment_thread_without_header_ends_the_article(entries):
    replies = ["I could not disagree more with the council, the schools in the north have waited far too long for this.",
               "The figures were known for months and the members chose to ignore them until the last possible moment."]
    page = clean_text("\n\n".join(["Council Approves the Budget", *ARTICLE_PARAGRAPHS,
                                   entries[0], replies[0], entries[1], replies[1]]))
    assert page.body == "\n\n".join(ARTICLE_PARAGRAPHS)
    categories = {d.text: d.category for d in page.lines}
    assert [categories[t] for t in (*entries, *replies)] == ["comments"] * 4


def test_a_single_dated_author_line_does_not_end_the_article():
    text = "\n\n".join(["Council Approves the Budget", ARTICLE_PARAGRAPHS[0],
                        "Posted by: Tom at March 3, 2021 10:18 AM", *ARTICLE_PARAGRAPHS[1:]])
    assert clean_text(text).body == "\n\n".join(ARTICLE_PARAGRAPHS)


def test_shard_order_does_not_change_results():
    texts = [(RAW / d["file"]).read_text(encoding="utf-8") for d in SEED_DOCS]
    reversed_pages = clean_shard(texts[::-1])[::-1]
    assert [p.body for p in reversed_pages] == [p.body for p in SEED_PAGES]


def test_junk_bylines_give_no_author():
    assert byline_names("Email the author") == []
    assert byline_names("3 hours ago") == []
    assert byline_names("Jane Doe and John Smith") == ["Jane Doe", "John Smith"]


def test_parse_date_formats():
    assert find_date("Aug 25, 2021 4 min read") == dt.date(2021, 8, 25)
    assert find_date("on 6/25/2021") == dt.date(2021, 6, 25)
    assert find_date("5 March 2020") == dt.date(2020, 3, 5)
    assert find_date("no date here") is None


@pytest.mark.parametrize("line, rule_id, field, expected", [
    # Dates before 1990 or after 2099 are placeholders or typing errors, as in page metadata.
    ("Published on 0001-01-01", "byline.dateline", "published_date", None),
    ("Updated: December 1, 2999", "byline.dateline", "published_date", None),
    ("25.06.2021", "byline.dateline", "published_date", dt.date(2021, 6, 25)),
    ("This article originally appeared in The Diplomat on June 25th, 2021.", "syndication.originally-appeared",
     "syndicated_date", dt.date(2021, 6, 25)),
    # A print-edition note is a syndication note that names no other outlet.
    ("A version of this article appeared in print on 11/08/2012, on page B9 of the New York edition.",
     "syndication.originally-appeared", "syndicated_from", None),
    # Bylines in capitals read as names; organisation words mark a byline that is not all people.
    ("By JANE DOE", "byline.by-name", "authors", ["Jane Doe"]),
    ("By Jane Doe, Digital Desk", "byline.by-name", "authors", []),
    ("Maria dos Santos", "byline.after-label", "authors", ["Maria dos Santos"]),
    ("By CHARLES DOE And MARIA ROE", "byline.by-name", "authors", ["Charles Doe", "Maria Roe"]),
    # An author box's heading names its person after the label; a site's "About" box names none.
    ("About Jane Doe", "bio.about-name", "authors", ["Jane Doe"]),
    ("À propos de Jean Dupont", "bio.about-name", "authors", ["Jean Dupont"]),
    ("About Zillow Blog", "bio.about-name", "authors", []),
    ("About Our Ads", "bio.about-name", "authors", []),
    # A closing bio sentence names the author; a possessive, or a sentence's end inside it, is no name.
    ("Jane Doe is a senior fellow at the Institute for Urban Transport.", "bio.name-after-body", "authors", ["Jane Doe"]),
    ("Samsung's Galaxy Watch Active is a fitness coach for runners.", "bio.name-after-body", "authors", []),
    ("Update. Jane Doe is a senior fellow at the institute.", "bio.name-after-body", "authors", []),
    # The outlet of a syndication note ends at the sentence's end, at "and", or at a time or date.
    ("This article was originally published by Futurism. Read the original article.", "syndication.originally-appeared",
     "syndicated_from", "Futurism"),
    ("This article was published on guardian.co.uk at 14.00 EDT on Monday 29 October 2012.",
     "syndication.originally-appeared", "syndicated_from", "guardian.co.uk"),
    ("This article was published on guardian.co.uk at 14.00 EDT on Monday 29 October 2012.",
     "syndication.originally-appeared", "syndicated_date", dt.date(2012, 10, 29)),
    ("This post originally appeared on LearnVest.com on Oct. 11 and was written by Jane Roe.",
     "syndication.originally-appeared", "syndicated_from", "LearnVest.com"),
    ("Republished from Nov 9, 2012 6:27 PM", "syndication.originally-appeared", "syndicated_from", None),
    ("Republished with permission from The Conversation.", "syndication.republished", "syndicated_from", "The Conversation"),
    # A tag repeated on a tag line is one tag; a "#" inside a tag is no separator.
    ("Tags: Trade, Trade, China", "tags.label", "tags", ["Trade", "China"]),
    ("Tags: C#, F#", "tags.label", "tags", ["C#", "F#"]),
])
def test_fields_read_as_in_page_metadata(line, rule_id, field, expected):
    fields = extract_fields([LineDecision(1, line, rule_id.split(".")[0], rule_id)])
    assert fields.get(field) == expected


def test_split_tags_prefers_separators():
    assert line_tags("economy, trade | China") == ["economy", "trade", "China"]
    assert line_tags("Climate") == ["Climate"]
    assert line_tags("Khawarij |") == ["Khawarij"]
    assert line_tags("Leadership Tagged With: Philosophy") == ["Leadership", "Philosophy"]
    assert line_tags("Politics, Comment, 12 Comments") == ["Politics", "Comment"]  # an opinion section is a topic, a count none


@pytest.mark.parametrize(("line", "tags"), [
    ("Filed Under: Economy, Jobs, Taxes", ["Economy", "Jobs", "Taxes"]),
    ("Related Topics: Foreign Policy, Health Care", ["Foreign Policy", "Health Care"]),
    ("Tags: Astoria, Oregon, Shopping", ["Astoria", "Oregon", "Shopping"]),
    ("Tags Kristi Noem South Dakota", ["Kristi Noem", "South Dakota"]),
    ("Tagged with: Budget, Schools, City Council", ["Budget", "Schools", "City Council"]),
    ("Filed Under: Economy, Jobs | 1 Comment", ["Economy", "Jobs"]),
    ("Tags: Budget, Schools | Leave a comment", ["Budget", "Schools"]),
])
def test_tag_line_loses_its_whole_label(line, tags):
    page = clean_text("\n\n".join(["Council Approves the Budget", *ARTICLE_PARAGRAPHS, line]))
    assert page.tags == tags


def test_extracted_text_keeps_short_lines_and_loses_pattern_furniture():
    text = "\n".join([
        "Now get prepping!",
        "Meal 1",
        "Eat every 2–3 hours",
        "Read more: Another Story About Meal Plans",
        "The plan works for both programs, so there is no need to start again from scratch.",
        "Have a tip? Jane Doe may be reached at jdoe@example.com.",
    ])
    flat, extracted = clean_shard([text, text], extracted=[False, True])
    decisions = {d.text: (d.category, d.rule_id) for d in extracted.lines}
    assert decisions["Read more: Another Story About Meal Plans"] == ("related", "related.inline-link")
    assert decisions["Have a tip? Jane Doe may be reached at jdoe@example.com."][0] == "engagement"
    assert extracted.body.split("\n\n") == [
        "Now get prepping!", "Meal 1", "Eat every 2–3 hours",
        "The plan works for both programs, so there is no need to start again from scratch."]
    assert extracted.title is None
    assert [d.rule_id for d in extracted.lines if d.category == "body"] == ["extractor.main-content"] * 4


def test_extracted_text_keeps_a_long_caption_with_an_agency_credit():
    caption = ("Rescue workers search the rubble of a school in Moore, Oklahoma, after the tornado of May 20, "
               "2013. (Photo by: Jane Roe/AFP/Getty Images)")
    story = "The storm flattened whole streets of the town, and the search for survivors went on through the night."
    text = "\n".join([story, caption, "Getty Images", "Jane Roe / AFP", story.replace("storm", "wind")])
    flat, extracted = clean_shard([text, text], extracted=[False, True])
    decisions = {d.text: d.rule_id for d in extracted.lines}
    assert decisions[caption] == "extractor.main-content"
    assert decisions["Getty Images"] == decisions["Jane Roe / AFP"] == "media.agency-credit"
    assert {d.text: d.rule_id for d in flat.lines}[caption] == "media.agency-credit"


def test_line_repeated_across_documents_of_a_shard_is_furniture():
    footer = "Example Daily newsletter and events"
    article = ("The council approved the budget on Monday after a long debate about the cost of new "
               "schools, and members said the plan would be reviewed again next year.")
    texts = [f"Night Bus Budget, Part {n}\n\n{article} ({n})\n\n{footer}" for n in range(3)]
    for page in clean_shard(texts):
        assert footer not in page.body
        assert {d.rule_id for d in page.lines if d.text == footer} == {"related.shard-repeat"}
    # In two documents the line is no shard repeat: the line model decides it.
    assert {d.rule_id for d in clean_shard(texts[:2])[0].lines if d.text == footer} == {MODEL_ID}


def test_prose_shared_by_syndicated_copies_is_kept():
    paragraph = ("The council approved the budget on Monday after a long debate about the cost of new "
                 "schools, and members said the plan would be reviewed again next year.")
    pages = clean_shard([f"Copy {n} of the story\n\n{paragraph}" for n in range(3)])
    assert all(paragraph in page.body for page in pages)


def test_fields_read_from_field_categories_equal_fields_read_from_all_lines():
    flat = sorted((TEST_DATA / "benchmark" / "flat-blocks").glob("*.txt"))[:20]
    pages = SEED_PAGES + clean_shard([p.read_text(encoding="utf-8") for p in flat])
    assert any(page.authors for page in pages) and any(page.title for page in pages)
    for page in pages:
        fields = extract_fields(page.lines)
        assert {name: getattr(page, name) for name in fields} == fields


def test_training_is_deterministic(tmp_path):
    """The same pages give the same model file, byte for byte (the shipped one is checked by `make train`)."""
    pages = load_pages(TEST_DATA, seeds=RAW)
    for name in ("first", "second"):
        train(pages).save(tmp_path / f"{name}.json")
    assert (tmp_path / "first.json").read_bytes() == (tmp_path / "second.json").read_bytes()


def test_cross_validated_scores_are_the_held_out_pages_scored_on_their_own():
    """``make train --choose-decode`` scores each part's lines, cut from the table of all pages, with the model
    trained without them: as the cleaner scores a table of those pages alone."""
    pages = [p for p in load_pages(TEST_DATA, seeds=RAW) if p.form == "flat-blocks"][:24]
    part_of = {page.group: i % 2 for i, page in enumerate(pages)}
    lines, probability = cross_validated_probability(pages, False, lambda page: part_of[page.group])
    lines_x = design(pages, False)
    parts = np.array([part_of[page.group] for page in pages])
    for part in (0, 1):
        model = fit_without(pages, False, lines_x, parts, part, 0.0, 0.0)
        held = [page.text for page, p in zip(pages, parts) if p == part]
        own = body_probability(rule_lines(held), model)
        np.testing.assert_allclose(probability[parts[lines["doc"].to_numpy()] == part], own, rtol=0, atol=1e-12)


ARTICLE_PROSE = ("The city council approved the new budget on Monday after a long debate about transit funding, "
                 "and the mayor said the vote would let the bus network run later into the night.")


@pytest.mark.parametrize(("text", "reason"), [
    ("Just a moment...\nChecking your browser before accessing example.org.\nRay ID: 1234", "not-an-article"),
    ("Access Denied\nYou don't have permission to access this page on this server.", "not-an-article"),
    ("404 Not Found\nThe page you asked for is not here.\nHome", "not-an-article"),
    ("Redirecting...\nYou are being redirected to the new address of this page.\nIf you are not redirected, follow this link.",
     "not-an-article"),
    ('{"id": 12, "title": "Budget vote",\n"items": [1, 2, 3],\n"body": "' + ARTICLE_PROSE + '"}', "not-an-article"),
    ("<div class=\"menu\">\n<ul><li><a href=\"/\">Home</a></li>\n</ul></div>\n<script>var x = 1;</script>", "not-an-article"),
    ("body {\n  margin: 0;\n  font-family: Georgia, serif;\n}\n.article p > a:hover, .nav li {\n  color: #333;\n}\n"
     "@media (max-width: 600px) {\n  .sidebar { display: none; }\n}", "not-an-article"),  # a style sheet
    ("Home\nNews", "no-article-body"),
])
def test_pages_that_are_not_articles_are_rejected_with_a_reason(text, reason):
    page = clean_text(text)
    assert page.rejection is not None and page.rejection[0] == reason


CSV_ROWS = "id,title,published,summary\n" + "\n".join(
    f'{n},"Budget vote, round {n}",2024-03-{n + 1:02d},"{ARTICLE_PROSE}"' for n in range(8))
SUBRIP = "\n".join(f"{n + 1}\n00:00:{2 * n:02d},000 --> 00:00:{2 * n + 1:02d},500\n{ARTICLE_PROSE}\n" for n in range(6))
MAILBOX = "\n".join(f"From clerk@example.org Mon Mar  {n + 1} 09:00:00 2024\nFrom: City Clerk <clerk@example.org>\n"
                     f"Subject: Budget vote {n}\nDate: Mon, {n + 1} Mar 2024 09:00:00 +0000\n\n{ARTICLE_PROSE}\n"
                     for n in range(3))


@pytest.mark.parametrize(("text", "detail"), [
    (CSV_ROWS, "rows of 4 fields split by commas"),
    ("id\ttitle\tpublished\n" + "\n".join(f"{n}\tBudget vote, round {n}\t2024-03-{n + 1:02d}" for n in range(8)),
     "9 of 9 records are rows of 3 fields split by tabs"),
    ("id;title;published\n" + "\n".join(f"{n};Budget vote, round {n};2024-03-{n + 1:02d}" for n in range(8)),
     "9 of 9 records are rows of 3 fields split by semicolons"),
    ("sep=;\nid;title;published\n" + "\n".join(f"{n};Budget vote, round {n};2024-03-{n + 1:02d}" for n in range(8)),
     "9 of 9 records are rows of 3 fields split by semicolons"),  # Excel's line that declares the delimiter
    (SUBRIP, "subtitles or captions saved as text (6 cue timings)"),
    ("WEBVTT\n\n" + "\n".join(f"00:{n:02d}.000 --> 00:{n:02d}.900\n{ARTICLE_PROSE}\n" for n in range(4)),
     "subtitles or captions saved as text (4 cue timings)"),
    # a quoted field that holds line breaks: records, not lines, are rows
    ("id,title,body\n" + "\n".join(f'{n},"Budget vote {n}","{ARTICLE_PROSE}\nA second line."' for n in range(6)),
     "7 of 7 records are rows of 3 fields split by commas"),
    ("WEBVTT - Council meeting\n\nNOTE\nTranscribed by hand.\nChecked twice.\n\nSTYLE\n::cue { color: yellow; }\n\n"
     + "\n".join(f"00:{n:02d}.000 --> 00:{n:02d}.900\n{ARTICLE_PROSE}\n" for n in range(6)),
     "subtitles or captions saved as text (6 cue timings)"),
    (MAILBOX, "mail saved as text (3 messages with mail headers)"),
    ("Return-Path: <clerk@example.org>\nCc:\nMessage-ID: <1@example.org>\nSubject: Budget vote\n\n" + ARTICLE_PROSE,
     "mail saved as text (1 message with mail headers)"),
    ("Return-Path: <clerk@example.org>\nReceived: from mail.example.org by mx.example.net\nSubject: Budget vote\n\n"
     + ARTICLE_PROSE, "mail saved as text (1 message with mail headers)"),
])
def test_files_of_other_text_formats_are_not_articles(text, detail):
    page = clean_text(text)
    assert page.rejection is not None and page.rejection[0] == "not-an-article"
    assert detail in page.rejection[1]


@pytest.mark.parametrize("text", [
    # every paragraph holds two commas, as a row of three fields would
    "\n\n".join(["Seoul, Pyongyang and Washington, again"] + [
        f"The talks, which began in {1990 + n}, went on late into the night, aides said." for n in range(10)]),
    # a list article of "Name, age, role" lines, each with a single token (the age)
    "\n".join(["30 under 30: the founders, planners, and organisers changing how we travel",
               "By Jane Doe, Cities Editor, 4 March 2024", ARTICLE_PROSE]
              + [f"Ada Person{n}, {20 + n}, founder of the talks, which began" for n in range(12)] + [ARTICLE_PROSE]),
    # a tutorial that shows a few subtitle cues near its top
    "How to write a subtitle file\nA file is plain text: a number, a timing and the words, like this:\n"
    + "\n".join(f"{n}\n00:00:0{n},000 --> 00:00:0{n + 1},500\nLine {n} of the talks goes here.\n" for n in range(1, 6))
    + "\n" + "\n".join([ARTICLE_PROSE] * 11),
    # a headline with a colon over a story that quotes a mail's headers
    "Phishing: how a fake email fooled the city council\nReturn-Path: <ceo@example.net>\n"
    "Received: from mail.example.net\nSubject: Urgent wire transfer\n\n" + "\n\n".join([ARTICLE_PROSE] * 4),
    # a paper's history, in lines shaped like headers
    "Received: 3 January 2024\nAccepted: 5 March 2024\n\nNight buses and the budget\n\n" + "\n\n".join([ARTICLE_PROSE] * 4),
    # a transcript whose turns end in closing quotes, or in a word in brackets
    "The night bus debate\n" + "\n".join(f"[00:0{n}:00] HOST: {turn}" for n, turn in enumerate(
        ["“Welcome back, and thank you for joining the talks tonight.”", "Thanks (laughs)", "They run late [crosstalk]",
         "“So the city council approved the new budget?”"] * 3)),
    # a letter printed with the headers a reader sees, and an article quoting subtitle timings
    "From: A reader in Leeds\nSubject: Night buses\nDate: 4 March 2024\n\n" + "\n\n".join([ARTICLE_PROSE] * 4),
    "Captions that lag\n\n" + "\n\n".join([ARTICLE_PROSE, "One cue read 00:00:01,000 --> 00:00:02,500 on screen."]
                                             + [ARTICLE_PROSE] * 4),
])
def test_articles_shaped_a_little_like_other_formats_are_kept(text):
    page = clean_text(text)
    assert page.rejection is None and ("city council" in page.body or "talks, which began" in page.body)


@pytest.mark.parametrize("source", [
    'var _gaq = _gaq || []; _gaq.push(["_setAccount", "UA-1234"]); ',     # a script
    ".nav { color: #333; } .footer a:hover { text-decoration: none; } ",  # a style sheet
    '<div class="promo"><a href="/subscribe">Subscribe</a></div> ',       # markup
])
def test_an_article_around_a_long_line_of_page_source_is_released_without_it(source):
    # a broken page flattens its source into one giant line, most of the page's characters
    text = "\n\n".join(["Budget vote", ARTICLE_PROSE, ARTICLE_PROSE, source * 300, ARTICLE_PROSE])
    page = clean_text(text)
    assert page.rejection is None
    assert page.body.count("city council") == 3 and source.strip()[:10] not in page.body
    assert [(d.rule_id, d.category) for d in page.lines if d.text.startswith(source.strip())] == [("code.page-source", "code")]


def test_a_quoted_field_past_the_csv_module_s_size_limit_is_no_data():
    assert other_text_format('id,title,body\n1,"Budget vote",x\n2,"' + "y" * 200_000 + "\n" * 12) is None


def test_an_article_after_a_line_of_json_ld_is_released_without_it():
    # the page's structured data, flattened into one line that repeats the article: most of the page's characters
    json_ld = ('{"@context": "https://schema.org", "@type": "NewsArticle", "headline": "Budget vote", "articleBody": "'
               + " ".join([ARTICLE_PROSE] * 6) + '"}')
    page = clean_text("\n".join(["Budget vote", "Home", "News", json_ld, *[ARTICLE_PROSE] * 3, "Share this article"]))
    assert page.rejection is None and page.body.count("city council") == 3 and "@context" not in page.body
    assert [d.rule_id for d in page.lines if d.text == json_ld] == ["code.page-source"]


def test_an_article_mentioning_an_error_is_kept():
    text = "\n\n".join([ARTICLE_PROSE, "Critics said the page not found error on the city website hid the plan. "
                        + ARTICLE_PROSE] * 8)
    page = clean_text(text)
    assert page.rejection is None and "city council" in page.body


@pytest.mark.parametrize("message", ["service unavailable", "access denied", "attention required", "page not found"])
def test_a_short_article_quoting_an_error_message_in_a_sentence_is_kept(message):
    # Under the block-page word limit, but the message stands inside a sentence, not in a line of its own.
    text = "\n\n".join(["Bank outage leaves customers stranded", "By Jane Miller",
                         f"Customers could not pay bills on Monday after the bank's website went down; those who tried to "
                         f'log in were met with an "{message}" notice, and the phone line was busy for hours.', ARTICLE_PROSE])
    page = clean_text(text)
    assert page.rejection is None and "phone line" in page.body
    assert clean_text(f"{message.title()}\n\n{text}").rejection[0] == "not-an-article"  # said in a line of its own


@pytest.mark.parametrize("opening", ["[00:01:{:02d}] HOST: ", '"Reform {}": '])
def test_prose_whose_lines_open_like_markup_is_an_article(opening):
    # a transcript's time stamps, or paragraphs that open with a quoted phrase and a colon
    text = "\n\n".join(opening.format(n) + ARTICLE_PROSE for n in range(8))
    page = clean_text(text)
    assert page.rejection is None and "city council" in page.body


def _ids_by_first_occurrence(texts: list[str]) -> list[int]:
    ids: dict[str, int] = {}
    return [ids.setdefault(t, len(ids)) for t in texts]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.sampled_from("ab \u00e9"), max_size=3), max_size=30))
def test_text_ids_number_distinct_texts_by_first_occurrence(texts):
    ids = text_ids(pl.Series(texts, dtype=pl.String))
    assert ids.tolist() == _ids_by_first_occurrence(texts)
    assert first_rows(ids).tolist() == [texts.index(t) for t in dict.fromkeys(texts)]


def test_text_ids_survive_hash_collisions(monkeypatch):
    texts = ["Home", "News", "Home", "", "News", "About"]
    monkeypatch.setattr(pl.Series, "hash", lambda self, *a, **k: pl.Series([7] * len(self), dtype=pl.UInt64))
    assert text_ids(pl.Series(texts)).tolist() == _ids_by_first_occurrence(texts)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["Home", "News", "a b", "x.com"]), max_size=6), max_size=5))
def test_repeated_and_address_features_per_line(pages):
    lines = rule_lines(["\n".join(page) for page in pages])
    features = feature_frame(lines, CATEGORY_PRIORITY)
    want = [float(page.count(line) > 1) for page in pages for line in page]
    assert features["repeated"].to_list() == want
    assert features["has_address"].to_list() == [float(line == "x.com") for page in pages for line in page]


@pytest.mark.parametrize("values", [
    pl.Series(np.arange(LOG1P_TABLE_SIZE + 3)), pl.Series([0, 1, 2, 65535], dtype=pl.UInt16),
    pl.Series([3, -1, 7], dtype=pl.Int8), pl.Series([4, None, 0], dtype=pl.UInt32), pl.Series([0.5, 2.0, 1e9]),
    pl.Series([], dtype=pl.Int64), pl.Series([LOG1P_TABLE_SIZE - 1, 0], dtype=pl.Int64),
])
def test_log1p_of_counts_is_polars_own(values):
    got, want = _log1p(values), values.cast(pl.Float32).log1p()
    assert got.dtype == pl.Float32 and got.to_numpy().view(np.uint32).tolist() == want.to_numpy().view(np.uint32).tolist()
    assert got.null_count() == want.null_count()


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from(list("ab_9 .-\n\u0301\u00e9\u4e2d\u0660\u00b2")), max_size=40), st.integers(0, 12))
def test_has_words_counts_runs_of_word_characters(text, count):
    assert has_words(text, count) == (len(re.findall(r"\w+", text)) >= count)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.booleans(), max_size=6), max_size=5))
def test_distances_to_prose_stay_within_the_page(pages):
    prose_line = "one two three four five six seven eight"
    lines = rule_lines(["\n".join(f"{prose_line} {i}" if is_prose else f"menu {i}" for i, is_prose in enumerate(page))
                        for page in pages])
    got = context_frame(lines, np.zeros(lines.height), ["log_since_prose", "log_until_prose"])

    def distance(page: list[bool], i: int, step: int) -> int:
        j = i
        while 0 <= j < len(page) and not page[j]:
            j += step
        return abs(j - i) if 0 <= j < len(page) else FAR_LINES

    for column, step in (("log_since_prose", -1), ("log_until_prose", 1)):
        want = [distance(page, i, step) for page in pages for i in range(len(page))]
        assert got[column].to_list() == pl.Series(want).cast(pl.Float32).log1p().to_list()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0 ** -40]), max_size=6), max_size=5))
def test_page_maxima_and_distances_stay_within_the_page(pages):
    values = np.array([v for page in pages for v in page], dtype=np.float32)
    doc = np.array([d for d, page in enumerate(pages) for _ in page], dtype=np.int64)
    got = Pages(doc)
    flag = values > 0.3
    want = {"before": [], "after": [], "highest": [], "first_highest": [], "since": [], "until": []}
    row = 0
    for page in pages:
        for i, _ in enumerate(page):
            want["before"].append(max(page[:i + 1]))
            want["after"].append(max(page[i:]))
            want["highest"].append(max(page))
            want["first_highest"].append(row + page.index(max(page)))
            want["since"].append(next((i - j for j in range(i, -1, -1) if page[j] > 0.3), -1))
            want["until"].append(next((j - i for j in range(i, len(page)) if page[j] > 0.3), -1))
        row += len(page)
    assert got.running_max(values).tolist() == want["before"]
    assert got.running_max(values, reverse=True).tolist() == want["after"]
    assert got.highest(values).tolist() == want["highest"]
    assert got.first_row(values == got.highest(values)).tolist() == want["first_highest"]
    assert got.since(flag).tolist() == want["since"]
    assert got.until(flag).tolist() == want["until"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.booleans(), max_size=20), max_size=6), st.sampled_from([1, 3, 5, 15]))
def test_page_shares_and_window_means_are_polars_own(pages, size):
    flags = np.array([f for page in pages for f in page], dtype=bool)
    frame = pl.DataFrame({"doc": [d for d, page in enumerate(pages) for _ in page], "flag": flags},
                         schema={"doc": pl.Int64, "flag": pl.Boolean})
    got = Pages(frame["doc"].to_numpy())
    flag = pl.col("flag").cast(pl.Float32)
    want = frame.select(flag.rolling_mean(size, center=True, min_samples=1).over("doc").alias("window"),
                        flag.mean().over("doc").alias("share"))
    for name, values in (("window", got.window_mean(flags, size)), ("share", got.share(flags))):
        assert values.dtype == np.float32 and values.view(np.uint32).tolist() == want[name].to_numpy().view(np.uint32).tolist()
    assert got.size().tolist() == frame.select(pl.len().over("doc")).to_series().to_list()


def test_a_paragraph_broken_at_its_links_is_decided_whole():
    # Lines 1-3 are one sentence broken at two links; line 4 opens a new sentence; line 5 stands alone.
    text = ("Fred Wilson recently\nmade a compelling case\n(in a long post) that founders should not raise too much.\n"
            "Read the rest of the post on his blog\n\nhome and about")
    lines = rule_lines([text]).with_columns(extracted=pl.lit(False), shard_repeat=pl.lit(False))
    kept = [False, False, True, False, False]
    decided = _chains_decided_whole(lines.with_columns(model_body=pl.Series(kept)))
    assert decided["model_body"].to_list() == [True, True, True, False, False]
    # A chain the decode left out stays out; a shard repeat keeps the decode's answer.
    assert not _chains_decided_whole(lines.with_columns(model_body=pl.lit(False)))["model_body"].any()
    repeat = lines.with_columns(model_body=pl.Series(kept), shard_repeat=pl.Series([True, False, False, False, False]))
    assert _chains_decided_whole(repeat)["model_body"].to_list() == [False, True, True, False, False]
