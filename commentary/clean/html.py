"""Main text and metadata from one raw HTML page, without any network access.

`extract_html` parses the page once with lxml (no network, no DTD loading, comments and
processing instructions dropped), reads metadata from that tree in a fixed order
(JSON-LD, then meta/OpenGraph tags, then trafilatura's own metadata), and chooses the main text
among the page's blocks with the HTML line model (``html_model.json``), whose inputs add to the
text features the share of each block that each single extractor kept (trafilatura in both
settings, readability-lxml, resiliparse: ``extractors.py``), how they agree (``agreement.py``), and
the block's DOM cues read in the walk that writes the page's lines (``extractors.page_blocks``); of the
model's text and the extractors' outputs, the page keeps the one that agrees most with the others, less
the lines that no other text holds (``agreement.consensus_text``).
The text keeps one block (paragraph, heading, list item, table row) per line, for the text-level
furniture rules that run after.
``extract_html_shard`` runs the model once over a shard's pages, and extracts a page above
``HTML_ISOLATE_CHARS`` in a process of its own, stopped after ``HTML_TIMEOUT_SECONDS``.
"""
from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
from html import unescape
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence
from urllib.parse import urljoin, urlsplit

import numpy as np
import polars as pl
from htmldate import find_date
from lxml import etree, html as lxml_html
from trafilatura import metadata as trafilatura_metadata
from trafilatura.htmlprocessing import prune_unwanted_nodes
from trafilatura.json_metadata import normalize_authors
from trafilatura.utils import trim
from trafilatura.xpaths import AUTHOR_DISCARD_XPATHS

from commentary import settings
from commentary.clean.agreement import consensus_text, kept_share, kept_shares
from commentary.clean.article import block_page, has_words, other_text_format
from commentary.clean.dates import parse_date
from commentary.clean.extractors import DOM_COLUMNS, brief, extractor_texts, page_blocks
from commentary.clean.fields import TITLE_SEPARATOR, folded
from commentary.clean.model import LineModel, html_model
from commentary.clean.people import NAME_MIN_WORDS, clean_authors
from commentary.clean.tags import split_tags
from commentary.clean.text import body_probability, body_runs, rule_lines, with_dom, with_kept
from commentary.ingest import http_url, language_tag, valid_text

LOGGER = logging.getLogger(__name__)

#: lxml.html's own element classes for form elements (the others are ``HtmlElement``).
_FORM_ELEMENT_CLASSES = {"form": lxml_html.FormElement, "input": lxml_html.InputElement,
                         "label": lxml_html.LabelElement, "select": lxml_html.SelectElement,
                         "textarea": lxml_html.TextareaElement}


def _page_parser() -> lxml_html.HTMLParser:
    """Parser for untrusted pages: never touches the network, loads no DTD, keeps no comments, and reads pages
    nested deeper than libxml2's default limit of 256 elements (``huge_tree``; the page size is capped before).

    Its trees hold the element classes of lxml.html's parser, looked up in C by tag name rather than
    by lxml.html's Python callback, which runs each time an element is touched (every extractor walks
    the tree several times): the same trees, 40% less time per element touched.
    """
    parser = lxml_html.HTMLParser(collect_ids=False, default_doctype=False, encoding="utf-8", no_network=True,
                                  remove_comments=True, remove_pis=True, huge_tree=True)
    lookup = etree.ElementNamespaceClassLookup(etree.ElementDefaultClassLookup(
        element=lxml_html.HtmlElement, comment=lxml_html.HtmlComment, pi=lxml_html.HtmlProcessingInstruction,
        entity=lxml_html.HtmlEntity))
    lookup.get_namespace(None).update(_FORM_ELEMENT_CLASSES)
    parser.set_element_class_lookup(lookup)
    return parser


_PARSER = _page_parser()
#: The DOM inputs of a page without lines.
_NO_LINES = np.zeros((0, len(DOM_COLUMNS)))
#: A document type declaration, with any internal subset (where entities would be declared).
_DOCTYPE_RE = re.compile(r"<!DOCTYPE(?:[^<>\[]|\[[^\]]*\])*>", re.IGNORECASE)
#: Characters that XML (and so lxml) rejects.
_INVALID_XML_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
#: Those characters' bytes in UTF-8: the control codes, and U+FFFE and U+FFFF.
_INVALID_XML_CONTROL_BYTES = bytes(set(range(0x20)) - {0x09, 0x0A, 0x0D})
_INVALID_XML_NONCHARACTERS = ("\ufffe".encode(), "\uffff".encode())

#: schema.org types whose node describes the page's article.
ARTICLE_TYPES = frozenset({
    "Article", "NewsArticle", "BlogPosting", "OpinionNewsArticle", "ReportageNewsArticle",
    "AnalysisNewsArticle", "BackgroundNewsArticle", "ReviewNewsArticle", "Report",
    "ScholarlyArticle", "TechArticle", "SocialMediaPosting", "LiveBlogPosting", "Review",
    "CreativeWork", "WebPage",
})
#: Of those, the types that say the page is one article (not a generic page).
STRICT_ARTICLE_TYPES = ARTICLE_TYPES - {"CreativeWork", "WebPage"}
#: schema.org and OpenGraph types that describe an index or listing page.
LISTING_TYPES = frozenset({"CollectionPage", "ItemList", "SearchResultsPage", "Blog"})

