"""Tests for ecg_utils.models: shapes, parameter names and compatibility with the seed."""

from __future__ import annotations

import pytest
import torch

from ecg_utils.beats import BEAT_LENGTH
from ecg_utils.models import ECG1DCNN, MODELS, ResNet1D, build_model, count_parameters

SEED_LAYERS = {"conv1", "bn1", "conv2", "bn2", "fc1", "fc2"}


def test_ecg1dcnn_has_the_seed_layer_names():
    assert {k.split(".")[0] for k in ECG1DCNN().state_dict()} == SEED_LAYERS


def test_ecg1dcnn_loads_the_seed_state_dict(seed_weights):
    state = torch.load(seed_weights, map_location="cpu", weights_only=True)
    assert {k.split(".")[0] for k in state} == SEED_LAYERS
    model = ECG1DCNN()
    model.load_state_dict(state)  # strict: every key and shape fits
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(3, 1, BEAT_LENGTH))
    assert out.shape == (3, 5)


@pytest.mark.parametrize(
    ("model", "args"),
    [
        (ECG1DCNN(), ()),
        (ResNet1D(width=8), ()),
        (ResNet1D(width=8, n_features=6), (torch.rand(4, 6),)),
    ],
)
def test_models_map_beats_to_five_logits(model, args):
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(4, 1, BEAT_LENGTH), *args)
    assert out.shape == (4, 5) and torch.isfinite(out).all()


def test_build_model_by_name():
    assert set(MODELS) == {"ecg1dcnn", "resnet1d"}
    assert isinstance(build_model("resnet1d", width=8), ResNet1D)
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("transformer")


def test_count_parameters():
    model = torch.nn.Linear(3, 2)
    assert count_parameters(model) == 8
    assert count_parameters(ECG1DCNN()) > count_parameters(ResNet1D(width=4))
