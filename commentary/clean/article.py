"""Whether a cleaned page holds an article at all: the reason to reject it, or None.

Four patterns recur across sites and are never articles: block, challenge and error pages (a short
page whose text says so), markup or data saved as text (JSON, HTML source, a style sheet), files of
other text formats saved as pages (delimited rows, subtitles, mail), and pages whose body is a few
words (a navigation menu, a placeholder). The thresholds are in ``commentary/settings.py``.
"""
from __future__ import annotations

import csv
import re
from collections import Counter
from functools import cache
from itertools import islice, takewhile

from commentary.settings import (BLOCK_PAGE_LINE_MAX_WORDS, BLOCK_PAGE_MAX_WORDS, DATA_MAX_LINES_READ, DATA_MIN_FIELDS,
                                 DATA_MIN_ROW_SHARE, DATA_MIN_ROWS, MARKUP_MIN_SHARE, MIN_BODY_WORDS, SUBTITLE_MIN_CUE_SHARE, SUBTITLE_MIN_CUES)

#: What block, challenge, error and redirect pages say (anti-bot walls, access denials, HTTP errors, a script's redirect).
BLOCK_PAGE = re.compile(
    r"\b(just a moment\.\.\.|checking your browser|access (to this page )?(has been |is )?denied|attention required"
    r"|enable javascript and cookies|verify you are (a )?human|are you a robot|403 forbidden|404 not found|page not found"
    r"|service unavailable|request blocked|you don't have permission to access|you are being redirected"
    r"|if you are not redirected|redirecting\.\.\.)(?!\w)", re.IGNORECASE)
#: How a line of markup or data opens: a tag, a brace or a bracket, or a JSON key-value pair; and, on a page with a
#: brace (as every style sheet has; few other pages do, so most pages are spared the search), a CSS selector that
#: opens a block or a CSS declaration (``color: #333;``).
_MARKUP_OPENING = r'<[/!?a-zA-Z]|[{}\[\]]|"[^"\n]{1,80}"[^\S\n]*:'
_STYLE_OPENING = r'[@.#]?[\w-]++[^{}\n;]{0,200}+\{|[\w-]++[^\S\n]*+:[^;\n]{1,200}+;[^\S\n]*+(?=\n|\Z)'
#: How a line of prose ends: a sentence's end, maybe inside closing quotes or brackets, or a word in brackets (a
#: transcript's "(laughs)", "[crosstalk]"). Markup ends with a tag, data with a brace, a bracket after a quote, a comma.
_PROSE_ENDING = r'(?<![.!?…])(?<![.!?…]["”’»)\]])(?<!\w[)\]])'
#: A line of markup or data (of style too: ``STYLE_LINE``): it opens as above and does not end as prose does (a
#: transcript's "[00:01:02] HOST: Welcome.", a paragraph opening with a quoted phrase and a colon are prose).
MARKUP_LINE = re.compile(rf'[^\S\n]*(?:{_MARKUP_OPENING})[^\n]*{_PROSE_ENDING}')
STYLE_LINE = re.compile(rf'[^\S\n]*(?:{_MARKUP_OPENING}|{_STYLE_OPENING})[^\n]*{_PROSE_ENDING}')
#: A newline and the whole line after it: of markup (MARKUP_LINE or STYLE_LINE), or of white space only. Searched
#: for in the page with a newline put before it, so that the search skips from newline to newline in C.
_MARKUP_AFTER_NEWLINE = re.compile(rf"\n(?:{MARKUP_LINE.pattern})(?=\n|\Z)")
_STYLE_AFTER_NEWLINE = re.compile(rf"\n(?:{STYLE_LINE.pattern})(?=\n|\Z)")
_BLANK_AFTER_NEWLINE = re.compile(r"\n[^\S\n]+(?=\n|\Z)")
_WORD = re.compile(r"\w+")
#: A line that holds more than white space.
_FILLED_LINE = re.compile(r"^[^\S\n]*+\S[^\n]*", re.MULTILINE)
#: The separators of delimited rows (CSV, TSV and the like), with their names for a rejection's detail.
#: Not bars: trafilatura writes a table-layout page's article as rows of ``|`` cells.
_DELIMITERS = {"\t": "tabs", ",": "commas", ";": "semicolons"}
#: The line with which Excel declares a CSV file's delimiter (``sep=;``), before the rows.
_EXCEL_SEPARATOR_LINE = re.compile(r"\s*sep=[\t,;][^\S\n]*\n")
#: A subtitle or caption cue's timing line (SubRip, WebVTT): ``00:01:02,500 --> 00:01:04,000``.
_CUE_TIMING = re.compile(r"^[^\S\n]*(?:\d{1,2}:)?\d{2}:\d{2}[,.]\d{3}[^\S\n]+-->[^\S\n]+(?:\d{1,2}:)?\d{2}:\d{2}[,.]\d{3}",
                         re.MULTILINE)
