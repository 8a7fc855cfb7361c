"""Study steps for new patients that come after training: the adaptation ablation.

The benchmark model (trained on DS1) and the product model (trained on all 48 records)
are both cross-validated over folds of whole records; their fold models never saw the
records of their fold. Each unsupervised adaptation (:mod:`ecg_utils.unsupervised`) is
judged on those held-out records, pooled, exactly as the models were chosen; the
benchmark's final model is then measured on DS2 once. Results go to
``results/adaptation.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .beats import CLASS_NAMES, Beats
from .checkpoint import LoadedModel, load_fold_models, load_model
from .evaluation import classification_metrics
from .models import add_logit_offsets
from .unsupervised import adapted_beats_proba

ADAPTATION_VARIANTS: dict[str, tuple[str, ...]] = {
    "none": (),
    "batchnorm": ("batchnorm",),
    "self_training": ("self_training",),
    "clusters": ("clusters",),
    "self_training+clusters": ("self_training", "clusters"),
}
"""The adaptations compared, by name (see :mod:`ecg_utils.unsupervised`)."""
KEEP_GAIN = 0.005
"""Out-of-fold gain in mean F1 of N, S and V an adaptation needs to be kept."""


def nsv_score(metrics: dict) -> float:
    """Mean F1 of N, S and V: the score candidates and adaptations are chosen on."""
    return float(np.mean([metrics["classes"][k]["f1"] for k in "NSV"]))


def _with_offsets(loaded, offsets):
    """A copy of a loaded fold model with ``offsets`` added to its logits."""
    import copy

    model = copy.deepcopy(loaded.model)
    add_logit_offsets(model, offsets)
    return LoadedModel(model.eval(), loaded.meta)


def out_of_fold_adapted(
    result: dict, beats: Beats, methods: tuple[str, ...]
) -> tuple[dict, float, int]:
    """Pooled out-of-fold metrics of a cross-validated experiment's fold models with an
    adaptation; also the seconds it took and the number of records adapted."""
    cv = result["cross_validation"]
    offsets = cv["operating_points"]["balanced"]
    folds = load_fold_models(Path(result["weights"]))
    ys, preds, seconds, records = [], [], 0.0, 0
    for fold_records, fold_model in zip(cv["folds"], folds, strict=True):
        held = beats.subset(np.flatnonzero(np.isin(beats.record, fold_records)))
        t0 = time.perf_counter()
        proba = adapted_beats_proba(_with_offsets(fold_model, offsets), held, methods)
        seconds += time.perf_counter() - t0
        records += len(fold_records)
        ys.append(held.y)
        preds.append(proba.argmax(1))
    return classification_metrics(np.concatenate(ys), np.concatenate(preds)), seconds, records


def test_adapted(weights: Path, test: Beats, methods: tuple[str, ...]) -> dict:
    """Metrics of shipped-style weights (offsets folded in) on test beats, adapted."""
    proba = adapted_beats_proba(load_model(weights), test, methods)
    return classification_metrics(test.y, proba.argmax(1))


def adaptation_ablation(
    results_dir: Path, beats: Beats, benchmark: str, product: str | None, test_idx: np.ndarray
) -> dict:
    """Every :data:`ADAPTATION_VARIANTS` entry on the benchmark's DS1 folds, the product's
    48-record folds and (read after the choice) the benchmark on DS2.

    The kept adaptation is the one with the best out-of-fold score on the benchmark's
    folds if it beats no adaptation by :data:`KEEP_GAIN`, else none.
    """
    bench_result = json.loads((results_dir / f"{benchmark}.json").read_text())
    runs = {"benchmark": bench_result}
    if product:
        runs["product"] = json.loads((results_dir / f"{product}.json").read_text())
    test = beats.subset(test_idx)
    rows = []
    for variant, methods in ADAPTATION_VARIANTS.items():
        row = {"variant": variant, "methods": list(methods)}
        for role, result in runs.items():
            metrics, seconds, n_records = out_of_fold_adapted(result, beats, methods)
            row[role] = {
                "out_of_fold": metrics,
                "score": nsv_score(metrics),
                "seconds_per_record": seconds / max(n_records, 1),
            }
        row["benchmark"]["test"] = test_adapted(Path(bench_result["weights"]), test, methods)
        rows.append(row)
    base = rows[0]["benchmark"]["score"]
    best = max(rows, key=lambda r: r["benchmark"]["score"])
    kept = best["variant"] if best["benchmark"]["score"] >= base + KEEP_GAIN else "none"
    return {
        "benchmark": benchmark,
        "product": product,
        "variants": rows,
        "kept": kept,
        "keep_gain": KEEP_GAIN,
        "classes": list(CLASS_NAMES),
    }
