"""Tests for ecg_utils.checkpoint: weight files are plain CPU state dicts, loaded safely."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch

from ecg_utils import EcgError
from ecg_utils.beats import BEAT_LENGTH, FS_BEAT
from ecg_utils.checkpoint import load_model, load_state_dict, metadata_path, save_model
from ecg_utils.models import ECG1DCNN, ResNet1D


@pytest.fixture
def saved(tmp_path):
    """A ResNet1D with RR features saved with its metadata."""
    torch.manual_seed(0)
    model = ResNet1D(width=4, n_features=6)
    path = tmp_path / "model.pth"
    meta = {
        "architecture": "resnet1d",
        "model_args": {"num_classes": 5, "width": 4, "n_features": 6},
        "feature_set": "rr",
        "train_config": {"seed": 3},
    }
    save_model(model, path, meta)
    return model, path


def test_saved_weights_load_with_the_seed_readme_snippet(tmp_path):
    path = tmp_path / "ecg_cnn.pth"
    save_model(ECG1DCNN(), path, {"architecture": "ecg1dcnn", "model_args": {}})
    model = ECG1DCNN()
    model.load_state_dict(torch.load(path))  # the README's line, on a CPU-only machine
    state = torch.load(path)
    assert all(t.device.type == "cpu" for t in state.values())


def test_round_trip_restores_weights_and_metadata(saved):
    model, path = saved
    loaded = load_model(path)
    assert isinstance(loaded.model, ResNet1D) and not loaded.model.training
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[k], v)
    assert loaded.feature_set == "rr"
    assert loaded.meta["classes"] == ["N", "S", "V", "F", "Q"]
    assert (loaded.meta["fs"], loaded.meta["input_length"]) == (FS_BEAT, BEAT_LENGTH)
    assert loaded.meta["train_config"] == {"seed": 3}


def test_seed_weights_load_without_metadata(seed_weights):
    loaded = load_model(seed_weights)
    assert isinstance(loaded.model, ECG1DCNN) and not loaded.model.training
    assert "no metadata file" in loaded.meta["note"]
    assert loaded.feature_set is None


def test_weights_of_another_architecture_do_not_fit(tmp_path):
    path = tmp_path / "other.pth"
    torch.save(ResNet1D(width=4).state_dict(), path)  # no metadata: taken for ECG1DCNN
    with pytest.raises(EcgError, match="do not fit architecture 'ecg1dcnn'") as err:
        load_model(path)
    assert str(err.value).startswith(str(path))
    assert "missing conv1.weight" in str(err.value)


def test_weights_with_other_shapes_do_not_fit(tmp_path):
    path = tmp_path / "three.pth"
    torch.save(ECG1DCNN(num_classes=3).state_dict(), path)
    with pytest.raises(EcgError, match=r"do not fit .*fc2.weight \(3, 128\) vs \(5, 128\)"):
        load_model(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda good: good[: len(good) // 2], "truncated or corrupt"),
        (lambda good: good[:100], "truncated or corrupt"),
        (lambda good: b"", "weights file is empty"),
        (lambda good: b"hello, I am not a model\n", "not a"),
        (lambda good: os.urandom(4096), "not a"),
    ],
    ids=["half", "head", "empty", "text", "random"],
)
def test_damaged_weights_are_refused(tmp_path, content, message):
    good = tmp_path / "good.pth"
    torch.save(ECG1DCNN().state_dict(), good)
    path = tmp_path / "bad.pth"
    path.write_bytes(content(good.read_bytes()))
    with pytest.raises(EcgError, match=message) as err:
        load_model(path)
    assert str(err.value).startswith(str(path))


def test_missing_weights(tmp_path):
    with pytest.raises(EcgError, match="weights file not found"):
        load_model(tmp_path / "nope.pth")


class Payload:
    """Runs a shell command when unpickled: what a malicious weights file would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_weights_with_a_pickle_payload_are_refused_unrun(tmp_path, zip_format):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    state = {"conv1.weight": torch.zeros(1), "payload": Payload(marker)}
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(EcgError, match="refused to load") as err:
        load_model(path)
    assert "system" in str(err.value)
    assert not marker.exists()


