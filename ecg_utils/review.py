"""Active review: the beats a model is least sure of, for an analyst to label.

A Holter analyst has a few minutes, not a whole recording. Labelling the beats the model
doubts moves it most (uncertainty sampling): :func:`review_beats` lists, within a budget,
first the least sure beat of each family of similar beats (families share morphology and
prematurity, :func:`~ecg_utils.unsupervised.beat_families`), so that every kind of beat
is seen once, then the least sure of the rest. The analyst fills the ``class`` column;
``adapt --labels review.csv`` (:func:`~ecg_utils.adaptation.adapt`) learns from the rows
filled in and skips the blank ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._io import EcgError
from .beats import CLASS_NAMES

REVIEW_COLUMNS = [
    "record",
    "sample",
    "time_s",
    "family",
    "predicted",
    "confidence",
    "margin",
    "class",
]
"""Columns of a review table; ``class`` is left blank for the analyst."""
FAMILIES = 20
"""Families of beats the first review picks are spread over."""


def least_sure(proba: np.ndarray, families: np.ndarray, budget: int, exclude=()) -> np.ndarray:
    """Indices of the beats to review: one per family first, then the least sure overall.

    Parameters
    ----------
    proba : ndarray, shape (n_beats, 5)
        The model's probabilities.
    families : ndarray of int, shape (n_beats,)
        Family of each beat.
    budget : int
        How many beats to pick (at most the number of beats not excluded).
    exclude : iterable of int
        Beats already labelled.

    Returns
    -------
    ndarray of int
        In the order they should be reviewed (least sure first within each pass).
    """
    if budget < 1:
        raise EcgError(f"the review budget must be at least 1 beat, got {budget}")
    top2 = np.sort(proba, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    available = np.ones(len(proba), bool)
    available[list(exclude)] = False
    picks: list[int] = []
    firsts = []
    for f in np.unique(families):
        members = np.flatnonzero((families == f) & available)
        if len(members):
            firsts.append(members[np.argmin(margin[members])])
    for i in sorted(firsts, key=lambda i: margin[i])[:budget]:
        picks.append(int(i))
        available[i] = False
    rest = np.flatnonzero(available)
    rest = rest[np.argsort(margin[rest], kind="stable")]
    picks += [int(i) for i in rest[: budget - len(picks)]]
    return np.asarray(picks, np.int64)


def review_beats(
    model,
    signal: np.ndarray,
    fs: float,
    budget: int = 20,
    r_peaks: np.ndarray | None = None,
    lead: int = 0,
    record: str = "",
    n_families: int = FAMILIES,
    seed: int = 0,
) -> pd.DataFrame:
    """The beats of a recording an analyst should label first, within ``budget``.

    Parameters
    ----------
    model : path or LoadedModel
        The model whose doubts choose the beats (default weights when None).
    signal : ndarray, shape (n_samples,) or (n_samples, n_leads)
        The recording at ``fs`` Hz (column ``lead`` classified).
    fs : float
        Sampling rate in Hz.
    budget : int
        Beats to list (>= 1).
    r_peaks : ndarray of int, optional
        R peaks in samples; detected when None.

    Returns
    -------
    DataFrame
        :data:`REVIEW_COLUMNS`, one row per beat to review, in review order; ``class`` is
        blank; ``confidence`` is the predicted class's probability and ``margin`` its lead
        over the runner-up (small: the model doubts).
    """
    from .beats import rr_features
    from .inference import predict_proba
    from .predict import recording_inputs, resolve_weights
    from .unsupervised import beat_families

    if budget < 1:
        raise EcgError(f"the review budget must be at least 1 beat, got {budget}")
    loaded = resolve_weights(model)
    peaks, beats, feats = recording_inputs(signal, fs, r_peaks, lead, loaded.feature_set)
    if len(peaks) == 0:
        raise EcgError("no beats found in the recording: nothing to review")
    proba = predict_proba(loaded.model, beats, feats)
    families, _ = beat_families(beats, rr_features(peaks, fs), n_families, seed)
    picks = least_sure(proba, families, min(budget, len(peaks)))
    top2 = np.sort(proba[picks], axis=1)[:, -2:]
    return pd.DataFrame(
        {
            "record": record,
            "sample": peaks[picks],
            "time_s": np.round(peaks[picks] / fs, 3),
            "family": families[picks],
            "predicted": np.asarray(CLASS_NAMES)[proba[picks].argmax(1)],
            "confidence": np.round(top2[:, 1], 4),
            "margin": np.round(top2[:, 1] - top2[:, 0], 4),
            "class": "",
        },
        columns=REVIEW_COLUMNS,
    )
