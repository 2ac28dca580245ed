"""The single main-content extractors the HTML path chooses between, run on one parsed tree.

Each returns plain text with one block (paragraph, heading, list item, table row) per line:
trafilatura in its default and ``favor_precision`` settings (both without the fallback extractors it
compares its own text with: readability-lxml runs on its own), readability-lxml and resiliparse.
trafilatura and readability-lxml work on copies of the tree parsed once by ``html.parse_html``;
resiliparse parses the page itself (its own parser, about 30 times faster than lxml). Where the
libraries spend time on work that gives nothing more, it is done once or in a cheaper way with the
same results: trafilatura's two settings share one pruned copy of the page, its XPath selections that
call regexes back for every element are made by Python tests (each compared with its XPath in the
tests), and readability-lxml's per-element tests are cached or read from the tree.
``page_blocks`` walks the whole page once for its text (one block per line) and the DOM inputs of each
line. How the texts agree, and which one a page keeps, is ``agreement.py``'s.
"""
from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache

import numpy as np

import trafilatura
from lxml import etree, html as lxml_html
from lxml.html.defs import link_attrs
from lxml_html_clean import Cleaner
from readability import Document
from readability.cleaners import html_cleaner
from readability.readability import REGEXES, clean as readability_clean
from resiliparse.extract.html2text import extract_plain_text
from trafilatura.baseline import _spaced_text, baseline
from trafilatura.core import ESCALATION_ACCEPT_RATIO, ESCALATION_MAX_LENGTH, ESCALATION_PAGE_SHARE, _forum_thread_page, _recall_retry
from trafilatura.htmlprocessing import convert_tags, tree_cleaning
from trafilatura.main_extractor import extract_content
from trafilatura.settings import _COOKIE_CONSENT_RE, Extractor
from trafilatura.xml import delete_element, xmltotxt
from trafilatura.xpaths import _COMMENTS_CLASS, _COMMENTS_ID

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


#: The two trafilatura settings the HTML path runs: name, ``favor_precision``.
_TRAFILATURA_SETTINGS = (("trafilatura", False), ("trafilatura-precision", True))


def trafilatura_texts(tree: lxml_html.HtmlElement, url: str | None = None, fast: bool = True) -> dict[str, str]:
    """trafilatura's main content of ``tree`` (left as it is) in its default and ``favor_precision`` settings;
    ``fast``: without the fallback extractors it compares its text with (its ports of readability and
    jusText), as the HTML path runs it. A setting that fails gives "".

    Fast, the steps of ``trafilatura.bare_extraction`` for these options run with the work common to both
    settings done once: one copy of the tree, pruned of trafilatura's raw-tree and comment sections
    (:func:`raw_prune_selections`, :func:`comment_sections`); not fast, ``bare_extraction`` runs once per
    setting."""
    texts = dict.fromkeys(name for name, _ in _TRAFILATURA_SETTINGS)
    if fast:
        raw = copy.copy(tree)
        is_forum = _forum_thread_page(raw)
        for selected in raw_prune_selections(raw):
            _delete(selected)
    for name, precision in _TRAFILATURA_SETTINGS:
        try:
            if not fast:
                document = trafilatura.bare_extraction(tree, url=url, favor_precision=precision, fast=False,
                                                       **_TRAFILATURA_OPTIONS)
                texts[name] = document.text.strip() if document is not None and document.text else ""
                continue
            if precision == is_forum:  # on forum threads only the precision setting drops comment sections
                _delete(comment_sections(raw, lists=True))
            texts[name] = _trafilatura_sequence(raw, url, precision, is_forum)
        except Exception as err:  # noqa: BLE001 - one setting failing must not stop the other
            LOGGER.warning("%s failed: %s", name, brief(err))
            texts[name] = ""
    return texts


def brief(error: Exception) -> str:
    """An error as one line for a log or a reject's detail: its type and at most 300 characters of its message's
    first line (an extractor's error can hold the whole page)."""
    message = str(error).strip()
    return f"{type(error).__name__}: {message.splitlines()[0][:300]}" if message else type(error).__name__


