"""Behaviour of the HTML extraction step on small hand-made pages."""
import copy
import datetime as dt
import socket

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from lxml import etree, html as lxml_html
import trafilatura
from readability import Document
from readability.cleaners import html_cleaner
from readability.readability import clean as readability_clean
from trafilatura import metadata as trafilatura_metadata
from trafilatura.baseline import html2txt
from trafilatura.settings import BASIC_CLEAN_XPATH
from trafilatura.xpaths import AUTHOR_XPATHS, RAW_TREE_PRUNE_XPATH, REMOVE_COMMENTS_AND_LISTS_XPATH, REMOVE_COMMENTS_XPATH

from commentary.clean import extractors, html
from commentary.clean.agreement import agreement, consensus_text, covered_share, held_elsewhere
from commentary.clean.dates import parse_date
from commentary.clean.extractors import DOM_COLUMNS, DOM_FEATURES, extractor_texts, page_blocks, page_text
from commentary.clean.html import extract_html, extract_html_shard, parse_html, select_blocks
from commentary.clean.model import EXTRACTORS
from commentary.clean.people import clean_authors
from commentary.clean.text import rule_lines, with_kept

PROSE = (
    "The council voted on Tuesday to expand the night bus network after months of "
    "complaints from shift workers who said the last trains left them stranded downtown. "
)


def article_page(head: str = "", body_extra: str = "", title: str = "Night buses return") -> str:
    paragraphs = "".join(f"<p>{PROSE}Paragraph {i} adds detail number {i}.</p>" for i in range(6))
    return f"""<html lang="en"><head><title>{title} | The Courier</title>{head}</head>
<body><nav><a href="/">Home</a> <a href="/news">News</a></nav>
<article><h1>{title}</h1>{paragraphs}{body_extra}</article>
<footer><p>Copyright 2024 The Courier</p></footer></body></html>"""


JSONLD_GRAPH = """<script type="application/ld+json">{"@context": "https://schema.org",
 "@graph": [
  {"@type": "WebSite", "name": "Courier Website"},
  {"@type": "WebPage", "name": "Generic page name"},
  {"@type": ["NewsArticle"], "headline": "Night buses return to the city",
   "author": [{"@type": "Person", "name": "By Jane Roe and John Doe"},
              {"@type": "Organization", "name": "Courier Staff"}],
   "datePublished": "2024-03-05T08:00:00+01:00",
   "publisher": {"@type": "Organization", "name": "The Courier"},
   "articleSection": ["Transport"], "keywords": "buses, night, transport"}
 ]}</script>"""

OPENGRAPH = """<meta property="og:title" content="OG title">
<meta property="og:site_name" content="Courier OG">
<meta property="article:published_time" content="2023-01-02">
<meta property="article:section" content="City">
<meta property="article:tag" content="buses"><meta property="article:tag" content="city">
<meta name="author" content="Alex Smith">"""


def test_jsonld_graph_wins_over_opengraph_and_records_sources():
    result = extract_html(article_page(head=JSONLD_GRAPH + OPENGRAPH))
    md = result.metadata
    assert md["title"] == ("Night buses return to the city", "jsonld")
    assert md["authors"] == (["Jane Roe", "John Doe"], "jsonld")
    assert md["published_date"] == (dt.date(2024, 3, 5), "jsonld")
    assert md["outlet"] == ("The Courier", "jsonld")
    assert md["section"] == ("Transport", "jsonld")
    assert md["tags"] == (["buses", "night", "transport"], "jsonld")
    assert md["language"] == ("en", "html")


def test_opengraph_and_meta_are_used_without_jsonld():
    md = extract_html(article_page(head=OPENGRAPH), url="https://example.org/a").metadata
    assert md["title"] == ("OG title", "og")
    assert md["outlet"] == ("Courier OG", "og")
    assert md["published_date"] == (dt.date(2023, 1, 2), "og")
    assert md["tags"] == (["buses", "city"], "og")
    assert md["authors"] == (["Alex Smith"], "meta")
    assert md["url"] == ("https://example.org/a", "input")


@pytest.mark.parametrize("bad", [
    '<meta property="article:published_time" content="01 Jan 99999999999999999999 00:00">',
    '<script type="application/ld+json">' + "[" * 100_000 + "]" * 100_000 + "</script>",
])
def test_one_malformed_metadata_value_loses_no_other_field(bad):
    md = extract_html(article_page(head=JSONLD_GRAPH + bad)).metadata
    assert md["title"] == ("Night buses return to the city", "jsonld")
    assert md["published_date"] == (dt.date(2024, 3, 5), "jsonld")
    assert md["language"] == ("en", "html")


@pytest.mark.parametrize("junk", [
    "Email the author", "3 hours ago", "Staff", "https://facebook.com/someone",
    "news@example.org", "By", "Editorial Staff", "The Associated Press",
])
def test_junk_meta_author_is_dropped(junk):
    page = article_page(head=f'<meta name="author" content="{junk}">')
    assert "authors" not in extract_html(page).metadata


