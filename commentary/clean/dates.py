"""Publication dates from page metadata and from visible lines, for the text and the HTML paths.

A date is written with the month's name ("Aug 25, 2021", "25 August 2021"; month names in
``commentary/rules/lexicons/dates.toml``) or in figures ("2021-08-25", "6/25/2021" month first as
written by US outlets, "25/06/2021" or "25.06.2021" day first). A date before MIN_PLAUSIBLE_YEAR or after
MAX_PLAUSIBLE_YEAR (both in ``settings``) is no date: such values are placeholders (0001-01-01, 9999-12-31) or
typing errors. Neither bound depends on the day of the run.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import re

from commentary.clean.rules import load_lexicon
from commentary.settings import MAX_PLAUSIBLE_YEAR, MIN_PLAUSIBLE_YEAR

MONTHS = {name: int(number) for number, names in load_lexicon("dates")["months"].items() for name in names}
_MONTH = r"(?P<month>[A-Za-z]{3,9})\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
#: Dates written in a line, tried in this order; the first valid and plausible one is the line's date.
DATE_PATTERNS = (
    re.compile(_MONTH + r"\s+" + _DAY + r",?\s+(?P<year>\d{4})"),
    re.compile(_DAY + r"\.?\s+" + _MONTH + r",?\s+(?P<year>\d{4})"),
    re.compile(r"(?P<year>\d{4})[-/.](?P<month>\d{1,2})[-/.](?P<day>\d{1,2})"),
    re.compile(r"(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4})"),
    re.compile(r"(?P<day>\d{1,2})[/.](?P<month>\d{1,2})[/.](?P<year>\d{4})"),
)
#: A metadata value that opens with a date in figures (ISO date or date-time, or YYYYMMDD).
_LEADING_DATE = re.compile(r"^\s*(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})|^\s*(\d{4})(\d{2})(\d{2})(?:\D|$)")


def plausible(date: dt.date | None) -> dt.date | None:
    """``date`` when its year lies between MIN_PLAUSIBLE_YEAR and MAX_PLAUSIBLE_YEAR, else None."""
    return date if date is not None and MIN_PLAUSIBLE_YEAR <= date.year <= MAX_PLAUSIBLE_YEAR else None


def find_date(text: str) -> dt.date | None:
    """The first plausible date written in ``text`` in one of DATE_PATTERNS, or None."""
    for pattern in DATE_PATTERNS:
        for match in pattern.finditer(text):
            month = match["month"]
            number = int(month) if month.isdigit() else MONTHS.get(month.lower(), 0)
            try:
                date = plausible(dt.date(int(match["year"]), number, int(match["day"])))
            except ValueError:
                continue
            if date is not None:
                return date
    return None


def parse_date(raw: str | None) -> dt.date | None:
    """The plausible date of a metadata value: one that opens with a date in figures (and only that
    date, valid or not), an RFC 2822 date, or else the first date written in it."""
    if not raw:
        return None
    if match := _LEADING_DATE.match(raw):
        year, month, day = (int(g) for g in match.groups() if g is not None)
        try:
            return plausible(dt.date(year, month, day))
        except ValueError:
            return None
    try:
        return plausible(email.utils.parsedate_to_datetime(raw.strip()).date())
    except (TypeError, ValueError, IndexError, OverflowError):  # OverflowError: a year of twenty digits
        return find_date(raw)
