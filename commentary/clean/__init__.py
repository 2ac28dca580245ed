"""Furniture stripping and field extraction: the contract between cleaning and the pipeline.

`clean_shard` takes the decoded text of many documents at once (so that line features can be
computed in bulk) and returns one `CleanedPage` per document: the article body, the metadata
fields with where each came from, and a `LineDecision` for every non-blank line (`PageLines`).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import field, make_dataclass
from typing import Any, NamedTuple, get_origin, get_type_hints

import polars as pl

from schemas.models import CATEGORIES, SOURCED_FIELDS, Article  # noqa: F401  (CATEGORIES re-exported: the line categories)

class LineDecision(NamedTuple):
    """What happened to one non-blank line of the input (1-based ``line_no``).

    A named tuple: a shard builds one per line, and tuples are several times cheaper to create.
    """

    line_no: int
    text: str
    category: str
    rule_id: str


#: The columns of ``PageLines.frame``: ``LineDecision``'s fields.
LINE_SCHEMA = pl.Schema({"line_no": pl.Int32, "text": pl.String, "category": pl.String, "rule_id": pl.String})


class PageLines:
    """The decisions on a page's non-blank lines, in order: a table of ``LINE_SCHEMA`` (``frame``, a slice of the
    shard's table, which the pipeline's furniture audit reads as it is), one ``LineDecision`` per line when iterated."""

    __slots__ = ("frame",)

    def __init__(self, frame: pl.DataFrame | None = None) -> None:
        self.frame = pl.DataFrame(schema=LINE_SCHEMA) if frame is None else frame

    def __len__(self) -> int:
        return self.frame.height

    def __iter__(self) -> Iterator[LineDecision]:
        return map(LineDecision._make, self.frame.iter_rows())

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, (PageLines, list)) else NotImplemented

    __hash__ = None  # type: ignore[assignment]  # compared by value, as a list

    def __repr__(self) -> str:
        return f"PageLines({list(self)!r})"


#: The article fields that the visible text can give: all sourced fields but the page's own url and language.
TEXT_FIELDS = tuple(name for name in SOURCED_FIELDS if name not in ("url", "language"))


def _article_field(name: str) -> tuple[str, type, Any]:
    """``name`` as a dataclass field, typed as in the ``Article`` model; empty by default."""
    kind = get_type_hints(Article)[name]
    return (name, kind, field(default_factory=list)) if get_origin(kind) is list else (name, kind | None, field(default=None))


CleanedPage = make_dataclass("CleanedPage", [
    ("body", str), *map(_article_field, TEXT_FIELDS),
    ("field_sources", dict[str, str], field(default_factory=dict)),
    ("lines", PageLines, field(default_factory=PageLines)),
    ("rejection", tuple[str, str] | None, field(default=None)),
])
CleanedPage.__module__ = __name__
CleanedPage.__doc__ = """The cleaned article and its ``TEXT_FIELDS`` (typed as in the ``Article`` model); ``field_sources``
maps field name to origin; ``rejection`` is ``(reason, detail)`` when the page holds no article (``article.py``)."""


def released_body(page: CleanedPage) -> str:
    """The body the pipeline releases for ``page``: ``""`` when it is rejected or its body is blank."""
    return page.body if page.body.strip() and page.rejection is None else ""