#: Fields looked up in trafilatura's metadata when JSON-LD and meta tags lack them.
TRAFILATURA_FALLBACK_FIELDS = ("title", "authors", "published_date", "outlet")
#: Longest plausible site name, in words; trafilatura may return a piece of the title.
MAX_OUTLET_WORDS = 4
#: htmldate's latest date: fixed, where its own default (the end of today) would make a page's date depend on the
#: day of the run.
_LATEST_SEARCHED_DATE = dt.datetime(settings.MAX_PLAUSIBLE_YEAR, 12, 31, 23, 59, 59)

_META_TITLE = (("og", "og:title"), ("meta", "twitter:title"))
_META_AUTHOR = (
    ("meta", "author"), ("meta", "byl"), ("meta", "parsely-author"),
    ("meta", "sailthru.author"), ("meta", "dc.creator"), ("og", "article:author"),
)
_META_DATE = (
    ("og", "article:published_time"), ("og", "og:published_time"),
    ("meta", "datepublished"), ("meta", "pubdate"), ("meta", "publishdate"),
    ("meta", "publish-date"), ("meta", "parsely-pub-date"), ("meta", "sailthru.date"),
    ("meta", "dc.date.issued"), ("meta", "dcterms.created"), ("meta", "dc.date"),
    ("meta", "date"),
)
_META_SECTION = (("og", "article:section"), ("meta", "parsely-section"))
_META_OUTLET = (("og", "og:site_name"), ("meta", "application-name"))
_META_SUMMARY = (("og", "og:description"), ("meta", "description"))
_META_TAGS = (
    ("og", "article:tag"), ("meta", "news_keywords"), ("meta", "keywords"),
    ("meta", "parsely-tags"),
)
_META_LANGUAGE = (("meta", "content-language"), ("og", "og:locale"))
_META_URL = (("og", "og:url"),)


@dataclass
class HtmlExtraction:
    """Main text (one block per line) and metadata ``field -> (value, source)`` of a page.

    Metadata fields: title, authors (list), published_date (date), outlet, section,
    tags (list), summary, language, url, page_type (schema.org or og:type); sources are
    "jsonld", "og", "meta", "html" (title element, lang, canonical link), "trafilatura",
    "input" (the url argument). ``not_an_article`` tells why the page holds no article when it does
    not: a web feed or a sitemap, a redirect page, a listing or index page, or a block, challenge or error page.
    """

    text: str
    metadata: dict[str, tuple[Any, str]] = field(default_factory=dict)
    not_an_article: str | None = None


class TooCostly(Exception):
    """A page whose extraction outlived ``HTML_TIMEOUT_SECONDS`` in its own process, or whose process was killed (by
    the system's out-of-memory killer, most often)."""


@dataclass
class PageReading:
    """One page read for block selection: the whole page as text (one block per line) and the DOM
    inputs of each line, each extractor's output and the share of each line that it kept, the metadata, and the link
    statistics of its body (``None`` when it has no body) for the listing check; ``parsed`` is False
    when nothing usable came out of the parser; ``not_a_page`` tells why the document is no web page of its own
    (a web feed or a sitemap, a redirect page, a text file of another format: ``_xml_document``, ``_redirect``,
    ``article.other_text_format``)."""

    page: str
    dom: np.ndarray
    outputs: dict[str, str]
    kept: dict[str, dict[int, float]]
    metadata: dict[str, tuple[Any, str]]
    link_share: float | None
    parsed: bool = True
    not_a_page: str | None = None


def extract_html(html: str, url: str | None = None) -> HtmlExtraction:
    """Extract the main text and metadata of ``html`` in this process; never fetches. Raises only :class:`NestedTooDeep`
    (``parse_html``): a malformed page otherwise yields what can be read of it."""
    reading = read_page(html, url)
    return finish_pages([reading], [_safe(lambda: select_blocks([reading.page], [reading.kept], [reading.dom])[0], "")])[0]


#: Characters of page text that one run of the HTML model reads. The pages of a shard are read and
#: decided in runs of about this size, so that a shard of large pages holds the readings and the model's
#: line tables (about 20 bytes a character at their peak) of one run at a time; each page is decided
#: from its own lines alone, so runs give the same texts as one run over the shard.
MODEL_RUN_CHARS = 1_000_000


