"""Tests for ecg_utils.explain: Grad-CAM on real MIT-BIH beats, the figure and the CLI.

Beats come from records 100, 119 and 208 (N, S, V and F beats); the models are the
committed ECG1DCNN (``ecg_cnn.pth``) and a randomly initialised ResNet1D that takes RR features.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("captum")

from ecg_utils import cli  # noqa: E402
from ecg_utils.beats import Beats, feature_matrix, read_record_beats  # noqa: E402
from ecg_utils.checkpoint import load_model, save_model  # noqa: E402
from ecg_utils.explain import cam_layer, grad_cam, last_conv_layer, plot_explanations  # noqa: E402
from ecg_utils.inference import predict_proba  # noqa: E402
from ecg_utils.models import ECG1DCNN, ResNet1D  # noqa: E402

MITDB = Path(os.environ.get("ECG_MITDB_DIR") or Path(__file__).parents[2] / "shared/data/mitdb")
CNN = Path(__file__).parents[1] / "ecg_cnn.pth"  # the committed ECG1DCNN
RECORDS = ("100", "119", "208")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

needs_data = pytest.mark.skipif(
    not (MITDB / "100.hea").exists(),
    reason="real MIT-BIH records not found: set ECG_MITDB_DIR",
)
pytestmark = needs_data


@pytest.fixture(scope="module")
def beats() -> Beats:
    return Beats.concat([read_record_beats(MITDB / r) for r in RECORDS])


@pytest.fixture(scope="module")
def sample(beats) -> Beats:
    """Ten beats of each class present (N, S, V, F)."""
    rng = np.random.default_rng(0)
    idx = [rng.choice(np.flatnonzero(beats.y == k), 10, replace=False) for k in range(4)]
    return beats.subset(np.sort(np.concatenate(idx)))


@pytest.fixture(scope="module")
def cnn_model():
    return load_model(CNN)


@pytest.fixture(scope="module")
def resnet_weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet_rr.pth"
    meta = {"architecture": "resnet1d", "model_args": {"n_features": 6}, "feature_set": "rr"}
    save_model(ResNet1D(n_features=6), path, meta)
    return path


def _check_cam(cam: np.ndarray, n: int) -> None:
    assert cam.shape == (n, 187)
    assert cam.dtype == np.float32
    assert np.all(np.isfinite(cam))
    assert cam.min() >= 0 and cam.max() <= 1


def test_last_conv_layer():
    cnn, res = ECG1DCNN(), ResNet1D()
    assert last_conv_layer(cnn) is cnn.conv2
    assert last_conv_layer(res) is res.stages[-1].conv2


def test_the_default_layer_of_ecg1dcnn_is_its_normalised_last_convolution():
    cnn, res = ECG1DCNN(), ResNet1D()
    assert cam_layer(cnn) is cnn.bn2 and cam_layer(res) is last_conv_layer(res)


def test_ventricular_beats_get_informative_maps(cnn_model, beats):
    v = beats.subset(np.flatnonzero(beats.y == 2)[:200])
    cam = grad_cam(cnn_model.model, v.x, target=2)
    assert (cam.max(axis=1) > 0).all()  # at conv2 about half of them were all zero
    assert (cam > 0).mean() < 0.95  # and a map picks out a part of the beat


def test_grad_cam_cnn_model(cnn_model, sample):
    cam = grad_cam(cnn_model.model, sample.x)
    _check_cam(cam, len(sample))
    # every beat that has any attribution is scaled to a maximum of exactly 1
    peaks = cam.max(axis=1)
    assert np.all((peaks == 0) | np.isclose(peaks, 1))
    assert (peaks > 0).mean() > 0.5


def test_default_target_is_prediction(cnn_model, sample):
    pred = predict_proba(cnn_model.model, sample.x).argmax(axis=1)
    np.testing.assert_allclose(
        grad_cam(cnn_model.model, sample.x), grad_cam(cnn_model.model, sample.x, target=pred)
    )
    other = grad_cam(cnn_model.model, sample.x, target=(pred + 1) % 5)
    assert not np.allclose(other, grad_cam(cnn_model.model, sample.x, target=pred))


def test_grad_cam_under_inference_mode(cnn_model, sample):
    """Callers inside inference_mode/no_grad still get gradients for the attribution."""
    with torch.inference_mode():
        cam = grad_cam(cnn_model.model, sample.x[:5], target=0)
    _check_cam(cam, 5)
    np.testing.assert_allclose(cam, grad_cam(cnn_model.model, sample.x[:5], target=0))


def test_grad_cam_with_features(resnet_weights, sample):
    loaded = load_model(resnet_weights)
    feats = feature_matrix(sample.rr, "rr")
    cam = grad_cam(loaded.model, sample.x[:, None, :], features=feats)
    _check_cam(cam, len(sample))


def test_plot_explanations(cnn_model, resnet_weights, sample, tmp_path):
    for loaded, name in ((cnn_model, "cnn.png"), (load_model(resnet_weights), "res.png")):
        out = plot_explanations(loaded, sample, None, tmp_path / name, n_per_class=2)
        data = out.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) < 300_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cnn.png", "res.png"]


@pytest.fixture(scope="module")
def mini_mitdb(tmp_path_factory) -> Path:
    """A folder with three real records, for the CLI."""
    folder = tmp_path_factory.mktemp("mitdb")
    for rec in RECORDS:
        for ext in ("hea", "dat", "atr"):
            (folder / f"{rec}.{ext}").symlink_to(MITDB / f"{rec}.{ext}")
    (folder / "RECORDS").write_text("\n".join(RECORDS) + "\n")
    return folder


def test_cli_explain(mini_mitdb, tmp_path, capsys):
    out = tmp_path / "figures" / "explain.png"
    argv = ["explain", "--weights", str(CNN), "--mitdb-dir", str(mini_mitdb)]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--quiet", "--out", str(out)]
    assert cli.main(argv) == 0
    assert out.read_bytes().startswith(PNG_MAGIC)
    assert capsys.readouterr().out.strip() == str(out)


def test_cli_explain_bad_weights(tmp_path, capsys):
    out = tmp_path / "explain.png"
    code = cli.main(["explain", "--weights", str(tmp_path / "none.pth"), "--out", str(out)])
    assert code == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "none.pth" in err
    assert not out.exists()
