"""Cleaning accuracy on pages the models never trained on, beside the single extractors.

    python -m tools.evaluation [--shared ../shared] [--strict] [--dump DIR]

Reads ``../shared/benchmark`` (65 pages, the dev split) and ``../shared/pool`` (1,131 pages of three
datasets). Every figure of the project's cleaner is out of sample: the line models are retrained
without the held-out pages, by cross-validation with folds dealt by site (5 folds) and by leaving
one dataset out, with the shipped decode settings; held-out pages then go through the product's own
functions (``clean_shard`` for flattened text; for HTML ``select_blocks``, the page finish
``html.finish_pages`` (the consensus text, the repeated title dropped, the check for block and listing pages),
then ``clean_shard`` on the extracted text), and a page the product would reject (a block or listing page, or
a rejection of ``clean_shard``) counts with an empty body, as nothing of it is released. On the same
pages: trafilatura (default and
``favor_precision``), readability-lxml, resiliparse, and "nothing removed" (the whole ``flat-blocks`` page). Per dataset: F1 of the
benchmark's metric; "comments kept": the mean share of the gold-cut reader comments (pool
``comments``, 277 Dragnet pages) found in the output. Targets are printed beside the figures;
``--strict`` exits 1 when one is missed. Flattened pages and extractor outputs are cached (``corpus.py``).
``--dump DIR`` writes, per path and split, ``DIR/<form>-<split>.jsonl``: one line a page with its id,
dataset and site, its held-out body (for HTML also the block model's text before the choice) and each
method's page precision, recall and F1, for per-page error analysis.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from commentary.clean import released_body
from commentary.clean.html import PageReading, finish_pages, select_blocks
from commentary.clean.model import HTML_MODEL_PATH, MODEL_PATH, LineModel
from commentary.clean.text import clean_shard
from commentary.settings import SHARD_SIZE
from tools.corpus import DATASETS, SHARED, Cache, MissingData, scorer
from tools.train import FLATTENINGS, Page, corpus_pages, design, fit_without, fold_of

SINGLE_EXTRACTORS = ("trafilatura", "trafilatura-precision", "readability", "resiliparse")
POOL = ("dragnet", "cleanportal", "readability")
#: Targets (issue 13): text path per input form on the pool and the dev split; HTML path on the dev
#: split, and best single extractor + 0.01 on each pool dataset; comment text kept at most 10 %.
TEXT_TARGETS = {"flat-blocks": 0.93, "flat-naive": 0.91}
HTML_DEV_TARGET = 0.975
HTML_MARGIN = 0.01
COMMENTS_KEPT_MAX = 0.10
#: Samples of sites drawn for the interval printed beside each target.
BOOTSTRAP_ROUNDS = 1000


def held_out_bodies(pages: list[Page], html: bool, shipped: LineModel, split) -> tuple[list[str], list[str] | None]:
    """Each page's body from a model trained without the pages sharing its part of ``split``, and for HTML
    each page's block-model text before the choice (None for flattened text)."""
    lines_x = design(pages, html)
    parts = np.array([split(p) for p in pages])
    bodies = [""] * len(pages)
    model_texts = [""] * len(pages) if html else None
    for part in sorted(set(parts.tolist())):
        model = fit_without(pages, html, lines_x, parts, part, shipped.threshold, shipped.run_cost)
        held = np.flatnonzero(parts == part)
        if html:
            texts, cleaned = html_bodies([pages[i] for i in held], model)
            for i, text in zip(held, texts):
                model_texts[i] = text
            for i, body in zip(held, cleaned):
                bodies[i] = body
        else:
            for shard in text_shards(pages, held):
                for i, page in zip(shard, clean_shard([pages[i].text for i in shard], model)):
                    bodies[i] = released_body(page)
    return bodies, model_texts


def text_shards(pages: list[Page], held: np.ndarray) -> list[list[int]]:
    """The pages ``held`` cut as the pipeline cuts its input: one flattening at a time (a shard holds one copy of a
    page, so that a line repeated across a shard's pages is counted as the product counts it), in shards of
    ``SHARD_SIZE``."""
    by_form: dict[str, list[int]] = {}
    for i in held.tolist():
        by_form.setdefault(pages[i].form, []).append(i)
    return [part[start:start + SHARD_SIZE] for part in by_form.values() for start in range(0, len(part), SHARD_SIZE)]


def html_bodies(pages: list[Page], model: LineModel) -> tuple[list[str], list[str]]:
    """The block model's text and the released body of each HTML page as the product makes them:
    ``select_blocks``, the page finish (``html.finish_pages``: the consensus text, the repeated title
    dropped, the check for block and listing pages), then ``clean_shard`` on the extracted text; ``""`` for a
    page rejected there (``not_an_article``) or by ``clean_shard``."""
    texts = select_blocks([p.text for p in pages], [p.kept for p in pages], [p.dom for p in pages], model)
    readings = [PageReading(page=p.text, dom=p.dom, outputs=p.outputs, kept=p.kept, link_share=p.link_share,
                            metadata={name: (value, "html") for name, value in (("title", p.title), ("page_type", p.page_type))
                                      if value}) for p in pages]
    finished = finish_pages(readings, texts)
    cleaned = clean_shard([extraction.text for extraction in finished], extracted=[True] * len(finished))
    return texts, ["" if extraction.not_an_article else released_body(page) for extraction, page in zip(finished, cleaned)]


