"""Networks and stacked fusions for new patients, judged as the relative candidates are.

After the relative recipe is chosen (:mod:`ecg_utils.relative_study`), the catalogue's
networks (:data:`~ecg_utils.experiments.RELATIVE_NETWORKS`) and fusions
(:data:`~ecg_utils.experiments.FUSIONS`) are judged by the same rule, on the same DS1
record folds and svdb-dev, **before any of their DS2 figures is computed**:

- a network is trained on each fold's other DS1 records (out-of-fold probabilities) and
  on all of DS1 (svdb-dev);
- a fusion joins the chosen recipe with other members: stacked (a class-weighted
  logistic regression on the members' log-probabilities) or averaged (the mean of their
  probabilities). Its DS1 score comes from record folds
  over the members' out-of-fold probabilities (the stacker of a fold fitted on the other
  folds' rows; the members of those rows were trained on folds that include the held-out
  one, a small optimism of a stacker with 10-15 inputs); on svdb-dev the stacker is
  fitted on all DS1 out-of-fold rows and reads the members trained on all of DS1.

A network or fusion that beats the chosen recipe's score by
:data:`~ecg_utils.relative_adaptation.KEEP_GAIN` would replace it as the recipe to ship
(``replaces_chosen``); shipping a stack is not built (see the report). Also here: S and
V sensitivity against +P of the shipped benchmark as each class's offset sweeps, on
svdb-dev and on DS2. Results go under ``"fusion"`` in ``results/relative.json``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .beats import CLASS_NAMES
from .relative_study import (
    BENCHMARK_TARGET,
    feature_set,
    fit_candidate,
    oof_path,
    predict_candidate,
    summary,
)
from .splits import DS1, DS2

STACK_PARAMS = {"C": 1.0}
"""The stacker's logistic regression (inverse penalty on standardised log-probabilities)."""


def _log(proba: np.ndarray) -> np.ndarray:
    return np.log(np.clip(proba, 1e-6, None))


def _member_probabilities(spec, mit, svdb, folds, ds1, ds2) -> dict:
    """Out-of-fold (DS1 rows), svdb-dev and DS2 probabilities of one recipe."""
    t0 = time.perf_counter()
    oof = np.zeros((len(mit["y"]), len(CLASS_NAMES)))
    for fold in folds:
        held = np.isin(mit["record"], fold)
        model, _, _ = fit_candidate(spec, mit["x"][ds1 & ~held], mit["y"][ds1 & ~held])
        oof[held] = predict_candidate(model, mit["x"][held])
    model, _, _ = fit_candidate(spec, mit["x"][ds1], mit["y"][ds1])
    return {
        "oof": oof,
        "svdb": predict_candidate(model, svdb["x"]),
        "ds2": predict_candidate(model, mit["x"][ds2]),
        "seconds": time.perf_counter() - t0,
    }


def _stack(members: list[dict], y, records, ds1, folds) -> dict:
    """A stacker's out-of-fold, svdb-dev and DS2 probabilities over ``members``."""
    from .trees import fit_linear

    t0 = time.perf_counter()
    inputs = {part: np.hstack([_log(m[part]) for m in members]) for part in ("oof", "svdb", "ds2")}
    oof = np.zeros((len(y), len(CLASS_NAMES)))
    for fold in folds:
        held = np.isin(records, fold) & ds1
        stacker, _ = fit_linear(inputs["oof"][ds1 & ~held], y[ds1 & ~held], STACK_PARAMS)
        oof[held] = predict_candidate(stacker, inputs["oof"][held])
    stacker, _ = fit_linear(inputs["oof"][ds1], y[ds1], STACK_PARAMS)
    return {
        "oof": oof,
        "svdb": predict_candidate(stacker, inputs["svdb"]),
        "ds2": predict_candidate(stacker, inputs["ds2"]),
        "seconds": time.perf_counter() - t0 + sum(m["seconds"] for m in members),
    }


def _mean(members: list[dict]) -> dict:
    """The members' probabilities averaged (nothing fitted)."""
    out = {part: np.mean([m[part] for m in members], axis=0) for part in ("oof", "svdb", "ds2")}
    return out | {"seconds": sum(m["seconds"] for m in members)}


def fusion_catalogue() -> list:
    """What the check judges (a change of the catalogue reruns it)."""
    from .experiments import FUSIONS, RELATIVE_NETWORKS

    return [RELATIVE_NETWORKS, FUSIONS, STACK_PARAMS]


