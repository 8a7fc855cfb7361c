"""Study steps for new patients that come after training: the adaptation ablation and
the sequence head.

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
from .inference import predict_beats
from .models import add_logit_offsets
from .operating import offset_logits, without_offsets
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


def with_offsets(loaded, offsets):
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
        proba = adapted_beats_proba(with_offsets(fold_model, offsets), held, methods)
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
    results_dir: Path,
    beats: Beats,
    benchmark: str,
    product: str | None,
    test_idx: np.ndarray,
    variants: tuple[str, ...] | None = None,
) -> dict:
    """Every :data:`ADAPTATION_VARIANTS` entry on the benchmark's DS1 folds, the product's
    48-record folds and (read after the choice) the benchmark on DS2.

    The kept adaptation is the one with the best out-of-fold score on the benchmark's
    folds if it beats no adaptation by :data:`KEEP_GAIN`, else none. ``variants`` limits
    the comparison to some names (smoke runs; "none" always comes first).
    """
    bench_result = json.loads((results_dir / f"{benchmark}.json").read_text())
    runs = {"benchmark": bench_result}
    if product:
        runs["product"] = json.loads((results_dir / f"{product}.json").read_text())
    test = beats.subset(test_idx)
    rows = []
    names = ["none", *[v for v in (variants or ADAPTATION_VARIANTS) if v != "none"]]
    for variant in names:
        methods = ADAPTATION_VARIANTS[variant]
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


def sequence_ablation(
    results_dir: Path, beats: Beats, benchmark: str, test_idx: np.ndarray, steps: int | None = None
):
    """A sequence head (:mod:`ecg_utils.sequence`) stacked on the benchmark candidate.

    Judged on the candidate's DS1 record folds (heads trained on the other folds'
    out-of-fold probabilities), with its own balanced offsets chosen on its pooled
    out-of-fold output; then a head trained on all of DS1 reads the final model's DS2
    probabilities (read after the choice). It would be kept if it beat the beat model's
    pooled score by :data:`KEEP_GAIN`.
    """
    from .ensemble import out_of_fold_proba
    from .sequence import (
        SequenceConfig,
        cross_validate_head,
        head_proba,
        sequence_inputs,
        train_head,
    )
    from .training import TrainConfig, choose_class_offsets

    result = json.loads((results_dir / f"{benchmark}.json").read_text())
    cv, weights = result["cross_validation"], Path(result["weights"])
    cfg = TrainConfig.from_dict(result["config"])
    held = [record for fold in cv["folds"] for record in fold]
    side = beats.subset(np.flatnonzero(np.isin(beats.record, held)))
    t0 = time.perf_counter()
    proba = out_of_fold_proba(weights, side, cv["folds"])
    seq_cfg = SequenceConfig() if steps is None else SequenceConfig(steps=steps)
    head_oof = cross_validate_head(proba, side, cv["folds"], seq_cfg)
    offsets, score = choose_class_offsets(head_oof, side.y, cfg)
    oof_pred = offset_logits(head_oof, offsets).argmax(1)
    head = train_head(sequence_inputs(proba, side), side, seq_cfg)
    seconds = time.perf_counter() - t0
    loaded = load_model(weights)
    test = beats.subset(test_idx)
    # the weights hold the balanced offsets; the head reads probabilities without them
    raw = without_offsets(predict_beats(loaded, test), cv["operating_points"]["balanced"])
    test_proba = head_proba(head, sequence_inputs(raw, test), test)
    test_pred = offset_logits(test_proba, offsets).argmax(1)
    base = cv["score"]
    return {
        "benchmark": benchmark,
        "config": seq_cfg.to_dict(),
        "n_parameters": sum(p.numel() for p in head.parameters()),
        "beat_model_score": base,
        "score": score,
        "class_bias": offsets,
        "out_of_fold": classification_metrics(side.y, oof_pred),
        "test": classification_metrics(test.y, test_pred),
        "seconds": seconds,
        "keep_gain": KEEP_GAIN,
        "helps": bool(score >= base + KEEP_GAIN),
    }
