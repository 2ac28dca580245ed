"""Two-stage line classifier (body or not), NumPy-only inference.

Stage 1 scores each line from its own features; stage 2 adds the stage-1 scores of its
neighbourhood (a stacked model), which lets a short line inside the article stay body. A stage is
a standardised logistic regression or gradient-boosted oblivious trees (``TreeStage``), which
express interactions such as "short line inside a run of prose": both models' stage 2 is trees
(the text model's also read each line's surroundings and comment cues), stage 1 is logistic.
The stage-2 scores then go to the body-run decode (``segments.py``) with the cut-off and the
price of a body run. The text model's stage 1 also reads lexical inputs: the weight its vocabulary
(``lexicon``, learned across sites) gives the first and last tokens of each line. Two models ship:
``line_model.json`` for flattened text, and ``html_model.json`` for the HTML path, whose inputs add the
share of each line that each single extractor kept (``agreement.kept_shares``), how the extractors agree
(``text.with_kept``) and the line's DOM cues (``extractors.page_blocks``, ``text.with_dom``; stage 2
also the scores of the lines under the same parent element, ``text.stage2_context``). Both are written
by ``make train`` (``tools/train.py``) and
record the data they were trained on (``trained_on``: datasets, page counts, licences).
"""
from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

from commentary.clean.features import lexical_index

MODEL_PATH = Path(__file__).resolve().parent / "line_model.json"
HTML_MODEL_PATH = Path(__file__).resolve().parent / "html_model.json"
MODEL_ID = "model.line-v2"
#: The single extractors (``extractors.py``) whose kept share of each line the HTML model reads.
EXTRACTORS = ("trafilatura", "trafilatura-precision", "readability", "resiliparse")

#: A stage's inputs: a matrix with a row per line, or the sequence of its columns (no copy into one matrix).
Inputs = np.ndarray | Sequence[np.ndarray]

_BLAS = ThreadpoolController()
#: Products run under the BLAS limit one at a time, so that concurrent shards do not undo each other's limit.
_BLAS_LIMIT_LOCK = threading.Lock()