@dataclass
class Row:
    """One line of the table: a method's pages (in the order of the other rows of its input form), the
    page counts (tp, fp, fn) of each, and per dataset (and the pool as a whole) F1 and comment text kept."""

    form: str
    label: str
    pages: list[Page]
    counts: list[tuple[float, float, float]]
    result: dict[str, tuple[float, float | None]]


def scored(score, form: str, label: str, pages: list[Page], bodies: list[str], comments: dict[str, str]) -> Row:
    """The row of ``bodies``: F1 and the mean share of comment text kept, per dataset and for the pool."""
    counts = [score.page_counts(p.truth, b) for p, b in zip(pages, bodies)]
    result = {}
    for name in (*DATASETS, "pool"):
        chosen = [i for i, p in enumerate(pages) if in_column(p, name)]
        if not chosen:
            continue
        f1 = score.aggregate([counts[i] for i in chosen])["f1"]
        kept = [score.page_counts(comments[pages[i].page_id], bodies[i]) for i in chosen if comments.get(pages[i].page_id)]
        share = float(np.mean([tp / (tp + fn) if tp + fn else 0.0 for tp, fp, fn in kept])) if kept else None
        result[name] = (f1, share)
    return Row(form, label, pages, counts, result)


def in_column(page: Page, column: str) -> bool:
    return page.dataset == column or (column == "pool" and page.dataset in POOL)


def interval(score, row: Row, column: str, baseline: Row | None = None) -> tuple[float, float]:
    """The 5th and 95th percentiles of the row's F1 on ``column`` (less the ``baseline`` row's on the same
    pages, paired) when its sites are drawn anew with replacement (``BOOTSTRAP_ROUNDS``, a fixed seed): how
    far the figure could move on another sample of sites like these."""
    chosen = [i for i, p in enumerate(row.pages) if in_column(p, column)]
    sites = {site: n for n, site in enumerate(sorted({row.pages[i].group for i in chosen}))}
    site_of = np.array([sites[row.pages[i].group] for i in chosen])
    weights = np.random.default_rng(0).multinomial(len(sites), np.full(len(sites), 1 / len(sites)), size=BOOTSTRAP_ROUNDS)

    def f1(counts: list[tuple[float, float, float]]) -> np.ndarray:
        picked = [counts[i] for i in chosen]
        means = []
        for measure, held in ((score.page_precision, lambda tp, fp, fn: tp + fp > 0),
                              (score.page_recall, lambda tp, fp, fn: tp + fn > 0)):
            valid = np.array([held(*c) for c in picked], dtype=float)
            values = np.array([measure(*c) for c in picked]) * valid
            total, number = (weights @ np.bincount(site_of, x, minlength=len(sites)) for x in (values, valid))
            means.append(np.divide(total, number, out=np.zeros_like(total), where=number > 0))
        precision, recall = means
        return np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(precision),
                         where=precision + recall > 0)

    drawn = f1(row.counts) - (f1(baseline.counts) if baseline else 0.0)
    low, high = np.percentile(drawn, [5, 95])
    return float(low), float(high)


def main(argv: list[str] | None = None) -> int:
    with threadpool_limits(limits=1):  # the machine's cores are shared; one BLAS thread is as fast here
        return evaluate(argv)


def evaluate(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.evaluation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=SHARED, help="folder with benchmark/, pool/, tools/")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--only", choices=("text", "html"), help="evaluate one path (the extractors are always shown)")
    parser.add_argument("--split", choices=("site", "dataset"), help="one of the two splits (default: both)")
    parser.add_argument("--dump", type=Path, metavar="DIR", help="write each page's held-out body and scores to DIR")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        cache = Cache(args.shared)
    except MissingData as missing:
        print(missing.args[0], file=sys.stderr)
        return 2
    score = scorer(args.shared)
    comments = {p.page_id: p.comments for p in cache.pages}
    folds = fold_of([p.site for p in cache.pages])
    counts = {d: sum(p.dataset == d for p in cache.pages) for d in DATASETS}
    print(f"data fingerprint {cache.fingerprint}: " + ", ".join(f"{d} {n}" for d, n in counts.items())
          + f" pages; {len(folds)} sites")
    rows: list[Row] = []
    print(HEADER)
    html_pages = corpus_pages(cache, "html", DATASETS)
    single = {}
    for name in SINGLE_EXTRACTORS:
        outputs = cache.extracted(name)
        single[name] = outputs
        rows.append(scored(score, "html", name, html_pages, [outputs[p.page_id] for p in html_pages], comments))
        print_row(rows[-1])
    flat = cache.flattened("flat-blocks")
    rows.append(scored(score, "flat-blocks", "nothing removed", html_pages, [flat[p.page_id] for p in html_pages], comments))
    print_row(rows[-1])
    for kind, model_path in (("html", HTML_MODEL_PATH), ("text", MODEL_PATH)):
        if args.only not in (None, kind):
            continue
        pages = html_pages if kind == "html" else [p for form in FLATTENINGS for p in corpus_pages(cache, form, DATASETS)]
        shipped = LineModel.load(model_path)
        for key, label, split in (("site", "this project, 5-fold by site", lambda p: folds[p.group]),
                                  ("dataset", "this project, dataset left out", lambda p: p.dataset)):
            if args.split not in (None, key):
                continue
            bodies, model_texts = held_out_bodies(pages, kind == "html", shipped, split)
            if args.dump:
                dump_pages(args.dump / f"{kind}-{key}.jsonl", score, pages, bodies, model_texts, single)
            for form in ("html",) if kind == "html" else FLATTENINGS:
                chosen = [(p, b) for p, b in zip(pages, bodies) if p.form == form]
                rows.append(scored(score, form, label, [p for p, _ in chosen], [b for _, b in chosen], comments))
                print_row(rows[-1])
    return report(score, rows, args.strict, time.monotonic() - started)


