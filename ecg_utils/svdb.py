"""The ``svdb-dev`` protocol: weights trained on MIT-BIH judged on another database.

``svdb-dev`` is 39 of the 78 records of the MIT-BIH Supraventricular Arrhythmia Database
(Greenwald, Patil & Mark 1990; PhysioNet ``svdb``): half-hour two-lead records at 128 Hz,
rich in supraventricular beats, some with uncalibrated headers (ADC gain 0, read in
digital units: every model here is scale-free or scales each beat). It is validation
data for choosing models for new patients (cross-database), never a test: the other 39
records are kept outside the project as the independent test.

Each record is classified as ``predict`` classifies a recording (the weights' own
unsupervised adaptation included), from its annotated R peaks (reference beats, so that
the figures measure the classifier, not the detector).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._io import EcgError
from .checkpoint import LoadedModel
from .evaluation import bootstrap_ci, classification_metrics

SVDB_ENV = "ECG_SVDB_DIR"
"""Environment variable naming the svdb-dev folder."""
SVDB_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "svdb-dev"
"""Where the development checkout keeps svdb-dev (``../shared/data/svdb-dev``)."""


def find_svdb_dir(folder: str | os.PathLike | None = None) -> Path:
    """The svdb-dev folder: ``folder``, else ``$ECG_SVDB_DIR``, else ``../shared/data/svdb-dev``
    (a folder or variable that is given is used alone, never replaced by the default).

    Raises
    ------
    EcgError
        When none holds a ``RECORDS`` file.
    """
    given = folder or os.environ.get(SVDB_ENV)
    candidates = (given,) if given else (SVDB_DEFAULT,)  # a folder given is the only one
    for candidate in candidates:
        if (Path(candidate) / "RECORDS").is_file():
            return Path(candidate)
    where = given or SVDB_DEFAULT
    raise EcgError(
        f"svdb-dev records not found (no RECORDS file); give --svdb-dir or set {SVDB_ENV}",
        where,
    )


def svdb_proba(loaded: LoadedModel, folder: Path, records: list[str] | None = None):
    """Class probabilities of every annotated beat of the svdb-dev records.

    Returns
    -------
    y : ndarray, shape (n_beats,)
        Reference AAMI labels.
    proba : ndarray, shape (n_beats, 5)
    record : ndarray, shape (n_beats,), str
    """
    from .inference import predict_proba
    from .predict import recording_inputs, wants_two_leads
    from .relative import read_annotated_recording

    folder = Path(folder)
    records = records or (folder / "RECORDS").read_text().split()
    ys, probas, names = [], [], []
    for name in records:
        sig, fs, peaks, labels = read_annotated_recording(folder / name)
        if not wants_two_leads(loaded):
            sig = sig[:, :1]
        peaks_used, beats, feats = recording_inputs(sig, fs, peaks, 0, loaded.feature_set)
        if len(peaks_used) != len(peaks):
            raise EcgError("annotated beats were lost on the way (duplicate peaks?)", folder / name)
        methods = loaded.meta.get("adaptation")
        if methods:  # as predict runs the weights: their unsupervised adaptation too
            from .beats import rr_features
            from .unsupervised import adapted_proba

            options = loaded.meta.get("pseudo_labels")
            rr = rr_features(peaks, fs)
            probas.append(adapted_proba(loaded.model, beats, feats, methods, rr, 0, options))
        else:
            probas.append(predict_proba(loaded.model, beats, feats))
        ys.append(labels)
        names.append(np.full(len(labels), name, dtype="<U8"))
    return np.concatenate(ys), np.concatenate(probas), np.concatenate(names)


def evaluate_svdb(loaded: LoadedModel, folder: Path, n_boot: int = 0) -> dict:
    """Metrics of ``loaded`` on svdb-dev: the keys of the other protocols' JSON."""
    y, proba, record = svdb_proba(loaded, folder)
    pred = proba.argmax(1)
    metrics = {"protocol": "svdb-dev", **classification_metrics(y, pred)}
    metrics["records"] = sorted(set(record.tolist()))
    if n_boot:
        metrics["ci"] = bootstrap_ci(y, pred, groups=record, n_boot=n_boot)
    return metrics
