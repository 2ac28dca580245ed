"""Properties of the text cleaner (``commentary.clean.text.clean_shard``) on generated input."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys

from hypothesis import HealthCheck, given, settings, strategies as st

from commentary.clean.text import clean_shard
from conftest import REPO, SEEDS

_SPACE = re.compile(r"\s+")
#: Words, numbers, punctuation and spaces: lines that look like prose or like page furniture.
_LINE = st.text(st.characters(categories=("L", "N", "P", "S", "Zs")), max_size=120)
_WORD = st.sampled_from("the minister said budget would pass before summer recess and critics argued that "
                        "reform of pensions is overdue while markets waited".split())
_SENTENCE = st.lists(_WORD, min_size=4, max_size=18).map(lambda words: " ".join(words).capitalize() + ".")
_FURNITURE = st.sampled_from(["Home", "Share this article", "By Ann Author", "Read more", "Advertisement",
                              "Related: Budget talks stall", "Leave a comment", "June 25, 2021", "Tags: budget, pensions"])
#: Article pages: a title, furniture, paragraphs of prose, more furniture, separated by blank lines.
ARTICLES = st.tuples(
    st.lists(_WORD, min_size=3, max_size=9).map(lambda words: " ".join(words).title()),
    st.lists(_FURNITURE, max_size=3),
    st.lists(st.lists(_SENTENCE, min_size=1, max_size=4).map(" ".join), min_size=1, max_size=6),
    st.lists(_FURNITURE, max_size=4),
).map(lambda parts: "\n\n".join([parts[0], *parts[1], *parts[2], *parts[3]]))
PAGES = st.one_of(
    st.text(),  # any Unicode at all, line breaks and control characters included
    st.lists(_LINE, max_size=30).map("\n".join),
    st.lists(_FURNITURE | _SENTENCE | _LINE, max_size=30).map("\n".join),
    ARTICLES,
)
CHECKS = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow])


def _flat(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _page_text(page) -> str:
    """A cleaned page as raw text again: its title (if any) over its body."""
    return f"{page.title}\n\n{page.body}" if page.title else page.body


@CHECKS
@given(st.lists(PAGES, max_size=6))
def test_the_cleaner_never_raises_and_returns_one_page_per_text(texts):
    pages = clean_shard(texts)
    assert len(pages) == len(texts)
    assert all(isinstance(page.body, str) for page in pages)


@CHECKS
@given(ARTICLES)
def test_cleaning_a_clean_page_changes_nothing(text):
    """On article pages; on arbitrary text a lone punctuation line may be read differently once blank lines surround it."""
    (page,) = clean_shard([text])
    (again,) = clean_shard([_page_text(page)])
    assert again.body == page.body
    assert again.title == page.title


@CHECKS
@given(PAGES)
def test_every_body_line_comes_from_the_input(text):
    (page,) = clean_shard([text])
    source = _flat(text)
    for line in page.body.split("\n"):
        assert _flat(line) in source


@CHECKS
@given(PAGES)
def test_the_audit_lines_are_the_input_lines(text):
    (page,) = clean_shard([text])
    lines = text.split("\n")
    for decision in page.lines:
        assert _flat(decision.text) == _flat(lines[decision.line_no - 1])


@CHECKS
@given(st.lists(PAGES, max_size=4))
def test_the_same_input_gives_the_same_output(texts):
    assert clean_shard(texts) == clean_shard(list(texts))


_IN_CHILD = """
import dataclasses, json, sys
from commentary.clean.text import clean_shard
pages = clean_shard(json.load(sys.stdin))
print(json.dumps([dataclasses.asdict(p) for p in pages], default=str, sort_keys=True))
"""


def test_the_output_does_not_depend_on_the_process():
    """Two processes with different hash seeds (set and dict order) clean the seeds identically."""
    texts = [path.read_text() for path in sorted(SEEDS.glob("*.txt"))]
    outputs = set()
    for seed in ("1", "2"):
        child = subprocess.run([sys.executable, "-c", _IN_CHILD], input=json.dumps(texts), capture_output=True,
                               text=True, cwd=REPO, env={**os.environ, "PYTHONHASHSEED": seed}, check=True)
        outputs.add(child.stdout)
    here = json.dumps([dataclasses.asdict(p) for p in clean_shard(texts)], default=str, sort_keys=True)
    assert outputs == {here + "\n"}
