"""Tests for ecg_utils.adaptation and the patient-specific protocol: labels, adaptation, files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from cli_helpers import run_main
from conftest import write_record

from ecg_utils import EcgError
from ecg_utils.adaptation import adapt, match_labels, parse_labels
from ecg_utils.beats import FEATURE_SETS
from ecg_utils.checkpoint import load_model, save_model
from ecg_utils.models import PatientAdapted, ResNet1D
from ecg_utils.predict import classify_record


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny untrained ResNet1D with RR features (the shipped models' kind)."""
    path = tmp_path_factory.mktemp("model") / "m.pth"
    n = len(FEATURE_SETS["rr"])
    torch.manual_seed(0)
    args = {"width": 4, "n_features": n}
    meta = {"architecture": "resnet1d", "model_args": args, "feature_set": "rr"}
    save_model(ResNet1D(**args), path, meta)
    return path


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    """60 s at 360 Hz, beats cycling N, N, V (ventricular beats twice as wide)."""
    return write_record(
        tmp_path_factory.mktemp("rec"), "200", seconds=60.0, symbols=("N", "N", "V"), rr_s=0.7
    )


def test_labels_accept_names_numbers_and_tables():
    table = parse_labels([(30, "V"), (10, "N"), (20, 1)], n_samples=100)
    assert table["sample"].tolist() == [10, 20, 30] and table["label"].tolist() == [0, 1, 2]
    frame = pd.DataFrame({"sample": [5, 6], "class": ["Q", "F"]})
    assert parse_labels(frame, 10)["label"].tolist() == [4, 3]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([], "no labelled beats"),
        ([(200, "N")], "outside the recording"),
        ([(-1, "N")], "outside the recording"),
        ([(5, "X")], "unknown class 'X'"),
        ([(5, 7)], "unknown class '7'"),
        ([(5.5, "N")], "whole numbers"),
        (pd.DataFrame({"time": [1], "class": ["N"]}), "'sample' and 'class' columns"),
    ],
)
def test_bad_labels_are_one_clear_error(labels, message):
    with pytest.raises(EcgError, match=message):
        parse_labels(labels, n_samples=100)


def test_labels_name_the_nearest_beat_within_0_15_s():
    peaks = np.array([100, 460, 820])
    got = match_labels(np.array([90, 470, 640, 830, 2000]), peaks, 360.0)
    assert got.tolist() == [0, 1, -1, 2, -1]


def test_adaptation_learns_only_from_the_labelled_minutes(record, model_file):
    x, fs = record.signal[:, 0], record.fs
    peaks, labels = record.beat_samples, record.beat_labels
    cut = int(20 * fs)  # the first 20 s are labelled
    first = peaks < cut
    adapted = adapt(
        model_file, x, fs, list(zip(peaks[first], labels[first], strict=True)), r_peaks=peaks
    )
    assert isinstance(adapted.model, PatientAdapted)
    patient = adapted.meta["patient"]
    assert patient["n_labels"] == int(first.sum())
    assert patient["labelled_samples"][1] < cut  # nothing from the scored part
    assert patient["labels_per_class"]["V"] == int((labels[first] == 2).sum())
    assert len(adapted.model.memory) == int(first.sum())
    # V beats are wide: the patient's own labelled V beats vote them V, unlike the raw model
    table = classify_record(x, fs, r_peaks=peaks, weights=adapted)
    scored = table["sample"].to_numpy() >= cut
    right = (table["label"].to_numpy() == labels)[scored].mean()
    raw = classify_record(x, fs, r_peaks=peaks, weights=model_file)
    assert right > (raw["label"].to_numpy() == labels)[scored].mean()
    assert right > 0.95


def test_adapted_weights_save_load_and_predict_the_same(record, model_file, tmp_path):
    x, fs, peaks = record.signal[:, 0], record.fs, record.beat_samples
    adapted = adapt(model_file, x, fs, [(peaks[0], "N"), (peaks[2], "V")], r_peaks=peaks)
    save_model(adapted.model, tmp_path / "p.pth", adapted.meta)
    again = load_model(tmp_path / "p.pth")
    assert again.meta["patient"] == adapted.meta["patient"]
    a = classify_record(x, fs, r_peaks=peaks, weights=adapted)
    b = classify_record(x, fs, r_peaks=peaks, weights=again)
    pd.testing.assert_frame_equal(a, b)


def test_an_adapted_model_is_not_adapted_again(record, model_file):
    x, fs, peaks = record.signal[:, 0], record.fs, record.beat_samples
    adapted = adapt(model_file, x, fs, [(peaks[0], "N")], r_peaks=peaks)
    with pytest.raises(EcgError, match="cannot be adapted"):
        adapt(adapted, x, fs, [(peaks[0], "N")], r_peaks=peaks)
    with pytest.raises(EcgError, match="within 0.15 s of a beat"):
        adapt(model_file, x, fs, [(peaks[0] + 126, "N")], r_peaks=peaks)  # 0.35 s from both


