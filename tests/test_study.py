"""Tests for ecg_utils.study: a quick study on synthetic records records how it was made."""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import SYNTHETIC_RECORDS, tmp_files

from ecg_utils.beats import build_beats
from ecg_utils.checkpoint import load_model
from ecg_utils.experiments import ENSEMBLE_SEEDS, REPEATED, default_experiments, repeat
from ecg_utils.patient_specific import VOTE_WEIGHTS
from ecg_utils.splits import SPLIT_SEED, make_split
from ecg_utils.study import StudyOptions, _wanted, experiment_data, run_experiment
from ecg_utils.training import TrainConfig


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
    seeds = study["seeds"]
    assert {k: seeds[k] for k in ("relative_ip", "seed_ip", "seed_kaggle")} == dict.fromkeys(
        ("relative_ip", "seed_ip", "seed_kaggle"), 0
    )
    assert seeds["relative_ip_m1"] == 1
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
    assert shipped["ecg_utils/weights/interpatient.pth"] in ("relative_ip", "ensemble_ip")


@pytest.mark.parametrize("name", ["seed_kaggle", "seed_ip", "relative_ip"])
def test_test_metrics_are_complete(quick_study, name):
    test = read(quick_study / "results" / f"{name}.json")["test"]
    assert set(test["classes"]) == {"N", "S", "V", "F", "Q"}
    assert 0 <= test["accuracy"] <= 1 and 0 <= test["macro_f1"] <= 1


def test_dataset_summary_counts_every_record(quick_study):
    dataset = read(quick_study / "results" / "dataset.json")
    per_record = dataset["record_counts"]
    assert sorted(per_record) == sorted(dataset["records"])
    for c in "NSVFQ":
        assert sum(counts[c] for counts in per_record.values()) == dataset["counts"][c]


def test_seed_repeats_change_only_the_seed_and_are_never_shipped():
    exps = default_experiments()
    by_name = {e.name: e for e in exps}
    assert len(by_name) == len(exps)
    repeats = [e for e in exps if e.repeat_of]
    assert {e.repeat_of for e in repeats} == set(REPEATED)
    for e in repeats:
        base = by_name[e.repeat_of]
        assert e.config.seed != base.config.seed and e.ship_as is None
        assert e.config.replace(seed=base.config.seed) == base.config


@pytest.mark.parametrize(
    ("quick", "named", "runs"),
    [(True, None, False), (False, None, True), (True, ["plain_ip_seed1"], True)],
)
def test_smoke_runs_leave_out_seed_repeats_unless_named(tmp_path, quick, named, runs):
    exp = next(e for e in default_experiments() if e.name == "plain_ip_seed1")
    opts = StudyOptions(mitdb_dir=tmp_path, quick=quick, experiments=named)
    assert _wanted(exp, opts) is runs


def test_a_seed_repeat_records_its_base_and_draws_no_figures(tmp_path, synthetic_mitdb):
    base = next(e for e in default_experiments() if e.name == "seed_kaggle")
    exp = repeat(base, 7)
    beats = build_beats(synthetic_mitdb, progress=False)
    opts = StudyOptions(mitdb_dir=synthetic_mitdb, out_dir=tmp_path, quick=True, progress=False)
    result = run_experiment(exp, beats, make_split(beats, "kaggle"), opts, n_boot=0)
    assert result["name"] == "seed_kaggle_seed7" and result["repeat_of"] == "seed_kaggle"
    assert result["config"]["seed"] == 7
    assert read(tmp_path / "results" / "seed_kaggle_seed7.json")["repeat_of"] == "seed_kaggle"
    assert not list(tmp_path.glob("figures/*"))


def test_ensemble_members_change_only_the_seed_and_share_the_folds(quick_study):
    base = read(quick_study / "results" / "relative_ip.json")
    for seed in ENSEMBLE_SEEDS[1:]:
        m = read(quick_study / "results" / f"relative_ip_m{seed}.json")
        assert m["member_of"] == "relative_ip" and m["ship_as"] is None
        assert m["config"] == {**base["config"], "seed": seed, "fold_seed": 0}
        assert m["cross_validation"]["folds"] == base["cross_validation"]["folds"]


def test_the_ensemble_is_chosen_on_folds_and_shipped_only_with_several_members(quick_study):
    ens = read(quick_study / "results" / "ensemble_ip.json")
    n = len(ENSEMBLE_SEEDS)
    assert 1 <= ens["k"] <= n and len(ens["cross_validation"]["scores_by_size"]) == n
    assert ens["members"] == ["relative_ip"] + [f"relative_ip_m{s}" for s in ENSEMBLE_SEEDS[1:]]
    assert set(ens["test"]["classes"]) == set("NSVFQ")
    loaded = load_model(quick_study / "runs" / "ensemble_ip.pth")
    assert loaded.meta["architecture"] == "ensemble"
    assert loaded.meta["model_args"]["k"] == ens["k"]
    shipped = read(quick_study / "results" / "shipped.json")
    expected = "ensemble_ip" if ens["k"] > 1 else "relative_ip"
    assert shipped["ecg_utils/weights/interpatient.pth"] == expected


