"""Tests for ecg_utils.device: one rule for --device, CPU training unchanged by it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecg_utils import EcgError
from ecg_utils.checkpoint import read_metadata
from ecg_utils.device import measure_speed, on_device, resolve_device
from ecg_utils.inference import predict_proba
from ecg_utils.models import build_model
from ecg_utils.training import save_trained, train
from tests.cli_helpers import run_main
from tests.test_training import TINY, tiny_beats, weights_hash

HAS_CUDA = torch.cuda.is_available()


def test_auto_takes_the_best_device_there_is():
    expected = "cuda" if HAS_CUDA else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected


@pytest.mark.parametrize("name", ["cpu", "CPU", " cpu "])
def test_cpu_by_name(name):
    assert resolve_device(name) == torch.device("cpu")


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "cpu:1", "tpu"])
def test_unknown_device_names_are_errors(name):
    with pytest.raises(EcgError, match="unknown device"):
        resolve_device(name)


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a CUDA GPU")
def test_asking_for_a_missing_gpu_is_an_error_not_a_cpu_run():
    with pytest.raises(EcgError, match="no CUDA GPU"):
        resolve_device("cuda")


def test_training_on_the_cpu_by_name_is_bit_identical_to_the_default():
    beats = tiny_beats()
    train_b, val_b = beats.subset(np.arange(500)), beats.subset(np.arange(500, 600))
    default = train(TINY, train_b, val_b, progress=False, device="cpu")
    named = train(TINY, train_b, val_b, progress=False, device=torch.device("cpu"))
    assert weights_hash(default.model) == weights_hash(named.model)
    assert default.device["type"] == "cpu" and default.device["threads"] == TINY.threads


def test_saved_weights_record_the_device(tmp_path):
    beats = tiny_beats()
    result = train(
        TINY, beats.subset(np.arange(500)), beats.subset(np.arange(500, 600)), progress=False
    )
    save_trained(result, tmp_path / "m.pth")
    assert read_metadata(tmp_path / "m.pth")["device"]["type"] == result.device["type"]


def test_on_device_leaves_cpu_models_alone():
    model = build_model("ecg1dcnn")
    assert on_device(model, "cpu") is model


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA GPU on this machine")
def test_cuda_training_returns_a_cpu_model_that_predicts_like_its_gpu_copy():
    beats = tiny_beats()
    result = train(
        TINY,
        beats.subset(np.arange(500)),
        beats.subset(np.arange(500, 600)),
        progress=False,
        device="cuda",
    )
    assert next(result.model.parameters()).device.type == "cpu"
    assert result.device["type"] == "cuda"
    cpu = predict_proba(result.model, beats.x)
    gpu = predict_proba(on_device(result.model, "cuda"), beats.x)
    np.testing.assert_allclose(cpu, gpu, atol=1e-4)


def test_speed_probe_counts_steps_and_leaves_the_random_state_alone():
    torch.manual_seed(3)
    before = torch.get_rng_state()
    assert measure_speed("cpu") > 0
    assert torch.equal(before, torch.get_rng_state())


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "run"])
def test_every_command_takes_device(capsys, command):
    rc, out, _ = run_main(capsys, command, "--help")
    assert rc == 0 and "--device" in out


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a CUDA GPU")
def test_predict_on_a_missing_gpu_is_one_line(capsys, tmp_path):
    signal = tmp_path / "x.npy"
    np.save(signal, np.zeros(3600, np.float32))
    rc, out, err = run_main(capsys, "predict", signal, "--fs", 360, "--device", "cuda")
    assert rc != 0
    assert "no CUDA GPU" in err and len(err.strip().splitlines()) == 1
