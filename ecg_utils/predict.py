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
    RELATIVE_SET,
    feature_matrix,
    rr_features,
    segment_beats,
    waveform_length,
    wide_windows,
)
from .checkpoint import LoadedModel, load_model
from .device import on_device
from .inference import DEFAULT_BATCH_SIZE, predict_proba
from .quality import QualityRule, SignalQuality, assess_quality, gate_peaks

CHUNK_BEATS = 50_000
"""Beats segmented at a time: bounds memory on long recordings (about 40 MB a chunk)."""
COLUMNS = ["sample", "time_s", "label", "class"] + [f"prob_{c}" for c in CLASS_NAMES]
COLUMNS += ["quality"]
"""Columns of a beat table (:func:`beats_table`, :func:`classify_record`)."""
UNREADABLE_LABEL = 4
"""Label of a beat in a noisy window: Q (unclassifiable), never V or S."""


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
    quality: bool | QualityRule = True,
    keep_noisy: bool = False,
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
    quality : bool or QualityRule
        Judge the lead's signal quality (:mod:`ecg_utils.quality`, the default rule when
        True): beats in noisy 10-s windows are marked ``noisy`` and labelled Q, and
        detected peaks there are kept only when another detector also found them or they
        resemble a neighbouring beat. False: no quality check (``quality`` column
        ``"unassessed"``).
    keep_noisy : bool
        Keep the classifier's label for beats in noisy windows (they stay marked
        ``noisy``).

    Returns
    -------
    pandas.DataFrame
        One row per beat: ``sample``, ``time_s``, ``label`` (0–4), ``class``
        (N/S/V/F/Q), ``prob_N`` … ``prob_Q`` (what the model said, also for a beat
        labelled Q because it is unreadable) and ``quality`` (``good``/``noisy``).
    """
    return classify_with_quality(
        signal,
        fs,
        r_peaks,
        weights,
        lead,
        batch_size,
        sensitivity,
        adaptation,
        device,
        quality,
        keep_noisy,
    )[0]


def classify_with_quality(
    signal: np.ndarray,
    fs: float,
    r_peaks: np.ndarray | None = None,
    weights: str | Path | LoadedModel | None = None,
    lead: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sensitivity: str = "balanced",
    adaptation: bool = True,
    device: str = "auto",
    quality: bool | QualityRule = True,
    keep_noisy: bool = False,
) -> tuple[pd.DataFrame, SignalQuality | None]:
    """:func:`classify_record`, and the lead's :class:`~ecg_utils.quality.SignalQuality`.

    The parameters are :func:`classify_record`'s. The quality is None when ``quality``
    is False; its noisy intervals (``.intervals()``) are what the Holter summary leaves
    out.
    """
    from .operating import with_operating_point

    fs = check_fs(fs)
    loaded = with_operating_point(resolve_weights(weights), sensitivity)
    x = _one_lead(signal, lead)
    peaks = recording_peaks(x, fs, r_peaks)
    judged = None
    if quality:
        rule = quality if isinstance(quality, QualityRule) else QualityRule()
        judged = assess_quality(x, fs, peaks, rule=rule)
        if r_peaks is None and rule.gate:
            peaks = gate_peaks(peaks, judged, rule)
    peaks, beats, feats = recording_inputs(signal, fs, peaks, lead, loaded.feature_set)
    if len(peaks) == 0:
        empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in COLUMNS[:-1]})
        empty["quality"] = pd.Series(dtype="object")
        return empty, judged
    model = on_device(loaded.model, device)
    proba = recording_proba(loaded, model, beats, feats, peaks, fs, adaptation, batch_size)
    table = beats_table(peaks, fs, proba)
    if judged is None:
        return table, None
    noisy = judged.noisy_beats(peaks)
    table["quality"] = np.where(noisy, "noisy", "good")
    if not keep_noisy and noisy.any():
        table.loc[noisy, "label"] = UNREADABLE_LABEL
        table.loc[noisy, "class"] = CLASS_NAMES[UNREADABLE_LABEL]
    return table, judged


def recording_peaks(x: np.ndarray, fs: float, r_peaks: np.ndarray | None) -> np.ndarray:
    """The R peaks a recording is classified at: detected when ``r_peaks`` is None, else
    the given ones sorted, deduplicated and inside the lead (samples at ``fs``)."""
    if r_peaks is None:
        from .detect import detect_r_peaks

        return detect_r_peaks(x, fs)
    peaks = np.unique(np.asarray(r_peaks, dtype=np.int64))
    return peaks[(peaks >= 0) & (peaks < len(x))]


def recording_proba(
    loaded: LoadedModel,
    model,
    beats: np.ndarray,
    feats: np.ndarray | None,
    peaks: np.ndarray,
    fs: float,
    adaptation: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> np.ndarray:
    """Class probabilities of a recording's beats, shape (n_beats, 5), as ``predict`` gives
    them: with the unsupervised adaptation the weights' metadata names when ``adaptation``.

    ``model`` is ``loaded.model``, possibly moved to a device; ``beats`` and ``feats`` come
    from :func:`recording_inputs`, ``peaks`` in samples at ``fs`` Hz.
    """
    methods = loaded.meta.get("adaptation") if adaptation else None
    if not methods:
        return predict_proba(model, beats, feats, batch_size=batch_size)
    from .unsupervised import adapted_proba

    options = loaded.meta.get("pseudo_labels")
    return adapted_proba(model, beats, feats, methods, rr_features(peaks, fs), 0, options)


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
    peaks = recording_peaks(x, fs, r_peaks)
    if len(peaks) == 0:
        return peaks, np.zeros((0, BEAT_LENGTH), np.float32), None
    x_seg, fs_seg, peaks_seg = at_training_rate(x, fs, peaks)
    beats = segment_in_chunks(x_seg, fs_seg, peaks_seg)
    if feature_set == RELATIVE_SET:
        # the relative features come from every lead at the recording's own rate (they
        # are scale-free and time-based: no resampling); the 120 Hz beats still serve
        # families, figures and explanations
        return peaks, beats, relative_inputs(signal, fs, peaks, lead)
    return peaks, beats, recording_features(feature_set, beats, x_seg, fs_seg, peaks_seg)


def relative_inputs(signal: np.ndarray, fs: float, peaks: np.ndarray, lead: int) -> np.ndarray:
    """Relative features of a recording: its rhythm, the classified lead, one other lead.

    Parameters
    ----------
    signal : ndarray, shape (n_samples,) or (n_samples, n_leads)
        Any units, at ``fs`` Hz.
    fs : float
        Sampling rate in Hz.
    peaks : ndarray of int, shape (n_beats,)
        R peaks at ``fs``.
    lead : int
        Column classified; the first other column is the second lead (NaN columns when
        there is none: the model then reads one lead).

    Returns
    -------
    ndarray, shape (n_beats, 103), float32
    """
    from .relative import RELATIVE_LEADS, relative_features

    sig = np.asarray(signal, dtype=np.float64)
    sig = sig[:, None] if sig.ndim == 1 else sig
    order = [lead] + [i for i in range(sig.shape[1]) if i != lead]
    return relative_features(sig[:, order], fs, peaks, n_leads=RELATIVE_LEADS)


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
    table["quality"] = "unassessed"  # classify_record judges it: good / noisy
    return table


HEART_RATE_BPM = (20.0, 300.0)
"""Median heart rates, in bpm, of a plausible recording; outside them ``--fs`` is wrong."""


def median_heart_rate(table: pd.DataFrame, fs: float | None) -> float | None:
    """Median heart rate in bpm over the beats of a table (None for fewer than two)."""
    if not fs or len(table) < 2:
        return None
    rr = np.diff(table["sample"].to_numpy()) / fs
    return 60.0 / float(np.median(rr))


def heart_rate_warning(table: pd.DataFrame, fs: float | None) -> str | None:
    """A warning when the median heart rate lies outside :data:`HEART_RATE_BPM`, else None.

    Such a rate over a whole recording means the sampling rate is wrong (a ``--fs`` off
    by a factor), not the heart.
    """
    rate = median_heart_rate(table, fs)
    lo, hi = HEART_RATE_BPM
    if rate is None or lo <= rate <= hi:
        return None
    return (
        f"median heart rate {rate:.0f} bpm is outside {lo:g}-{hi:g} bpm: is the sampling "
        f"rate ({fs:g} Hz) right?"
    )


def summarize(table: pd.DataFrame, fs: float | None) -> str:
    """A short text summary: beats per class and the median heart rate."""
    counts = table["class"].value_counts().reindex(CLASS_NAMES, fill_value=0)
    parts = [f"{len(table)} beats: " + ", ".join(f"{c} {n}" for c, n in counts.items())]
    if "quality" in table and (table["quality"] == "noisy").any():
        parts.append(f"{int((table['quality'] == 'noisy').sum())} in noisy stretches")
    rate = median_heart_rate(table, fs)
    if rate is not None:
        parts.append(f"median heart rate {rate:.0f} bpm")
    return "; ".join(parts)


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write the per-beat table as CSV, atomically."""
    with atomic_open(path, "w", newline="") as handle:
        table.to_csv(handle, index=False, float_format="%.5f")


