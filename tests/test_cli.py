"""Tests for the command line: bad input is one ``error:`` line naming the file, exit 2.

Most cases call :func:`ecg_utils.cli.main` in-process (fast); two run
``python -m ecg_utils`` in subprocesses, started together, to check what a user sees:
no traceback without ``--debug``, a traceback with it. The slow test runs
``evaluate --json`` on the real records in a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch
from cli_helpers import run_main
from conftest import ROOT, tmp_files

from ecg_utils.models import ResNet1D

CLASS_KEYS = {"sensitivity", "ppv", "f1", "support"}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """No user settings; never download."""
    for name in ("ECG_MITDB_DIR", "ECG_CACHE_DIR", "ECG_PHYSIONET_URL", "ECG_KAGGLE_DIR"):
        monkeypatch.delenv(name, raising=False)


def evaluate(capsys, weights, mitdb, cache, *extra):
    """``evaluate --weights W --mitdb-dir D --cache-dir C [extra]`` in-process."""
    return run_main(
        capsys, "evaluate", "--weights", weights, "--mitdb-dir", mitdb, "--cache-dir", cache, *extra
    )


def assert_one_error_line(rc, err, *names):
    assert rc == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for name in names:
        assert str(name) in err, err


def outputs(folder):
    """Files under ``folder`` other than the inputs a test put there."""
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith("input")
    )


# ---------------------------------------------------------------------------
# Bad input, in-process
# ---------------------------------------------------------------------------


def test_missing_mitdb_folder(capsys, tmp_path):
    rc, _, err = run_main(
        capsys,
        "train",
        "--mitdb-dir",
        tmp_path / "nope",
        "--cache-dir",
        tmp_path / "cache",
        "--out",
        tmp_path / "m.pth",
        "--quiet",
    )
    assert_one_error_line(rc, err, tmp_path / "nope", "MIT-BIH folder not found")
    assert outputs(tmp_path) == []


def test_build_with_missing_folder_creates_no_output(capsys, tmp_path):
    rc, _, err = run_main(
        capsys,
        "build",
        "--mitdb-dir",
        tmp_path / "nope",
        "--out",
        tmp_path / "out",
        "--cache-dir",
        tmp_path / "cache",
    )
    assert_one_error_line(rc, err, tmp_path / "nope")
    assert not (tmp_path / "out").exists()


def test_evaluate_with_missing_weights(capsys, tmp_path, synthetic_mitdb):
    rc, _, err = evaluate(capsys, tmp_path / "missing.pth", synthetic_mitdb, tmp_path / "cache")
    assert_one_error_line(rc, err, tmp_path / "missing.pth", "weights file not found")
    assert outputs(tmp_path) == []  # weights are checked before any data is read


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"garbage" * 50, "not a"), (b"", "weights file is empty")],
    ids=["garbage", "empty"],
)
def test_evaluate_with_garbage_weights(capsys, tmp_path, synthetic_mitdb, content, message):
    weights = tmp_path / "input.pth"
    weights.write_bytes(content)
    rc, _, err = evaluate(capsys, weights, synthetic_mitdb, tmp_path / "cache")
    assert_one_error_line(rc, err, weights, message)


def test_evaluate_with_weights_of_another_model(capsys, tmp_path, synthetic_mitdb):
    weights = tmp_path / "input.pth"
    torch.save(ResNet1D(width=4).state_dict(), weights)
    rc, _, err = evaluate(capsys, weights, synthetic_mitdb, tmp_path / "cache")
    assert_one_error_line(rc, err, weights, "do not fit")


def test_evaluate_with_a_damaged_record(capsys, tmp_path, synthetic_mitdb, cnn_weights):
    db = tmp_path / "input-db"
    shutil.copytree(synthetic_mitdb, db)
    dat = db / "106.dat"
    dat.write_bytes(dat.read_bytes()[:1000])
    rc, _, err = evaluate(capsys, cnn_weights, db, tmp_path / "cache")
    assert_one_error_line(rc, err, dat, "truncated")
    assert tmp_files(tmp_path) == []


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--epochs", "-1"], "argument --epochs: must be a positive integer, got -1"),
        (["--batch-size", "0"], "argument --batch-size: must be a positive integer, got 0"),
        (["--protocol", "bogus"], "argument --protocol: invalid choice: 'bogus'"),
        (["--lr", "nan"], "argument --lr: must be a positive number"),
    ],
)
def test_train_usage_errors_are_one_line(capsys, tmp_path, flags, message):
    rc, _, err = run_main(capsys, "train", "--mitdb-dir", tmp_path, *flags)
    assert_one_error_line(rc, err, message, "see 'ecg_utils train --help'")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('{"protocol": "bogus"}', "unknown protocol 'bogus'"),
        ('{"epochs": -1}', "epochs must be >= 1"),
        ('{"epochs": "ten"}', "epochs must be int"),
        ('{"learning_rate": 0.1}', "unknown training option(s): learning_rate"),
        ('{"epochs": 3', "cannot read configuration"),
        ("[3]", "configuration must be a JSON object"),
    ],
)
def test_train_with_a_bad_configuration_file(capsys, tmp_path, config, message):
    path = tmp_path / "input.json"
    path.write_text(config)
    rc, _, err = run_main(
        capsys,
        "train",
        "--config",
        path,
        "--mitdb-dir",
        tmp_path / "nope",
        "--out",
        tmp_path / "m.pth",
    )
    assert_one_error_line(rc, err, path, message)
    assert outputs(tmp_path) == []


def test_train_out_must_not_be_a_folder(capsys, tmp_path, synthetic_mitdb):
    rc, _, err = run_main(capsys, "train", "--mitdb-dir", synthetic_mitdb, "--out", tmp_path)
    assert_one_error_line(rc, err, tmp_path, "not a folder")


def test_report_with_empty_results_is_an_error(capsys, tmp_path):
    (tmp_path / "results").mkdir()
    rc, _, err = run_main(
        capsys, "report", "--results", tmp_path / "results", "--out", tmp_path / "report.md"
    )
    assert_one_error_line(rc, err, tmp_path / "results", "no results files")
    assert not (tmp_path / "report.md").exists()


def test_report_from_study_results(capsys, tmp_path, quick_study):
    rc, out, _ = run_main(
        capsys, "report", "--results", quick_study / "results", "--out", tmp_path / "report.md"
    )
    assert rc == 0 and out.strip() == str(tmp_path / "report.md")
    assert "## Reproducibility" in (tmp_path / "report.md").read_text()


# ---------------------------------------------------------------------------
# Working commands, in-process
# ---------------------------------------------------------------------------


def test_train_writes_weights_and_metadata_only(capsys, tmp_path, synthetic_mitdb):
    config = tmp_path / "input.json"
    config.write_text(json.dumps({"protocol": "inter-patient", "threads": 1, "seed": 4}))
    out = tmp_path / "runs" / "m.pth"
    rc, stdout, err = run_main(
        capsys,
        "train",
        "--config",
        config,
        "--mitdb-dir",
        synthetic_mitdb,
        "--cache-dir",
        tmp_path / "cache",
        "--epochs",
        "1",
        "--batch-size",
        "128",
        "--out",
        out,
        "--quiet",
    )
    assert rc == 0, err
    assert stdout.startswith(f"saved {out}")
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.json", "m.pth"]
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["train_config"]["protocol"] == "inter-patient"  # the file's, not a default
    assert meta["train_config"]["seed"] == 4 and meta["train_config"]["epochs"] == 1
    assert meta["data_fingerprint"] and meta["split_seed"] == 2018
    assert meta["environment"]["packages"]["torch"]
    assert tmp_files(tmp_path) == []


def test_train_cross_validated_from_the_command_line(capsys, tmp_path, synthetic_mitdb):
    out = tmp_path / "cv.pth"
    rc, stdout, err = run_main(
        capsys,
        "train",
        "--protocol",
        "inter-patient",
        "--cv-folds",
        "3",
        "--epochs",
        "2",
        "--threads",
        "1",
        "--mitdb-dir",
        synthetic_mitdb,
        "--cache-dir",
        tmp_path / "cache",
        "--out",
        out,
        "--quiet",
    )
    assert rc == 0, err
    assert re.search(r"\d+ s \+ \d+ s cross-validation\)$", stdout.strip())
    meta = json.loads(out.with_suffix(".json").read_text())
    cv = meta["cross_validation"]
    assert len(cv["folds"]) == 3 and meta["best_epoch"] == cv["epoch"]
    assert meta["train_config"]["cv_folds"] == 3
    assert set(meta["operating_points"]) == {"balanced", "high"}
    assert (tmp_path / "cv_folds.pth").is_file()  # the fold models, beside the weights
    assert meta["operating_points"]["balanced"] == (meta["class_bias"] or [0.0] * 5)
    # both operating points serve evaluate
    for point in ("balanced", "high"):
        rc, stdout, err = evaluate(
            capsys,
            out,
            synthetic_mitdb,
            tmp_path / "cache",
            "--protocol",
            "inter-patient",
            "--sensitivity",
            point,
            "--json",
        )
        assert rc == 0, err
        metrics = check_metrics_json(stdout, "inter-patient")
        assert metrics["operating_point"] == point
        assert metrics["test_records_seen_in_training"] is False


def test_a_model_without_operating_points_refuses_high_sensitivity(
    capsys, tmp_path, synthetic_mitdb, cnn_weights
):
    from ecg_utils.checkpoint import read_metadata

    weights = tmp_path / "no_points.pth"
    shutil.copyfile(cnn_weights, weights)
    meta = {**read_metadata(cnn_weights), "operating_points": None}
    weights.with_suffix(".json").write_text(json.dumps(meta))
    rc, _, err = evaluate(
        capsys, weights, synthetic_mitdb, tmp_path / "cache", "--sensitivity", "high"
    )
    assert_one_error_line(rc, err, "no 'high' operating point")


def test_evaluating_test_records_a_model_trained_on_says_so(
    capsys, tmp_path, synthetic_mitdb, cnn_weights
):
    from ecg_utils.checkpoint import read_metadata

    weights = tmp_path / "kaggle_trained.pth"
    shutil.copyfile(cnn_weights, weights)
    meta = {**read_metadata(cnn_weights), "train_config": {"protocol": "kaggle"}}
    weights.with_suffix(".json").write_text(json.dumps(meta))
    args = (synthetic_mitdb, tmp_path / "cache", "--protocol", "inter-patient", "--json")
    rc, stdout, err = evaluate(capsys, weights, *args)
    assert rc == 0, err
    assert json.loads(stdout)["test_records_seen_in_training"] is True
    assert err.startswith("warning: ") and "not those of new patients" in err


def test_evaluate_json_in_process(capsys, tmp_path, synthetic_mitdb, cnn_weights):
    rc, out, err = evaluate(capsys, cnn_weights, synthetic_mitdb, tmp_path / "cache", "--json")
    assert rc == 0, err
    check_metrics_json(out, "kaggle")


def check_metrics_json(stdout: str, protocol: str) -> dict:
    assert stdout.count("\n") == 1
    metrics = json.loads(stdout)
    assert set(metrics) == {
        "protocol",
        "n_beats",
        "accuracy",
        "macro_f1",
        "classes",
        "operating_point",
        "test_records_seen_in_training",
    }
    assert metrics["protocol"] == protocol
    assert set(metrics["classes"]) == {"N", "S", "V", "F", "Q"}
    for c in metrics["classes"].values():
        assert set(c) == CLASS_KEYS
    assert sum(c["support"] for c in metrics["classes"].values()) == metrics["n_beats"]
    return metrics


# ---------------------------------------------------------------------------
# What a user sees: subprocesses, started together
# ---------------------------------------------------------------------------


def start(args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for name in ("ECG_MITDB_DIR", "ECG_CACHE_DIR", "ECG_PHYSIONET_URL"):
        env.pop(name, None)
    return subprocess.Popen(
        [sys.executable, "-m", "ecg_utils", *map(str, args)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def user_runs(tmp_path_factory, synthetic_mitdb):
    """Run a few commands as a user would, all at once; {name: (rc, stdout, stderr, cwd)}."""
    commands = {
        "missing weights": [
            "evaluate",
            "--weights",
            "missing.pth",
            "--mitdb-dir",
            synthetic_mitdb,
            "--cache-dir",
            "cache",
        ],
        "debug": [
            "evaluate",
            "--debug",
            "--weights",
            "missing.pth",
            "--mitdb-dir",
            synthetic_mitdb,
            "--cache-dir",
            "cache",
        ],
    }
    procs = {}
    for name, args in commands.items():
        cwd = tmp_path_factory.mktemp(name.replace(" ", "_"))
        procs[name] = (start(args, cwd), cwd)
    results = {}
    for name, (proc, cwd) in procs.items():
        out, err = proc.communicate()
        results[name] = (proc.returncode, out, err, cwd)
    return results


def test_user_sees_one_error_line_and_no_traceback(user_runs):
    rc, out, err, cwd = user_runs["missing weights"]
    assert rc == 2
    assert err == "error: missing.pth: weights file not found\n"
    assert "Traceback" not in err and out == ""
    assert [p.name for p in cwd.iterdir()] == []  # nothing written, not even a cache


def test_debug_shows_the_traceback(user_runs):
    rc, _, err, _ = user_runs["debug"]
    assert rc == 1
    assert "Traceback" in err and "EcgError: missing.pth: weights file not found" in err


@pytest.mark.slow
def test_evaluate_json_on_the_real_data(tmp_path, mitdb_dir, cnn_weights):
    proc = start(
        [
            "evaluate",
            "--weights",
            cnn_weights,
            "--mitdb-dir",
            mitdb_dir,
            "--cache-dir",
            tmp_path / "cache",
            "--json",
        ],
        tmp_path,
    )
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert err == ""  # no progress bars when stderr is not a terminal
    metrics = check_metrics_json(out, "kaggle")
    assert metrics["n_beats"] == 21_890  # 20 % of 109,446 beats
    assert metrics["accuracy"] > 0.9  # the committed ECG1DCNN on its own test side


def test_archive_summary_has_start_time_units_and_weights(capsys, tmp_path):
    import pandas as pd
    from conftest import write_record

    pytest.importorskip("pyarrow", reason="predict over folders needs the archive extra")
    rec = write_record(tmp_path / "in", "rec", seconds=20, leads=("MLII",))
    lines = rec.file("hea").read_text().splitlines()
    fields = lines[0].split()[:4]
    lines[0] = " ".join([*fields, "08:30:00", "01/05/2024"])  # base time and date
    gain = lines[1].split()[2]  # "200(-1893)/mV": uncalibrated as "0(-1893)/mV"
    lines[1] = lines[1].replace(gain, "0" + gain[gain.index("(") :], 1)
    rec.file("hea").write_text("\n".join(lines) + "\n")
    weights = ROOT / "ecg_cnn.pth"
    argv = ("predict", tmp_path / "in", "--out", tmp_path / "out", "--workers", "1")
    rc, _, err = run_main(capsys, *argv, "--weights", weights)
    assert rc == 0, err
    row = pd.read_csv(tmp_path / "out" / "summary.csv").iloc[0]
    assert (row["start_time"], row["units"], row["weights"]) == (
        "2024-05-01T08:30:00",
        "adu",
        str(weights.resolve()),
    )
