"""Tests for ecg_utils.evaluation: metrics, bootstrap intervals, figures and tables."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support

from ecg_utils._io import EcgError
from ecg_utils.evaluation import (
    _stats_from_confusions,
    bootstrap_ci,
    classification_metrics,
    classification_report_text,
    fmt_pct,
    metrics_table_markdown,
    plot_class_examples,
    plot_confusion_matrices,
    plot_learning_curves,
    plot_per_class_bars,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Hand-made example: N 4/5 right (one called S), S 1/2 right (one called N), V 2/2, no F
# at all, Q 1/1.
Y_TRUE = [0, 0, 0, 0, 0, 1, 1, 2, 2, 4]
Y_PRED = [0, 0, 0, 0, 1, 1, 0, 2, 2, 4]


def _noisy_labels(n: int, error_rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = rng.choice(5, size=n, p=[0.7, 0.1, 0.1, 0.05, 0.05])
    wrong = rng.random(n) < error_rate
    y_pred = np.where(wrong, (y_true + rng.integers(1, 5, size=n)) % 5, y_true)
    return y_true, y_pred


def _width(bounds: list[float]) -> float:
    return bounds[1] - bounds[0]


# --------------------------------------------------------------------------- metrics


def test_metrics_hand_made_example():
    m = classification_metrics(Y_TRUE, Y_PRED)
    assert m["n_beats"] == 10
    assert m["accuracy"] == pytest.approx(8 / 10)
    n, s, v, f, q = (m["classes"][c] for c in "NSVFQ")
    assert (n["sensitivity"], n["ppv"], n["f1"], n["support"]) == pytest.approx((0.8, 0.8, 0.8, 5))
    assert (s["sensitivity"], s["ppv"], s["f1"], s["support"]) == pytest.approx((0.5, 0.5, 0.5, 2))
    assert (v["sensitivity"], v["ppv"], v["f1"], v["support"]) == pytest.approx((1, 1, 1, 2))
    # F is absent: zero_division=0 gives 0, and it still counts in the macro mean.
    assert (f["sensitivity"], f["ppv"], f["f1"], f["support"]) == (0.0, 0.0, 0.0, 0)
    assert (q["sensitivity"], q["ppv"], q["f1"], q["support"]) == pytest.approx((1, 1, 1, 1))
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 1 + 0 + 1) / 5)
    assert m["confusion"] == [
        [4, 1, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [0, 0, 2, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 1],
    ]


def test_metrics_are_plain_json_types():
    m = classification_metrics(np.array(Y_TRUE), np.array(Y_PRED, dtype=np.int8))
    assert json.loads(json.dumps(m)) == m
    assert type(m["accuracy"]) is float and type(m["n_beats"]) is int
    assert all(type(v) is int for row in m["confusion"] for v in row)
    assert list(m["classes"]) == ["N", "S", "V", "F", "Q"]


@pytest.mark.parametrize(
    ("y_true", "y_pred", "message"),
    [
        ([0, 1], [0], "differ in length"),
        ([0, 5], [0, 1], "0..4"),
        ([0, -1], [0, 1], "0..4"),
        ([0.5, 1], [0, 1], "integer"),
        ([], [], "no beats"),
        ([[0, 1]], [[0, 1]], "1-D"),
    ],
)
def test_metrics_reject_bad_labels(y_true, y_pred, message):
    with pytest.raises(EcgError, match=message):
        classification_metrics(y_true, y_pred)


def test_vectorised_stats_match_sklearn():
    y_true, y_pred = _noisy_labels(3000, 0.2, seed=1)
    cm = np.asarray(classification_metrics(y_true, y_pred)["confusion"])
    stats = _stats_from_confusions(cm[None])
    prec, rec, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=range(5), zero_division=0
    )
    np.testing.assert_allclose(stats["sensitivity"][0], rec)
    np.testing.assert_allclose(stats["ppv"][0], prec)
    np.testing.assert_allclose(stats["f1"][0], f1)
    assert stats["macro_f1"][0] == pytest.approx(classification_metrics(y_true, y_pred)["macro_f1"])


def test_report_text_names_classes():
    text = classification_report_text(Y_TRUE, Y_PRED)
    for name in "NSVFQ":
        assert f"\n{' ' * 11}{name}" in text
    assert "0.800" in text and "macro avg" in text


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_contains_point_estimate_and_narrows():
    small = _noisy_labels(400, 0.1, seed=2)
    large = _noisy_labels(20000, 0.1, seed=3)
    ci_small = bootstrap_ci(*small, n_boot=500)
    ci_large = bootstrap_ci(*large, n_boot=500)
    for (y_true, y_pred), ci in ((small, ci_small), (large, ci_large)):
        m = classification_metrics(y_true, y_pred)
        assert ci["accuracy"][0] <= m["accuracy"] <= ci["accuracy"][1]
        assert ci["macro_f1"][0] <= m["macro_f1"] <= ci["macro_f1"][1]
        lo, hi = ci["classes"]["N"]["sensitivity"]
        assert lo <= m["classes"]["N"]["sensitivity"] <= hi
    assert ci_large["unit"] == "beat" and ci_large["n_boot"] == 500
    assert _width(ci_large["accuracy"]) < 0.5 * _width(ci_small["accuracy"])
    assert _width(ci_large["macro_f1"]) < 0.5 * _width(ci_small["macro_f1"])
    assert json.loads(json.dumps(ci_large)) == ci_large


def test_bootstrap_is_reproducible_with_seed():
    y_true, y_pred = _noisy_labels(2000, 0.1, seed=4)
    assert bootstrap_ci(y_true, y_pred, n_boot=200, seed=7) == bootstrap_ci(
        y_true, y_pred, n_boot=200, seed=7
    )
    assert bootstrap_ci(y_true, y_pred, n_boot=200, seed=7) != bootstrap_ci(
        y_true, y_pred, n_boot=200, seed=8
    )


def test_group_bootstrap_resamples_records():
    # 20 records of 200 N beats; every error sits in record 0. Beats look independent to a
    # beat bootstrap, but the record bootstrap sees that accuracy hinges on one patient.
    n_rec, per_rec = 20, 200
    groups = np.repeat([f"r{i:02d}" for i in range(n_rec)], per_rec)
    y_true = np.zeros(n_rec * per_rec, dtype=int)
    y_pred = y_true.copy()
    y_pred[:100] = 2
    by_beat = bootstrap_ci(y_true, y_pred, n_boot=1000)
    by_record = bootstrap_ci(y_true, y_pred, groups=groups, n_boot=1000)
    assert by_record["unit"] == "record"
    assert _width(by_record["accuracy"]) > 3 * _width(by_beat["accuracy"])
    # Resamples without record 0 reach 100 % accuracy; with it several times, far less.
    assert by_record["accuracy"][1] == pytest.approx(1.0)
    assert by_record["accuracy"][0] < 0.95


def test_bootstrap_undefined_statistics_are_skipped():
    # F never occurs nor is predicted: its Se/+P/F1 are undefined in every resample.
    # S is never predicted: its +P is undefined, its Se is 0.
    y_true = np.array([0] * 50 + [1] * 5 + [2] * 10)
    y_pred = np.array([0] * 50 + [0] * 5 + [2] * 10)
    ci = bootstrap_ci(y_true, y_pred, n_boot=200)
    assert ci["classes"]["F"] == {
        "sensitivity": [None, None],
        "ppv": [None, None],
        "f1": [None, None],
    }
    assert ci["classes"]["S"]["ppv"] == [None, None]
    assert ci["classes"]["S"]["sensitivity"] == [0.0, 0.0]
    assert ci["accuracy"][0] < 60 / 65 < ci["accuracy"][1]


def test_bootstrap_rejects_bad_groups():
    with pytest.raises(EcgError, match="groups"):
        bootstrap_ci(Y_TRUE, Y_PRED, groups=["a", "b"])


def test_bootstrap_is_fast():
    y_true, y_pred = _noisy_labels(50_000, 0.05, seed=5)
    groups = np.repeat(np.arange(48), 50_000 // 48 + 1)[:50_000]
    start = time.perf_counter()
    bootstrap_ci(y_true, y_pred, n_boot=1000)
    bootstrap_ci(y_true, y_pred, groups=groups, n_boot=1000)
    assert time.perf_counter() - start < 5.0


# --------------------------------------------------------------------------- figures


def _assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size < 150_000
    assert not list(path.parent.glob("*.tmp"))


def test_plot_confusion_matrices(tmp_path):
    cm = classification_metrics(Y_TRUE, Y_PRED)["confusion"]
    out = plot_confusion_matrices(cm, tmp_path / "sub" / "cm.png", title="test")
    assert out == tmp_path / "sub" / "cm.png"
    _assert_png(out)


def test_plot_learning_curves_with_missing_keys(tmp_path):
    history = [
        {"epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "val_macro_f1": 0.5},
        {"epoch": 2, "train_loss": 0.6, "val_macro_f1": 0.7, "val_accuracy": 0.9},
        {"epoch": 3, "train_loss": 0.4, "val_loss": 0.8, "val_macro_f1": 0.65},
    ]
    _assert_png(plot_learning_curves(history, tmp_path / "lc.png", title="run"))
    _assert_png(plot_learning_curves([{"train_loss": 1.0}], tmp_path / "lc1.png"))
    with pytest.raises(EcgError, match="empty"):
        plot_learning_curves([], tmp_path / "lc2.png")


def test_plot_class_examples(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((40, 187))
    y = np.repeat([0, 1, 2, 4], 10)  # no F beats: that panel says so
    _assert_png(plot_class_examples(x, y, tmp_path / "ex.png", n_per_class=3))
    with pytest.raises(EcgError, match="differ in length"):
        plot_class_examples(x, y[:-1], tmp_path / "ex2.png")


def test_plot_per_class_bars(tmp_path):
    results = {
        "cnn": classification_metrics(Y_TRUE, Y_PRED),
        "baseline": classification_metrics(Y_TRUE, [0] * 10),
    }
    _assert_png(plot_per_class_bars(results, tmp_path / "bars.png", metric="sensitivity"))
    with pytest.raises(EcgError, match="metric"):
        plot_per_class_bars(results, tmp_path / "bars2.png", metric="auc")


def test_failed_plot_keeps_old_file_and_leaves_no_tmp(tmp_path):
    target = tmp_path / "cm.png"
    target.write_bytes(b"old")
    with pytest.raises(EcgError):
        plot_confusion_matrices([[1, 2, 3]], target)
    assert target.read_bytes() == b"old"
    assert not list(tmp_path.glob("*.tmp"))


def test_import_does_not_load_matplotlib():
    code = "import sys, ecg_utils.evaluation; print('matplotlib' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


# --------------------------------------------------------------------------- tables


def test_fmt_pct():
    assert fmt_pct(0.9871) == "98.7"
    assert fmt_pct(1.0) == "100.0"
    assert fmt_pct(None) == "n/a"
    assert fmt_pct(float("nan")) == "n/a"


def test_metrics_table_markdown():
    rows = {
        "cnn": classification_metrics(Y_TRUE, Y_PRED),
        "a|b": classification_metrics(Y_TRUE, Y_TRUE),
    }
    ci = {"cnn": bootstrap_ci(Y_TRUE, Y_PRED, n_boot=200)}
    table = metrics_table_markdown(rows, ci)
    lines = table.strip().split("\n")
    assert len(lines) == 4
    assert lines[0].startswith("| Model | Acc (%) | Macro-F1 | N Se (%) | N +P (%)")
    assert all(line.count("|") - line.count("\\|") == 14 for line in lines)
    lo, hi = (fmt_pct(b) for b in ci["cnn"]["accuracy"])
    assert f"| 80.0 [{lo}–{hi}] |" in lines[2]
    assert "0.660 [" in lines[2]
    assert "| 50.0 [" in lines[2]  # S sensitivity
    assert lines[3].startswith("| a\\|b | 100.0 | 0.800 | 100.0 | 100.0")
