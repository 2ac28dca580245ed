"""How texts agree, counted in the benchmark metric's unit, the 4-word shingle; and the page's text.

``kept_share`` / ``kept_shares``: the share of each page line that an extractor's output holds (an input
of the HTML line model); ``covered_share``: the same with shingles across lines, as the benchmark's line
labels count (training labels). ``consensus_text`` chooses a page's text between the HTML model's and
the extractors' outputs: the medoid, the text that shares the most 4-word shingles with the others,
unless that is a trafilatura text and the block model and readability-lxml agree with each other
clearly more than with it; less the lines that no other text holds. Nothing here runs an extractor:
the evaluation caches the extractors' outputs under a key of ``extractors.py`` alone, so a change here
does not make it run them again.
"""
from __future__ import annotations

import re
from itertools import chain, combinations

import numpy as np

#: Words are ``\w+`` runs; a line's word is covered when one of the 4-word shingles holding it
#: is in the reference (the benchmark metric's unit).
_WORD = re.compile(r"\w+")
_WORD_OR_BREAK = re.compile(r"\w+|\n")
SHINGLE = 4
#: Shingles are coded as one int64 each, exactly (word ids in base ``vocabulary + 1``) while that fits.
_CODE_LIMIT = 2 ** 63


def kept_share(text: str, reference: str) -> dict[int, float]:
    """Share of each line's words (1-based line number) that ``reference`` holds in the same order:
    covered by a 4-word shingle of the line found in ``reference``; a line of fewer words counts
    when all of them appear together in ``reference``. Unlike :func:`covered_share`, no shingle
    spans two lines (of either text), so a line next to kept text is not counted as kept."""
    return kept_shares(text, {"": reference})[""]


def kept_shares(text: str, references: dict[str, str]) -> dict[str, dict[int, float]]:
    """:func:`kept_share` of ``text`` against each reference, the text read once. Shingles are compared
    as integer codes in NumPy (sorted arrays instead of sets of word tuples)."""
    tokenized = [_line_words(t) for t in (text, *references.values())]
    ids, base = _word_ids([words for words, _ in tokenized])
    page_ids, page_line = ids[0], tokenized[0][1]
    n_lines = text.count("\n") + 1
    counts = np.bincount(page_line, minlength=n_lines)
    starts, long_rows = _windows(page_ids, page_line, SHINGLE)
    short = np.flatnonzero((counts > 0) & (counts < SHINGLE))  # lines matched whole
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    short_rows = np.zeros((len(short), SHINGLE), dtype=np.int64)
    for j in range(SHINGLE - 1):
        has = counts[short] > j
        short_rows[has, j] = page_ids[first[short[has]] + j]
    blocks = [long_rows, short_rows]
    for reference_ids, (_, reference_line) in zip(ids[1:], tokenized[1:]):
        blocks.extend(_windows(reference_ids, reference_line, size)[1] for size in range(1, SHINGLE + 1))
    codes = _split_codes(blocks, base)
    long_codes, short_codes = codes[0], codes[1]
    long = counts >= SHINGLE
    numbers = np.flatnonzero(counts)
    shares_of = {}
    for k, name in enumerate(references):
        grams = np.sort(np.concatenate(codes[2 + SHINGLE * k: 2 + SHINGLE * (k + 1)]))
        hit = starts[_member(long_codes, grams)]
        edges = np.zeros(len(page_ids) + SHINGLE + 1, dtype=np.int64)
        np.add.at(edges, hit, 1)
        np.add.at(edges, hit + SHINGLE, -1)
        covered = np.cumsum(edges)[:len(page_ids)] > 0
        shares = np.zeros(n_lines)
        shares[long] = np.bincount(page_line, weights=covered, minlength=n_lines)[long] / counts[long]
        shares[short] = _member(short_codes, grams)
        shares_of[name] = dict(zip((numbers + 1).tolist(), shares[numbers].tolist()))
    return shares_of


