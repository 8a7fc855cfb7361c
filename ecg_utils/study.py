"""The whole study: data, beats, training on both protocols, evaluation, results files.

Every number in the report comes from the JSON files this module writes under
``results/``; :mod:`ecg_utils.report` turns them into ``report.md``.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ._io import EcgError, environment_info, sha256_file, write_text_atomic
from .beats import CLASS_NAMES, Beats, build_beats, file_checksums
from .checkpoint import (
    LoadedModel,
    fold_models_path,
    load_model,
    read_metadata,
    save_fold_models,
    write_metadata,
)
from .evaluation import (
    bootstrap_ci,
    classification_metrics,
    plot_confusion_matrices,
    plot_learning_curves,
)
from .experiments import (
    BENCHMARK_ENSEMBLE,
    ENSEMBLE_SEEDS,
    KAGGLE_BEST_TARGET,
    PRODUCT,
    PRODUCT_ENSEMBLE,
    PRODUCT_TARGET,
    UNSEEN_PATIENT_TARGET,
    Experiment,
    default_experiments,
    member,
    product_experiment,
)
from .inference import predict_beats
from .operating import OPERATING_VERSION, offset_logits
from .splits import DS1, DS2, PACED, SPLIT_SEED, Split, make_split
from .training import (
    TrainConfig,
    TrainResult,
    save_trained,
    teacher_path,
    train,
    train_cross_validated,
)

KAGGLE_REFERENCE_COUNTS = {"N": 90589, "S": 2779, "V": 7236, "F": 803, "Q": 8039}
"""Beats per class in Kaggle's heartbeat set (train + test), for comparison."""


@dataclass
class StudyOptions:
    """Paths and sizes of a study run."""

    mitdb_dir: Path
    out_dir: Path = Path(".")
    cache_dir: Path | None = None
    quick: bool = False
    seed_weights: Path | None = None
    progress: bool = True
    force: bool = False
    records: list[str] | None = None
    experiments: list[str] | None = None
    extra: dict = field(default_factory=dict)
    device: str = "auto"
    reuse_results: bool = False
    svdb_dir: Path | None = None

    @property
    def results_dir(self) -> Path:
        return self.out_dir / "results"

    @property
    def figures_dir(self) -> Path:
        return self.out_dir / "figures"

    @property
    def runs_dir(self) -> Path:
        return self.out_dir / "runs"


def quick_config(cfg: TrainConfig) -> TrainConfig:
    """A tiny version of a configuration for smoke runs (CI, notebook checks)."""
    return cfg.replace(epochs=1, batch_size=max(cfg.batch_size, 256), patience=0)


def write_json(path: Path, obj) -> None:
    write_text_atomic(
        path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"
    )


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def training_metadata(beats: Beats) -> dict:
    """What weights metadata records about the data a model was trained on."""
    return {
        "data_fingerprint": beats.meta.get("fingerprint"),
        "segmentation_version": beats.meta.get("segmentation_version"),
        "split_seed": SPLIT_SEED,
    }


def evaluate_weights(
    weights: Path | LoadedModel,
    beats: Beats,
    split: Split,
    n_boot: int = 1000,
    device: str = "auto",
) -> dict:
    """Test-set metrics of a weights file (or a loaded model) on a protocol.

    Intervals resample records for the inter-patient protocol and beats otherwise;
    ``n_boot=0`` skips them (``ci`` is None). A model whose metadata names an
    unsupervised ``adaptation`` (:mod:`ecg_utils.unsupervised`) adapts to each test
    record on its own, as :func:`~ecg_utils.predict.classify_record` does. ``device``:
    where the model runs (:mod:`ecg_utils.device`).
    """
    import dataclasses

    from .device import on_device

    loaded = weights if isinstance(weights, LoadedModel) else load_model(weights)
    loaded = dataclasses.replace(loaded, model=on_device(loaded.model, device))
    test = beats.subset(split.test)
    if loaded.meta.get("adaptation"):
        from .unsupervised import adapted_beats_proba

        pred = adapted_beats_proba(loaded, test, loaded.meta["adaptation"]).argmax(1)
    else:
        pred = predict_beats(loaded, test).argmax(1)
    metrics = classification_metrics(test.y, pred)
    groups = test.record if split.protocol == "inter-patient" else None
    metrics["ci"] = (
        bootstrap_ci(test.y, pred, groups=groups, n_boot=n_boot, seed=0) if n_boot > 0 else None
    )
    metrics["protocol"] = split.protocol
    metrics["per_record"] = per_record_errors(test, pred)
    return metrics


def per_record_errors(test: Beats, pred: np.ndarray) -> dict:
    """Beats, errors and the most frequent confusion of each test record."""
    out = {}
    for rec in sorted(set(test.record.tolist())):
        m = test.record == rec
        y, p = test.y[m], pred[m]
        wrong = y != p
        top = None
        if wrong.any():
            pairs, counts = np.unique(y[wrong] * 5 + p[wrong], return_counts=True)
            k = pairs[np.argmax(counts)]
            top = f"{CLASS_NAMES[k // 5]}→{CLASS_NAMES[k % 5]} ({counts.max()})"
        out[rec] = {"beats": int(m.sum()), "errors": int(wrong.sum()), "top_confusion": top}
    return out


