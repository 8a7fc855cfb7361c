"""A PyTorch ``Dataset`` of beats, what training's ``DataLoader`` draws batches from."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .beats import Beats, beat_features


class BeatDataset(TensorDataset):
    """The beats of a :class:`~ecg_utils.beats.Beats` set as tensors, item by item.

    Item ``i`` is ``(x, features, label, soft)``:

    - ``x``: the beat, ``(1, 187)`` float32 in [0, 1] at 120 Hz (one input channel);
    - ``features``: its per-beat features ``(k,)`` float32 (``k = 0`` without a
      ``feature_set``);
    - ``label``: the AAMI class, int64 in 0..4 (N, S, V, F, Q);
    - ``soft``: a teacher's log-probabilities ``(5,)`` for distillation, else ``(0,)``.

    A ``DataLoader`` stacks them into ``(batch, 1, 187)``, ``(batch, k)``, ``(batch,)``
    and ``(batch, 5 or 0)``. ``tensors`` holds the four whole tensors.

    Parameters
    ----------
    beats : Beats
    feature_set : str, optional
        Key of :data:`~ecg_utils.beats.FEATURE_SETS` (``"rr"``, ``"rr+morph"``, …).
    soft : Tensor, shape (n_beats, 5), optional
        Teacher log-probabilities, one row per beat.
    """

    def __init__(
        self, beats: Beats, feature_set: str | None = None, soft: torch.Tensor | None = None
    ):
        x = torch.from_numpy(np.ascontiguousarray(beats.x, dtype=np.float32)).unsqueeze(1)
        f = torch.from_numpy(beat_features(beats, feature_set))
        y = torch.from_numpy(beats.y.astype(np.int64))
        super().__init__(x, f, y, torch.zeros(len(y), 0) if soft is None else soft)
        self.feature_set = feature_set