def extract_html_shard(pages: Sequence[tuple[str, str | None]]) -> list[HtmlExtraction | Exception]:
    """The extraction of each ``(html, url)`` of a shard, or the error that stopped it.

    Pages of at most ``HTML_ISOLATE_CHARS`` characters are read here and their blocks chosen by runs
    of the HTML model over consecutive pages (``MODEL_RUN_CHARS``); a larger page is extracted in a
    process of its own that is killed after ``HTML_TIMEOUT_SECONDS`` (:class:`TooCostly`).
    """
    results: list[HtmlExtraction | Exception | None] = []
    run: list[tuple[int, PageReading]] = []
    run_chars = 0
    for html, url in pages:
        try:
            if len(html) > settings.HTML_ISOLATE_CHARS:
                results.append(extract_isolated(html, url))
                continue
            reading = read_page(html, url)
            run.append((len(results), reading))
            run_chars += len(reading.page)
            results.append(None)
        except Exception as error:  # noqa: BLE001 - one bad page must not stop the shard
            results.append(error)
        if run_chars >= MODEL_RUN_CHARS:
            _decide(run, results)
            run, run_chars = [], 0
    _decide(run, results)
    return results


def _decide(run: list[tuple[int, PageReading]], results: list[HtmlExtraction | Exception | None]) -> None:
    """Choose the blocks of a run of read pages in one run of the HTML model and put each page's
    extraction at its position in ``results``."""
    readings = [reading for _, reading in run]
    try:
        texts = select_blocks([r.page for r in readings], [r.kept for r in readings], [r.dom for r in readings])
    except Exception:  # noqa: BLE001 - retried page by page so that one page cannot fail the others
        texts = [_safe(lambda r=r: select_blocks([r.page], [r.kept], [r.dom])[0], "") for r in readings]
    for (i, _), extraction in zip(run, finish_pages(readings, texts), strict=True):
        results[i] = extraction


def read_page(html: str, url: str | None = None) -> PageReading:
    """Parse ``html`` once and read what block selection needs from it (see :class:`PageReading`)."""
    if "<" not in html and (document := other_text_format(html)):  # a text file of another format under a page's name
        return PageReading(page="", dom=_NO_LINES, outputs={}, kept={}, metadata={}, link_share=None, not_a_page=document)
    tree = parse_html(html)
    if tree is None:
        return PageReading(page="", dom=_NO_LINES, outputs={}, kept={}, metadata={}, link_share=None, parsed=False)
    if document := _safe(lambda: _xml_document(tree), None):  # nothing to extract
        return PageReading(page="", dom=_NO_LINES, outputs={}, kept={}, metadata={}, link_share=None, not_a_page=document)
    metadata = _safe(lambda: extract_page_metadata(tree, url), {})
    page, dom = _safe(lambda: page_blocks(tree), ("", _NO_LINES))
    outputs = _safe(lambda: extractor_texts(html, tree, url), {})
    kept = kept_shares(page, outputs)
    return PageReading(page=page, dom=dom, outputs=outputs, kept=kept, metadata=metadata,
                       link_share=_safe(lambda: body_link_share(tree), None),
                       not_a_page=_safe(lambda: _redirect(tree, page, metadata.get("url", (None, ""))[0]), None))


#: The root elements of web feeds and sitemaps, which lxml's HTML parser makes the first element of the body.
_XML_DOCUMENT_ROOTS = {"rss": "an RSS feed", "feed": "an Atom feed", "atom:feed": "an Atom feed", "rdf:rdf": "an RSS 1.0 feed",
                       "urlset": "a sitemap", "sitemapindex": "a sitemap index"}
#: A ``meta`` refresh's ``content``: its delay in seconds, then the address ("0; url=https://example.org/new", "0;
#: https://example.org/new", as the HTML standard reads it).
_REFRESH = re.compile(r"\s*(\d+)(?:\.[\d.]*)?(?:\s*[;,]\s*|\s+)(?:url\s*=\s*)?['\"]?\s*([^'\"\s]+)", re.IGNORECASE)


def _xml_document(tree: lxml_html.HtmlElement) -> str | None:
    """The detail of a ``not-an-article`` rejection when the document is a web feed (RSS, Atom) or a sitemap saved as
    HTML."""
    body = tree.find("body")
    first = next(body.iterchildren(etree.Element), None) if body is not None else None
    root = _XML_DOCUMENT_ROOTS.get(first.tag) if first is not None else None
    return f"{root} saved as HTML, not a page" if root else None


def _redirect(tree: lxml_html.HtmlElement, page: str, own_url: str | None) -> str | None:
    """The detail of a ``not-an-article`` rejection when the page is a redirect: at most ``BLOCK_PAGE_MAX_WORDS`` words
    (its whole text, ``page``) and a ``meta`` refresh within ``REDIRECT_MAX_SECONDS`` to another address than the page's
    own (``own_url``). A refresh inside ``noscript`` only sends readers without scripts away; a later one, or one to the
    page itself, reloads it."""
    for meta in tree.iter("meta"):
        if (meta.get("http-equiv", "").strip().lower() == "refresh"
                and (refresh := _REFRESH.match(meta.get("content", "")))
                and int(refresh.group(1)) <= settings.REDIRECT_MAX_SECONDS
                and not _same_page(refresh.group(2), own_url)
                and not any(element.tag == "noscript" for element in meta.iterancestors())
                and not has_words(page, settings.BLOCK_PAGE_MAX_WORDS + 1)):
            return (f"redirect page (a meta refresh to {refresh.group(2)[:200]!r} on a page of at most "
                    f"{settings.BLOCK_PAGE_MAX_WORDS} words)")
    return None


