"""Duplicates: exact by normalised body hash, near by MinHash LSH, one canonical copy per group."""
from __future__ import annotations

import datetime as dt
import random

import numpy as np
import polars as pl
import pytest

from commentary import stages, steps, tables
from commentary.ingest import doc_id_for
from commentary.settings import LSH_BANDS, LSH_ROWS, MINHASH_PERMUTATIONS, NEAR_DUPLICATE_THRESHOLD
from schemas import models
from builders import clean_run

_VOCABULARY = [f"{a}{b}{c}" for a in ("ka", "lo", "mi", "ne", "su", "ta") for b in ("r", "s", "v", "d", "n")
               for c in ("ath", "elt", "ion", "ump", "ore", "ish", "and", "ect")]


def _text(seed: int, words: int = 400) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(_VOCABULARY) for _ in range(words)]


def _row(doc: str, words: list[str], **fields) -> dict:
    body = " ".join(words)
    return {name: None for name in tables.ARTICLES.names} | {
        "doc_id": doc * 16, "source_path": f"{doc}.txt", "source_sha256": "0" * 64, "format": "text",
        "authors": [], "tags": [], "summary": [], "body": body, "word_count": len(words),
        "body_sha256": stages.body_fingerprint(body), "field_sources": dict.fromkeys(models.SOURCED_FIELDS),
    } | fields


def _marked(rows: list[dict]) -> dict[str, str | None]:
    keys = stages.dedup_keys(stages.frame(rows, tables.ARTICLES))
    return {doc[:1]: dup and dup[:1] for doc, dup in stages.canonical_copies(keys, keys["minhash"].to_numpy()).iter_rows()}


def test_syndicated_copies_point_to_the_original_outlet():
    original = _text(1)
    credit = "this piece originally appeared in the original review".split()
    rows = [
        # The copies are dated earlier and carry more metadata: the original outlet still wins.
        _row("a", credit + original[:-30], outlet="Aggregator", syndicated_from="The Original Review",
             published_date=dt.date(2021, 1, 1), title="Copy", authors=["Ann"]),
        _row("b", original, outlet="The Original Review", published_date=dt.date(2021, 3, 1)),
        _row("c", original[:200] + ["changed"] + original[201:] + credit, outlet="Reprints Daily",
             syndicated_from="The Original Review", published_date=dt.date(2021, 2, 1), tags=["x"]),
        _row("d", _text(2)),
    ]
    assert _marked(rows) == {"a": "b", "b": None, "c": "b", "d": None}


def test_among_equal_copies_the_first_path_as_people_read_it_is_canonical():
    words = _text(5)
    rows = [_row("a", words, source_path="page10.txt"), _row("b", words, source_path="page9.txt"),
            _row("c", _text(6), source_path="crawl.warc#10000"), _row("d", _text(6), source_path="crawl.warc#900")]
    assert _marked(rows) == {"a": "b", "b": None, "c": "d", "d": None}


def test_paths_that_read_alike_are_ordered_by_their_characters_whatever_the_row_order():
    words = _text(5)
    rows = [_row("a", words, source_path="page1.txt"), _row("b", words, source_path="page01.txt")]
    assert _marked(rows) == _marked(rows[::-1]) == {"a": "b", "b": None}


def test_the_same_topic_in_different_words_is_not_a_duplicate():
    shared = _text(3)
    rows = [_row("a", shared), _row("b", shared[:150] + _text(4, 250))]
    assert _marked(rows) == {"a": None, "b": None}


@pytest.mark.parametrize("kept, grouped", [(0.95, True), (0.9, True), (0.75, False), (0.5, False)])
def test_threshold_separates_copies_from_overlapping_pieces(kept, grouped):
    """A copy keeps a share of the original and replaces the rest: Jaccard about kept / (2 - kept),
    so 0.90 and 0.82 for the copies, 0.60 and 0.33 for the overlapping pieces."""
    original = _text(5, 1000)
    cut = int(len(original) * kept)
    copy = original[:cut] + _text(6, len(original) - cut)
    assert NEAR_DUPLICATE_THRESHOLD == 0.7
    assert (_marked([_row("a", original), _row("b", copy)])["b"] == "a") is grouped


