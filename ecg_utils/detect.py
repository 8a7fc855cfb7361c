"""R-peak detection for unannotated recordings at any sampling rate.

The default detector, ``"pt_adaptive"``, is a Pan-Tompkins-style detector written
for this package and chosen by ``bench/detection.py`` (all 48 MIT-BIH records,
150 ms tolerance; see ``results/detection.json``). It

1. resamples the signal to 250 Hz,
2. band-passes it (8-20 Hz), takes the absolute slope and integrates it over
   120 ms, which gives one hump per QRS complex,
3. keeps humps at least 200 ms apart as candidates and labels each QRS or noise
   with adaptive signal/noise levels, search-back after a long pause, and two rules
   for neighbours closer than 300 ms (a T wave has less than half the slope of the
   QRS before it; a P wave or artefact just before a much larger QRS is replaced).

Every detector's output is then moved onto the R peak the way the MIT-BIH
annotations place it (:func:`refine_peaks`): the largest absolute value of the
5-20 Hz band-passed signal within +-75 ms. The beat segmentation starts each beat
exactly at this point, so the refinement matters more than the detector's own
fiducial point.

Measured on MIT-BIH (109,494 beats, 2 CPU cores): Se 99.84 %, +P 99.38 %
(99.76 % without the ventricular flutter episodes of record 207, whose flutter
waves are detected but annotated as non-beats), 95 % of beats within +-1 sample
(2.8 ms) of the annotation, about 0.05 s per 30-minute record. The parameters
were tuned on MIT-BIH itself, so expect slightly lower accuracy elsewhere. Known
weakness of the refinement: wide ventricular beats with a slow upstroke and a
steep downstroke (record 208) land on the downstroke, up to 90 ms late.

Other detectors (neurokit2 and wfdb's XQRS) are available by name for comparison;
see :data:`DETECTORS`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import signal as sps
from scipy.ndimage import maximum_filter1d, uniform_filter1d

from ._io import EcgError, check_fs

DETECTORS = (
    "pt_adaptive",
    "neurokit",
    "pantompkins1985",
    "hamilton2002",
    "elgendi2010",
    "kalidas2017",
    "rodrigues2021",
    "xqrs",
)
"""Supported detector names: this module's own detector, six neurokit2 methods
(each after ``nk.ecg_clean`` with its matching cleaning method, else ``"neurokit"``)
and wfdb's XQRS."""

DEFAULT_METHOD = "pt_adaptive"
"""Detector used when none is named: the most accurate in ``bench/detection.py``
(it is also one of the fastest)."""

"""Accepted sampling rates in Hz (tested from 100 to 1000 Hz)."""
MIN_DURATION_S = 2.0
"""Shortest signal accepted, in seconds."""
FLAT_MV = 1e-3
"""A signal whose peak-to-peak range is below this (mV) is called flat."""
MAX_BLOCK_S = 3600.0
"""Longer signals are processed in chunks by :func:`detect_r_peaks_chunked`."""

FS_DETECT = 250.0
"""Rate in Hz at which ``pt_adaptive`` works (the signal is resampled to it)."""
REFRACTORY_S = 0.2
"""Minimum distance between two detected beats, in seconds."""
REFINE_WINDOW_S = 0.075
"""Half-width of the refinement search window, in seconds."""
REFINE_BAND_HZ = (5.0, 20.0)
"""Band of the signal whose largest absolute value marks the R peak, in Hz."""

_BAND_HZ = (8.0, 20.0)
_INTEGRATION_S = 0.12
_SLOPE_HALF_S = 0.075
_CLOSE_S = 0.3
_THRESHOLD_FRACTION = 0.4
_SLOPE_RATIO = 0.5
_REPLACE_RATIO = 0.6
_SEARCHBACK_RR = 1.66
_SEARCHBACK_FRACTION = 0.5
_LEARN_S = 8.0
_NK_CLEANERS = ("neurokit", "pantompkins1985", "hamilton2002", "elgendi2010")


# --------------------------------------------------------------------------- API