def fidelity_check(beats: Beats, seed_weights: Path, splits: dict[str, Split]) -> dict:
    """How well the seed's weights (trained on Kaggle's CSV) classify our rebuilt beats."""
    loaded = load_model(seed_weights)
    pred = predict_beats(loaded, beats).argmax(1)
    out = {"weights": str(seed_weights), "all_beats": classification_metrics(beats.y, pred)}
    for name, split in splits.items():
        t = split.test
        out[f"{name}_test"] = classification_metrics(beats.y[t], pred[t])
    return out


def dataset_summary(beats: Beats, splits: dict[str, Split]) -> dict:
    return {
        "n_beats": len(beats),
        "counts": beats.counts(),
        "kaggle_reference_counts": KAGGLE_REFERENCE_COUNTS,
        "records": beats.meta.get("records"),
        "lead_notes": beats.meta.get("lead_notes"),
        "fingerprint": beats.meta.get("fingerprint"),
        "segmentation_version": beats.meta.get("segmentation_version"),
        "splits": {
            name: {
                side: {
                    "n_beats": int(len(getattr(s, side))),
                    "counts": beats.subset(getattr(s, side)).counts(),
                    "records": s.records(beats)[side] if name == "inter-patient" else None,
                }
                for side in ("train", "val", "test")
            }
            for name, s in splits.items()
        },
        "ds1": list(DS1),
        "ds2": list(DS2),
        "paced_excluded": list(PACED),
        "record_counts": {
            rec: beats.subset(beats.record == rec).counts()
            for rec in sorted(set(beats.record.tolist()))
        },
    }


def beats_data(beats: Beats, quick: bool) -> dict:
    """The beats a result was trained on, as results record them (``data``): fingerprint,
    segmentation version and whether the run was a smoke run."""
    return {
        "fingerprint": beats.meta.get("fingerprint"),
        "segmentation_version": beats.meta.get("segmentation_version"),
        "quick": quick,
    }


def experiment_data(data: dict, cfg: TrainConfig, out_dir: Path | None = None) -> dict:
    """What a result's training depended on besides its configuration: the beats
    (``data``: fingerprint, segmentation version, quick) and, for a distilled model,
    the SHA-256 of its teacher's weights (under ``out_dir``, where a study ships them;
    None while they do not exist)."""
    if not cfg.teacher:
        return data
    teacher = teacher_path(cfg.teacher, out_dir)
    return {**data, "teacher": sha256_file(teacher) if teacher.exists() else None}


def run_experiment(
    exp: Experiment, beats: Beats, split: Split, opts: StudyOptions, n_boot: int
) -> dict:
    """Train (unless valid weights exist), evaluate on the test side, draw figures."""
    cfg = quick_config(exp.config) if opts.quick else exp.config
    weights = opts.runs_dir / f"{exp.name}.pth"
    result_file = opts.results_dir / f"{exp.name}.json"
    data = experiment_data(beats_data(beats, opts.quick), cfg, opts.out_dir)
    if not opts.force and _is_done(result_file, weights, cfg, data, opts.reuse_results):
        return refresh_operating_points(result_file, beats, split, n_boot)
    # a teacher is read from this study's output folder, the catalogue's path recorded
    teacher = str(teacher_path(cfg.teacher, opts.out_dir)) if cfg.teacher else None
    trained = train_on_split(
        replace(cfg, teacher=teacher),
        beats,
        split,
        checkpoint=opts.runs_dir / f"{exp.name}.ckpt",
        progress=opts.progress,
        quick=opts.quick,
        n_boot=n_boot,
        device=opts.device,
    )
    trained.config = cfg
    save_trained(trained, weights, training_metadata(beats))
    if trained.cv:
        save_fold_models(trained.cv.pop("fold_states"), fold_models_path(weights))
    has_test = len(split.test) > 0  # the all-records protocol has none
    metrics = (
        evaluate_weights(weights, beats, split, n_boot=n_boot, device=opts.device)
        if has_test
        else None
    )
    uncalibrated = test_high = test_curves = None
    if trained.class_bias is not None and has_test:
        uncalibrated = _evaluate_without_bias(weights, trained.class_bias, beats, split)
    if trained.cv and has_test:
        test_high, test_curves = _test_operating_points(weights, beats, split, n_boot)
    confusion = metrics["confusion"] if has_test else trained.cv["out_of_fold"]["confusion"]
    if not (exp.repeat_of or exp.member_of):  # the report shows these as numbers only
        plot_confusion_matrices(
            confusion, opts.figures_dir / f"confusion_{exp.name}.png", exp.title
        )
        plot_learning_curves(
            trained.history, opts.figures_dir / f"curves_{exp.name}.png", exp.title
        )
    if exp.ship_as and has_test:
        explain_test_beats(weights, beats, split, opts.figures_dir / f"explain_{exp.name}.png")
    result = {
        "name": exp.name,
        "title": exp.title,
        "protocol": split.protocol,
        "config": cfg.to_dict(),
        "history": trained.history,
        "best_epoch": trained.best_epoch,
        "train_seconds": trained.seconds,
        "device": trained.device,
        "n_parameters": trained.n_parameters,
        "weights": str(weights),
        "ship_as": exp.ship_as,
        "ablation": exp.ablation,
        "repeat_of": exp.repeat_of,
        "recipe_of": exp.recipe_of,
        "member_of": exp.member_of,
        "data": data,
        "split_records": _split_records(split, beats, cfg),
        "cross_validation": trained.cv,
        "class_bias": trained.class_bias,
        "test": metrics,
        "test_without_class_bias": uncalibrated,
        "test_high_sensitivity": test_high,
        "test_curves": test_curves,
        "operating_version": OPERATING_VERSION if trained.cv else None,
    }
    write_json(result_file, result)
    (opts.runs_dir / f"{exp.name}.ckpt").unlink(missing_ok=True)
    return result