def test_without_an_original_outlet_the_earliest_then_the_richest_copy_wins():
    words = _text(7)
    rows = [
        _row("a", words, published_date=dt.date(2021, 7, 1)),
        _row("b", words, published_date=dt.date(2021, 6, 25)),
        _row("c", words, published_date=dt.date(2021, 6, 25), title="Titled", authors=["Ann"]),
        _row("d", words),
        _row("e", _text(8)),
    ]
    assert _marked(rows) == {"a": "c", "b": "c", "c": None, "d": "c", "e": None}


def test_exact_duplicates_differ_only_in_case_and_spacing():
    words = _text(9, 20)
    rows = [_row("a", words), _row("b", [w.upper() for w in words])]
    assert rows[0]["body_sha256"] == rows[1]["body_sha256"]
    assert _marked(rows) == {"a": None, "b": "a"}


def test_a_run_without_articles_has_no_duplicates():
    keys = stages.dedup_keys(stages.frame([], tables.ARTICLES))
    assert stages.canonical_copies(keys, keys["minhash"].to_numpy()).height == 0 and keys.schema["minhash"] == pl.Array(pl.UInt32, 128)


def test_curate_step_marks_a_syndicated_copy_across_shards(raw_copy, tmp_path):
    original = "001_9b0d62718ef8cca1.txt"
    (raw_copy / "syndicated").mkdir()
    text = (raw_copy / original).read_text()
    (raw_copy / "syndicated" / "copy.txt").write_text(text + "\nThis piece originally appeared in Example Review.\n")
    (raw_copy / "syndicated" / "copy.txt.meta.json").write_text('{"published_date": "2020-01-02"}')
    (raw_copy / f"{original}.meta.json").write_text('{"published_date": "2020-01-01"}')
    plan = clean_run(raw_copy, tmp_path, shard_size=2)
    steps.curate_step(plan)
    articles = plan.run.articles().frame(["source_path", "duplicate_of"])
    marked = dict(articles.select("source_path", "duplicate_of").iter_rows())
    assert len(plan.shards) == 3 and len(marked) == 6
    assert marked.pop("syndicated/copy.txt") == doc_id_for(original)
    assert set(marked.values()) == {None}


def test_near_duplicate_pairs_connect_what_datasketch_lsh_connects():
    """The NumPy banding joins the same documents as the pairs a datasketch MinHashLSH at the same threshold finds."""
    from datasketch import LeanMinHash, MinHashLSH

    rng = random.Random(7)
    bodies = []
    for seed in range(60):
        words = _text(seed, 200)
        bodies += [" ".join(words)] * (1 + seed % 3)  # exact copies too
        for keep in (0.95, 0.85, 0.75, 0.6):  # copies with the tail replaced: some above the threshold, some below
            cut = int(len(words) * keep)
            bodies.append(" ".join(words[:cut] + [rng.choice(_VOCABULARY) for _ in range(len(words) - cut)]))
    signatures = stages.minhash_signatures(bodies)
    lsh = MinHashLSH(threshold=NEAR_DUPLICATE_THRESHOLD, num_perm=signatures.shape[1])
    sketches = [LeanMinHash(seed=1, hashvalues=row, scheme="affine32") for row in signatures]
    for i, sketch in enumerate(sketches):
        lsh.insert(i, sketch)
    expected = [(i, j) for i, sketch in enumerate(sketches) for j in lsh.query(sketch)
                if j > i and (signatures[i] == signatures[j]).mean() >= NEAR_DUPLICATE_THRESHOLD]
    found = [tuple(pair) for pair in stages.near_duplicate_pairs(signatures).tolist()]
    assert set(found) <= set(expected) and 60 < len(found) < len(expected)
    assert _groups(found, len(bodies)) == _groups(expected, len(bodies))


def test_a_story_copied_to_hundreds_of_sites_is_one_group_from_pairs_that_grow_with_its_copies_not_their_square():
    """Two large clusters that share an LSH band: the pairs join exactly the groups that all similar pairs join."""
    rng = np.random.default_rng(3)
    bases = rng.integers(0, 2**32, size=(2, MINHASH_PERMUTATIONS), dtype=np.uint64).astype(np.uint32)
    bases[1, :LSH_ROWS] = bases[0, :LSH_ROWS]  # the clusters fall into one bucket of the first band
    rows = []
    for base in bases:
        for _ in range(300):
            row = base.copy()
            changed = rng.choice(np.arange(LSH_ROWS, MINHASH_PERMUTATIONS), size=10, replace=False)
            row[changed] = rng.integers(0, 2**32, size=10, dtype=np.uint64).astype(np.uint32)
            rows.append(row)
    signatures = np.array(rows)
    found = [tuple(pair) for pair in stages.near_duplicate_pairs(signatures).tolist()]
    similar = (signatures[:, None, :] == signatures[None, :, :]).mean(axis=2) >= NEAR_DUPLICATE_THRESHOLD
    expected = [(i, j) for i, j in zip(*np.nonzero(np.triu(similar, 1)))]
    assert _groups(found, len(rows)) == _groups(expected, len(rows)) == [0] * 300 + [300] * 300
    assert len(found) <= LSH_BANDS * len(rows) < len(expected)  # a spanning set per band, not all 89,700 similar pairs