def _same_page(target: str, own_url: str | None) -> bool:
    """Whether the address ``target`` (maybe relative) names the page at ``own_url``: its host and path, whatever the query."""
    if not own_url:
        return False
    with contextlib.suppress(ValueError):
        there, here = urlsplit(urljoin(own_url, target)), urlsplit(own_url)
        return (there.hostname, there.path.rstrip("/")) == (here.hostname, here.path.rstrip("/"))
    return False


def finish_pages(readings: Sequence[PageReading], texts: Sequence[str]) -> list[HtmlExtraction]:
    """The extraction of each page from its reading and the blocks the HTML model chose: the text is
    the one of those blocks and the extractors' outputs that agrees most with the others, less the lines
    that no other text holds."""
    out = []
    for reading, text in zip(readings, texts, strict=True):
        text = _safe(lambda: consensus_text(text, reading.outputs), text)
        text = drop_repeated_title(text, reading.metadata.get("title", (None, ""))[0])
        out.append(HtmlExtraction(text=text, metadata=reading.metadata, not_an_article=_not_an_article(reading, text)))
    return out


def _not_an_article(reading: PageReading, text: str) -> str | None:
    """Why a page with the extracted ``text`` holds no article (the detail of a ``not-an-article`` rejection), or None:
    a document that is no page (``PageReading.not_a_page``), a block, challenge or error page (its title may be all that
    says so), or a listing or index page."""
    if reading.not_a_page:
        return reading.not_a_page
    title = reading.metadata.get("title", (None, ""))[0]
    if detail := block_page(f"{title or ''}\n{text}"):
        return detail
    listing = _safe(lambda: looks_like_listing(reading, text), None) if reading.parsed else None
    return f"listing or index page: {listing}" if listing else None