#: trafilatura's ``RAW_TREE_PRUNE_XPATH``, ``REMOVE_COMMENTS_XPATH`` and ``REMOVE_COMMENTS_AND_LISTS_XPATH`` as
#: Python tests of an element's tag, id and class (their XPath's regex tests call back into Python for
#: every element they reach).
_RAW_PRUNE_TAGS = frozenset({"div", "section", "aside"})
_APPENDED_RE = re.compile("mvp-post-add-(?:box|wrap)|infinite-?scroll")
_APPENDED_THEME_RE = re.compile("mvp-post-add-(?:box|wrap)")
_COMMENT_TAGS = frozenset({"div", "list", "section", "details"})
_COMMENT_ID_RE = re.compile(f"^(?:{_COMMENTS_ID}|disqus_thread|dsq-comments)")
_COMMENT_LIST_ID_RE = re.compile(f"^(?:{_COMMENTS_ID})")
_COMMENT_CLASS_RE = re.compile(_COMMENTS_CLASS)


def _matches(pattern: re.Pattern, value: str | None) -> bool:
    return value is not None and pattern.search(value) is not None


def raw_prune_selections(tree: lxml_html.HtmlElement) -> Iterator[list[lxml_html.HtmlElement]]:
    """The elements each expression of trafilatura's ``RAW_TREE_PRUNE_XPATH`` selects in ``tree``, in document
    order, each read after the elements of the one before were deleted: containers of appended articles
    (infinite scroll; without the page's ``h1`` unless a known theme's), then share-button containers."""
    yield [e for e in tree.iterdescendants(*_RAW_PRUNE_TAGS)
           if (_matches(_APPENDED_RE, e.get("id")) or _matches(_APPENDED_RE, e.get("class")))
           and (e.find(".//h1") is None or _matches(_APPENDED_THEME_RE, e.get("id"))
                or _matches(_APPENDED_THEME_RE, e.get("class")))]
    yield [e for e in tree.iterdescendants(*_RAW_PRUNE_TAGS) if "elementor-share-buttons" in (e.get("class") or "")]


def comment_sections(tree: lxml_html.HtmlElement, lists: bool) -> list[lxml_html.HtmlElement]:
    """The elements trafilatura's ``REMOVE_COMMENTS_AND_LISTS_XPATH`` (``lists``) or ``REMOVE_COMMENTS_XPATH``
    selects in ``tree``, in document order: comment sections by id or class, and with ``lists`` comment
    lists (``ol``, ``ul``) by an id or class of their own."""
    tags = _COMMENT_TAGS | {"ol", "ul"} if lists else _COMMENT_TAGS
    selected = []
    for element in tree.iterdescendants(*tags):
        ident, css = element.get("id"), element.get("class")
        if not (_matches(_COMMENT_ID_RE, ident) or _matches(_COMMENT_CLASS_RE, css)):
            continue
        if element.tag in ("ol", "ul") and not (_matches(_COMMENT_LIST_ID_RE, ident) or _matches(_COMMENT_CLASS_RE, css)):
            continue
        selected.append(element)
    return selected


#: trafilatura's ``BASIC_CLEAN_XPATH`` (what its whole-page text leaves out) as Python tests.
_BASIC_CLEAN_TAGS = frozenset({"aside", "fencedframe", "footer", "script", "style", "svg", "template"})
_CONSENT_RE = re.compile(_COOKIE_CONSENT_RE, re.IGNORECASE)


def basic_clean_selection(tree: lxml_html.HtmlElement) -> list[lxml_html.HtmlElement]:
    """The elements trafilatura's ``BASIC_CLEAN_XPATH`` selects in ``tree``, in document order: asides,
    footers, scripts, styles, embedded frames and graphics, ``div`` elements whose class or id holds
    "footer", cookie-consent banners by class or id."""
    selected = []
    for element in tree.iterdescendants(etree.Element):
        tag, css, ident = element.tag, element.get("class"), element.get("id")
        if (tag in _BASIC_CLEAN_TAGS or _matches(_CONSENT_RE, css) or _matches(_CONSENT_RE, ident)
                or tag == "div" and (element.xpath("contains(@class|@id, 'footer')") if css is not None and ident is not None
                                     else "footer" in (css or ident or ""))):
            selected.append(element)
    return selected


