"""Beats read in sequence: a temporal convolution over a recording's beats.

A premature beat, a run of supraventricular tachycardia or a bigeminal rhythm shows
across many beats, not in one. :class:`SequenceHead` reads, for every beat of a
recording, what the beat model concluded (its log-probabilities) and the beat's
scale-free rhythm features, over about 14 beats on each side (dilated 1-D convolutions
along the beat axis), and corrects the beat model's logits.

It is trained by stacking: its inputs on the training records are the beat model's
*out-of-fold* probabilities (from fold models that never saw each record), since those
look like what the beat model gives a new patient. It is judged on the same record
folds: the head of fold k is trained on the other folds' records. (The out-of-fold
inputs of those records came from fold models that had seen fold k's records: a
second-order leak that makes its out-of-fold figures slightly optimistic.)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from .beats import CLASS_NAMES, Beats, beat_features

SEQUENCE_FEATURES = "rhythm"
"""Per-beat features the head reads besides the beat model's log-probabilities."""


@dataclass
class SequenceConfig:
    """How a sequence head is trained (saved with its results)."""

    channels: int = 32
    kernel: int = 5
    dilations: tuple[int, ...] = (1, 2, 4)
    chunk: int = 256
    """Beats per training sequence (a random stretch of one record)."""
    batch: int = 16
    steps: int = 600
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0

    def to_dict(self) -> dict:
        return {**asdict(self), "dilations": list(self.dilations)}


class SequenceHead(nn.Module):
    """Dilated temporal convolutions over a recording's beats ``(batch, k, n_beats)``.

    Parameters
    ----------
    n_inputs : int
        Inputs per beat: 5 log-probabilities and the per-beat features.
    channels, kernel, dilations :
        Width, kernel size (beats) and dilation of each layer; the receptive field is
        ``1 + (kernel - 1) * sum(dilations)`` beats.

    The output ``(batch, 5, n_beats)`` adds a correction to the input log-probabilities;
    the correction starts at zero, so an untrained head repeats the beat model.
    """

    def __init__(self, n_inputs: int, channels: int = 32, kernel: int = 5, dilations=(1, 2, 4)):
        super().__init__()
        layers, width = [], n_inputs
        for d in dilations:
            layers += [nn.Conv1d(width, channels, kernel, dilation=d, padding=d * (kernel // 2))]
            layers += [nn.ReLU()]
            width = channels
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv1d(channels, len(CLASS_NAMES), 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.register_buffer("mean", torch.zeros(n_inputs))
        self.register_buffer("std", torch.ones(n_inputs))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        z = (inputs - self.mean[:, None]) / self.std[:, None]
        return inputs[:, : len(CLASS_NAMES)] + self.out(self.body(z))


def sequence_inputs(proba: np.ndarray, beats: Beats) -> np.ndarray:
    """Per-beat inputs ``(n_beats, 5 + k)``: log-probabilities and rhythm features."""
    logp = np.log(np.clip(proba, 1e-6, None)).astype(np.float32)
    return np.concatenate([logp, beat_features(beats, SEQUENCE_FEATURES)], axis=1)


def _by_record(beats: Beats) -> list[np.ndarray]:
    return [np.flatnonzero(beats.record == r) for r in dict.fromkeys(beats.record.tolist())]


def train_head(inputs: np.ndarray, beats: Beats, cfg: SequenceConfig) -> SequenceHead:
    """Train a head on ``inputs`` ``(n_beats, k)`` of ``beats`` (labels, records).

    Each step draws ``cfg.batch`` stretches of ``cfg.chunk`` beats from random records
    (seeded); plain cross-entropy on every beat of each stretch.
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    head = SequenceHead(inputs.shape[1], cfg.channels, cfg.kernel, cfg.dilations)
    x = torch.from_numpy(np.ascontiguousarray(inputs, np.float32))
    head.mean.copy_(x.mean(0))
    head.std.copy_(x.std(0).clamp_min(1e-3))
    y = torch.from_numpy(beats.y.astype(np.int64))
    records = [idx for idx in _by_record(beats) if len(idx) >= 2]
    optimizer = torch.optim.Adam(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    head.train()
    for _ in range(cfg.steps):
        xs, ys = [], []
        for r in rng.integers(0, len(records), cfg.batch):
            idx = records[r]
            n = min(cfg.chunk, len(idx))
            start = int(rng.integers(0, len(idx) - n + 1))
            take = idx[start : start + n]
            pad = cfg.chunk - n
            xs.append(nn.functional.pad(x[take].T, (0, pad)))
            ys.append(nn.functional.pad(y[take], (0, pad), value=-100))
        logits = head(torch.stack(xs))
        loss = nn.functional.cross_entropy(logits, torch.stack(ys), ignore_index=-100)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return head.eval()


@torch.no_grad()
def head_proba(head: SequenceHead, inputs: np.ndarray, beats: Beats) -> np.ndarray:
    """The head's probabilities ``(n_beats, 5)``, each recording read as one sequence."""
    out = np.zeros((len(beats), len(CLASS_NAMES)), np.float32)
    x = torch.from_numpy(np.ascontiguousarray(inputs, np.float32))
    for idx in _by_record(beats):
        logits = head(x[idx].T[None])[0].T
        out[idx] = torch.softmax(logits, dim=1).numpy()
    return out


def cross_validate_head(
    proba: np.ndarray, beats: Beats, folds: list[list[str]], cfg: SequenceConfig
) -> np.ndarray:
    """Out-of-fold probabilities of the head: fold k's head trains on the other folds.

    Parameters
    ----------
    proba : ndarray, shape (n_beats, 5)
        The beat model's out-of-fold probabilities on ``beats``.
    beats : Beats
        The cross-validated beats (every record in ``folds``), recordings in time order.
    folds : list of list of str
        The records each fold holds out (the beat model's folds).
    """
    inputs = sequence_inputs(proba, beats)
    out = np.zeros_like(proba)
    for records in folds:
        held = np.isin(beats.record, records)
        rest = np.flatnonzero(~held)
        head = train_head(inputs[rest], beats.subset(rest), cfg)
        idx = np.flatnonzero(held)
        out[idx] = head_proba(head, inputs[idx], beats.subset(idx))
    return out
