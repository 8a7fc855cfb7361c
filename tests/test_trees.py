"""Boosted trees and the linear model as tensors: equal to scikit-learn, saved and loaded
like the networks, one lead or two, and monotonic where asked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecg_utils.checkpoint import load_model, save_model
from ecg_utils.trees import ByLeads, fit_boosted_trees, fit_boosted_trees_ovr, fit_linear


def _data(n: int = 1500, k: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, k)).astype(np.float32)
    y = np.zeros(n, np.int64)
    y[x[:, 0] < -0.8] = 1
    y[x[:, 1] > 1.2] = 2
    y[(x[:, 2] > 1.5) & (y == 0)] = 4
    return x, y


def _proba(model, x):
    with torch.no_grad():
        return torch.softmax(model(None, torch.as_tensor(x)), 1).numpy()


def test_boosted_trees_give_scikit_learns_probabilities():
    from sklearn.ensemble import HistGradientBoostingClassifier

    from ecg_utils.trees import _class_weights

    x, y = _data()
    params = dict(max_iter=20, max_leaf_nodes=7)
    model, args = fit_boosted_trees(x, y, params)
    clf = HistGradientBoostingClassifier(random_state=0, **params)
    clf.fit(x.astype(np.float64), y, sample_weight=_class_weights(y, 5))
    expected = clf.predict_proba(x.astype(np.float64))
    got = _proba(model, x)
    np.testing.assert_allclose(got[:, clf.classes_], expected, atol=1e-5)
    assert got[:, 3].max() < 1e-10  # a class absent from training is never predicted
    assert args["n_trees"] == 20 * 4


def test_the_linear_model_gives_scikit_learns_probabilities():
    from sklearn.linear_model import LogisticRegression

    x, y = _data()
    model, _ = fit_linear(x, y, {"C": 0.1})
    mean, scale = x.mean(0), x.std(0)
    from ecg_utils.trees import _class_weights

    clf = LogisticRegression(C=0.1, max_iter=2000)
    clf.fit((x - mean) / scale, y, sample_weight=_class_weights(y, 5))
    expected = clf.predict_proba((x - mean) / scale)
    np.testing.assert_allclose(_proba(model, x)[:, clf.classes_], expected, atol=1e-4)


def test_one_vs_rest_trees_are_monotone_where_asked():
    x, y = _data(n=3000)
    # S (class 1) comes with small x0: ask for S to fall as x0 grows
    model, _ = fit_boosted_trees_ovr(x, y, {"max_iter": 30}, {1: [-1, 0, 0, 0, 0, 0]})
    grid = np.tile(x[:200], (1, 1))
    logits_before = model(None, torch.as_tensor(grid)).detach().numpy()[:, 1]
    for step in np.linspace(0.1, 3, 8):
        moved = grid.copy()
        moved[:, 0] += step
        after = model(None, torch.as_tensor(moved)).detach().numpy()[:, 1]
        assert np.all(after <= logits_before + 1e-9)
    assert (_proba(model, x).argmax(1) == y).mean() > 0.9


def test_by_leads_reads_one_lead_when_the_second_is_missing(tmp_path):
    x, y = _data(k=6)
    full, full_args = fit_boosted_trees(x, y, {"max_iter": 10})
    first, first_args = fit_boosted_trees(x[:, :4], y, {"max_iter": 10})
    args = {
        "full": {"architecture": "trees", "model_args": full_args},
        "first": {"architecture": "trees", "model_args": first_args},
    }
    model = ByLeads(**args)
    model.full.load_state_dict(full.state_dict())
    model.first.load_state_dict(first.state_dict())
    one = x.copy()
    one[:, 4:] = np.nan
    np.testing.assert_allclose(_proba(model, x), _proba(full, x), atol=1e-6)
    np.testing.assert_allclose(_proba(model, one), _proba(first, x[:, :4]), atol=1e-6)
    # saved as a plain state dict and rebuilt from its metadata alone
    path = tmp_path / "m.pth"
    save_model(model, path, {"architecture": "by_leads", "model_args": args, "feature_set": None})
    loaded = load_model(path)
    np.testing.assert_allclose(_proba(loaded.model, one), _proba(model, one), atol=1e-6)
    proba = loaded.predict_proba(np.zeros((len(x), 187), np.float32), x)
    np.testing.assert_allclose(proba, _proba(model, x), atol=1e-5)


def test_a_tree_model_without_features_is_a_clear_error():
    x, y = _data()
    model, _ = fit_boosted_trees(x, y, {"max_iter": 3})
    with pytest.raises(ValueError, match="features"):
        model(torch.zeros(2, 1, 187))