def new_patient_models(opts: StudyOptions, beats: Beats, split_of, n_boot: int) -> dict:
    """The models built on the best single candidate for unseen patients: the ensemble
    of its seeds (k chosen on DS1 folds), the product model on all 48 records, and the
    product's ensemble of as many seeds. Each is trained when asked for (all when no
    experiments are named)."""
    done: dict[str, dict] = {}
    single = choose_shipped(opts.results_dir, ensembles=False).get(UNSEEN_PATIENT_TARGET)
    if not single:
        return done
    base = next(e for e in default_experiments() if e.name == single)
    ip, everything = split_of("inter-patient"), split_of("all-records")
    wanted = set(opts.experiments or [BENCHMARK_ENSEMBLE, PRODUCT, PRODUCT_ENSEMBLE])
    if BENCHMARK_ENSEMBLE in wanted:
        members = [base] + [member(base, seed) for seed in ENSEMBLE_SEEDS[1:]]
        for m in members[1:]:
            done[m.name] = run_experiment(m, beats, ip, opts, n_boot)
        done[BENCHMARK_ENSEMBLE] = run_ensemble(
            BENCHMARK_ENSEMBLE, members, beats, ip, opts, n_boot
        )
    if not wanted & {PRODUCT, PRODUCT_ENSEMBLE}:
        return done
    product = product_experiment(json.loads((opts.results_dir / f"{single}.json").read_text()))
    done[PRODUCT] = run_experiment(product, beats, everything, opts, n_boot)
    ensemble = _result_of(opts.results_dir, BENCHMARK_ENSEMBLE)
    k = ensemble.get("k", 1) if ensemble.get("recipe_of") == single else 1
    if PRODUCT_ENSEMBLE in wanted and k > 1:
        members = [product] + [member(product, seed) for seed in ENSEMBLE_SEEDS[1:k]]
        for m in members[1:]:
            done[m.name] = run_experiment(m, beats, everything, opts, n_boot)
        done[PRODUCT_ENSEMBLE] = run_ensemble(
            PRODUCT_ENSEMBLE,
            members,
            beats,
            everything,
            opts,
            n_boot,
            k=k,
            recipe_of=BENCHMARK_ENSEMBLE,
        )
    return done


def run_ensemble(
    name: str,
    members: list[Experiment],
    beats: Beats,
    split: Split,
    opts: StudyOptions,
    n_boot: int,
    k: int | None = None,
    recipe_of: str | None = None,
) -> dict:
    """Average the first k members (k chosen on their pooled out-of-fold probabilities
    unless given), save the ensemble and evaluate it as :func:`run_experiment` does.

    Skipped when its results are current (same members' weights, same k asked).
    """
    from .ensemble import assemble, choose_members, out_of_fold_proba
    from .operating import high_sensitivity_offsets

    runs = [_result_of(opts.results_dir, m.name) for m in members]
    files = [opts.runs_dir / f"{m.name}.pth" for m in members]
    weights, result_file = opts.runs_dir / f"{name}.pth", opts.results_dir / f"{name}.json"
    old = _result_of(opts.results_dir, name)
    same_recipe = old.get("k_asked") == k and old.get("operating_version") == OPERATING_VERSION
    if not opts.force and same_recipe:
        present = all(f.exists() for f in [weights, *files])
        if present and old.get("member_sha256") == [sha256_file(f) for f in files]:
            return old
        # committed results, every member reused from them too (none trained here)
        if opts.reuse_results and not any(f.exists() for f in [weights, *files]):
            return old
    digests = [sha256_file(f) for f in files]
    cfg = TrainConfig.from_dict(runs[0]["config"])
    side = beats.subset(np.union1d(split.train, split.val))
    folds = runs[0]["cross_validation"]["folds"]
    probas = [out_of_fold_proba(f, side, folds) for f in files]
    k_asked = k
    k, offsets, score, scores = choose_members(probas, side.y, cfg, k)
    mean = np.mean(probas[:k], axis=0)
    points = {"balanced": offsets, "high": high_sensitivity_offsets(mean, side.y, offsets)}
    cv_seconds = sum(r["cross_validation"]["seconds"] for r in runs[:k])
    train_seconds = sum(r["train_seconds"] for r in runs[:k])
    assemble(
        [load_model(f) for f in files[:k]],
        offsets,
        points["high"],
        weights,
        {
            "train_config": runs[0]["config"],
            "members": [m.name for m in members[:k]],
            "train_seconds": round(train_seconds, 1),
            "cross_validation": {"folds": folds, "score": score, "seconds": cv_seconds},
            **training_metadata(beats),
        },
    )
    pred = offset_logits(mean, offsets).argmax(1)
    cv = {
        "folds": folds,
        "epoch": runs[0]["cross_validation"]["epoch"],
        "class_bias": offsets,
        "score": score,
        "scores_by_size": scores,
        "operating_points": points,
        "out_of_fold": classification_metrics(side.y, pred),
        "per_record": per_record_errors(side, pred),
        "seconds": cv_seconds,
        **out_of_fold_summary(side, mean, points, n_boot),
    }
    has_test = len(split.test) > 0
    metrics = test_high = test_curves = None
    if has_test:
        metrics = evaluate_weights(weights, beats, split, n_boot=n_boot)
        test_high, test_curves = _test_operating_points(weights, beats, split, n_boot)
    title = f"{runs[0]['title']}, {k} seeds averaged"
    confusion = metrics["confusion"] if has_test else cv["out_of_fold"]["confusion"]
    plot_confusion_matrices(confusion, opts.figures_dir / f"confusion_{name}.png", title)
    if has_test:
        explain_test_beats(weights, beats, split, opts.figures_dir / f"explain_{name}.png")
    result = {
        "name": name,
        "title": title,
        "protocol": split.protocol,
        "config": runs[0]["config"],
        "history": [],
        "best_epoch": cv["epoch"],
        "train_seconds": train_seconds,
        "n_parameters": sum(r["n_parameters"] for r in runs[:k]),
        "weights": str(weights),
        "ship_as": runs[0]["ship_as"],
        "ablation": None,
        "repeat_of": None,
        "recipe_of": recipe_of or members[0].name,
        "member_of": None,
        "members": [m.name for m in members],
        "k": k,
        "k_asked": k_asked,
        "member_sha256": digests,
        "data": runs[0]["data"],
        "split_records": runs[0]["split_records"],
        "cross_validation": cv,
        "class_bias": offsets,
        "test": metrics,
        "test_without_class_bias": None,
        "test_high_sensitivity": test_high,
        "test_curves": test_curves,
        "operating_version": OPERATING_VERSION,
    }
    write_json(result_file, result)
    return result


