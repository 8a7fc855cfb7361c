"""The patient-specific protocols for the relative recipe: fine-tuning with replay.

Every record is adapted by a model that never saw it and scored after its labelled
first minutes (:func:`~ecg_utils.patient_specific.evaluate_patient_specific`):

- **DS1 record folds**: each DS1 record is adapted by the chosen recipe's model of the
  fold that held it out (:func:`~ecg_utils.relative_study.save_fold_models`); the step
  budget of the fine-tuning (:data:`BUDGETS`) is chosen here, on the pooled mean F1 of N,
  S and V, never on DS2;
- **DS2**, read after that choice: the shipped benchmark (trained on DS1) adapted to each
  DS2 record from its first 5 minutes, and with 5, 10, 20 or 50 labels only, picked in
  those minutes as the families' medoids or by simulated active review.

Results go to ``results/relative_patient.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .splits import DS2

BUDGETS = (40, 80)
"""Trees per class added by the fine-tuning (``n_estimators``), compared on DS1 folds."""
FEW_LABELS = (20,)
"""Labels per record of the few-labels protocol (families' medoids). Each point costs a
fine-tuning per record (about 15 s a record on 2 cores with classification): the curve
k = 5, 10, 20, 50 is left for a longer run."""
ACTIVE_LABELS = ()
"""Labels per record of the simulated active review (rounds of 5, a fine-tuning per
round and record); not measured in the recorded run, for time."""


def _score(metrics: dict) -> float:
    return float(np.mean([metrics["classes"][k]["f1"] for k in "NSV"]))


def _pooled(parts: list[dict], n_boot: int) -> dict:
    """Metrics of several evaluate_patient_specific calls pooled over their records."""
    from .evaluation import bootstrap_ci, classification_metrics

    y = np.concatenate([p["y"] for p in parts])
    out = {}
    for name in ("adapted", "global"):
        pred = np.concatenate([p[f"{name}_pred"] for p in parts])
        groups = np.concatenate(
            [np.repeat(list(p["per_record"]), [r["scored"] for r in p["per_record"].values()])
             for p in parts]
        )  # fmt: skip
        m = classification_metrics(y, pred)
        m["ci"] = bootstrap_ci(y, pred, groups=groups, n_boot=n_boot, seed=0) if n_boot else None
        out[name] = m
    out["per_record"] = {r: v for p in parts for r, v in p["per_record"].items()}
    out["seconds_per_record"] = float(
        np.mean([v["adapt_seconds"] for v in out["per_record"].values()])
    )
    return out


DS1_FEW_LABELS = 20
"""Labels per record of the few-labels protocols on the DS1 folds (the goal's budget)."""


def on_ds1_folds(rel: dict, mitdb_dir: Path, runs: Path, n_boot: int, **options) -> dict:
    """A patient-specific protocol on the DS1 folds, each record adapted by its fold's
    model, pooled over the folds (``options``: of
    :func:`~ecg_utils.patient_specific.evaluate_patient_specific`)."""
    from .patient_specific import evaluate_patient_specific
    from .relative_study import fold_weights

    parts = [
        evaluate_patient_specific(
            fold_weights(runs, i), mitdb_dir, tuple(fold), n_boot=0, keep_predictions=True,
            **options,
        )
        for i, fold in enumerate(rel["folds"])
    ]  # fmt: skip
    return _pooled(parts, n_boot)


def ds1_few_labels(rel: dict, mitdb_dir: Path, runs: Path, budget: int) -> dict:
    """The few-labels protocol with :data:`DS1_FEW_LABELS` labels on the DS1 folds (the
    medoids, and active review when :data:`ACTIVE_LABELS` is measured), each record
    adapted by its fold's model (budget ``budget`` trees a class)."""
    out = {}
    for selection in ("medoids", "active") if ACTIVE_LABELS else ("medoids",):
        pooled = on_ds1_folds(
            rel,
            mitdb_dir,
            runs,
            0,
            labelled_beats=DS1_FEW_LABELS,
            selection=selection,
            fine_tune={"n_estimators": budget},
        )
        pooled.pop("per_record")
        out[f"{selection}_{DS1_FEW_LABELS}"] = pooled
    return out


def relative_patient_step(
    mitdb_dir: Path, out_dir: Path, cache_dir: Path | None, force: bool = False, n_boot: int = 1000
) -> dict | None:
    """Choose the fine-tuning budget on DS1 folds, then measure both protocols on DS2.

    Needs ``results/relative.json`` with its shipped models; skipped when current.
    """
    from .patient_specific import evaluate_patient_specific
    from .relative_study import BENCHMARK_TARGET, save_fold_models
    from .study import write_json

    results = Path(out_dir) / "results"
    rel_file = results / "relative.json"
    if not rel_file.exists():
        return None
    rel = json.loads(rel_file.read_text())
    if "shipped" not in rel:
        return None
    out = results / "relative_patient.json"
    key = {"relative": rel["key"], "budgets": BUDGETS, "few": [FEW_LABELS, ACTIVE_LABELS]}
    runs = Path(out_dir) / "runs"
    if out.exists() and not force and json.loads(out.read_text()).get("key") == key:
        return json.loads(out.read_text())
    save_fold_models(rel, mitdb_dir, cache_dir, runs)
    t0 = time.perf_counter()
    ds1 = {}
    for budget in BUDGETS:
        pooled = on_ds1_folds(rel, mitdb_dir, runs, n_boot, fine_tune={"n_estimators": budget})
        ds1[str(budget)] = {**pooled, "score": _score(pooled["adapted"])}
    chosen = max(BUDGETS, key=lambda b: (ds1[str(b)]["score"], -b))
    ds1_seconds = time.perf_counter() - t0
    ds1_few = ds1_few_labels(rel, mitdb_dir, runs, chosen)
    # the budget is chosen; DS2 is read from here on
    weights = Path(out_dir) / BENCHMARK_TARGET
    params = {"fine_tune": {"n_estimators": chosen}}
    ds2 = evaluate_patient_specific(weights, mitdb_dir, DS2, n_boot=n_boot, **params)
    few = {}
    for selection, ks in (("medoids", FEW_LABELS), ("active", ACTIVE_LABELS)):
        for k in ks:
            part = evaluate_patient_specific(
                weights, mitdb_dir, DS2, n_boot=0, labelled_beats=k, selection=selection, **params
            )
            part.pop("per_record")
            few[f"{selection}_{k}"] = part
    result = {
        "key": key,
        "weights": BENCHMARK_TARGET,
        "budgets": list(BUDGETS),
        "chosen_budget": chosen,
        "ds1_folds": ds1,
        "ds1_seconds": ds1_seconds,
        "ds1_few_labels": ds1_few,
        "ds2": ds2,
        "few_labels": few,
        "choice_rule": "pooled mean F1 of N, S and V of the adapted DS1 records (each "
        "adapted by its fold's model, scored after its first 5 minutes); ties: the smaller",
    }
    write_json(out, result)
    from .checkpoint import read_metadata, write_metadata
    from .relative_study import PRODUCT_TARGET

    for target in (BENCHMARK_TARGET, PRODUCT_TARGET):  # adapt's default budget
        path = Path(out_dir) / target
        write_metadata(path, {**read_metadata(path), "fine_tune": {"n_estimators": chosen}})
    return result