def test_author_strings_are_split_and_stripped():
    assert clean_authors(["By JANE ROE, John Doe & Mary de Souza"]) == [
        "Jane Roe", "John Doe", "Mary de Souza"]
    assert clean_authors(["Tom Krisher, AP Auto Writer"]) == ["Tom Krisher"]
    assert clean_authors(["The Russian and Syrian defense ministries"]) == []
    assert clean_authors(["Rmb"], min_words=2) == []


@pytest.mark.parametrize("raw, expected", [
    ("2019-11-18T15:30:00-05:00", dt.date(2019, 11, 18)),
    ("2019/11/18", dt.date(2019, 11, 18)),
    ("20191118", dt.date(2019, 11, 18)),
    ("Mon, 18 Nov 2019 10:00:00 GMT", dt.date(2019, 11, 18)),
    ("November 18th, 2019", dt.date(2019, 11, 18)),
    ("18 Nov 2019", dt.date(2019, 11, 18)),
    ("0001-01-01", None),
    ("2019-02-30", None),
    ("yesterday", None),
    ("01 Jan 99999999999999999999 00:00", None),  # beyond any datetime
    ("2099-12-31T23:00:00", dt.date(2099, 12, 31)),  # fixed bounds, whatever the day of the run
    ("2100-01-01", None),
])
def test_parse_date(raw, expected):
    assert parse_date(raw) == expected


def test_a_date_only_htmldate_finds_is_bounded_by_fixed_years_not_by_the_day_of_the_run():
    paragraphs = "".join(f"<p>The council voted on Tuesday to expand the night bus network, paragraph {i}.</p>" for i in range(6))
    for written, expected in (("2031-06-01T08:00:00", dt.date(2031, 6, 1)), ("2099-12-31T22:00:00", dt.date(2099, 12, 31))):
        tree = parse_html(f"<html><head><title>Night buses</title></head><body><article>"
                               f"<time datetime='{written}'>the day</time>{paragraphs}</article></body></html>")
        assert html.extract_page_metadata(tree, None)["published_date"] == (expected, "trafilatura")


@pytest.mark.parametrize("head, field, expected", [
    # Words that mark page furniture in visible bylines mark it in author metadata too.
    ('<meta name="author" content="Share Article">', "authors", None),
    ('<meta name="author" content="Jane Doe, Share Story">', "authors", (["Jane Doe"], "meta")),
    # Tags are separated as in tag lines: by | too, and a hashtag's # is no part of the tag.
    ('<meta name="keywords" content="transit|night buses">', "tags", (["transit", "night buses"], "meta")),
    ('<meta name="keywords" content="#transit #city">', "tags", (["transit", "city"], "meta")),
    # A date written in words inside a longer value is read as in dateline lines.
    ('<meta name="date" content="Posted March 5, 2024">', "published_date", (dt.date(2024, 3, 5), "meta")),
])
def test_metadata_fields_read_as_in_visible_lines(head, field, expected):
    assert extract_html(article_page(head=head)).metadata.get(field) == expected


@pytest.mark.parametrize("title, outlet, url, expected", [
    ("Night buses return | The Courier", "The Courier", None, "Night buses return"),
    ("Courier News - City - Night buses return - Courier", None, "https://www.courier-news.example/a", "City - Night buses return - Courier"),
    ("Night buses return | Courier.com", None, "https://www.courier.com/a", "Night buses return"),
    ("COURIER · Night buses return", None, "https://courier.example/a", "Night buses return"),
    ("Night buses - a return", None, "https://courier.example/a", "Night buses - a return"),  # no site name in it
    ("The Courier", "Courier", "https://courier.example/a", "The Courier"),  # nothing else would be left
    ("Night buses return | Courier", None, "http://[::1", "Night buses return | Courier"),  # a canonical link that is no URL
])
def test_the_title_loses_the_site_name_at_its_ends(title, outlet, url, expected):
    head = f'<meta property="og:title" content="{title}">' + (f'<meta property="og:site_name" content="{outlet}">' if outlet else "")
    assert extract_html(article_page(head=head), url=url).metadata["title"] == (expected, "og")


def test_tags_lose_the_site_name_and_domain_names():
    head = ('<meta property="og:site_name" content="The Courier"><link rel="canonical" href="https://www.courier-news.example/a">'
            '<meta name="keywords" content="courier, courier-news.example, www.courier-news.example, Courier News, night buses, '
            'The Courier, UBI.FR, transport">')
    assert extract_html(article_page(head=head)).metadata["tags"] == (["night buses", "UBI.FR", "transport"], "meta")
    only_site = '<meta name="keywords" content="The Courier, courier.example">'
    assert "tags" not in extract_html(article_page(head=only_site), url="https://courier.example/a").metadata


def test_text_has_one_block_per_line_and_no_repeated_title():
    page = article_page(body_extra="<h2>What changes</h2><ul><li>Route 5 runs every twenty minutes after midnight.</li>"
                                   "<li>Route 9 adds stops at both hospitals and the airport.</li></ul>")
    lines = [line for line in extract_html(page).text.splitlines() if line.strip()]
    assert lines[0].startswith("The council voted")
    assert "What changes" in lines
    # each list item on a line of its own, with or without the list marker that an extractor writes
    assert any(line.removeprefix("- ").startswith("Route 5") for line in lines)
    assert not any("Route 5" in line and "Route 9" in line for line in lines)
    assert not any("Copyright" in line or line == "Home" for line in lines)