def detect_r_peaks(
    signal: np.ndarray, fs: float, method: str = DEFAULT_METHOD, refine: bool = True
) -> np.ndarray:
    """Detect R peaks in one ECG lead.

    Parameters
    ----------
    signal : array_like, shape (n_samples,)
        One lead in mV. NaN/inf samples (gaps) are filled by linear interpolation.
    fs : float
        Sampling rate in Hz (50-10000; tested 100-1000).
    method : str
        One of :data:`DETECTORS`.
    refine : bool
        Move each detection onto the R peak as MIT-BIH annotates it
        (:func:`refine_peaks`).

    Returns
    -------
    ndarray, shape (n_beats,), int64
        Sorted R-peak positions in samples at ``fs``.

    Raises
    ------
    EcgError
        For a signal that is not 1-D, shorter than 2 s, flat or without finite
        samples, a sampling rate out of range, or an unknown method.
    """
    x = _as_1d(signal)
    fs = check_fs(fs)
    _check_method(method)
    if len(x) > MAX_BLOCK_S * fs:
        return detect_r_peaks_chunked(x, fs, method=method, refine=refine)
    return _detect_block(_prepare(x, fs), fs, method, refine)


def detect_r_peaks_chunked(
    signal: np.ndarray,
    fs: float,
    chunk_s: float = 600.0,
    overlap_s: float = 5.0,
    method: str = DEFAULT_METHOD,
    refine: bool = True,
) -> np.ndarray:
    """Detect R peaks chunk by chunk so memory stays bounded (24-hour Holter records).

    Each chunk is processed with ``overlap_s`` of context on both sides and keeps
    only the peaks inside its own span; a peak closer than 200 ms to the last peak
    of the previous chunk is dropped as a duplicate. Chunks that are flat or hold no
    finite samples (electrode off) give no peaks; an error is raised only when all are.

    Parameters
    ----------
    signal : array_like, shape (n_samples,)
        One lead in mV; a ``np.memmap`` is read one chunk at a time.
    fs : float
        Sampling rate in Hz.
    chunk_s, overlap_s : float
        Chunk length and context on each side, in seconds.
    method : str
        One of :data:`DETECTORS`.
    refine : bool
        See :func:`detect_r_peaks`.

    Returns
    -------
    ndarray, shape (n_beats,), int64
        Sorted R-peak positions in samples at ``fs``.
    """
    x = _as_1d(signal)
    fs = check_fs(fs)
    _check_method(method)
    if chunk_s < 2 * MIN_DURATION_S or overlap_s < 0:
        raise EcgError(f"chunk_s must be >= {2 * MIN_DURATION_S} s and overlap_s >= 0")
    _check_length(len(x), fs)
    step, pad = int(round(chunk_s * fs)), int(round(overlap_s * fs))
    parts: list[np.ndarray] = []
    for start in range(0, len(x), step):
        peaks = _detect_chunk(x, fs, start, min(start + step, len(x)), pad, method, refine)
        if peaks is not None:
            parts.append(_drop_duplicates(parts[-1] if parts else None, peaks, fs))
    if not parts:
        raise EcgError("signal is flat or has no finite samples: no beats can be detected")
    return np.concatenate(parts).astype(np.int64)


