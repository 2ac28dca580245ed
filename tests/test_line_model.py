"""The line model's stages: tree inference against the trainer, the JSON form, the shipped limits,
and the text model's lexical inputs."""
import json

import numpy as np
import polars as pl

from commentary.clean.distinct import renumbered, text_ids
from commentary.clean.features import (LEXICAL_SLOTS, lexical_frame, lexical_index, lexical_keys, lexical_names,
                                       lexical_strings, line_table)
from commentary.clean.model import HTML_MODEL_PATH, MODEL_PATH, LineModel, LogisticStage, TreeStage, stage_from_json
from tools.train import LEXICON_MIN_SITES, boost, fit_lexicon, fit_logistic, fit_trees, readable_lexicon


def _interaction(rows: int = 4000):
    """Body when feature 0 is high exactly when feature 1 is low: no weight per feature expresses it."""
    random = np.random.default_rng(7)
    x = np.column_stack([random.random(rows), random.random(rows), random.integers(0, 2, rows).astype(float)])
    y = ((x[:, 0] > 0.5) == (x[:, 1] < 0.4)).astype(float)
    return x, y, np.ones(rows)


def test_tree_inference_equals_the_trainers_own_scores_after_a_json_round_trip():
    x, y, weight = _interaction()
    stage, trainer_logit = boost(x, y, weight, trees=8, depth=3)
    shipped = stage_from_json(json.loads(json.dumps(stage.to_json())))
    assert isinstance(shipped, TreeStage)
    rows = np.asfortranarray(x[:50])
    np.testing.assert_allclose(shipped.logit(rows), trainer_logit[:50], rtol=0, atol=1e-12)
    assert np.array_equal(shipped.predict(rows), stage.predict(rows))


def test_a_bag_of_boosted_models_scores_the_mean_of_their_trainers_logits():
    x, y, weight = _interaction()
    logits = [boost(x, y, weight, seed=seed)[1] for seed in range(3)]
    assert not np.allclose(logits[0], logits[1])  # each seed draws its own lines and features
    bag = fit_trees(x, y, weight, bags=3)
    np.testing.assert_allclose(bag.logit(np.asfortranarray(x)), np.mean(logits, axis=0), rtol=0, atol=1e-9)


def test_trees_learn_an_interaction_that_the_logistic_stage_cannot():
    x, y, weight = _interaction()
    trees = boost(x, y, weight, trees=20, depth=3)[0].predict(np.asfortranarray(x))
    logistic = fit_logistic(x, y, weight).predict(x)
    assert ((trees > 0.5) == y).mean() > 0.97
    assert ((logistic > 0.5) == y).mean() < 0.9


def test_shipped_models_load_through_one_interface_and_stay_cheap():
    text, html = LineModel.load(MODEL_PATH), LineModel.load(HTML_MODEL_PATH)
    for model in (text, html):
        assert isinstance(model.stage1, LogisticStage) and isinstance(model.stage2, TreeStage)
        width = len(model.features) + len(model.context_features)
        trees, depth = model.stage2.features.shape
        assert trees <= 150 and depth <= 6  # a shard's ~90,000 lines in well under 0.1 ms per page
        assert model.stage2.features.max() < width  # stage 2 reads the line's features and the context after them
        p = model.stage2.predict(np.asfortranarray(np.zeros((3, width))))
        assert p.shape == (3,) and ((p > 0) & (p < 1)).all()


def _lexical(texts: list[str], lexicon: dict) -> pl.DataFrame:
    lines = line_table(texts)
    return pl.concat([lines.select("doc", "text"), lexical_frame(lexical_keys(lines["text"]), lexical_index(lexicon))],
                     how="horizontal")


