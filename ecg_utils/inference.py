"""Batched inference for beats ``(n_beats, 187)`` at 120 Hz."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .beats import feature_matrix


@torch.inference_mode()
def predict_proba(
    model: nn.Module,
    x: np.ndarray,
    features: np.ndarray | None = None,
    batch_size: int = 4096,
) -> np.ndarray:
    """Class probabilities of beats.

    Parameters
    ----------
    model : nn.Module
        In eval mode; called as ``model(x)`` or ``model(x, features)``.
    x : ndarray, shape (n_beats, 187)
        Beats in [0, 1] at 120 Hz.
    features : ndarray, shape (n_beats, k), optional
        Per-beat features for models that take them.
    batch_size : int
        Beats per forward pass; large batches keep the CPU busy.

    Returns
    -------
    ndarray, shape (n_beats, n_classes), float32
    """
    model.eval()
    out = []
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(1)
    ft = None if features is None or features.shape[1] == 0 else torch.from_numpy(features)
    for start in range(0, len(xt), batch_size):
        xb = xt[start : start + batch_size]
        logits = model(xb) if ft is None else model(xb, ft[start : start + batch_size])
        out.append(torch.softmax(logits, dim=1))
    if not out:
        return np.zeros((0, 5), np.float32)
    return torch.cat(out).numpy()


def predict_beats(loaded, beats, batch_size: int = 4096) -> np.ndarray:
    """Probabilities for a :class:`~ecg_utils.beats.Beats` set with a loaded model.

    ``loaded`` is a :class:`~ecg_utils.checkpoint.LoadedModel`; its metadata says which
    per-beat features to compute.
    """
    feature_set = loaded.meta.get("feature_set")
    feats = feature_matrix(beats.rr, feature_set) if feature_set else None
    return predict_proba(loaded.model, beats.x, feats, batch_size)
