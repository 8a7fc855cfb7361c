"""Batched inference for beats ``(n_beats, 187)`` at 120 Hz.

Throughput on CPU (``bench/inference.py``) depends mostly on the batch size: batches of
a few hundred beats keep the activations (32 x 187 floats per beat after the first
convolution) in the CPU caches, while batches of thousands spill them to memory and
run 3-4 times slower. For long inputs BatchNorm is also folded into the preceding
convolutions, which removes one pass over the activations.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .beats import feature_matrix

DEFAULT_BATCH_SIZE = 256
"""Beats per forward pass: small enough to stay in cache, large enough to amortise calls."""
FUSE_MIN_BEATS = 16384
"""Fold BatchNorm only for inputs this long: folding costs a model copy (about 30 ms)."""


def fuse_for_inference(model: nn.Module) -> nn.Module:
    """A copy of an eval-mode model with each BatchNorm folded into its convolution.

    Uses ``torch.fx`` to find ``Conv1d -> BatchNorm1d`` pairs; the copy computes the
    same function up to float rounding (about 1e-5 on logits). Models that ``torch.fx``
    cannot trace are returned unchanged.
    """
    from torch.fx.experimental.optimization import fuse

    if model.training:
        return model
    try:
        return fuse(model)
    except Exception:  # untraceable control flow: run the model as it is
        return model


@torch.inference_mode()
def predict_proba(
    model: nn.Module,
    x: np.ndarray,
    features: np.ndarray | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> np.ndarray:
    """Class probabilities of beats.

    Parameters
    ----------
    model : nn.Module
        Called as ``model(x)`` or ``model(x, features)``; it is put in eval mode.
    x : ndarray, shape (n_beats, 187)
        Beats in [0, 1] at 120 Hz.
    features : ndarray, shape (n_beats, k), optional
        Per-beat features for models that take them.
    batch_size : int
        Beats per forward pass; a few hundred is fastest on CPU (see module notes).

    Returns
    -------
    ndarray, shape (n_beats, n_classes), float32
    """
    model.eval()
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(1)
    ft = None if features is None or features.shape[1] == 0 else torch.from_numpy(features)
    if len(xt) >= FUSE_MIN_BEATS:
        model = fuse_for_inference(model)
    out = []
    for start in range(0, len(xt), batch_size):
        xb = xt[start : start + batch_size]
        logits = model(xb) if ft is None else model(xb, ft[start : start + batch_size])
        out.append(torch.softmax(logits, dim=1))
    if not out:
        return np.zeros((0, 5), np.float32)
    return torch.cat(out).numpy()


def predict_beats(loaded, beats, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """Probabilities for a :class:`~ecg_utils.beats.Beats` set with a loaded model.

    ``loaded`` is a :class:`~ecg_utils.checkpoint.LoadedModel`; its metadata says which
    per-beat features to compute.
    """
    feature_set = loaded.meta.get("feature_set")
    feats = feature_matrix(beats.rr, feature_set, beats.x, beats.record) if feature_set else None
    return predict_proba(loaded.model, beats.x, feats, batch_size)
