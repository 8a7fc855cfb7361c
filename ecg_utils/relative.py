"""Patient-relative inputs: each beat judged against the patient's own rhythm and usual beat.

A model that reads a beat's absolute shape learns the shapes of its training patients:
every right-bundle-branch-block beat of DS1 is normal, so record 232's premature
supraventricular beats, all of that shape, are called normal. What transfers to a new
patient is how a beat differs from that patient's own rhythm and own dominant beat
(de Chazal et al. 2004 for the rhythm; Llamedo & Martinez 2011 for cross-database use).

Everything here is scale-free and needs no labels:

- **Rhythm** (:func:`rhythm_features`): every RR interval is clipped to
  :data:`RR_CLIP_S` (3 s) *before* any average, so that an unannotated gap (record 207
  has RR "intervals" of 7-100 s over its flutter stretches) cannot swamp a patient's
  averages; the previous and next RR are then divided by the average RR over +-5 minutes
  and over +-10 beats, and by the previous beat's own RR.
- **Morphology** (:func:`morphology_features`): each lead is band-passed (0.5-40 Hz),
  sampled at :data:`MORPH_OFFSETS_S` around the R peak (P wave, QRS, ST-T), divided by the
  recording's median QRS amplitude (so nothing is in millivolts and any gain gives the
  same numbers), and compared with the recording's dominant beat (the median of the
  family of beats most like its median beat): the beat itself (scaled), the beat minus
  the dominant beat, and four summary distances.

Shapes: ``signal`` is ``(n_samples,)`` or ``(n_samples, n_leads)`` at ``fs`` Hz, any
units; ``r_peaks`` are sample indices at ``fs``; every function returns one row per peak.
"""

from __future__ import annotations

import numpy as np

from ._io import EcgError, check_fs

RR_CLIP_S = 3.0
"""Every RR interval is clipped to this many seconds before any average or ratio."""
RR_FLOOR_S = 0.15
"""Shortest RR interval used (s): closer peaks are a detector's double count."""
LONG_WINDOW_S = 300.0
"""Half-width of the long rhythm average, in seconds (+-5 minutes)."""
LOCAL_BEATS = 10
"""Beats on each side in the local rhythm average (+-10 beats)."""

RHYTHM_COLUMNS = (
    "pre_over_long",
    "post_over_long",
    "pre_over_local",
    "post_over_local",
    "post_over_pre",
    "pre_over_previous_pre",
    "irregularity",
)
"""Columns of :func:`rhythm_features`."""

MORPH_OFFSETS_S = np.concatenate(
    [
        np.arange(-0.25, -0.05 + 1e-9, 0.05),  # P wave: 5 samples, 50 ms apart
        np.arange(-0.05, 0.10 + 1e-9, 1 / 60),  # QRS: 10 samples, 17 ms apart
        np.arange(0.15, 0.45 + 1e-9, 0.05),  # ST-T: 7 samples, 50 ms apart
    ]
)
"""Times around the R peak (s) where each lead is sampled: the beat's own P wave, its
QRS and its ST-T segment (22 samples, after de Chazal's QRS and T samples)."""
QRS_HALF_WIDTH_S = 0.1
"""Half-width (s) of the stretch around the R peak whose peak-to-peak amplitude, median
over the recording's beats, sets the recording's scale."""
MORPH_CLIP = 4.0
"""Scaled samples are clipped to +-this many median QRS amplitudes (artefacts)."""
DOMINANT_CORRELATION = 0.9
"""Correlation with the recording's median beat above which a beat is in the dominant
family (at least half the beats are always taken)."""
BAND_HZ = (0.5, 40.0)
"""Band-pass of each lead before sampling (baseline wander and high-frequency noise)."""

SUMMARY_COLUMNS = ("corr", "rms_qrs", "rms_st", "amplitude")
"""Per lead: correlation with the dominant beat, RMS difference over the QRS and over
the ST-T samples, and the beat's QRS amplitude over the recording's median."""


