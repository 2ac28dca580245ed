"""Furniture stripping and field extraction: the contract between cleaning and the pipeline.

`clean_shard` takes the decoded text of many documents at once (so that line features can be
computed in bulk) and returns one `CleanedPage` per document: the article body, the metadata
fields with where each came from, and one `LineDecision` for every non-blank line.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import NamedTuple

from schemas.models import CATEGORIES  # noqa: F401  (re-exported: the line categories)

class LineDecision(NamedTuple):
    """What happened to one non-blank line of the input (1-based ``line_no``).

    A named tuple: a shard builds one per line, and tuples are several times cheaper to create.
    """

    line_no: int
    text: str
    category: str
    rule_id: str


@dataclass
class CleanedPage:
    """The cleaned article and its fields; ``field_sources`` maps field name to origin;
    ``rejection`` is ``(reason, detail)`` when the page holds no article (``article.py``)."""

    body: str
    title: str | None = None
    authors: list[str] = field(default_factory=list)
    published_date: dt.date | None = None
    outlet: str | None = None
    section: str | None = None
    tags: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    author_bio: str | None = None
    syndicated_from: str | None = None
    syndicated_date: dt.date | None = None
    field_sources: dict[str, str] = field(default_factory=dict)
    lines: list[LineDecision] = field(default_factory=list)
    rejection: tuple[str, str] | None = None
