"""The patient-specific protocol (AAMI EC57 practice): label the first minutes, score the rest.

For each test record the reference labels of the first ``minutes`` adapt the model
(:func:`~ecg_utils.adaptation.adapt`); only the beats after them are scored, so adaptation
never sees a scored label. The same beats classified by the unadapted model give the
comparison. Beats are the annotated ones (as in the inter-patient table).

The few-labels variant follows EC57 too: only the first ``minutes`` are grouped into
families, the reference label of each family's most typical beat stands in for the
analyst's review of it (that beat alone is labelled), and the beats after ``minutes``
are scored.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .evaluation import bootstrap_ci, classification_metrics
from .splits import DS2

LABELLED_MINUTES = 5.0
"""Minutes at the start of each record whose labels adapt the model (AAMI EC57)."""


def evaluate_patient_specific(
    weights,
    mitdb_dir: str | Path,
    records: tuple[str, ...] = DS2,
    minutes: float = LABELLED_MINUTES,
    n_boot: int = 1000,
    labelled_beats: int | None = None,
    vote_weight: float | None = None,
    keep_predictions: bool = False,
    fine_tune: dict | None = None,
    selection: str = "medoids",
) -> dict:
    """Pooled metrics of the adapted and the unadapted model on each record's remainder.

    Parameters
    ----------
    weights : path or LoadedModel
        The model to adapt (trained without these records).
    mitdb_dir : path
        Folder of the WFDB records.
    records : tuple of str
        Records to adapt to and score (default DS2).
    minutes : float
        Labelled minutes at the start of each record.
    labelled_beats : int, optional
        The few-labels protocol instead: the beats of the first ``minutes`` are grouped
        into this many families (:func:`~ecg_utils.unsupervised.beat_families`, no
        labels used), and the reference label of each family's most typical beat (that
        beat alone) stands in for the analyst's review; the beats after ``minutes`` are
        scored, as in the 5-minute protocol.
    vote_weight : float, optional
        Passed to :func:`~ecg_utils.adaptation.adapt`.
    keep_predictions : bool
        Also return ``y``, ``adapted_pred`` and ``global_pred`` (the scored beats), for
        pooling over several calls.
    fine_tune : dict, optional
        Passed to :func:`~ecg_utils.adaptation.adapt` (relative-recipe models).
    selection : {"medoids", "active"}
        How the few-labels protocol picks its ``labelled_beats`` in the first minutes:
        the families' medoids, or active review (:mod:`ecg_utils.review`): rounds of
        :data:`ACTIVE_ROUND` beats the model adapted so far is least sure of, one per
        family first, each round labelled and the model adapted again.
    n_boot : int
        Record resamples of the bootstrap intervals (0: none).

    Returns
    -------
    dict
        ``adapted`` and ``global`` (:func:`~ecg_utils.evaluation.classification_metrics`
        of the scored beats, with ``ci``), ``per_record`` (beats scored, beats in the
        labelled minutes and labels given, errors of each model, S and V found by each,
        seconds to pick the labels and adapt), ``minutes``,
        ``records``, ``seconds_per_record`` (mean time to adapt to one record).
    """
    from .predict import resolve_weights

    loaded = resolve_weights(weights)
    options = {"vote_weight": vote_weight, "fine_tune": fine_tune}
    run = _adapters(loaded, labelled_beats, selection, options)
    (out,) = _evaluate(
        loaded, mitdb_dir, records, minutes, n_boot, run, (labelled_beats,), keep_predictions
    ).values()
    return out


def few_labels_curve(
    weights,
    mitdb_dir: str | Path,
    counts: tuple[int, ...],
    records: tuple[str, ...] = DS2,
    minutes: float = LABELLED_MINUTES,
    selection: str = "medoids",
    n_boot: int = 0,
    fine_tune: dict | None = None,
    keep_predictions: bool = False,
) -> dict[int, dict]:
    """The few-labels protocol at several label counts, each record read once.

    Parameters as :func:`evaluate_patient_specific`, ``counts`` being its
    ``labelled_beats`` at each point of the curve. Active review runs one simulated loop
    per record and takes the model adapted after the round that reaches each count, so a
    count's ``adapt_seconds`` is the loop's time up to it (what an analyst's session of
    that many labels costs); the medoids are picked afresh for each count.

    Returns
    -------
    dict
        Count -> the :func:`evaluate_patient_specific` result at that count.
    """
    from .predict import resolve_weights

    loaded = resolve_weights(weights)
    run = _adapters(loaded, tuple(counts), selection, {"fine_tune": fine_tune})
    return _evaluate(
        loaded, mitdb_dir, records, minutes, n_boot, run, tuple(counts), keep_predictions
    )


def _adapters(loaded, labelled_beats, selection: str, options: dict):
    """``run(x, fs, peaks, labels, first, record)`` -> {count: (adapted model, seconds,
    labels given)} for one record; the counts are ``labelled_beats`` (an int, a tuple, or
    None for every beat of the first minutes)."""
    from .adaptation import adapt

    counts = labelled_beats if isinstance(labelled_beats, tuple) else (labelled_beats,)
    if selection not in ("medoids", "active"):
        raise ValueError(f"selection must be 'medoids' or 'active', not {selection!r}")

    def run(x, fs, peaks, labels, first, record):
        opts = {**options, "record": record}
        if counts == (None,):
            t0 = time.perf_counter()
            given = list(zip(peaks[first], labels[first], strict=True))
            model = adapt(loaded, x, fs, given, r_peaks=peaks, **opts)
            return {None: (model, time.perf_counter() - t0, len(given))}
        if selection == "active":
            return _active_review(loaded, x, fs, peaks, labels, first, counts, opts)
        out = {}
        for k in counts:
            t0 = time.perf_counter()
            picked = _reviewed_families(_lead0(x), fs, peaks, first, k)
            given = list(zip(peaks[picked], labels[picked], strict=True))
            model = adapt(loaded, x, fs, given, r_peaks=peaks, **opts)
            out[k] = (model, time.perf_counter() - t0, len(given))
        return out

    return run


def _evaluate(loaded, mitdb_dir, records, minutes, n_boot, run, counts, keep_predictions):
    """Score ``run``'s adapted models of each record (one result per count) and the
    unadapted model on the beats after the first ``minutes``."""
    from .beats import pick_lead
    from .detected_eval import reference_beats
    from .predict import classify_record, wants_two_leads
    from .records import read_signal

    two_leads = wants_two_leads(loaded)
    ys, globals_, groups = [], [], []
    adapted_ = {k: [] for k in counts}
    per_record = {k: {} for k in counts}
    for rec in records:
        path = Path(mitdb_dir) / rec
        sig, fs, names = read_signal(path)
        lead, _ = pick_lead(names)
        others = [i for i in range(sig.shape[1]) if i != lead][:1] if two_leads else []
        x = sig[:, [lead, *others]] if others else sig[:, lead]
        peaks, labels = reference_beats(path)
        labelled = peaks < int(round(minutes * 60 * fs))
        models = run(x, fs, peaks, labels, labelled, rec)
        scored = ~labelled
        y = labels[scored]
        # labels as the models give them: no quality check (bench/noise_stress.py)
        base = classify_record(x, fs, r_peaks=peaks, weights=loaded, quality=False)
        base = base["label"].to_numpy()[scored]
        ys.append(y)
        globals_.append(base)
        groups.append(np.full(int(scored.sum()), rec))
        for k in counts:
            patient, seconds, given = models[k]
            mine = classify_record(x, fs, r_peaks=peaks, weights=patient, quality=False)
            mine = mine["label"].to_numpy()[scored]
            adapted_[k].append(mine)
            per_record[k][rec] = {
                "labelled": int(labelled.sum()),
                "given": given,
                "scored": int(scored.sum()),
                "errors_global": int((base != y).sum()),
                "errors_adapted": int((mine != y).sum()),
                "S": int((y == 1).sum()),
                "S_found_global": int(((base == 1) & (y == 1)).sum()),
                "S_found_adapted": int(((mine == 1) & (y == 1)).sum()),
                "V": int((y == 2).sum()),
                "V_found_global": int(((base == 2) & (y == 2)).sum()),
                "V_found_adapted": int(((mine == 2) & (y == 2)).sum()),
                "adapt_seconds": seconds,
            }
    y, g = np.concatenate(ys), np.concatenate(groups)
    results = {}
    for k in counts:
        out = {
            "minutes": minutes,
            "labelled_beats": k,
            "records": list(records),
            "per_record": per_record[k],
        }
        for name, preds in (("adapted", adapted_[k]), ("global", globals_)):
            pred = np.concatenate(preds)
            metrics = classification_metrics(y, pred)
            metrics["ci"] = (
                bootstrap_ci(y, pred, groups=g, n_boot=n_boot, seed=0) if n_boot else None
            )
            out[name] = metrics
        times = [v["adapt_seconds"] for v in per_record[k].values()]
        out["seconds_per_record"] = float(np.mean(times)) if times else 0.0
        if keep_predictions:
            out["y"], out["adapted_pred"] = y, np.concatenate(adapted_[k])
            out["global_pred"] = np.concatenate(globals_)
        results[k] = out
    return results


VOTE_WEIGHTS = (0.5, 0.7, 0.9, 1.0)
"""Shares of the labelled neighbours' vote compared on the training records (1.0: the
neighbours alone, the plain nearest-neighbour baseline of the field notes)."""


def choose_vote_weight(
    fold_models: list, folds: list[list[str]], mitdb_dir, minutes: float = LABELLED_MINUTES
) -> tuple[float, dict[str, float]]:
    """The vote share that serves the training records best in the patient-specific protocol.

    Each training record is adapted from its own first ``minutes`` by the fold model that
    never saw it, with each share of :data:`VOTE_WEIGHTS`; the pooled mean F1 of N, S
    and V over the records' remainders decides (ties: the smaller share). No test record
    is used.

    Returns
    -------
    weight : float
    scores : dict
        Share (as text) -> pooled score.
    """
    from sklearn.metrics import f1_score

    scores = {}
    for weight in VOTE_WEIGHTS:
        ys, preds = [], []
        for records, model in zip(folds, fold_models, strict=True):
            part = evaluate_patient_specific(
                model,
                mitdb_dir,
                tuple(records),
                minutes,
                0,
                vote_weight=weight,
                keep_predictions=True,
            )
            ys.append(part["y"])
            preds.append(part["adapted_pred"])
        y, pred = np.concatenate(ys), np.concatenate(preds)
        scores[str(weight)] = float(f1_score(y, pred, labels=[0, 1, 2], average="macro"))
    best = max(VOTE_WEIGHTS, key=lambda w: (scores[str(w)], -w))
    return best, scores


ACTIVE_ROUND = 5
"""Beats an analyst labels per round of the simulated active review."""


def _active_review(loaded, x, fs, peaks, labels, first, counts: tuple[int, ...], options: dict):
    """Simulated active review of the first minutes: rounds of :data:`ACTIVE_ROUND` beats
    the current model doubts most (one per family first), labelled with their reference
    classes, the shipped model adapted again on all labels so far. A round ends early at
    each of ``counts``. Returns {count: (the model adapted on that many labels, seconds
    of the loop so far, labels given)}."""
    from .adaptation import adapt
    from .beats import rr_features
    from .inference import predict_proba
    from .predict import recording_inputs
    from .review import least_sure
    from .unsupervised import beat_families

    t0 = time.perf_counter()
    idx = np.flatnonzero(first)
    _, beats, feats = recording_inputs(x, fs, peaks, 0, loaded.feature_set)
    families, _ = beat_families(beats[idx], rr_features(peaks[idx], fs), 20)
    stops = sorted({min(k, len(idx)) for k in counts})
    chosen: list[int] = []
    model, out = loaded, {}
    while len(chosen) < stops[-1]:
        proba = predict_proba(model.model, beats[idx], None if feats is None else feats[idx])
        next_stop = min(s for s in stops if s > len(chosen))
        step = min(ACTIVE_ROUND, next_stop - len(chosen))
        chosen += least_sure(proba, families, step, exclude=chosen).tolist()
        given = list(zip(peaks[idx[chosen]], labels[idx[chosen]], strict=True))
        model = adapt(loaded, x, fs, given, r_peaks=peaks, **options)
        if len(chosen) in stops:
            out[len(chosen)] = (model, time.perf_counter() - t0, len(chosen))
    return {k: out[min(k, len(idx))] for k in counts}


def _lead0(x: np.ndarray) -> np.ndarray:
    return x if x.ndim == 1 else x[:, 0]


def _reviewed_families(x, fs, peaks, first: np.ndarray, k: int) -> np.ndarray:
    """The few-labels protocol's labelled beats: the medoids of ``k`` families of the
    beats in ``first`` (the first minutes) alone. Returns their indices into ``peaks``."""
    from .beats import rr_features
    from .predict import at_training_rate, segment_in_chunks
    from .unsupervised import beat_families

    idx = np.flatnonzero(first)
    x_seg, fs_seg, peaks_seg = at_training_rate(x, fs, peaks)
    beats = segment_in_chunks(x_seg, fs_seg, peaks_seg)
    _, medoids = beat_families(beats[idx], rr_features(peaks[idx], fs), min(k, len(idx)))
    return idx[np.asarray(medoids, np.int64)]