def extract_isolated(html: str, url: str | None = None,
                     timeout: float | None = None) -> HtmlExtraction:
    """:func:`extract_html` in a fresh interpreter, killed after ``timeout`` seconds (``HTML_TIMEOUT_SECONDS``); raises
    :class:`TooCostly` when it expires or when the process is killed. The child also stops itself at that time (an
    alarm), so it cannot outlive a parent that was killed."""
    timeout = settings.HTML_TIMEOUT_SECONDS if timeout is None else timeout
    command = [sys.executable, "-c", f"from commentary.clean.html import _extract_stdin; _extract_stdin({timeout!r})"]
    try:
        done = subprocess.run(command, input=json.dumps([html, url]).encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise TooCostly(f"{len(html)} characters of HTML: extraction took more than {timeout:g} s; stopped") from None
    if done.returncode < 0:
        raise TooCostly(f"{len(html)} characters of HTML: the extraction process was killed by signal {-done.returncode} "
                        "(out of memory?)")
    if done.returncode != 0 or not done.stdout:
        last = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise RuntimeError(f"extraction process failed (exit code {done.returncode}) {last[0][:300]}".strip())
    data = json.loads(done.stdout)
    metadata = {name: (dt.date.fromisoformat(value["date"]) if isinstance(value, dict) else value, source)
                for name, (value, source) in data["metadata"].items()}
    return HtmlExtraction(text=data["text"], metadata=metadata, not_an_article=data["not_an_article"])


def _extract_stdin(timeout: float) -> None:
    """Child of :func:`extract_isolated`: extract the JSON ``[html, url]`` read from stdin and write the
    extraction as JSON to stdout (dates as ``{"date": iso}``; anything printed on the way goes to stderr)."""
    signal.alarm(math.ceil(timeout) + 1)
    result_out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout = sys.stderr
    html, url = json.loads(sys.stdin.buffer.read())
    extraction = extract_html(html, url)
    metadata = {name: ({"date": value.isoformat()} if isinstance(value, dt.date) else value, source)
                for name, (value, source) in extraction.metadata.items()}
    json.dump({"text": extraction.text, "metadata": metadata, "not_an_article": extraction.not_an_article}, result_out)
    result_out.close()


def _safe(compute, default):
    """Run one extraction step; a failure on a malformed page yields ``default``."""
    try:
        return compute()
    except Exception as err:  # noqa: BLE001 - malformed input must never stop a shard
        LOGGER.warning("html extraction step failed: %s", brief(err))
        return default


class NestedTooDeep(ValueError):
    """A page nested deeper than the parser reads: libxml2 drops what lies below ``PARSER_MAX_DEPTH`` elements."""


#: Depth at which libxml2 stops reading a page even with ``huge_tree`` (its ``xmlParserMaxDepth``).
PARSER_MAX_DEPTH = 2048


def parse_html(html: str) -> lxml_html.HtmlElement | None:
    """Parse untrusted HTML into a tree, or None when nothing usable comes out. Raises :class:`NestedTooDeep` when the
    parser stopped at its depth limit: the tree would lack the page's text below it."""
    if not html or not html.strip():
        return None
    data = _without_doctype(html).encode("utf-8", "surrogatepass")
    # characters XML rejects, looked for in the bytes (a scan in C) and removed from the text when some occur
    if (len(data.translate(None, _INVALID_XML_CONTROL_BYTES)) < len(data)
            or any(character in data for character in _INVALID_XML_NONCHARACTERS)):
        data = _without_doctype(_INVALID_XML_CHARS_RE.sub("", html)).encode("utf-8", "surrogatepass")
    try:
        tree = lxml_html.document_fromstring(data, parser=_PARSER)
    except (etree.ParserError, ValueError, etree.XMLSyntaxError):
        return None
    if any(error.type_name == "ERR_RESOURCE_LIMIT" and "depth" in error.message for error in _PARSER.error_log):
        raise NestedTooDeep(f"elements nested more than {PARSER_MAX_DEPTH:,} deep: the HTML parser drops the text below")
    return tree if tree is not None and len(tree) else None


def _without_doctype(html: str) -> str:
    """``html`` without its first document type declaration (``_DOCTYPE_RE``), looked for only where a
    ``<!`` stands before the word: the regex searched alone scans the whole page without a plain prefix."""
    start = html.find("<!")
    while start != -1:
        if html[start + 2:start + 9].lower() == "doctype":
            found = _DOCTYPE_RE.match(html, start)
            if found:
                return html[:start] + html[found.end():]
        start = html.find("<!", start + 2)
    return html


# --- main text -------------------------------------------------------------------------

def select_blocks(pages: list[str], kept: list[dict[str, dict[int, float]]], dom: list[np.ndarray],
                  model: LineModel | None = None) -> list[str]:
    """The article of each page (all blocks, one per line): the lines the HTML model keeps, given the
    share of each line that each extractor kept (``kept[i][extractor][line_no]``) and the DOM inputs
    of each line (``dom[i]``, one row per line, from ``extractors.page_blocks``)."""
    model = html_model() if model is None else model
    lines = rule_lines(pages)
    if lines.height == 0:
        return [""] * len(pages)
    lines = with_dom(with_kept(lines, kept), dom)
    body = pl.Series(body_runs(lines, body_probability(lines, model), model.threshold, model.run_cost))
    chosen = dict(lines.filter(body).group_by("doc").agg(pl.col("text").str.join("\n")).rows())
    return [chosen.get(i, "") for i in range(len(pages))]


def title_without_site(title: str, names: Sequence[str]) -> str:
    """``title`` without the site's name at either end ("Headline | TheHill" on thehill.com, "BBC News - Headline"
    with the outlet "BBC News"): a part between separators that is one of ``names`` as ``_site_key`` reads them. The
    title stays whole when nothing else would be left."""
    keys = _site_keys(names)
    pieces = re.split(f"({TITLE_SEPARATOR.pattern})", title)
    while len(pieces) >= 3 and _site_key(pieces[-1]) in keys:
        pieces = pieces[:-2]
    while len(pieces) >= 3 and _site_key(pieces[0]) in keys:
        pieces = pieces[2:]
    return "".join(pieces)


def tags_without_site(tags: list[str], names: Sequence[str]) -> list[str]:
    """``tags`` without the site's own name or a domain name ("nhl", "nhl.com", "www.nhl.com" on nhl.com):
    ``names`` as ``_site_key`` reads them."""
    keys = _site_keys(names)
    return [tag for tag in tags if _site_key(tag) not in keys and not (_DOMAIN.match(tag) and not tag.isupper())]


#: A domain name: labels of letters, digits and hyphens, the first and the last beginning with a letter (in capitals,
#: such a tag is a stock symbol: "UBI.FR").
_DOMAIN = re.compile(r"^(?:www\.)?[^\W\d_][\w-]*(?:\.[\w-]+)*\.[^\W\d_]{2,}$")


#: Labels under a country's domain that name no site: the "co" of co.uk, the "com" of com.au.
_SECOND_LEVEL = frozenset({"ac", "co", "com", "edu", "gov", "net", "org"})


def site_names(outlet: str | None, url: str | None) -> list[str]:
    """What a page's site is called: its outlet, its host ("nhl.com" of www.nhl.com) and the host's own name ("nhl";
    "bbc" of news.bbc.co.uk)."""
    good = http_url(url) if url else None  # a canonical link may be no URL at all ("http://[::1")
    host = (urlsplit(good).hostname or "").removeprefix("www.") if good else ""
    labels = host.split(".")[:-1]
    if len(labels) > 1 and labels[-1] in _SECOND_LEVEL:
        labels.pop()
    return [name for name in (outlet, host, labels[-1] if labels else "") if name]


def _site_key(text: str) -> str:
    """A site name compared without case, punctuation, spaces and a leading "the" ("The White House", whitehouse)."""
    return folded(text).replace(" ", "").removeprefix("the")


def _site_keys(names: Sequence[str]) -> set[str]:
    return {_site_key(name) for name in names} - {""}


def drop_repeated_title(text: str, title: str | None) -> str:
    """Remove the first line when it only repeats the page title (or its part before a
    " | Site name" suffix)."""
    if not title or not text:
        return text
    first, _, rest = text.partition("\n")
    candidates = {folded(part) for part in (title, *TITLE_SEPARATOR.split(title))}
    if folded(first) in candidates - {""}:
        return rest.lstrip("\n")
    return text


# --- listing pages -------------------------------------------------------------------------

_SENTENCE_END_RE = re.compile(r"[.!?。！？…:;\"'”»)]\s*$")


def body_link_share(tree: lxml_html.HtmlElement) -> float | None:
    """Share of the words of the page's body inside links (None: no body, or no word in it)."""
    body = tree.find("body")
    if body is None:
        return None
    page_words = len(" ".join(body.itertext()).split())
    link_words = sum(len(" ".join(a.itertext()).split()) for a in body.iter("a"))
    return link_words / page_words if page_words else None


def text_link_share(reading: PageReading, text: str) -> float | None:
    """Share of the words of ``text`` that lie inside links on the page: each page line's link share
    weighted by how many of its words ``text`` holds (``kept_share``); None when it holds none."""
    lines = reading.page.split("\n")
    if len(lines) != len(reading.dom):
        return None
    held = kept_share(reading.page, text)
    words = np.array([held.get(n, 0.0) * len(line.split()) for n, line in enumerate(lines, 1)])
    total = words.sum()
    return float(words @ reading.dom[:, DOM_COLUMNS.index("dom_link_share")] / total) if total else None


def looks_like_listing(reading: PageReading, text: str) -> str | None:
    """Why the page looks like an index/listing page, or None if ``text``, its extracted text, reads like an
    article: a listing holds fewer than ``settings.LISTING_MAX_PROSE_BLOCKS`` prose blocks, and most words of the page
    (``PageReading.link_share``) and of ``text`` (:func:`text_link_share`) lie in links, of those two shares that can
    be measured (a page the parser left without a body has no page share); with neither, it is no listing."""
    page_type = reading.metadata.get("page_type", (None, ""))[0]
    if page_type in LISTING_TYPES:
        return f"page type {page_type}"
    if page_type in STRICT_ARTICLE_TYPES or page_type == "article":
        return None
    prose_blocks = sum(
        1 for line in text.splitlines()
        if len(line.split()) >= settings.LISTING_PROSE_MIN_WORDS and _SENTENCE_END_RE.search(line)
    )
    if prose_blocks >= settings.LISTING_MAX_PROSE_BLOCKS:
        return None
    if reading.link_share is not None and reading.link_share < settings.LISTING_MIN_LINK_SHARE:
        return None
    in_links = text_link_share(reading, text)
    if in_links is None and reading.link_share is None:  # no body and no line of the text on the page: unmeasured
        return None
    if in_links is not None and in_links < settings.LISTING_MIN_LINK_SHARE:
        return None
    return ", ".join([f"{prose_blocks} prose blocks",
                      *([] if reading.link_share is None else [f"{reading.link_share:.0%} of the page's words in links"]),
                      *([] if in_links is None else [f"{in_links:.0%} of the text's"])])


# --- metadata ------------------------------------------------------------------------------

def extract_page_metadata(tree: lxml_html.HtmlElement,
                          url: str | None) -> dict[str, tuple[Any, str]]:
    """Metadata fields with their source: JSON-LD first, then meta/OpenGraph, then trafilatura. A source that fails on
    a malformed page gives no field; the others still do."""
    found: dict[str, tuple[Any, str]] = {}
    for source_fields, source in (
        *_safe(lambda: [(_jsonld_fields(tree), "jsonld")], []),
        *_safe(lambda: _meta_fields(tree), []),
    ):
        for name, value in source_fields.items():
            if name not in found and value not in (None, "", []):
                found[name] = (value, source)
    if url and "url" not in found:
        found["url"] = (url, "input")
    missing = set(TRAFILATURA_FALLBACK_FIELDS) - found.keys()
    if missing:
        outlet = found.get("outlet", (None, ""))[0]
        for name, value in _safe(lambda: _trafilatura_fields(tree, missing, outlet), {}).items():
            if value not in (None, "", []):
                found[name] = (value, "trafilatura")
    names = site_names(found.get("outlet", (None, ""))[0], found.get("url", (None, ""))[0])
    if "title" in found:
        title, source = found["title"]
        found["title"] = (title_without_site(title, names), source)
    if "tags" in found:
        tags, source = found["tags"]
        found["tags"] = (tags_without_site(tags, names), source)
        if not found["tags"][0]:
            del found["tags"]
    return found


def _clean_text(value: Any) -> str | None:
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str)), None)
    if not isinstance(value, str):
        return None
    return " ".join(valid_text(unescape(value)).split()) or None