def train_on_split(
    cfg: TrainConfig,
    beats: Beats,
    split: Split,
    checkpoint: Path | None = None,
    resume: bool = True,
    progress: bool = True,
    quick: bool = False,
    n_boot: int = 1000,
    device: str = "auto",
) -> TrainResult:
    """Train ``cfg`` on the training side of ``split`` on ``device``.

    The epoch is chosen on the split's validation side, or, when ``cfg.cv_folds`` asks,
    by cross-validation over all training records (the validation ones included), on
    which the model is then trained; the latter runs in one go (no ``checkpoint``) and
    adds the out-of-fold errors of each record to ``result.cv["per_record"]``, and
    what :func:`out_of_fold_summary` measures (``n_boot`` record resamples).
    ``quick`` thins the beats for smoke runs.
    """
    train_idx, val_idx = split.train, split.val
    if cfg.cv_folds:
        everything = np.union1d(train_idx, val_idx)
        if quick:
            everything = _thin(everything, 6000)
        side = beats.subset(everything)
        # smoke runs are too small to repay starting worker processes
        workers = 1 if quick else None
        trained = train_cross_validated(
            cfg, side, progress=progress, workers=workers, device=device
        )
        predictions = trained.cv.pop("predictions")
        trained.cv["per_record"] = per_record_errors(side, predictions)
        proba = trained.cv.pop("proba")
        trained.cv.update(out_of_fold_summary(side, proba, trained.cv["operating_points"], n_boot))
        return trained
    if quick:
        train_idx, val_idx = _thin(train_idx, 4000), _thin(val_idx, 2000)
    return train(
        cfg,
        beats.subset(train_idx),
        beats.subset(val_idx),
        checkpoint=checkpoint,
        resume=resume,
        progress=progress,
        device=device,
    )


def refresh_operating_points(result_file: Path, beats: Beats, split: Split, n_boot: int) -> dict:
    """A finished run's results, with its operating points recomputed when they were
    chosen by an older rule (:data:`~ecg_utils.operating.OPERATING_VERSION`).

    The pooled out-of-fold probabilities come back from the run's fold models, so nothing
    is retrained: the high-sensitivity offsets, the out-of-fold summary, the test figures
    at the high point and the weights' metadata are brought up to date. Runs without
    cross-validation or fold models are returned as they are.
    """
    from .checkpoint import fold_models_path, read_metadata
    from .ensemble import out_of_fold_proba
    from .operating import high_sensitivity_offsets

    result = json.loads(result_file.read_text())
    cv, weights = result.get("cross_validation"), Path(result["weights"])
    current = result.get("operating_version") == OPERATING_VERSION
    if current or not cv or result.get("members") or not fold_models_path(weights).exists():
        return result
    held = [record for fold in cv["folds"] for record in fold]
    side = beats.subset(np.flatnonzero(np.isin(beats.record, held)))
    proba = out_of_fold_proba(weights, side, cv["folds"])
    balanced = (cv.get("operating_points") or {}).get("balanced") or cv["class_bias"]
    balanced = balanced or [0.0] * len(CLASS_NAMES)
    points = {"balanced": balanced, "high": high_sensitivity_offsets(proba, side.y, balanced)}
    cv["operating_points"] = points
    cv.update(out_of_fold_summary(side, proba, points, n_boot))
    write_metadata(weights, {**read_metadata(weights), "operating_points": points})
    if result.get("test") is not None:
        high, curves = _test_operating_points(weights, beats, split, n_boot)
        result["test_high_sensitivity"], result["test_curves"] = high, curves
    result["operating_version"] = OPERATING_VERSION
    write_json(result_file, result)
    return result