def _whole_text_length(raw: lxml_html.HtmlElement) -> int:
    """The length of trafilatura's ``baseline.html2txt(raw)``, its cleaning's elements chosen by
    :func:`basic_clean_selection`."""
    tree = copy.copy(raw)
    body = tree.find(".//body")
    body = tree if body is None else body
    _delete(basic_clean_selection(body))
    return len(_spaced_text(body))


def _delete(elements: list[lxml_html.HtmlElement]) -> None:
    """Delete each element as trafilatura prunes (its tail kept)."""
    for element in elements:
        delete_element(element)


def _trafilatura_sequence(raw: lxml_html.HtmlElement, url: str | None, precision: bool, is_forum: bool) -> str:
    """trafilatura's text of a pruned tree: ``trafilatura.core.trafilatura_sequence`` after its raw-tree
    pruning, ``fast`` and without comments, then ``bare_extraction``'s size check and text output. The
    default setting leaves ``raw`` as it is; the ``favor_precision`` setting cleans ``raw`` itself."""
    options = Extractor(output_format="python", fast=True, precision=precision, comments=False, tables=True,
                        images=False, links=False, dedup=False, url=url, with_metadata=False)
    cleaned = convert_tags(tree_cleaning(raw if precision else copy.copy(raw), options), options, url)
    if precision and not is_forum:
        _delete(comment_sections(cleaned, lists=False))
    body, text = extract_content(cleaned, options)
    if not precision:  # the baseline rescue and the recall retry of a short text
        if len(text) < options.min_extracted_size:
            b_body, b_text, b_len = baseline(raw)
            if b_len > len(text):
                body, text = b_body, b_text
        if 0 < len(text) < ESCALATION_MAX_LENGTH and len(text) < ESCALATION_PAGE_SHARE * _whole_text_length(raw):
            r_options = copy.copy(options)
            r_options.focus = "recall"
            r_text = ""
            try:
                r_body, r_text = _recall_retry(raw, r_options, url)
            except Exception as err:  # noqa: BLE001 - as in trafilatura: a failed retry keeps the first text
                LOGGER.warning("trafilatura's recall retry failed: %s", brief(err))
            if len(r_text) >= options.min_extracted_size and len(r_text) > ESCALATION_ACCEPT_RATIO * len(text):
                body, text = r_body, r_text
    if len(text) < options.min_output_size:
        return ""
    return xmltotxt(body, options.formatting).strip()


def readability_text(tree: lxml_html.HtmlElement) -> str:
    """readability-lxml's article of ``tree`` (left as it is), one block per line."""
    summary = lxml_html.fragment_fromstring(_Readability(tree).summary(html_partial=True))
    return block_text(summary)


class _PageCleaner(Cleaner):
    """readability-lxml's page cleaner (``readability.cleaners.html_cleaner``), doing its JavaScript step
    in one pass over the elements: event handler attributes dropped, links with a script scheme
    emptied and the others stripped of surrounding spaces. lxml's ``rewrite_links`` does the same by
    testing each of 16 link attributes on every element, about a third of readability-lxml's time.
    Pages with ``object``, ``param`` or a refresh ``meta`` element, whose links lxml reads apart,
    are cleaned by lxml's own step; CSS links need no rewriting, as style attributes and elements go."""

    def __call__(self, doc: lxml_html.HtmlElement) -> None:
        elements = list(doc.iter(etree.Element))
        if any(el.tag in ("object", "param") or (el.tag == "meta" and el.get("http-equiv", "").lower() == "refresh")
               for el in elements):
            return html_cleaner(doc)
        for el in elements:
            names = el.keys()
            if not names:
                continue
            attrib = el.attrib
            for name in names:
                if name.startswith("on"):
                    del attrib[name]
                elif name in link_attrs:
                    link = attrib[name]
                    new = self._remove_javascript_link(link.strip())
                    if new != link:
                        attrib[name] = new
        return super().__call__(doc)