def plot_window(n_samples: int, fs: float, start: float, seconds: float) -> tuple[int, int]:
    """The samples ``[lo, hi)`` of a strip from ``start`` s lasting ``seconds`` s (cut at
    the end of a recording of ``n_samples`` samples at ``fs`` Hz).

    Raises
    ------
    EcgError
        When ``seconds`` is not positive or ``start`` lies outside the recording.
    """
    duration = n_samples / fs
    if not (np.isfinite(seconds) and seconds > 0):
        raise EcgError(f"--plot-seconds must be a positive number of seconds, got {seconds:g}")
    if not (np.isfinite(start) and 0 <= start < duration):
        raise EcgError(f"--plot-start {start:g} s is outside the recording (0 to {duration:.1f} s)")
    lo = int(round(start * fs))
    return lo, min(n_samples, lo + max(int(round(seconds * fs)), 1))


CLASS_TITLES = {
    "N": "normal",
    "S": "supraventricular ectopic",
    "V": "ventricular ectopic",
    "F": "fusion",
    "Q": "unclassifiable",
}
"""The AAMI classes' names, for legends."""


def plot_strip(
    x: np.ndarray,
    fs: float,
    table: pd.DataFrame,
    path: str | Path,
    seconds: float = 20.0,
    start: float = 0.0,
    title: str | None = None,
    units: str | None = "mV",
    noisy_s: np.ndarray | None = None,
) -> Path:
    """Draw a window of the signal with each beat marked by its class (PNG, atomically).

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
        The lead classified, at ``fs`` Hz.
    fs : float
        Sampling rate in Hz.
    table : pandas.DataFrame
        The beat table (:func:`classify_record`): ``sample`` and ``class``.
    path : path
        The PNG to write.
    seconds : float
        Length of the window in s (cut at the end of the recording).
    start : float
        Start of the window in s from the start of the recording.
    title : str, optional
        Usually the record's name; the window is added to it.
    units : str or None
        The y axis label (``"mV"``; ``"adu"`` for an uncalibrated record).
    noisy_s : ndarray, shape (k, 2), optional
        Noisy intervals in seconds (:meth:`~ecg_utils.quality.SignalQuality.intervals`),
        shaded grey.

    Raises
    ------
    EcgError
        When the window is empty: ``seconds`` not positive, ``start`` negative or past
        the end of the recording.
    """
    from matplotlib.figure import Figure

    duration = len(x) / fs
    if not (np.isfinite(seconds) and seconds > 0):
        raise EcgError(f"--plot-seconds must be a positive number of seconds, got {seconds:g}")
    if not (np.isfinite(start) and 0 <= start < duration):
        raise EcgError(f"--plot-start {start:g} s is outside the recording (0 to {duration:.1f} s)")
    lo = int(round(start * fs))
    hi = min(len(x), lo + max(int(round(seconds * fs)), 1))
    t = np.arange(lo, hi) / fs
    fig = Figure(figsize=(12, 3.2))
    ax = fig.subplots()
    ax.plot(t, x[lo:hi], color="0.3", lw=0.8)
    shaded = False
    for a, b in np.asarray(noisy_s if noisy_s is not None else [], float).reshape(-1, 2):
        if b > lo / fs and a < hi / fs:
            label = None if shaded else "noisy (beats labelled Q)"
            ax.axvspan(max(a, lo / fs), min(b, hi / fs), color="0.85", zorder=0, label=label)
            shaded = True
    colours = dict(
        zip(
            CLASS_NAMES,
            ("tab:green", "tab:orange", "tab:red", "tab:purple", "tab:blue"),
            strict=True,
        )
    )
    samples = table["sample"].to_numpy()
    shown = table[(samples >= lo) & (samples < hi)]
    for name in CLASS_NAMES:
        rows = shown[shown["class"] == name]
        if len(rows):
            s = rows["sample"].to_numpy()
            label = f"{name} {CLASS_TITLES[name]} ({len(rows)})"
            ax.scatter(s / fs, x[s], color=colours[name], s=25, label=label, zorder=3)
    window = f"{lo / fs:.1f}-{hi / fs:.1f} s"
    ax.set_title(f"{title}: {window}" if title else window, fontsize=10)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(units or "amplitude")
    ax.set_xlim(lo / fs, max(hi, lo + 1) / fs)
    if len(shown) or shaded:
        ax.legend(loc="upper right", ncol=6, fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return Path(path)


def read_input(path: Path, fs: float | None, lead: str | None, second_lead: bool = False):
    """Read a recording for prediction, as the ``predict`` command does.

    Parameters
    ----------
    path : Path
        A WFDB record (``.hea``, ``.dat`` or no suffix), an EDF/EDF+ file, a CSV of
        samples (header row, time column: :mod:`ecg_utils.samples`), a Kaggle-format
        CSV of beats (188 unnamed columns), or a ``.npy`` array of samples.
    fs : float or None
        ``--fs`` in Hz: required for a ``.npy`` and for a CSV without a time column;
        checked against the header of a WFDB or EDF file and against a CSV's time column
        (a mismatch is an error).
    lead : str or None
        ``--lead``: a lead or column name (case-insensitive) or a column index; None
        takes MLII, else lead II, else V1, else the first (:func:`~ecg_utils.samples.choose_lead`).
    second_lead : bool
        Also read the first other lead, when the recording has one, into
        ``extra["other_lead"]`` (the patient-relative models read two leads); otherwise
        only the classified lead is read.

    Returns
    -------
    kind : {"record", "samples", "beats"}
        ``"record"`` for WFDB records (annotations can be read), ``"samples"`` for EDF,
        CSV and NPY files, ``"beats"`` for a Kaggle-format CSV.
    data : ndarray
        Signal (n_samples,) in mV (``extra["units"]`` says otherwise), or beats
        (n, 187) for a Kaggle-format CSV.
    fs : float or None
        Sampling rate in Hz (None for beats).
    extra : dict
        ``record_path`` (WFDB records), ``lead`` (name of the lead read), ``lead_note``
        (which lead was used instead of the default), ``units`` (``"mV"``, ``"adu"``
        for an uncalibrated WFDB signal, or an EDF dimension kept as it is),
        ``units_note`` (uncalibrated signals), ``start_time`` (ISO 8601, from a WFDB
        or EDF header, or None) and, with ``second_lead``, ``other_lead`` (n_samples,) or
        None.

    Raises
    ------
    EcgError
        Naming the file, for anything it cannot read or an option that contradicts it.
    """
    from .samples import check_given_fs, choose_lead

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".hea", "") or path.with_suffix(".hea").exists() and suffix in (".dat",):
        from .records import UNCALIBRATED_UNITS, lead_names, lead_units, read_header, read_signal

        record = path.with_suffix("")
        info = read_header(record)
        check_given_fs(fs, info.fs, info.path, "header")
        names = lead_names(record)  # the header picks the lead: only that one is read
        idx, note = choose_lead(names, lead, info.path)
        channels = [idx] + _other(len(names), idx, second_lead)
        sig, rec_fs, _ = read_signal(record, channels=channels, allow_uncalibrated=True)
        units = lead_units(record)[idx]
        extra = {"record_path": record, "lead": names[idx], "lead_note": note, "units": units}
        extra["start_time"] = info.start
        if units == UNCALIBRATED_UNITS:
            extra["units_note"] = (
                f"lead {names[idx]} is uncalibrated (ADC gain 0): read in digital units "
                "(adu), amplitudes are arbitrary"
            )
        if second_lead:
            extra["other_lead"] = sig[:, 1].copy() if sig.shape[1] > 1 else None
        return "record", sig[:, 0].copy(), rec_fs, extra
    if suffix == ".edf":
        from .records import read_edf, read_edf_header

        header = read_edf_header(path)
        idx, note = choose_lead(list(header.labels), lead, path)
        check_given_fs(fs, header.fs[idx], path, "EDF header")
        others = [i for i in _other(len(header.labels), idx, second_lead)]
        others = [i for i in others if header.fs[i] == header.fs[idx]]
        sig, rec_fs, names = read_edf(path, channels=[idx] + others)
        extra = {"lead": names[0], "lead_note": note, "units": header.units[idx]}
        extra["start_time"] = header.start
        if second_lead:
            extra["other_lead"] = sig[:, 1].copy() if sig.shape[1] > 1 else None
        return "samples", sig[:, 0].copy(), rec_fs, extra
    if not path.exists():
        raise EcgError("file not found", path)
    if suffix == ".npy":
        from .samples import read_npy

        data = read_npy(path)
        if lead is not None and not lead.strip().isdigit():
            raise EcgError(
                f"a .npy has no lead names: give --lead as a column index, not {lead}", path
            )
        names = [f"column {i}" for i in range(1 if data.ndim == 1 else data.shape[1])]
        idx, note = choose_lead(names, lead, path)
        if fs is None:
            raise EcgError("--fs is required for a .npy of samples", path)
        x = data if data.ndim == 1 else data[:, idx]
        extra = {"lead": names[idx], "lead_note": note}
        if second_lead:
            other = _other(len(names), idx, True)
            extra["other_lead"] = data[:, other[0]].copy() if other else None
        return "samples", x, check_fs(fs, path), extra
    if suffix not in (".csv", ".txt"):
        raise EcgError("unsupported file type; give a WFDB record, .edf, .csv or .npy", path)
    from .samples import read_csv_table

    table = read_csv_table(path)
    kaggle = not table.header and table.data.shape[1] == BEAT_LENGTH + 1
    if kaggle and fs is None and lead is None and table.time is None:
        from .sources import load_kaggle_csv

        x, _ = load_kaggle_csv(path)
        return "beats", x, None, {}
    idx, note = choose_lead(table.names, lead, path, table.signals)
    if table.fs is not None:
        check_given_fs(fs, table.fs, path, f"time column {table.names[table.time]}")
        fs = table.fs
    elif fs is None:
        raise EcgError("--fs is required: the CSV has no time column", path)
    extra = {"lead": table.names[idx], "lead_note": note}
    if second_lead:
        other = [i for i in table.signals if i != idx]
        extra["other_lead"] = table.data[:, other[0]].copy() if other else None
    return "samples", table.data[:, idx].copy(), check_fs(fs, path), extra


def _other(n_leads: int, idx: int, wanted: bool) -> list[int]:
    """The second lead read beside lead ``idx``: the first other one, if wanted."""
    if not wanted:
        return []
    return [i for i in range(n_leads) if i != idx][:1]


def with_other_lead(x: np.ndarray, extra: dict) -> np.ndarray:
    """The classified lead, with the second lead beside it when :func:`read_input` read
    one: ``(n_samples,)`` or ``(n_samples, 2)`` (lead 0 is classified)."""
    other = extra.get("other_lead")
    return x if other is None else np.column_stack([x, other])


def wants_two_leads(loaded: LoadedModel) -> bool:
    """Whether a model reads a second lead (the patient-relative feature set)."""
    return loaded.feature_set == RELATIVE_SET