def out_of_fold_summary(side: Beats, proba: np.ndarray, points: dict, n_boot: int) -> dict:
    """What pooled out-of-fold probabilities say of a cross-validated recipe.

    Parameters
    ----------
    side : Beats
        The cross-validated beats, in the order of ``proba``.
    proba : ndarray, shape (n_beats, 5)
        Pooled out-of-fold probabilities at the chosen epoch, without offsets.
    points : dict
        Operating point name -> offsets (``cv["operating_points"]``).

    Returns
    -------
    dict
        ``ci``: record-bootstrap intervals at the balanced point (None when ``n_boot``
        is 0); ``high``: metrics at the high-sensitivity point, with ``ci``; ``curves``:
        S and V sensitivity/+P as each class's offset sweeps its grid (the other classes
        at the balanced point).
    """
    from .operating import sensitivity_curve

    def pred(point):
        return offset_logits(proba, points[point]).argmax(1)

    def ci(pred):
        if not n_boot:
            return None
        return bootstrap_ci(side.y, pred, groups=side.record, n_boot=n_boot, seed=0)

    balanced, high = pred("balanced"), pred("high")
    high_metrics = classification_metrics(side.y, high)
    high_metrics["ci"] = ci(high)
    curves = {c: sensitivity_curve(proba, side.y, c, points["balanced"]) for c in ("S", "V")}
    return {"ci": ci(balanced), "high": high_metrics, "curves": curves}


def _test_operating_points(
    weights: Path, beats: Beats, split: Split, n_boot: int
) -> tuple[dict, dict]:
    """Test metrics at the high-sensitivity point and the S and V curves on the test side
    (the same offset sweeps as :func:`out_of_fold_summary`)."""
    from .operating import sensitivity_curve, with_operating_point, without_offsets

    loaded = load_model(weights)
    high = evaluate_weights(with_operating_point(loaded, "high"), beats, split, n_boot=n_boot)
    test = beats.subset(split.test)
    balanced = loaded.meta["operating_points"]["balanced"]
    # the weights hold the balanced offsets: take them off to sweep from the same origin
    raw = without_offsets(predict_beats(loaded, test), balanced)
    curves = {c: sensitivity_curve(raw, test.y, c, balanced) for c in ("S", "V")}
    return high, curves


def _split_records(split: Split, beats: Beats, cfg: TrainConfig) -> dict | None:
    if split.protocol == "kaggle":
        return None
    records = split.records(beats)
    if cfg.cv_folds:  # the validation records were folded back into training
        records = {**records, "train": sorted(records["train"] + records["val"]), "val": []}
    return records


def explain_test_beats(weights: Path, beats: Beats, split: Split, path: Path) -> Path:
    """Grad-CAM figure of typical and misclassified test beats per class."""
    from .explain import plot_explanations

    return plot_explanations(load_model(weights), beats.subset(split.test), None, path)


def _thin(idx: np.ndarray, n: int) -> np.ndarray:
    """At most ``n`` of ``idx``, evenly spaced (smoke runs keep every record and class)."""
    if len(idx) <= n:
        return idx
    return idx[np.linspace(0, len(idx) - 1, n).astype(np.int64)]


def _is_done(
    result_file: Path, weights: Path, cfg: TrainConfig, data: dict, reuse: bool = False
) -> bool:
    """True when a result exists for this configuration and these data, with its run's
    weights, or without them when ``reuse`` (results committed from an earlier run)."""
    if not (result_file.exists() and (reuse or weights.exists())):
        return False
    try:
        old = json.loads(result_file.read_text())
    except (json.JSONDecodeError, OSError):
        return False
    try:  # results written before an option existed hold its default
        config = TrainConfig.from_dict(old.get("config") or {}).to_dict()
    except EcgError:
        return False
    return config == cfg.to_dict() and old.get("data") == data


def _evaluate_without_bias(weights: Path, bias: list[float], beats: Beats, split: Split) -> dict:
    """Test metrics of a calibrated model with its validation-chosen offsets removed."""
    from .models import add_logit_offsets

    loaded = load_model(weights)
    add_logit_offsets(loaded.model, [-b for b in bias])
    test = beats.subset(split.test)
    return classification_metrics(test.y, predict_beats(loaded, test).argmax(1))


def detected_peaks_check(opts: StudyOptions, name: str) -> None:
    """DS2 classification with detected R peaks, beside annotated ones (the model for
    unseen patients, as shipped); skipped when its results are current."""
    from .detected_eval import evaluate_with_detected_peaks

    weights = run_weights(opts, name)
    out = opts.results_dir / "detected_peaks.json"
    if opts.reuse_results and out.exists() and not weights.exists():
        return  # committed results, kept as asked: the run's weights are not here
    digest = _weights_key(weights)
    if not opts.force and _is_current(out, digest):
        return
    records = DS2[:3] if opts.quick else DS2
    result = evaluate_with_detected_peaks(weights, opts.mitdb_dir, records=records)
    result.update({"weights": UNSEEN_PATIENT_TARGET, "experiment": name, "weights_sha256": digest})
    write_json(out, result)


def draw_operating_curves(opts: StudyOptions, name: str) -> None:
    """``figures/operating_<name>.png``: S and V sensitivity against +P as the class
    offsets sweep, out-of-fold and (when there is one) on the test side."""
    from .operating import plot_operating_curves

    result = _result_of(opts.results_dir, name)
    cv = result.get("cross_validation") or {}
    if not cv.get("curves"):
        return
    folds = "all 48 records" if result["protocol"] == "all-records" else "DS1"
    curves = {f"out-of-fold ({folds} record folds)": cv["curves"]}
    if result.get("test_curves"):
        curves["DS2 (test side, read after the choice)"] = result["test_curves"]
    plot_operating_curves(curves, opts.figures_dir / f"operating_{name}.png", result["title"])