#: Settings of readability-lxml's cleaner that :class:`_PageCleaner` keeps (its JavaScript step it does itself).
_CLEANER_SETTINGS = ("scripts", "comments", "style", "inline_style", "links", "meta", "add_nofollow", "page_structure",
                     "processing_instructions", "embedded", "frames", "forms", "annoying_tags", "remove_tags",
                     "remove_unknown_tags", "safe_attrs_only")
_PAGE_CLEANER = _PageCleaner(**{name: getattr(html_cleaner, name) for name in _CLEANER_SETTINGS}, javascript=False)


@lru_cache(maxsize=8192)
def _unlikely_candidate(words: str) -> bool:
    """readability-lxml's test of an element's class and id words (``"class id"``) for an unlikely
    candidate, before its checks of the element's tag and relatives."""
    return bool(REGEXES["unlikelyCandidatesRe"].search(words)) and not REGEXES["okMaybeItsACandidateRe"].search(words)


def _clean_length(text: str) -> int:
    """The length of readability-lxml's ``clean(text)``; its regexes change no short text without a tab, a
    line break or two spaces in a row (most link texts), which only loses its outer spaces."""
    if len(text) < 255 and "\n" not in text and "\t" not in text and "  " not in text:
        return len(text.strip())
    return len(readability_clean(text))


#: The inline elements that readability-lxml gathers into a paragraph of a ``div``.
_INLINE_TAGS = frozenset({"a", "b", "cite", "code", "em", "font", "i", "small", "span", "strong", "sub", "sup", "u"})
#: The tags whose start (``<`` and any tag starting with these) readability-lxml's ``divToPElementsRe``
#: finds in serialised HTML, lower case.
_BLOCK_TAG_STARTS = ("blockquote", "dl", "div", "img", "ol", "p", "pre", "table", "ul")


def _holds_block(elements: Iterable[lxml_html.HtmlElement], serialised: Callable[[], bytes | str]) -> bool:
    """Whether readability-lxml's ``divToPElementsRe`` finds a tag in the HTML of ``elements`` (an element and
    its descendants, or the descendants of one), read from their tags: the serialised HTML escapes
    ``<`` in text and attribute values, so the regex only meets start tags. Where raw text could hold
    one (comments, processing instructions, ``script``, ``style``; the page parser and readability-lxml's
    cleaner drop them all) or a tag is not ASCII (where its case-insensitive match differs), the regex
    runs on ``serialised()``."""
    for element in elements:
        tag = element.tag
        if tag is etree.Entity:
            continue
        if tag in (etree.Comment, etree.ProcessingInstruction, "script", "style") or not tag.isascii():
            return bool(REGEXES["divToPElementsRe"].search(str(serialised())))
        if tag.lower().startswith(_BLOCK_TAG_STARTS):
            return True
    return False


def _top(element: lxml_html.HtmlElement) -> lxml_html.HtmlElement:
    """The outermost ancestor of ``element`` (itself if it has none)."""
    top = element
    for top in element.iterancestors():
        pass
    return top


