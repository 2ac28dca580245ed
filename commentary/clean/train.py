"""Train the line model on the benchmark's derived line labels plus the seeds' gold labels.

    uv run python -m commentary.clean.train [--shared PATH] [--cv]

Writes ``commentary/clean/line_model.json`` deterministically (Newton's method, fixed folds).
``--cv`` also reports the benchmark F1 in-sample and with 5-fold cross-validation grouped by
page (both flattenings of a page always fall in the same fold).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from commentary.clean.features import context_frame, feature_frame, feature_names
from commentary.clean.model import MODEL_PATH, LineModel, LogisticStage
from commentary.clean.rules import CATEGORY_PRIORITY
from commentary.clean.text import clean_shard, rule_lines

SHARED = Path(__file__).resolve().parents[3] / "shared"
FLATTENINGS = ("flat-blocks", "flat-naive")
WORD = re.compile(r"\w+")
#: Line-label rule of the benchmark's label_lines.py: body when half its tokens are covered.
COVERAGE_THRESHOLD = 0.5
SHINGLE = 4
#: L2 penalty on standardised weights; folds for stacking and for cross-validation.
L2_PENALTY = 1.0
FOLDS = 5
NEWTON_STEPS = 25
BODY_THRESHOLD = 0.35
#: Price of a body run in the decode, in length-weighted log-odds units (segments.line_evidence).
RUN_COST = 8.0
CONTEXT_FEATURES = ("p_self", "p_prev", "p_next", "p_window_3", "p_window_near", "p_window_wide",
                    "p_doc_max", "p_doc_mean", "p_below_running_max", "p_max_after", "p_max_before")


@dataclass(frozen=True)
class Page:
    """One training page: its text, a group key for folds, and a body label per line number."""

    group: str
    text: str
    labels: dict[int, bool]
    truth: str | None = None
    flattening: str | None = None


def shingle_labels(text: str, body: str) -> dict[int, bool]:
    """Body label of each line (1-based) by 4-token shingle coverage, as label_lines.py does."""
    gold = WORD.findall(body)
    shingles = {tuple(gold[i:i + SHINGLE]) for i in range(max(1, len(gold) - SHINGLE + 1))}
    tokens, owner = [], []
    for number, line in enumerate(text.split("\n"), start=1):
        for token in WORD.findall(line):
            tokens.append(token)
            owner.append(number)
    covered = np.zeros(len(tokens), dtype=bool)
    for i in range(max(1, len(tokens) - SHINGLE + 1)):
        if tuple(tokens[i:i + SHINGLE]) in shingles:
            covered[i:i + SHINGLE] = True
    total: dict[int, int] = {}
    hit: dict[int, int] = {}
    for j, number in enumerate(owner):
        total[number] = total.get(number, 0) + 1
        hit[number] = hit.get(number, 0) + int(covered[j])
    return {n: hit[n] / total[n] >= COVERAGE_THRESHOLD for n in total}


def load_pages(shared: Path, seeds: Path | None = None) -> list[Page]:
    """Benchmark pages in both flattenings, then the seeds (``seeds``, default ``shared/seeds``) with their gold labels."""
    benchmark = shared / "benchmark"
    truth = json.loads((benchmark / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for page_id in sorted(truth):
        body = truth[page_id].get("articleBody") or ""
        for flattening in FLATTENINGS:
            text = (benchmark / flattening / f"{page_id}.txt").read_text(encoding="utf-8")
            pages.append(Page(page_id, text, shingle_labels(text, body), body, flattening))
    gold = json.loads((shared / "gold" / "seeds.json").read_text(encoding="utf-8"))
    for doc in gold["documents"]:
        text = ((seeds or shared / "seeds") / doc["file"]).read_text(encoding="utf-8")
        pages.append(Page(doc["file"], text, {int(n): c == "body" for n, c in doc["lines"].items()}))
    return pages


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
        beta -= np.linalg.solve(hessian, gradient)
    return LogisticStage(mean, scale, beta[:-1], float(beta[-1]))


def design(pages: list[Page]):
    """Line table, stage-1 features, labels, weights and per-line page index of ``pages``."""
    lines = rule_lines([p.text for p in pages])
    names = feature_names(CATEGORY_PRIORITY)
    x = feature_frame(lines, CATEGORY_PRIORITY).select(names).to_numpy().astype(np.float64)
    doc = lines["doc"].to_numpy()
    y = np.array([pages[d].labels.get(n, False) for d, n in zip(doc, lines["line_no"].to_list())], dtype=float)
    # Weight each line by its share of the page's words: every page counts the same, as in the metric.
    words = lines["n_words"].to_numpy().astype(float)
    page_words = np.bincount(doc, weights=words)
    weight = words / page_words[doc] * 100.0
    return lines, names, x, y, weight, doc


def fold_of(groups: list[str]) -> dict[str, int]:
    """Deterministic fold of each group (sorted groups dealt round-robin)."""
    return {g: i % FOLDS for i, g in enumerate(sorted(set(groups)))}


def train(pages: list[Page]) -> LineModel:
    """Fit stage 1 on all lines, and stage 2 on out-of-fold stage-1 scores."""
    lines, names, x, y, weight, doc = design(pages)
    folds = fold_of([p.group for p in pages])
    line_fold = np.array([folds[pages[d].group] for d in doc])
    out_of_fold = np.zeros(len(y))
    for k in range(FOLDS):
        held = line_fold == k
        out_of_fold[held] = fit_logistic(x[~held], y[~held], weight[~held]).predict(x[held])
    context = context_frame(lines, out_of_fold).select(CONTEXT_FEATURES).to_numpy().astype(np.float64)
    stage1 = fit_logistic(x, y, weight)
    stage2 = fit_logistic(np.hstack([x, context]), y, weight)
    return LineModel(tuple(names), CONTEXT_FEATURES, stage1, stage2, BODY_THRESHOLD, RUN_COST)


def _scorer(shared: Path):
    spec = importlib.util.spec_from_file_location("score_aeb", shared / "tools" / "score_aeb.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def benchmark_f1(shared: Path, pages: list[Page], bodies: dict[int, str]) -> dict[str, float]:
    """Corpus F1 of predicted bodies (by index into ``pages``) for each flattening."""
    scorer = _scorer(shared)
    result = {}
    for flattening in FLATTENINGS:
        triples = [scorer.page_counts(pages[i].truth, body) for i, body in sorted(bodies.items())
                   if pages[i].flattening == flattening]
        result[flattening] = round(scorer.aggregate(triples)["f1"], 4)
    return result


def cross_validate(shared: Path, pages: list[Page], model: LineModel) -> dict[str, dict[str, float]]:
    """Benchmark F1 in-sample and with page-grouped cross-validation."""
    scored = [i for i, p in enumerate(pages) if p.truth is not None]
    in_sample = clean_shard([pages[i].text for i in scored], model)
    report = {"in_sample": benchmark_f1(shared, pages, {i: c.body for i, c in zip(scored, in_sample)})}
    folds = fold_of([p.group for p in pages])
    bodies = {}
    for k in range(FOLDS):
        fold_model = train([p for p in pages if folds[p.group] != k])
        held = [i for i in scored if folds[pages[i].group] == k]
        for i, cleaned in zip(held, clean_shard([pages[i].text for i in held], fold_model)):
            bodies[i] = cleaned.body
    report["cross_validated"] = benchmark_f1(shared, pages, bodies)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=SHARED, help="folder with benchmark/, seeds/, gold/")
    parser.add_argument("--cv", action="store_true", help="also report in-sample and cross-validated F1")
    parser.add_argument("--output", type=Path, default=MODEL_PATH)
    args = parser.parse_args()
    pages = load_pages(args.shared)
    model = train(pages)
    model.save(args.output)
    print(f"wrote {args.output} ({len(pages)} pages)")
    if args.cv:
        print(json.dumps(cross_validate(args.shared, pages, model), indent=1))


if __name__ == "__main__":
    main()