def test_listing_page_is_flagged_and_article_is_not():
    items = "".join(
        f'<li><a href="/story/{i}">Headline number {i} about the city</a></li>' for i in range(40))
    listing = f"<html><head><title>News</title></head><body><h1>Latest</h1><ul>{items}</ul></body></html>"
    assert extract_html(listing).not_an_article.startswith("listing or index page")
    assert extract_html(article_page()).not_an_article is None


def test_a_short_post_beside_a_long_link_sidebar_is_no_listing():
    # one paragraph of article, while most of the page's words are the blog's sidebar links
    sidebar = "".join(f'<li><a href="/{i}">Archive link {i} of the blog</a></li>' for i in range(40))
    post = ("<p>The night buses came back this week after a long winter without them, and the riders we met on the "
            "first run said the new timetable finally fits the shifts they work at the hospital and the port.</p>")
    page = (f"<html><head><title>Night buses | A blog</title></head><body><div class='post'><h1>Night buses</h1>"
            f"{post}</div><aside><ul>{sidebar}</ul></aside></body></html>")
    extraction = extract_html(page)
    assert "night buses came back" in extraction.text
    assert extraction.not_an_article is None
    # the same sidebar with a list of post links instead of the post is a listing
    links = "".join(f'<li><a href="/post/{i}">Post number {i} on the blog</a></li>' for i in range(12))
    listing = page.replace(post, f"<ul>{links}</ul>")
    assert extract_html(listing).not_an_article.startswith("listing or index page")


@pytest.mark.parametrize("wrapper", ["noscript", "object"])
def test_a_short_article_the_parser_leaves_without_a_body_is_no_listing(wrapper):
    # malformed pages whose text lxml keeps inside <head>: no body to measure links in, and the text is prose
    prose = "".join(f"<p>{PROSE}Paragraph {i} adds detail number {i}.</p>" for i in range(2))
    extraction = extract_html(f"<html><head><title>Night buses</title><{wrapper}>{prose}</{wrapper}></head></html>")
    assert extraction.text.startswith("The council voted")
    assert extraction.not_an_article is None


FEED_ITEMS = "".join(f"<item><title>Night buses, part {i}</title><link>https://example.org/{i}</link>"
                     f"<description>{PROSE}</description></item>" for i in range(6))


@pytest.mark.parametrize(("feed", "detail"), [
    (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Courier</title>{FEED_ITEMS}</channel></rss>',
     "an RSS feed saved as HTML"),
    ('<?xml version="1.0"?>\n<!-- generator -->\n<feed xmlns="http://www.w3.org/2005/Atom"><title>Courier</title>'
     + FEED_ITEMS.replace("item>", "entry>").replace("description>", "summary>") + "</feed>", "an Atom feed saved as HTML"),
    ('<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">'
     f"<channel><title>Courier</title></channel>{FEED_ITEMS}</rdf:RDF>", "an RSS 1.0 feed saved as HTML"),
    ('<atom:feed xmlns:atom="http://www.w3.org/2005/Atom"><atom:title>Courier</atom:title>'
     + FEED_ITEMS.replace("<item>", "<atom:entry>").replace("</item>", "</atom:entry>") + "</atom:feed>", "an Atom feed saved as HTML"),
    ('<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
     + "".join(f"<url><loc>https://example.org/news/{i}</loc><lastmod>2024-03-0{i + 1}</lastmod></url>" for i in range(8))
     + "</urlset>", "a sitemap saved as HTML"),
])
def test_a_web_feed_or_a_sitemap_saved_as_html_is_not_an_article(feed, detail):
    assert extract_html(feed).not_an_article.startswith(detail)


def test_a_text_file_of_another_format_under_a_page_s_name_is_not_an_article():
    rows = "id,title,published\n" + "\n".join(f'{i},"Night buses, part {i}",2024-03-0{i + 1}' for i in range(8))
    assert extract_html(rows).not_an_article.startswith("delimited data saved as text")


def test_a_redirect_page_is_not_an_article_and_a_page_that_refreshes_itself_is():
    stub = ('<html><head><meta http-equiv="Refresh" content="0; URL=\'https://example.org/night-buses\'">'
            "<title>Night buses</title></head><body><p>This story has moved. If your browser does not take you there, "
            '<a href="https://example.org/night-buses">follow this link to read it</a>.</p></body></html>')
    assert extract_html(stub).not_an_article.startswith("redirect page (a meta refresh to 'https://example.org/night-buses'")
    # the address may follow the delay without "url=", as the HTML standard reads it
    bare = stub.replace("0; URL='https://example.org/night-buses'", "0; https://example.org/night-buses")
    assert extract_html(bare).not_an_article.startswith("redirect page (a meta refresh to 'https://example.org/night-buses'")
    # a short page that reloads itself (later, or at its own address), or sends only readers without scripts away
    refresh = '<meta http-equiv="Refresh" content="0; URL=\'https://example.org/night-buses\'">'
    canonical = '<link rel="canonical" href="https://example.org/night-buses">'
    for kept in ('<meta http-equiv="refresh" content="60">', '<meta http-equiv="refresh" content="2.5">',
                 '<meta http-equiv="refresh" content="600; url=https://example.org/elsewhere">',
                 canonical + '<meta http-equiv="refresh" content="0; url=/night-buses?reload=1">',
                 f"<noscript>{refresh}</noscript>"):
        assert extract_html(stub.replace(refresh, kept)).not_an_article is None
    # a page that refreshes to another address is a redirect only while its whole text is short
    assert extract_html(stub.replace("</body>", f"<p>{PROSE * 8}</p></body>")).not_an_article is None


