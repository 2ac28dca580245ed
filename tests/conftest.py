"""Shared fixtures: paths to the sample data and the gold labels."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from commentary.settings import apply_environment_defaults

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SEEDS = REPO / "raw"

apply_environment_defaults(REPO)


@pytest.fixture(scope="session")
def gold() -> dict:
    """The seeds' gold labels, keyed by file name."""
    return {doc["file"]: doc for doc in json.loads((SHARED / "gold" / "seeds.json").read_text())["documents"]}


@pytest.fixture
def raw_copy(tmp_path: Path) -> Path:
    """A private copy of the sample raw folder."""
    target = tmp_path / "raw"
    shutil.copytree(SEEDS, target)
    return target