def test_lexical_keys_read_the_lines_ends_lowercased_with_digits_folded():
    texts = ["Posted by Anna | March 12, 2008", "Read more »", "POSTED BY ANNA"]
    assert [lexical_strings(texts, slot)[0] for slot in LEXICAL_SLOTS] == ["posted", "posted by", "posted by anna",
                                                                          "0", ", 0"]
    assert lexical_strings(texts, "first_2")[1] == "read more" and lexical_strings(texts, "last_1")[1] == "»"
    keys = lexical_keys(pl.Series(texts))
    assert (keys[0, :3] == keys[2, :3]).all() and len(set(keys[:, 1].tolist())) == 2
    for column, slot in enumerate(LEXICAL_SLOTS):  # a key's readable form, read whole, hashes to the key
        readable = pl.Series(lexical_strings(texts, slot))
        assert (lexical_keys(readable, whole=True)[:, column] == keys[:, column]).all()


def test_an_empty_string_has_keys_of_nothing_wherever_it_stands():
    keys = lexical_keys(pl.Series(["Read more", ""]))
    assert (keys[0] == lexical_keys(pl.Series(["Read more"]))[0]).all()
    assert (keys[1] == lexical_keys(pl.Series(["", "Read more"]))[0]).all()


def test_a_key_outside_the_vocabulary_maps_to_nothing():
    lexicon = {"first_2": {"read more": -2.5}, "last_1": {".": 1.5}}
    rows = _lexical(["Read more »", "Reading more books helps.", "READ MORE", "Read"], lexicon).rows(named=True)
    assert [row["lex_first_2"] for row in rows] == [-2.5, 0.0, -2.5, 0.0]
    assert [row["lex_last_1"] for row in rows] == [0.0, 1.5, 0.0, 0.0]
    assert all(row[name] == 0.0 for row in rows for name in ("lex_first_1", "lex_first_3", "lex_last_2"))


def test_lexical_inputs_of_a_line_are_the_same_in_any_shard():
    lexicon = LineModel.load(MODEL_PATH).lexicon
    page = "Share this story\nThe council voted on Monday to keep the night buses running.\nPosted in News | 3 Comments"
    other = "Home | World | Sport\nA different article about something else entirely, told at length.\nShare this story"
    alone = _lexical([page], lexicon).drop("doc")
    assert alone.select(pl.any_horizontal(pl.all().exclude("text") != 0)).to_series().all()  # each line has a known key
    for shard, doc in (([other, page], 1), ([page, other, page], 2)):
        assert _lexical(shard, lexicon).filter(pl.col("doc") == doc).drop("doc").equals(alone)


def test_vocabulary_keeps_keys_seen_across_sites_and_weighs_furniture_below_body():
    sites = LEXICON_MIN_SITES + 2
    texts = [f"Subscribe now\nThe story on site {i} goes on at length about its subject.\nRare{chr(97 + i)} token"
             for i in range(sites)]
    lines = line_table(texts)
    keys = lexical_keys(lines["text"])
    lines = lines.hstack([pl.Series(f"key_{slot}", keys[:, i]) for i, slot in enumerate(LEXICAL_SLOTS)])
    y = np.array([text.startswith("The story") for text in lines["text"].to_list()], dtype=float)
    lexicon = readable_lexicon(fit_lexicon(lines, y, lines["doc"].to_numpy()), lines)
    assert lexicon["first_2"]["subscribe now"] < 0 < lexicon["first_2"]["the story"]
    assert not any(key.startswith("rare") for words in lexicon.values() for key in words)  # one site each
    few = fit_lexicon(lines, y, lines["doc"].to_numpy() % (LEXICON_MIN_SITES - 1))
    assert not any(len(keys) for keys, _ in few)


def test_shipped_text_model_reads_its_lexical_inputs():
    model = LineModel.load(MODEL_PATH)
    assert set(model.lexicon) == set(LEXICAL_SLOTS) and all(model.lexicon.values())
    assert model.features[-len(LEXICAL_SLOTS):] == tuple(lexical_names())
    assert not LineModel.load(HTML_MODEL_PATH).lexicon


def test_ids_of_some_rows_are_numbered_as_those_rows_alone_number_them():
    text = pl.Series(["menu", "story", "menu", "footer", "story", "tags", "footer"])
    keep = np.array([False, True, True, True, True, False, True])
    assert renumbered(text_ids(text)[keep]).tolist() == text_ids(text.filter(pl.Series(keep))).tolist() == [0, 1, 2, 0, 2]