def _language(value: Any) -> str | None:
    """A language tag from the page (``ingest.language_tag``), or None when the value is no language tag."""
    value = _clean_text(value)
    return language_tag(value) if value else None


# JSON-LD

def _jsonld_nodes(tree: lxml_html.HtmlElement) -> Iterator[dict]:
    """Every object of every JSON-LD script, flattening lists and ``@graph``."""
    for script in tree.iter("script"):
        if "ld+json" not in (script.get("type") or "").lower():
            continue
        try:
            data = json.loads(script.text or "", strict=False)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than Python's stack
            continue
        stack = [data]
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(reversed(item))
            elif isinstance(item, dict):
                yield item
                if "@graph" in item:
                    stack.append(item["@graph"])
                if isinstance(item.get("mainEntity"), (dict, list)):
                    stack.append(item["mainEntity"])


def _types(node: dict) -> set[str]:
    value = node.get("@type")
    values = value if isinstance(value, list) else [value]
    return {v.rsplit("/", 1)[-1] for v in values if isinstance(v, str)}


def _jsonld_fields(tree: lxml_html.HtmlElement) -> dict[str, Any]:
    """Fields of the most specific article node of the page's JSON-LD."""
    nodes = list(_jsonld_nodes(tree))
    ranked = [n for n in nodes if _types(n) & STRICT_ARTICLE_TYPES] or \
        [n for n in nodes if _types(n) & ARTICLE_TYPES]
    fields: dict[str, Any] = {}
    listing = next((t for n in nodes for t in _types(n) & LISTING_TYPES), None)
    if ranked:
        fields["page_type"] = sorted(_types(ranked[0]) & ARTICLE_TYPES)[0]
    elif listing:
        fields["page_type"] = listing
    for node in ranked:
        publisher = node.get("publisher")
        candidate = {
            "title": _clean_text(node.get("headline") or node.get("name")),
            "authors": clean_authors(_jsonld_person_names(node.get("author"))),
            "published_date": parse_date(_clean_text(node.get("datePublished"))
                                         or _clean_text(node.get("dateCreated"))),
            "outlet": _clean_text(publisher.get("name")) if isinstance(publisher, dict) else None,
            "section": _clean_text(node.get("articleSection")),
            "tags": split_tags(node.get("keywords")),
            "summary": _clean_text(node.get("description")),
            "language": _language(node.get("inLanguage")),
            "url": _clean_text(node.get("url")),
        }
        for name, value in candidate.items():
            if value and name not in fields:
                fields[name] = value
    if "outlet" not in fields:
        site = next((n for n in nodes if _types(n) & {"WebSite", "NewsMediaOrganization"}), None)
        if site:
            fields["outlet"] = _clean_text(site.get("name"))
    return fields


