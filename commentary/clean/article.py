"""Whether a cleaned page holds an article at all: the reason to reject it, or None.

Three patterns recur across sites and are never articles: block, challenge and error pages (a short
page whose text says so), markup or data saved as text (JSON, HTML source), and pages whose body is
a few words (a navigation menu, a placeholder). The thresholds are in ``commentary/settings.py``.
"""
from __future__ import annotations

import re
from functools import cache

from commentary.settings import BLOCK_PAGE_MAX_WORDS, MARKUP_MIN_SHARE, MIN_BODY_WORDS

#: What block, challenge and error pages say (anti-bot walls, access denials, HTTP errors).
BLOCK_PAGE = re.compile(
    r"\b(just a moment\.\.\.|checking your browser|access (to this page )?(has been |is )?denied|attention required"
    r"|enable javascript and cookies|verify you are (a )?human|are you a robot|403 forbidden|404 not found|page not found"
    r"|service unavailable|request blocked|you don't have permission to access)(?!\w)", re.IGNORECASE)
#: How a line of markup or data opens: a tag, a brace or a bracket, or a JSON key-value pair; and, on a page with a
#: brace (as every style sheet has; few other pages do, so most pages are spared the search), a CSS selector that
#: opens a block or a CSS declaration (``color: #333;``).
_MARKUP_OPENING = r'<[/!?a-zA-Z]|[{}\[\]]|"[^"\n]{1,80}"[^\S\n]*:'
_STYLE_OPENING = r'[@.#]?[\w-]++[^{}\n;]{0,200}+\{|[\w-]++[^\S\n]*+:[^;\n]{1,200}+;[^\S\n]*+(?=\n|\Z)'
#: A line of markup or data (of style too: ``STYLE_LINE``): it opens as above and does not end as a sentence does (a
#: transcript's "[00:01:02] HOST: Welcome.", a paragraph opening with a quoted phrase and a colon are prose).
MARKUP_LINE = re.compile(rf'[^\S\n]*(?:{_MARKUP_OPENING})[^\n]*(?<![.!?…])')
STYLE_LINE = re.compile(rf'[^\S\n]*(?:{_MARKUP_OPENING}|{_STYLE_OPENING})[^\n]*(?<![.!?…])')
#: A newline and the whole line after it: of markup (MARKUP_LINE or STYLE_LINE), or of white space only. Searched
#: for in the page with a newline put before it, so that the search skips from newline to newline in C.
_MARKUP_AFTER_NEWLINE = re.compile(rf"\n(?:{MARKUP_LINE.pattern})(?=\n|\Z)")
_STYLE_AFTER_NEWLINE = re.compile(rf"\n(?:{STYLE_LINE.pattern})(?=\n|\Z)")
_BLANK_AFTER_NEWLINE = re.compile(r"\n[^\S\n]+(?=\n|\Z)")
_WORD = re.compile(r"\w+")


def not_an_article(text: str, body: str) -> tuple[str, str] | None:
    """``(reason, detail)`` when the page (``text``) with its cleaned ``body`` is no article, else None.

    Reasons: ``not-an-article`` (block or error page, markup or data), ``no-article-body`` (a few words).
    Words are counted only up to the thresholds that use them, so a long page costs no more than a short one.
    """
    if detail := block_page(text):
        return "not-an-article", detail
    # Only a page with markup lines can be markup: most pages need no search for their blank lines.
    if markup := _line_chars(_STYLE_AFTER_NEWLINE if "{" in text else _MARKUP_AFTER_NEWLINE, text):
        chars = len(text) - text.count("\n") - _line_chars(_BLANK_AFTER_NEWLINE, text)
        if markup / chars >= MARKUP_MIN_SHARE:
            return "not-an-article", f"markup or data saved as text ({markup / chars:.0%} of its characters)"
    if not _has_words(body, MIN_BODY_WORDS):
        return "no-article-body", f"{len(_WORD.findall(body))} words of article body (fewer than {MIN_BODY_WORDS})"
    return None


def block_page(text: str) -> str | None:
    """The detail of a rejection when ``text`` is short and says it is a block, challenge or error page, else None."""
    if not _has_words(text, BLOCK_PAGE_MAX_WORDS + 1) and (match := BLOCK_PAGE.search(text)):
        return f"block, challenge or error page ({match.group(0)!r} in {len(_WORD.findall(text))} words)"
    return None


def _line_chars(line_after_newline: re.Pattern, text: str) -> int:
    """The characters of the lines of ``text`` that ``line_after_newline`` finds (``_MARKUP_AFTER_NEWLINE``,
    ``_BLANK_AFTER_NEWLINE``: a newline and the line after it)."""
    found = line_after_newline.findall("\n" + text)
    return sum(map(len, found)) - len(found)  # each match holds its line and the newline before it


def _has_words(text: str, count: int) -> bool:
    """Whether ``text`` holds at least ``count`` words (runs of ``\\w``): one match, no word taken apart."""
    return _words_pattern(count).match(text) is not None


@cache
def _words_pattern(count: int) -> re.Pattern:
    # Possessive: each repetition takes a whole run of non-word characters, then a whole word.
    return re.compile(rf"(?:\W*+\w++){{{count}}}")
