"""Unsupervised adaptation of the relative recipe to a recording, and what ``predict``
runs by default, measured as it runs.

- ``pseudo_labels`` (:func:`~ecg_utils.unsupervised.pseudo_label_vote`) is judged by the
  relative choice rule on the benchmark recipe's DS1-fold out-of-fold probabilities and
  on svdb-dev (:func:`pseudo_label_ablation`), beside the ``clusters`` smoothing of the
  network models (:func:`~ecg_utils.unsupervised.cluster_consistent`) as the baseline;
- ``paced_only`` (:func:`~ecg_utils.unsupervised.paced_only`): its share is chosen on
  the product's 48-record out-of-fold predictions and svdb-dev (:func:`paced_rule_check`);
- :func:`default_path_check` then scores both shipped models through ``evaluate``'s own
  code with the adaptations their metadata name.

The kept settings are written into the shipped weights' metadata; DS2 is read only
after each choice.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .relative_study import (
    BENCHMARK_TARGET,
    PRODUCT_TARGET,
    feature_set,
    oof_path,
    predict_candidate,
    summary,
)
from .splits import DS1, DS2

PSEUDO_GRID = (
    {"weight": 0.3},
    {"weight": 0.5},
    {"weight": 0.7},
    {"weight": 0.5, "confident": 0.8},
    {"weight": 0.5, "per_class": 100, "neighbours": 5},
)
"""Settings of the ``pseudo_labels`` adaptation compared (over its defaults)."""
KEEP_GAIN = 0.005
"""Gain in the choice rule's score an adaptation needs to be kept."""
BASELINES = ("clusters",)
"""Adaptations measured beside ``pseudo_labels`` as baselines (not eligible to be kept:
the shipped choice is among ``pseudo_labels`` settings)."""


def ablation_grid() -> list:
    """What the ablation compares (a change reruns it)."""
    return [list(BASELINES), list(PSEUDO_GRID), KEEP_GAIN]