def test_plain_pickle_payload_is_refused_unrun(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(EcgError):
        load_state_dict(path)
    assert not marker.exists()


def test_training_checkpoint_is_not_taken_for_weights(tmp_path):
    path = tmp_path / "run.ckpt"
    torch.save({"model": ECG1DCNN().state_dict(), "optimizer": {}, "epoch": 1}, path)
    with pytest.raises(EcgError, match="training checkpoint"):
        load_state_dict(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "metadata is not valid JSON"),
        ("[1, 2]", "metadata lacks 'architecture'"),
        ('{"model_args": {}}', "metadata lacks 'architecture'"),
        ('{"architecture": "transformer"}', "unknown model"),
        ('{"architecture": "ecg1dcnn", "model_args": [1]}', "'model_args' must be an object"),
        ('{"architecture": "ecg1dcnn", "model_args": {"depth": 3}}', "unknown model"),
        ('{"architecture": "ecg1dcnn", "classes": ["A", "B"]}', "classes"),
    ],
)
def test_bad_metadata_is_refused(saved, text, message):
    _, path = saved
    metadata_path(path).write_text(text)
    with pytest.raises(EcgError, match=message) as err:
        load_model(path)
    assert str(err.value).startswith(str(metadata_path(path)))


def test_save_model_leaves_no_temporary_files(saved):
    _, path = saved
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.json", "model.pth"]
    assert json.loads(metadata_path(path).read_text())["architecture"] == "resnet1d"


def test_equal_weights_give_equal_files(tmp_path):
    """File bytes depend on the tensors alone, so weight hashes compare runs."""
    import hashlib

    torch.manual_seed(0)
    model = ECG1DCNN()
    a, b = tmp_path / "a.pth", tmp_path / "sub" / "b.pth"
    save_model(model, a, {"architecture": "ecg1dcnn", "model_args": {}})
    save_model(model, b, {"architecture": "ecg1dcnn", "model_args": {}})
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


# --------------------------------------------------------------------------- predict_proba


def _beats(n=40):
    """``n`` beats of the synthetic record's shape (in [0, 1], 187 samples at 120 Hz)."""
    import numpy as np

    rng = np.random.default_rng(0)
    t = np.arange(BEAT_LENGTH)
    beats = np.exp(-0.5 * ((t - 10) / 3.0) ** 2) + 0.05 * rng.random((n, BEAT_LENGTH))
    return (beats / beats.max(axis=1, keepdims=True)).astype("float32")


def _check_proba(proba, n):
    import numpy as np

    assert proba.shape == (n, 5) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def test_predict_proba_of_the_committed_ecg1dcnn():
    import numpy as np
    from conftest import ROOT

    from ecg_utils.inference import predict_proba

    loaded = load_model(ROOT / "ecg_cnn.pth")
    assert loaded.n_features == 0
    beats = _beats()
    proba = loaded.predict_proba(beats)
    _check_proba(proba, len(beats))
    np.testing.assert_array_equal(proba, predict_proba(loaded.model, beats))
    _check_proba(loaded.predict_proba(beats[0]), 1)  # one beat
    with pytest.raises(EcgError, match="no per-beat features"):
        loaded.predict_proba(beats, np.zeros((len(beats), 6)))
    with pytest.raises(EcgError, match=r"shape \(n_beats, 187\)"):
        loaded.predict_proba(beats[:, :100])


def test_predict_proba_of_a_resnet_with_features_needs_them(saved):
    import numpy as np

    from ecg_utils.inference import predict_proba

    _, path = saved
    loaded = load_model(path)
    beats = _beats()
    with pytest.raises(EcgError) as err:
        loaded.predict_proba(beats)
    text = str(err.value)
    assert "6 per-beat features ('rr'" in text and "ecg_utils.classify_record" in text, text
    features = np.random.default_rng(1).random((len(beats), 6)).astype("float32")
    proba = loaded.predict_proba(beats, features)
    _check_proba(proba, len(beats))
    np.testing.assert_array_equal(proba, predict_proba(loaded.model, beats, features))
    with pytest.raises(EcgError, match=r"features must have shape \(40, 6\)"):
        loaded.predict_proba(beats, features[:, :3])


@pytest.mark.parametrize("name", ["product", "interpatient"])
def test_predict_proba_of_the_shipped_ensembles_from_a_recording(synthetic_record, name):
    from conftest import ROOT

    from ecg_utils.predict import recording_inputs

    loaded = load_model(ROOT / "ecg_utils" / "weights" / f"{name}.pth")
    assert loaded.meta["architecture"] == "ensemble" and loaded.n_features > 0
    rec = synthetic_record(seconds=20, leads=("MLII",))
    peaks, beats, features = recording_inputs(rec.signal, rec.fs, None, 0, loaded.feature_set)
    with pytest.raises(EcgError, match="recording_inputs"):
        loaded.predict_proba(beats)
    _check_proba(loaded.predict_proba(beats, features), len(peaks))