def test_collection_page_type_flags_listing():
    head = '<script type="application/ld+json">{"@type": "CollectionPage", "name": "Topics"}</script>'
    assert extract_html(article_page(head=head)).not_an_article == "listing or index page: page type CollectionPage"


@pytest.mark.parametrize("html", [
    "", "   ", "<<<>>>", "<html><body><p>unclosed <b>bold <i>", "\x00\x01garbage\ufffe",
    "<html><head><script type='application/ld+json'>{not json</script></head></html>",
    '<?xml version="1.0" encoding="latin-1"?><html><body><p>x</p></body></html>',
])
def test_malformed_html_never_raises(html):
    result = extract_html(html)
    assert isinstance(result.text, str)


def test_entities_and_dtds_are_not_resolved_and_nothing_is_fetched(tmp_path, monkeypatch):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")

    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    page = f"""<!DOCTYPE html [
  <!ENTITY local SYSTEM "file://{secret}">
  <!ENTITY remote SYSTEM "http://example.invalid/x">
  <!ENTITY internal "EXPANDED">
]>
<html><head><title>Entities</title></head><body><article>
<p>{PROSE} Local &local; remote &remote; internal &internal; end.</p>
<p>{PROSE}</p><p>{PROSE}</p></article></body></html>"""
    result = extract_html(page, url="http://example.invalid/page")
    blob = result.text + repr(result.metadata)
    assert "TOPSECRET" not in blob
    assert "EXPANDED" not in blob
    assert "council voted" in result.text


def _split_body_page() -> str:
    """Trafilatura keeps only the first of two same-class body containers on such a page."""
    first = "".join(f"<p>{PROSE}First part {i}.</p>" for i in range(8))
    second = "".join(f"<p>{PROSE}Second part {i} continues the story.</p>" for i in range(4))
    return f"""<html><head><title>Split</title></head><body><article><h1>Split story</h1>
<div class="article-body">{first}</div>
<div class="ad-break"><span>Advertisement</span></div>
<div class="article-body">{second}</div>
</article></body></html>"""


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["<", "!", "DOCTYPE", "doctype", "DocType", "<!--", "-->", ">", "[", "]", " ", "a", "é",
                                 "\x01", "\x0b", "\ufffe", "\uffff", "\n", "<!DOC\x01TYPE", "<!DOCTYPE html>"]), max_size=12).map("".join))
def test_the_parser_reads_a_page_without_the_characters_xml_rejects_and_its_first_doctype(text):
    page = f"{text}<html><body><p>{text}</p></body></html>"
    cleaned = html._DOCTYPE_RE.sub("", html._INVALID_XML_CHARS_RE.sub("", page), count=1)
    try:
        expected = lxml_html.document_fromstring(cleaned.encode("utf-8", "surrogatepass"), parser=html._PARSER)
    except etree.ParserError:  # nothing left to parse
        expected = None
    tree = parse_html(page)
    assert (None if tree is None else etree.tostring(tree)) == (None if expected is None or not len(expected)
                                                                else etree.tostring(expected))


def test_body_split_by_an_ad_break_is_joined():
    text = extract_html(_split_body_page()).text
    assert "First part 0." in text
    assert "Second part 3 continues the story." in text


def test_covered_share_counts_the_words_of_a_line_inside_reference_shingles():
    text = "one two three four five\nsix seven\n\nalpha beta gamma delta epsilon"
    shares = covered_share(text, "zero one two three four five six")
    assert shares == {1: 1.0, 2: 0.5, 4: 0.0}  # "three four five six" runs across the line break


def test_page_text_keeps_every_visible_block_and_no_script():
    tree = parse_html("<html><head><title>T</title><script>var x = 1;</script></head><body>"
                      "<nav><a>Home</a></nav><p>First <b>bold</b> words</p><style>p {}</style><p>Second</p></body></html>")
    assert page_text(tree).split("\n") == ["T", "Home", "First bold words", "Second"]