def fusion_check(
    result: dict, mitdb_dir: Path, svdb_dir: Path, cache_dir: Path | None, root: Path, n_boot: int
) -> dict:
    """Judge the networks and fusions by the relative choice rule, then read DS2.

    Needs the chosen recipe's DS1 out-of-fold probabilities (``runs/relative_oof.npz``,
    written when it was shipped) and the shipped benchmark.
    """
    from .checkpoint import load_model
    from .experiments import FUSIONS, RELATIVE_CANDIDATES, RELATIVE_NETWORKS
    from .operating import sensitivity_curve

    records = (Path(mitdb_dir) / "RECORDS").read_text().split()
    mit = feature_set(mitdb_dir, records, cache_dir)
    svdb = feature_set(svdb_dir, (Path(svdb_dir) / "RECORDS").read_text().split(), cache_dir)
    ds1 = np.isin(mit["record"], DS1)
    ds2 = np.isin(mit["record"], DS2)
    folds = result["folds"]
    chosen = result["chosen"]
    with np.load(oof_path(Path(root) / "runs"), allow_pickle=False) as z:
        chosen_oof = z["ds1_oof"]
    bench = load_model(Path(root) / BENCHMARK_TARGET).model
    members = {
        chosen: {
            "oof": chosen_oof,
            "svdb": predict_candidate(bench, svdb["x"]),
            "ds2": predict_candidate(bench, mit["x"][ds2]),
            "seconds": 0.0,
        }
    }
    needed = {m for f in FUSIONS.values() for m in f["members"]}
    specs = {n: RELATIVE_CANDIDATES[n] for n in sorted(needed) if n in RELATIVE_CANDIDATES}
    specs |= RELATIVE_NETWORKS
    for name, spec in specs.items():
        members[name] = _member_probabilities(spec, mit, svdb, folds, ds1, ds2)
    judged = {name: members[name] for name in RELATIVE_NETWORKS}
    for name, fusion in FUSIONS.items():
        parts = [members[chosen], *(members[m] for m in fusion["members"])]
        if fusion.get("combine", "stack") == "mean":
            judged[name] = _mean(parts)
        else:
            judged[name] = _stack(parts, mit["y"], mit["record"], ds1, folds)
    titles = {n: s["title"] for n, s in {**RELATIVE_NETWORKS, **FUSIONS}.items()}
    rows = {}
    for name, p in judged.items():
        cv = summary(mit["y"][ds1], p["oof"][ds1], mit["record"][ds1], n_boot)
        val = summary(svdb["y"], p["svdb"], svdb["record"], n_boot)
        rows[name] = {
            "title": titles[name],
            "post_hoc": bool(FUSIONS.get(name, {}).get("post_hoc")),
            "ds1_folds": cv,
            "svdb_dev": val,
            "score": (cv["score"] + val["score"]) / 2,
            "seconds": p["seconds"],
        }
    from .relative_adaptation import KEEP_GAIN

    reference = result["candidates"][chosen]["score"]
    best = max(rows, key=lambda n: rows[n]["score"])
    replaces = rows[best]["score"] >= reference + KEEP_GAIN
    # judged; DS2 is read from here on
    for name, p in judged.items():
        rows[name]["ds2"] = summary(mit["y"][ds2], p["ds2"], mit["record"][ds2], n_boot)
    curves = {
        "svdb-dev": {c: sensitivity_curve(members[chosen]["svdb"], svdb["y"], c) for c in "SV"},
        "DS2": {c: sensitivity_curve(members[chosen]["ds2"], mit["y"][ds2], c) for c in "SV"},
    }
    return {
        "rows": rows,
        "reference": {"name": chosen, "score": reference},
        "best": best,
        "replaces_chosen": bool(replaces),
        "keep_gain": KEEP_GAIN,
        "stack_params": STACK_PARAMS,
        "curves": curves,
        "catalogue": fusion_catalogue(),
    }


def plot_benchmark_curves(fusion: dict, path, title: str = "") -> Path:
    """``figures/relative_operating.png``: the shipped benchmark's S and V sensitivity
    against +P on svdb-dev (validation) and DS2 (read after every choice)."""
    from .operating import plot_operating_curves
    from .relative_study import HIGH_PPV

    labels = {"svdb-dev": "svdb-dev (validation)", "DS2": "DS2 (test, read after the choice)"}
    curves = {labels[k]: v for k, v in fusion["curves"].items()}
    return plot_operating_curves(curves, path, title, floors={"S": HIGH_PPV, "V": HIGH_PPV})
