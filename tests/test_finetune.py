"""Fine-tuning a relative-recipe model on one patient's labelled beats, with replay."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_utils._io import EcgError
from ecg_utils.adaptation import adapt
from ecg_utils.checkpoint import load_model, save_model
from ecg_utils.finetune import REPLAY_PER_CLASS, replay_set
from ecg_utils.predict import RELATIVE_SET, classify_record
from ecg_utils.relative_study import attach_replay, feature_set, fit_candidate

TREES = {"kind": "trees", "params": {"max_iter": 15, "max_leaf_nodes": 7}, "title": "test"}


@pytest.fixture(scope="module")
def tree_weights(tmp_path_factory, synthetic_mitdb):
    """Small relative trees fitted on the synthetic database, with a replay set."""
    records = (synthetic_mitdb / "RECORDS").read_text().split()
    data = feature_set(synthetic_mitdb, records, None)
    model, arch, args = fit_candidate(TREES, data["x"], data["y"])
    path = tmp_path_factory.mktemp("weights") / "trees.pth"
    save_model(model, path, {"architecture": arch, "model_args": args, "feature_set": RELATIVE_SET})
    plain = path.with_name("plain.pth")
    save_model(
        model, plain, {"architecture": arch, "model_args": args, "feature_set": RELATIVE_SET}
    )
    replay = attach_replay(path, data["x"], data["y"])
    return path, plain, replay


def test_the_replay_set_is_class_balanced_and_small():
    y = np.repeat(np.arange(5), [5000, 40, 900, 3, 700])
    x = np.random.default_rng(0).normal(size=(len(y), 4))
    rx, ry = replay_set(x, y)
    assert np.bincount(ry, minlength=5).tolist() == [REPLAY_PER_CLASS, 40, REPLAY_PER_CLASS, 3, 600]
    assert rx.dtype == np.float32 and len(rx) == len(ry)


def test_attaching_the_replay_leaves_the_outputs_unchanged(tree_weights, synthetic_mitdb):
    path, plain, replay = tree_weights
    data = feature_set(synthetic_mitdb, ["101"], None)
    import torch

    with torch.no_grad():
        a = load_model(path).model(None, torch.as_tensor(data["x"]))
        b = load_model(plain).model(None, torch.as_tensor(data["x"]))
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    assert replay["beats"] == len(load_model(path).model.replay_labels) > 0


def test_fine_tuning_learns_the_patients_labels_and_saves(tree_weights, synthetic_record, tmp_path):
    path, _, _ = tree_weights
    # a patient whose every beat the analyst calls S (a rhythm the model calls N)
    rec = synthetic_record(seconds=40, symbols=("N",))
    labelled = rec.beat_samples[: len(rec.beat_samples) // 2]
    before = classify_record(rec.signal, rec.fs, rec.beat_samples, path)
    patient = adapt(path, rec.signal, rec.fs, [(s, "S") for s in labelled], rec.beat_samples)
    assert patient.meta["architecture"] == "patient_trees"
    assert patient.meta["patient"]["method"] == "fine-tuning with replay"
    assert patient.meta["patient"]["labelled_samples"][1] == labelled[-1]
    after = classify_record(rec.signal, rec.fs, rec.beat_samples, patient)
    scored = after["sample"] > labelled[-1]  # beats the fine-tuning never saw labelled
    assert (after["class"][scored] == "S").mean() > (before["class"][scored] == "S").mean()
    # the replay's normal beats look the same: the patient's labels win most, not all
    assert (after["class"][scored] == "S").mean() > 0.5
    out = tmp_path / "patient.pth"
    save_model(patient.model, out, patient.meta)
    again = classify_record(rec.signal, rec.fs, rec.beat_samples, out)
    np.testing.assert_array_equal(again["label"], after["label"])
    with pytest.raises(EcgError, match="already adapted"):
        adapt(out, rec.signal, rec.fs, [(labelled[0], "N")], rec.beat_samples)


def test_weights_without_a_replay_set_are_one_clear_error(tree_weights, synthetic_record):
    _, plain, _ = tree_weights
    rec = synthetic_record(seconds=20)
    with pytest.raises(EcgError, match="replay"):
        adapt(plain, rec.signal, rec.fs, [(rec.beat_samples[1], "S")], rec.beat_samples)


@pytest.mark.parametrize("selection", ["medoids", "active"])
def test_few_labels_protocols_score_only_after_the_labelled_minutes(
    tree_weights, synthetic_mitdb, selection
):
    from ecg_utils.patient_specific import evaluate_patient_specific

    path, _, _ = tree_weights
    out = evaluate_patient_specific(
        path, synthetic_mitdb, ("100",), minutes=0.2, n_boot=0, labelled_beats=6,
        selection=selection,
    )  # fmt: skip
    row = out["per_record"]["100"]
    assert row["labelled"] > 6 and row["scored"] > 0  # the first 12 s are never scored
    assert out["adapted"]["n_beats"] == row["scored"]


def test_the_few_labels_curve_is_each_point_of_the_protocol(tree_weights, synthetic_mitdb):
    from ecg_utils.patient_specific import evaluate_patient_specific, few_labels_curve

    path, _, _ = tree_weights
    common = {"records": ("100",), "minutes": 0.2, "n_boot": 0}
    for selection in ("medoids", "active"):
        curve = few_labels_curve(path, synthetic_mitdb, (3, 7), selection=selection, **common)
        assert list(curve) == [3, 7]
        assert [c["per_record"]["100"]["given"] for c in curve.values()] == [3, 7]
        # one point of the curve is the protocol run at that count alone
        alone = evaluate_patient_specific(
            path, synthetic_mitdb, labelled_beats=7, selection=selection, **common
        )
        assert alone["adapted"]["classes"] == curve[7]["adapted"]["classes"]
        assert curve[3]["global"] == curve[7]["global"]  # one unadapted model


def test_the_fine_tuning_setting_is_the_fastest_of_the_near_best():
    from ecg_utils.relative_patient import TIME_TOLERANCE, choose_setting

    rows = {
        "slow": {"score": 0.860, "seconds_per_record": 19.0},
        "fast": {"score": 0.860 - TIME_TOLERANCE / 2, "seconds_per_record": 3.0},
        "fastest": {"score": 0.860 - 2 * TIME_TOLERANCE, "seconds_per_record": 1.0},
    }
    assert choose_setting(rows) == "fast"
    rows["fast"]["score"] = 0.86 - 2 * TIME_TOLERANCE
    assert choose_setting(rows) == "slow"


def test_a_finished_patient_step_is_kept_as_recorded(tmp_path):
    """The committed patient-specific results match the committed relative results: the
    step returns them without reading a record (its key survives the JSON round trip)."""
    import json
    import shutil
    from pathlib import Path

    from ecg_utils.relative_patient import relative_patient_step

    root = Path(__file__).resolve().parents[1]
    (tmp_path / "results").mkdir()
    for name in ("relative.json", "relative_patient.json"):
        shutil.copy(root / "results" / name, tmp_path / "results" / name)
    missing = tmp_path / "no-records-here"
    out = relative_patient_step(missing, tmp_path, None)
    assert out == json.loads((root / "results" / "relative_patient.json").read_text())
    assert not (tmp_path / "runs").exists()