def test_the_walk_reads_each_line_s_block_tag_link_share_and_container_words():
    tree = parse_html(
        "<html><head><title>Night buses</title></head><body>"
        '<nav class="mainMenu"><ul><li><a href="/">Home</a></li></ul></nav>'
        '<article><h2>Night buses return</h2><p>The council voted <a href="/v">on Tuesday</a>.\nBuses run late.</p>'
        '<div class="post-content">Loose words<blockquote>A quote</blockquote></div></article>'
        '<section id="comments"><div class="comment-body"><p>I ride it <b>every</b> week</p></div></section>'
        '<aside class="ad-slot"><td>Cell</td></aside><div class="shadow loaded">Plain</div></body></html>')
    text, dom = page_blocks(tree)
    lines = text.split("\n")
    assert text == page_text(tree) and dom.shape == (len(lines), len(DOM_COLUMNS))  # one row per line
    row = {line: dict(zip(DOM_COLUMNS, values)) for line, values in zip(lines, dom.tolist())}
    assert list(row) == ["Night buses", "Home", "Night buses return", "The council voted on Tuesday.", "Buses run late.",
                         "Loose words", "A quote", "I ride it every week", "Cell", "Plain"]
    tags = {line: [name for name in DOM_FEATURES if name.startswith("dom_tag_") and features[name]] for line, features in row.items()}
    assert tags == {"Night buses": ["dom_tag_title"], "Home": ["dom_tag_item"], "Night buses return": ["dom_tag_heading"],
                    "The council voted on Tuesday.": ["dom_tag_p"], "Buses run late.": ["dom_tag_p"],
                    "Loose words": ["dom_tag_div"], "A quote": ["dom_tag_quote"], "I ride it every week": ["dom_tag_p"],
                    "Cell": ["dom_tag_cell"], "Plain": ["dom_tag_div"]}
    assert row["Home"]["dom_link_share"] == 1.0 and row["Buses run late."]["dom_link_share"] == 0.0
    assert row["The council voted on Tuesday."]["dom_link_share"] == pytest.approx(len("onTuesday") / len("ThecouncilvotedonTuesday."))
    assert row["Home"]["dom_in_nav"] == row["Home"]["dom_in_li"] == row["Home"]["dom_class_nav"] == 1.0
    assert row["A quote"]["dom_in_article"] == row["A quote"]["dom_class_content"] == 1.0 and not row["A quote"]["dom_in_nav"]
    assert row["I ride it every week"]["dom_class_comment"] == 1.0  # id "comments" of an ancestor
    assert row["Loose words"]["dom_class_comment"] == 0.0
    assert row["Cell"]["dom_class_ad"] == row["Cell"]["dom_in_aside"] == 1.0
    assert row["Plain"]["dom_class_ad"] == row["Plain"]["dom_class_nav"] == 0.0  # "shadow", "loaded" hold no whole "ad"
    assert row["Night buses"]["dom_log_depth"] < row["I ride it every week"]["dom_log_depth"]
    parents = [features["dom_parent"] for features in row.values()]
    assert parents[2] == parents[3] == parents[4] == parents[5] != parents[6]  # the blocks right under <article>


SCRIPTED_LINKS = (
    '<p onclick="steal()" ONMOUSEOVER="x()">Share <a href="javascript:alert(1)">this</a> or '
    '<a href="  /news/night-buses  " onmouseover="y()">read more</a>'
    '<img src="java\tscript:evil()" lowsrc=" /small.png"></p>'
    '<iframe src=" https://www.youtube.com/embed/abc "></iframe>'
    '<p hidden>Hidden paragraph</p><div style="display: none">Invisible block</div>'
    '<form action="javascript:send()"><button formaction=" /go ">Go</button></form>'
)


@pytest.mark.parametrize("extra", ["", '<object data="javascript:x()" codebase=" /c/"><param name="m" value=" /v" valuetype="ref"></object>',
                                   '<meta http-equiv="Refresh" content="5; url= javascript:go()">'])
@pytest.mark.parametrize("paragraphs", [6, 1])
def test_readability_text_is_readability_lxml_s_own_article_and_leaves_the_tree_alone(extra, paragraphs):
    page = article_page(body_extra=SCRIPTED_LINKS + extra).replace(
        "".join(f"<p>{PROSE}Paragraph {i} adds detail number {i}.</p>" for i in range(paragraphs, 6)), "")
    tree = parse_html(page)
    before = etree.tostring(tree)
    cleaned = copy.deepcopy(tree)
    extractors._PAGE_CLEANER(cleaned)
    assert etree.tostring(cleaned) == etree.tostring(html_cleaner.clean_html(copy.deepcopy(tree)))
    own = Document(copy.deepcopy(tree)).summary(html_partial=True)
    assert extractors.readability_text(tree) == extractors.block_text(lxml_html.fragment_fromstring(own))
    assert etree.tostring(tree) == before


#: Elements that readability-lxml's steps rework: unlikely candidates inside one another and inside code, a
#: ``div`` of inline elements only (made a paragraph), ones with a block inside (an ``img``, a ``dl`` deep
#: in an inline element), inline children and tails gathered into paragraphs.
READABILITY_CASES = (
    '<div class="sidebar"><div class="menu-comment"><p>Sidebar text that is long enough to count here.</p></div></div>'
    '<pre>kept code <span class="comment">// a comment in the code, long enough to be kept</span></pre>'
    '<div>Plain words in a div with <a href="/a">a link</a> and <b>bold text</b>, long enough to be scored.</div>'
    '<div><span>Inline words first</span> then <em>more</em><p>A block paragraph with enough words.</p>a tail<br>'
    'after a break</div><div class="header"><article><p>An article inside an unlikely candidate.</p></article></div>'
    '<div><img src="/i.png"> caption text for the picture above, long enough</div>'
    '<div>A glossary of terms used in this story, long enough <span><DL><dt>term</dt></DL></span></div>'
)


