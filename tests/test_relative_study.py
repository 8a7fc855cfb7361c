"""The relative recipe end to end on synthetic records: features of annotated records,
candidates fitted as two-lead/one-lead pairs, weights that predict and evaluate read."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from cli_helpers import run_main

from ecg_utils.checkpoint import load_model, save_model
from ecg_utils.predict import RELATIVE_SET, classify_record, read_input, wants_two_leads
from ecg_utils.relative import column_names
from ecg_utils.relative_study import (
    feature_set,
    fit_candidate,
    high_offsets,
    predict_candidate,
    record_features,
)

LINEAR = {"kind": "linear", "params": {"C": 0.1}, "title": "test"}


@pytest.fixture(scope="module")
def relative_weights(tmp_path_factory, synthetic_mitdb):
    """A linear relative model fitted on the synthetic database, saved like the shipped ones."""
    records = (synthetic_mitdb / "RECORDS").read_text().split()
    data = feature_set(synthetic_mitdb, records, None)
    model, arch, args = fit_candidate(LINEAR, data["x"], data["y"])
    path = tmp_path_factory.mktemp("weights") / "relative.pth"
    save_model(model, path, {"architecture": arch, "model_args": args, "feature_set": RELATIVE_SET})
    return path, data


def test_record_features_line_up_with_the_annotated_beats(synthetic_record):
    rec = synthetic_record(seconds=20)
    out = record_features(rec.path)
    assert out["x"].shape == (len(rec.beat_samples) - 1, len(column_names(2)))
    np.testing.assert_array_equal(out["peaks"], rec.beat_samples[:-1])
    np.testing.assert_array_equal(out["y"], rec.beat_labels[:-1])


def test_feature_sets_are_cached_and_identical(tmp_path, synthetic_mitdb):
    records = ["101", "106"]
    first = feature_set(synthetic_mitdb, records, tmp_path)
    assert list(tmp_path.glob("relative-*.npz"))
    again = feature_set(synthetic_mitdb, records, tmp_path)
    np.testing.assert_array_equal(first["x"], again["x"])
    assert set(first["record"]) == set(records)


def test_a_fitted_candidate_reads_two_leads_or_one(relative_weights):
    path, data = relative_weights
    loaded = load_model(path)
    assert wants_two_leads(loaded)
    one = data["x"].copy()
    one[:, len(column_names(1)) :] = np.nan
    both = predict_candidate(loaded.model, data["x"])
    single = predict_candidate(loaded.model, one)
    assert both.shape == single.shape == (len(data["y"]), 5)
    assert not np.allclose(both, single)  # the second lead is read when it is there
    np.testing.assert_allclose(both.sum(1), 1, atol=1e-5)


def test_predict_reads_the_second_lead_for_a_relative_model(relative_weights, synthetic_record):
    path, _ = relative_weights
    rec = synthetic_record(seconds=20)
    kind, x, fs, extra = read_input(rec.path.with_suffix(".hea"), None, None, second_lead=True)
    assert extra["other_lead"] is not None and extra["other_lead"].shape == x.shape
    np.testing.assert_allclose(extra["other_lead"], rec.signal[:, 1], atol=0.01)
    two = classify_record(np.column_stack([x, extra["other_lead"]]), fs, rec.beat_samples, path)
    one = classify_record(x, fs, rec.beat_samples, path)
    assert len(two) == len(one) == len(rec.beat_samples)
    # a recording given at any gain gives the same classes (nothing is in millivolts)
    scaled = classify_record(
        np.column_stack([x, extra["other_lead"]]) * 50, fs, rec.beat_samples, path
    )
    np.testing.assert_array_equal(scaled["label"], two["label"])
    _, _, _, plain = read_input(rec.path.with_suffix(".hea"), None, None)
    assert "other_lead" not in plain


def test_evaluate_svdb_dev_scores_any_weights(relative_weights, synthetic_mitdb, tmp_path, capsys):
    path, _ = relative_weights
    folder = tmp_path / "svdb"
    folder.mkdir()
    for name in ("101", "106"):
        for ext in ("hea", "dat", "atr"):
            (folder / f"{name}.{ext}").write_bytes((synthetic_mitdb / f"{name}.{ext}").read_bytes())
    (folder / "RECORDS").write_text("101\n106\n")
    # an uncalibrated header (ADC gain 0, as some svdb records have): digital units
    header = folder / "106.hea"
    lines = header.read_text().splitlines()
    lines[1:] = [re.sub(r" 212 \S+ ", " 212 0 ", line, count=1) for line in lines[1:]]
    header.write_text("\n".join(lines) + "\n")
    rc, stdout, stderr = run_main(
        capsys, "evaluate", "--weights", path, "--protocol", "svdb-dev", "--svdb-dir", folder,
        "--json",
    )  # fmt: skip
    assert rc == 0, stderr
    out = json.loads(stdout)
    assert out["protocol"] == "svdb-dev" and out["n_beats"] > 0
    assert set(out["classes"]) == {"N", "S", "V", "F", "Q"}
    nowhere = tmp_path / "nowhere"
    rc, _, stderr = run_main(
        capsys, "evaluate", "--weights", path, "--protocol", "svdb-dev", "--svdb-dir", nowhere
    )
    assert rc != 0 and "svdb-dev records not found" in stderr


def test_the_high_point_keeps_its_ppv_floor():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 3000)
    proba = np.full((3000, 5), 0.01)
    proba[np.arange(3000), y] = 0.5
    proba[:, 0] += rng.random(3000)  # N everywhere: S and V need an offset to be found
    proba /= proba.sum(1, keepdims=True)
    offsets = high_offsets(proba, y)
    assert offsets[0] == 0 and offsets[1] > 0 and offsets[2] > 0


def test_the_beat_sets_carry_the_same_relative_features(synthetic_mitdb):
    from ecg_utils.beats import RELATIVE_SET, beat_features, build_beats

    beats = build_beats(synthetic_mitdb, records=["101", "106"], progress=False)
    data = feature_set(synthetic_mitdb, ["101", "106"], None)
    np.testing.assert_array_equal(beat_features(beats, RELATIVE_SET), data["x"])
    np.testing.assert_array_equal(beats.r_peak, data["peaks"])
    assert len(beats.subset(np.arange(5)).relative) == 5


def test_out_of_fold_probabilities_are_computed_again_only_when_missing(tmp_path, synthetic_mitdb):
    """A fresh clone has the shipped weights but no runs/: the later checks' out-of-fold
    file is made again, the same as when shipped, and an existing one is kept."""
    from ecg_utils.relative_study import ensure_out_of_fold, oof_path, out_of_fold

    records = (synthetic_mitdb / "RECORDS").read_text().split()
    data = feature_set(synthetic_mitdb, records, None)
    result = {
        "chosen": "relative_linear",
        "folds": [["101", "106", "108", "109", "112"], ["114", "115", "116", "118", "119"]],
    }
    runs = tmp_path / "runs"
    path = ensure_out_of_fold(result, synthetic_mitdb, None, runs)
    assert path == oof_path(runs) and path.exists()
    expected = out_of_fold(result, data)
    with np.load(path) as z:
        np.testing.assert_array_equal(z["ds1_oof"], expected["ds1_oof"])
        np.testing.assert_array_equal(z["all_oof"], expected["all_oof"])
        np.testing.assert_array_equal(z["y"], data["y"])
    ds2 = np.isin(data["record"], ["100", "103", "105"])
    assert not expected["ds1_oof"][ds2].any()  # DS1 folds say nothing of DS2 beats
    assert np.allclose(expected["all_oof"].sum(1), 1.0)  # every beat held out once
    before = path.stat().st_mtime_ns
    ensure_out_of_fold({**result, "chosen": "missing"}, synthetic_mitdb, None, runs)
    assert path.stat().st_mtime_ns == before
