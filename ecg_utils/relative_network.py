"""A small convolutional network on the patient-relative features of a beat.

The relative feature vector (:mod:`ecg_utils.relative`) holds, per lead, the beat's own
shape and its difference from the recording's dominant beat (22 samples each, scaled by
the recording's median QRS amplitude) beside the rhythm columns (RR over the patient's
own averages) and a few per-lead scalars. :class:`RelativeBeatCNN` reads the waveform
columns as the channels of a 1-D convolution and joins the rhythm and scalar columns
after pooling: a network fed the relative beat plus RR, not the absolute shape a network
otherwise learns patients by. It takes ``(x, features)`` like the other feature models
(:mod:`ecg_utils.trees`) and ignores ``x``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

CNN_DEFAULTS = {
    "width": 16,
    "hidden": 64,
    "epochs": 12,
    "batch_size": 512,
    "lr": 3e-3,
    "weight_decay": 1e-4,
    "max_class_weight": 100.0,
    "seed": 0,
}
"""Training of :func:`fit_relative_cnn`: AdamW with a one-cycle schedule, class-weighted
cross-entropy (a class weighs at most ``max_class_weight`` times the commonest)."""


class RelativeBeatCNN(nn.Module):
    """1-D convolutions over a beat's relative waveform columns, then a small MLP.

    Parameters
    ----------
    n_features : int
        Length of the feature vector given, ``(batch, n_features)``.
    wave_columns : list of list of int
        One list per channel (a lead's own or relative beat), each of the same length:
        the columns read as that channel, in time order.
    other_columns : list of int
        Columns joined after the convolutions (rhythm and per-lead scalars).
    width : int
        Channels of the first convolution (the second has twice as many).
    hidden : int
        Units of the hidden layer.
    num_classes : int

    Features are standardised with the buffers ``mean`` and ``scale`` (set by
    :func:`fit_relative_cnn`). Output: logits ``(batch, num_classes)`` plus
    ``logit_offsets``.
    """

    def __init__(
        self,
        n_features: int,
        wave_columns: list[list[int]],
        other_columns: list[int],
        width: int = 16,
        hidden: int = 64,
        num_classes: int = 5,
    ):
        super().__init__()
        self.n_features = int(n_features)
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        self.register_buffer("wave_columns", torch.as_tensor(wave_columns, dtype=torch.long))
        self.register_buffer("other_columns", torch.as_tensor(other_columns, dtype=torch.long))
        self.conv = nn.Sequential(
            nn.Conv1d(len(wave_columns), width, 5, padding=2),
            nn.ReLU(),
            nn.Conv1d(width, 2 * width, 5, padding=2),
            nn.ReLU(),
            nn.AdaptiveMaxPool1d(1),
        )
        self.head = nn.Sequential(
            nn.Linear(2 * width + len(other_columns), hidden),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(hidden, num_classes),
        )
        self.register_buffer("logit_offsets", torch.zeros(num_classes))

    def forward(self, x: torch.Tensor | None, features: torch.Tensor) -> torch.Tensor:
        f = (features - self.mean) / self.scale
        waves = f[:, self.wave_columns]  # (batch, channels, samples)
        h = self.conv(waves).flatten(1)
        return self.head(torch.cat([h, f[:, self.other_columns]], 1)) + self.logit_offsets


def wave_layout(names: list[str]) -> tuple[list[list[int]], list[int]]:
    """Channels and other columns of a relative feature vector, from its column names
    (``l0_own_00`` ... ``l1_rel_21``: lead, kind, sample)."""
    channels: dict[str, list[int]] = {}
    other = []
    for i, name in enumerate(names):
        parts = name.split("_")
        if len(parts) == 3 and parts[1] in ("own", "rel") and parts[2].isdigit():
            channels.setdefault(f"{parts[0]}_{parts[1]}", []).append(i)
        else:
            other.append(i)
    return list(channels.values()), other


def fit_relative_cnn(
    features: np.ndarray,
    y: np.ndarray,
    names: list[str],
    params: dict | None = None,
    num_classes: int = 5,
) -> tuple[RelativeBeatCNN, dict]:
    """Train a :class:`RelativeBeatCNN` on relative features, seeded.

    Parameters
    ----------
    features : ndarray, shape (n_beats, n_features)
        Relative features without NaN.
    y : ndarray, shape (n_beats,)
        AAMI labels 0..4.
    names : list of str
        The columns' names (:func:`~ecg_utils.relative.column_names`).
    params : dict, optional
        Overrides of :data:`CNN_DEFAULTS`.

    Returns
    -------
    model : RelativeBeatCNN
        In eval mode.
    model_args : dict
    """
    p = {**CNN_DEFAULTS, **(params or {})}
    torch.manual_seed(p["seed"])
    rng = np.random.default_rng(p["seed"])
    x = np.asarray(features, np.float32)
    y = np.asarray(y, np.int64)
    waves, other = wave_layout(list(names))
    args = {
        "n_features": x.shape[1],
        "wave_columns": waves,
        "other_columns": other,
        "width": p["width"],
        "hidden": p["hidden"],
        "num_classes": num_classes,
    }
    model = RelativeBeatCNN(**args)
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-6] = 1.0
    model.mean.copy_(torch.as_tensor(mean))
    model.scale.copy_(torch.as_tensor(scale))
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    weight = np.where(counts > 0, counts.max() / np.maximum(counts, 1), 0.0)
    weight = np.minimum(weight, p["max_class_weight"])
    loss_fn = nn.CrossEntropyLoss(weight=torch.as_tensor(weight, dtype=torch.float32))
    opt = torch.optim.AdamW(model.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    steps = p["epochs"] * -(-len(y) // p["batch_size"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=p["lr"], total_steps=steps)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    model.train()
    for _ in range(p["epochs"]):
        order = torch.as_tensor(rng.permutation(len(y)))
        for start in range(0, len(y), p["batch_size"]):
            idx = order[start : start + p["batch_size"]]
            opt.zero_grad()
            loss_fn(model(None, xt[idx]), yt[idx]).backward()
            opt.step()
            sched.step()
    return model.eval(), args