@pytest.mark.parametrize("paragraphs", [6, 1, 0])
def test_readability_text_reworks_misused_divs_and_unlikely_candidates_as_readability_lxml_does(paragraphs):
    page = article_page(body_extra=READABILITY_CASES).replace(
        "".join(f"<p>{PROSE}Paragraph {i} adds detail number {i}.</p>" for i in range(paragraphs, 6)), "")
    tree = parse_html(page)
    own = Document(copy.deepcopy(tree)).summary(html_partial=True)
    assert extractors._Readability(tree).summary(html_partial=True) == own
    assert extractors.readability_text(tree) == extractors.block_text(lxml_html.fragment_fromstring(own))


@pytest.mark.parametrize("text", ["  a link ", "two  spaces", "a line\nbreak", "a\ttab", " \xa0no-break\xa0spaces ",
                                  "word " * 60, "", " \u2003 "])
def test_the_length_of_a_cleaned_text_is_readability_lxml_s(text):
    assert extractors._clean_length(text) == len(readability_clean(text))


FORUM_JSONLD = '<script type="application/ld+json">{"@type": "DiscussionForumPosting", "headline": "Night buses"}</script>'
COMMENT_SECTION = ('<div id="comments"><ol class="commentlist"><li><p>Reader one says the buses were late again '
                   'this week.</p></li><li><p>Reader two agrees.</p></li></ol></div>')
SHORT_PAGE = ('<html><body><div class="infinite-scroll"><p>Next story</p></div><p>A short note.</p>'
              + "".join(f"<table><tr><td>Row {i} of a long fixtures table with many words in it</td></tr></table>"
                        for i in range(40)) + "</body></html>")


#: An element for each test of trafilatura's raw-tree and comment pruning, and some that pass only part of them.
PRUNED_ELEMENTS = (
    '<div class="infinite-scroll"><p>An appended story.</p><div id="infinitescroll-2">Nested</div></div>'
    '<section id="infinitescroll"><h1>The page itself</h1></section><div class="mvp-post-add-box"><h1>Next</h1></div>'
    '<aside class="x elementor-share-buttons">Share</aside><p class="elementor-share-buttons">Kept</p>'
    '<div id="comments">C</div><section class="post-comments">D</section><details id="disqus_thread">E</details>'
    '<div id="commentary">Kept</div><ol class="commentlist"><li>F</li></ol><ul id="dsq-comments"><li>G</li></ul>'
    '<ul id="comol"><li>H</li></ul><list class="Comments">I</list><ul class="article-comments"><li>J</li></ul>'
)


def test_trafilatura_s_pruning_selects_the_elements_its_xpaths_do():
    theirs, ours = parse_html(article_page(body_extra=PRUNED_ELEMENTS)), parse_html(article_page(body_extra=PRUNED_ELEMENTS))
    our_selections = extractors.raw_prune_selections(ours)
    for expression in RAW_TREE_PRUNE_XPATH:
        selected, our_selected = expression(theirs), next(our_selections)
        assert [etree.tostring(e) for e in selected] == [etree.tostring(e) for e in our_selected]
        extractors._delete(selected)
        extractors._delete(our_selected)
    for lists, (expression,) in ((False, REMOVE_COMMENTS_XPATH), (True, REMOVE_COMMENTS_AND_LISTS_XPATH)):
        assert ([etree.tostring(e) for e in expression(theirs)]
                == [etree.tostring(e) for e in extractors.comment_sections(ours, lists=lists)])
    assert len(extractors.comment_sections(ours, lists=True)) == 7


def test_the_whole_page_text_leaves_out_what_trafilatura_s_basic_cleaning_xpath_selects():
    tree = parse_html(article_page(body_extra=(
        '<aside>A</aside><div class="site-footer">B</div><div id="footer-2">C</div><div class="main" id="footer">D</div>'
        '<div id="main" class="footer">E</div><p class="footer">Kept</p><svg><text>F</text></svg><template>G</template>'
        '<section class="Cookie-Banner">H</section><span id="onetrust-x">I</span><div class="cookies">Kept</div>')))
    body = tree.find("body")
    assert list(BASIC_CLEAN_XPATH(body)) == extractors.basic_clean_selection(body)
    assert extractors._whole_text_length(tree) == len(html2txt(tree))
    # a div with both a class and an id is read by the first of them, as XPath reads "@class|@id": not D, not E
    assert [e.text for e in extractors.basic_clean_selection(body)][:7] == ["A", "B", "C", None, "G", "H", "I"]


@pytest.mark.parametrize("page", [article_page(body_extra=COMMENT_SECTION), article_page(FORUM_JSONLD, COMMENT_SECTION),
                                  SHORT_PAGE, "<html><body><nav><a href='/'>Home</a></nav></body></html>"])
