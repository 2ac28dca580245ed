"""The single main-content extractors the HTML path chooses between, run on one parsed tree.

Each returns plain text with one block (paragraph, heading, list item, table row) per line:
trafilatura in its default and ``favor_precision`` settings, readability-lxml and resiliparse.
trafilatura and readability-lxml work on copies of the tree parsed once by ``html.parse_html``;
resiliparse parses the page itself (its own parser, about 30 times faster than lxml).
``consensus_text`` chooses a page's text between the HTML model's and theirs: the medoid, the
text that shares the most 4-word shingles with the others.
"""
from __future__ import annotations

import copy
import logging
import re

import numpy as np

import trafilatura
from lxml import html as lxml_html
from readability import Document
from resiliparse.extract.html2text import extract_plain_text

from commentary.clean.model import EXTRACTORS  # noqa: F401  (re-exported: the extractors' names)

LOGGER = logging.getLogger(__name__)

#: Options shared by both trafilatura settings (no comments, tables kept, no links or images).
_TRAFILATURA_OPTIONS = dict(include_comments=False, include_tables=True, include_images=False,
                            include_links=False, deduplicate=False, with_metadata=False)
#: Elements that start a new line in readability-lxml's output.
_BLOCK_TAGS = frozenset({"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "br", "blockquote",
                         "pre", "dd", "dt", "table", "ul", "ol", "section", "article", "figcaption",
                         "title", "head", "body", "header", "footer", "nav", "aside", "main", "form", "td",
                         "th", "figure", "hr", "dl", "address", "option", "button", "label", "textarea"})
#: Elements whose text is never visible.
_HIDDEN_TAGS = frozenset({"script", "style", "noscript", "template", "svg"})


def trafilatura_text(tree: lxml_html.HtmlElement, url: str | None = None, precision: bool = False) -> str:
    """trafilatura's main content of ``tree`` (it works on its own copy)."""
    document = trafilatura.bare_extraction(tree, url=url, favor_precision=precision, **_TRAFILATURA_OPTIONS)
    return document.text.strip() if document is not None and document.text else ""


def readability_text(tree: lxml_html.HtmlElement) -> str:
    """readability-lxml's article of a copy of ``tree``, one block per line."""
    document = Document(copy.deepcopy(tree))  # it drops hidden elements from its input
    summary = lxml_html.fragment_fromstring(document.summary(html_partial=True))
    return block_text(summary)


def block_text(element: lxml_html.HtmlElement) -> str:
    """Visible text of ``element``, a line break around each block element, spaces squeezed."""
    parts: list[str] = []

    def walk(node) -> None:
        if not isinstance(node.tag, str) or node.tag in _HIDDEN_TAGS:
            return
        block = node.tag in _BLOCK_TAGS
        if block:
            parts.append("\n")
        if node.text:
            parts.append(node.text)
        for child in node:
            walk(child)
            if child.tail:
                parts.append(child.tail)
        if block:
            parts.append("\n")

    walk(element)
    lines = (" ".join(line.split()) for line in "".join(parts).split("\n"))
    return "\n".join(line for line in lines if line)


def page_text(tree: lxml_html.HtmlElement) -> str:
    """The whole page as text, every block on its own line (all furniture kept)."""
    return block_text(tree)


def resiliparse_text(html: str) -> str:
    """resiliparse's main content of the page source."""
    return extract_plain_text(html, main_content=True, alt_texts=False, noscript=False,
                              links=False, form_fields=False).strip()


def extractor_texts(html: str, tree: lxml_html.HtmlElement, url: str | None = None) -> dict[str, str]:
    """Every extractor's text of one page; an extractor that fails gives an empty text."""
    steps = {
        "trafilatura": lambda: trafilatura_text(tree, url),
        "trafilatura-precision": lambda: trafilatura_text(tree, url, precision=True),
        "readability": lambda: readability_text(tree),
        "resiliparse": lambda: resiliparse_text(html),
    }
    texts = {}
    for name, step in steps.items():
        try:
            texts[name] = step()
        except Exception as err:  # noqa: BLE001 - one extractor failing must not stop the page
            LOGGER.warning("%s failed: %r", name, err)
            texts[name] = ""
    return texts


