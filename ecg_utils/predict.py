"""Classify the beats of a new recording: any sampling rate, with or without R peaks.

The steps are those of training: pick a lead, find R peaks (or take annotated ones),
segment as Kachuee et al. (2018) at 120 Hz, then classify in large batches. Long
recordings are processed in chunks so memory stays bounded.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from ._io import EcgError, atomic_open, atomic_path, check_fs
from .beats import (
    BEAT_LENGTH,
    CLASS_NAMES,
    FS_BEAT,
    feature_matrix,
    pick_lead,
    rr_features,
    segment_beats,
    waveform_length,
    wide_windows,
)
from .checkpoint import LoadedModel, load_model
from .device import on_device
from .inference import DEFAULT_BATCH_SIZE, predict_proba

CHUNK_BEATS = 50_000
"""Beats segmented at a time: bounds memory on long recordings (about 40 MB a chunk)."""
COLUMNS = ["sample", "time_s", "label", "class"] + [f"prob_{c}" for c in CLASS_NAMES]


@functools.lru_cache(maxsize=4)
def _cached_model(path: str) -> LoadedModel:
    return load_model(path)


def resolve_weights(weights: str | Path | LoadedModel | None) -> LoadedModel:
    """A loaded model from a path, a LoadedModel, or None for ``DEFAULT_WEIGHTS``."""
    if isinstance(weights, LoadedModel):
        return weights
    if weights is None:
        from . import DEFAULT_WEIGHTS

        weights = DEFAULT_WEIGHTS
    path = Path(weights)
    return _cached_model(str(path.resolve()))


def _one_lead(signal: np.ndarray, lead: int) -> np.ndarray:
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim == 2:
        if not 0 <= lead < x.shape[1]:
            raise EcgError(f"lead index {lead} out of range for {x.shape[1]} lead(s)")
        x = x[:, lead]
    if x.ndim != 1:
        raise EcgError(f"signal must be 1-D or (n_samples, n_leads), got shape {x.shape}")
    if len(x) == 0:
        raise EcgError("signal is empty")
    finite = x if np.isfinite(x).all() else x[np.isfinite(x)]  # copy only when gaps
    if finite.size == 0 or finite.min() == finite.max():
        raise EcgError("signal is flat or has no finite samples: no beats to classify")
    return x


def segment_in_chunks(
    x: np.ndarray, fs: float, peaks: np.ndarray, chunk_beats: int = CHUNK_BEATS
) -> np.ndarray:
    """Segment beats a chunk of peaks at a time; identical to one pass over the signal.

    A beat depends only on its own samples and the next R peak, so each chunk gets the
    signal from its first peak to one beat past its last, and the next chunk's first peak.

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
    fs : float
        Sampling rate in Hz.
    peaks : ndarray, shape (n_peaks,)
        Sorted R peaks in samples, inside the signal.

    Returns
    -------
    ndarray, shape (n_peaks, 187), float32
        Beats at 120 Hz.
    """
    out = np.zeros((len(peaks), BEAT_LENGTH), np.float32)
    if len(peaks) == 0:
        return out
    reach = int(np.ceil(BEAT_LENGTH * fs / FS_BEAT)) + 1
    last_rr = float(np.median(np.diff(peaks))) if len(peaks) > 1 else None
    for first in range(0, len(peaks), chunk_beats):
        last = min(first + chunk_beats, len(peaks))
        chunk = peaks[first:last]
        lo = int(chunk[0])
        hi = min(len(x), int(chunk[-1]) + reach)
        rr_after = float(peaks[last] - chunk[-1]) if last < len(peaks) else last_rr
        beats, kept = segment_beats(x[lo:hi], fs, chunk - lo, last_rr=rr_after)
        out[first + kept] = beats
    return out


def classify_record(
    signal: np.ndarray,
    fs: float,
    r_peaks: np.ndarray | None = None,
    weights: str | Path | LoadedModel | None = None,
    lead: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sensitivity: str = "balanced",
    adaptation: bool = True,
    device: str = "auto",
) -> pd.DataFrame:
    """Classify every beat of a recording.

    Parameters
    ----------
    signal : ndarray, shape (n_samples,) or (n_samples, n_leads)
        ECG in mV at ``fs`` Hz.
    fs : float
        Sampling rate in Hz (any rate; beats are taken at 120 Hz).
    r_peaks : ndarray of int, optional
        R-peak positions in samples; detected when None.
    weights : path or LoadedModel, optional
        Defaults to ``ecg_utils.DEFAULT_WEIGHTS`` (the product model for new patients).
    lead : int
        Column of ``signal`` to use when it is 2-D.
    sensitivity : {"balanced", "high"}
        Operating point (:mod:`ecg_utils.operating`): ``"high"`` finds more S and V
        beats at a lower +P (S +P >= 50 %, V +P >= 90 % out-of-fold).
    adaptation : bool
        Adapt to the recording without labels as the weights' metadata says
        (``adaptation``, kept when it helped on training-record folds; see
        :mod:`ecg_utils.unsupervised`); False classifies each beat with the model alone.
    device : str
        Where the model runs: ``auto``, ``cpu``, ``cuda`` or ``mps``
        (:func:`ecg_utils.device.resolve_device`).

    Returns
    -------
    pandas.DataFrame
        One row per beat: ``sample``, ``time_s``, ``label`` (0–4), ``class``
        (N/S/V/F/Q) and ``prob_N`` … ``prob_Q``.
    """
    from .operating import with_operating_point

    fs = check_fs(fs)
    loaded = with_operating_point(resolve_weights(weights), sensitivity)
    peaks, beats, feats = recording_inputs(signal, fs, r_peaks, lead, loaded.feature_set)
    if len(peaks) == 0:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in COLUMNS})
    methods = loaded.meta.get("adaptation") if adaptation else None
    model = on_device(loaded.model, device)
    if methods:
        from .unsupervised import adapted_proba

        proba = adapted_proba(model, beats, feats, methods, rr_features(peaks, fs))
    else:
        proba = predict_proba(model, beats, feats, batch_size=batch_size)
    return beats_table(peaks, fs, proba)


def recording_inputs(
    signal: np.ndarray,
    fs: float,
    r_peaks: np.ndarray | None,
    lead: int,
    feature_set: str | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """What a model reads of one recording: its R peaks, beats and per-beat features.

    Parameters
    ----------
    signal : ndarray, shape (n_samples,) or (n_samples, n_leads)
        ECG in mV at ``fs`` Hz.
    fs : float
        Sampling rate in Hz.
    r_peaks : ndarray of int, optional
        R peaks in samples; detected when None (sorted, deduplicated, clipped).
    lead : int
        Column of a 2-D ``signal``.
    feature_set : str or None
        The model's feature set.

    Returns
    -------
    peaks : ndarray of int, shape (n_beats,)
        R peaks at ``fs``.
    beats : ndarray, shape (n_beats, 187)
        Beats at 120 Hz.
    features : ndarray, shape (n_beats, k), or None
    """
    fs = check_fs(fs)
    x = _one_lead(signal, lead)
    if r_peaks is None:
        from .detect import detect_r_peaks

        peaks = detect_r_peaks(x, fs)
    else:
        peaks = np.unique(np.asarray(r_peaks, dtype=np.int64))
        peaks = peaks[(peaks >= 0) & (peaks < len(x))]
    if len(peaks) == 0:
        return peaks, np.zeros((0, BEAT_LENGTH), np.float32), None
    x_seg, fs_seg, peaks_seg = at_training_rate(x, fs, peaks)
    beats = segment_in_chunks(x_seg, fs_seg, peaks_seg)
    return peaks, beats, recording_features(feature_set, beats, x_seg, fs_seg, peaks_seg)


def recording_features(
    feature_set: str | None, beats: np.ndarray, x: np.ndarray, fs: float, peaks: np.ndarray
) -> np.ndarray | None:
    """A model's per-beat features for the beats of one recording, or None for none.

    Parameters
    ----------
    feature_set : str or None
        The model's ``feature_set`` (its metadata).
    beats : ndarray, shape (n_beats, 187)
        The recording's beats at 120 Hz (:func:`segment_in_chunks`).
    x : ndarray, shape (n_samples,)
        The lead they were cut from, at ``fs`` Hz (for the wide window).
    fs : float
        Sampling rate of ``x`` and ``peaks`` in Hz.
    peaks : ndarray of int, shape (n_beats,)
        R peaks in samples at ``fs``, one per beat.
    """
    if not feature_set:
        return None
    wide = wide_windows(x, fs, peaks) if waveform_length(feature_set) else None
    return feature_matrix(rr_features(peaks, fs), feature_set, beats, wide=wide)


TRAINING_FS = 360.0
"""Sampling rate of the records the models were trained on, in Hz."""


def at_training_rate(x: np.ndarray, fs: float, peaks: np.ndarray):
    """The signal and R peaks at 360 Hz, where the training beats were cut.

    Beats are every third 360 Hz sample from the R peak. At another rate the nearest
    samples and the rounded R peak drift by up to half an input sample, and the models
    are sensitive to a start 1-2 samples off; so the signal is resampled to 360 Hz
    (polyphase filter) and each peak is re-placed on the largest deflection within one
    input sample. This keeps ≥ 99 % of classes unchanged from 128 to 500 Hz.

    Returns
    -------
    x360 : ndarray, shape (n_samples * 360 / fs,)
    fs : float
        360.0 (or ``fs`` unchanged when it already is).
    peaks360 : ndarray of int, shape (n_peaks,)
    """
    if abs(fs - TRAINING_FS) < 1e-9:
        return x, fs, peaks
    from fractions import Fraction

    from scipy.signal import resample_poly

    from .detect import refine_peaks

    ratio = Fraction(TRAINING_FS / fs).limit_denominator(1000)
    up = resample_poly(x, ratio.numerator, ratio.denominator)
    mapped = np.clip(np.rint(peaks * (TRAINING_FS / fs)).astype(np.int64), 0, len(up) - 1)
    refined = refine_peaks(up, TRAINING_FS, mapped, window_s=1.0 / fs)
    if len(refined) != len(mapped):  # two peaks merged: keep the one-to-one mapping
        refined = mapped
    return up, TRAINING_FS, refined


def beats_table(peaks: np.ndarray, fs: float | None, proba: np.ndarray) -> pd.DataFrame:
    """The per-beat output table from peaks (samples) and probabilities (n, 5)."""
    label = proba.argmax(1)
    table = pd.DataFrame(
        {
            "sample": peaks.astype(np.int64),
            "time_s": peaks / fs if fs else np.full(len(peaks), np.nan),
            "label": label,
            "class": np.asarray(CLASS_NAMES)[label],
        }
    )
    for k, name in enumerate(CLASS_NAMES):
        table[f"prob_{name}"] = proba[:, k].astype(np.float32)
    return table


def summarize(table: pd.DataFrame, fs: float | None) -> str:
    """A short text summary: beats per class and the median heart rate."""
    counts = table["class"].value_counts().reindex(CLASS_NAMES, fill_value=0)
    parts = [f"{len(table)} beats: " + ", ".join(f"{c} {n}" for c, n in counts.items())]
    if fs and len(table) > 1:
        rr = np.diff(table["sample"].to_numpy()) / fs
        parts.append(f"median heart rate {60.0 / np.median(rr):.0f} bpm")
    return "; ".join(parts)


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write the per-beat table as CSV, atomically."""
    with atomic_open(path, "w", newline="") as handle:
        table.to_csv(handle, index=False, float_format="%.5f")


