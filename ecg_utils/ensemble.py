"""Ensembles of seeds: averaging several trainings of one recipe against seed noise.

One seed moves a model's judgement of new patients by 10-20 points of S sensitivity and
V +P (the report's seed-spread section). Averaging the class probabilities of k
trainings that differ only in their seed steadies it. The members of an ensemble share
their cross-validation folds (``TrainConfig.fold_seed``), so their out-of-fold
probabilities can be averaged too: k and the class offsets are chosen on those pooled
out-of-fold averages, exactly as single models are chosen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .beats import CLASS_NAMES, Beats
from .checkpoint import LoadedModel, load_fold_models, load_model, save_model
from .inference import predict_beats
from .models import Ensemble, add_logit_offsets

MIN_GAIN = 0.002
"""Pooled-score gain a larger ensemble needs over a smaller one to be chosen."""


def out_of_fold_proba(weights: str | Path, beats: Beats, folds: list[list[str]]) -> np.ndarray:
    """Pooled out-of-fold probabilities of a cross-validated run, from its fold models.

    Parameters
    ----------
    weights : path
        The run's final weights (its fold models lie beside them).
    beats : Beats
        Beats holding every record of ``folds``.
    folds : list of list of str
        Records held out by each fold (``cross_validation["folds"]`` of its results).

    Returns
    -------
    ndarray, shape (n_beats, 5), float32
        For every beat of ``beats`` in a fold, in the order of ``beats`` (rows of beats
        outside the folds are zero): its probabilities without offsets, from the fold
        model that never saw its record.
    """
    out = np.zeros((len(beats), len(CLASS_NAMES)), np.float32)
    for records, model in zip(folds, load_fold_models(weights), strict=True):
        idx = np.flatnonzero(np.isin(beats.record, records))
        out[idx] = predict_beats(model, beats.subset(idx))
    return out


def choose_members(
    probas: list[np.ndarray], y: np.ndarray, cfg, k: int | None = None
) -> tuple[int, list[float], float, list[float]]:
    """How many members to average, and the class offsets of that average.

    Parameters
    ----------
    probas : list of ndarray, shape (n_beats, 5)
        Out-of-fold probabilities of each member (seed order), without offsets.
    y : ndarray, shape (n_beats,)
    cfg : TrainConfig
        The members' recipe (its ``select_classes`` and ``calibrate``).
    k : int, optional
        A fixed number of members (the product model takes the benchmark's); else the
        smallest k within :data:`MIN_GAIN` of no better larger one.

    Returns
    -------
    k : int
    offsets : list of float
        Balanced offsets of the average of the first k members.
    score : float
        Pooled selection score of that average with those offsets.
    scores : list of float
        The score of each size 1..len(probas).
    """
    from .training import choose_class_offsets, validation_scores

    scores, chosen = [], []
    for size in range(1, len(probas) + 1):
        mean = np.mean(probas[:size], axis=0)
        if cfg.calibrate:
            offsets, score = choose_class_offsets(mean, y, cfg)
        else:
            offsets, score = [0.0] * len(CLASS_NAMES), validation_scores(mean, y, cfg)
            score = score["val_selection_f1"]
        scores.append(score)
        chosen.append(offsets)
    if k is None:
        k = 1
        for size in range(2, len(probas) + 1):
            if scores[size - 1] >= scores[k - 1] + MIN_GAIN:
                k = size
    return k, chosen[k - 1], scores[k - 1], scores


def assemble(
    members: list[LoadedModel], offsets: list[float], high: list[float], path: str | Path, meta
) -> LoadedModel:
    """Save the average of ``members`` with the ensemble's offsets; return it loaded.

    Each member's own balanced offsets (``meta["operating_points"]["balanced"]``, folded
    into its last layer) are taken off first, so the members' probabilities are those
    the offsets were chosen on.

    Parameters
    ----------
    members : list of LoadedModel
        Final models of the same architecture and feature set.
    offsets, high : list of float
        The ensemble's balanced and high-sensitivity offsets.
    path : path
        Where to write the ensemble's ``.pth`` and ``.json``.
    meta : dict
        Extra metadata (training configuration, members, times).
    """
    first = members[0].meta
    ensemble = Ensemble(first["architecture"], first["model_args"], k=len(members))
    for slot, member in zip(ensemble.members, members, strict=True):
        slot.load_state_dict(member.model.state_dict())
        own = (member.meta.get("operating_points") or {}).get("balanced")
        if own:
            add_logit_offsets(slot, [-v for v in own])
    with torch.no_grad():
        ensemble.logit_offsets.copy_(torch.as_tensor(offsets, dtype=torch.float32))
    model_args = {"member": first["architecture"], "member_args": first["model_args"]}
    save_model(
        ensemble.eval(),
        path,
        {
            "architecture": "ensemble",
            "model_args": {**model_args, "k": len(members)},
            "feature_set": first.get("feature_set"),
            "class_bias": offsets,
            "operating_points": {"balanced": offsets, "high": high},
            **meta,
        },
    )
    return load_model(path)