def test_both_trafilatura_settings_give_bare_extraction_s_texts_from_one_pruned_copy(page):
    tree = parse_html(page)
    before = etree.tostring(tree)
    own = {}
    for name, precision in (("trafilatura", False), ("trafilatura-precision", True)):
        document = trafilatura.bare_extraction(copy.deepcopy(tree), favor_precision=precision, fast=True, include_comments=False,
                                               include_tables=True, include_images=False, include_links=False)
        own[name] = document.text.strip() if document is not None and document.text else ""
    assert extractors.trafilatura_texts(tree) == own
    assert etree.tostring(tree) == before


@pytest.mark.parametrize("body", [
    '<div class="comments"><span class="author">Reader Name</span></div><p class="byline">By Jane Roe '
    '<time>1 May</time>and John Doe</p>',
    '<figure><span class="author">Photo Agency</span></figure><span class="author-name">Jane <span class="date">today'
    '</span>Roe</span>',
    '<div class="author"><a>X</a></div><div class="writer">Jane Roe</div>',
    "<p>No byline at all.</p>",
])
def test_the_visible_author_is_trafilatura_s_without_copying_the_page(body):
    tree = parse_html(article_page(body_extra=body))
    before = etree.tostring(tree)
    assert html.visible_author(tree) == trafilatura_metadata.extract_author(tree)
    assert etree.tostring(tree) == before


#: An element for each test of trafilatura's ``AUTHOR_XPATHS`` and a few that pass only some of them.
AUTHOR_ELEMENTS = (
    '<author>A</author><span rel="author">B</span><div id="author">C</div><p class="author">D</p>'
    '<a itemprop="author name">E</a><div><rel>me</rel></div><div><rel>not me</rel></div><div data-testid="AuthorCard">F</div>'
    '<span class="post-authorName">G</span><h3 class="byline">H</h3><h4 class="username">I</h4><div id="zuozhe">J</div>'
    '<span class="posted-by-x">K</span><section data-component="TheByline">L</section><em itemprop="authors">M</em>'
    '<li id="mainAuthor">N</li><td class="writer">O</td><li class="author">P</li><div class="Author">Q</div>'
    '<strong class="byline">R</strong><p class="bylines">S</p>'
)


def test_the_author_candidates_are_the_elements_trafilatura_s_author_xpaths_select():
    tree = parse_html(article_page(body_extra=AUTHOR_ELEMENTS))
    assert [list(expression(tree)) for expression in AUTHOR_XPATHS] == list(html._author_candidates(tree))


def test_a_byline_inside_a_comment_section_or_figure_is_not_the_author():
    tree = parse_html(article_page(body_extra='<div class="comments"><span class="author">Reader Name</span></div>'
                                              '<figure><span class="author">Photo Agency</span></figure>'
                                              '<p class="byline">By Jane Roe</p>'))
    assert html.visible_author(tree) == "Jane Roe"


