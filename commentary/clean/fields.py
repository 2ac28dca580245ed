"""Metadata fields from classified lines: each field is read from the lines of one category.

Every field records its origin in ``field_sources`` as ``"text:<rule_id>"``. Fields are left
empty rather than guessed: the outlet only comes from an explicit phrase, and author names
must look like names.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from commentary.clean import LineDecision

MONTHS = {m: i for i, names in enumerate((
    ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",),
    ("jun", "june"), ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"),
    ("oct", "october"), ("nov", "november"), ("dec", "december")), start=1) for m in names}
_MONTH = r"(?P<month>[A-Za-z]{3,9})\.?"
DATE_PATTERNS = (
    re.compile(_MONTH + r"\s+(?P<day>\d{1,2}),?\s+(?P<year>\d{4})"),
    re.compile(r"(?P<day>\d{1,2})\.?\s+" + _MONTH + r"\s+(?P<year>\d{4})"),
    re.compile(r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"),
    # Numeric dates are read month first, as written by the US outlets of the seeds (6/25/2021).
    re.compile(r"(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4})"),
)
#: Lower-case particles allowed inside a person's name.
NAME_PARTICLES = frozenset({"van", "von", "de", "der", "da", "di", "la", "le", "bin", "al"})
#: A person's name has two to four words.
NAME_MIN_WORDS, NAME_MAX_WORDS = 2, 4
#: Words that show a byline fragment is not a person (newspaper#158, trafilatura#92).
NOT_A_NAME = re.compile(r"\b(email|e-mail|author|staff|editor|editors|ago|hours?|minutes?|updated|published|"
                        r"comments?|share|follow|reporter|team|news|press|wire|admin)\b", re.IGNORECASE)
BY_PREFIX = re.compile(r"^.*?\b(by|von|par|por|автор)\s*:?\s*", re.IGNORECASE)
NAME_SEPARATORS = re.compile(r"\s*(?:,|&|\band\b|\bund\b|\bet\b|\by\b)\s*")
OUTLET_PHRASE = re.compile(r"\bnot (?:necessarily )?(?:the |those of )?(?:views?|opinions?|positions?) of (?P<outlet>.+?)\W*$",
                           re.IGNORECASE)
SYNDICATION = re.compile(r"\b(?:appeared|published|ran|reprinted|republished|reposted)\b(?:\s+\w+)?\s+"
                         r"(?:in|on|at|by|from)\s+(?P<outlet>.+?)(?:\s+on\s+(?P<date>[^.]+?))?\.?$", re.IGNORECASE)
#: The labels of ``tags.label`` lines; inside a line, a second label ("... Tagged With: ...") separates items.
_TAG_LABELS = r"(?:tags|tagged(?: with)?|related topics|topics|filed under|schlagwörter|themen|mots-clés|etiquetas|теги)"
TAG_LABEL = re.compile(r"^\W*" + _TAG_LABELS + r"\s*:?\s*", re.IGNORECASE)
TAG_SEPARATORS = re.compile(r"\s*(?:[,|;•·#]|\b" + _TAG_LABELS + r"\s*:)\s*", re.IGNORECASE)
SECTION_LABEL = re.compile(r"^(?P<section>[A-Z][A-Z ]+?)(?:\s+(?P<topic>[A-Z][a-z].*))?$")
#: The categories whose lines :func:`extract_fields` reads; it ignores the others.
FIELD_CATEGORIES = ("title", "byline", "bio", "disclaimer", "syndication", "section", "tags", "summary")
#: Bylines hold at most a few authors; more names means the line is something else.
MAX_AUTHORS = 4


def normalize_space(text: str) -> str:
    """Collapse runs of whitespace (including no-break spaces) into single spaces."""
    return " ".join(text.split())


def parse_date(text: str) -> dt.date | None:
    """The first date written in ``text`` in one of DATE_PATTERNS, or None."""
    for pattern in DATE_PATTERNS:
        for match in pattern.finditer(text):
            month = match["month"]
            month_number = int(month) if month.isdigit() else MONTHS.get(month.lower())
            try:
                return dt.date(int(match["year"]), month_number or 0, int(match["day"]))
            except ValueError:
                continue
    return None


def person_names(text: str) -> list[str]:
    """Names in a byline fragment, or [] when any part does not look like a person."""
    names = [n.strip(" .,;:") for n in NAME_SEPARATORS.split(text) if n.strip(" .,;:")]
    if not names or len(names) > MAX_AUTHORS:
        return []
    return names if all(looks_like_person(n) for n in names) else []


def looks_like_person(name: str) -> bool:
    """Two to four capitalised words (particles allowed), no digits, no junk words."""
    words = name.split()
    return (NAME_MIN_WORDS <= len(words) <= NAME_MAX_WORDS and words[0][0].isupper()
            and all(w[0].isupper() or w in NAME_PARTICLES for w in words)
            and not any(c.isdigit() for c in name) and not NOT_A_NAME.search(name))


def leading_name(text: str) -> str:
    """The capitalised words that open ``text`` ("Jane Doe is a ..." gives "Jane Doe")."""
    words = []
    for word in text.split()[:NAME_MAX_WORDS + 1]:
        if not word[0].isupper():
            break
        words.append(word)
    return " ".join(words).rstrip(",")


def split_tags(text: str) -> list[str]:
    """Tag items of a tag line (label removed).

    Items are split at separators; a run of capitalised words without separators (links
    flattened with spaces) is read as two-word names when it splits evenly, else kept whole.
    """
    items = [t for t in TAG_SEPARATORS.split(text) if t]
    if len(items) != 1:
        return items
    words = items[0].split()
    if len(words) > 2 and len(words) % 2 == 0 and all(w[0].isupper() for w in words):
        return [" ".join(words[i:i + 2]) for i in range(0, len(words), 2)]
    return items


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
        # A repeat that is a prefix of the first title drops a " - Site" suffix: prefer it.
        shorter = [d for d in titles[1:] if d.text != titles[0].text and titles[0].text.startswith(d.text)]
        chosen = (shorter or titles)[0]
        put("title", chosen.text, chosen.rule_id)
    bio = [d for d in lines if d.category == "bio" and d.rule_id != "bio.heading"]
    for d in lines:
        if d.category == "byline":
            if d.rule_id in ("byline.by-name", "byline.after-label"):
                put("authors", person_names(BY_PREFIX.sub("", d.text) if d.rule_id == "byline.by-name" else d.text),
                    d.rule_id)
            elif d.rule_id == "byline.dateline":
                put("published_date", parse_date(d.text), d.rule_id)
        elif d.category == "disclaimer" and (match := OUTLET_PHRASE.search(d.text)):
            put("outlet", match["outlet"], d.rule_id)
        elif d.category == "syndication" and (match := SYNDICATION.search(d.text)):
            put("syndicated_from", match["outlet"], d.rule_id)
            put("syndicated_date", parse_date(match["date"] or ""), d.rule_id)
        elif d.category == "section" and (match := SECTION_LABEL.match(d.text)):
            put("section", match["section"].title(), d.rule_id)
            if match["topic"]:
                put("tags", [match["topic"]], d.rule_id)
        elif d.category == "tags" and d.rule_id == "tags.label":
            put("tags", split_tags(TAG_LABEL.sub("", d.text, count=1)), d.rule_id)
        elif d.category == "summary" and d.rule_id != "summary.heading":
            fields["summary"].append(normalize_space(d.text))
            sources.setdefault("summary", f"text:{d.rule_id}")
    if bio:
        put("author_bio", "\n\n".join(d.text for d in bio), bio[0].rule_id)
        put("authors", person_names(leading_name(bio[0].text)), bio[0].rule_id)
    fields["field_sources"] = sources
    return fields
