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
        of the scored beats, with ``ci``), ``per_record`` (beats scored and labelled,
        errors of each, S and V found by each, adaptation seconds), ``minutes``,
        ``records``, ``seconds_per_record`` (mean time to adapt to one record).
    """
    from .adaptation import adapt
    from .beats import pick_lead
    from .detected_eval import reference_beats
    from .predict import classify_record, resolve_weights, wants_two_leads
    from .records import read_signal

    loaded = resolve_weights(weights)
    two_leads = wants_two_leads(loaded)
    ys, globals_, adapted_, groups, per_record, times = [], [], [], [], {}, []
    for rec in records:
        path = Path(mitdb_dir) / rec
        sig, fs, names = read_signal(path)
        lead, _ = pick_lead(names)
        others = [i for i in range(sig.shape[1]) if i != lead][:1] if two_leads else []
        x = sig[:, [lead, *others]] if others else sig[:, lead]
        peaks, labels = reference_beats(path)
        t0 = time.perf_counter()
        first = peaks < int(round(minutes * 60 * fs))
        options = {"vote_weight": vote_weight, "fine_tune": fine_tune, "record": rec}
        if labelled_beats and selection == "active":
            patient = _active_review(loaded, x, fs, peaks, labels, first, labelled_beats, options)
        else:
            if labelled_beats:
                picked = _reviewed_families(_lead0(x), fs, peaks, first, labelled_beats)
                given = list(zip(peaks[picked], labels[picked], strict=True))
            else:
                given = list(zip(peaks[first], labels[first], strict=True))
            patient = adapt(loaded, x, fs, given, r_peaks=peaks, **options)
        labelled = first
        seconds = time.perf_counter() - t0
        times.append(seconds)
        scored = ~labelled
        # labels as the models give them: no quality check (bench/noise_stress.py)
        base = classify_record(x, fs, r_peaks=peaks, weights=loaded, quality=False)
        mine = classify_record(x, fs, r_peaks=peaks, weights=patient, quality=False)
        base, mine = base["label"].to_numpy(), mine["label"].to_numpy()
        y = labels[scored]
        ys.append(y)
        globals_.append(base[scored])
        adapted_.append(mine[scored])
        groups.append(np.full(int(scored.sum()), rec))
        per_record[rec] = {
            "labelled": int(labelled.sum()),
            "scored": int(scored.sum()),
            "errors_global": int((base[scored] != y).sum()),
            "errors_adapted": int((mine[scored] != y).sum()),
            "S": int((y == 1).sum()),
            "S_found_global": int(((base[scored] == 1) & (y == 1)).sum()),
            "S_found_adapted": int(((mine[scored] == 1) & (y == 1)).sum()),
            "V": int((y == 2).sum()),
            "V_found_global": int(((base[scored] == 2) & (y == 2)).sum()),
            "V_found_adapted": int(((mine[scored] == 2) & (y == 2)).sum()),
            "adapt_seconds": seconds,
        }
    y, g = np.concatenate(ys), np.concatenate(groups)
    out = {
        "minutes": minutes,
        "labelled_beats": labelled_beats,
        "records": list(records),
        "per_record": per_record,
    }
    for name, preds in (("adapted", adapted_), ("global", globals_)):
        pred = np.concatenate(preds)
        metrics = classification_metrics(y, pred)
        metrics["ci"] = bootstrap_ci(y, pred, groups=g, n_boot=n_boot, seed=0) if n_boot else None
        out[name] = metrics
    out["seconds_per_record"] = float(np.mean(times)) if times else 0.0
    if keep_predictions:
        out["y"], out["adapted_pred"] = y, np.concatenate(adapted_)
        out["global_pred"] = np.concatenate(globals_)
    return out


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


def _active_review(loaded, x, fs, peaks, labels, first, budget: int, options: dict):
    """Simulated active review of the first minutes: rounds of :data:`ACTIVE_ROUND` beats
    the current model doubts most (one per family first), labelled with their reference
    classes, the shipped model adapted again on all labels so far. Returns the last
    adapted model."""
    from .adaptation import adapt
    from .beats import rr_features
    from .inference import predict_proba
    from .predict import recording_inputs
    from .review import least_sure
    from .unsupervised import beat_families

    idx = np.flatnonzero(first)
    _, beats, feats = recording_inputs(x, fs, peaks, 0, loaded.feature_set)
    families, _ = beat_families(beats[idx], rr_features(peaks[idx], fs), 20)
    chosen: list[int] = []
    model = loaded
    while len(chosen) < min(budget, len(idx)):
        proba = predict_proba(model.model, beats[idx], None if feats is None else feats[idx])
        step = min(ACTIVE_ROUND, budget - len(chosen), len(idx) - len(chosen))
        chosen += least_sure(proba, families, step, exclude=chosen).tolist()
        given = list(zip(peaks[idx[chosen]], labels[idx[chosen]], strict=True))
        model = adapt(loaded, x, fs, given, r_peaks=peaks, **options)
    return model


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