def test_a_failing_extractor_gives_an_empty_text_and_the_others_still_run(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(extractors, "readability_text", broken)
    page = article_page()
    texts = extractor_texts(page, parse_html(page))
    assert texts["readability"] == ""
    assert "council voted" in texts["trafilatura"]


def test_a_shard_decided_in_runs_of_a_few_pages_gets_the_texts_of_one_run(monkeypatch):
    pages = [(article_page(title=f"Night buses return {i}", body_extra=f"<p>Share this {i}</p>"), None) for i in range(5)]
    pages[2] = ("", None)  # nothing to parse: a page of its own kind among the others
    whole = extract_html_shard(pages)
    monkeypatch.setattr(html, "MODEL_RUN_CHARS", 1)
    runs = extract_html_shard(pages)
    assert [(e.text, e.metadata, e.not_an_article) for e in runs] == [(e.text, e.metadata, e.not_an_article) for e in whole]
    assert "Night buses return 4" in str(runs[4].metadata["title"]) and "council voted" in runs[4].text


def test_blocks_every_extractor_kept_are_chosen_over_blocks_none_kept():
    prose = [f"{PROSE}Sentence {i} of the story." for i in range(6)]
    page = "\n".join(["Home", "News", "Sport", *prose, "Share this", "Copyright 2024"])
    article = {n: 1.0 for n in range(4, 10)}
    dom = np.zeros((10, len(DOM_COLUMNS)))
    chosen = select_blocks([page], [{name: article for name in EXTRACTORS}], [dom])[0].split("\n")
    assert chosen == prose


def test_the_text_the_extractors_agree_on_replaces_a_model_text_that_kept_a_comment_thread():
    article = "\n".join(f"{PROSE}Sentence {i} of the story." for i in range(4))
    thread = "\n".join(f"Posted by reader{i} at 3:0{i} PM: I ride the night bus every single week and it is late." for i in range(6))
    outputs = {"trafilatura": article, "trafilatura-precision": article, "readability": article + "\nShare this",
               "resiliparse": f"Home\n{article}"}
    assert consensus_text(f"{article}\n{thread}", outputs) == article


def test_trafilatura_twins_do_not_outvote_the_block_model_and_readability_agreeing_on_the_article():
    article = "\n".join(f"{PROSE}Sentence {i} of the story." for i in range(4))
    teasers = "\n".join(f"Related: the council's {n} plan for night buses divides riders across the city again"
                        for n in ("first", "second", "third", "fourth", "fifth", "sixth"))
    readability = f"{article}\nShare this"
    twins = f"{teasers}\n{article.splitlines()[0]}"  # the teaser list and the article's first paragraph
    outputs = {"trafilatura": twins, "trafilatura-precision": twins, "readability": readability,
               "resiliparse": f"{teasers}\n{article}"}
    texts = [article, twins, twins, readability, outputs["resiliparse"]]
    assert max(agreement(texts)[1:4]) == agreement(texts)[1] > agreement(texts)[0]  # the medoid alone: the twins
    assert consensus_text(article, outputs) == article
    # A trafilatura text that agrees with both nearly as closely as they agree with each other stays.
    close = f"{article}\nRelated: the council's first plan for night buses"
    outputs = {**outputs, "trafilatura": close, "trafilatura-precision": close}
    assert consensus_text(article, outputs) == close


def test_the_model_text_stays_when_no_extractor_agrees_more_with_the_others():
    article = "\n".join(f"{PROSE}Sentence {i} of the story." for i in range(4))
    outputs = {"trafilatura": article, "trafilatura-precision": article, "readability": "",
               "resiliparse": article}
    assert consensus_text(article, outputs) == article  # a tie keeps the model's text
    assert consensus_text(article, {}) == article
    assert agreement([article, article, ""]) == [0.5, 0.5, 0.0]  # an empty text agrees with nothing


def test_the_chosen_text_loses_the_lines_that_no_other_text_holds():
    article = "\n".join(f"{PROSE}Sentence {i} of the story." for i in range(4))
    sidebar = "Follow us on Twitter\nRead us on Android and iOS with the Currents app"
    chosen = f"{article}\n- - -\n{sidebar}"  # a sidebar that trafilatura's two settings alone kept
    outputs = {"trafilatura": chosen, "trafilatura-precision": chosen, "readability": article,
               "resiliparse": article}
    assert consensus_text(article, outputs) == article
    # Each text keeps a block of its own: the chosen one (the model's, on a tie) loses its own.
    own = {name: f"{article}\nFollow the {name} desk on Twitter" for name in ("model", *outputs)}
    assert consensus_text(own["model"], {name: own[name] for name in outputs}) == article
    # The block model's text keeps the sidebar that the other texts hold too.
    assert consensus_text(chosen, {**outputs, "readability": "", "resiliparse": ""}) == chosen
    shortened = f"{article}\nFollow us on Twitter"  # a line held by another text stays, without the rest of its block
    assert held_elsewhere([chosen, shortened], 0) == f"{article}\n- - -\nFollow us on Twitter"
    assert held_elsewhere([chosen, "", " "], 0) == chosen  # no other text to hold anything: all stays
    # Only a text of its own beside it (the other extractors failed): nothing to go by, all stays.
    assert consensus_text(article, {"trafilatura": "", "trafilatura-precision": "", "readability": "",
                                    "resiliparse": "Log in\nSign up"}) == article
    # A line stays when another text holds half its words (HELD_SHARE), not less.
    line = "one two three four five six seven eight nine ten"
    assert held_elsewhere([f"{article}\n{line}", f"{article}\none two three four five"], 0) == f"{article}\n{line}"
    assert held_elsewhere([f"{article}\n{line}", f"{article}\none two three four"], 0) == article


def test_the_html_model_reads_how_many_extractors_kept_a_line_and_where_each_kept_span_lies():
    page = "\n".join(["Home menu entry", f"{PROSE}First.", "A short caption here", f"{PROSE}Second.", "Copyright 2024 Courier"])
    kept = {"trafilatura": {2: 1.0, 4: 1.0}, "readability": {2: 1.0, 3: 1.0, 4: 0.4}}
    lines = with_kept(rule_lines([page]), [kept])
    assert lines["kept_votes"].to_list() == [0, 2, 1, 1, 0]
    assert lines["inside_trafilatura"].to_list() == [0, 1, 1, 1, 0]  # the caption lies inside trafilatura's span
    assert lines["inside_readability"].to_list() == [0, 1, 1, 0, 0]
    assert lines["inside_votes"].to_list() == [0, 2, 2, 1, 0]
    words = lines["n_words"].to_list()
    assert lines["page_kept_trafilatura"][0] == pytest.approx((words[1] + words[3]) / sum(words))
    assert lines["page_kept_resiliparse"].to_list() == [0.0] * 5


@pytest.mark.parametrize(("declared", "language"), [("en_GB", "en-GB"), ("zh-Hant-TW", "zh-Hant-TW"), ("EN_us", "en-US"), ("\u00ed \u2003", None), ("English", None)])
def test_a_declared_language_is_kept_only_when_it_is_a_language_tag(declared, language):
    page = article_page().replace('<html lang="en">', f'<html lang="{declared}">', 1)
    assert extract_html(page).metadata.get("language", (None, None))[0] == language
