"""Tests for ecg_utils.plan: what a study run says before it starts."""

from __future__ import annotations

import json

from ecg_utils.experiments import default_experiments
from ecg_utils.plan import describe_plan, plan_study
from ecg_utils.study import StudyOptions

DATA = {"fingerprint": "abc", "segmentation_version": 3, "quick": False}


def _record(results, name, seconds, cv_seconds=None):
    exp = next(e for e in default_experiments() if e.name == name)
    result = {
        "name": name,
        "config": exp.config.to_dict(),
        "data": DATA,
        "train_seconds": seconds,
        "cross_validation": {"seconds": cv_seconds} if cv_seconds else None,
    }
    (results / f"{name}.json").write_text(json.dumps(result))


def _opts(tmp_path, **kw):
    return StudyOptions(mitdb_dir=tmp_path, out_dir=tmp_path, **kw)


def test_plan_adds_up_recorded_times_and_scales_them_by_speed(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    _record(results, "seed_kaggle", 60.0)
    _record(results, "small_ip", 100.0, cv_seconds=200.0)
    (results / "study.json").write_text(json.dumps({"speed": 10.0}))
    opts = _opts(tmp_path, experiments=["seed_kaggle", "small_ip", "strong_ip"])
    plan = plan_study(opts, DATA, speed=20.0)
    assert sorted(plan["train"]) == ["seed_kaggle", "small_ip", "strong_ip"]
    assert plan["unknown"] == ["strong_ip"]
    assert plan["recorded_seconds"] == 360.0
    assert plan["estimate_seconds"] == 180.0  # this machine is twice as fast
    text = describe_plan(plan)
    assert "trains 3 model(s)" in text and "about 3 min" in text and "strong_ip" in text


def test_committed_results_count_as_done_only_when_reuse_is_asked(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    _record(results, "seed_kaggle", 60.0)
    opts = _opts(tmp_path, experiments=["seed_kaggle"])
    assert plan_study(opts, DATA, speed=1.0)["train"] == ["seed_kaggle"]  # no runs/ weights
    reuse = _opts(tmp_path, experiments=["seed_kaggle"], reuse_results=True)
    plan = plan_study(reuse, DATA, speed=1.0)
    assert plan["reuse"] == ["seed_kaggle"] and plan["train"] == []
    other = {**DATA, "fingerprint": "changed"}
    assert plan_study(reuse, other, speed=1.0)["train"] == ["seed_kaggle"]


def test_smoke_runs_make_no_time_promise(tmp_path):
    plan = plan_study(_opts(tmp_path, quick=True, experiments=["seed_kaggle"]), speed=1.0)
    assert plan["recorded_seconds"] is None
    assert "Smoke run" in describe_plan(plan)
