"""Tests for ecg_utils.study: a quick study on synthetic records records how it was made."""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import SYNTHETIC_RECORDS, tmp_files

from ecg_utils.checkpoint import load_model
from ecg_utils.splits import SPLIT_SEED


def read(path):
    return json.loads(path.read_text())


def test_study_writes_results_figures_and_weights(quick_study):
    results = quick_study / "results"
    assert {p.name for p in results.glob("*.json")} >= {
        "dataset.json",
        "study.json",
        "seed_kaggle.json",
        "seed_ip.json",
    }
    assert (quick_study / "figures" / "confusion_seed_ip.png").stat().st_size > 0
    assert tmp_files(quick_study) == []
    assert not list((quick_study / "runs").glob("*.ckpt"))  # removed once results exist


def test_study_metadata_is_enough_to_reproduce_the_run(quick_study, synthetic_mitdb):
    study = read(quick_study / "results" / "study.json")
    env = study["environment"]
    assert {"torch", "numpy", "wfdb", "scikit-learn"} <= set(env["packages"])
    assert "git_commit" in env and "git_dirty" in env and env["python"]
    assert study["split_seed"] == SPLIT_SEED
    assert study["seeds"] == {"relative_ip": 0, "seed_ip": 0, "seed_kaggle": 0}
    assert study["segmentation_version"] >= 1
    files = study["data_files"]
    assert len(files) == 3 * len(SYNTHETIC_RECORDS)
    dat = synthetic_mitdb / "101.dat"
    assert files["101.dat"] == hashlib.sha256(dat.read_bytes()).hexdigest()
    assert (
        study["data_fingerprint"] == read(quick_study / "results" / "dataset.json")["fingerprint"]
    )


def test_experiment_results_and_weights_carry_their_configuration(quick_study):
    result = read(quick_study / "results" / "seed_ip.json")
    assert result["config"]["seed"] == 0 and result["config"]["protocol"] == "inter-patient"
    meta = load_model(quick_study / "runs" / "seed_ip.pth").meta
    assert meta["train_config"] == result["config"]
    assert meta["split_seed"] == SPLIT_SEED
    assert (
        meta["data_fingerprint"] == read(quick_study / "results" / "study.json")["data_fingerprint"]
    )
    assert meta["environment"]["packages"]["torch"]


def test_inter_patient_results_keep_test_records_apart(quick_study):
    dataset = read(quick_study / "results" / "dataset.json")
    sides = dataset["splits"]["inter-patient"]
    train, val, test = (set(sides[s]["records"]) for s in ("train", "val", "test"))
    assert train and val and test
    assert train.isdisjoint(val) and train.isdisjoint(test) and val.isdisjoint(test)


def test_unseen_patient_candidate_is_cross_validated_on_training_records_only(quick_study):
    r = read(quick_study / "results" / "relative_ip.json")
    cv, records = r["cross_validation"], r["split_records"]
    held = sorted(rec for fold in cv["folds"] for rec in fold)
    assert held == records["train"] and records["val"] == []
    assert set(held).isdisjoint(records["test"])
    assert set(cv["per_record"]) == set(held)
    assert r["best_epoch"] == cv["epoch"] and r["class_bias"] == cv["class_bias"]
    shipped = read(quick_study / "results" / "shipped.json")
    assert shipped == {"ecg_utils/weights/interpatient.pth": "relative_ip"}


@pytest.mark.parametrize("name", ["seed_kaggle", "seed_ip", "relative_ip"])
def test_test_metrics_are_complete(quick_study, name):
    test = read(quick_study / "results" / f"{name}.json")["test"]
    assert set(test["classes"]) == {"N", "S", "V", "F", "Q"}
    assert 0 <= test["accuracy"] <= 1 and 0 <= test["macro_f1"] <= 1
