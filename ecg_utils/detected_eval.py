"""Classification on detected R peaks: what a user without annotations gets.

The study's test scores segment beats at the annotated R peaks. A new recording has no
annotations, so :func:`~ecg_utils.predict.classify_record` detects the peaks first. This
module measures the difference on MIT-BIH records: every record is classified twice
with the same model, once at the annotated beats and once at the detected peaks, and
the detections are matched one-to-one to the reference beats (closest pairs first,
within 150 ms, as in ANSI/AAMI EC57).

Three views result:

* ``annotated``: the model at the reference R peaks (every beat, the last included).
* ``detected``: the model at the detected peaks, scored on the matched beats only
  (a matched beat keeps its reference class).
* ``end_to_end_sensitivity``: per class, the reference beats that were detected *and*
  classified correctly, over all reference beats; a missed beat counts as an error.

Extra detections (false positives) have no reference class and are only counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._io import EcgError
from .beats import CLASS_NAMES, annotated_beats, pick_lead
from .checkpoint import LoadedModel
from .detect import detect_r_peaks, match_pairs
from .evaluation import classification_metrics
from .predict import classify_record, resolve_weights
from .records import read_annotations, read_signal
from .splits import DS2

TOLERANCE_S = 0.15
"""Largest distance between a detection and its reference beat, in seconds."""


@dataclass
class RecordResult:
    """Labels of one record's beats under both peak sources.

    Attributes
    ----------
    ref_labels : ndarray, shape (n_ref,)
        AAMI labels of the reference beats (sorted by position).
    annotated_pred : ndarray, shape (n_ref,)
        Predicted labels at the annotated R peaks.
    matched_ref : ndarray, shape (n_matched,)
        Indices into the reference beats of the matched detections.
    matched_pred : ndarray, shape (n_matched,)
        Predicted labels at the matched detected peaks.
    n_detected : int
        Number of detected peaks.
    """

    ref_labels: np.ndarray
    annotated_pred: np.ndarray
    matched_ref: np.ndarray
    matched_pred: np.ndarray
    n_detected: int

    @property
    def extra(self) -> int:
        """Detections without a reference beat (false positives)."""
        return self.n_detected - len(self.matched_ref)

    def missed_mask(self) -> np.ndarray:
        """Boolean mask of the reference beats that no detection matched."""
        missed = np.ones(len(self.ref_labels), dtype=bool)
        missed[self.matched_ref] = False
        return missed


def reference_beats(record_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Annotated beats of a record: positions (samples) and AAMI labels, sorted by position.

    Only symbols in :data:`~ecg_utils.beats.AAMI_CLASSES` count as beats.
    """
    return annotated_beats(*read_annotations(record_path))


def _labels_at(table, peaks: np.ndarray) -> np.ndarray:
    """Predicted label of each peak from a ``classify_record`` table (keyed by sample)."""
    samples = table["sample"].to_numpy()
    pos = np.minimum(np.searchsorted(samples, peaks), max(len(samples) - 1, 0))
    if len(peaks) and (len(samples) == 0 or np.any(samples[pos] != peaks)):
        raise EcgError("some annotated beats lie outside the signal")
    return table["label"].to_numpy()[pos].astype(np.int64)


def evaluate_record(
    record_path: str | Path,
    loaded: LoadedModel,
    tolerance_s: float = TOLERANCE_S,
    lead: str = "MLII",
) -> RecordResult:
    """Classify one record at its annotated and at its detected R peaks.

    Parameters
    ----------
    record_path : path
        WFDB record path without extension, with ``atr`` annotations.
    loaded : LoadedModel
        The model (with or without RR features).
    tolerance_s : float
        Matching tolerance in seconds.
    lead : str
        Preferred lead; the first channel is used when the record lacks it.
    """
    sig, fs, names = read_signal(record_path)
    x = sig[:, pick_lead(names, lead)[0]]
    ref, labels = reference_beats(record_path)
    # the classifier's own errors: no quality check (bench/noise_stress.py measures it)
    annotated = classify_record(x, fs, r_peaks=ref, weights=loaded, quality=False)
    detected = detect_r_peaks(x, fs)
    table = classify_record(x, fs, r_peaks=detected, weights=loaded, quality=False)
    det_peaks = table["sample"].to_numpy()
    ref_idx, det_idx = match_pairs(ref, det_peaks, fs, tolerance_s)
    return RecordResult(
        ref_labels=labels,
        annotated_pred=_labels_at(annotated, ref),
        matched_ref=ref_idx,
        matched_pred=table["label"].to_numpy()[det_idx].astype(np.int64),
        n_detected=len(det_peaks),
    )


