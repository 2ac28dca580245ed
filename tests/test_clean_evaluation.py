"""The development tools around the cleaner: what they refuse and what the shipped models record."""
import json
from types import SimpleNamespace

import numpy as np

from commentary.clean.agreement import kept_share
from commentary.clean.html import extract_html_shard, read_page
from commentary.clean.model import HTML_MODEL_PATH, MODEL_PATH, html_model
from commentary.clean.text import clean_shard
from tools import evaluation
from tools.corpus import page_host
from tools.train import Page, headline_is_no_body, provenance


def test_evaluation_names_the_missing_data_folder_and_fails(tmp_path, capsys):
    missing = tmp_path / "shared"
    assert evaluation.main(["--shared", str(missing)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"missing folder: {missing} (the benchmark and pool data live in ../shared)"]


def test_shipped_models_record_their_training_data_and_licences():
    for path in (MODEL_PATH, HTML_MODEL_PATH):
        trained_on = json.loads(path.read_text(encoding="utf-8"))["trained_on"]
        datasets = trained_on["datasets"]
        assert {"benchmark", "dragnet", "readability", "cleanportal"} <= set(datasets)
        assert datasets["benchmark"]["licence"] == "MIT" and datasets["dragnet"]["licence"] == "AGPL-3.0"
        assert all(entry["pages"] > 0 for entry in datasets.values())
        assert len(trained_on["data_fingerprint"]) == 16


def test_training_labels_put_the_headline_in_no_body_line():
    text = "Night buses return | The Courier\nHome\nNight buses return\nThe council voted on Tuesday to expand it."
    labels = headline_is_no_body(text, {1: True, 2: False, 3: True, 4: True})
    assert labels == {1: False, 2: False, 3: False, 4: True}


def test_kept_share_counts_no_shingle_across_lines():
    page = "Night buses return | The Courier\nHome News\nNight buses return\nThe council voted on Tuesday"
    shares = kept_share(page, "Night buses return\nThe council voted on Tuesday")
    assert shares == {1: 0.0, 2: 0.0, 3: 1.0, 4: 1.0}


def test_provenance_counts_pages_once_across_flattenings_and_names_licences():
    pages = [Page("site-a", "x", {}, "gold", "benchmark", form, page_id="p1") for form in ("flat-blocks", "flat-naive")]
    pages.append(Page("site-b", "y", {}, "gold", "readability", "flat-blocks", page_id="r1"))
    assert provenance(pages, "0123456789abcdef") == {
        "datasets": {"benchmark": {"pages": 1, "licence": "MIT"}, "readability": {"pages": 1, "licence": "Apache-2.0"}},
        "data_fingerprint": "0123456789abcdef"}


def test_dump_writes_each_page_with_its_body_and_per_method_scores(tmp_path):
    def page_counts(truth, text):
        true, found = set(truth.split()), set(text.split())
        total = len(true | found) or 1
        return len(true & found) / total, len(found - true) / total, len(true - found) / total

    score = SimpleNamespace(page_counts=page_counts,
                            page_precision=lambda tp, fp, fn: tp / (tp + fp) if tp + fp else 0.0,
                            page_recall=lambda tp, fp, fn: tp / (tp + fn) if tp + fn else 0.0)
    pages = [Page("a.example", "x", {}, "one two three four", "cleanportal", "html", page_id="p1"),
             Page("b.example", "x", {}, "five six", "readability", "html", page_id="p2")]
    single = {"readability": {"p1": "one two", "p2": ""}}
    path = tmp_path / "dump" / "html-site.jsonl"
    evaluation.dump_pages(path, score, pages, ["one two three four", "five seven"], ["one", "five six"], single)
    first, second = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines())
    assert (first["page_id"], first["dataset"], first["site"], first["model_text"]) == ("p1", "cleanportal", "a.example", "one")
    assert first["scores"]["project"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert first["scores"]["model"]["recall"] == 0.25
    assert first["scores"]["readability"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667}
    assert second["body"] == "five seven"
    assert second["scores"]["project"]["f1"] == 0.5
    assert second["scores"]["readability"]["f1"] == 0.0


def test_the_interval_beside_a_target_comes_from_sites_drawn_anew():
    score = SimpleNamespace(page_precision=lambda tp, fp, fn: tp / (tp + fp) if tp + fp else 0.0,
                            page_recall=lambda tp, fp, fn: tp / (tp + fn) if tp + fn else 0.0)
    pages = [Page(f"site-{i // 2}", "x", {}, "gold", "dragnet", "html", page_id=f"p{i}") for i in range(8)]
    perfect, half = (1.0, 0.0, 0.0), (0.5, 0.5, 0.0)
    ours = evaluation.Row("html", "ours", pages, [perfect] * 4 + [half] * 4, {})
    # the first two sites are perfect, the last two half right: a new draw of sites moves the figure
    low, high = evaluation.interval(score, ours, "dragnet")
    assert 0.6 < low < high <= 1.0
    # paired against itself the margin never moves; against a row worse on every page it stays above 0
    assert evaluation.interval(score, ours, "dragnet", baseline=ours) == (0.0, 0.0)
    worse = evaluation.Row("html", "worse", pages, [(0.25, 0.75, 0.0)] * 8, {})
    low, high = evaluation.interval(score, ours, "pool", baseline=worse)
    assert 0 < low <= high


def news_page(title: str, topic: str) -> str:
    prose = "".join(f"<p>The council voted on Tuesday to change the {topic} after months of complaints from residents "
                    f"who said the old plan left them stranded. Paragraph {i} adds detail number {i}.</p>" for i in range(6))
    return (f"<html lang='en'><head><title>{title} | The Courier</title></head><body><nav><a href='/'>Home</a> "
            f"<a href='/news'>News</a></nav><article><h1>{title}</h1>{prose}</article>"
            "<footer><p>Copyright 2024 The Courier</p></footer></body></html>")


def collection_page() -> str:
    """An article-like page that calls itself a collection: the product rejects it as a listing."""
    head = '<script type="application/ld+json">{"@type": "CollectionPage", "name": "Council"}</script>'
    return news_page("Council stories", "council budget").replace("</title>", "</title>" + head)


def test_the_evaluation_s_html_bodies_are_the_product_s():
    headlines = {"Night buses return": "night bus network", "Parks stay open later": "park hours",
                 "Libraries add Sunday hours": "library budget"}
    raw = [news_page(headline, topic) for headline, topic in headlines.items()] + [collection_page()]
    readings = [read_page(page) for page in raw]
    pages = [Page(f"site-{i}", r.page, {}, form="html", kept=r.kept, outputs=r.outputs, dom=r.dom,
                  title=r.metadata["title"][0], page_type=r.metadata.get("page_type", (None, ""))[0],
                  link_share=r.link_share) for i, r in enumerate(readings)]
    model_texts, bodies = evaluation.html_bodies(pages, html_model())
    extractions = extract_html_shard([(p, None) for p in raw])
    cleaned = clean_shard([e.text for e in extractions], extracted=[True] * len(raw))
    released = ["" if e.not_an_article else page.body for e, page in zip(extractions, cleaned)]
    assert bodies == released
    # the collection page is rejected as a listing, so it counts with nothing released
    assert extractions[-1].not_an_article and cleaned[-1].body and bodies[-1] == ""
    # the finish's title drop is what makes them equal: the chosen blocks begin with the headline
    assert [text.splitlines()[0] for text in model_texts[:3]] == list(headlines)
    assert not any(body.startswith(headline) for body, headline in zip(bodies, headlines))


def test_a_page_without_a_url_is_grouped_by_the_host_it_names_as_its_own():
    canonical = '<a href="https://other.example/x">o</a><link href="https://www.blog.example/post" rel="canonical">'
    assert page_host(canonical) == "blog.example"
    assert page_host("<meta content='http://news.example/a' property='og:url'>") == "news.example"
    linked = ('<a href="http://b.example/1">1</a><a class=x href=http://b.example/2>2</a>'
              '<a href="https://a.example/">3</a><a href="/relative">4</a><img src="http://cdn.example/i.png">')
    assert page_host(linked) == "b.example"
    assert page_host('<a href="http://z.example/">z</a><a href="http://y.example/">y</a>') == "y.example"
    assert page_host("<p>no links</p><a href='mailto:x@example.org'>m</a>") == ""
    # a rel of several words, og:url given as a name, and protocol-relative links count too
    assert page_host('<link rel="canonical nofollow" href="http://own.example/p"><a href="http://x.example/">x</a>') \
        == "own.example"
    assert page_host('<meta name="og:url" content="https://named.example/p">') == "named.example"
    assert page_host('<a href="//c.example/1">1</a><a href="//c.example/2">2</a><a href="http://d.example/">3</a>') \
        == "c.example"
    assert page_host('<link rel="canonicalish" href="http://no.example/"><a href="http://e.example/">e</a>') == "e.example"


def test_the_evaluation_cleans_text_as_the_pipeline_shards_it(monkeypatch):
    # Both flattenings of a page in one shard would count a line repeated in it twice (a shard repeat needs 3 pages).
    monkeypatch.setattr(evaluation, "SHARD_SIZE", 2)
    pages = [Page(group=f"site{i}", text="", labels={}, form=form) for i in range(3) for form in ("flat-blocks", "flat-naive")]
    shards = evaluation.text_shards(pages, np.arange(len(pages)))
    assert sorted(i for shard in shards for i in shard) == list(range(len(pages)))
    assert all(len(shard) <= 2 and len({pages[i].form for i in shard}) == 1 for shard in shards)
