"""Tests for ecg_utils.export: ONNX export against PyTorch on real MIT-BIH beats.

The committed ECG1DCNN (``ecg_cnn.pth``) and a randomly initialised ResNet1D with RR
features are exported; ONNX Runtime must give the same probabilities as PyTorch (max abs
diff <= 1e-4) at batch sizes 1 and 37, through the dynamic batch axis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from ecg_utils import cli, inference  # noqa: E402
from ecg_utils._io import EcgError  # noqa: E402
from ecg_utils.beats import FS_BEAT, Beats, feature_matrix, read_record_beats  # noqa: E402
from ecg_utils.checkpoint import load_model, save_model  # noqa: E402
from ecg_utils.export import (  # noqa: E402
    export_onnx,
    onnx_metadata_path,
    onnx_predict_proba,
    onnx_session,
)
from ecg_utils.inference import predict_proba  # noqa: E402
from ecg_utils.models import ResNet1D  # noqa: E402

MITDB = Path(os.environ.get("ECG_MITDB_DIR") or Path(__file__).parents[2] / "shared/data/mitdb")
CNN = Path(__file__).parents[1] / "ecg_cnn.pth"  # the committed ECG1DCNN
TOLERANCE = 1e-4

pytestmark = pytest.mark.skipif(
    not (MITDB / "100.hea").exists(),
    reason="real MIT-BIH records not found: set ECG_MITDB_DIR",
)


@pytest.fixture(scope="module")
def beats() -> Beats:
    both = Beats.concat([read_record_beats(MITDB / r) for r in ("100", "119")])
    rng = np.random.default_rng(1)
    return both.subset(np.sort(rng.choice(len(both), 200, replace=False)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """name -> (weights, onnx) for the committed ECG1DCNN and a ResNet1D with RR features."""
    folder = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    resnet = folder / "resnet_rr.pth"
    meta = {"architecture": "resnet1d", "model_args": {"n_features": 6}, "feature_set": "rr"}
    save_model(ResNet1D(n_features=6), resnet, meta)
    return {
        name: (weights, export_onnx(weights, folder / f"{name}.onnx"))
        for name, weights in (("cnn", CNN), ("resnet_rr", resnet))
    }


@pytest.mark.parametrize("name", ["cnn", "resnet_rr"])
@pytest.mark.parametrize("batch", [1, 37])
def test_onnx_matches_torch(exported, beats, name, batch):
    weights, path = exported[name]
    loaded = load_model(weights)
    x = beats.x[:batch]
    feats = feature_matrix(beats.rr[:batch], loaded.feature_set) if loaded.feature_set else None
    got = onnx_predict_proba(path, x, feats)
    want = predict_proba(loaded.model, x, feats)
    assert got.shape == want.shape == (batch, 5)
    assert np.abs(got - want).max() <= TOLERANCE
    np.testing.assert_allclose(got.sum(axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("name", ["cnn", "resnet_rr"])
def test_long_input_fused_path(exported, beats, name, monkeypatch):
    """predict_proba folds BatchNorm for long inputs; ONNX Runtime still agrees."""
    monkeypatch.setattr(inference, "FUSE_MIN_BEATS", len(beats.x))
    weights, path = exported[name]
    loaded = load_model(weights)
    feats = feature_matrix(beats.rr, loaded.feature_set) if loaded.feature_set else None
    fused = inference.fuse_for_inference(loaded.model)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in fused.modules())
    got = onnx_predict_proba(path, beats.x, feats)
    assert np.abs(got - predict_proba(loaded.model, beats.x, feats)).max() <= TOLERANCE


def test_parallel_path_restores_threads(exported, beats, monkeypatch):
    """One Python thread per core gives the same probabilities; thread count restored."""
    monkeypatch.setattr(inference, "PARALLEL_MIN_BATCHES", 1)
    model = load_model(exported["cnn"][0]).model
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        split = predict_proba(model, beats.x, batch_size=16)  # 200 beats: 2 threads x 100
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    whole = predict_proba(model, beats.x, batch_size=len(beats.x))
    np.testing.assert_allclose(split, whole, atol=1e-6)


def test_graph_and_metadata(exported):
    for name, n_inputs in (("cnn", 1), ("resnet_rr", 2)):
        weights, path = exported[name]
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {17}
        inputs = {i.name: i.type.tensor_type.shape.dim for i in model.graph.input}
        assert list(inputs)[:n_inputs] == ["beats", "features"][:n_inputs]
        assert inputs["beats"][0].dim_param == "batch"
        assert [d.dim_value for d in inputs["beats"][1:]] == [1, 187]
        meta = json.loads(onnx_metadata_path(path).read_text())
        assert meta["inputs"]["beats"] == ["batch", 1, 187]
        assert meta["outputs"]["probabilities"] == ["batch", 5]
        assert meta["feature_set"] == load_model(weights).feature_set
        assert meta["classes"] == ["N", "S", "V", "F", "Q"] and meta["fs"] == FS_BEAT
        props = {p.key: json.loads(p.value) for p in model.metadata_props}
        assert props["fs"] == FS_BEAT
    resnet_meta = json.loads(onnx_metadata_path(exported["resnet_rr"][1]).read_text())
    assert resnet_meta["inputs"]["features"] == ["batch", 6]


def test_no_temporary_files_left(exported):
    folder = exported["cnn"][1].parent
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_features_required(exported, beats):
    session = onnx_session(exported["resnet_rr"][1], threads=1)
    with pytest.raises(EcgError, match="features"):
        onnx_predict_proba(session, beats.x[:3])
    assert onnx_predict_proba(session, beats.x[:0], np.zeros((0, 6), np.float32)).shape == (0, 5)


def test_missing_onnx_file(tmp_path):
    with pytest.raises(EcgError, match="not found"):
        onnx_predict_proba(tmp_path / "none.onnx", np.zeros((1, 187), np.float32))


def test_cli_export(tmp_path, capsys):
    out = tmp_path / "models" / "cnn.onnx"
    argv = ["export", "--weights", str(CNN), "--format", "onnx", "--out", str(out)]
    assert cli.main(argv) == 0
    assert out.stat().st_size > 100_000
    assert onnx_metadata_path(out).exists()
    assert "cnn.onnx" in capsys.readouterr().out


def test_cli_export_bad_weights(tmp_path):
    """Through ``python -m``: exit status 2 and one line on stderr, nothing written."""
    out = tmp_path / "x.onnx"
    proc = subprocess.run(
        [sys.executable, "-m", "ecg_utils", "export", "--weights", str(tmp_path / "no.pth")]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "no.pth" in proc.stderr
    assert not out.exists()
