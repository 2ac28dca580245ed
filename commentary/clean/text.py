"""Placeholder text cleaner: first line is the title, every other line is body."""
from __future__ import annotations

from collections.abc import Sequence

from commentary.clean import CleanedPage, LineDecision


def clean_shard(texts: Sequence[str]) -> list[CleanedPage]:
    pages = []
    for text in texts:
        lines = [LineDecision(n, line, "body", "default.body") for n, line in enumerate(text.split("\n"), 1) if line.strip()]
        if not lines:
            pages.append(CleanedPage(body=""))
            continue
        lines[0] = LineDecision(lines[0].line_no, lines[0].text, "title", "zone.first-line")
        body = "\n\n".join(d.text.strip() for d in lines if d.category == "body")
        pages.append(CleanedPage(body=body, title=lines[0].text.strip(), field_sources={"title": "text:zone.first-line"}, lines=lines))
    return pages