def clipped_rr(r_peaks: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Previous and next RR interval of each beat, in seconds, clipped to [0.15, 3] s.

    Parameters
    ----------
    r_peaks : ndarray, shape (n_beats,)
        Sorted R-peak positions in samples.
    fs : float
        Sampling rate in Hz.

    Returns
    -------
    pre, post : ndarray, shape (n_beats,), float64
        The first beat's previous RR and the last beat's next RR repeat their
        neighbour's; a single beat gets 1 s.
    """
    fs = check_fs(fs)
    peaks = np.asarray(r_peaks, dtype=np.float64)
    n = len(peaks)
    if n < 2:
        return np.ones(n), np.ones(n)
    if np.any(np.diff(peaks) < 0):
        raise EcgError("R peaks must be sorted")
    rr = np.clip(np.diff(peaks) / fs, RR_FLOOR_S, RR_CLIP_S)
    return np.concatenate([[rr[0]], rr]), np.concatenate([rr, [rr[-1]]])


def _window_mean(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean of ``values[lo[i]:hi[i]]`` for every i (cumulative sums, no loop)."""
    csum = np.concatenate([[0.0], np.cumsum(values)])
    return (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1)


def rhythm_features(r_peaks: np.ndarray, fs: float) -> np.ndarray:
    """Each beat's prematurity against the patient's own rhythm, scale-free.

    Parameters
    ----------
    r_peaks : ndarray, shape (n_beats,)
        Sorted R peaks of one recording, in samples.
    fs : float
        Sampling rate in Hz.

    Returns
    -------
    ndarray, shape (n_beats, 7), float32
        :data:`RHYTHM_COLUMNS`: previous and next RR over the mean RR of the beats within
        +-5 minutes, and over the mean of the +-10 beats around it; next over previous RR
        (compensatory pause); previous RR over the previous beat's previous RR; and the
        median absolute change of successive RRs over the local mean (0 for a regular
        rhythm, 0.1-0.3 in atrial fibrillation). All RRs are clipped to 3 s first.
    """
    from scipy.ndimage import median_filter

    pre, post = clipped_rr(r_peaks, fs)
    n = len(pre)
    if n == 0:
        return np.zeros((0, len(RHYTHM_COLUMNS)), np.float32)
    t = np.asarray(r_peaks, dtype=np.float64) / fs
    lo = np.searchsorted(t, t - LONG_WINDOW_S, side="left")
    hi = np.searchsorted(t, t + LONG_WINDOW_S, side="right")
    long = _window_mean(pre, lo, hi)
    idx = np.arange(n)
    local = _window_mean(
        pre, np.maximum(idx - LOCAL_BEATS, 0), np.minimum(idx + LOCAL_BEATS + 1, n)
    )
    previous_pre = np.concatenate([[pre[0]], pre[:-1]])
    steps = np.abs(np.diff(pre, prepend=pre[0]))
    irregular = median_filter(steps, size=2 * LOCAL_BEATS + 1, mode="nearest") / local
    cols = [pre / long, post / long, pre / local, post / local, post / pre, pre / previous_pre]
    return np.stack([*cols, irregular], axis=1).astype(np.float32)


def _band_passed(x: np.ndarray, fs: float) -> np.ndarray:
    """One lead band-passed to :data:`BAND_HZ` (zero phase); NaN gaps interpolated."""
    from scipy.signal import butter, sosfiltfilt

    x = np.asarray(x, dtype=np.float64)
    good = np.isfinite(x)
    if not good.all():
        if not good.any():
            raise EcgError("signal has no finite samples")
        idx = np.arange(len(x))
        x = np.interp(idx, idx[good], x[good])
    high = min(BAND_HZ[1], 0.45 * fs)
    sos = butter(2, [BAND_HZ[0], high], btype="bandpass", fs=fs, output="sos")
    if len(x) <= 3 * 2 * len(sos) + 1:  # too short to filter: only remove the mean
        return x - x.mean()
    return sosfiltfilt(sos, x)


def _sampled(x: np.ndarray, fs: float, peaks: np.ndarray, offsets_s: np.ndarray) -> np.ndarray:
    """``x`` at ``peaks + offsets`` (nearest sample; edges repeat), ``(n_beats, n_offsets)``."""
    offsets = np.rint(np.asarray(offsets_s) * fs).astype(np.int64)
    return x[np.clip(peaks[:, None] + offsets[None, :], 0, len(x) - 1)]


def qrs_amplitude(x: np.ndarray, fs: float, peaks: np.ndarray) -> np.ndarray:
    """Peak-to-peak amplitude of each beat within +-0.1 s of its R peak, ``(n_beats,)``."""
    half = max(1, int(round(QRS_HALF_WIDTH_S * fs)))
    seg = _sampled(x, fs, peaks, np.arange(-half, half + 1) / fs)
    return seg.max(axis=1) - seg.min(axis=1)


def dominant_beat(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The recording's usual beat: the median of the beats most like its median beat.

    Parameters
    ----------
    samples : ndarray, shape (n_beats, k)
        The recording's beats, sampled and scaled (one lead).

    Returns
    -------
    template : ndarray, shape (k,)
        Median of the dominant family: beats whose correlation with the median beat is
        at least :data:`DOMINANT_CORRELATION`, or the most correlated half when fewer.
    corr : ndarray, shape (n_beats,)
        Each beat's correlation with ``template``.
    """
    first = np.median(samples, axis=0)
    corr = _correlation(samples, first)
    family = corr >= DOMINANT_CORRELATION
    if family.sum() < len(samples) / 2:
        family = corr >= np.median(corr)
    template = np.median(samples[family], axis=0)
    return template, _correlation(samples, template)


def _correlation(samples: np.ndarray, template: np.ndarray) -> np.ndarray:
    a = samples - samples.mean(axis=1, keepdims=True)
    b = template - template.mean()
    denom = np.sqrt((a**2).sum(axis=1) * (b**2).sum()) + 1e-9
    return (a @ b) / denom


def morphology_features(x: np.ndarray, fs: float, r_peaks: np.ndarray) -> np.ndarray:
    """One lead's beats, scaled per recording and against its dominant beat.

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
        One lead, any units, at ``fs`` Hz.
    fs : float
        Sampling rate in Hz.
    r_peaks : ndarray, shape (n_beats,)
        R peaks of the whole recording, in samples (they set its scale and template).

    Returns
    -------
    ndarray, shape (n_beats, 48), float32
        The 22 samples at :data:`MORPH_OFFSETS_S` over the recording's median QRS
        amplitude, the same minus the dominant beat (:func:`dominant_beat`), then
        :data:`SUMMARY_COLUMNS`. Multiplying ``x`` by any gain leaves them unchanged.
    """
    fs = check_fs(fs)
    peaks = np.asarray(r_peaks, dtype=np.int64)
    k = len(MORPH_OFFSETS_S)
    if len(peaks) == 0:
        return np.zeros((0, 2 * k + len(SUMMARY_COLUMNS)), np.float32)
    xf = _band_passed(x, fs)
    amplitude = qrs_amplitude(xf, fs, peaks)
    scale = float(np.median(amplitude))
    if not scale > 0:
        scale = float(np.max(amplitude)) or 1.0
    own = np.clip(_sampled(xf, fs, peaks, MORPH_OFFSETS_S) / scale, -MORPH_CLIP, MORPH_CLIP)
    template, corr = dominant_beat(own)
    diff = own - template
    qrs = (MORPH_OFFSETS_S >= -0.05) & (MORPH_OFFSETS_S <= 0.1)
    st = MORPH_OFFSETS_S > 0.1
    summary = np.stack(
        [
            corr,
            np.sqrt((diff[:, qrs] ** 2).mean(axis=1)),
            np.sqrt((diff[:, st] ** 2).mean(axis=1)),
            np.clip(amplitude / scale, 0.0, MORPH_CLIP),
        ],
        axis=1,
    )
    return np.concatenate([own, diff, summary], axis=1).astype(np.float32)


def column_names(n_leads: int = 1) -> tuple[str, ...]:
    """Names of :func:`relative_features` columns for ``n_leads`` leads."""
    names = list(RHYTHM_COLUMNS)
    for lead in range(n_leads):
        names += [f"l{lead}_own_{i:02d}" for i in range(len(MORPH_OFFSETS_S))]
        names += [f"l{lead}_rel_{i:02d}" for i in range(len(MORPH_OFFSETS_S))]
        names += [f"l{lead}_{c}" for c in SUMMARY_COLUMNS]
    return tuple(names)


def relative_features(
    signal: np.ndarray, fs: float, r_peaks: np.ndarray, n_leads: int | None = None
) -> np.ndarray:
    """The patient-relative feature vector of every beat of one recording.

    Parameters
    ----------
    signal : ndarray, shape (n_samples,) or (n_samples, n_leads)
        The recording at ``fs`` Hz, any units (uncalibrated digital values too).
    fs : float
        Sampling rate in Hz.
    r_peaks : ndarray, shape (n_beats,)
        Sorted R peaks in samples, all of the recording (its rhythm and dominant beat
        come from them).
    n_leads : int, optional
        Leads to describe (the first ``n_leads`` columns of ``signal``); a lead the
        recording does not have gets NaN columns (a model then reads the leads it has).
        Default: every lead of ``signal``.

    Returns
    -------
    ndarray, shape (n_beats, 7 + 48 * n_leads), float32
        :func:`rhythm_features`, then :func:`morphology_features` of each lead
        (:func:`column_names`).
    """
    sig = np.asarray(signal, dtype=np.float64)
    if sig.ndim == 1:
        sig = sig[:, None]
    if sig.ndim != 2 or sig.shape[0] == 0:
        raise EcgError(f"signal must be 1-D or (n_samples, n_leads), got shape {sig.shape}")
    peaks = np.asarray(r_peaks, dtype=np.int64)
    parts = [rhythm_features(peaks, fs)]
    n_leads = sig.shape[1] if n_leads is None else int(n_leads)
    width = len(column_names(1)) - len(RHYTHM_COLUMNS)
    for lead in range(n_leads):
        if lead < sig.shape[1]:
            parts.append(morphology_features(sig[:, lead], fs, peaks))
        else:
            parts.append(np.full((len(peaks), width), np.nan, np.float32))
    return np.concatenate(parts, axis=1)


N_COLUMNS_ONE_LEAD = len(column_names(1))
"""Length of the feature vector of a one-lead recording (55)."""
RELATIVE_LEADS = 2
"""Leads the ``relative`` feature set describes: the classified lead, then one other
(NaN columns when the recording has one lead)."""


def read_annotated_recording(record_path, leads: int = RELATIVE_LEADS):
    """One annotated WFDB record as the relative recipe reads it.

    Returns
    -------
    signal : ndarray, shape (n_samples, n_read)
        The MLII lead (else lead II, V1 or the first: :func:`~ecg_utils.beats.pick_lead`)
        then the next other lead, in mV or digital units (uncalibrated headers).
    fs : float
    peaks, labels : ndarray, shape (n_beats,)
        Annotated beats (AAMI labels 0..4).
    """
    from .beats import annotated_beats, pick_lead
    from .records import read_annotations, read_signal

    sig, fs, names = read_signal(record_path, allow_uncalibrated=True)
    idx, _ = pick_lead(names, "MLII")
    order = [idx] + [i for i in range(sig.shape[1]) if i != idx]
    samples, symbols = read_annotations(record_path)
    peaks, labels = annotated_beats(samples, symbols)
    inside = (peaks >= 0) & (peaks < len(sig))
    return sig[:, order[:leads]], fs, peaks[inside], labels[inside]
