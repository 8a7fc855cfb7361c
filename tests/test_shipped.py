"""The committed artefacts agree with each other: weights, results, report and README."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ecg_utils
from ecg_utils.report import README_END, README_START, load_results, readme_summary, render_report

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


def test_report_is_generated_from_the_committed_results():
    expected = render_report(load_results(RESULTS), ROOT / "figures")  # as write_report
    assert (ROOT / "report.md").read_text(encoding="utf-8") == expected, (
        "report.md differs from its results: run `python -m ecg_utils report --readme README.md`"
    )


def test_readme_results_block_is_generated_from_the_committed_results():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split(README_START, 1)[1].split(README_END, 1)[0]
    assert block.strip() == readme_summary(load_results(RESULTS)).strip()


def test_shipped_weights_are_the_runs_chosen_on_validation():
    shipped = json.loads((RESULTS / "shipped.json").read_text())
    assert set(shipped) == {
        "ecg_cnn.pth",
        "ecg_utils/weights/interpatient.pth",
        "ecg_utils/weights/kaggle_best.pth",
        "ecg_utils/weights/product.pth",
    }
    for target, name in shipped.items():
        result = json.loads((RESULTS / f"{name}.json").read_text())
        meta = json.loads((ROOT / target).with_suffix(".json").read_text())
        assert meta["train_config"] == result["config"]


def test_ecg_cnn_loads_with_the_seed_readme_snippet():
    model = ecg_utils.ECG1DCNN(num_classes=5)
    model.load_state_dict(torch.load(ROOT / "ecg_cnn.pth", weights_only=True))
    model.eval()
    assert model(torch.rand(3, 1, 187)).shape == (3, 5)


@pytest.mark.parametrize(
    "path",
    [
        ROOT / "ecg_cnn.pth",
        ecg_utils.DEFAULT_WEIGHTS,
        ecg_utils.BENCHMARK_WEIGHTS,
        ecg_utils.KAGGLE_BEST_WEIGHTS,
    ],
)
def test_shipped_weights_load_with_their_metadata(path):
    loaded = ecg_utils.load_model(path)
    assert loaded.meta["classes"] == list(ecg_utils.CLASS_NAMES)
    assert loaded.meta["fs"] == ecg_utils.FS_BEAT


def test_the_new_patient_models_carry_both_operating_points_and_their_protocols():
    product = ecg_utils.load_model(ecg_utils.DEFAULT_WEIGHTS).meta
    benchmark = ecg_utils.load_model(ecg_utils.BENCHMARK_WEIGHTS).meta
    assert product["train_config"]["protocol"] == "all-records"
    assert benchmark["train_config"]["protocol"] == "inter-patient"
    for meta in (product, benchmark):
        assert set(meta["operating_points"]) == {"balanced", "high"}


@pytest.mark.slow
@pytest.mark.parametrize("target", ["ecg_cnn.pth", "ecg_utils/weights/kaggle_best.pth"])
def test_evaluate_json_of_the_shipped_kaggle_models_matches_their_results(mitdb_dir, target):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ecg_utils",
            "evaluate",
            "--weights",
            str(ROOT / target),
            "--protocol",
            "kaggle",
            "--mitdb-dir",
            str(mitdb_dir),
            "--json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    got = json.loads(out.stdout)
    assert set(got) >= {"protocol", "n_beats", "accuracy", "macro_f1", "classes"}
    assert set(got["classes"]) == set(ecg_utils.CLASS_NAMES)
    name = json.loads((RESULTS / "shipped.json").read_text())[target]
    recorded = json.loads((RESULTS / f"{name}.json").read_text())["test"]
    assert got["n_beats"] == recorded["n_beats"]
    assert got["accuracy"] == pytest.approx(recorded["accuracy"], abs=1e-9)
    assert got["macro_f1"] == pytest.approx(recorded["macro_f1"], abs=1e-9)