def plot_strip(
    x: np.ndarray, fs: float, table: pd.DataFrame, path: str | Path, seconds: float = 20.0
) -> Path:
    """Draw the first ``seconds`` of the signal with each beat marked by its class."""
    from matplotlib.figure import Figure

    n = min(len(x), int(seconds * fs))
    t = np.arange(n) / fs
    fig = Figure(figsize=(12, 3))
    ax = fig.subplots()
    ax.plot(t, x[:n], color="0.3", lw=0.8)
    colours = dict(
        zip(
            CLASS_NAMES,
            ("tab:green", "tab:orange", "tab:red", "tab:purple", "tab:blue"),
            strict=True,
        )
    )
    shown = table[table["sample"] < n]
    for name in CLASS_NAMES:
        rows = shown[shown["class"] == name]
        if len(rows):
            s = rows["sample"].to_numpy()
            ax.scatter(s / fs, x[s], color=colours[name], s=25, label=name, zorder=3)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mV")
    ax.legend(loc="upper right", ncol=5, fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return Path(path)


def read_input(path: Path, fs: float | None, lead: str | None):
    """Read a recording for prediction.

    Returns
    -------
    kind : {"record", "samples", "beats"}
        ``"samples"`` for CSV/NPY files and for EDF files (read with ``wfdb``'s EDF
        reader, lead picked as in WFDB records, rate from the file).
    data : ndarray
        Signal (n_samples,) in mV, or beats (n, 187) for a Kaggle-format CSV.
    fs : float or None
    extra : dict
        ``record_path`` for WFDB records (to read annotations), ``lead_note``.
    """
    suffix = path.suffix.lower()
    if suffix in (".hea", "") or path.with_suffix(".hea").exists() and suffix in (".dat",):
        from .records import UNCALIBRATED_UNITS, lead_names, lead_units, read_signal

        record = path.with_suffix("")
        names = lead_names(record)  # the header picks the lead: only that one is read
        idx, note = pick_lead(names, lead or "MLII")
        if lead and note:
            raise EcgError(f"lead {lead} not in record (leads: {', '.join(names)})", path)
        sig, rec_fs, _ = read_signal(record, channels=[idx], allow_uncalibrated=True)
        units = lead_units(record)[idx]
        extra = {"record_path": record, "lead_note": note, "units": units}
        if units == UNCALIBRATED_UNITS:
            extra["units_note"] = (
                f"lead {names[idx]} is uncalibrated (ADC gain 0): read in digital units "
                "(adu), amplitudes are arbitrary"
            )
        return "record", sig[:, 0], rec_fs, extra
    if suffix == ".edf":
        from .records import read_edf

        sig, rec_fs, names = read_edf(path)
        idx, note = pick_lead(names, lead or "MLII")
        if lead and note:
            raise EcgError(f"lead {lead} not in record (leads: {', '.join(names)})", path)
        return "samples", sig[:, idx].copy(), rec_fs, {"lead_note": note}
    if not path.exists():
        raise EcgError("file not found", path)
    if suffix == ".npy":
        data = _read_npy(path)
    elif suffix in (".csv", ".txt"):
        data = _read_samples_csv(path)
    else:
        raise EcgError("unsupported file type; give a WFDB record, .edf, .csv or .npy", path)
    if data.ndim == 2 and data.shape[1] == BEAT_LENGTH + 1 and fs is None:
        from .sources import load_kaggle_csv

        x, _ = load_kaggle_csv(path)
        return "beats", x, None, {}
    if fs is None:
        raise EcgError("--fs is required for a file of samples", path)
    if data.ndim == 2:
        data = data[:, 0]
    return "samples", data, fs, {}


def _read_npy(path: Path) -> np.ndarray:
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise EcgError(f"not a readable NumPy array: {exc}", path) from exc
    if data.dtype.kind not in "fiu" or data.ndim not in (1, 2) or data.size == 0:
        raise EcgError(
            f"expected a non-empty 1-D or 2-D numeric array, got {data.dtype} {data.shape}", path
        )
    return data.astype(np.float64)


def _read_samples_csv(path: Path) -> np.ndarray:
    try:
        data = pd.read_csv(path, header=None).to_numpy()
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise EcgError(f"cannot parse CSV: {str(exc).splitlines()[0]}", path) from exc
    if data.dtype.kind not in "fiu":
        raise EcgError("CSV holds text; expected numbers only (no header)", path)
    if data.size == 0:
        raise EcgError("CSV is empty", path)
    return data.astype(np.float64).squeeze(axis=1) if data.shape[1] == 1 else data