class _Readability(Document):
    """readability-lxml's ``Document`` of a parsed page, with :class:`_PageCleaner`. Its ``_parse`` is
    readability-lxml 0.9's for a tree and no URL (hidden elements dropped, the page cleaned, ``<base>``
    resolved) on one copy of the tree: the original drops hidden elements from its input and then
    cleans a copy. The same results faster: the tests of unlikely candidates are cached by class and id
    words and skip what an earlier removal took away, link density measures text with
    :func:`_clean_length`, and ``div`` elements are tested for blocks on the tree (:func:`_holds_block`)."""

    def remove_unlikely_candidates(self) -> None:
        for elem in self.html.findall(".//*"):
            words = "{} {}".format(elem.get("class", ""), elem.get("id", ""))
            if (len(words) >= 2 and _unlikely_candidate(words) and elem.tag not in ("html", "body")
                    and _top(elem) is self.html  # not inside an element dropped already
                    and not elem.xpath("ancestor-or-self::pre | ancestor-or-self::code")
                    and not elem.xpath("descendant-or-self::main | descendant-or-self::article | "
                                       "descendant-or-self::math")):
                elem.drop_tree()

    def get_link_density(self, elem: lxml_html.HtmlElement) -> float:
        link_length = sum(_clean_length(link.text_content() or "") for link in elem.findall(".//a"))
        return float(link_length) / max(_clean_length(elem.text_content() or ""), 1)

    def transform_misused_divs_into_paragraphs(self) -> None:
        """readability-lxml's, with its test for block elements in a ``div`` or an inline child read from the
        tree (:func:`_holds_block`) instead of a regex over their serialised HTML."""
        for elem in self.tags(self.html, "div"):
            if not _holds_block(elem.iterdescendants(), lambda: b"".join(etree.tostring(s, encoding="utf-8") for s in elem)):
                elem.tag = "p"
        for elem in self.tags(self.html, "div"):
            children = list(elem)
            paragraph = None
            if elem.text and elem.text.strip():
                p = lxml_html.fragment_fromstring("<p/>")
                p.text = elem.text
                elem.text = None
                elem.insert(0, p)
                paragraph = p
            for child in children:
                if child.tag == "br":
                    paragraph = None
                    continue
                if child.tag not in _INLINE_TAGS or _holds_block(child.iter(), lambda: etree.tounicode(child, method="html")):
                    paragraph = None
                    continue
                if paragraph is None:
                    paragraph = lxml_html.fragment_fromstring("<p/>")
                    child.addprevious(paragraph)
                paragraph.append(child)
            for pos, child in reversed(list(enumerate(elem))):
                if child.tail and child.tail.strip():
                    p = lxml_html.fragment_fromstring("<p/>")
                    p.text = child.tail
                    child.tail = None
                    elem.insert(pos + 1, p)
                if child.tag == "br":
                    child.drop_tree()

    def _parse(self, input: lxml_html.HtmlElement) -> lxml_html.HtmlElement:
        doc = copy.deepcopy(input)
        self.encoding = "utf-8"
        for elem in doc.xpath("//*[@hidden]"):
            elem.drop_tree()
        for elem in doc.xpath("//*[@style]"):
            if REGEXES["displayNoneRe"].search(elem.get("style")):
                elem.drop_tree()
        _PAGE_CLEANER(doc)
        doc.resolve_base_href(handle_failures=self.handle_failures)
        return doc


def block_text(element: lxml_html.HtmlElement) -> str:
    """Visible text of ``element``, a line break around each block element, spaces squeezed."""
    return page_blocks(element)[0]


def page_text(tree: lxml_html.HtmlElement) -> str:
    """The whole page as text, every block on its own line (all furniture kept)."""
    return block_text(tree)


#: The innermost block element around a line, by kind (``dom_tag_*``; any other block is ``other``).
DOM_TAG_KINDS = {"title": "title", **{f"h{n}": "heading" for n in range(1, 7)}, "p": "p", "li": "item", "dd": "item",
                 "dt": "item", "td": "cell", "th": "cell", "blockquote": "quote", "pre": "pre", "div": "div",
                 "section": "div", "article": "div", "main": "div", "figcaption": "caption"}