def _class_counts(labels: np.ndarray) -> dict[str, int]:
    counts = np.bincount(labels, minlength=len(CLASS_NAMES))
    return {name: int(counts[k]) for k, name in enumerate(CLASS_NAMES)}


def summarize_results(results: dict[str, RecordResult]) -> dict:
    """Pool per-record results into the JSON-ready summary of
    :func:`evaluate_with_detected_peaks`."""
    parts = list(results.values())
    ref = np.concatenate([r.ref_labels for r in parts])
    ann_pred = np.concatenate([r.annotated_pred for r in parts])
    matched_true = np.concatenate([r.ref_labels[r.matched_ref] for r in parts])
    matched_pred = np.concatenate([r.matched_pred for r in parts])
    missed = np.concatenate([r.ref_labels[r.missed_mask()] for r in parts])
    n_matched = len(matched_true)
    n_extra = sum(r.extra for r in parts)
    correct = _class_counts(matched_true[matched_true == matched_pred])
    total = _class_counts(ref)
    return {
        "annotated": classification_metrics(ref, ann_pred),
        "detected": classification_metrics(matched_true, matched_pred),
        "detection": {
            "se": n_matched / len(ref) if len(ref) else 0.0,
            "ppv": n_matched / (n_matched + n_extra) if n_matched + n_extra else 0.0,
            "n_reference": len(ref),
            "n_detected": n_matched + n_extra,
            "missed_by_class": _class_counts(missed),
            "extra": int(n_extra),
        },
        "end_to_end_sensitivity": {
            name: correct[name] / total[name] if total[name] else 0.0 for name in CLASS_NAMES
        },
        "per_record": {name: _record_summary(r) for name, r in results.items()},
    }


def _record_summary(r: RecordResult) -> dict:
    """Beats, misses, extras and accuracies of one record (JSON-ready)."""
    matched_true = r.ref_labels[r.matched_ref]
    return {
        "n_reference": len(r.ref_labels),
        "n_detected": int(r.n_detected),
        "missed": int(r.missed_mask().sum()),
        "extra": int(r.extra),
        "accuracy_annotated": float(np.mean(r.annotated_pred == r.ref_labels)),
        "accuracy_detected": float(np.mean(r.matched_pred == matched_true))
        if len(matched_true)
        else 0.0,
    }


def evaluate_with_detected_peaks(
    weights: str | Path | LoadedModel | None,
    mitdb_dir: str | Path,
    records: Sequence[str] = DS2,
    tolerance_s: float = TOLERANCE_S,
) -> dict:
    """Score a model at detected R peaks against the annotated beats of MIT-BIH records.

    Each record (lead MLII, else the first) is classified at its annotated beats and at
    the peaks :func:`~ecg_utils.detect.detect_r_peaks` finds; detections are matched
    one-to-one to the reference beats within ``tolerance_s``.

    Parameters
    ----------
    weights : path or LoadedModel or None
        Model to evaluate (None: ``ecg_utils.DEFAULT_WEIGHTS``); with or without RR
        features (the RR features then come from the detected peaks).
    mitdb_dir : path
        Folder of MIT-BIH records with ``atr`` annotations.
    records : sequence of str
        Record names (default: de Chazal's test set DS2).
    tolerance_s : float
        Matching tolerance in seconds (150 ms, as ANSI/AAMI EC57).

    Returns
    -------
    dict
        ``annotated`` and ``detected``: :func:`~ecg_utils.evaluation.classification_metrics`
        at the annotated beats (every reference beat) and at the matched detected beats
        (reference class vs class predicted at the detection); ``detection``: ``se`` and
        ``ppv`` of the detector, ``n_reference``, ``n_detected``, ``missed_by_class``
        (reference beats without a detection, per class) and ``extra`` (detections
        without a reference beat); ``end_to_end_sensitivity``: per class, the fraction
        of reference beats detected and classified correctly; ``per_record``: counts and
        accuracies per record; ``records`` and ``tolerance_s``.
    """
    loaded = resolve_weights(weights)
    mitdb_dir = Path(mitdb_dir)
    results = {name: evaluate_record(mitdb_dir / name, loaded, tolerance_s) for name in records}
    summary = summarize_results(results)
    summary["records"] = list(records)
    summary["tolerance_s"] = float(tolerance_s)
    return summary