def refine_peaks(
    signal: np.ndarray,
    fs: float,
    peaks: np.ndarray,
    window_s: float = REFINE_WINDOW_S,
    band_hz: tuple[float, float] = REFINE_BAND_HZ,
) -> np.ndarray:
    """Move detections onto the R peak as the MIT-BIH annotations place it.

    Each peak moves to the largest absolute value of the band-passed signal
    within +-``window_s``, which lands on the R wave's peak, or on the deepest
    deflection of a negative QRS. On MIT-BIH this reproduces the reference
    position within +-1 sample (2.8 ms) for 95 % of beats.

    Parameters
    ----------
    signal : array_like, shape (n_samples,)
        One lead in mV at ``fs``; NaN gaps are interpolated.
    fs : float
        Sampling rate in Hz.
    peaks : array_like of int, shape (n_peaks,)
        Approximate R-peak positions in samples.
    window_s : float
        Search half-width in seconds.
    band_hz : (float, float)
        Band-pass edges in Hz (the upper edge is capped below Nyquist).

    Returns
    -------
    ndarray, shape (n_unique,), int64
        Sorted, de-duplicated refined positions in samples.
    """
    fs = check_fs(fs)
    x = _prepare(_as_1d(signal), fs)
    peaks = _clean_peaks(peaks, len(x))
    if len(peaks) == 0:
        return peaks
    y = np.abs(_bandpass(x, fs, band_hz))
    offsets = np.arange(-int(round(window_s * fs)), int(round(window_s * fs)) + 1)
    out = []
    for batch in np.array_split(peaks, max(1, len(peaks) // 10_000)):
        idx = np.clip(batch[:, None] + offsets[None, :], 0, len(x) - 1)
        out.append(idx[np.arange(len(batch)), np.argmax(y[idx], axis=1)])
    return np.unique(np.concatenate(out)).astype(np.int64)


def match_pairs(
    ref: np.ndarray, test: np.ndarray, fs: float, tolerance_s: float = 0.15
) -> tuple[np.ndarray, np.ndarray]:
    """Match two sets of beat positions one-to-one, closest pairs first.

    Parameters
    ----------
    ref, test : array_like of int
        Beat positions in samples (reference annotations, detections).
    fs : float
        Sampling rate in Hz.
    tolerance_s : float
        Largest distance of a matched pair, in seconds.

    Returns
    -------
    ref_idx, test_idx : ndarray of int64
        Indices of the matched pairs into the sorted ``ref`` and ``test``.
    """
    ref = np.sort(np.asarray(ref, dtype=np.int64))
    test = np.sort(np.asarray(test, dtype=np.int64))
    tol = tolerance_s * fs
    lo = np.searchsorted(test, ref - tol, side="left")
    hi = np.searchsorted(test, ref + tol, side="right")
    counts = hi - lo
    r_idx = np.repeat(np.arange(len(ref)), counts)
    t_idx = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    order = np.argsort(np.abs(test[t_idx] - ref[r_idx]), kind="stable")
    used_r = np.zeros(len(ref), dtype=bool)
    used_t = np.zeros(len(test), dtype=bool)
    keep = []
    for k in order.tolist():
        r, t = r_idx[k], t_idx[k]
        if not (used_r[r] or used_t[t]):
            used_r[r] = used_t[t] = True
            keep.append(k)
    keep = np.sort(np.asarray(keep, dtype=np.int64))
    return r_idx[keep].astype(np.int64), t_idx[keep].astype(np.int64)


def match_peaks(
    ref: np.ndarray, test: np.ndarray, fs: float, tolerance_s: float = 0.15
) -> tuple[int, int, int]:
    """Count true positives, false positives and false negatives of a detection.

    Parameters
    ----------
    ref, test : array_like of int
        Reference and detected beat positions in samples.
    fs : float
        Sampling rate in Hz.
    tolerance_s : float
        Matching tolerance in seconds (150 ms in ANSI/AAMI EC57).

    Returns
    -------
    tp, fp, fn : int
        Sensitivity is ``tp / (tp + fn)``, positive predictivity ``tp / (tp + fp)``.
    """
    r_idx, _ = match_pairs(ref, test, fs, tolerance_s)
    tp = len(r_idx)
    return tp, len(np.asarray(test)) - tp, len(np.asarray(ref)) - tp


# ------------------------------------------------------------------ validation


def _as_1d(signal: np.ndarray) -> np.ndarray:
    x = np.asarray(signal)
    if x.ndim != 1:
        raise EcgError(f"expected a 1-D signal (one lead), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise EcgError(f"signal must be numeric, got dtype {x.dtype}")
    return x


def _check_method(method: str) -> None:
    if method not in DETECTORS:
        raise EcgError(f"unknown R-peak detector {method!r}; choose one of {', '.join(DETECTORS)}")


def _check_length(n: int, fs: float) -> None:
    if n < MIN_DURATION_S * fs:
        raise EcgError(
            f"signal is too short: {n / fs:.2f} s ({n} samples at {fs:g} Hz); "
            f"at least {MIN_DURATION_S:g} s is needed to detect beats"
        )


def _prepare(x: np.ndarray, fs: float) -> np.ndarray:
    """Float64 copy of a 1-D signal with gaps interpolated; rejects short/flat input."""
    _check_length(len(x), fs)
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).any():
        raise EcgError("signal has no finite samples: no beats can be detected")
    x = fill_gaps(x)
    if np.ptp(x) < FLAT_MV:
        raise EcgError("signal is flat: no beats can be detected")
    return x


def fill_gaps(x: np.ndarray) -> np.ndarray:
    """A 1-D signal with its non-finite samples (gaps) linearly interpolated.

    The array itself when it has no gap; zeros when it has no finite sample at all.
    """
    good = np.isfinite(x)
    if good.all():
        return x
    if not good.any():
        return np.zeros(len(x))
    idx = np.arange(len(x))
    return np.interp(idx, idx[good], x[good])


def _clean_peaks(peaks: np.ndarray, n: int) -> np.ndarray:
    peaks = np.asarray(peaks, dtype=np.float64).ravel()
    peaks = peaks[np.isfinite(peaks)].astype(np.int64)
    return np.unique(peaks[(peaks >= 0) & (peaks < n)])


# -------------------------------------------------------------------- blocks


def _detect_block(x: np.ndarray, fs: float, method: str, refine: bool) -> np.ndarray:
    """Detect (and refine) peaks in a prepared float64 signal."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            peaks = _clean_peaks(_RUNNERS[method](x, fs), len(x))
    except EcgError:
        raise
    except Exception as exc:  # neurokit2/wfdb fail in many ways on odd input
        text = str(exc).strip().splitlines()
        raise EcgError(
            f"R-peak detector {method!r} failed: {text[0] if text else type(exc).__name__}"
        ) from exc
    return refine_peaks(x, fs, peaks) if refine and len(peaks) else peaks


def _detect_chunk(
    x: np.ndarray, fs: float, start: int, stop: int, pad: int, method: str, refine: bool
) -> np.ndarray | None:
    """Peaks in ``[start, stop)`` found with ``pad`` samples of context; None if no signal."""
    hi = min(len(x), stop + pad)
    lo = max(0, min(start - pad, hi - math.ceil(MIN_DURATION_S * fs)))
    seg = np.asarray(x[lo:hi], dtype=np.float64)
    good = np.isfinite(seg)
    if not good.any() or np.ptp(seg[good]) < FLAT_MV:
        return None
    peaks = _detect_block(_prepare(seg, fs), fs, method, refine) + lo
    return peaks[(peaks >= start) & (peaks < stop)]


def _drop_duplicates(previous: np.ndarray | None, peaks: np.ndarray, fs: float) -> np.ndarray:
    """Drop peaks of a chunk that repeat the last peak of the chunk before."""
    if previous is None or len(previous) == 0:
        return peaks
    return peaks[peaks - previous[-1] >= REFRACTORY_S * fs]


# --------------------------------------------------------- pt_adaptive detector


def _resample(x: np.ndarray, fs: float, fs_out: float) -> tuple[np.ndarray, float]:
    """Resample to ``fs_out`` Hz; return the signal and input samples per output sample."""
    if fs == fs_out:
        return x, 1.0
    ratio = Fraction(fs_out / fs).limit_denominator(1000)
    y = sps.resample_poly(x, ratio.numerator, ratio.denominator)
    return y, ratio.denominator / ratio.numerator


def _bandpass(x: np.ndarray, fs: float, band_hz: tuple[float, float]) -> np.ndarray:
    """Zero-phase 2nd-order Butterworth band-pass (upper edge capped at 0.45 fs)."""
    lo, hi = band_hz[0], min(band_hz[1], 0.45 * fs)
    sos = sps.butter(2, [lo, hi], btype="bandpass", fs=fs, output="sos")
    return sps.sosfiltfilt(sos, x)


def _qrs_feature(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Absolute slope of the 8-20 Hz band and its 120 ms moving average."""
    slope = np.abs(np.gradient(_bandpass(x, fs, _BAND_HZ)))
    energy = uniform_filter1d(slope, int(round(_INTEGRATION_S * fs)))
    return slope, energy


def _pt_adaptive(x: np.ndarray, fs: float) -> np.ndarray:
    """Pan-Tompkins-style detection at 250 Hz; returns positions at ``fs``."""
    xr, scale = _resample(x, fs, FS_DETECT)
    slope, energy = _qrs_feature(xr, FS_DETECT)
    cand, _ = sps.find_peaks(energy, distance=int(REFRACTORY_S * FS_DETECT))
    if len(cand) == 0:
        return np.zeros(0, np.int64)
    half = int(round(_SLOPE_HALF_S * FS_DETECT))
    steepness = maximum_filter1d(slope, 2 * half + 1)[cand]
    beats = _classify(cand, energy[cand], steepness, FS_DETECT)
    return np.rint(cand[beats] * scale).astype(np.int64)


@dataclass
class _Levels:
    """Running signal and noise levels of the integrated slope (Pan-Tompkins)."""

    signal: float
    noise: float

    def threshold(self) -> float:
        return self.noise + _THRESHOLD_FRACTION * (self.signal - self.noise)

    def learn_signal(self, value: float, weight: float = 0.125) -> None:
        self.signal += weight * (value - self.signal)

    def learn_noise(self, value: float) -> None:
        self.noise += 0.125 * (value - self.noise)


def _initial_levels(cand: np.ndarray, vals: np.ndarray, fs: float) -> _Levels:
    first = vals[: max(1, int(np.searchsorted(cand, _LEARN_S * fs)))]
    return _Levels(0.5 * float(np.percentile(first, 90)), 0.5 * float(np.median(first)))


def _classify(cand: np.ndarray, vals: np.ndarray, steep: np.ndarray, fs: float) -> np.ndarray:
    """Label candidates QRS or noise; return the indices of the QRS candidates."""
    levels = _initial_levels(cand, vals, fs)
    close = int(_CLOSE_S * fs)
    beats: list[int] = []
    rr: list[int] = []
    for j in range(len(cand)):
        _search_back(j, cand, vals, beats, rr, levels, fs)
        v = vals[j]
        if v <= levels.threshold():
            levels.learn_noise(v)
            continue
        if beats and cand[j] - cand[beats[-1]] < close:
            last = beats[-1]
            if steep[j] < _SLOPE_RATIO * steep[last]:  # T wave after the QRS
                levels.learn_noise(v)
                continue
            if steep[last] < _SLOPE_RATIO * steep[j] or vals[last] < _REPLACE_RATIO * v:
                beats[-1] = j  # the previous one was a P wave or artefact
                if len(beats) > 1:
                    rr[-1] = int(cand[j] - cand[beats[-2]])
                continue
        _add_beat(j, cand, beats, rr)
        levels.learn_signal(v)
    return np.asarray(beats, dtype=np.int64)


def _add_beat(j: int, cand: np.ndarray, beats: list[int], rr: list[int]) -> None:
    if beats:
        rr.append(int(cand[j] - cand[beats[-1]]))
    beats.append(j)


def _search_back(
    j: int,
    cand: np.ndarray,
    vals: np.ndarray,
    beats: list[int],
    rr: list[int],
    levels: _Levels,
    fs: float,
) -> None:
    """Before candidate ``j``, recover beats missed in a pause longer than 1.66 RR."""
    refractory = REFRACTORY_S * fs
    while rr:
        last = beats[-1]
        recent = rr[-8:]
        if cand[j] - cand[last] <= _SEARCHBACK_RR * sum(recent) / len(recent):
            return
        between = np.arange(last + 1, j)
        ok = (
            (cand[between] - cand[last] >= refractory)
            & (cand[j] - cand[between] >= refractory)
            & (vals[between] > _SEARCHBACK_FRACTION * levels.threshold())
        )
        if not ok.any():
            return
        q = int(between[ok][np.argmax(vals[between[ok]])])
        _add_beat(q, cand, beats, rr)
        levels.learn_signal(vals[q], weight=0.25)


# ------------------------------------------------------- third-party detectors


def _neurokit(method: str):
    def run(x: np.ndarray, fs: float) -> np.ndarray:
        import neurokit2 as nk

        cleaner = method if method in _NK_CLEANERS else "neurokit"
        cleaned = nk.ecg_clean(x, sampling_rate=fs, method=cleaner)
        _, info = nk.ecg_peaks(cleaned, sampling_rate=fs, method=method)
        return np.asarray(info["ECG_R_Peaks"])

    return run


def _xqrs(x: np.ndarray, fs: float) -> np.ndarray:
    from wfdb import processing

    return np.asarray(processing.xqrs_detect(sig=x, fs=fs, verbose=False))


_RUNNERS = {
    "pt_adaptive": _pt_adaptive,
    **{m: _neurokit(m) for m in DETECTORS if m not in ("pt_adaptive", "xqrs")},
    "xqrs": _xqrs,
}
