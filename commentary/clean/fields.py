"""Metadata fields from classified lines: each field is read from the lines of one category.

Every field records its origin in ``field_sources`` as ``"text:<rule_id>"``. Fields are left
empty rather than guessed: the outlet only comes from an explicit phrase, and author names
must look like names (``people.py``); dates and tags are read as in ``dates.py`` and ``tags.py``.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from commentary.clean import LineDecision
from commentary.clean.dates import find_date
from commentary.clean.people import after_by, byline_names, heading_name, leading_name
from commentary.clean.tags import line_tags

OUTLET_PHRASE = re.compile(r"\bnot (?:necessarily )?(?:the |those of )?(?:views?|opinions?|positions?) of (?P<outlet>.+?)\W*$",
                           re.IGNORECASE)
#: A note naming the outlet (and date) a piece first ran in; a print-edition note ("appeared in print on ...") names none.
#: The outlet ends at the sentence's end (". Read the original"), at " and ", or at a time or date after "at" or "on".
SYNDICATION = re.compile(r"\b(?:appeared|published|ran|reprinted|republished|reposted)\b(?!\s+in\s+print\b)(?:\s+\w+){0,2}\s+"
                         r"(?:in|on|at|by|from)\s+(?P<outlet>.+?)(?:\s+(?:on|at)\s+(?P<date>.*?\d.*?))?(?:\.\s|\s+and\s|\.?$)",
                         re.IGNORECASE)
SECTION_LABEL = re.compile(r"^(?P<section>[A-Z][A-Z ]+?)(?:\s+(?P<topic>[A-Z][a-z].*))?$")
#: The categories whose lines :func:`extract_fields` reads; it ignores the others.
FIELD_CATEGORIES = ("title", "byline", "bio", "disclaimer", "syndication", "section", "tags", "summary")


#: What separates a page title's headline from the site and section names around it ("Opinion | Headline - Site").
TITLE_SEPARATOR = re.compile(r"\s+(?:[|\-–—:»·•]|::)\s+")
_NOT_WORD = re.compile(r"[\W_]+")


def normalize_space(text: str) -> str:
    """Collapse runs of whitespace (including no-break spaces) into single spaces."""
    return " ".join(text.split())


def folded(text: str) -> str:
    """``text`` in lower case without punctuation, its words one space apart: how titles and their repeats compare
    ("‘The Medium…’" is "'The Medium…'")."""
    return _NOT_WORD.sub(" ", text.lower()).strip()


def extract_fields(lines: Sequence[LineDecision]) -> dict:
    """Fields of one page from its classified lines (keyword arguments for ``CleanedPage``)."""
    fields: dict = {"authors": [], "tags": [], "summary": []}
    sources: dict[str, str] = {}

    def put(name: str, value, rule_id: str) -> None:
        if isinstance(value, str):
            value = normalize_space(value)
        elif isinstance(value, list):
            value = [normalize_space(v) for v in value]
        if value and name not in sources:
            fields[name] = value
            sources[name] = f"text:{rule_id}"

    titles = [d for d in lines if d.category == "title"]
    if titles:
        # A repeat is the page's headline without the site's name around it ("Headline - Site"): prefer the fullest.
        chosen = max(titles[1:], key=lambda d: len(d.text), default=titles[0])
        put("title", chosen.text, chosen.rule_id)
    bio = [d for d in lines if d.category == "bio" and d.rule_id != "bio.heading"]
    for d in lines:
        if d.category == "byline":  # a page has many bylines and datelines: only read until one gives the field
            if d.rule_id in ("byline.by-name", "byline.after-label") and "authors" not in sources:
                put("authors", byline_names(after_by(d.text) if d.rule_id == "byline.by-name" else d.text), d.rule_id)
            elif d.rule_id == "byline.dateline" and "published_date" not in sources:
                put("published_date", find_date(d.text), d.rule_id)
        elif d.category == "disclaimer" and (match := OUTLET_PHRASE.search(d.text)):
            put("outlet", match["outlet"], d.rule_id)
        elif d.category == "syndication" and (match := SYNDICATION.search(d.text)):
            if not find_date(match["outlet"]):  # "Republished from Nov 9, 2012" names no outlet
                put("syndicated_from", match["outlet"], d.rule_id)
            put("syndicated_date", find_date(match["date"] or ""), d.rule_id)
        elif d.category == "section" and (match := SECTION_LABEL.match(d.text)):
            put("section", match["section"].title(), d.rule_id)
            if match["topic"]:
                put("tags", [match["topic"]], d.rule_id)
        elif d.category == "tags" and d.rule_id == "tags.label":
            put("tags", line_tags(d.text), d.rule_id)
        elif d.category == "summary" and d.rule_id != "summary.heading":
            fields["summary"].append(normalize_space(d.text))
            sources.setdefault("summary", f"text:{d.rule_id}")
    if bio:
        put("author_bio", "\n\n".join(d.text for d in bio), bio[0].rule_id)
        first = bio[0]
        if first.rule_id == "bio.about-name":  # "About Jane Doe"
            put("authors", byline_names(heading_name(first.text)), first.rule_id)
        else:  # "Jane Doe is a senior fellow ..."
            put("authors", byline_names(leading_name(first.text)), first.rule_id)
    fields["field_sources"] = sources
    return fields
