"""Should the product also train on svdb-dev? A leave-records-out over both databases.

Issue 18 lets the product train on svdb-dev only if that gains for new patients, shown
by records held out of training on **both** sides (:func:`svdb_training_check`):

- MIT-BIH: the product's own record folds over the 48 records, each fold's model trained
  on the other MIT-BIH records with and without all of svdb-dev;
- svdb-dev: four record folds of its 39 records, each fold's model trained on all 48
  MIT-BIH records with and without the other svdb-dev folds.

The gain is the mean over the two sides of the NSV score (mean F1 of N, S and V) with
svdb-dev in training minus without it; the product would train on svdb-dev when it is at
least :data:`~ecg_utils.relative_adaptation.KEEP_GAIN`. Training on svdb-dev takes it
away as the validation the recipes are chosen on, so a positive check is a decision for
the next study run, not made here. Results go under ``"svdb_training"`` in
``results/relative.json``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .beats import CLASS_NAMES
from .relative_study import feature_set, fit_candidate, oof_path, predict_candidate, summary
from .splits import SPLIT_SEED, record_folds

SVDB_FOLDS = 4
"""Record folds of svdb-dev in the check."""


def svdb_training_check(
    result: dict, mitdb_dir: Path, svdb_dir: Path, cache_dir: Path | None, root: Path
) -> dict:
    """The chosen recipe's out-of-fold scores on MIT-BIH and svdb-dev, trained with and
    without svdb-dev (no DS2 figure: DS2 records are among MIT-BIH's folds, as in the
    product's own estimate)."""
    from .checkpoint import load_model
    from .experiments import RELATIVE_CANDIDATES
    from .relative_adaptation import KEEP_GAIN
    from .relative_study import PRODUCT_TARGET

    spec = RELATIVE_CANDIDATES[result["chosen"]]
    mit = feature_set(mitdb_dir, (Path(mitdb_dir) / "RECORDS").read_text().split(), cache_dir)
    svdb = feature_set(svdb_dir, (Path(svdb_dir) / "RECORDS").read_text().split(), cache_dir)
    t0 = time.perf_counter()
    with np.load(oof_path(Path(root) / "runs"), allow_pickle=False) as z:
        mit_without = z["all_oof"]
    mit_with = np.zeros_like(mit_without)
    for fold in result["shipped"]["product"]["folds"]:
        held = np.isin(mit["record"], fold)
        x = np.concatenate([mit["x"][~held], svdb["x"]])
        y = np.concatenate([mit["y"][~held], svdb["y"]])
        model, _, _ = fit_candidate(spec, x, y)
        mit_with[held] = predict_candidate(model, mit["x"][held])
    sv_without = predict_candidate(load_model(Path(root) / PRODUCT_TARGET).model, svdb["x"])
    sv_with = np.zeros((len(svdb["y"]), len(CLASS_NAMES)))
    all_sv = np.arange(len(svdb["y"]))
    folds = record_folds(svdb["y"], svdb["record"], all_sv, SVDB_FOLDS, SPLIT_SEED)
    for held_idx in folds:
        held = np.zeros(len(svdb["y"]), bool)
        held[held_idx] = True
        x = np.concatenate([mit["x"], svdb["x"][~held]])
        y = np.concatenate([mit["y"], svdb["y"][~held]])
        model, _, _ = fit_candidate(spec, x, y)
        sv_with[held] = predict_candidate(model, svdb["x"][held])
    rows = {
        "without": {
            "mitdb_out_of_fold": summary(mit["y"], mit_without, mit["record"], 0),
            "svdb_dev_out_of_fold": summary(svdb["y"], sv_without, svdb["record"], 0),
        },
        "with": {
            "mitdb_out_of_fold": summary(mit["y"], mit_with, mit["record"], 0),
            "svdb_dev_out_of_fold": summary(svdb["y"], sv_with, svdb["record"], 0),
        },
    }
    for row in rows.values():
        sides = (row["mitdb_out_of_fold"], row["svdb_dev_out_of_fold"])
        row["score"] = float(np.mean([side["score"] for side in sides]))
    gain = rows["with"]["score"] - rows["without"]["score"]
    return {
        "rows": rows,
        "gain": gain,
        "trains_on_svdb": bool(gain >= KEEP_GAIN),
        "keep_gain": KEEP_GAIN,
        "svdb_folds": [sorted(set(svdb["record"][f].tolist())) for f in folds],
        "seconds": time.perf_counter() - t0,
    }
