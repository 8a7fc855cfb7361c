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


def _evaluate_json(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "ecg_utils", "evaluate", *args, "--json", "--quiet"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout)


def _same_row(got: dict, recorded: dict) -> None:
    """An ``evaluate --json`` result is the recorded row: same beats, same accuracy."""
    assert got["n_beats"] == recorded["n_beats"]
    assert got["accuracy"] == pytest.approx(recorded["accuracy"], abs=1e-9)


@pytest.mark.slow
def test_the_benchmark_default_path_matches_its_recorded_row(mitdb_dir):
    """``evaluate`` of BENCHMARK_WEIGHTS runs what predict runs (its adaptation included)
    and gives the DS2 row the report and README show for it."""
    recorded = json.loads((RESULTS / "relative.json").read_text())["default_path"]
    got = _evaluate_json(
        "--weights", str(ecg_utils.BENCHMARK_WEIGHTS), "--protocol", "inter-patient",
        "--mitdb-dir", str(mitdb_dir),
    )  # fmt: skip
    _same_row(got, recorded["benchmark_ds2"])


@pytest.mark.slow
def test_the_product_on_svdb_dev_matches_its_recorded_row():
    from ecg_utils._io import EcgError
    from ecg_utils.svdb import find_svdb_dir

    try:
        folder = find_svdb_dir()
    except EcgError as exc:
        pytest.skip(str(exc))
    recorded = json.loads((RESULTS / "relative.json").read_text())["default_path"]
    got = _evaluate_json(
        "--weights", str(ecg_utils.DEFAULT_WEIGHTS), "--protocol", "svdb-dev",
        "--svdb-dir", str(folder),
    )  # fmt: skip
    _same_row(got, recorded["product_svdb_dev"])
    assert got["classes"]["Q"]["support"] < 100  # svdb has no paced patient


def test_the_relative_weights_are_the_recipe_and_settings_chosen_on_validation():
    rel = json.loads((RESULTS / "relative.json").read_text())
    for role in ("benchmark", "product"):
        row = rel["shipped"][role]
        meta = json.loads((ROOT / row["weights"]).with_suffix(".json").read_text())
        assert meta["recipe"] == rel["chosen"]
        assert meta["operating_points"]["high"] == row["high"]
        assert meta["adaptation"] == rel["default_path"]["adaptation"]
        assert meta["replay"] == row["replay"]
    patient = RESULTS / "relative_patient.json"
    if patient.exists():
        assert meta["fine_tune"] == json.loads(patient.read_text())["fine_tune"]