def adaptation_check(
    opts: StudyOptions, beats: Beats, benchmark: str, product: str | None, split: Split
) -> None:
    """The unsupervised-adaptation ablation (see
    :func:`~ecg_utils.new_patients.adaptation_ablation`) of the best single benchmark
    candidate and the single product model (an ensemble's members each have their own
    fold models; the ablation uses seed 0's); skipped when its results are current or the
    fold models are missing (results from before they were kept)."""
    from .checkpoint import fold_models_path
    from .new_patients import adaptation_ablation

    names = [n for n in (benchmark, product) if n]
    weights = [opts.runs_dir / f"{n}.pth" for n in names]
    if not all(fold_models_path(w).exists() for w in weights):
        return
    out = opts.results_dir / "adaptation.json"
    digests = {n: sha256_file(w) for n, w in zip(names, weights, strict=True)}
    if not opts.force and _is_current(out, digests):
        return
    variants = ("clusters",) if opts.quick else None  # smoke runs: one adaptation
    result = adaptation_ablation(
        opts.results_dir, beats, benchmark, product, split.test, variants=variants
    )
    write_json(out, {**result, "weights_sha256": digests})


def apply_kept_adaptation(
    opts: StudyOptions, shipped: dict, beats: Beats, split: Split, n_boot: int
) -> dict:
    """Give the shipped new-patient models the adaptation kept on DS1 folds.

    The kept adaptation (``results/adaptation.json``) is written into each model's
    metadata (``adaptation``), so that prediction and evaluation use it; the benchmark's
    test figures are measured again with it (those without it stay, as
    ``test_without_adaptation``) and both models are shipped again (with their
    metadata). Nothing changes when no adaptation was kept.
    """
    from .new_patients import ADAPTATION_VARIANTS
    from .operating import with_operating_point

    kept = _result_of(opts.results_dir, "adaptation").get("kept", "none")
    methods = list(ADAPTATION_VARIANTS.get(kept, ()))
    for target in (UNSEEN_PATIENT_TARGET, PRODUCT_TARGET):
        name = shipped.get(target)
        result = _result_of(opts.results_dir, name) if name else {}
        weights = opts.runs_dir / f"{name}.pth"
        if not result or not weights.exists() or result.get("adaptation", []) == methods:
            continue
        _set_metadata(opts, name, adaptation=methods or None)
        if result.get("test") is not None:
            if "test_without_adaptation" not in result:
                result["test_without_adaptation"] = result["test"]
                result["test_high_without_adaptation"] = result.get("test_high_sensitivity")
            loaded = load_model(weights)
            result["test"] = evaluate_weights(loaded, beats, split, n_boot)
            high = with_operating_point(loaded, "high")
            result["test_high_sensitivity"] = evaluate_weights(high, beats, split, n_boot)
        result["adaptation"] = methods
        write_json(opts.results_dir / f"{name}.json", result)
    return shipped


def sequence_check(opts: StudyOptions, beats: Beats, benchmark: str, split: Split) -> None:
    """The sequence head stacked on the best single benchmark candidate
    (:func:`~ecg_utils.new_patients.sequence_ablation`); skipped when current."""
    from .checkpoint import fold_models_path
    from .new_patients import sequence_ablation

    weights = opts.runs_dir / f"{benchmark}.pth"
    if not fold_models_path(weights).exists():
        return
    out = opts.results_dir / "sequence.json"
    digest = sha256_file(weights)
    if not opts.force and _is_current(out, digest):
        return
    steps = 20 if opts.quick else None  # smoke runs: a few training steps
    result = sequence_ablation(opts.results_dir, beats, benchmark, split.test, steps=steps)
    write_json(out, {**result, "weights_sha256": digest})


FEW_LABELS = (5, 10, 20, 50)
"""Labelled beats per recording in the few-labels protocol (one per family)."""


def patient_specific_check(opts: StudyOptions, benchmark: str, single: str, shipped: dict) -> None:
    """The patient-specific protocol on DS2 with the shipped benchmark model
    (:func:`~ecg_utils.patient_specific.evaluate_patient_specific`); skipped when current.

    The share of the labelled neighbours' vote is chosen first on DS1, each record
    adapted by the fold model of ``single`` (the best single candidate) that never saw it
    (:func:`~ecg_utils.patient_specific.choose_vote_weight`), and written into the shipped
    new-patient models' metadata (``patient_vote_weight``), which ``adapt`` then uses.
    """
    from .checkpoint import load_fold_models
    from .new_patients import with_offsets
    from .patient_specific import choose_vote_weight, evaluate_patient_specific

    weights = run_weights(opts, benchmark)
    out = opts.results_dir / "patient_specific.json"
    if opts.reuse_results and out.exists() and not weights.exists():
        return  # committed results, kept as asked: the run's weights are not here
    digest = _weights_key(weights)
    if not opts.force and _is_current(out, digest):
        return
    cv = _result_of(opts.results_dir, single)["cross_validation"]
    balanced = cv["operating_points"]["balanced"]
    folds = [with_offsets(m, balanced) for m in load_fold_models(opts.runs_dir / f"{single}.pth")]
    # smoke runs: three records, and their first 6 s labelled (synthetic records are short)
    minutes = {"minutes": 0.1} if opts.quick else {}
    # smoke runs: one record of each fold
    fold_records = [f[:1] for f in cv["folds"]] if opts.quick else cv["folds"]
    vote, vote_scores = choose_vote_weight(folds, fold_records, opts.mitdb_dir, **minutes)
    for target in (UNSEEN_PATIENT_TARGET, PRODUCT_TARGET):
        if shipped.get(target):
            _set_metadata(opts, shipped[target], patient_vote_weight=vote)
    quick = {"records": DS2[:3], "n_boot": 200} if opts.quick else {}
    result = evaluate_patient_specific(weights, opts.mitdb_dir, **quick, **minutes)
    result["few_labels"] = {
        str(k): evaluate_patient_specific(
            weights, opts.mitdb_dir, labelled_beats=k, **quick, **minutes
        )
        for k in (FEW_LABELS[:1] if opts.quick else FEW_LABELS)
    }
    for few in result["few_labels"].values():
        few.pop("per_record")  # the 5-minute protocol's per-record table is the one shown
    result.update(
        {
            "experiment": benchmark,
            "weights_sha256": digest,
            "vote_weight": vote,
            "vote_weight_scores": vote_scores,
            "vote_weight_chosen_on": single,
        }
    )
    write_json(out, result)