def recording_beats(folder: Path, records: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The 120 Hz beats ``(n, 187)`` and RR intervals ``(n, 4)`` in seconds of the rows of
    :func:`~ecg_utils.relative_study.feature_set` (every annotated beat but each record's
    last), first lead: what the ``clusters`` adaptation reads."""
    from .beats import rr_features
    from .predict import recording_inputs
    from .relative import read_annotated_recording

    xs, rrs = [], []
    for name in records:
        sig, fs, peaks, _ = read_annotated_recording(Path(folder) / name)
        _, beats, _ = recording_inputs(sig[:, 0], fs, peaks, 0, None)
        xs.append(beats[:-1])
        rrs.append(rr_features(peaks, fs)[:-1])
    return np.concatenate(xs), np.concatenate(rrs)


def _per_recording(proba: np.ndarray, records: np.ndarray, adapt) -> np.ndarray:
    """``adapt(mask)`` -> adapted probabilities of one recording, for each recording."""
    out = np.array(proba, copy=True)
    for r in np.unique(records):
        m = records == r
        out[m] = adapt(m)
    return out


def _method(options: dict | str | None) -> str:
    """The adaptation a row of the ablation names: none, a baseline, or pseudo_labels."""
    if options is None:
        return "none"
    return options if isinstance(options, str) else "pseudo_labels"


def _adapted(proba: np.ndarray, x, records: np.ndarray, options: dict | str | None):
    """``pseudo_labels`` with ``options`` applied to each recording on its own (None: no
    adaptation; ``"clusters"``: that baseline, ``x`` then the recordings' (beats, RR))."""
    from .unsupervised import cluster_consistent, pseudo_label_vote

    if options is None:
        return proba
    if options == "clusters":
        beats, rr = x
        return _per_recording(
            proba, records, lambda m: cluster_consistent(proba[m], beats[m], rr[m])
        )
    return _per_recording(proba, records, lambda m: pseudo_label_vote(proba[m], x[m], **options))


def pseudo_label_ablation(
    result: dict, mitdb_dir: Path, svdb_dir: Path, cache_dir: Path | None, root: Path, n_boot: int
) -> dict:
    """The ``pseudo_labels`` adaptation (:func:`~ecg_utils.unsupervised.pseudo_label_vote`)
    judged by the choice rule: on the benchmark recipe's DS1-fold out-of-fold
    probabilities and on svdb-dev (the DS1 model's); kept when it gains
    :data:`KEEP_GAIN`, and then written into both shipped weights' metadata (``predict``
    applies it). The :data:`BASELINES` are measured beside it, not kept. DS2 and the
    product's out-of-fold rows are computed after the choice."""
    from .checkpoint import load_model, read_metadata, write_metadata

    records = (Path(mitdb_dir) / "RECORDS").read_text().split()
    mit = feature_set(mitdb_dir, records, cache_dir)
    svdb = feature_set(svdb_dir, (Path(svdb_dir) / "RECORDS").read_text().split(), cache_dir)
    with np.load(oof_path(root / "runs"), allow_pickle=False) as z:
        ds1_oof, all_oof = z["ds1_oof"], z["all_oof"]
    bench = load_model(root / BENCHMARK_TARGET).model
    sv = predict_candidate(bench, svdb["x"])
    product_sv = predict_candidate(load_model(root / PRODUCT_TARGET).model, svdb["x"])
    ds2_raw = predict_candidate(bench, mit["x"][np.isin(mit["record"], DS2)])
    ds1 = np.isin(mit["record"], DS1)
    ds2 = np.isin(mit["record"], DS2)
    mit_beats = recording_beats(mitdb_dir, records)
    svdb_beats = recording_beats(svdb_dir, (Path(svdb_dir) / "RECORDS").read_text().split())

    def inputs(options, database: str, mask=None):
        """What an adaptation reads: the relative features, or (beats, RR) for clusters."""
        if options == "clusters":
            beats, rr = mit_beats if database == "mit" else svdb_beats
            return (beats, rr) if mask is None else (beats[mask], rr[mask])
        x = mit["x"] if database == "mit" else svdb["x"]
        return x if mask is None else x[mask]

    rows = []
    for options in (None, *BASELINES, *PSEUDO_GRID):
        t0 = time.perf_counter()
        a = _adapted(ds1_oof[ds1], inputs(options, "mit", ds1), mit["record"][ds1], options)
        b = _adapted(sv, inputs(options, "svdb"), svdb["record"], options)
        seconds = time.perf_counter() - t0
        cv = summary(mit["y"][ds1], a, mit["record"][ds1], 0)
        val = summary(svdb["y"], b, svdb["record"], 0)
        n_records = len(set(mit["record"][ds1])) + len(set(svdb["record"]))
        rows.append(
            {
                "method": _method(options),
                "options": None if isinstance(options, str) else options,
                "ds1_folds": cv,
                "svdb_dev": val,
                "score": (cv["score"] + val["score"]) / 2,
                "seconds_per_record": seconds / n_records,
            }
        )
    eligible = [r for r in rows if r["method"] == "pseudo_labels"]
    best = max(eligible, key=lambda r: r["score"])
    kept = best if best["score"] >= rows[0]["score"] + KEEP_GAIN else rows[0]
    # chosen; DS2 and the product's out-of-fold figures from here on
    for row in rows:
        options = "clusters" if row["method"] == "clusters" else row["options"]
        p = _adapted(ds2_raw, inputs(options, "mit", ds2), mit["record"][ds2], options)
        row["ds2"] = summary(mit["y"][ds2], p, mit["record"][ds2], n_boot if row is kept else 0)
        q = _adapted(all_oof, inputs(options, "mit"), mit["record"], options)
        row["product_out_of_fold"] = summary(mit["y"], q, mit["record"], 0)
        s = _adapted(product_sv, inputs(options, "svdb"), svdb["record"], options)
        row["product_svdb_dev"] = summary(svdb["y"], s, svdb["record"], 0)
    for target in (BENCHMARK_TARGET, PRODUCT_TARGET):
        path = root / target
        meta = {k: v for k, v in read_metadata(path).items() if k not in ("adaptation",)}
        meta.pop("pseudo_labels", None)
        if kept["options"] is not None:
            meta |= {"adaptation": ["pseudo_labels"], "pseudo_labels": kept["options"]}
        write_metadata(path, meta)
    return {"rows": rows, "kept": kept["options"], "keep_gain": KEEP_GAIN, "grid": ablation_grid()}


PACED_SHARES = (0.3, 0.5, 0.7)
"""Shares of predicted-Q beats from which a recording counts as paced, compared."""


def paced_rule_check(
    mitdb_dir: Path, svdb_dir: Path, cache_dir: Path | None, root: Path, kept: dict | None
) -> dict:
    """Choose the ``paced_only`` rule's share (:func:`~ecg_utils.unsupervised.paced_only`):
    the one with the best mean of the five-class macro-F1 out-of-fold over the 48 records
    (the paced ones among them) and on svdb-dev (no paced patient), each after the kept
    ``pseudo_labels`` adaptation; written into both shipped weights when it beats no rule.
    """
    from .checkpoint import load_model, read_metadata, write_metadata
    from .unsupervised import paced_only

    records = (Path(mitdb_dir) / "RECORDS").read_text().split()
    mit = feature_set(mitdb_dir, records, cache_dir)
    svdb = feature_set(svdb_dir, (Path(svdb_dir) / "RECORDS").read_text().split(), cache_dir)
    with np.load(oof_path(root / "runs"), allow_pickle=False) as z:
        oof = _adapted(z["all_oof"], mit["x"], mit["record"], kept)
    sv = predict_candidate(load_model(root / PRODUCT_TARGET).model, svdb["x"])
    sv = _adapted(sv, svdb["x"], svdb["record"], kept)

    def ruled(proba, recs, share):
        if share is None:
            return proba
        return _per_recording(proba, recs, lambda m: paced_only(proba[m], share))

    rows = []
    for share in (None, *PACED_SHARES):
        a = summary(mit["y"], ruled(oof, mit["record"], share), mit["record"], 0)
        b = summary(svdb["y"], ruled(sv, svdb["record"], share), svdb["record"], 0)
        false_q = int(sum(b["confusion"][t][4] for t in range(5) if t != 4))
        score = (a["macro_f1"] + b["macro_f1"]) / 2
        rows.append({"share": share, "out_of_fold": a, "svdb_dev": b, "score": score})
        rows[-1]["svdb_false_q"] = false_q
    best = max(rows[1:], key=lambda r: r["score"])
    chosen = best["share"] if best["score"] > rows[0]["score"] else None
    for target in (BENCHMARK_TARGET, PRODUCT_TARGET):
        path = root / target
        meta = read_metadata(path)
        methods = [m for m in meta.get("adaptation", []) if m != "paced_only"]
        options = {k: v for k, v in (meta.get("pseudo_labels") or {}).items() if k != "paced_share"}
        if chosen is not None:
            methods.append("paced_only")
            options["paced_share"] = chosen
        meta["adaptation"], meta["pseudo_labels"] = methods, options
        write_metadata(path, meta)
    return {"rows": rows, "chosen": chosen}


def default_path_check(
    mitdb_dir: Path, svdb_dir: Path, root: Path, cache_dir: Path | None, n_boot: int
) -> dict:
    """What ``predict`` runs by default, measured as it runs: each shipped model with the
    unsupervised adaptation its metadata names, through the project's own evaluation
    (the benchmark on DS2 as ``evaluate --protocol inter-patient`` scores it, the
    product on svdb-dev as ``evaluate --protocol svdb-dev`` does)."""
    from .beats import build_beats
    from .checkpoint import load_model
    from .splits import make_split
    from .study import evaluate_weights
    from .svdb import evaluate_svdb

    beats = build_beats(mitdb_dir, cache_dir, progress=False)
    bench = load_model(root / BENCHMARK_TARGET)
    product = load_model(root / PRODUCT_TARGET)
    ds2 = evaluate_weights(bench, beats, make_split(beats, "inter-patient"), n_boot=n_boot)
    ds2.pop("per_record", None)
    return {
        "adaptation": product.meta.get("adaptation"),
        "options": product.meta.get("pseudo_labels"),
        "benchmark_ds2": ds2,
        "product_svdb_dev": evaluate_svdb(product, svdb_dir, n_boot=n_boot),
    }
