"""Networks and fusions judged after the relative choice, and the svdb-dev training check
(ecg_utils.relative_fusion, ecg_utils.relative_svdb), on the synthetic database."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecg_utils.checkpoint import save_model
from ecg_utils.predict import RELATIVE_SET
from ecg_utils.relative_study import (
    BENCHMARK_TARGET,
    PRODUCT_TARGET,
    feature_set,
    fit_candidate,
    predict_candidate,
)
from ecg_utils.splits import DS1

LINEAR = {"kind": "linear", "params": {"C": 0.1}, "title": "test"}


def test_the_stack_is_fitted_without_the_held_out_fold():
    from ecg_utils.relative_fusion import _stack

    rng = np.random.default_rng(0)
    y = rng.choice(3, 400, p=[0.6, 0.2, 0.2])
    records = np.repeat(np.array(["a", "b", "c", "d"]), 100)
    ds1 = records != "d"
    onehot = np.eye(5)[y] * 0.8 + 0.04

    def member(noise):
        p = np.clip(onehot + rng.normal(0, noise, onehot.shape), 1e-3, None)
        p /= p.sum(1, keepdims=True)
        return {"oof": p, "svdb": p[:50], "ds2": p[:60], "seconds": 1.0}

    out = _stack([member(0.1), member(0.3)], y, records, ds1, [["a"], ["b"], ["c"]])
    assert out["oof"].shape == (400, 5) and (out["oof"][~ds1] == 0).all()
    np.testing.assert_allclose(out["oof"][ds1].sum(1), 1, atol=1e-5)
    assert (out["oof"][ds1].argmax(1) == y[ds1]).mean() > 0.9
    assert out["svdb"].shape == (50, 5) and out["seconds"] >= 2.0


@pytest.fixture(scope="module")
def judged_study(tmp_path_factory, synthetic_mitdb):
    """A relative result as the study leaves it after shipping, on the synthetic records
    (the linear recipe chosen), with its out-of-fold probabilities and both weights."""
    root = tmp_path_factory.mktemp("relative")
    records = (synthetic_mitdb / "RECORDS").read_text().split()
    mit = feature_set(synthetic_mitdb, records, None)
    ds1 = np.isin(mit["record"], DS1)
    folds = [["101", "106", "108"], ["109", "112", "114"], ["115", "116", "118", "119"]]
    product_folds = [["100", "101", "106", "108"], ["103", "109", "112", "114"]]
    product_folds.append(["105", "115", "116", "118", "119"])
    ds1_oof, all_oof = np.zeros((len(mit["y"]), 5)), np.zeros((len(mit["y"]), 5))
    for fold in folds:
        held = np.isin(mit["record"], fold)
        model, _, _ = fit_candidate(LINEAR, mit["x"][ds1 & ~held], mit["y"][ds1 & ~held])
        ds1_oof[held] = predict_candidate(model, mit["x"][held])
    for fold in product_folds:
        held = np.isin(mit["record"], fold)
        model, _, _ = fit_candidate(LINEAR, mit["x"][~held], mit["y"][~held])
        all_oof[held] = predict_candidate(model, mit["x"][held])
    (root / "runs").mkdir()
    np.savez(root / "runs" / "relative_oof.npz", ds1_oof=ds1_oof, all_oof=all_oof)
    for target, mask in ((BENCHMARK_TARGET, ds1), (PRODUCT_TARGET, np.ones_like(ds1))):
        model, arch, args = fit_candidate(LINEAR, mit["x"][mask], mit["y"][mask])
        meta = {"architecture": arch, "model_args": args, "feature_set": RELATIVE_SET}
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        save_model(model, root / target, meta)
    result = {
        "chosen": "relative_linear",
        "folds": folds,
        "candidates": {"relative_linear": {"score": 0.5}},
        "shipped": {"product": {"folds": product_folds}},
    }
    return root, result


def test_networks_and_fusions_are_judged_before_ds2_is_read(
    judged_study, synthetic_mitdb, monkeypatch
):
    from ecg_utils import experiments
    from ecg_utils.relative_fusion import fusion_check

    networks = {k: {**v, "params": {"epochs": 2}} for k, v in experiments.RELATIVE_NETWORKS.items()}
    monkeypatch.setattr(experiments, "RELATIVE_NETWORKS", networks)
    root, result = judged_study
    out = fusion_check(result, synthetic_mitdb, synthetic_mitdb, None, root, n_boot=0)
    assert set(out["rows"]) == set(networks) | set(experiments.FUSIONS)
    for row in out["rows"].values():
        assert {"ds1_folds", "svdb_dev", "score", "ds2"} <= set(row)
        assert row["score"] == pytest.approx(
            (row["ds1_folds"]["score"] + row["svdb_dev"]["score"]) / 2
        )
    assert out["best"] in out["rows"]
    assert out["replaces_chosen"] == (out["rows"][out["best"]]["score"] >= 0.5 + out["keep_gain"])
    assert set(out["curves"]) == {"svdb-dev", "DS2"} and set(out["curves"]["DS2"]) == {"S", "V"}


def test_the_svdb_training_check_holds_records_out_of_both_databases(judged_study, synthetic_mitdb):
    from ecg_utils.relative_svdb import svdb_training_check

    root, result = judged_study
    out = svdb_training_check(result, synthetic_mitdb, synthetic_mitdb, None, root)
    folds = out["svdb_folds"]
    assert sorted(sum(folds, [])) == sorted((synthetic_mitdb / "RECORDS").read_text().split())
    rows = out["rows"]
    assert out["gain"] == pytest.approx(rows["with"]["score"] - rows["without"]["score"])
    assert out["trains_on_svdb"] == (out["gain"] >= out["keep_gain"])


def test_the_clusters_baseline_reads_beats_that_line_up_with_the_features(synthetic_mitdb):
    from ecg_utils.relative_adaptation import _adapted, recording_beats

    records = ["101", "106"]
    data = feature_set(synthetic_mitdb, records, None)
    beats, rr = recording_beats(synthetic_mitdb, records)
    assert beats.shape == (len(data["y"]), 187) and rr.shape == (len(data["y"]), 4)
    proba = np.full((len(data["y"]), 5), 0.2)
    proba[::7] = [0.1, 0.6, 0.1, 0.1, 0.1]
    out = _adapted(proba, (beats, rr), data["record"], "clusters")
    assert out.shape == proba.shape and not np.allclose(out, proba)
    np.testing.assert_allclose(out.sum(1), 1, atol=1e-5)
    assert _adapted(proba, data["x"], data["record"], None) is proba


def test_a_mean_fusion_averages_its_members_and_fits_nothing():
    from ecg_utils.relative_fusion import _mean

    rng = np.random.default_rng(1)
    members = []
    for seconds in (1.0, 2.0):
        p = rng.dirichlet(np.ones(5), size=30)
        members.append({"oof": p, "svdb": p[:10], "ds2": p[:20], "seconds": seconds})
    out = _mean(members)
    np.testing.assert_allclose(out["oof"], (members[0]["oof"] + members[1]["oof"]) / 2)
    np.testing.assert_allclose(out["ds2"].sum(1), 1)
    assert out["svdb"].shape == (10, 5) and out["seconds"] == 3.0


def test_the_fusion_check_reruns_when_its_catalogue_changes(monkeypatch):
    from ecg_utils import experiments
    from ecg_utils.relative_fusion import fusion_catalogue
    from ecg_utils.relative_study import matches_recorded

    recorded = json.loads(json.dumps(fusion_catalogue()))
    assert matches_recorded(recorded, fusion_catalogue())
    fewer = {k: v for k, v in experiments.FUSIONS.items() if v.get("combine") != "mean"}
    monkeypatch.setattr(experiments, "FUSIONS", fewer)
    assert not matches_recorded(recorded, fusion_catalogue())
