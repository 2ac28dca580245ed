"""The language of an article's body, for pages that do not state one.

py3langid (a naive Bayes model over byte n-grams for 97 languages) ships its model inside the
package: nothing is downloaded at run time, and the same text always gets the same answer.
"""
from __future__ import annotations

import math
from functools import cache

import numpy as np

#: What ``field_sources.language`` says of a detected language.
SOURCE = "detected:py3langid"
#: A guess less likely than this is no answer (the model is certain, above 0.99, on a paragraph of prose).
MIN_PROBABILITY = 0.9
#: Bodies shorter than this (in characters) give too little text to tell.
MIN_CHARS = 40
#: Only the body's start is read (the time grows with the length): 500 characters give the same answers as whole
#: bodies on the seeds and on 500 synthetic pages, each with probability >= 0.997.
MAX_CHARS = 500


@cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@cache
def _automaton() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The model as arrays: the byte automaton (next state by row offset and byte, each row's offset, each state's
    feature) and each feature's weight per language, in float32 (py3langid multiplies its float16 weights in float32:
    casting them once is the same product, without a cast per text)."""
    identifier = _identifier()
    return (np.frombuffer(identifier.tk_nextmove, dtype=identifier.tk_nextmove.typecode),  # shared, not copied: 10 M states
            np.asarray(identifier._rowbase, dtype=np.int64), np.asarray(identifier.tk_output, dtype=np.int64),
            identifier.nb_ptc.astype(np.float32))


def detect_all(bodies: list[str]) -> list[str | None]:
    """The ISO 639-1 code of the language each of ``bodies`` is written in, or None when the text is too short or the
    model unsure: py3langid's ``classify``, with its automaton walked over every body at once (one numpy step per
    byte instead of a Python step per byte and body)."""
    identifier = _identifier()
    chosen = [n for n, body in enumerate(bodies) if len(body) >= MIN_CHARS]
    encoded = [identifier._encode(bodies[n][:MAX_CHARS]) for n in chosen]
    features = _features(encoded)
    found: list[str | None] = [None] * len(bodies)
    for n, data, row in zip(chosen, encoded, features, strict=True):
        found[n] = _decide(identifier, data, row[row >= 0])
    return found


def _features(encoded: list[bytes]) -> np.ndarray:
    """The feature the automaton emits at each byte of each text (-1: none), one row per text.

    The texts are walked longest first, so that the texts still being read at a step are a leading slice of them.
    """
    nextmove, rowbase, output, _ = _automaton()
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    order = np.argsort(-lengths, kind="stable")
    width = int(lengths.max(initial=0))
    letters = np.zeros((width, len(encoded)), dtype=np.int64)  # by step, then by text (longest first)
    for column, row in enumerate(order):
        letters[:lengths[row], column] = np.frombuffer(encoded[row], dtype=np.uint8)
    reading = np.searchsorted(-lengths[order], -np.arange(width), side="left")  # per step: how many texts are longer
    states = np.zeros(len(encoded), dtype=np.int64)
    features = np.full((width, len(encoded)), -1, dtype=np.int64)
    for step, count in enumerate(reading.tolist()):
        states[:count] = nextmove[rowbase[states[:count]] + letters[step, :count]]
        features[step, :count] = output[states[:count]]
    unsorted = np.empty_like(features)
    unsorted[:, order] = features
    return unsorted.T


def _decide(identifier, data: bytes, features: np.ndarray) -> str | None:
    """The language of one text from the features it emitted, as ``LanguageIdentifier.classify`` (normalised) decides."""
    if not features.size:
        return None  # no feature: every language equally likely
    kinds, first, counts = np.unique(features, return_index=True, return_counts=True)
    weights = _automaton()[3]
    order = np.argsort(first, kind="stable")  # the order py3langid sums them in: the same sums
    scores = np.log1p(counts[order].astype(np.float32)) @ weights[kinds[order]] + identifier.nb_pc
    scores *= 1.0 / math.sqrt(len(data))
    np.exp(scores - scores.max(), out=scores)
    scores /= scores.sum()
    for kept, folded in identifier._alias_pairs:
        scores[kept] += scores[folded]
        scores[folded] = 0.0
    best = int(scores.argmax())
    return identifier.nb_classes[best] if scores[best] >= MIN_PROBABILITY else None