def _set_metadata(opts: StudyOptions, name: str, **values) -> None:
    """Add ``values`` to a run's weights metadata and ship it again when it is shipped."""
    weights = opts.runs_dir / f"{name}.pth"
    write_metadata(weights, {**read_metadata(weights), **values})
    result = _result_of(opts.results_dir, name)
    if result.get("ship_as") and not opts.quick:
        ship(result, opts.out_dir)


def run_weights(opts: StudyOptions, name: str) -> Path:
    """A run's weights: ``runs/<name>.pth``, else (a checkout without that run: ``runs/``
    is not committed) its shipped copy, which ``results/shipped.json`` names and which
    holds the same bytes and metadata."""
    weights = opts.runs_dir / f"{name}.pth"
    if weights.exists():
        return weights
    for target, shipped in _result_of(opts.results_dir, "shipped").items():
        if shipped == name and (opts.out_dir / target).exists():
            return opts.out_dir / target
    return weights


def _is_current(out: Path, key) -> bool:
    """Whether the results file ``out`` was made from the weights ``key`` names."""
    try:
        return out.exists() and json.loads(out.read_text()).get("weights_sha256") == key
    except (json.JSONDecodeError, OSError):
        return False


def _weights_key(weights: Path) -> str:
    """What a check of shipped behaviour depends on: the weights' bytes and the
    unsupervised adaptation their metadata names."""
    adaptation = read_metadata(weights).get("adaptation")
    digest = sha256_file(weights)
    return f"{digest}:{json.dumps(adaptation)}" if adaptation else digest


def validation_score(result: dict) -> float:
    """Best validation score of a run (the metric its epochs were chosen by); for a
    cross-validated run, its pooled out-of-fold score with the chosen offsets."""
    if result.get("cross_validation"):
        return result["cross_validation"]["score"]
    return max(h.get("val_selection_f1", h["val_macro_f1"]) for h in result["history"])


def choose_shipped(results_dir: Path, ensembles: bool = True) -> dict[str, str]:
    """For each shipping target, the finished experiment with the best validation score.

    The benchmark is the best single candidate, or the ensemble of its seeds when more
    than one member was chosen; the product model ships when it was trained on the
    shipped benchmark's recipe (the ensemble's, or else the single candidate's: a study
    that did not train the product's ensemble ships its single model, and the report
    says so). ``ensembles=False`` gives the best single candidates."""
    best: dict[str, tuple[float, str]] = {}
    for exp in default_experiments():
        path = results_dir / f"{exp.name}.json"
        if not exp.ship_as or not path.exists():
            continue
        score = validation_score(json.loads(path.read_text()))
        if exp.ship_as not in best or score > best[exp.ship_as][0]:
            best[exp.ship_as] = (score, exp.name)
    shipped = {target: name for target, (_, name) in best.items()}
    if not ensembles:
        return shipped
    ensemble = _result_of(results_dir, BENCHMARK_ENSEMBLE)
    single = shipped.get(UNSEEN_PATIENT_TARGET)
    if single and ensemble.get("recipe_of") == single and ensemble.get("k", 1) > 1:
        shipped[UNSEEN_PATIENT_TARGET] = BENCHMARK_ENSEMBLE
    benchmark = shipped.get(UNSEEN_PATIENT_TARGET)
    # the product takes the benchmark's recipe: its ensemble when one was trained, else
    # the single recipe behind it
    for name, recipe in ((PRODUCT_ENSEMBLE, benchmark), (PRODUCT, single)):
        if recipe and _result_of(results_dir, name).get("recipe_of") == recipe:
            shipped[PRODUCT_TARGET] = name
            break
    return shipped


def _result_of(results_dir: Path, name: str) -> dict:
    """An experiment's results, or an empty dict when there are none."""
    path = results_dir / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def ship(result: dict, out_dir: Path) -> None:
    """Copy an experiment's weights and metadata to their shipping place.

    A run whose weights are not in this checkout's ``runs/`` (trained in an earlier
    session; ``runs/`` is not committed) is left shipped as it is, provided the shipped
    copy is that run's (same training configuration); anything else is an error.
    """
    import shutil

    from ._io import atomic_path
    from .checkpoint import read_metadata

    src = Path(result["weights"])
    dst = out_dir / result["ship_as"]
    if not src.exists():
        shipped = read_metadata(dst).get("train_config") if dst.exists() else None
        if shipped == result["config"]:
            return
        raise EcgError(
            f"the weights of {result['name']} are missing and {dst} is another model's: "
            f"retrain it (python -m ecg_utils run --only {result['name']})",
            src,
        )
    for a, b in ((src, dst), (src.with_suffix(".json"), dst.with_suffix(".json"))):
        with atomic_path(b) as tmp:
            shutil.copyfile(a, tmp)