#: Words are ``\w+`` runs; a line's word is covered when one of the 4-word shingles holding it
#: is in the reference (the benchmark metric's unit).
_WORD = re.compile(r"\w+")
SHINGLE = 4


def kept_share(text: str, reference: str) -> dict[int, float]:
    """Share of each line's words (1-based line number) that ``reference`` holds in the same order:
    covered by a 4-word shingle of the line found in ``reference``; a line of fewer words counts
    when all of them appear together in ``reference``. Unlike :func:`covered_share`, no shingle
    spans two lines (of either text), so a line next to kept text is not counted as kept."""
    grams = set()
    for reference_line in reference.split("\n"):
        words = _WORD.findall(reference_line)
        grams.update(tuple(words[i:i + size]) for size in range(1, SHINGLE + 1) for i in range(len(words) - size + 1))
    shares = {}
    for number, line in enumerate(text.split("\n"), start=1):
        tokens = _WORD.findall(line)
        if not tokens:
            continue
        if len(tokens) < SHINGLE:
            shares[number] = float(tuple(tokens) in grams)
            continue
        covered = np.zeros(len(tokens), dtype=bool)
        for i in range(len(tokens) - SHINGLE + 1):
            if tuple(tokens[i:i + SHINGLE]) in grams:
                covered[i:i + SHINGLE] = True
        shares[number] = float(covered.mean())
    return shares


def covered_share(text: str, reference: str) -> dict[int, float]:
    """Share of each line's words (1-based line number) covered by 4-word shingles of ``reference``
    (shingles run across lines, as the benchmark's line labels do)."""
    words = _WORD.findall(reference)
    shingles = {tuple(words[i:i + SHINGLE]) for i in range(max(1, len(words) - SHINGLE + 1))}
    tokens, owner = [], []
    for number, line in enumerate(text.split("\n"), start=1):
        for token in _WORD.findall(line):
            tokens.append(token)
            owner.append(number)
    covered = np.zeros(len(tokens), dtype=bool)
    for i in range(max(1, len(tokens) - SHINGLE + 1)):
        if tuple(tokens[i:i + SHINGLE]) in shingles:
            covered[i:i + SHINGLE] = True
    owner_array = np.asarray(owner, dtype=np.int64)
    total = np.bincount(owner_array, minlength=1)
    hit = np.bincount(owner_array, weights=covered, minlength=1)
    return {int(n): float(hit[n] / total[n]) for n in np.flatnonzero(total)}


#: The outputs that may replace the HTML model's text on a page; resiliparse's output only votes
#: (as a candidate it lowered the cross-validated F1 a little: dev split by site, pool with a dataset left out).
CANDIDATES = ("trafilatura", "trafilatura-precision", "readability")


def agreement(texts: list[str]) -> list[float]:
    """How much each text agrees with the others: the F1 of its mean 4-word-shingle precision and
    mean recall against each other text (0 for an empty text)."""
    shingles = [set(zip(words, words[1:], words[2:], words[3:])) for words in map(_WORD.findall, texts)]
    scores = []
    for i, own in enumerate(shingles):
        others = [other for j, other in enumerate(shingles) if j != i]
        common = [len(own & other) for other in others]
        precision = float(np.mean([c / len(own) if own else 0.0 for c in common]))
        recall = float(np.mean([c / len(other) if other else 0.0 for c, other in zip(common, others)]))
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return scores


def consensus_text(model_text: str, outputs: dict[str, str]) -> str:
    """The page's text among the HTML model's and the ``CANDIDATES`` extractors' outputs: the one that
    agrees most with all the others (every extractor in ``outputs`` votes); the model's text on a tie."""
    voters = [name for name in outputs if name not in CANDIDATES]
    texts = [model_text, *(outputs.get(name, "") for name in CANDIDATES), *(outputs[name] for name in voters)]
    scores = agreement(texts)[:1 + len(CANDIDATES)]
    return texts[int(np.argmax(scores))]
