"""Tests for ecg_utils.ensemble: choosing the number of seeds and assembling them."""

from __future__ import annotations

import numpy as np
import torch

from ecg_utils.checkpoint import load_model, save_model
from ecg_utils.ensemble import MIN_GAIN, assemble, choose_members
from ecg_utils.models import ResNet1D, add_logit_offsets
from ecg_utils.training import TrainConfig

CFG = TrainConfig(architecture="resnet1d", calibrate=True, select_classes="NSV")


def _member(tmp_path, seed: int, balanced):
    torch.manual_seed(seed)
    model = ResNet1D(width=4).eval()
    add_logit_offsets(model, balanced)  # as training folds the balanced offsets in
    meta = {
        "architecture": "resnet1d",
        "model_args": {"num_classes": 5, "width": 4},
        "operating_points": {"balanced": balanced, "high": balanced},
    }
    save_model(model, tmp_path / f"m{seed}.pth", meta)
    return load_model(tmp_path / f"m{seed}.pth")


def test_an_ensemble_is_the_mean_of_its_members_without_their_own_offsets(tmp_path):
    members = [_member(tmp_path, 0, [0, 1.0, 0, 0, 0]), _member(tmp_path, 1, [0, 0, 0.5, 0, 0])]
    offsets = [0.0, 0.25, 0.5, 0.0, 0.0]
    high = [0.0, 1.0, 1.0, 0.0, 0.0]
    loaded = assemble(members, offsets, high, tmp_path / "ens.pth", {"members": ["a", "b"]})
    x = torch.rand(6, 1, 187)
    with torch.no_grad():
        raw = []
        for m in members:
            own = torch.tensor(m.meta["operating_points"]["balanced"], dtype=torch.float32)
            raw.append(torch.softmax(m.model(x) - own, 1))
        expected = torch.softmax(torch.log(torch.stack(raw).mean(0)) + torch.tensor(offsets), 1)
        got = torch.softmax(loaded.model(x), 1)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert loaded.meta["architecture"] == "ensemble" and loaded.meta["model_args"]["k"] == 2
    assert loaded.meta["operating_points"] == {"balanced": offsets, "high": high}
    assert loaded.meta["members"] == ["a", "b"]


def test_identical_seeds_give_one_member_and_useful_ones_more():
    rng = np.random.default_rng(0)
    y = rng.choice(3, size=3000, p=[0.8, 0.1, 0.1])
    noisy = []
    for seed in range(3):
        logits = np.random.default_rng(seed).normal(0, 1.5, (3000, 5))
        logits[np.arange(3000), y] += 1.5
        noisy.append(np.exp(logits) / np.exp(logits).sum(1, keepdims=True))
    k, _, score, scores = choose_members([noisy[0]] * 3, y, CFG)
    assert k == 1 and len(scores) == 3 and score == scores[0]
    k, offsets, score, scores = choose_members(noisy, y, CFG)
    assert k >= 2 and scores[k - 1] >= scores[0] + MIN_GAIN and len(offsets) == 5
    k, _, _, _ = choose_members(noisy, y, CFG, k=3)
    assert k == 3