#: A mailbox's message separator (``From alice@example.org Mon Oct  1 10:00:00 2019``) and a mail header line.
_MBOX_SEPARATOR = re.compile(r"From \S+ +(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
                             r" +\d{1,2} \d{2}:\d{2}")
_MAIL_HEADER = re.compile(r"[A-Za-z][A-Za-z0-9-]*:(?:[^\S\n]|$)|[^\S\n]")  # a header, or the continuation of one
#: The headers a mail message opens with (a headline "Update: ..." or "Phishing: ..." is no header).
_MAIL_FIRST_HEADER = re.compile(r"(?:from|to|cc|subject|date|sender|reply-to|received|return-path|delivered-to|message-id"
                                r"|mime-version|content-type|dkim-signature|arc-[a-z-]+|authentication-results|x-[a-z0-9-]+):",
                                re.IGNORECASE)
#: Headers that only mail carries, with their values' shapes (a letter printed in an article has at most From, To, Date
#: and Subject; a paper's "Received: 3 January 2024" is no mail).
_MAIL_ONLY_HEADER = re.compile(r"(?:received:\s*(?:from|by)\s|(?:message-id|return-path|in-reply-to):\s*<|mime-version:\s*1\.0"
                               r"|delivered-to:\s*\S+@)", re.IGNORECASE)


def not_an_article(text: str, body: str) -> tuple[str, str] | None:
    """``(reason, detail)`` when the page (``text``) with its cleaned ``body`` is no article, else None.

    Reasons: ``not-an-article`` (block or error page, markup or data, another text format), ``no-article-body`` (a
    few words). Words are counted only up to the thresholds that use them, so a long page costs no more than a short one.
    """
    if detail := block_page(text) or other_text_format(text):
        return "not-an-article", detail
    # A page of markup that holds an article apart from it (a broken page's source around its text, a long line of
    # JSON-LD) is an article: its body is mostly lines of prose.
    if (share := markup_share(text)) >= MARKUP_MIN_SHARE and (
            markup_line_share(body) >= MARKUP_MIN_SHARE or not has_words(body, MIN_BODY_WORDS)):
        return "not-an-article", f"markup or data saved as text ({share:.0%} of its characters)"
    if not has_words(body, MIN_BODY_WORDS):
        return "no-article-body", f"{len(_WORD.findall(body))} words of article body (fewer than {MIN_BODY_WORDS})"
    return None


def has_words(text: str, count: int) -> bool:
    """Whether ``text`` holds at least ``count`` words (runs of ``\\w``): one match, no word taken apart."""
    return _words_pattern(count).match(text) is not None


def block_page(text: str) -> str | None:
    """The detail of a rejection when ``text`` is short and says it is a block, challenge, error or redirect page, else None: it
    says so in a short line of its own (a heading, a title, "Checking your browser before accessing example.org."), not
    inside a sentence of prose (a news brief quoting a "service unavailable" message is an article)."""
    if has_words(text, BLOCK_PAGE_MAX_WORDS + 1):
        return None
    for match in BLOCK_PAGE.finditer(text):
        end = text.find("\n", match.end())
        if not has_words(text[text.rfind("\n", 0, match.start()) + 1:end if end >= 0 else None], BLOCK_PAGE_LINE_MAX_WORDS + 1):
            return f"block, challenge, error or redirect page ({match.group(0)!r} in {len(_WORD.findall(text))} words)"
    return None


