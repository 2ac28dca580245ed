"""Tests of the body-run decode: against an exhaustive search, and on the patterns it is for."""
from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from commentary.clean.model import default_model
from commentary.clean.segments import body_segments, line_evidence, page_body
from commentary.clean.text import body_runs, classify_shard, rule_lines


def _objective(evidence: np.ndarray, body: np.ndarray, run_cost: float) -> float:
    runs = int(np.sum(body & ~np.r_[False, body[:-1]]))
    return float(evidence[body].sum()) - run_cost * runs


def _best_objective(evidence: np.ndarray, run_cost: float) -> float:
    return max(_objective(evidence, np.array(choice, dtype=bool), run_cost)
               for choice in itertools.product((False, True), repeat=len(evidence)))


def _one_page(evidence: list[float], run_cost: float) -> list[bool]:
    return body_segments(np.zeros(len(evidence), dtype=np.int64), np.array(evidence), run_cost).tolist()


def test_doubtful_short_lines_inside_a_body_run_stay_body():
    evidence = [6.0, 6.0, -1.5, -1.0, 6.0, 6.0]
    assert _one_page(evidence, run_cost=8.0) == [True] * 6
    assert _one_page(evidence, run_cost=0.0) == [True, True, False, False, True, True]


def test_a_lone_confident_line_among_furniture_is_dropped():
    evidence = [-4.0, -4.0, 3.0, -4.0, 6.0, 6.0, 6.0]
    assert _one_page(evidence, run_cost=4.0) == [False] * 4 + [True] * 3


pages = st.lists(st.lists(st.integers(-12, 12).map(lambda v: v / 4), min_size=1, max_size=8), min_size=1, max_size=4)


@settings(max_examples=80, deadline=None)
@given(pages, st.sampled_from([0.0, 1.5, 4.0, 8.0]))
def test_decode_is_optimal_and_pages_are_independent(page_evidence, run_cost):
    doc = np.repeat(np.arange(len(page_evidence)), [len(p) for p in page_evidence])
    shard = body_segments(doc, np.concatenate([np.array(p) for p in page_evidence]), run_cost)
    for number, evidence in enumerate(page_evidence):
        body = shard[doc == number]
        assert body.tolist() == _one_page(evidence, run_cost)
        assert abs(_objective(np.array(evidence), body, run_cost) - _best_objective(np.array(evidence), run_cost)) < 1e-2


def test_empty_shard():
    assert body_segments(np.zeros(0, dtype=np.int64), np.zeros(0), 8.0).shape == (0,)


def test_evidence_weighs_length_and_ignores_lines_without_letters():
    evidence = line_evidence(np.array([0.35, 0.9, 0.9, 0.9, 0.1]), 0.35, np.array([60, 6, 96, 3, 24]),
                             np.array([True, True, True, False, True]))
    assert evidence[0] == 0.0 and evidence[3] == 0.0
    assert evidence[2] == 4 * evidence[1] > 0 > evidence[4]


def test_a_paragraph_written_without_spaces_weighs_by_its_length():
    paragraph = ("市政府周一批准了新的年度预算，在经过长时间的辩论之后，议员们同意优先修缮学校校舍，并为公共交通增加两条新的公交线路。"
                 "据财政部门介绍，新预算将在明年年初开始执行，所有项目的进展情况都会在年中向市民公开报告，以便接受社会各界的监督。")
    menu = ["首页", "新闻", "国内", "国际", "财经"]
    lines = rule_lines(["\n\n".join([*menu, paragraph, "关于我们", "版权所有"])])
    probability = np.where(lines["text"] == paragraph, 0.8, 0.1)
    model = replace(default_model(), threshold=0.35, run_cost=8.0)
    assert body_runs(lines, probability, model.threshold, model.run_cost).tolist() == [False] * 5 + [True] + [False] * 2


def _rescue_shard(rescue: bool) -> list[bool]:
    """Three pages decoded at a cut-off of 0.4: a page with a confident article, a short article whose only
    paragraph scores below the cut-off, and a page whose best line is a two-word link."""
    doc = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    probability = np.array([0.1, 0.9, 0.1, 0.05, 0.3, 0.05, 0.05, 0.35, 0.05])
    n_words = np.array([3, 40, 2, 2, 12, 3, 2, 2, 3])
    prose = n_words >= 8 if rescue else None
    return page_body(doc, probability, 0.4, 2.0, n_words * 6, np.ones(9, dtype=bool), prose).tolist()


def test_a_page_left_without_body_keeps_its_best_prose_run_at_a_lower_cutoff():
    assert _rescue_shard(rescue=True) == [False, True, False, False, True, False, False, False, False]


def test_without_prose_flags_the_decode_is_the_plain_one():
    assert _rescue_shard(rescue=False) == [False, True, False] + [False] * 6


def test_the_text_path_rescues_a_page_its_cutoff_leaves_empty_and_the_html_decode_does_not():
    paragraph = ("The city council approved the new budget on Monday after a long debate, and members agreed to "
                 "repair school buildings first and to add two bus lines before the end of the year.")
    text = "\n\n".join(["Home", "News", "Sport", paragraph, "About us", "Contact"])
    strict = replace(default_model(), threshold=0.99)
    decided = classify_shard([text], strict)
    assert decided.filter(pl.col("category") == "body")["text"].to_list() == [paragraph]
    lines = rule_lines([text])
    probability = np.where(lines["text"] == paragraph, 0.9, 0.1)
    assert not body_runs(lines, probability, strict.threshold, strict.run_cost).any()
    assert body_runs(lines, probability, strict.threshold, strict.run_cost, rescue=True).tolist() == (lines["text"] == paragraph).to_list()
