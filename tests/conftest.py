"""Shared fixtures: paths to the sample data and the gold labels (all inside the repository)."""
from __future__ import annotations

import json
import os
import shutil
from html import escape
from pathlib import Path

import pytest

# The tests write raw files and read them at once; the freshness rule is tested on its own (test_ingest.py).
os.environ["COMMENTARY_MIN_FILE_AGE_SECONDS"] = "0"

from commentary.settings import apply_environment_defaults  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"
SEEDS = REPO / "raw"

apply_environment_defaults(REPO)


@pytest.fixture(scope="session")
def gold() -> dict:
    """The seeds' gold labels, keyed by file name."""
    return {doc["file"]: doc for doc in json.loads((TEST_DATA / "gold" / "seeds.json").read_text())["documents"]}


@pytest.fixture
def raw_copy(tmp_path: Path) -> Path:
    """A private copy of the sample raw folder."""
    target = tmp_path / "raw"
    shutil.copytree(SEEDS, target)
    return target


@pytest.fixture(scope="session")
def articles(gold) -> list[tuple[str, str]]:
    """Clean articles (title, body) to build raw files around: the seeds' gold titles and bodies."""
    return [(doc["fields"]["title"], doc["body"]) for _, doc in sorted(gold.items())]


def text_page(title: str, body: str) -> str:
    """A plain-text raw page: the title, a blank line, the body."""
    return f"{title}\n\n{body}\n"


def html_page(title: str, body: str) -> str:
    """A minimal HTML article page around a title and body."""
    paragraphs = "".join(f"<p>{escape(p)}</p>" for p in body.split("\n\n"))
    title = escape(title)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><article><h1>{title}</h1>{paragraphs}</article></body></html>")