def _jsonld_person_names(author: Any) -> list[str]:
    """Names of the JSON-LD authors that are people (organizations are left out)."""
    items = author if isinstance(author, list) else [author]
    names = []
    for item in items:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict) and not (_types(item) & {"Organization", "NewsMediaOrganization"}):
            name = _clean_text(item.get("name"))
            if name:
                names.append(name)
    return names


# meta / OpenGraph

def _meta_index(tree: lxml_html.HtmlElement) -> dict[str, list[str]]:
    """All meta tag contents keyed by lower-cased name/property/itemprop/http-equiv."""
    index: dict[str, list[str]] = {}
    for meta in tree.iter("meta"):
        content = meta.get("content")
        if not content or not content.strip():
            continue
        for attribute in ("property", "name", "itemprop", "http-equiv"):
            key = meta.get(attribute)
            if key:
                index.setdefault(key.strip().lower(), []).append(content.strip())
    return index


def _meta_fields(tree: lxml_html.HtmlElement) -> list[tuple[dict[str, Any], str]]:
    """Per source ("og", "meta", "html"), the fields found in the page's head."""
    index = _meta_index(tree)
    by_source: dict[str, dict[str, Any]] = {"og": {}, "meta": {}, "html": {}}

    def first(keys, name, convert=_clean_text):
        for source, key in keys:
            for raw in index.get(key, ()):
                value = convert(raw)
                if value and name not in by_source[source]:
                    by_source[source][name] = value
                    break

    first(_META_TITLE, "title")
    first(_META_DATE, "published_date", parse_date)
    first(_META_SECTION, "section")
    first(_META_OUTLET, "outlet")
    first(_META_SUMMARY, "summary")
    first(_META_LANGUAGE, "language", _language)
    first(_META_URL, "url")
    og_type = (index.get("og:type") or [None])[0]
    if og_type:
        by_source["og"]["page_type"] = og_type.lower()
    for source, key in _META_AUTHOR:
        authors = clean_authors(index.get(key, []), min_words=NAME_MIN_WORDS)
        if authors and "authors" not in by_source[source]:
            by_source[source]["authors"] = authors
    for source, key in _META_TAGS:
        tags = [tag for raw in index.get(key, []) for tag in split_tags(raw)]
        if tags and "tags" not in by_source[source]:
            by_source[source]["tags"] = list(dict.fromkeys(tags))

    html_fields = by_source["html"]
    title = tree.find("head/title")
    if title is not None:
        html_fields["title"] = _clean_text(title.text_content())
    html_fields["language"] = _language(tree.get("lang") or tree.get("xml:lang"))
    for link in tree.iter("link"):
        if (link.get("rel") or "").lower() == "canonical" and link.get("href"):
            html_fields["url"] = link.get("href").strip()
            break
    return [(by_source["og"], "og"), (by_source["meta"], "meta"), (html_fields, "html")]