@dataclass(frozen=True)
class LogisticStage:
    """Standardised logistic regression: ``sigmoid(((x - mean) / scale) @ coef + intercept)``."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def predict(self, x: Inputs) -> np.ndarray:
        """Probability of the positive class for each row of ``x``."""
        # Standardisation folded into the weights: one matrix-vector product. On the calling thread
        # only: OpenBLAS's helper threads keep spinning after the call, which costs more CPU time
        # than they save on a product this small (and gives the same result).
        x = x if isinstance(x, np.ndarray) else np.column_stack(x)
        weights = self.coef / self.scale
        with _BLAS_LIMIT_LOCK, _BLAS.limit(limits=1, user_api="blas"):
            z = x @ weights
        z += self.intercept - self.mean @ weights
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept}

    @classmethod
    def from_json(cls, data: dict) -> LogisticStage:
        return cls(np.asarray(data["mean"]), np.asarray(data["scale"]),
                   np.asarray(data["coef"]), float(data["intercept"]))


@dataclass(frozen=True)
class TreeStage:
    """Gradient-boosted oblivious trees: ``sigmoid(base + sum of one leaf value per tree)``.

    Every node of a tree's level tests the same feature against the same threshold (``x > t``),
    so a line's leaf is the bit pattern of its ``depth`` tests (at most 8): inference is a few
    column comparisons and one table look-up per tree, for all lines of a shard at once.
    """

    base: float
    features: np.ndarray  # (trees, depth): the feature tested at each level
    thresholds: np.ndarray  # (trees, depth)
    values: np.ndarray  # (trees, 2 ** depth): leaf values, leaf = tests read as bits, first test highest

    def logit(self, x: Inputs) -> np.ndarray:
        """The summed leaf values of each row of ``x`` (a matrix column-major for speed, or its columns), plus ``base``."""
        columns = x.T if isinstance(x, np.ndarray) else x
        z = np.full(len(columns[0]), self.base)
        # Trees share many tests: each distinct (feature, threshold) test is made once, as uint8 (0 or 1).
        pairs, test_of = np.unique(np.stack([self.features.ravel(), self.thresholds.ravel()]), axis=1, return_inverse=True)
        tests = np.empty((len(pairs[0]), len(z)), dtype=np.uint8)
        for test, feature, threshold in zip(tests, pairs[0].astype(np.intp), pairs[1]):
            np.greater(columns[feature], threshold, out=test)
        leaf = np.empty(len(z), dtype=np.uint8)  # in-place uint8 arithmetic: the cheapest bit pattern
        leaf_values = np.empty(len(z))
        for tree_tests, values in zip(test_of.reshape(self.features.shape), self.values):
            np.copyto(leaf, tests[tree_tests[0]])
            for index in tree_tests[1:]:
                np.add(leaf, leaf, out=leaf)
                np.bitwise_or(leaf, tests[index], out=leaf)
            # "clip" never clips (a leaf is below 2 ** depth) and spares the bounds check of every index.
            z += np.take(values, leaf, out=leaf_values, mode="clip")
        return z

    def predict(self, x: Inputs) -> np.ndarray:
        """Probability of the positive class for each row of ``x``."""
        return 1.0 / (1.0 + np.exp(-np.clip(self.logit(x), -30, 30)))

    def to_json(self) -> dict:
        return {"base": self.base, "trees": [{"features": f.tolist(), "thresholds": t.tolist(), "values": v.tolist()}
                                             for f, t, v in zip(self.features, self.thresholds, self.values)]}

    @classmethod
    def from_json(cls, data: dict) -> TreeStage:
        trees = data["trees"]
        return cls(float(data["base"]), np.array([t["features"] for t in trees], dtype=np.intp).reshape(len(trees), -1),
                   np.array([t["thresholds"] for t in trees], dtype=np.float64).reshape(len(trees), -1),
                   np.array([t["values"] for t in trees], dtype=np.float64).reshape(len(trees), -1))


Stage = LogisticStage | TreeStage


def stage_from_json(data: dict) -> Stage:
    """A stage from its JSON form (trees when it holds ``trees``)."""
    return TreeStage.from_json(data) if "trees" in data else LogisticStage.from_json(data)


@dataclass(frozen=True)
class LineModel:
    """Stage-1 and stage-2 classifiers with the feature names they expect, the cut-off and the
    price of a body run in the decode."""

    features: tuple[str, ...]
    context_features: tuple[str, ...]
    stage1: Stage
    stage2: Stage
    threshold: float
    run_cost: float
    trained_on: dict = field(default_factory=dict)
    #: The text model's vocabulary: per lexical slot (``features.LEXICAL_SLOTS``), each key's weight.
    lexicon: dict[str, dict[str, float]] = field(default_factory=dict)

    @cached_property
    def lexical_index(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The vocabulary's keys hashed as ``features.lexical_keys`` hashes lines, for look-up."""
        return lexical_index(self.lexicon)

    def save(self, path: Path = MODEL_PATH) -> None:
        data = {"id": MODEL_ID, "trained_on": self.trained_on, "features": list(self.features),
                "context_features": list(self.context_features), "threshold": self.threshold,
                "run_cost": self.run_cost, "stage1": self.stage1.to_json(), "stage2": self.stage2.to_json()}
        if self.lexicon:
            data["lexicon"] = self.lexicon
        path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> LineModel:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(tuple(data["features"]), tuple(data["context_features"]),
                   stage_from_json(data["stage1"]), stage_from_json(data["stage2"]),
                   float(data["threshold"]), float(data["run_cost"]), data.get("trained_on", {}),
                   data.get("lexicon", {}))


@cache
def default_model() -> LineModel:
    """The shipped text-path model (loaded once per process)."""
    return LineModel.load()


@cache
def html_model() -> LineModel:
    """The shipped HTML-path model (loaded once per process)."""
    return LineModel.load(HTML_MODEL_PATH)