def other_text_format(text: str) -> str | None:
    """The detail of a rejection when ``text`` is a file of another text format saved as a page, else None: rows of
    delimited data (CSV, TSV), subtitles or captions (SubRip, WebVTT), or mail (an mbox, a message with its headers).
    Each test first looks at the opening lines, so an article costs next to nothing."""
    if declared := _EXCEL_SEPARATOR_LINE.match(text):
        text = text[declared.end():]
    found = _FILLED_LINE.finditer(text)
    opening = [line.group(0) for line in islice(found, 4)]  # SubRip's first timing is its second line, WebVTT's third
    if len(opening) < 2:
        return None
    lines = cache(lambda: _lines(text))  # read whole only by a test that the opening lines pass
    delimiters = [d for d in _DELIMITERS if min(opening[0].count(d), opening[1].count(d)) >= DATA_MIN_FIELDS - 1]
    if delimiters and (detail := _delimited_rows(lines()[:DATA_MAX_LINES_READ], delimiters)):
        return detail
    if ((opening[0].startswith("WEBVTT") or any(_CUE_TIMING.match(line) for line in opening))
            and (cues := len(_CUE_TIMING.findall(text))) >= max(SUBTITLE_MIN_CUES, SUBTITLE_MIN_CUE_SHARE * len(lines()))):
        return f"subtitles or captions saved as text ({cues} cue timings)"
    if _MBOX_SEPARATOR.match(opening[0]) or _MAIL_FIRST_HEADER.match(opening[0]) and _mail_headers(
            opening + [line.group(0) for line in islice(found, 46)]):
        messages = max(1, sum(1 for line in lines() if _MBOX_SEPARATOR.match(line)))
        return f"mail saved as text ({messages} message{'s' * (messages > 1)} with mail headers)"
    return None


def _lines(text: str) -> list[str]:
    """The lines of ``text`` that hold more than white space."""
    return _FILLED_LINE.findall(text)


def _delimited_rows(lines: list[str], delimiters: list[str]) -> str | None:
    """The detail when most records of ``lines`` (read as CSV reads them: a quoted field may hold line breaks) are
    rows of as many fields (``DATA_MIN_FIELDS`` or more) split by one of the ``delimiters``, no space after it, and
    in most rows one of the fields is a single token (an id, a date, a number, an address). Prose that holds as many
    commas (a list of "Name, 27, role", clauses) writes a space after each and splits into clauses of words."""
    for delimiter in delimiters:
        try:
            rows = list(csv.reader(lines, delimiter=delimiter))
        except csv.Error:  # a quoted field that runs on past the csv module's size limit: no rows of data
            continue
        fields, count = Counter(map(len, rows)).most_common(1)[0]
        enough = DATA_MIN_ROW_SHARE * len(rows)
        if len(rows) < DATA_MIN_ROWS or fields < DATA_MIN_FIELDS or count < enough:
            continue
        table = [row for row in rows if len(row) == fields]
        spaced = sum(field[:1].isspace() for row in table for field in row[1:])
        single = [sum(len(row[i].split()) <= 1 for row in table) for i in range(fields)]
        if spaced <= len(table) * (fields - 1) / 2 and max(single) >= enough:
            return (f"delimited data saved as text ({count} of {len(rows)} records are rows of {fields} fields split by "
                    f"{_DELIMITERS[delimiter]})")
    return None


def _mail_headers(opening: list[str]) -> bool:
    """Whether the ``opening`` lines are a mail message's header block: header lines up to the first line of another
    shape, two or more, among them one that only mail carries (``Message-ID``, ``Received``, ...)."""
    block = list(takewhile(_MAIL_HEADER.match, opening))
    return len(block) >= 2 and any(_MAIL_ONLY_HEADER.match(line) for line in block)


def markup_share(text: str) -> float:
    """The share of the characters of ``text`` (white space lines and line ends left out) on lines of markup or data."""
    # Only a text with markup lines can be markup: most texts need no search for their blank lines.
    if not (markup := _line_chars(_STYLE_AFTER_NEWLINE if "{" in text else _MARKUP_AFTER_NEWLINE, text)):
        return 0.0
    return markup / (len(text) - text.count("\n") - _line_chars(_BLANK_AFTER_NEWLINE, text))


def markup_line_share(text: str) -> float:
    """The share of the lines of ``text`` that hold more than white space that are lines of markup or data."""
    if not (lines := _lines(text)):
        return 0.0
    markup = STYLE_LINE if "{" in text else MARKUP_LINE
    return sum(markup.fullmatch(line) is not None for line in lines) / len(lines)


def _line_chars(line_after_newline: re.Pattern, text: str) -> int:
    """The characters of the lines of ``text`` that ``line_after_newline`` finds (``_MARKUP_AFTER_NEWLINE``,
    ``_BLANK_AFTER_NEWLINE``: a newline and the line after it)."""
    found = line_after_newline.findall("\n" + text)
    return sum(map(len, found)) - len(found)  # each match holds its line and the newline before it


@cache
def _words_pattern(count: int) -> re.Pattern:
    # Possessive: each repetition takes a whole run of non-word characters, then a whole word.
    return re.compile(rf"(?:\W*+\w++){{{count}}}")
