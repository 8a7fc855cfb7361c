"""Tests for ecg_utils.sequence: the head that reads a recording's beats in sequence."""

from __future__ import annotations

import numpy as np
import torch

from ecg_utils.beats import BEAT_LENGTH, Beats, rr_features
from ecg_utils.sequence import (
    SequenceConfig,
    SequenceHead,
    cross_validate_head,
    head_proba,
    sequence_inputs,
    train_head,
)


def bigeminy(records: int = 6, n: int = 300, seed: int = 0):
    """Recordings where every other beat of a bigeminal stretch is S, and a beat model
    that cannot tell (the same probabilities for all beats)."""
    rng = np.random.default_rng(seed)
    parts, probas = [], []
    for r in range(records):
        y = np.zeros(n, np.int64)
        y[100:200:2] = 1  # bigeminy in the middle third
        intervals = np.where(y == 1, 220, 330) + rng.integers(-5, 5, n)
        peaks = np.cumsum(intervals)
        parts.append(
            Beats(
                np.zeros((n, BEAT_LENGTH), np.float32),
                y,
                np.full(n, f"r{r}", "<U8"),
                peaks,
                rr_features(peaks, 360.0),
            )
        )
        probas.append(np.tile([0.8, 0.2, 0.0, 0.0, 0.0], (n, 1)).astype(np.float32))
    return Beats.concat(parts), np.concatenate(probas)


def test_an_untrained_head_repeats_the_beat_model():
    beats, proba = bigeminy(records=1)
    head = SequenceHead(sequence_inputs(proba, beats).shape[1])
    got = head_proba(head, sequence_inputs(proba, beats), beats)
    np.testing.assert_allclose(
        got,
        np.clip(proba, 1e-6, None) / np.clip(proba, 1e-6, None).sum(1, keepdims=True),
        atol=1e-5,
    )


def test_a_trained_head_finds_beats_by_their_neighbours():
    beats, proba = bigeminy()
    cfg = SequenceConfig(steps=150, chunk=128, batch=8)
    head = train_head(sequence_inputs(proba, beats), beats, cfg)
    got = head_proba(head, sequence_inputs(proba, beats), beats).argmax(1)
    s = beats.y == 1
    assert (got[s] == 1).mean() > 0.9 and (got[~s] == 0).mean() > 0.9
    again = train_head(sequence_inputs(proba, beats), beats, cfg)
    for a, b in zip(head.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # seeded


def test_cross_validated_heads_cover_every_beat():
    beats, proba = bigeminy(records=4, n=200)
    folds = [["r0", "r1"], ["r2", "r3"]]
    out = cross_validate_head(proba, beats, folds, SequenceConfig(steps=20, chunk=64, batch=4))
    assert out.shape == proba.shape
    np.testing.assert_allclose(out.sum(1), 1.0, rtol=1e-5)
