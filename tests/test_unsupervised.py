"""Tests for ecg_utils.unsupervised: adapting a model to one recording without labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecg_utils import EcgError
from ecg_utils.beats import rr_features
from ecg_utils.inference import predict_proba
from ecg_utils.models import ResNet1D
from ecg_utils.unsupervised import (
    ADAPTATIONS,
    adapted_proba,
    check_adaptations,
    cluster_consistent,
    self_train,
)


@pytest.fixture
def recording():
    """400 beats of two shapes and a regular rhythm with early beats."""
    rng = np.random.default_rng(0)
    x = np.zeros((400, 187), np.float32)
    x[:, :10] = 1.0
    x[::7, :25] = 0.7  # every seventh beat is wider
    x += 0.02 * rng.random(x.shape).astype(np.float32)
    intervals = np.full(400, 300)
    intervals[::7] = 200  # and early
    return x, rr_features(np.cumsum(intervals), 360.0)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return ResNet1D(width=4).eval()


def test_adaptations_are_checked_and_ordered():
    assert check_adaptations(["clusters", "batchnorm"]) == ("batchnorm", "clusters")
    assert check_adaptations(None) == ()
    with pytest.raises(EcgError, match="unknown adaptation 'magic'"):
        check_adaptations(["magic"])
    assert ADAPTATIONS == ("batchnorm", "self_training", "clusters", "pseudo_labels", "paced_only")
    assert check_adaptations(["paced_only", "pseudo_labels"]) == ("pseudo_labels", "paced_only")


def test_pseudo_labels_spread_the_confident_beats_labels_to_their_neighbours():
    from ecg_utils.unsupervised import pseudo_label_vote

    rng = np.random.default_rng(0)
    features = np.concatenate([rng.normal(0, 0.1, (50, 3)), rng.normal(3, 0.1, (50, 3))])
    proba = np.full((100, 5), 0.02)
    proba[:, 0] = 0.92  # all called N confidently...
    proba[50:60] = [0.02, 0.92, 0.02, 0.02, 0.02]  # ...but ten of the second group are S
    proba[60:] = [0.5, 0.42, 0.04, 0.02, 0.02]  # the rest of that group, unsure
    out = pseudo_label_vote(proba, features, confident=0.9, neighbours=5, weight=0.5)
    assert (out[60:].argmax(1) == 1).all()  # their confident neighbours are S
    assert (out[:50].argmax(1) == 0).all()
    np.testing.assert_allclose(out.sum(1), 1, atol=1e-5)
    few = proba.copy()
    few[:, :] = 0.2  # no confident beat: unchanged
    np.testing.assert_allclose(pseudo_label_vote(few, features), few)


def test_q_only_in_a_paced_recording():
    from ecg_utils.unsupervised import paced_only

    proba = np.tile([0.3, 0.1, 0.1, 0.1, 0.4], (10, 1))
    proba[:6] = [0.6, 0.1, 0.1, 0.1, 0.1]  # 4 of 10 beats predicted Q: not paced
    out = paced_only(proba, 0.5)
    assert (out.argmax(1) != 4).all() and np.allclose(out.sum(1), 1)
    assert (paced_only(proba, 0.4).argmax(1) == 4).sum() == 4  # paced: kept as it was


def test_no_adaptation_is_plain_prediction(recording, model):
    x, rr = recording
    np.testing.assert_allclose(adapted_proba(model, x, None, [], rr), predict_proba(model, x))


@pytest.mark.parametrize("method", [m for m in ADAPTATIONS if m != "pseudo_labels"])
def test_each_adaptation_gives_probabilities_and_leaves_the_model_alone(recording, model, method):
    # pseudo_labels reads the relative features, which this network has not
    x, rr = recording
    before = {k: v.clone() for k, v in model.state_dict().items()}
    proba = adapted_proba(model, x, None, [method], rr)
    assert proba.shape == (400, 5)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_clusters_pull_a_family_together(recording):
    x, rr = recording
    proba = np.tile([0.9, 0.1, 0, 0, 0], (400, 1)).astype(np.float32)
    proba[::7] = [0.2, 0.8, 0, 0, 0]  # the wide early beats
    proba[7] = [0.9, 0.1, 0, 0, 0]  # one of them called N
    out = cluster_consistent(proba, x, rr)
    assert out[7, 1] > proba[7, 1]  # its family moves it towards S
    assert out[1, 0] == pytest.approx(0.9, abs=0.05)  # a normal beat stays normal


def test_clusters_need_rr_intervals(recording, model):
    with pytest.raises(EcgError, match="RR intervals"):
        adapted_proba(model, recording[0], None, ["clusters"])


def test_self_training_without_two_confident_classes_changes_nothing(recording, model):
    x, _ = recording
    proba = np.tile([0.99, 0.01, 0, 0, 0], (400, 1)).astype(np.float32)
    tuned = self_train(model, x, None, proba)
    for a, b in zip(tuned.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
