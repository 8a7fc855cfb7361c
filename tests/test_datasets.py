"""Tests for ecg_utils.datasets: what a DataLoader draws from."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from ecg_utils.beats import FEATURE_SETS
from ecg_utils.datasets import BeatDataset
from tests.test_training import tiny_beats


def test_items_and_batches_have_the_documented_shapes():
    beats = tiny_beats(50)
    dataset = BeatDataset(beats, "rr")
    x, f, y, soft = dataset[3]
    assert x.shape == (1, 187) and x.dtype == torch.float32
    k = len(FEATURE_SETS["rr"])
    assert f.shape == (k,) and y.dtype == torch.int64 and soft.shape == (0,)
    assert int(y) == beats.y[3]
    xb, fb, yb, sb = next(iter(DataLoader(dataset, batch_size=8)))
    assert xb.shape == (8, 1, 187) and fb.shape == (8, k) and yb.shape == (8,)
    np.testing.assert_array_equal(xb[:, 0].numpy(), beats.x[:8])


def test_soft_targets_travel_with_their_beats():
    beats = tiny_beats(20)
    soft = torch.arange(100, dtype=torch.float32).reshape(20, 5)
    _, _, _, row = BeatDataset(beats, None, soft)[7]
    assert torch.equal(row, soft[7])