def test_adapt_command_with_annotations_then_predict(capsys, record, model_file, tmp_path):
    out = tmp_path / "patient.pth"
    hea = record.file("hea")
    rc, stdout, err = run_main(
        capsys,
        "adapt",
        hea,
        "--ann",
        "atr",
        "--minutes",
        "0.3",
        "--weights",
        model_file,
        "--out",
        out,
    )
    assert rc == 0, err
    assert "adapted to 200 from" in stdout
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["patient"]["record"] == "200" and meta["architecture"] == "patient"
    rc, stdout, err = run_main(capsys, "predict", hea, "--weights", out)
    assert rc == 0, err


@pytest.mark.parametrize(
    ("csv", "words"),
    [
        ("sample,class,record\n100,N,231\n", ["labels are for record(s) 231, not 200"]),
        ("sample,class\n100,X\n", ["unknown class 'X'"]),
        ("sample,class\n99999999,N\n", ["outside the recording"]),
        ("sample,class\n", ["no labelled beats"]),
    ],
)
def test_adapt_command_bad_labels(capsys, record, model_file, tmp_path, csv, words):
    labels = tmp_path / "labels.csv"
    labels.write_text(csv)
    out = tmp_path / "patient.pth"
    argv = ("adapt", record.file("hea"), "--labels", labels, "--weights", model_file)
    rc, _, err = run_main(capsys, *argv, "--out", out)
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert "labels.csv" in err
    for word in words:
        assert word in err, err
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_families_group_the_beats_and_a_review_labels_them(record, model_file):
    from ecg_utils.adaptation import family_labels, review_families

    x, fs, peaks = record.signal[:, 0], record.fs, record.beat_samples
    families, members, beats = review_families(model_file, x, fs, r_peaks=peaks, n_families=4)
    assert families["size"].sum() == len(members) == len(beats) == len(peaks)
    assert list(families["size"]) == sorted(families["size"], reverse=True)
    assert set(families["medoid_sample"]) <= set(members["sample"])
    families.loc[0, "class"] = "S" if families.loc[0, "predicted"] != "S" else "N"
    labels, reviewed, changed = family_labels(families, members)
    assert reviewed == 4 and changed == 1 and len(labels) == len(peaks)
    first = set(members["sample"][members["family"] == families.loc[0, "family"]])
    assert {lab for s, lab in labels if s in first} == {"NSVFQ".index(families.loc[0, "class"])}
    with pytest.raises(EcgError, match="not this recording's"):
        family_labels(families.assign(family=families["family"] + 100), members)


def test_clusters_command_then_adapt_from_the_review(capsys, record, model_file, tmp_path):
    out = tmp_path / "review"
    hea = record.file("hea")
    argv = ("clusters", hea, "--ann", "atr", "--families", "4", "--weights", model_file)
    rc, stdout, err = run_main(capsys, *argv, "--out", out)
    assert rc == 0, err
    assert {p.name for p in out.iterdir()} == {"families.csv", "beats.csv", "families.png"}
    adapt = ("adapt", hea, "--clusters", out / "families.csv", "--weights", model_file)
    rc, stdout, err = run_main(capsys, *adapt, "--out", tmp_path / "p.pth")
    assert rc == 0, err
    assert "4 families reviewed, 0 corrected" in stdout
    beats = pd.read_csv(out / "beats.csv")
    beats["record"] = "999"
    beats.to_csv(out / "beats.csv", index=False)
    rc, _, err = run_main(capsys, *adapt, "--out", tmp_path / "q.pth")
    assert rc == 2 and "of record 999, not 200" in err and not (tmp_path / "q.pth").exists()


@pytest.mark.parametrize(
    ("flags", "minutes", "beats"),
    [
        (("--labelled-minutes", "0.1"), 0.1, None),
        (("--labelled-beats", "3", "--labelled-minutes", "0.2"), 0.2, 3),
    ],
)
def test_patient_specific_protocols_from_the_command_line(
    capsys, tmp_path, synthetic_mitdb, model_file, flags, minutes, beats
):
    data = ("--mitdb-dir", synthetic_mitdb, "--cache-dir", tmp_path / "cache")
    argv = ("evaluate", "--weights", model_file, "--protocol", "patient-specific")
    rc, stdout, err = run_main(capsys, *argv, *flags, *data, "--json")
    assert rc == 0, err
    got = json.loads(stdout)
    assert got["protocol"] == "patient-specific"
    assert got["labelled_minutes"] == minutes and got["labelled_beats"] == beats
    assert set(got["classes"]) == set("NSVFQ") and got["n_beats"] > 0


def test_active_selection_without_a_budget_is_one_clear_error(
    capsys, tmp_path, synthetic_mitdb, model_file
):
    data = ("--mitdb-dir", synthetic_mitdb, "--cache-dir", tmp_path / "cache")
    argv = ("evaluate", "--weights", model_file, "--protocol", "patient-specific")
    rc, stdout, err = run_main(capsys, *argv, "--selection", "active", *data)
    assert rc != 0 and stdout == ""
    assert "--labelled-beats" in err and len(err.strip().splitlines()) == 1


def test_few_labels_families_come_from_the_first_minutes_only(synthetic_record):
    from ecg_utils.patient_specific import _reviewed_families

    rec = synthetic_record(seconds=60)
    peaks = rec.beat_samples
    first = peaks < 20 * rec.fs
    picked = _reviewed_families(rec.signal[:, 0], rec.fs, peaks, first, 4)
    assert 1 <= len(picked) <= 4 and first[picked].all()