def dump_pages(path: Path, score, pages: list[Page], bodies: list[str], model_texts: list[str] | None,
               single: dict[str, dict[str, str]]) -> None:
    """One JSON line a page: id, dataset, site, form, held-out body (and block-model text), and the
    page precision, recall and F1 of the project and of each single extractor on it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for i, (page, body) in enumerate(zip(pages, bodies)):
            texts = {"project": body, **({"model": model_texts[i]} if model_texts else {}),
                     **({name: outputs[page.page_id] for name, outputs in single.items()} if page.form == "html" else {})}
            record = {"page_id": page.page_id, "dataset": page.dataset, "site": page.group, "form": page.form,
                      "body": body, **({"model_text": model_texts[i]} if model_texts else {}),
                      "scores": {name: page_scores(score, page.truth, text) for name, text in texts.items()}}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def page_scores(score, truth: str, text: str) -> dict[str, float]:
    """Page precision, recall and F1 of ``text`` against ``truth`` (the benchmark's per-page definitions)."""
    counts = score.page_counts(truth, text)
    precision, recall = score.page_precision(*counts), score.page_recall(*counts)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


COLUMNS = (*DATASETS, "pool")
HEADER = f"\n{'input':<12} {'method':<32} " + " ".join(f"{c:>11}" for c in COLUMNS) + "  comments kept (dragnet)"


def print_row(row: Row) -> None:
    """One line of the table: F1 per dataset and the share of comment text kept."""
    cells = " ".join(f"{row.result[c][0]:>11.3f}" if c in row.result else f"{'':>11}" for c in COLUMNS)
    kept = row.result.get("dragnet", (0, None))[1]
    print(f"{row.form:<12} {row.label:<32} {cells}  {'' if kept is None else f'{kept:.1%}'}", flush=True)


def report(score, rows: list[Row], strict: bool, seconds: float) -> int:
    """Print the targets against the figures, each with the interval a new sample of sites would give
    (``interval``); the exit status (1 when ``strict`` and a target is missed)."""
    singles = [row for row in rows if row.form == "html" and row.label in SINGLE_EXTRACTORS]
    best = {d: max(singles, key=lambda row: row.result[d][0]) for d in DATASETS}
    checks = []
    for row in rows:
        if not row.label.startswith("this project"):
            continue
        name, result = f"{row.form} {row.label}", row.result
        if row.form == "html":
            low, high = interval(score, row, "benchmark")
            checks.append((f"{name}: dev >= {HTML_DEV_TARGET} ({result['benchmark'][0]:.3f}; {low:.3f} to {high:.3f})",
                           result["benchmark"][0] >= HTML_DEV_TARGET))
            for d in POOL:
                margin = result[d][0] - best[d].result[d][0]
                low, high = interval(score, row, d, baseline=best[d])
                checks.append((f"{name}: {d} >= best single ({best[d].label}) + {HTML_MARGIN} "
                               f"(margin {margin:+.4f}; {low:+.4f} to {high:+.4f})", margin >= HTML_MARGIN))
        else:
            target = TEXT_TARGETS[row.form]
            for d in ("benchmark", "pool"):
                low, high = interval(score, row, d)
                checks.append((f"{name}: {d} >= {target} ({result[d][0]:.3f}; {low:.3f} to {high:.3f})", result[d][0] >= target))
        kept = result["dragnet"][1]
        checks.append((f"{name}: comment text kept <= {COMMENTS_KEPT_MAX:.0%} ({kept:.1%})", kept <= COMMENTS_KEPT_MAX))
    print("\ntargets (in brackets: the figure, then the 5th to 95th percentile of it over sites drawn anew with replacement):")
    for text, ok in checks:
        print(f"  {'met   ' if ok else 'MISSED'} {text}")
    print(f"\n{seconds:.0f} s")
    return 1 if strict and not all(ok for _, ok in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