def _groups(pairs: list[tuple[int, int]], size: int) -> list[int]:
    """The smallest member of each index's connected group."""
    group = list(range(size))
    for i, j in sorted(pairs):
        low, high = min(group[i], group[j]), max(group[i], group[j])
        group = [low if g == high else g for g in group]
    return group


def test_a_signature_depends_only_on_its_own_body():
    """Signatures of a shard are computed in one call; a body's is the same alone, among others, or in another run."""
    bodies = [" ".join(_text(seed, 50 + 40 * seed)) for seed in range(6)] + ["just three words"]
    together = stages.minhash_signatures(bodies)
    alone = [stages.minhash_signatures([body])[0] for body in bodies]
    assert (together == alone).all()
    assert (stages.minhash_signatures(list(reversed(bodies)))[::-1] == together).all()


def _word_hash(word: str) -> int:
    """A word's hash in Python integers: the polynomial of its UTF-8 bytes in FNV-1's 64-bit prime, then splitmix64's
    finaliser."""
    value, mask = 0, 2 ** 64 - 1
    for byte in word.encode():
        value = (value * 0x100000001B3 + byte) & mask
    value = ((value ^ value >> 30) * 0xBF58476D1CE4E5B9) & mask
    value = ((value ^ value >> 27) * 0x94D049BB133111EB) & mask
    return value ^ value >> 31


def test_word_hashes_are_integer_arithmetic_on_the_bytes_the_same_on_every_machine(monkeypatch):
    words = ["café", "naïve", "東京", "a", "déjà", "a", "x" * 300, "café"]
    assert stages._word_hashes(pl.Series(words)).tolist() == [_word_hash(word) for word in words]
    monkeypatch.setattr(stages, "_HASHED_BYTES", 4)  # hashed a few bytes at a time, a word longer than that whole
    assert stages._word_hashes(pl.Series(words)[1:]).tolist() == [_word_hash(word) for word in words[1:]]


def test_a_shingle_hashes_its_words_in_order_and_a_short_body_is_one_shingle():
    """Each shingle's hash is its words' hashes (``_word_hash``), the k-th rotated by 13 k bits, xored and mixed; rensa
    takes those."""
    from rensa import RMinHash

    bodies = [" ".join(_text(seed, [1, 3, 4, 5, 6, 40][seed])) for seed in range(6)] + ["?!", "Mixed CASE words here"]

    def rotated(value: int, k: int) -> int:
        return ((value << 13 * k) | (value >> (64 - 13 * k))) & (2 ** 64 - 1) if k else value

    expected = []
    for body in bodies:
        words = [_word_hash(word) for word in (body.lower().split() if body != "?!" else [])]
        width = min(5, len(words))
        shingles = [words[i:i + width] for i in range(len(words) - width + 1)] if words else []
        hashes = [0] * len(shingles)
        for n, shingle in enumerate(shingles):
            for k, word in enumerate(shingle):
                hashes[n] ^= rotated(word, k)
        mixed = stages._mix64(np.array(hashes, dtype=np.uint64))
        expected.append(np.array(RMinHash.digest_matrix_from_flat_token_hashes(
            mixed, np.array([0, len(mixed)], dtype=np.uint64), 128, 1).to_rows()[0], dtype=np.uint32))
    assert (stages.minhash_signatures(bodies) == np.array(expected)).all()


def test_the_same_words_in_another_order_are_not_a_near_duplicate():
    words = _text(11)
    shuffled = words[:]
    random.Random(5).shuffle(shuffled)
    same, other = stages.minhash_signatures([" ".join(words), " ".join(shuffled)])
    assert (same == other).mean() < 0.1
