"""Fine-tuning a patient-relative model on one patient's labelled beats, with replay.

A global model misses what is peculiar to a patient; a model fitted on the patient's few
labelled beats alone forgets the classes that were not labelled (V beats absent from the
first 5 minutes, say). So, as Kiranyaz et al. (2016) train on common and patient beats
together, the patient's labelled beats are mixed with a replay of the model's own
training beats (a small class-balanced set stored in the shipped weights,
``replay_features``/``replay_labels``), each half of the weight and class-balanced
within its half, and the model is *continued*: scikit-learn's
``GradientBoostingClassifier`` starts from the shipped model's probabilities (its
``init``) and adds a fixed budget of small trees (:data:`FINE_TUNE`, chosen on DS1 record
folds). The result (:class:`~ecg_utils.trees.PatientTrees`) is the shipped model plus
the patient's trees; it saves and loads like any other model.
"""

from __future__ import annotations

import numpy as np
import torch

from ._io import EcgError
from .beats import CLASS_NAMES
from .trees import SENTINEL, PatientTrees, trees_from_gradient_boosting

FINE_TUNE = {"n_estimators": 40, "max_depth": 3, "learning_rate": 0.1, "subsample": 1.0}
"""Trees added per class and their size (the step budget), chosen on DS1 record folds."""
PATIENT_SHARE = 0.5
"""Share of the loss weight on the patient's labelled beats (the rest on the replay)."""
REPLAY_PER_CLASS = 600
"""Replay beats per class stored with the shipped weights (fewer when a class has fewer)."""


def replay_set(features: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A class-balanced sample of training beats to replay while fine-tuning.

    Parameters
    ----------
    features : ndarray, shape (n_beats, n_features)
    y : ndarray, shape (n_beats,)

    Returns
    -------
    features, labels : ndarrays, up to :data:`REPLAY_PER_CLASS` beats per class, float32
        and int64 (about 1.2 MB for 3,000 beats of 103 features).
    """
    rng = np.random.default_rng(seed)
    idx = []
    for k in range(len(CLASS_NAMES)):
        members = np.flatnonzero(y == k)
        idx.append(rng.choice(members, min(len(members), REPLAY_PER_CLASS), replace=False))
    idx = np.sort(np.concatenate(idx))
    return np.asarray(features[idx], np.float32), np.asarray(y[idx], np.int64)


class _Start:
    """The shipped model as scikit-learn's initial estimator (fitted already)."""

    def __init__(self, model, classes: np.ndarray):
        self.model = model
        self.classes = classes

    def fit(self, x, y, sample_weight=None):
        return self

    def predict_proba(self, x):
        f = np.where(x == SENTINEL, np.nan, x).astype(np.float32)
        with torch.no_grad():
            logits = self.model(None, torch.as_tensor(f))
        return torch.softmax(logits, 1).numpy()[:, self.classes]


def _weights(y: np.ndarray, total: float) -> np.ndarray:
    """Per-beat weights summing to ``total``, every class present weighing the same."""
    present = np.unique(y)
    per_class = total / len(present)
    counts = np.bincount(y, minlength=len(CLASS_NAMES))
    return per_class / counts[y]


def fine_tune(loaded, features: np.ndarray, labels: np.ndarray, params: dict | None = None):
    """A copy of a relative-recipe model fine-tuned on one patient's labelled beats.

    Parameters
    ----------
    loaded : LoadedModel
        A shipped model of the relative recipe carrying its replay set.
    features : ndarray, shape (n_labelled, n_features)
        The labelled beats' relative features (NaN columns for a missing second lead:
        the replay is then read with one lead too).
    labels : ndarray, shape (n_labelled,)
        Their AAMI labels 0..4.
    params : dict, optional
        Overrides of :data:`FINE_TUNE`.

    Returns
    -------
    model : PatientTrees
        In eval mode.
    model_args : dict
    """
    from sklearn.ensemble import GradientBoostingClassifier

    base = loaded.model
    replay = getattr(base, "replay_features", None)
    if replay is None or len(replay) == 0:
        raise EcgError("these weights carry no replay set: they cannot be fine-tuned")
    rx = replay.numpy().copy()
    ry = base.replay_labels.numpy()
    f = np.asarray(features, np.float32)
    if np.isnan(f[:, base.n_first :]).any():  # one lead: the replay is read with one lead
        rx[:, base.n_first :] = np.nan
    x = np.nan_to_num(np.concatenate([f, rx]), nan=SENTINEL)
    y = np.concatenate([np.asarray(labels, np.int64), ry])
    w = np.concatenate(
        [_weights(np.asarray(labels, np.int64), PATIENT_SHARE), _weights(ry, 1 - PATIENT_SHARE)]
    )
    classes = np.unique(y)
    clf = GradientBoostingClassifier(
        init=_Start(base, classes), random_state=0, **{**FINE_TUNE, **(params or {})}
    )
    clf.fit(x, y, sample_weight=w * len(w))
    trees, trees_args = trees_from_gradient_boosting(clf, len(CLASS_NAMES))
    args = {
        "base": {
            "architecture": loaded.meta["architecture"],
            "model_args": loaded.meta["model_args"],
        },
        "trees": trees_args,
    }
    model = PatientTrees(**args)
    model.base.load_state_dict(base.state_dict())
    model.trees.load_state_dict(trees.state_dict())
    return model.eval(), args