def _wanted(exp: Experiment, opts: StudyOptions) -> bool:
    """Whether a study run trains ``exp``: the named ones, else all (seed repeats are
    left out of smoke runs, which cannot measure a spread)."""
    if opts.experiments:
        return exp.name in opts.experiments
    return not (opts.quick and exp.repeat_of)


def run_study(opts: StudyOptions) -> dict:
    """Run every step and write ``results/*.json``, figures and shipped weights."""
    from .device import measure_speed

    t0 = time.perf_counter()
    speed = measure_speed(opts.device)  # before any training: the machine's own pace
    beats = build_beats(opts.mitdb_dir, opts.cache_dir, records=opts.records, progress=False)
    experiments = [e for e in default_experiments() if _wanted(e, opts)]

    @functools.cache
    def split_of(protocol: str, val_fraction: float = 0.1) -> Split:
        # experiments may hold out different validation shares; each split is made once
        return make_split(beats, protocol, val_fraction=val_fraction)

    named = {p: split_of(p) for p in ("kaggle", "inter-patient")}
    write_json(opts.results_dir / "dataset.json", dataset_summary(beats, named))
    if opts.seed_weights and Path(opts.seed_weights).exists():
        write_json(
            opts.results_dir / "fidelity.json", fidelity_check(beats, opts.seed_weights, named)
        )
    from .evaluation import plot_class_examples

    plot_class_examples(beats.x, beats.y, opts.figures_dir / "beats_per_class.png")
    n_boot = 200 if opts.quick else 1000
    done = {}
    for exp in experiments:
        split = split_of(exp.config.protocol, exp.config.val_fraction)
        done[exp.name] = run_experiment(exp, beats, split, opts, n_boot)
        if exp.ship_as == KAGGLE_BEST_TARGET and not opts.quick:
            ship(done[exp.name], opts.out_dir)  # the teacher of the distilled ECG1DCNN
    done.update(new_patient_models(opts, beats, split_of, n_boot))
    shipped = choose_shipped(opts.results_dir)
    if not opts.quick:
        for name in shipped.values():
            ship(json.loads((opts.results_dir / f"{name}.json").read_text()), opts.out_dir)
    write_json(opts.results_dir / "shipped.json", shipped)
    for target in (UNSEEN_PATIENT_TARGET, PRODUCT_TARGET):
        if shipped.get(target):
            draw_operating_curves(opts, shipped[target])
    ip_model = shipped.get(UNSEEN_PATIENT_TARGET)
    if ip_model:
        single = choose_shipped(opts.results_dir, ensembles=False)[UNSEEN_PATIENT_TARGET]
        product = PRODUCT if _result_of(opts.results_dir, PRODUCT) else None
        adaptation_check(opts, beats, single, product, named["inter-patient"])
        shipped = apply_kept_adaptation(opts, shipped, beats, named["inter-patient"], n_boot)
        detected_peaks_check(opts, ip_model)
        sequence_check(opts, beats, single, named["inter-patient"])
        patient_specific_check(opts, ip_model, single, shipped)
    if not opts.quick and (not opts.experiments or "relative" in opts.experiments):
        # the patient-relative recipe (its own catalogue; the smoke run leaves it out:
        # it needs svdb-dev and about 20 minutes)
        from .relative_patient import relative_patient_step
        from .relative_study import relative_step

        relative_step(opts.mitdb_dir, opts.svdb_dir, opts.out_dir, opts.cache_dir, opts.force)
        relative_patient_step(opts.mitdb_dir, opts.out_dir, opts.cache_dir, opts.force)
    from .device import describe_device, resolve_device

    summary = {
        "experiments": sorted(done),
        "quick": opts.quick,
        "seconds": time.perf_counter() - t0,
        "device": describe_device(resolve_device(opts.device)),
        "speed": speed,
        "environment": environment_info(),
        "data_fingerprint": beats.meta.get("fingerprint"),
        "data_files": file_checksums(opts.mitdb_dir, beats.meta.get("records") or []),
        "segmentation_version": beats.meta.get("segmentation_version"),
        "split_seed": SPLIT_SEED,
        "seeds": {name: r["config"]["seed"] for name, r in done.items()},
    }
    _write_summary(opts.results_dir / "study.json", summary)
    return summary


VOLATILE = ("seconds", "speed", "environment", "device")
"""Fields of ``study.json`` that change with every call, whether or not anything ran."""


def _write_summary(path: Path, summary: dict) -> None:
    """Write ``study.json`` unless it already says the same apart from :data:`VOLATILE`
    (a rerun that reused every result leaves the tracked file, and the report built
    from it, as they were)."""
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            old = None
        same = old is not None and all(
            old.get(k) == json.loads(json.dumps(v, default=_json_default))
            for k, v in summary.items()
            if k not in VOLATILE
        )
        if same and set(old) == set(summary):
            return
    write_json(path, summary)
