"""Tests for ecg_utils.models: shapes, parameter names and compatibility with the seed."""

from __future__ import annotations

import pytest
import torch

from ecg_utils.beats import BEAT_LENGTH
from ecg_utils.models import (
    ECG1DCNN,
    MODELS,
    Ensemble,
    ResNet1D,
    add_logit_offsets,
    build_model,
    count_parameters,
)

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
        (ResNet1D(width=8, n_features=6 + 156, wide=156), (torch.rand(4, 6 + 156),)),
    ],
)
def test_models_map_beats_to_five_logits(model, args):
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(4, 1, BEAT_LENGTH), *args)
    assert out.shape == (4, 5) and torch.isfinite(out).all()


def test_build_model_by_name():
    assert set(MODELS) == {
        "ecg1dcnn",
        "resnet1d",
        "ensemble",
        "patient",
        "trees",
        "linear",
        "by_leads",
        "patient_trees",
        "relative_cnn",
    }
    assert isinstance(build_model("resnet1d", width=8), ResNet1D)
    cnn = build_model("relative_cnn", n_features=6, wave_columns=[[0, 1, 2]], other_columns=[3])
    assert cnn(None, torch.zeros(2, 6)).shape == (2, 5)
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("transformer")


def test_count_parameters():
    model = torch.nn.Linear(3, 2)
    assert count_parameters(model) == 8
    assert count_parameters(ECG1DCNN()) > count_parameters(ResNet1D(width=4))


def test_the_wide_branch_reads_only_the_last_columns():
    torch.manual_seed(0)
    model = ResNet1D(width=4, n_features=3 + 156, wide=156).eval()
    x, f = torch.rand(2, 1, BEAT_LENGTH), torch.rand(2, 3 + 156)
    changed = f.clone()
    changed[:, 3:] = torch.rand(2, 156)  # another waveform, same scalar features
    with torch.no_grad():
        assert not torch.allclose(model(x, f), model(x, changed))
    assert "wide_stem.0.weight" in model.state_dict()
    with pytest.raises(ValueError, match="wide"):
        ResNet1D(n_features=10, wide=156)


def test_a_model_without_the_wide_window_keeps_its_parameter_names():
    names = set(ResNet1D(width=4, n_features=10).state_dict())
    assert not any(n.startswith("wide") for n in names)
    assert {n.split(".")[0] for n in names} == {"stem", "stages", "head"}


def test_an_ensemble_averages_its_members_probabilities():
    torch.manual_seed(0)
    ens = Ensemble("resnet1d", {"width": 4, "n_features": 2}, k=3).eval()
    x, f = torch.rand(5, 1, BEAT_LENGTH), torch.rand(5, 2)
    with torch.no_grad():
        mean = torch.stack([torch.softmax(m(x, f), 1) for m in ens.members]).mean(0)
        assert torch.allclose(torch.softmax(ens(x, f), 1), mean, atol=1e-6)
        add_logit_offsets(ens, [0.0, 1.0, 0.0, 0.0, 0.0])
        shifted = torch.softmax(torch.log(mean) + torch.tensor([0.0, 1, 0, 0, 0]), 1)
        assert torch.allclose(torch.softmax(ens(x, f), 1), shifted, atol=1e-6)
    assert ens.n_features == 2


def test_an_ensemble_of_ensembles_is_refused():
    with pytest.raises(ValueError, match="member"):
        Ensemble("ensemble", {}, k=2)
    with pytest.raises(ValueError, match="at least one"):
        Ensemble("resnet1d", {}, k=0)


def test_deeper_gated_resnet_stays_under_a_million_parameters():
    from ecg_utils.models import ResNet1D, SqueezeExcite1d, count_parameters

    model = ResNet1D(width=32, blocks=2, se=True).eval()
    assert count_parameters(model) < 1_000_000
    assert sum(isinstance(m, SqueezeExcite1d) for m in model.modules()) == 6
    assert model(torch.rand(3, 1, 187)).shape == (3, 5)


def test_default_resnet_keeps_the_parameter_names_of_saved_weights():
    from ecg_utils.models import ResNet1D

    names = set(ResNet1D(width=8).state_dict())
    assert not any(".se." in n for n in names)
    assert "stages.2.conv2.weight" in names and "stages.3.conv1.weight" not in names