def _line_words(text: str) -> tuple[list[str], np.ndarray]:
    """The words of ``text`` and the (0-based) line of each."""
    tokens = _WORD_OR_BREAK.findall(text)
    breaks = np.fromiter(map("\n".__eq__, tokens), dtype=bool, count=len(tokens))
    words = [token for token, is_break in zip(tokens, breaks.tolist()) if not is_break] if breaks.any() else tokens
    return words, np.cumsum(breaks)[~breaks]


def _word_ids(texts: list[list[str]]) -> tuple[list[np.ndarray], int]:
    """Each text's words as ids from 1, shared by all texts, and the base that codes them (ids < base)."""
    vocabulary = dict.fromkeys(chain.from_iterable(texts))
    vocabulary = dict(zip(vocabulary, range(1, len(vocabulary) + 1)))
    return ([np.fromiter(map(vocabulary.__getitem__, words), dtype=np.int64, count=len(words)) for words in texts],
            len(vocabulary) + 1)


def _windows(ids: np.ndarray, line: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The start of every run of ``size`` words of ``ids`` within one line, and the run's ids as a row
    of SHINGLE columns (0 after the run)."""
    starts = np.arange(max(0, len(ids) - size + 1))
    starts = starts[line[starts] == line[starts + size - 1]]
    rows = np.zeros((len(starts), SHINGLE), dtype=np.int64)
    for j in range(size):
        rows[:, j] = ids[starts + j]
    return starts, rows


def _split_codes(blocks: list[np.ndarray], base: int) -> list[np.ndarray]:
    """One int64 per row of each block of word-id rows, equal exactly when the rows are: the row read as
    a number in ``base`` when that fits, else the row's rank among the distinct rows of all blocks."""
    rows = np.concatenate(blocks)
    if base ** SHINGLE < _CODE_LIMIT:
        codes = rows[:, 0].copy()
        for j in range(1, SHINGLE):
            codes = codes * base + rows[:, j]
    else:
        codes = np.unique(rows, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)
    return np.split(codes, np.cumsum([len(block) for block in blocks])[:-1])


def _member(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """Whether each of ``values`` is in the sorted array ``sorted_set``."""
    if len(sorted_set) == 0:
        return np.zeros(len(values), dtype=bool)
    return sorted_set[np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)] == values


def _distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted."""
    values = np.sort(values)
    return values[np.concatenate(([True], values[1:] != values[:-1]))] if len(values) else values


def covered_share(text: str, reference: str) -> dict[int, float]:
    """Share of each line's words (1-based line number) covered by 4-word shingles of ``reference``
    (shingles run across lines, as the benchmark's line labels do)."""
    words = _WORD.findall(reference)
    shingles = {tuple(words[i:i + SHINGLE]) for i in range(max(1, len(words) - SHINGLE + 1))}
    tokens, owner = [], []
    for number, line in enumerate(text.split("\n"), start=1):
        for token in _WORD.findall(line):
            tokens.append(token)
            owner.append(number)
    covered = np.zeros(len(tokens), dtype=bool)
    for i in range(max(1, len(tokens) - SHINGLE + 1)):
        if tuple(tokens[i:i + SHINGLE]) in shingles:
            covered[i:i + SHINGLE] = True
    owner_array = np.asarray(owner, dtype=np.int64)
    total = np.bincount(owner_array, minlength=1)
    hit = np.bincount(owner_array, weights=covered, minlength=1)
    return {int(n): float(hit[n] / total[n]) for n in np.flatnonzero(total)}


#: The outputs that may replace the HTML model's text on a page; resiliparse's output only votes
#: (as a candidate it lowered the cross-validated F1 a little: dev split by site, pool with a dataset left out).
CANDIDATES = ("trafilatura", "trafilatura-precision", "readability")
#: How much more closely the block model's text and readability-lxml's agree with each other (shingle F1)
#: than the trafilatura text the medoid chose agrees with either, for one of those two to replace it.
INDEPENDENT_PAIR_MARGIN = 0.1
#: A line of the chosen text stays when another of the texts holds at least this share of its words
#: (``kept_share``); a line no other text holds is a block only one extractor kept (a sidebar, a share bar).
#: Any share from 0.25 to 0.75 gave the same held-out figures.
HELD_SHARE = 0.5


def shingle_overlaps(texts: list[str]) -> tuple[list[int], np.ndarray]:
    """The number of distinct 4-word shingles of each text, and the number each pair of texts shares."""
    ids, base = _word_ids([_WORD.findall(text) for text in texts])
    shingles = [_distinct(codes) for codes in _split_codes(
        [_windows(text_ids, np.zeros(len(text_ids), dtype=np.int64), SHINGLE)[1] for text_ids in ids], base)]
    common = np.zeros((len(texts), len(texts)), dtype=np.int64)
    for i, j in combinations(range(len(texts)), 2):
        common[i, j] = common[j, i] = np.count_nonzero(_member(shingles[i], shingles[j]))
    return [len(own) for own in shingles], common


def agreement(texts: list[str], overlaps: tuple[list[int], np.ndarray] | None = None) -> list[float]:
    """How much each text agrees with the others: the F1 of its mean 4-word-shingle precision and
    mean recall against each other text (0 for an empty text); ``overlaps``: their
    :func:`shingle_overlaps`, when already counted."""
    sizes, common = overlaps or shingle_overlaps(texts)
    scores = []
    for i, own in enumerate(sizes):
        others = [j for j in range(len(texts)) if j != i]
        precision = float(np.mean([int(common[i, j]) / own if own else 0.0 for j in others]))
        recall = float(np.mean([int(common[i, j]) / sizes[j] if sizes[j] else 0.0 for j in others]))
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return scores


def _pair_f1(sizes: list[int], common: np.ndarray, i: int, j: int) -> float:
    """The shingle F1 of texts ``i`` and ``j`` against each other (0 when either is empty)."""
    return 2 * int(common[i, j]) / (sizes[i] + sizes[j]) if sizes[i] and sizes[j] else 0.0


def consensus_text(model_text: str, outputs: dict[str, str]) -> str:
    """The page's text among the HTML model's and the ``CANDIDATES`` extractors' outputs: the one that
    agrees most with all the others (every extractor in ``outputs`` votes); the model's text on a tie.

    trafilatura's two settings share most of their code, so their texts often agree with each other on
    the same wrong block (a teaser or related list) and outvote the rest: when the medoid is a
    trafilatura text and the block model's text and readability-lxml's, made in unrelated ways, agree
    with each other by ``INDEPENDENT_PAIR_MARGIN`` more than that text agrees with either of them, the
    page keeps whichever of those two agrees most with all the texts. The chosen text then loses the lines
    that no other text holds (:func:`held_elsewhere`)."""
    voters = [name for name in outputs if name not in CANDIDATES]
    texts = [model_text, *(outputs.get(name, "") for name in CANDIDATES), *(outputs[name] for name in voters)]
    sizes, common = overlaps = shingle_overlaps(texts)
    scores = agreement(texts, overlaps)
    chosen = int(np.argmax(scores[:1 + len(CANDIDATES)]))
    model, readability = 0, 1 + CANDIDATES.index("readability")
    if chosen in (1 + CANDIDATES.index("trafilatura"), 1 + CANDIDATES.index("trafilatura-precision")):
        chosen_pair = max(_pair_f1(sizes, common, chosen, model), _pair_f1(sizes, common, chosen, readability))
        if _pair_f1(sizes, common, model, readability) - chosen_pair >= INDEPENDENT_PAIR_MARGIN:
            chosen = model if scores[model] >= scores[readability] else readability
    return held_elsewhere(texts, chosen)


def held_elsewhere(texts: list[str], chosen: int) -> str:
    """``texts[chosen]`` without its lines of which no other text holds ``HELD_SHARE`` of the words
    (lines without words stay); whole when no other text holds any of its words (the other extractors
    gave nothing, or only a page of their own: then nothing tells its furniture from its article)."""
    text = texts[chosen]
    others = {str(i): other for i, other in enumerate(texts) if i != chosen and other.strip()}
    if not text or not others:
        return text
    shares = list(kept_shares(text, others).values())
    if not any(any(share.values()) for share in shares):
        return text
    return "\n".join(line for number, line in enumerate(text.split("\n"), start=1)
                     if number not in shares[0] or any(share[number] >= HELD_SHARE for share in shares))
