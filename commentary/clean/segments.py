"""Body segments: the best split of each page into body runs and furniture runs (NumPy, whole shard).

An article's text is mostly one contiguous region: a short list item or table row inside it is
body even when the line model doubts it, and a lone confident line among menus is not. Each
line brings evidence for body (its model log-odds against the cut-off, weighted by its length);
each body run costs a fixed price. The decode keeps the runs with the highest total: the
two-state Viterbi path, read from max-marginals (best score through each state of each line),
which come from max-plus products of 2x2 step matrices over the whole shard at once. The scan
works in integers, so its result is exact and a page's lines get the same decision wherever
the page sits in its shard.

A page whose decode keeps no line is decoded again at a lower cut-off, a share of its own highest
body probability (``RESCUE_CUTOFF_SHARE``), and keeps that run if it holds a prose line: an article
of one short paragraph (a photo post, a video page) scores below the cut-off on many sites, and an
empty body loses the whole page.
"""
from __future__ import annotations

import numpy as np

#: Evidence is counted in these units before the integer scan (1/1024 of a log-odds unit).
SCALE = 1024
#: Line length is measured in characters, in units of an English word and its space, so that
#: scripts written without spaces (Chinese, Japanese, Thai) weigh as much as spaced ones.
CHARS_PER_WORD = 6

#: The second decode of a page left without body cuts at this share of the page's highest body probability.
RESCUE_CUTOFF_SHARE = 0.5

Matrices = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def line_evidence(probability: np.ndarray, threshold: float, n_chars: np.ndarray,
                  has_letters: np.ndarray) -> np.ndarray:
    """Log-odds of body against ``threshold``, times the square root of the line's length.

    The metric counts words, and a long line is surer evidence than a short one. A line without
    letters (a rank, a count, a row of dashes) brings none: it follows the run around it.
    """
    p = np.clip(probability, 1e-9, 1 - 1e-9)
    log_odds = np.log(p / (1 - p)) - np.log(threshold / (1 - threshold))
    return log_odds * np.sqrt(n_chars / CHARS_PER_WORD) * has_letters


def _compose(later: Matrices, earlier: Matrices) -> Matrices:
    """Max-plus products ``later @ earlier`` of 2x2 matrices stored as four arrays (row-major)."""
    a00, a01, a10, a11 = later
    b00, b01, b10, b11 = earlier
    return (np.maximum(a00 + b00, a01 + b10), np.maximum(a00 + b01, a01 + b11),
            np.maximum(a10 + b00, a11 + b10), np.maximum(a10 + b01, a11 + b11))


def _prefix_products(steps: Matrices) -> Matrices:
    """``steps[i] @ ... @ steps[0]`` for every ``i`` (work-efficient scan: pairs, then recurse)."""
    n = len(steps[0])
    if n == 1:
        return steps
    pairs = _prefix_products(_compose(tuple(m[1::2] for m in steps), tuple(m[0:n - 1:2] for m in steps)))
    filled = _compose(tuple(m[2::2] for m in steps), tuple(p[:(n - 1) // 2] for p in pairs))
    result = tuple(np.empty_like(m) for m in steps)
    for out, step, pair, fill in zip(result, steps, pairs, filled):
        out[0] = step[0]
        out[1::2] = pair
        out[2::2] = fill
    return result


def body_segments(doc: np.ndarray, evidence: np.ndarray, run_cost: float) -> np.ndarray:
    """Body flag of each line: per page, the runs maximising ``sum(body evidence) - run_cost * runs``.

    ``doc`` is sorted (the lines of one page are contiguous and in page order).
    """
    n = len(doc)
    if n == 0:
        return np.zeros(0, dtype=bool)
    score = np.round(evidence * SCALE).astype(np.int64)
    enter = score - round(run_cost * SCALE)
    zero = np.zeros(n, dtype=np.int64)
    starts = np.r_[True, doc[1:] != doc[:-1]]
    # Step into line i, states 0 (furniture) and 1 (body), matrix[to][from]: staying or leaving
    # is free, entering a body run costs run_cost, a body line scores its evidence. A page's first
    # line ignores the state before it, so pages decode independently in one scan of the shard.
    forward = _prefix_products((zero, zero, enter, np.where(starts, enter, score)))
    # Best score of what follows line i given its state: the transposed steps of the next lines,
    # multiplied from the end of the shard backwards. A page's last line sees the next page's
    # first step, which does not depend on its state; the shard's last line sees all zeros.
    enter_next, score_next = np.r_[enter[1:], 0], np.r_[score[1:], 0]
    score_next = np.where(np.r_[starts[1:], False], enter_next, score_next)
    backward = _prefix_products(tuple(m[::-1] for m in (zero, enter_next, zero, score_next)))
    after_furniture, after_body = backward[0][::-1], backward[2][::-1]
    return forward[2] + after_body > forward[0] + after_furniture


def page_body(doc: np.ndarray, probability: np.ndarray, threshold: float, run_cost: float, n_chars: np.ndarray,
              has_letters: np.ndarray, prose: np.ndarray | None = None) -> np.ndarray:
    """Body flag of each line: the decode of ``body_segments`` at ``threshold``, and, when ``prose`` (a flag
    per line) is given, for a page it leaves without body the decode at ``RESCUE_CUTOFF_SHARE`` of the
    page's highest ``probability`` (at most ``threshold``) if that keeps a prose line. ``doc`` is sorted
    as for ``body_segments``."""
    body = body_segments(doc, line_evidence(probability, threshold, n_chars, has_letters), run_cost)
    if prose is None or len(doc) == 0:
        return body
    new_page = np.r_[True, doc[1:] != doc[:-1]]
    starts, page = np.flatnonzero(new_page), np.cumsum(new_page) - 1
    empty = ~np.logical_or.reduceat(body, starts)[page]
    if not empty.any():
        return body
    cutoff = np.minimum(threshold, RESCUE_CUTOFF_SHARE * np.maximum.reduceat(probability, starts))[page[empty]]
    rescued = body_segments(doc[empty], line_evidence(probability[empty], cutoff, n_chars[empty], has_letters[empty]),
                            run_cost)
    with_prose = np.bincount(page[empty], weights=rescued & prose[empty], minlength=len(starts)) > 0
    body[empty] = rescued & with_prose[page[empty]]
    return body
