"""Person names from bylines and author metadata, for the text and the HTML paths.

A name is two to five capitalised words (one for a JSON-LD person; lower-case particles such as "de"
or "van" allowed), without digits, links or words that mark an organisation, a job title or page
furniture (``commentary/rules/lexicons/people.toml``). Fields are left empty rather than guessed.
"""
from __future__ import annotations

import re

from commentary.clean.rules import load_lexicon

_LEXICON = load_lexicon("people")
NAME_PARTICLES = frozenset(_LEXICON["name_particles"])
JUNK_AUTHORS = frozenset(_LEXICON["junk_authors"])
#: Words, and pieces of a string (an address, a link, a number, "admin" in any word), that show it is not a person's name.
NOT_A_PERSON = re.compile(
    r"\b(?:" + "|".join(map(re.escape, _LEXICON["not_a_person_words"])) + r")\b"
    r"|@|https?:|www\.|\.com\b|/|\d|\bread more\b|^the\s|admin"
    r"|['’]s\b"  # a possessive: "Samsung's Galaxy Watch"
    r"|\b(?!prof\.)[^\W\d_]{4,}\.(?=\s|$)",  # a sentence's end, not an initial or a title ("Mr.", "Jr."): "Shit. FISA"
    re.IGNORECASE)
#: A role in an author bio: a closing "Name is ..." sentence that gives none is no bio.
BIO_ROLE = re.compile(r"\b(?:" + "|".join(map(re.escape, _LEXICON["bio_roles"])) + r")\b", re.IGNORECASE)
#: A byline's opening words before the names ("By", "Written by", "Por").
_PREFIXES = "|".join(_LEXICON["byline_prefixes"])
BYLINE_PREFIX = re.compile(r"^\s*(?:" + _PREFIXES + r")\s+", re.IGNORECASE)
#: Everything up to and including the by-word of a byline ("Analysis by ").
UP_TO_BY = re.compile(r"^.*?\b(?:" + _PREFIXES + r")\b\s*:?\s*", re.IGNORECASE)
NAME_SEPARATORS = re.compile(r"\s*(?:[,;|&]|" + "|".join(rf"\b{word}\b" for word in _LEXICON["name_conjunctions"]) + r")\s*")
#: Words in a person's name; meta tags and visible bylines need at least two (a handle or a site
#: name such as "Rmb" or "Beachbody" is one word), JSON-LD persons may have one.
NAME_MIN_WORDS, NAME_MAX_WORDS = 2, 5
#: Bylines hold at most a few authors; more names means the line is something else.
MAX_AUTHORS = 4


def looks_like_person(name: str, min_words: int = NAME_MIN_WORDS) -> bool:
    """``min_words`` to NAME_MAX_WORDS capitalised words (particles allowed), none that marks a non-person."""
    words = name.split()
    return (min_words <= len(words) <= NAME_MAX_WORDS
            and all(w[0].isupper() or w in NAME_PARTICLES for w in words) and words[0][0].isupper()
            and name.casefold() not in JUNK_AUTHORS and not NOT_A_PERSON.search(name))


def _as_name(part: str) -> str:
    """A piece of a byline without its prefix and surrounding punctuation; all capitals become title case."""
    name = BYLINE_PREFIX.sub("", part).strip(" .,;:-–—\"'")
    return name.title() if name.isupper() else name


def byline_names(text: str) -> list[str]:
    """The names of a visible byline ("Jane Doe and John Smith"; see :func:`after_by`), or [] when any part
    does not look like a person: a byline is all names or something else."""
    names = [_as_name(n) for n in NAME_SEPARATORS.split(text)]
    names = [n for n in names if n]
    if not names or len(names) > MAX_AUTHORS:
        return []
    return names if all(looks_like_person(n) for n in names) else []


def after_by(text: str) -> str:
    """A byline without the words up to its by-word ("Analysis by Jane Doe" gives "Jane Doe")."""
    return UP_TO_BY.sub("", text, count=1)


def leading_name(text: str) -> str:
    """The capitalised words that open ``text`` ("Jane Doe is a ..." gives "Jane Doe")."""
    words = []
    for word in text.split()[:NAME_MAX_WORDS + 1]:
        if not word[0].isupper():
            break
        words.append(word)
    return " ".join(words).rstrip(",")


def heading_name(text: str) -> str:
    """The name of an author box's heading ("About Jane Doe" gives "Jane Doe", "À propos de Jean Dupont" "Jean Dupont"):
    the words after its label, which is the first word and the lower-case words after it."""
    words = text.split()[1:]
    while words and not words[0][0].isupper():
        words = words[1:]
    return " ".join(words)


def clean_authors(raw_values: list, outlet: str | None = None, min_words: int = 1) -> list[str]:
    """The person names among author strings of page metadata, each kept on its own; junk and the
    outlet's name are dropped (better none than wrong), repeats kept once."""
    names: list[str] = []
    for raw in raw_values:
        if not isinstance(raw, str):
            continue
        for part in NAME_SEPARATORS.split(BYLINE_PREFIX.sub("", " ".join(raw.split()))):
            name = _as_name(part)
            if (name and looks_like_person(name, min_words) and (outlet is None or name.casefold() != outlet.casefold())
                    and name.casefold() not in (n.casefold() for n in names)):
                names.append(name)
    return names
