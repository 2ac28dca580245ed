"""Train the two line models on ``../shared`` (benchmark and pool) and the seeds' gold labels.

    python -m tools.train [--shared PATH] [--permissive] [--check] [--choose-decode] [--only text|html]

Writes ``commentary/clean/line_model.json`` (flattened text: both flattenings of every page, and the
seeds) and ``commentary/clean/html_model.json`` (the HTML path: each block of the page with the
share of it that each single extractor kept, how the extractors agree and its DOM cues), deterministically
(Newton's method, trees drawn with fixed seeds, stacking folds dealt by site). Each file records
what it was trained on. ``--permissive`` trains on permissively licensed data only (benchmark MIT,
readability Apache-2.0). ``--check`` rebuilds and exits 1 when a shipped model differs.
``--choose-decode`` chooses the decode settings by 5-fold cross-validation by site (``DECODE`` holds
the chosen ones). ``tools/evaluation.py`` prints the out-of-sample figures.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from commentary.clean.agreement import covered_share, kept_share
from commentary.clean.distinct import renumbered
from commentary.clean.extractors import DOM_COLUMNS, DOM_FEATURES
from commentary.clean.features import (LEXICAL_SLOTS, feature_frame, feature_names, lexical_frame, lexical_keys,
                                       lexical_names, lexical_strings)
from commentary.clean.model import HTML_MODEL_PATH, MODEL_PATH, LineModel, LogisticStage, TreeStage
from commentary.clean.rules import CATEGORY_PRIORITY
from commentary.clean.text import (KEPT_FEATURES, PARENT_CONTEXT_FEATURES, body_probability, body_runs, rule_lines,
                                   stage2_context, with_dom, with_kept)
from tools.corpus import LICENCES, PERMISSIVE, SHARED, Cache

FLATTENINGS = ("flat-blocks", "flat-naive")
WORD = re.compile(r"\w+")
#: Line-label rule of the benchmark's label_lines.py: body when half its tokens are covered.
COVERAGE_THRESHOLD = 0.5
#: L2 penalty on standardised weights; folds for stacking (within one training) and for choosing
#: the decode settings by cross-validation (``--choose-decode``).
L2_PENALTY = 1.0
STACKING_FOLDS = 3
FOLDS = 5
NEWTON_STEPS = 25
NEWTON_TOLERANCE = 1e-5
#: Each seed page weighs as much as this many pages: the seeds are the project's own sample, labelled by
#: line to its definition (headline and byline in fields), and must come out exactly right.
SEED_WEIGHT = 20.0
#: Decode settings tried by cross-validation (cut-off of the body probability, price of a body run),
#: and the ones it chose (``--choose-decode`` prints them; both on the pool and benchmark, 5 folds by site).
THRESHOLDS = (0.3, 0.4, 0.5)
RUN_COSTS = (4.0, 8.0, 16.0)
#: The text model's are the best mean over the dev split and the pool in each flattening among the
#: settings that keep the seeds exact and a one-paragraph page an article (a run price of 16 drops it).
DECODE = {"text": (0.4, 8.0), "html": (0.4, 16.0)}
#: The boosted trees of both models' stage 2: count, depth, learning rate, L2 penalty on leaf
#: values, bins per feature, and the shares of lines and of features each tree sees (few and
#: shallow trees: inference stays well under 0.1 ms per page); then how many such boosted models,
#: each drawn with its own seed, the stage averages (their mean logit: less of what one draw of
#: lines and features decides).
TREES = 50
TREE_DEPTH = 6
TREE_RATE = 0.2
TREE_L2 = 1.0
TREE_BINS = 32
TREE_ROWS = 0.5
TREE_COLUMNS = 0.5
TREE_BAGS = 3
CONTEXT_FEATURES = ("p_self", "p_prev", "p_next", "p_window_3", "p_window_near", "p_window_wide",
                    "p_doc_max", "p_doc_mean", "p_below_running_max", "p_max_after", "p_max_before")
#: The text model's stage 2 (trees) also reads each line's surroundings, comment cues and its
#: length against the page's other lines.
SURROUNDING_FEATURES = ("prev2_log_words", "next2_log_words", "prev_prose", "next_prose", "log_since_prose",
                        "log_until_prose", "block_prose", "after_comments", "log_comments_before",
                        "log_since_comment", "near_comments", "near_rules", "doc_comment_share",
                        "length_rank", "words_vs_page_prose", "near_open_prose", "log_to_peak")
#: The text model's vocabulary: per lexical slot, the keys seen on at least ``LEXICON_MIN_SITES`` sites
#: of the training pages, the ``LEXICON_SIZE`` whose weight (body log-odds against the prior, shrunk
#: towards it by ``LEXICON_PRIOR_LINES`` lines) times their sites is largest.
LEXICON_MIN_SITES = 8
LEXICON_SIZE = 1500
LEXICON_PRIOR_LINES = 20.0
#: The HTML model's pages weigh ``(pages / (datasets * pages of their dataset)) ** DATASET_BALANCE``:
#: halfway (on a log scale) between every page weighing the same and every dataset weighing the same,
#: so that Dragnet's 948 pages do not drown the other sites' layouts.
DATASET_BALANCE = 0.5


@dataclass(frozen=True)
class Page:
    """One training page: its text, fold group (site), body label per line number, gold body, dataset,
    input form, and for the HTML path the share of each line each extractor kept, their outputs, the DOM
    inputs of each line, the page's metadata title and page type, and the share of its body's words in links."""

    group: str
    text: str
    labels: dict[int, bool]
    truth: str | None = None
    dataset: str = "seeds"
    form: str = "flat-blocks"
    kept: dict[str, dict[int, float]] = field(default_factory=dict)
    page_id: str = ""
    weight: float = 1.0
    outputs: dict[str, str] = field(default_factory=dict)
    dom: np.ndarray = field(default_factory=lambda: np.zeros((0, len(DOM_COLUMNS))))
    title: str | None = None
    page_type: str | None = None
    link_share: float | None = None


def shingle_labels(text: str, body: str) -> dict[int, bool]:
    """Body label of each line (1-based) by 4-token shingle coverage, as label_lines.py does."""
    return {n: share >= COVERAGE_THRESHOLD for n, share in covered_share(text, body).items()}


def headline_is_no_body(text: str, labels: dict[int, bool]) -> dict[int, bool]:
    """``labels`` with the headline's lines as furniture: lines of two or more words that the page's
    first line (its ``<title>``) holds. The pool's gold texts keep headings, the benchmark's (the
    definition the project follows) put the headline in a field."""
    lines = text.split("\n")
    title = " ".join(_words(lines[0])) if lines else ""
    return {n: body and not (len(_words(lines[n - 1])) >= 2 and f" {' '.join(_words(lines[n - 1]))} " in f" {title} ")
            for n, body in labels.items()}


def _words(line: str) -> list[str]:
    return WORD.findall(line.casefold())


def seed_pages(gold_path: Path, seeds: Path) -> list[Page]:
    """The seeds with their gold line labels (no gold body: they train, they are not scored here)."""
    gold = json.loads(gold_path.read_text(encoding="utf-8"))
    return [Page(doc["file"], (seeds / doc["file"]).read_text(encoding="utf-8"),
                 {int(n): c == "body" for n, c in doc["lines"].items()}, page_id=doc["file"], weight=SEED_WEIGHT)
            for doc in gold["documents"]]


def load_pages(shared: Path, seeds: Path | None = None) -> list[Page]:
    """A benchmark-shaped folder's pages (``benchmark/flat-*``) in both flattenings, then the seeds."""
    benchmark = shared / "benchmark"
    truth = json.loads((benchmark / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for page_id in sorted(truth):
        body = truth[page_id].get("articleBody") or ""
        for form in FLATTENINGS:
            text = (benchmark / form / f"{page_id}.txt").read_text(encoding="utf-8")
            pages.append(Page(page_id, text, shingle_labels(text, body), body, "benchmark", form, page_id=page_id))
    return pages + seed_pages(shared / "gold" / "seeds.json", seeds or shared / "seeds")


def corpus_pages(cache: Cache, form: str, datasets: tuple[str, ...]) -> list[Page]:
    """Pages of ``datasets`` in one input form: a flattening, or ``html`` (the page's blocks, their DOM
    inputs and what each extractor kept of them; each page weighted by its dataset's size, ``DATASET_BALANCE``)."""
    texts = cache.extracted("page-text") if form == "html" else cache.flattened(form)
    outputs, dom = cache.path_inputs() if form == "html" else ({}, {})
    readings = cache.page_readings() if form == "html" else {}
    chosen = [page for page in cache.pages if page.dataset in datasets]
    sizes = Counter(page.dataset for page in chosen)
    pages = []
    for page in chosen:
        text = texts[page.page_id]
        kept = {name: kept_share(text, out[page.page_id]) for name, out in outputs.items()}
        labels = headline_is_no_body(text, shingle_labels(text, page.truth))
        weight = (len(chosen) / (len(sizes) * sizes[page.dataset])) ** DATASET_BALANCE if form == "html" else 1.0
        pages.append(Page(page.site, text, labels, page.truth, page.dataset, form, kept, page.page_id, weight,
                          outputs={name: out[page.page_id] for name, out in outputs.items()},
                          **({"dom": dom[page.page_id], **readings[page.page_id]} if form == "html" else {})))
    return pages


def design(pages: list[Page], html: bool):
    """Line table, feature names, stage-1 features, labels, weights and page index of each line."""
    lines = rule_lines([p.text for p in pages])
    if html:
        lines = with_dom(with_kept(lines, [p.kept for p in pages]), [p.dom for p in pages])
    else:
        keys = lexical_keys(lines["text"])
        lines = lines.hstack([pl.Series(f"key_{slot}", keys[:, i]) for i, slot in enumerate(LEXICAL_SLOTS)])
    names = feature_names(CATEGORY_PRIORITY) + (list(KEPT_FEATURES) + list(DOM_FEATURES) if html else [])
    x = feature_frame(lines, CATEGORY_PRIORITY).select(names).to_numpy().astype(np.float64)
    doc = lines["doc"].to_numpy()
    y = np.array([pages[d].labels.get(n, False) for d, n in zip(doc, lines["line_no"].to_list())], dtype=float)
    # Weight each line by its share of the page's words: every page counts the same, as in the metric.
    words = lines["n_words"].to_numpy().astype(float)
    page_words = np.bincount(doc, weights=words, minlength=len(pages))
    weight = words / np.maximum(page_words[doc], 1) * 100.0 * np.array([p.weight for p in pages])[doc]
    return lines, names, x, y, weight, doc


def fit_logistic(x: np.ndarray, y: np.ndarray, weight: np.ndarray) -> LogisticStage:
    """Weighted, L2-penalised logistic regression on standardised features (Newton's method)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    beta = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], L2_PENALTY)
    penalty[-1] = 0.0
    for _ in range(NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -30, 30)))
        gradient = z.T @ (weight * (p - y)) + penalty * beta
        hessian = (z * (weight * p * (1 - p))[:, None]).T @ z + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < NEWTON_TOLERANCE:
            break
    return LogisticStage(mean, scale, beta[:-1], float(beta[-1]))


def bin_edges(column: np.ndarray, bins: int) -> np.ndarray:
    """Split thresholds of one feature: midpoints between its values when it has at most ``bins`` of
    them, else its quantiles at ``1/bins``, ``2/bins``, ... (a row's bin is the number of thresholds below it)."""
    values = np.unique(column)
    if len(values) <= bins:
        return (values[1:] + values[:-1]) / 2
    return np.unique(np.quantile(column, np.arange(1, bins) / bins, method="lower"))


def bin_features(x: np.ndarray, bins: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Each feature's split thresholds (:func:`bin_edges`) and each row's bin of each feature (uint8)."""
    edges = [bin_edges(column, bins) for column in x.T]
    return edges, np.column_stack([np.searchsorted(e, column, side="left") for e, column in zip(edges, x.T)]).astype(np.uint8)


def fit_trees(x: np.ndarray, y: np.ndarray, weight: np.ndarray, bags: int = TREE_BAGS) -> TreeStage:
    """The mean logit of ``bags`` boosted models with the settings above (:func:`boost`), seeds 0 to
    ``bags - 1``: one stage of all their trees, each leaf value divided by their number."""
    binned = bin_features(x, TREE_BINS)  # the same bins for every model
    stages = [boost(x, y, weight, seed=seed, binned=binned)[0] for seed in range(bags)]
    return TreeStage(float(np.mean([stage.base for stage in stages])), np.vstack([stage.features for stage in stages]),
                     np.vstack([stage.thresholds for stage in stages]), np.vstack([stage.values for stage in stages]) / bags)


def boost(x: np.ndarray, y: np.ndarray, weight: np.ndarray, trees: int = TREES, depth: int = TREE_DEPTH,
          rate: float = TREE_RATE, penalty: float = TREE_L2, bins: int = TREE_BINS,
          rows: float = TREE_ROWS, columns: float = TREE_COLUMNS, seed: int = 0,
          binned: tuple[list[np.ndarray], np.ndarray] | None = None) -> tuple[TreeStage, np.ndarray]:
    """Gradient-boosted oblivious trees on the weighted log-loss (Newton steps), and the trainer's
    own logit of every row of ``x`` (read from the binned features, as the trees were grown).

    Each tree sees a share ``rows`` of the lines and ``columns`` of the features, drawn with the
    fixed ``seed`` (deterministic). Each level of a tree takes the feature and threshold with the best
    gain summed over the level's nodes, from histograms of gradients and Hessians over each
    feature's bins (``binned``: :func:`bin_features` of ``x`` with ``bins``, when already made).
    """
    random = np.random.default_rng(seed)
    edges, codes = binned or bin_features(x, bins)
    splittable = np.flatnonzero([len(e) > 0 for e in edges])
    prior = np.clip(np.sum(weight * y) / np.sum(weight), 1e-6, 1 - 1e-6)
    base = float(np.log(prior / (1 - prior)))
    z = np.full(len(y), base)
    features = np.zeros((trees, depth), dtype=np.intp)
    thresholds = np.zeros((trees, depth))
    values = np.zeros((trees, 1 << depth))
    for tree in range(trees):
        sample = np.flatnonzero(random.random(len(y)) < rows)
        drawn = random.random(len(splittable)) < columns
        tried = splittable[drawn] if drawn.any() else splittable
        p = 1.0 / (1.0 + np.exp(-np.clip(z[sample], -30, 30)))
        gradient, hessian = weight[sample] * (p - y[sample]), weight[sample] * p * (1 - p)
        sample_codes = {int(f): codes[sample, f].astype(np.intp) for f in tried}
        leaf = np.zeros(len(sample), dtype=np.intp)
        for level in range(depth):
            nodes = 1 << level
            best = (-np.inf, int(tried[0]), 0)
            for feature, code in sample_codes.items():
                width = len(edges[feature]) + 1
                index = leaf * width + code
                g = np.bincount(index, gradient, nodes * width).reshape(nodes, width).cumsum(axis=1)
                h = np.bincount(index, hessian, nodes * width).reshape(nodes, width).cumsum(axis=1)
                g_left, h_left, g_all, h_all = g[:, :-1], h[:, :-1], g[:, -1:], h[:, -1:]
                gain = (g_left ** 2 / (h_left + penalty) + (g_all - g_left) ** 2 / (h_all - h_left + penalty)).sum(axis=0)
                split = int(np.argmax(gain))
                if gain[split] > best[0] + 1e-12:
                    best = (gain[split], feature, split)
            _, feature, split = best
            features[tree, level], thresholds[tree, level] = feature, edges[feature][split]
            leaf = leaf * 2 + (sample_codes[feature] > split)
        g = np.bincount(leaf, gradient, 1 << depth)
        h = np.bincount(leaf, hessian, 1 << depth)
        values[tree] = -rate * g / (h + penalty)
        every_leaf = np.zeros(len(y), dtype=np.intp)
        for feature, threshold in zip(features[tree], thresholds[tree]):
            every_leaf = every_leaf * 2 + (codes[:, feature] > np.searchsorted(edges[feature], threshold))
        z += values[tree][every_leaf]
    return TreeStage(base, features, thresholds, values), z


def fold_of(groups: list[str], folds: int = FOLDS) -> dict[str, int]:
    """Deterministic fold of each group (sorted groups dealt round-robin)."""
    return {g: i % folds for i, g in enumerate(sorted(set(groups)))}


def context_features(html: bool) -> tuple[str, ...]:
    """Stage 2's inputs beside the line features: for the HTML model the stage-1 scores around each
    line and of the lines under the same parent element; for the text model also the line's surroundings."""
    return CONTEXT_FEATURES + PARENT_CONTEXT_FEATURES if html else CONTEXT_FEATURES + SURROUNDING_FEATURES


def fit_lexicon(lines: pl.DataFrame, y: np.ndarray, site: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The vocabulary of each lexical slot as ``features.lexical_index`` gives it (sorted key hashes and
    their weights), chosen and weighted by how the keys of ``lines`` (``key_<slot>`` columns) separate
    body lines (``y``) from the others across sites (``site``: each line's site)."""
    prior = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    frame = lines.select(*(f"key_{slot}" for slot in LEXICAL_SLOTS), pl.Series("y", y), pl.Series("site", site))
    index = []
    for slot in LEXICAL_SLOTS:
        key = f"key_{slot}"
        stats = (frame.group_by(key).agg(lines=pl.len(), body=pl.col("y").sum(), sites=pl.col("site").n_unique())
                 .filter(pl.col("sites") >= LEXICON_MIN_SITES)
                 .with_columns(weight=(((pl.col("body") + LEXICON_PRIOR_LINES * prior)
                                        / (pl.col("lines") - pl.col("body") + LEXICON_PRIOR_LINES * (1 - prior))).log()
                                       - np.log(prior / (1 - prior))).round(4))
                 .sort([(pl.col("weight").abs() * pl.col("sites")), key], descending=[True, False])
                 .head(LEXICON_SIZE).sort(key))
        index.append((stats[key].to_numpy(), stats["weight"].to_numpy()))
    return index


def readable_lexicon(index: list[tuple[np.ndarray, np.ndarray]], lines: pl.DataFrame) -> dict[str, dict[str, float]]:
    """The vocabulary ``index`` as the model file holds it: per slot, each key's tokens (read from the
    first line of ``lines`` that has it) and its weight, in key order."""
    lexicon = {}
    for slot, (keys, weights) in zip(LEXICAL_SLOTS, index):
        found = (lines.select("text", f"key_{slot}").filter(pl.col(f"key_{slot}").is_in(pl.Series(keys).implode()))
                 .unique(f"key_{slot}", keep="first", maintain_order=True))
        text_of = dict(zip(found[f"key_{slot}"].to_list(), lexical_strings(found["text"].to_list(), slot)))
        lexicon[slot] = dict(sorted((text_of[key], weight) for key, weight in zip(keys.tolist(), weights.tolist())))
    return lexicon


def fit_stages(pages: list[Page], html: bool, lines_x=None):
    """Stage 1 (logistic) on all lines and stage 2 (trees) on out-of-fold stage-1 scores; returns the
    stages, the input names and, for the text model, the vocabulary of its lexical inputs (which
    the stages learn from out of fold: each stacking fold's lines are scored by a vocabulary of the
    other folds)."""
    lines, names, x, y, weight, doc = lines_x or design(pages, html)
    folds = fold_of([p.group for p in pages], STACKING_FOLDS)
    line_fold = np.array([folds[pages[d].group] for d in doc])
    lexicon = {}
    if not html:
        sites = {g: i for i, g in enumerate(sorted({p.group for p in pages}))}
        site = np.array([sites[p.group] for p in pages])[doc]
        keys = lines.select(f"key_{slot}" for slot in LEXICAL_SLOTS)
        lexicon = readable_lexicon(fit_lexicon(keys, y, site), lines)
        lexical = np.zeros((len(y), len(LEXICAL_SLOTS)))
        for k in range(STACKING_FOLDS):
            held = line_fold == k
            vocabulary = fit_lexicon(keys.filter(pl.Series(~held)), y[~held], site[~held])
            lexical[held] = lexical_frame(keys.filter(pl.Series(held)).to_numpy(), vocabulary).to_numpy()
        x, names = np.hstack([x, lexical]), names + lexical_names()
    out_of_fold = np.zeros(len(y))
    for k in range(STACKING_FOLDS):
        held = line_fold == k
        out_of_fold[held] = fit_logistic(x[~held], y[~held], weight[~held]).predict(x[held])
    context = stage2_context(lines, out_of_fold, context_features(html)).to_numpy().astype(np.float64)
    return fit_logistic(x, y, weight), fit_trees(np.hstack([x, context]), y, weight), names, lexicon


def provenance(pages: list[Page], fingerprint: str | None) -> dict:
    """What a model was trained on: datasets with page counts and licences, and the data fingerprint."""
    datasets: dict[str, dict] = {}
    for page in pages:
        entry = datasets.setdefault(page.dataset, {"pages": set(), "licence": LICENCES.get(page.dataset, "the project's")})
        entry["pages"].add(page.page_id)
    return {"datasets": {name: {"pages": len(entry["pages"]), "licence": entry["licence"]}
                         for name, entry in sorted(datasets.items())},
            "data_fingerprint": fingerprint}


def train(pages: list[Page], html: bool = False, threshold: float = 0.35, run_cost: float = 8.0,
          fingerprint: str | None = None) -> LineModel:
    """Fit both stages on ``pages``; the decode settings are given (chosen by :func:`choose_decode`)."""
    stage1, stage2, names, lexicon = fit_stages(pages, html)
    return LineModel(tuple(names), context_features(html), stage1, stage2, threshold, run_cost,
                     provenance(pages, fingerprint), lexicon)


def decode(lines: pl.DataFrame, probability: np.ndarray, n_pages: int, threshold: float, run_cost: float,
           rescue: bool) -> list[str]:
    """The body of each page: the lines of its decoded body runs, joined by newlines (``rescue``: the text
    path's second decode of a page left without body, ``segments.page_body``)."""
    body = body_runs(lines, probability, threshold, run_cost, rescue)
    kept = lines.select("doc", "text").filter(pl.Series(body)).group_by("doc", maintain_order=True) \
        .agg(pl.col("text").str.join("\n"))
    bodies = [""] * n_pages
    for doc, text in kept.iter_rows():
        bodies[doc] = text
    return bodies


def subset(lines_x, pages: list[Page], chosen: np.ndarray):
    """The design of the pages whose indices are ``chosen`` (sorted), cut from the design of ``pages``."""
    lines, names, x, y, weight, doc = lines_x
    index = np.full(len(pages), -1)
    index[chosen] = np.arange(len(chosen))
    keep = index[doc] >= 0
    sub_doc = index[doc][keep]
    sub_lines = rows_of(lines, keep).with_columns(pl.Series("doc", sub_doc, dtype=pl.UInt32))
    return [pages[i] for i in chosen], (sub_lines, names, x[keep], y[keep], weight[keep], sub_doc)


def rows_of(lines: pl.DataFrame, keep: np.ndarray) -> pl.DataFrame:
    """The rows of the line table ``lines`` where ``keep`` holds, their ``text_id`` numbered as a table of those
    rows alone numbers them (``distinct.renumbered``: the cleaner reads values per distinct text by id)."""
    kept = lines.filter(pl.Series(keep))
    return kept.with_columns(pl.Series("text_id", renumbered(kept["text_id"].to_numpy()), dtype=pl.UInt32))


def fit_without(pages: list[Page], html: bool, lines_x, part_of: np.ndarray, part, threshold: float,
                run_cost: float) -> LineModel:
    """A model trained on the pages outside ``part`` (``part_of[i]`` is page i's part), from a shared design."""
    train_pages, sub = subset(lines_x, pages, np.flatnonzero(part_of != part))
    stage1, stage2, names, lexicon = fit_stages(train_pages, html, sub)
    return LineModel(tuple(names), context_features(html), stage1, stage2, threshold, run_cost, lexicon=lexicon)


def cross_validated_probability(pages: list[Page], html: bool, split) -> tuple[pl.DataFrame, np.ndarray]:
    """Stage-2 probability of every line from a model trained without its page's part of ``split``
    (``split(page) -> part``); the line table is computed once."""
    lines_x = design(pages, html)
    lines, _, _, y, _, doc = lines_x
    parts = np.array([split(p) for p in pages])
    probability = np.zeros(len(y))
    for part in sorted(set(parts.tolist())):
        model = fit_without(pages, html, lines_x, parts, part, 0.0, 0.0)
        held_lines = parts[doc] == part
        probability[held_lines] = body_probability(rows_of(lines, held_lines), model)
    return lines, probability


def corpus_f1(scorer, pages: list[Page], bodies: list[str], keep=lambda p: True) -> float:
    """The benchmark metric's corpus F1 over the pages ``keep`` selects."""
    triples = [scorer.page_counts(p.truth, b) for p, b in zip(pages, bodies) if p.truth is not None and keep(p)]
    return scorer.aggregate(triples)["f1"] if triples else float("nan")


def choose_decode(scorer, pages: list[Page], lines: pl.DataFrame, probability: np.ndarray,
                  rescue: bool) -> tuple[float, float]:
    """The decode settings with the best mean F1 over datasets and input forms, on cross-validated scores."""
    groups = sorted({(p.dataset, p.form) for p in pages if p.truth is not None})
    best = None
    for threshold in THRESHOLDS:
        for run_cost in RUN_COSTS:
            bodies = decode(lines, probability, len(pages), threshold, run_cost, rescue)
            mean = np.mean([corpus_f1(scorer, pages, bodies, lambda p, g=g: (p.dataset, p.form) == g) for g in groups])
            if best is None or mean > best[0] + 1e-9:
                best = (mean, threshold, run_cost)
    return best[1], best[2]


def build(cache: Cache, shared: Path, datasets: tuple[str, ...], seeds: Path, choose: bool,
          kinds: tuple[str, ...] = ("text", "html")) -> dict[str, LineModel]:
    """Both models, fitted on every page of ``datasets`` (the text model also on the seeds) with the
    decode settings of ``DECODE``, or with the ones site-grouped cross-validation chooses (``choose``)."""
    from tools.corpus import scorer
    folds = fold_of([p.site for p in cache.pages])
    models = {}
    for name, forms, html in (("text", FLATTENINGS, False), ("html", ("html",), True)):
        if name not in kinds:
            continue
        pages = [p for form in forms for p in corpus_pages(cache, form, datasets)]
        threshold, run_cost = DECODE[name]
        if choose:
            lines, probability = cross_validated_probability(pages, html, lambda p: folds[p.group])
            threshold, run_cost = choose_decode(scorer(shared), pages, lines, probability, not html)
            print(f"{name}: cross-validation chooses threshold {threshold}, run cost {run_cost}")
        if not html:
            pages += seed_pages(shared / "gold" / "seeds.json", seeds)
        models[name] = train(pages, html, threshold, run_cost, cache.fingerprint)
    return models


def main(argv: list[str] | None = None) -> int:
    with threadpool_limits(limits=1):  # the machine's cores are shared; one BLAS thread is as fast here
        return run(argv)


def run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=SHARED, help="folder with benchmark/, pool/, seeds/, gold/")
    parser.add_argument("--permissive", action="store_true", help="train on MIT and Apache-2.0 data only")
    parser.add_argument("--check", action="store_true", help="rebuild and compare with the shipped models")
    parser.add_argument("--choose-decode", action="store_true", help="choose the decode settings by cross-validation")
    parser.add_argument("--only", choices=("text", "html"), help="build one of the two models")
    parser.add_argument("--output", type=Path, default=MODEL_PATH.parent, help="folder for the model files")
    args = parser.parse_args(argv)
    cache = Cache(args.shared)
    datasets = PERMISSIVE if args.permissive else tuple(LICENCES)
    models = build(cache, args.shared, datasets, args.shared / "seeds", args.choose_decode,
                   (args.only,) if args.only else ("text", "html"))
    targets = {"text": MODEL_PATH.name, "html": HTML_MODEL_PATH.name}
    if args.check:
        differ = []
        with tempfile.TemporaryDirectory() as scratch:
            for name, model in models.items():
                model.save(Path(scratch) / targets[name])
                if (Path(scratch) / targets[name]).read_bytes() != (args.output / targets[name]).read_bytes():
                    differ.append(targets[name])
        print("shipped models equal a rebuild" if not differ else f"differs from a rebuild: {', '.join(differ)}")
        return 1 if differ else 0
    for name, model in models.items():
        model.save(args.output / targets[name])
        print(f"wrote {args.output / targets[name]}: threshold {model.threshold}, run cost {model.run_cost}, "
              f"trained on {json.dumps(model.trained_on['datasets'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
