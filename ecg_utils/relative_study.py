"""The new-patient recipe on patient-relative features: candidates, choice, shipping.

Every candidate of :data:`ecg_utils.experiments.RELATIVE_CANDIDATES` is judged on two
kinds of records it never saw, **before any DS2 figure is computed**:

- the four DS1 record folds of the network benchmark (each fold's model is trained on
  the other DS1 records);
- ``svdb-dev``, 39 records of the MIT-BIH Supraventricular Arrhythmia Database
  (cross-database validation: trained on all of DS1, judged there).

**Choice rule** (written before DS2 was read): the candidate with the highest mean of
the two scores, each the mean F1 of N, S and V (:data:`CHOICE_RULE`). The chosen recipe
is then trained on DS1 (the benchmark, measured once on DS2) and on all 48 records (the
product, whose new-patient estimates are its record-fold cross-validation over the 48
records and svdb-dev). DS2 figures of the other candidates are computed after the
choice, for the ablation table only. Results go to ``results/relative.json``.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from ._io import EcgError
from .beats import CLASS_NAMES
from .evaluation import bootstrap_ci, classification_metrics
from .relative import RELATIVE_LEADS, column_names, read_annotated_recording, relative_features
from .splits import DS1, DS2, SPLIT_SEED, record_folds

RELATIVE_VERSION = 1
"""Bump when :mod:`ecg_utils.relative` changes: cached feature sets are rebuilt."""
CHOICE_RULE = (
    "highest mean of two scores, each the mean F1 of N, S and V: pooled over the 4 DS1 "
    "record folds, and on svdb-dev (trained on all of DS1); fixed before DS2 was read"
)
CV_FOLDS = 4
"""DS1 record folds (the network benchmark's, same seed)."""
PRODUCT_FOLDS = 4
"""Record folds over all 48 records for the product's new-patient estimate."""


def record_features(record_path: Path, drop_last: bool = True) -> dict:
    """Relative features, labels and R peaks of one annotated record.

    ``drop_last`` drops the last beat, as the beat sets of the networks do
    (:func:`~ecg_utils.beats.beats_from_annotations`), so the rows line up with them.
    """
    sig, fs, peaks, labels = read_annotated_recording(record_path)
    x = relative_features(sig, fs, peaks, n_leads=RELATIVE_LEADS)
    if drop_last and len(peaks):
        x, peaks, labels = x[:-1], peaks[:-1], labels[:-1]
    return {"x": x, "y": labels, "peaks": peaks, "fs": fs}


def feature_set(folder: str | Path, records: list[str], cache_dir: str | Path | None) -> dict:
    """Relative features of every beat of ``records`` in ``folder``, cached.

    Returns
    -------
    dict
        ``x`` (n_beats, 103) float32, ``y`` (n_beats,) labels, ``record`` (n_beats,) str,
        ``peaks`` (n_beats,) samples, ``fingerprint`` of the input files.
    """
    from .beats import data_fingerprint

    folder = Path(folder)
    fingerprint = data_fingerprint(folder, records)
    key = hashlib.sha256(
        json.dumps([fingerprint, records, RELATIVE_VERSION, RELATIVE_LEADS]).encode()
    ).hexdigest()[:16]
    cache = Path(cache_dir) / f"relative-{key}.npz" if cache_dir else None
    if cache is not None and cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            return {k: z[k] for k in z.files} | {"fingerprint": fingerprint}
    parts = {r: record_features(folder / r) for r in records}
    out = {
        "x": np.concatenate([p["x"] for p in parts.values()]),
        "y": np.concatenate([p["y"] for p in parts.values()]),
        "record": np.concatenate([np.full(len(p["y"]), r, dtype="<U8") for r, p in parts.items()]),
        "peaks": np.concatenate([p["peaks"] for p in parts.values()]),
    }
    if cache is not None:
        from ._io import atomic_open

        with atomic_open(cache, "wb") as f:
            np.savez(f, **out)
    return out | {"fingerprint": fingerprint}


def fit_candidate(spec: dict, x: np.ndarray, y: np.ndarray):
    """Fit one candidate recipe; returns ``(model, architecture, model_args)``.

    ``spec``: ``kind`` (``"trees"``, ``"trees_ovr"``: one-vs-rest boosters with the
    ``monotonic`` constraints, ``{"S": {column: -1, ...}}``; ``"linear"``; or ``"cnn"``:
    :class:`~ecg_utils.relative_network.RelativeBeatCNN`) and ``params`` (scikit-learn
    keyword arguments, or :data:`~ecg_utils.relative_network.CNN_DEFAULTS` overrides);
    ``own``: also read each lead's own
    scaled beat, not only its difference from the dominant beat. Every candidate is a
    :class:`~ecg_utils.trees.ByLeads` pair: one model reads both leads, one the first.
    """
    from .relative_network import fit_relative_cnn
    from .trees import ByLeads, fit_boosted_trees, fit_boosted_trees_ovr, fit_linear

    names = np.array(column_names(RELATIVE_LEADS))
    first = first_lead_mask()

    def fit(columns: np.ndarray):
        data, params = np.nan_to_num(x[:, columns]), spec.get("params")
        if spec["kind"] == "trees":
            return fit_boosted_trees(data, y, params)
        if spec["kind"] == "trees_ovr":
            cst = {
                CLASS_NAMES.index(c): [rules.get(n, 0) for n in names[columns]]
                for c, rules in spec.get("monotonic", {}).items()
            }
            return fit_boosted_trees_ovr(data, y, params, cst)
        if spec["kind"] == "linear":
            return fit_linear(data, y, params)
        if spec["kind"] == "cnn":
            return fit_relative_cnn(data, y, list(names[columns]), params)
        raise EcgError(f"unknown candidate kind {spec['kind']!r}")

    arch = {"linear": "linear", "cnn": "relative_cnn"}.get(spec["kind"], "trees")
    read = np.array([spec.get("own", False) or "_own_" not in n for n in names])
    full_model, full_args = fit(read)
    first_model, first_args = fit(read & first)
    args = {
        "full": {"architecture": arch, "model_args": full_args},
        "first": {"architecture": arch, "model_args": first_args},
        "n_features": len(names),
        "n_first": int(first.sum()),
        "full_columns": np.flatnonzero(read).tolist(),
        "first_columns": np.flatnonzero(read & first).tolist(),
    }
    model = ByLeads(**args)
    model.full.load_state_dict(full_model.state_dict())
    model.first.load_state_dict(first_model.state_dict())
    return model.eval(), "by_leads", args


def first_lead_mask() -> np.ndarray:
    """The columns of the rhythm and the first lead."""
    return np.array([not n.startswith("l1_") for n in column_names(RELATIVE_LEADS)])


def predict_candidate(model, x: np.ndarray) -> np.ndarray:
    """Probabilities ``(n_beats, 5)`` of a fitted candidate on relative features."""
    import torch

    with torch.no_grad():
        logits = model(None, torch.as_tensor(x, dtype=torch.float32))
    return torch.softmax(logits, 1).numpy()


def summary(y: np.ndarray, proba: np.ndarray, records: np.ndarray, n_boot: int) -> dict:
    """Metrics, NSV score, per-record S and V, and record-bootstrap intervals."""
    pred = proba.argmax(1)
    metrics = classification_metrics(y, pred)
    metrics["score"] = float(np.mean([metrics["classes"][k]["f1"] for k in "NSV"]))
    per_record = {}
    for r in np.unique(records):
        m = records == r
        row = {}
        for k, name in ((1, "S"), (2, "V")):
            n = int((y[m] == k).sum())
            found = int(((pred == k) & (y == k) & m).sum())
            false = int(((pred == k) & (y != k) & m).sum())
            row[name] = {"n": n, "found": found, "false": false}
        per_record[str(r)] = row
    metrics["per_record"] = per_record
    if n_boot:
        metrics["ci"] = bootstrap_ci(y, pred, groups=records, n_boot=n_boot)
    return metrics


def run_relative_study(
    mitdb_dir: Path, svdb_dir: Path, cache_dir: Path | None, n_boot: int = 200
) -> dict:
    """Judge every relative candidate, choose one, ship the benchmark and the product.

    Returns the results dictionary written to ``results/relative.json``.
    """
    from .experiments import RELATIVE_CANDIDATES

    records = (Path(mitdb_dir) / "RECORDS").read_text().split()
    svdb_records = (Path(svdb_dir) / "RECORDS").read_text().split()
    t0 = time.perf_counter()
    mit = feature_set(mitdb_dir, records, cache_dir)
    svdb = feature_set(svdb_dir, svdb_records, cache_dir)
    feature_seconds = time.perf_counter() - t0
    ds1_idx = np.flatnonzero(np.isin(mit["record"], DS1))
    folds = [
        sorted(set(mit["record"][f].tolist()))
        for f in record_folds(mit["y"], mit["record"], ds1_idx, CV_FOLDS, SPLIT_SEED)
    ]
    ds1 = np.isin(mit["record"], DS1)
    rows, models = {}, {}
    for name, spec in RELATIVE_CANDIDATES.items():
        t0 = time.perf_counter()
        oof = np.zeros((len(mit["y"]), len(CLASS_NAMES)))
        for fold in folds:
            held = np.isin(mit["record"], fold)
            train = ds1 & ~held
            model, _, _ = fit_candidate(spec, mit["x"][train], mit["y"][train])
            oof[held] = predict_candidate(model, mit["x"][held])
        model, _, _ = fit_candidate(spec, mit["x"][ds1], mit["y"][ds1])
        models[name] = model
        sv = predict_candidate(model, svdb["x"])
        cv = summary(mit["y"][ds1], oof[ds1], mit["record"][ds1], n_boot)
        val = summary(svdb["y"], sv, svdb["record"], n_boot)
        rows[name] = {
            "spec": spec,
            "ds1_folds": cv,
            "svdb_dev": val,
            "score": (cv["score"] + val["score"]) / 2,
            "seconds": time.perf_counter() - t0,
        }
    chosen = max(rows, key=lambda n: rows[n]["score"])
    # the choice is made; DS2 is read from here on
    ds2 = np.isin(mit["record"], DS2)
    for name, row in rows.items():
        proba = predict_candidate(models[name], mit["x"][ds2])
        row["ds2"] = summary(mit["y"][ds2], proba, mit["record"][ds2], n_boot)
    return {
        "candidates": rows,
        "chosen": chosen,
        "choice_rule": CHOICE_RULE,
        "folds": folds,
        "feature_seconds": feature_seconds,
        "data": {"mitdb": mit["fingerprint"], "svdb_dev": svdb["fingerprint"]},
        "columns": list(column_names(RELATIVE_LEADS)),
    }


BENCHMARK_TARGET = "ecg_utils/weights/relative_ds1.pth"
"""Where the chosen relative recipe trained on DS1 is shipped (``BENCHMARK_WEIGHTS``)."""
PRODUCT_TARGET = "ecg_utils/weights/relative_all.pth"
"""Where the chosen relative recipe trained on all 48 records is shipped (``DEFAULT_WEIGHTS``)."""
HIGH_PPV = 0.30
"""The ``high`` operating point: the most S and V beats found while their +P stays at or
above 30 %, on the out-of-fold predictions of the weights' own record folds."""


def high_offsets(proba: np.ndarray, y: np.ndarray) -> list[float]:
    """Logit offsets for S and V that find the most beats at +P >= :data:`HIGH_PPV`,
    never below 0 (the balanced point), chosen on out-of-fold ``proba`` ``(n, 5)``."""
    from .operating import OFFSET_GRID, offset_logits, se_ppv

    offsets = [0.0] * len(CLASS_NAMES)
    for k in (1, 2):
        best_se = se_ppv(offset_logits(proba, offsets).argmax(1), y, k)[0]
        for value in OFFSET_GRID[OFFSET_GRID > 0]:
            trial = [*offsets[:k], float(value), *offsets[k + 1 :]]
            se, ppv = se_ppv(offset_logits(proba, trial).argmax(1), y, k)
            if ppv >= HIGH_PPV and se > best_se:
                offsets, best_se = trial, se
    return offsets


def ship_relative(
    result: dict,
    mitdb_dir: Path,
    svdb_dir: Path,
    cache_dir: Path | None,
    root: Path,
    n_boot: int = 200,
    runs_dir: Path | None = None,
) -> dict:
    """Train the chosen recipe on DS1 (benchmark) and on all 48 records (product), with
    their record-fold estimates, and write both weights with their metadata.

    Returns what is added to ``results/relative.json`` under ``"shipped"``. With
    ``runs_dir``, the out-of-fold probabilities of both are kept there
    (``relative_oof.npz``: not shipped; for later checks of adaptations).
    """
    from .beats import RELATIVE_SET
    from .checkpoint import save_model
    from .experiments import RELATIVE_CANDIDATES

    name = result["chosen"]
    spec = RELATIVE_CANDIDATES[name]
    records = (Path(mitdb_dir) / "RECORDS").read_text().split()
    mit = feature_set(mitdb_dir, records, cache_dir)
    svdb = feature_set(svdb_dir, (Path(svdb_dir) / "RECORDS").read_text().split(), cache_dir)
    ds1 = np.isin(mit["record"], DS1)
    ds2 = np.isin(mit["record"], DS2)
    cv = result["candidates"][name]
    shipped = {}
    folds = out_of_fold(result, mit)
    oof_all, product_folds = folds["all_oof"], folds["product_folds"]
    # the high points come from the weights' own record folds' out-of-fold probabilities
    bench_high = high_offsets(folds["ds1_oof"][ds1], mit["y"][ds1])
    product_high = high_offsets(oof_all, mit["y"])
    if runs_dir is not None:
        save_out_of_fold(runs_dir, folds, mit)
    for role, mask, target, high, protocol in (
        ("benchmark", ds1, BENCHMARK_TARGET, bench_high, "inter-patient"),
        ("product", np.ones(len(ds1), bool), PRODUCT_TARGET, product_high, "all-records"),
    ):
        t0 = time.perf_counter()
        model, arch, args = fit_candidate(spec, mit["x"][mask], mit["y"][mask])
        seconds = time.perf_counter() - t0
        meta = {
            "architecture": arch,
            "model_args": args,
            "feature_set": RELATIVE_SET,
            "relative_leads": 2,
            "relative_version": RELATIVE_VERSION,
            "recipe": name,
            "title": spec["title"],
            "class_bias": [0.0] * len(CLASS_NAMES),
            "operating_points": {"balanced": [0.0] * len(CLASS_NAMES), "high": high},
            "high_ppv": HIGH_PPV,
            "train_config": {"protocol": protocol, "recipe": name, **spec},
            "train_records": sorted(set(mit["record"][mask].tolist())),
            "data_fingerprint": mit["fingerprint"],
            "train_seconds": round(seconds, 1),
            "n_parameters": int(sum(b.numel() for b in model.state_dict().values())),
        }
        save_model(model, root / target, meta)
        replay = attach_replay(root / target, mit["x"][mask], mit["y"][mask])
        row = {"weights": target, "train_seconds": seconds, "high": high, "replay": replay}
        row["svdb_dev"] = summary(
            svdb["y"], predict_candidate(model, svdb["x"]), svdb["record"], n_boot
        )
        for point, offsets in (("balanced", None), ("high", high)):
            from .operating import offset_logits

            if role == "benchmark":
                p = predict_candidate(model, mit["x"][ds2])
                row[f"ds2_{point}"] = summary(
                    mit["y"][ds2], _softmax(offset_logits(p, offsets)), mit["record"][ds2], n_boot
                )
            else:
                row[f"out_of_fold_{point}"] = summary(
                    mit["y"], _softmax(offset_logits(oof_all, offsets)), mit["record"], n_boot
                )
        if role == "benchmark":
            row["ds1_folds"] = cv["ds1_folds"]
        else:
            row["folds"] = product_folds
            row["cv_seconds"] = folds["product_cv_seconds"]
        shipped[role] = row
    return shipped


def out_of_fold(result: dict, mit: dict) -> dict:
    """Out-of-fold probabilities of the chosen recipe on relative features ``mit``
    (:func:`feature_set` of the 48 records).

    Returns
    -------
    dict
        ``ds1_oof`` (n_beats, 5): DS1 rows, each from the model of the DS1 fold that held
        its record out (other rows zero); ``all_oof`` (n_beats, 5): every row, from the
        product's record folds over all 48 records; ``product_folds`` (lists of record
        names); ``product_cv_seconds``: the time of the product's folds.
    """
    from .experiments import RELATIVE_CANDIDATES

    spec = RELATIVE_CANDIDATES[result["chosen"]]
    ds1 = np.isin(mit["record"], DS1)
    oof = np.zeros((len(mit["y"]), len(CLASS_NAMES)))
    for fold in result["folds"]:
        held = np.isin(mit["record"], fold)
        model, _, _ = fit_candidate(spec, mit["x"][ds1 & ~held], mit["y"][ds1 & ~held])
        oof[held] = predict_candidate(model, mit["x"][held])
    all_idx = np.arange(len(mit["y"]))
    product_folds = [
        sorted(set(mit["record"][f].tolist()))
        for f in record_folds(mit["y"], mit["record"], all_idx, PRODUCT_FOLDS, SPLIT_SEED)
    ]
    t0 = time.perf_counter()
    oof_all = np.zeros_like(oof)
    for fold in product_folds:
        held = np.isin(mit["record"], fold)
        model, _, _ = fit_candidate(spec, mit["x"][~held], mit["y"][~held])
        oof_all[held] = predict_candidate(model, mit["x"][held])
    return {
        "ds1_oof": oof,
        "all_oof": oof_all,
        "product_folds": product_folds,
        "product_cv_seconds": time.perf_counter() - t0,
    }


def oof_path(runs_dir: Path) -> Path:
    """Where the chosen recipe's out-of-fold probabilities are kept (not shipped): what
    the adaptation, fusion and svdb-dev training checks read."""
    return Path(runs_dir) / "relative_oof.npz"


def save_out_of_fold(runs_dir: Path, folds: dict, mit: dict) -> Path:
    """Write :func:`out_of_fold`'s probabilities to :func:`oof_path` (atomically)."""
    from ._io import atomic_open

    path = oof_path(runs_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:
        np.savez(
            f,
            ds1_oof=folds["ds1_oof"],
            all_oof=folds["all_oof"],
            record=mit["record"],
            y=mit["y"],
        )
    return path


def ensure_out_of_fold(
    result: dict, mitdb_dir: Path, cache_dir: Path | None, runs_dir: Path
) -> Path:
    """:func:`oof_path`, computed again when it is missing (a fresh clone has the shipped
    weights and results but no ``runs/``): the same folds and seeds as when shipped."""
    path = oof_path(runs_dir)
    if not path.exists():
        records = (Path(mitdb_dir) / "RECORDS").read_text().split()
        mit = feature_set(mitdb_dir, records, cache_dir)
        save_out_of_fold(runs_dir, out_of_fold(result, mit), mit)
    return path


def attach_replay(weights: Path, features: np.ndarray, y: np.ndarray, seed: int = 0) -> dict:
    """Store a class-balanced replay of the training beats inside shipped relative weights.

    The replay (:func:`ecg_utils.finetune.replay_set`) is what :func:`ecg_utils.adapt`
    mixes with a patient's labelled beats; it becomes two buffers of the model
    (``replay_features``, ``replay_labels``), so the weights stay one plain state dict.
    The model's outputs are unchanged. Returns what the metadata records of it.
    """
    import torch

    from .checkpoint import load_model, read_metadata, save_model
    from .finetune import replay_set
    from .models import build_model

    loaded = load_model(weights)
    rx, ry = replay_set(features, y, seed)
    meta = read_metadata(weights)
    args = {**meta["model_args"], "n_replay": len(ry)}
    model = build_model(meta["architecture"], **args)
    state = {k: v for k, v in loaded.model.state_dict().items() if not k.startswith("replay_")}
    state["replay_features"] = torch.as_tensor(rx)
    state["replay_labels"] = torch.as_tensor(ry)
    model.load_state_dict(state)
    counts = np.bincount(ry, minlength=len(CLASS_NAMES)).tolist()
    replay = {"beats": len(ry), "per_class": dict(zip(CLASS_NAMES, counts, strict=True))}
    replay["bytes"] = int(rx.nbytes + ry.nbytes)
    save_model(model.eval(), weights, {**meta, "model_args": args, "replay": replay})
    return replay


def fold_weights(runs_dir: Path, fold: int) -> Path:
    """Where the benchmark recipe's model of DS1 fold ``fold`` is kept (not shipped)."""
    return Path(runs_dir) / f"relative_ds1_fold{fold}.pth"


def save_fold_models(
    result: dict, mitdb_dir: Path, cache_dir: Path | None, runs_dir: Path, force: bool = False
) -> list[Path]:
    """The chosen recipe trained on each DS1 fold's other records, each with the replay of
    its own training beats, saved under ``runs_dir``: the models that adapt a DS1 record
    they never saw in the patient-specific protocol's DS1 folds. Existing files for the
    same result (``key``) are kept."""
    from .beats import RELATIVE_SET
    from .checkpoint import read_metadata, save_model
    from .experiments import RELATIVE_CANDIDATES

    spec = RELATIVE_CANDIDATES[result["chosen"]]
    records = (Path(mitdb_dir) / "RECORDS").read_text().split()
    mit = feature_set(mitdb_dir, records, cache_dir)
    ds1 = np.isin(mit["record"], DS1)
    paths = []
    for i, fold in enumerate(result["folds"]):
        path = fold_weights(runs_dir, i)
        paths.append(path)
        if path.exists() and not force and read_metadata(path).get("key") == result["key"]:
            continue
        train = ds1 & ~np.isin(mit["record"], fold)
        model, arch, args = fit_candidate(spec, mit["x"][train], mit["y"][train])
        meta = {"architecture": arch, "model_args": args, "feature_set": RELATIVE_SET}
        meta |= {"fold": i, "held_out": fold, "recipe": result["chosen"], "key": result["key"]}
        save_model(model, path, meta)
        attach_replay(path, mit["x"][train], mit["y"][train])
    return paths


def matches_recorded(recorded, current) -> bool:
    """Whether a key or catalogue read back from a results file is ``current`` (JSON
    turns tuples into lists: compare after the same round trip)."""
    return recorded == json.loads(json.dumps(current))


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def study_key(mitdb_dir: Path, svdb_dir: Path) -> str:
    """What ``results/relative.json`` depends on: both databases' files, the features'
    version and the catalogue of candidates (a change of any reruns the step)."""
    from .beats import data_fingerprint
    from .experiments import RELATIVE_CANDIDATES

    parts = [
        data_fingerprint(mitdb_dir, (Path(mitdb_dir) / "RECORDS").read_text().split()),
        data_fingerprint(svdb_dir, (Path(svdb_dir) / "RECORDS").read_text().split()),
        RELATIVE_VERSION,
        RELATIVE_CANDIDATES,
        CHOICE_RULE,
    ]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def relative_step(
    mitdb_dir: Path,
    svdb_dir: Path | None,
    out_dir: Path,
    cache_dir: Path | None,
    force: bool = False,
    n_boot: int = 1000,
) -> dict | None:
    """The study's step for the relative recipe: judge, choose, ship; skipped when current.

    Writes ``results/relative.json`` and the two shipped weights under ``out_dir``.
    Returns the results, or None when svdb-dev is not found (the step needs it to
    choose; a note says so on stderr).
    """
    import sys

    from .study import write_json
    from .svdb import find_svdb_dir

    try:
        svdb_dir = find_svdb_dir(svdb_dir)
    except EcgError as exc:
        print(f"note: the relative recipe is not judged: {exc}", file=sys.stderr)
        return None
    out = Path(out_dir) / "results" / "relative.json"
    key = study_key(mitdb_dir, svdb_dir)
    done = json.loads(out.read_text()) if out.exists() and not force else {}
    if done.get("key") != key:
        done = {}
    shipped = [Path(out_dir) / t for t in (BENCHMARK_TARGET, PRODUCT_TARGET)]
    figure = Path(out_dir) / "figures" / "relative_operating.png"
    from .relative_adaptation import ablation_grid
    from .relative_fusion import fusion_catalogue

    finished = all(k in done for k in ("default_path", "fusion", "svdb_training"))
    finished = finished and matches_recorded(
        (done.get("adaptation") or {}).get("grid"), ablation_grid()
    )
    finished = finished and matches_recorded(done["fusion"].get("catalogue"), fusion_catalogue())
    if finished and all(p.exists() for p in shipped) and figure.exists():
        return done
    if not done:  # judge the candidates (a result already judged is only shipped)
        t0 = time.perf_counter()
        done = run_relative_study(mitdb_dir, svdb_dir, cache_dir, n_boot)
        done["seconds"] = time.perf_counter() - t0
        done["key"] = key
        write_json(out, done)
    runs = Path(out_dir) / "runs"
    if "shipped" not in done or not all(p.exists() for p in shipped):
        done["shipped"] = ship_relative(done, mitdb_dir, svdb_dir, cache_dir, out_dir, n_boot, runs)
        for later in ("adaptation", "paced", "default_path", "fusion", "svdb_training"):
            done.pop(later, None)
        write_json(out, done)
    from .relative_adaptation import default_path_check, paced_rule_check, pseudo_label_ablation
    from .relative_fusion import fusion_check, plot_benchmark_curves
    from .relative_svdb import svdb_training_check

    adaptation_current = matches_recorded(
        (done.get("adaptation") or {}).get("grid"), ablation_grid()
    )
    fusion_current = matches_recorded(
        (done.get("fusion") or {}).get("catalogue"), fusion_catalogue()
    )
    if not (adaptation_current and fusion_current and "paced" in done and "svdb_training" in done):
        ensure_out_of_fold(done, mitdb_dir, cache_dir, runs)  # what those checks read
    if not adaptation_current:
        done["adaptation"] = pseudo_label_ablation(
            done, mitdb_dir, svdb_dir, cache_dir, Path(out_dir), n_boot
        )
        done.pop("paced", None)
        write_json(out, done)
    if "paced" not in done:
        done["paced"] = paced_rule_check(
            mitdb_dir, svdb_dir, cache_dir, Path(out_dir), done["adaptation"]["kept"]
        )
        done.pop("default_path", None)
        write_json(out, done)
    if "default_path" not in done:
        done["default_path"] = default_path_check(
            mitdb_dir, svdb_dir, Path(out_dir), cache_dir, n_boot
        )
        write_json(out, done)
    if not fusion_current:
        done["fusion"] = fusion_check(done, mitdb_dir, svdb_dir, cache_dir, Path(out_dir), n_boot)
        write_json(out, done)
    if "svdb_training" not in done:
        done["svdb_training"] = svdb_training_check(
            done, mitdb_dir, svdb_dir, cache_dir, Path(out_dir)
        )
        write_json(out, done)
    title = f"{done['shipped']['benchmark']['weights']}: S and V sensitivity against +P"
    plot_benchmark_curves(done["fusion"], figure, title)
    return done