def test_the_product_model_trains_on_every_record_with_the_benchmark_recipe(quick_study):
    product = read(quick_study / "results" / "product_all.json")
    base = read(quick_study / "results" / "relative_ip.json")
    assert product["recipe_of"] == "relative_ip" and product["test"] is None
    assert product["config"] == {**base["config"], "protocol": "all-records"}
    dataset = read(quick_study / "results" / "dataset.json")
    cv = product["cross_validation"]
    assert sorted(r for fold in cv["folds"] for r in fold) == sorted(dataset["records"])
    assert cv["ci"]["unit"] == "record" and set(cv["high"]["classes"]) == set("NSVFQ")
    shipped = read(quick_study / "results" / "shipped.json")
    assert shipped["ecg_utils/weights/product.pth"] in ("product_all", "product_ensemble")


def test_operating_points_curves_and_adaptation_are_recorded(quick_study):
    shipped = read(quick_study / "results" / "shipped.json")
    bench = read(quick_study / "results" / f"{shipped['ecg_utils/weights/interpatient.pth']}.json")
    assert set(bench["cross_validation"]["operating_points"]) == {"balanced", "high"}
    assert set(bench["test_curves"]) == {"S", "V"} and bench["test_high_sensitivity"]
    assert (quick_study / "figures" / f"operating_{bench['name']}.png").stat().st_size > 0
    adaptation = read(quick_study / "results" / "adaptation.json")
    assert [v["variant"] for v in adaptation["variants"]][0] == "none"
    assert adaptation["kept"] in {v["variant"] for v in adaptation["variants"]}
    patient = read(quick_study / "results" / "patient_specific.json")
    assert set(patient["per_record"]) == {"100", "103", "105"}
    assert patient["adapted"]["n_beats"] == patient["global"]["n_beats"] > 0
    assert list(patient["few_labels"]) == ["5"]  # smoke runs: the smallest count only
    assert patient["vote_weight"] in VOTE_WEIGHTS and len(patient["vote_weight_scores"]) == 4
    meta = load_model(quick_study / "runs" / f"{patient['experiment']}.pth").meta
    assert meta["patient_vote_weight"] == patient["vote_weight"]
    sequence = read(quick_study / "results" / "sequence.json")
    assert sequence["benchmark"] == "relative_ip" and isinstance(sequence["helps"], bool)
    assert set(sequence["test"]["classes"]) == set(sequence["out_of_fold"]["classes"])
    none = adaptation["variants"][0]["benchmark"]
    assert (
        none["out_of_fold"]
        == read(quick_study / "results" / "relative_ip.json")["cross_validation"]["out_of_fold"]
    )


def test_operating_points_of_an_older_rule_are_recomputed_without_retraining(
    tmp_path, quick_study, synthetic_mitdb
):
    import shutil

    from ecg_utils.study import refresh_operating_points

    shutil.copytree(quick_study / "runs", tmp_path / "runs")
    result = read(quick_study / "results" / "relative_ip.json")
    result["weights"] = str(tmp_path / "runs" / "relative_ip.pth")
    result["operating_version"] = 1
    result["cross_validation"]["operating_points"]["high"] = [9.0] * 5
    path = tmp_path / "relative_ip.json"
    path.write_text(json.dumps(result))
    beats = build_beats(synthetic_mitdb, progress=False)
    weights_before = (tmp_path / "runs" / "relative_ip.pth").read_bytes()
    refreshed = refresh_operating_points(path, beats, make_split(beats, "inter-patient"), 0)
    assert refreshed["operating_version"] > 1
    assert refreshed["cross_validation"]["operating_points"]["high"] != [9.0] * 5
    assert read(path) == refreshed
    meta = load_model(tmp_path / "runs" / "relative_ip.pth").meta
    assert meta["operating_points"] == refreshed["cross_validation"]["operating_points"]
    assert (tmp_path / "runs" / "relative_ip.pth").read_bytes() == weights_before


def test_a_distilled_result_is_current_only_for_its_teachers_weights(tmp_path):
    data = {"fingerprint": "f", "segmentation_version": 3, "quick": False}
    assert experiment_data(data, TrainConfig()) == data
    teacher = tmp_path / "teacher.pth"
    cfg = TrainConfig(teacher=str(teacher))
    assert experiment_data(data, cfg)["teacher"] is None  # not trained yet
    teacher.write_bytes(b"one")
    first = experiment_data(data, cfg)
    assert first["teacher"] == hashlib.sha256(b"one").hexdigest()
    teacher.write_bytes(b"two")
    assert experiment_data(data, cfg) != first


def test_reusing_committed_results_trains_nothing_without_the_runs(
    quick_study, synthetic_mitdb, tmp_path, monkeypatch
):
    """A fresh clone holds results/ and the shipped weights, never runs/."""
    import shutil

    from ecg_utils import study

    clone = tmp_path / "clone"
    shutil.copytree(quick_study, clone, ignore=shutil.ignore_patterns("runs"))
    before = {p.name: p.read_bytes() for p in (clone / "results").glob("*.json")}

    def no_training(*args, **kwargs):
        raise AssertionError("reuse_results trained a model")

    monkeypatch.setattr(study, "train_on_split", no_training)
    monkeypatch.setattr(study, "evaluate_weights", no_training)
    opts = StudyOptions(
        mitdb_dir=synthetic_mitdb,
        out_dir=clone,
        cache_dir=clone / "cache",
        quick=True,
        progress=False,
        reuse_results=True,
        experiments=read(clone / "results" / "study.json")["experiments"],
    )
    study.run_study(opts)
    after = {p.name: p.read_bytes() for p in (clone / "results").glob("*.json")}
    changed = [n for n in before if after[n] != before[n]]
    assert changed == []  # study.json too: nothing ran, so the tracked file stays as it was
