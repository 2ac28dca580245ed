"""Placeholder HTML extraction with trafilatura."""
from __future__ import annotations

from dataclasses import dataclass, field

import trafilatura


@dataclass
class HtmlExtraction:
    text: str
    metadata: dict = field(default_factory=dict)


def extract_html(html: str, url: str | None = None) -> HtmlExtraction:
    text = trafilatura.extract(html, url=url, favor_precision=True, include_comments=False) or ""
    return HtmlExtraction(text=text)