_TAG_KINDS = ("title", "heading", "p", "item", "cell", "quote", "pre", "div", "caption", "other")
#: Elements a line may lie inside (the line's block or one of its ancestors: ``dom_in_*``).
DOM_CONTAINERS = ("article", "main", "aside", "nav", "footer", "header", "form", "li", "table")
#: Words of class and id attributes that mark boilerplate or content across sites (``dom_class_*``):
#: a word of an attribute of the line's block or an ancestor that starts with one of these (camelCase
#: and any non-letter split words). ``ad`` and ``ads`` must be whole words.
DOM_CLASS_WORDS = {
    "comment": ("comment", "reply", "replies", "respond", "disqus", "discussion"),
    "nav": ("nav", "menu", "breadcrumb", "pagination", "pager", "skip"),
    "footer": ("footer", "copyright", "legal"),
    "sidebar": ("sidebar", "widget", "aside", "rail"),
    "related": ("related", "recommend", "trending", "popular", "more"),
    "share": ("share", "sharing", "social", "follow", "print", "email"),
    "tags": ("tag", "categor", "topic", "keyword"),
    "byline": ("byline", "author", "meta", "dateline", "date", "posted", "timestamp"),
    "ad": ("ad", "ads", "advert", "promo", "sponsor", "banner", "outbrain", "taboola"),
    "caption": ("caption", "credit", "photo", "figure", "gallery", "image", "media"),
    "content": ("content", "article", "post", "entry", "story", "body", "text", "main"),
}
_WHOLE_WORDS = frozenset({"ad", "ads"})
_CLASS_RE = re.compile("|".join(
    f"(?P<{group}>" + "|".join(f"{word}(?![a-z])" if word in _WHOLE_WORDS else word for word in words) + ")"
    for group, words in DOM_CLASS_WORDS.items()))
_CAMEL_RE = re.compile(r"([a-z])([A-Z])")
_ATTRIBUTE_WORD_RE = re.compile(r"[a-z]+")
#: The DOM inputs of each line (:func:`page_blocks`), in order.
DOM_FEATURES = (*(f"dom_tag_{kind}" for kind in _TAG_KINDS), "dom_log_depth",
                *(f"dom_in_{name}" for name in DOM_CONTAINERS), *(f"dom_class_{group}" for group in DOM_CLASS_WORDS),
                "dom_link_share")
#: The columns of :func:`page_blocks`' matrix: the DOM inputs, then the number of the element holding
#: the line's block (its parent; 0 for the root), which groups the page's lines for the model's stage 2.
DOM_COLUMNS = (*DOM_FEATURES, "dom_parent")
_KIND_OF = {tag: _TAG_KINDS.index(kind) for tag, kind in DOM_TAG_KINDS.items()}
_OTHER_KIND = _TAG_KINDS.index("other")
_N_TAGS, _N_CONTAINERS = len(_TAG_KINDS), len(DOM_CONTAINERS)
_CONTAINER_BIT = {name: 1 << i for i, name in enumerate(DOM_CONTAINERS)}
_CLASS_BIT = {group: 1 << (_N_CONTAINERS + i) for i, group in enumerate(DOM_CLASS_WORDS)}
_N_FLAGS = _N_CONTAINERS + len(DOM_CLASS_WORDS)
_ENTER, _TAIL, _CLOSE = range(3)


@lru_cache(maxsize=8192)
def _attribute_flags(value: str) -> int:
    """The ``DOM_CLASS_WORDS`` groups (as bits) of a class and id value."""
    flags = 0
    for word in _ATTRIBUTE_WORD_RE.findall(_CAMEL_RE.sub(r"\1 \2", value).lower()):
        found = _CLASS_RE.match(word)
        if found:
            flags |= _CLASS_BIT[found.lastgroup]
    return flags


