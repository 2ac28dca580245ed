"""The line model's stages: tree inference against the trainer, the JSON form, the shipped limits."""
import json

import numpy as np

from commentary.clean.model import HTML_MODEL_PATH, MODEL_PATH, LineModel, LogisticStage, TreeStage, stage_from_json
from tools.train import boost, fit_logistic


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
        assert trees <= 100 and depth <= 6  # a shard's ~90,000 lines in well under 0.1 ms per page
        assert model.stage2.features.max() < width  # stage 2 reads the line's features and the context after them
        p = model.stage2.predict(np.asfortranarray(np.zeros((3, width))))
        assert p.shape == (3,) and ((p > 0) & (p < 1)).all()