def _trafilatura_fields(tree: lxml_html.HtmlElement, missing: set[str],
                        outlet: str | None) -> dict[str, Any]:
    """Trafilatura's own metadata for the ``missing`` fields only (visible bylines, dates)."""
    fields: dict[str, Any] = {}
    if "title" in missing:
        fields["title"] = _clean_text(trafilatura_metadata.extract_title(tree))
    if "authors" in missing:
        author = visible_author(tree)
        fields["authors"] = clean_authors(author.split(";") if author else [], outlet,
                                           min_words=NAME_MIN_WORDS)
    if "published_date" in missing:
        found = find_date(copy.deepcopy(tree), original_date=True, extensive_search=False,
                          outputformat="%Y-%m-%d", max_date=_LATEST_SEARCHED_DATE)
        fields["published_date"] = parse_date(found)
    if "outlet" in missing:
        sitename = _clean_text(trafilatura_metadata.extract_sitename(tree))
        if sitename and len(sitename.split()) <= MAX_OUTLET_WORDS:
            fields["outlet"] = sitename
    return fields


#: trafilatura's sections that hold no byline (``AUTHOR_DISCARD_XPATHS``), as a test of an element and its
#: ancestors: its first expression's predicates on ``ancestor-or-self``, then its ``//time|//figure``.
_AUTHOR_DISCARDED = etree.XPath(
    "ancestor-or-self::*" + AUTHOR_DISCARD_XPATHS[0].path.strip().removeprefix(".//*")
    + " | ancestor-or-self::time | ancestor-or-self::figure", namespaces={"re": "http://exslt.org/regular-expressions"})
#: The longest byline trafilatura accepts, in characters (``extract_author``).
_AUTHOR_MAX_CHARS = 120


def visible_author(tree: lxml_html.HtmlElement) -> str | None:
    """trafilatura's ``metadata.extract_author`` of ``tree`` (left as it is) without its copy of the whole tree
    pruned of the sections that hold no byline: the candidates of its ``AUTHOR_XPATHS``
    (:func:`_author_candidates`) that lie in no such section, in its order, each read from a pruned copy of
    itself. Their predicates test an element's own tag and attributes, which the pruning leaves as they are."""
    for candidates in _author_candidates(tree):
        for element in candidates:
            if _AUTHOR_DISCARDED(element):
                continue
            content = trim(" ".join(prune_unwanted_nodes(copy.deepcopy(element), AUTHOR_DISCARD_XPATHS).itertext()))
            if content and 2 < len(content) < _AUTHOR_MAX_CHARS:
                return normalize_authors(None, content)
    return None


#: trafilatura's ``AUTHOR_XPATHS`` (its specific, generic and last-resort byline elements) as Python tests.
_AUTHOR_TAGS = (frozenset({"a", "address", "div", "link", "p", "span", "strong"}),
                frozenset({"a", "div", "h3", "h4", "p", "span"}))
_AUTHOR_CLASS_RE = (re.compile("author-?name|AuthorName|authorName"),
                    re.compile("author|channel-name|zuozhe|bianji|xiaobian|submitted-by|posted-by|journalist-name"),
                    re.compile("[Aa]uthor|screenname|writer|[Bb]yline"))
_AUTHOR_ID_RE = (re.compile("author|zuozhe|bianji|xiaobian"), re.compile("[Aa]uthor"))


def _author_candidates(tree: lxml_html.HtmlElement) -> tuple[list, list, list]:
    """The elements each of trafilatura's ``AUTHOR_XPATHS`` selects in ``tree``, in document order, from one
    pass over its elements (the XPath tests, with their regular expressions called back in Python, cost
    about three times as much)."""
    found: tuple[list, list, list] = ([], [], [])
    for element in tree.iter(etree.Element):
        tag = element.tag
        css, ident, itemprop = element.get("class"), element.get("id"), element.get("itemprop")
        author_prop = itemprop is not None and "author" in itemprop
        if tag == "author" or tag in _AUTHOR_TAGS[0] and (
                element.get("rel") == "author" or ident == "author" or css == "author" or itemprop == "author name"
                or element.get("data-testid") in ("AuthorCard", "AuthorURL")
                or css is not None and _AUTHOR_CLASS_RE[0].search(css)
                or any(child.tag == "rel" and "".join(child.itertext()) == "me" for child in element)):
            found[0].append(element)
        if tag in _AUTHOR_TAGS[1] and (
                css in ("byline", "username", "byl", "BBL") or author_prop
                or ident is not None and _AUTHOR_ID_RE[0].search(ident) or css is not None and _AUTHOR_CLASS_RE[1].search(css)):
            found[1].append(element)
        if ("Byline" in (element.get("data-component") or "") or author_prop
                or ident is not None and _AUTHOR_ID_RE[1].search(ident) or css is not None and _AUTHOR_CLASS_RE[2].search(css)):
            found[2].append(element)
    return found