def page_blocks(element: lxml_html.HtmlElement) -> tuple[str, np.ndarray]:
    """Visible text of ``element``, a line break around each block element, spaces squeezed, and the DOM
    columns (``DOM_COLUMNS``) of each of its lines, one row per line, read in the same walk: the kind
    of the line's innermost block element and its depth, the elements it lies inside, the class and id
    words of that block and its ancestors, the share of its characters inside links, and the number
    (in document order) of the element that holds its block."""
    lines: list[str] = []
    contexts: list[tuple[int, int, int, int]] = []  # (tag kind, depth, flags, parent) of each line's block
    link_shares: list[float] = []
    pieces: list[str] = []
    linked = [0]  # characters (not spaces) of the current line inside links

    def close(context: tuple[int, int, int, int]) -> None:  # called when ``pieces`` holds text
        line = " ".join("".join(pieces).split())
        pieces.clear()
        if line:
            lines.append(line)
            contexts.append(context)
            link_shares.append(min(1.0, linked[0] / max(1, len(line) - line.count(" "))))
        linked[0] = 0

    def add(text: str, context: tuple[int, int, int, int], in_link: bool) -> None:
        if not in_link and "\n" not in text:  # most text: part of the current line
            pieces.append(text)
            return
        for k, piece in enumerate(text.split("\n")):
            if k and pieces:
                close(context)
            pieces.append(piece)
            if in_link:
                linked[0] += len("".join(piece.split()))

    root = (_OTHER_KIND, 0, 0, 0)
    elements = 0  # elements entered so far
    # A walk in document order without recursion (a page may nest elements thousands deep): each step enters an
    # element (_ENTER), adds the tail text after one (_TAIL) or closes a block's last line (_CLOSE).
    steps: list[tuple] = [(_ENTER, element, root, 0, 0, False, 0)]
    while steps:
        step = steps.pop()
        if step[0] != _ENTER:
            if step[0] == _TAIL:
                add(step[1], step[2], step[3])
            elif pieces:
                close(step[1])
            continue
        _, node, context, flags, depth, in_link, parent = step
        tag = node.tag
        if not isinstance(tag, str) or tag in _HIDDEN_TAGS:
            continue
        elements += 1
        number = elements
        words = node.get("class"), node.get("id")
        if words != (None, None):
            flags |= _attribute_flags(f"{words[0] or ''} {words[1] or ''}")
        if tag in _CONTAINER_BIT:
            flags |= _CONTAINER_BIT[tag]
        in_link = in_link or tag == "a"
        if tag in _BLOCK_TAGS:
            if pieces:
                close(context)
            context = (_KIND_OF.get(tag, _OTHER_KIND), depth, flags, parent)
            steps.append((_CLOSE, context))
        if node.text:
            add(node.text, context, in_link)
        for child in reversed(node):
            if child.tail:
                steps.append((_TAIL, child.tail, context, in_link))
            steps.append((_ENTER, child, context, flags, depth + 1, in_link, number))
    if pieces:
        close(root)
    return "\n".join(lines), _dom_rows(contexts, link_shares)


def _dom_rows(contexts: list[tuple[int, int, int, int]], link_shares: list[float]) -> np.ndarray:
    """The ``DOM_COLUMNS`` matrix of lines read as (tag kind, depth, flags, parent) and link share."""
    rows = np.zeros((len(contexts), len(DOM_COLUMNS)))
    if not contexts:
        return rows
    kinds, depths, flags, parents = (np.array(column, dtype=np.int64) for column in zip(*contexts))
    rows[np.arange(len(kinds)), kinds] = 1.0
    rows[:, _N_TAGS] = np.log1p(depths)
    rows[:, _N_TAGS + 1:_N_TAGS + 1 + _N_FLAGS] = (flags[:, None] >> np.arange(_N_FLAGS)) & 1
    rows[:, -2] = link_shares
    rows[:, -1] = parents
    return rows


def resiliparse_text(html: str) -> str:
    """resiliparse's main content of the page source."""
    return extract_plain_text(html, main_content=True, alt_texts=False, noscript=False,
                              links=False, form_fields=False).strip()


def extractor_texts(html: str, tree: lxml_html.HtmlElement, url: str | None = None, fast: bool = True) -> dict[str, str]:
    """Every extractor's text of one page (trafilatura ``fast`` or not: :func:`trafilatura_texts`); an
    extractor that fails gives an empty text."""
    steps = {
        ("trafilatura", "trafilatura-precision"): lambda: trafilatura_texts(tree, url, fast=fast),
        ("readability",): lambda: {"readability": readability_text(tree)},
        ("resiliparse",): lambda: {"resiliparse": resiliparse_text(html)},
    }
    texts = {}
    for names, step in steps.items():
        try:
            texts.update(step())
        except Exception as err:  # noqa: BLE001 - one extractor failing must not stop the page
            LOGGER.warning("%s failed: %s", " and ".join(names), brief(err))
            texts.update(dict.fromkeys(names, ""))
    return texts
