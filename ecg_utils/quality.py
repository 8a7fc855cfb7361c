"""Which parts of a lead are too noisy to classify: a signal-quality index per beat and window.

The classifier has no notion of signal quality (it labels whatever the detector finds), so
this module judges the lead in 10-second windows, as Clifford et al. (2012) and Li,
Mark & Clifford (2008) do. A window is **noisy** when any of these holds:

* **missing**: more than half of its samples are not finite (gaps are NaN in WFDB);
* **flat**: its peak-to-peak amplitude is below 5 % of the recording's median window
  peak-to-peak, or 2 s of its 1-s stretches are (lead off, amplifier at a constant);
* **clipped**: at least 5 % of its samples sit at its own maximum or minimum (within 0.1 %
  of its range): the amplifier saturated;
* **artefact**: its peak-to-peak amplitude is above 6 times that median (movement,
  electrode pops; QRS complexes are what sets the median);
* **detectors disagree** (bSQI, Li et al. 2008): the project's detector and two different
  ones (neurokit2's ``neurokit`` and ``kalidas2017``, run at 180 Hz) find different beats:
  ``matched / (n1 + n2 - matched)`` (150 ms matching), the better of the two, below
  :data:`BSQI_MIN`;
* **beats unlike each other** (morphology): each beat's QRS (+-150 ms, 1-40 Hz band, at
  180 Hz) is correlated with its ten neighbours (five each side); its score is the best of
  those correlations, and a window whose median score is below :data:`MORPH_MIN`, or with
  more than :data:`UNLIKE_MAX` of its beats below :data:`UNLIKE_SIMILARITY` (false beats
  among real ones), is noisy. A beat need only resemble some neighbour, so bigeminy and
  runs of ectopic beats keep high scores; noise, which does not repeat, does not.

The relative thresholds hold for signals in any unit. :data:`BSQI_MIN`, :data:`MORPH_MIN`
and :data:`UNLIKE_MAX` were chosen by ``bench/noise_stress.py`` on DS1 records with the
project's own noise (``results/noise_stress.json``): the most noisy stretches marked at
<= 6 dB while at most 5 % of clean stretches (and 2 % of the clean records' windows) are.
That noise is generated (:mod:`ecg_utils.noise`), not recorded: the thresholds are not
validated on the Noise Stress Test Database. :mod:`ecg_utils.predict` labels the beats of
noisy windows Q and, there, keeps only the detections another detector also found or that
resemble a neighbouring beat (:func:`gate_peaks`).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ._io import EcgError

WINDOW_S = 10.0
"""Window length in seconds."""
MISSING_SHARE = 0.5
"""A window with more than this share of non-finite samples is missing."""
FLAT_RATIO = 0.05
"""A window whose peak-to-peak is below this fraction of the median is flat."""
ARTEFACT_RATIO = 6.0
"""A window whose peak-to-peak is above this multiple of the median is an artefact."""
FLAT_MIN_S = 2.0
"""A window with this many seconds of flat 1-s stretches (below ``FLAT_RATIO`` of the
median window peak-to-peak) is flat."""
CLIP_SHARE = 0.05
"""A window with this share of its samples at its own maximum or minimum is clipped."""
CLIP_TOLERANCE = 0.001
"""Samples within this fraction of the window's range of an extreme are at the extreme."""
BSQI_MIN = 0.75
"""A window whose detector agreement (bSQI, 0-1) is below this is noisy."""
MORPH_MIN = 0.95
"""A window whose median beat similarity (correlation, -1 to 1) is below this is noisy."""
UNLIKE_SIMILARITY = 0.8
"""A beat whose best similarity to its neighbours is below this is unlike them."""
UNLIKE_MAX = 0.3
"""A window with more than this share of unlike beats is noisy."""
SQI_FS = 180.0
"""Rate in Hz at which the second detector and the morphology measure work."""
SECOND_DETECTORS = ("neurokit", "kalidas2017")
"""neurokit2's methods that check the project's detector: its default (gradient-based) and
Kalidas & Tamil (2017, stationary wavelet transform). Each alone disagrees with the
project's detector for many minutes of some clean DS1 records (neurokit on 207's flutter and
wide beats, kalidas2017 on 208's), so a window's bSQI is the better of the two."""
MATCH_S = 0.15
"""Two detections within this many seconds are the same beat."""
MORPH_HALF_S = 0.15
"""Half-width of the QRS window of the morphology measure, in seconds."""
MORPH_NEIGHBOURS = 5
"""Each beat is compared with this many beats on each side."""
GATES = ("", "agreed", "agreed_or_similar")
"""How detections in noisy windows are gated (:func:`gate_peaks`; good windows keep every
detection): not at all; only those one of :data:`SECOND_DETECTORS` also found; those, and
those whose QRS resembles a neighbour's (similarity at least ``similar_min``)."""
GATE = "agreed_or_similar"
"""The gate :func:`~ecg_utils.predict.classify_record` uses (chosen on DS1)."""
SIMILAR_MIN = 0.9
"""Similarity from which an unconfirmed detection in a noisy window is kept
(``agreed_or_similar``)."""
REASONS = (
    "",
    "missing",
    "flat",
    "clipped",
    "artefact",
    "detectors disagree",
    "beats unlike each other",
)
"""Why a window is noisy (the first that applies; "" for a good window)."""


@dataclass(frozen=True)
class QualityRule:
    """Thresholds and gate of the quality check (defaults: this module's constants).

    Attributes
    ----------
    bsqi_min : float
        Detector agreement below which a window is noisy (0-1).
    morph_min : float
        Median beat similarity below which a window is noisy (-1 to 1).
    unlike_max : float
        Share of a window's beats unlike all their neighbours (similarity below
        :data:`UNLIKE_SIMILARITY`) above which it is noisy (1: never).
    gate : str
        One of :data:`GATES`.
    similar_min : float
        Similarity threshold of the ``agreed_or_similar`` gate.
    """

    bsqi_min: float = BSQI_MIN
    morph_min: float = MORPH_MIN
    unlike_max: float = UNLIKE_MAX
    gate: str = GATE
    similar_min: float = SIMILAR_MIN

    def __post_init__(self):
        if self.gate not in GATES:
            raise ValueError(f"unknown gate {self.gate!r}; choose one of {GATES}")


@dataclass(frozen=True)
class SignalQuality:
    """The quality of one lead, window by window and beat by beat.

    Attributes
    ----------
    fs : float
        Sampling rate of the lead in Hz.
    n_samples : int
        Length of the lead.
    window_s : float
        Window length in seconds; window ``k`` covers ``[k, k + 1) * window_s``.
    bsqi : ndarray, shape (n_windows,)
        Agreement of the two detectors (1 where neither finds a beat).
    morphology : ndarray, shape (n_windows,)
        Median beat similarity (NaN where the window has no beat).
    reason : ndarray of str, shape (n_windows,)
        One of :data:`REASONS`; ``""`` for a good window.
    beat_similarity : ndarray, shape (n_beats,)
        Each beat's best correlation with a neighbour (the per-beat index), for ``peaks``.
    second_peaks : ndarray of int
        The beats of the other detectors (:data:`SECOND_DETECTORS`, both together), in
        samples at ``fs``: a detection near one of them is confirmed.
    peaks : ndarray of int, shape (n_beats,)
        The beats judged (the project's detector's, or those given).
    amplitude : ndarray of str, shape (n_windows,)
        The missing / flat / clipped / artefact verdicts alone.
    unlike : ndarray, shape (n_windows,)
        Share of the window's beats unlike all their neighbours (0 where it has none).
    """

    fs: float
    n_samples: int
    window_s: float
    bsqi: np.ndarray
    morphology: np.ndarray
    reason: np.ndarray
    beat_similarity: np.ndarray
    second_peaks: np.ndarray
    peaks: np.ndarray
    amplitude: np.ndarray
    unlike: np.ndarray | None = None

    @property
    def noisy(self) -> np.ndarray:
        """Bool per window: too noisy to classify."""
        return self.reason != ""

    def intervals(self) -> np.ndarray:
        """The noisy windows merged into ``(start, end)`` intervals in seconds, shape (k, 2)."""
        return _merge(np.flatnonzero(self.noisy), self.window_s, self.n_samples / self.fs)

    def noisy_beats(self, samples: np.ndarray) -> np.ndarray:
        """Bool per beat (R peak in samples at ``fs``): in a noisy window."""
        k = np.asarray(samples, np.int64) // max(int(round(self.window_s * self.fs)), 1)
        return self.noisy[np.clip(k, 0, len(self.noisy) - 1)]

    @property
    def noisy_share(self) -> float:
        """Share of the lead's time in noisy windows (0-1)."""
        return float((self.intervals() @ [-1.0, 1.0]).sum() * self.fs / self.n_samples)


def assess_quality(
    x: np.ndarray,
    fs: float,
    peaks: np.ndarray | None = None,
    window_s: float = WINDOW_S,
    rule: QualityRule | None = None,
) -> SignalQuality:
    """Judge one lead's quality in windows of ``window_s`` seconds.

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
        One lead at ``fs`` Hz, any unit, NaN for gaps.
    fs : float
        Sampling rate in Hz.
    peaks : ndarray of int, optional
        The beats being classified (R peaks in samples); detected with the project's
        detector when None.
    window_s : float
        Window length in seconds; the last, shorter window is judged like the others.
    rule : QualityRule, optional
        Thresholds (default :class:`QualityRule()`).

    Returns
    -------
    SignalQuality
    """
    from .detect import DEFAULT_METHOD, detect_r_peaks, fill_gaps

    rule = rule or QualityRule()
    x = np.asarray(x, np.float64)
    size = max(int(round(window_s * fs)), 1)
    n_win = -(-len(x) // size)
    amplitude = _amplitude_reasons(x, fs, size, n_win)
    filled = fill_gaps(x)
    if peaks is None:
        peaks = _safe_detect(lambda: detect_r_peaks(filled, fs, method=DEFAULT_METHOD))
    peaks = np.unique(np.asarray(peaks, np.int64))
    x_low, ratio = _at_sqi_rate(filled, fs)
    first_w = np.bincount(peaks // size, minlength=n_win)[:n_win]
    bsqi, others = np.full(n_win, -1.0), []
    for method in SECOND_DETECTORS:  # per window, the better agreement of the two
        others.append(_second_detector(x_low, ratio, method))
        bsqi = np.maximum(bsqi, _agreement(peaks, others[-1], first_w, size, n_win, fs))
    second = np.unique(np.concatenate(others))
    similarity = beat_similarity(x_low, np.rint(peaks / ratio).astype(np.int64))
    morphology, unlike = np.full(n_win, np.nan), np.zeros(n_win)
    window_of = peaks // size
    for k in np.unique(window_of):
        if k < n_win:
            s = similarity[window_of == k]
            s = s[np.isfinite(s)]
            if len(s):
                morphology[k] = float(np.median(s))
                unlike[k] = float(np.mean(s < UNLIKE_SIMILARITY))
    reason = window_reasons(amplitude, bsqi, morphology, rule, unlike)
    return SignalQuality(
        fs,
        len(x),
        window_s,
        bsqi,
        morphology,
        reason,
        similarity,
        second,
        peaks,
        amplitude,
        unlike,
    )


def window_reasons(
    amplitude: np.ndarray,
    bsqi: np.ndarray,
    morphology: np.ndarray,
    rule: QualityRule,
    unlike: np.ndarray | None = None,
) -> np.ndarray:
    """Why each window is noisy ("" when it is not), the first rule that applies.

    Parameters
    ----------
    amplitude : ndarray of str, shape (n_windows,)
        The missing / flat / clipped / artefact verdicts ("" where none applies).
    bsqi, morphology : ndarray, shape (n_windows,)
        Detector agreement and median beat similarity.
    rule : QualityRule
    unlike : ndarray, shape (n_windows,), optional
        Share of unlike beats (not judged when None).
    """
    reason = np.asarray(amplitude, dtype=object).copy()
    free = reason == ""
    reason[free & (bsqi < rule.bsqi_min)] = "detectors disagree"
    free = reason == ""
    with np.errstate(invalid="ignore"):
        unlike_each_other = morphology < rule.morph_min
        if unlike is not None:
            unlike_each_other |= unlike > rule.unlike_max
        reason[free & unlike_each_other] = "beats unlike each other"
    return reason


def gate_peaks(peaks: np.ndarray, quality: SignalQuality, rule: QualityRule | None = None):
    """The detections kept by the rule's gate (:data:`GATES`).

    Parameters
    ----------
    peaks : ndarray of int
        The project's detections, samples at ``quality.fs`` (those ``quality`` judged).
    quality : SignalQuality
        From :func:`assess_quality` on the same lead and peaks.
    rule : QualityRule, optional

    Returns
    -------
    ndarray of int
        The kept peaks, sorted.
    """
    from .detect import match_pairs

    rule = rule or QualityRule()
    peaks = np.asarray(peaks, np.int64)
    if not rule.gate:
        return peaks
    confirmed = np.zeros(len(peaks), bool)
    _, t_idx = match_pairs(quality.second_peaks, peaks, quality.fs, MATCH_S)
    confirmed[t_idx] = True
    keep = ~quality.noisy_beats(peaks) | confirmed
    if rule.gate == "agreed_or_similar" and np.array_equal(peaks, quality.peaks):
        with np.errstate(invalid="ignore"):
            keep |= quality.beat_similarity >= rule.similar_min
    return peaks[keep]


def noisy_intervals(x: np.ndarray, fs: float, window_s: float = WINDOW_S) -> np.ndarray:
    """The noisy windows of one lead (:func:`assess_quality`), merged into intervals.

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
        One lead at ``fs`` Hz (any unit; NaN for gaps).
    fs : float
        Sampling rate in Hz.
    window_s : float
        Window length in seconds.

    Returns
    -------
    ndarray, shape (k, 2), float64
        ``(start, end)`` in seconds, disjoint and in time order.
    """
    return assess_quality(x, fs, window_s=window_s).intervals()


def beat_similarity(x: np.ndarray, peaks: np.ndarray, fs: float = SQI_FS) -> np.ndarray:
    """Each beat's best QRS correlation with its neighbours (the per-beat SQI).

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
        One lead at ``fs`` Hz, already without gaps.
    peaks : ndarray of int, shape (n_beats,)
        Sorted R peaks in samples at ``fs``.
    fs : float
        Sampling rate in Hz.

    Returns
    -------
    ndarray, shape (n_beats,)
        Largest Pearson correlation of the +-150 ms, 1-40 Hz band-passed QRS with the
        :data:`MORPH_NEIGHBOURS` beats on either side; NaN for a beat too near an end or
        a recording of one beat.
    """
    from scipy import signal as sps

    out = np.full(len(peaks), np.nan)
    half = int(round(MORPH_HALF_S * fs))
    if len(peaks) < 2 or len(x) <= 2 * half + 1:
        return out
    sos = sps.butter(2, [1.0, min(40.0, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    y = sps.sosfiltfilt(sos, x)
    inside = (peaks >= half) & (peaks < len(y) - half)
    idx = np.flatnonzero(inside)
    if len(idx) < 2:
        return out
    seg = y[peaks[idx, None] + np.arange(-half, half + 1)]
    seg = seg - seg.mean(1, keepdims=True)
    norm = np.linalg.norm(seg, axis=1, keepdims=True)
    z = np.divide(seg, norm, out=np.zeros_like(seg), where=norm > 0)
    best = np.full(len(idx), -np.inf)
    for d in range(1, MORPH_NEIGHBOURS + 1):
        if d >= len(idx):
            break
        c = np.einsum("ij,ij->i", z[:-d], z[d:])
        best[:-d] = np.maximum(best[:-d], c)
        best[d:] = np.maximum(best[d:], c)
    out[idx] = best
    return out


# ---------------------------------------------------------------------- helpers


def _amplitude_reasons(x: np.ndarray, fs: float, size: int, n_win: int) -> np.ndarray:
    """The missing / flat / clipped / artefact rules per window ("" where none applies)."""
    sub = max(int(round(fs)), 1)  # 1-s sub-windows for the flat rule
    ptp = np.full(n_win, np.nan)
    missing = np.zeros(n_win, bool)
    sub_ptp = []  # per window: the peak-to-peak of each 1-s sub-window
    clipped = np.zeros(n_win)
    for k in range(n_win):  # one window at a time: no copy of a 24-hour lead
        w = x[k * size : (k + 1) * size]
        finite = np.isfinite(w)
        n_finite = int(finite.sum())
        missing[k] = n_finite <= MISSING_SHARE * len(w)
        if not n_finite or missing[k]:
            sub_ptp.append(np.zeros(0))
            continue
        v = w if n_finite == len(w) else w[finite]
        hi, lo = float(v.max()), float(v.min())
        ptp[k] = hi - lo
        eps = CLIP_TOLERANCE * ptp[k]
        clipped[k] = np.mean((v >= hi - eps) | (v <= lo + eps))
        n_sub = len(v) // sub
        sub_ptp.append(
            np.ptp(v[: n_sub * sub].reshape(n_sub, sub), axis=1) if n_sub else ptp[k : k + 1]
        )
    known = ptp[np.isfinite(ptp)]
    median = float(np.median(known)) if len(known) else 0.0
    reason = np.full(n_win, "", dtype=object)
    if median <= 0:  # every window flat or missing
        reason[:] = "flat"
        reason[missing] = "missing"
        return reason
    flat_s = np.array([float(np.sum(p < FLAT_RATIO * median)) * sub / fs for p in sub_ptp])
    with np.errstate(invalid="ignore"):
        reason[ptp > ARTEFACT_RATIO * median] = "artefact"
        reason[clipped >= CLIP_SHARE] = "clipped"
        reason[(flat_s >= FLAT_MIN_S) | (ptp < FLAT_RATIO * median)] = "flat"
    reason[missing] = "missing"
    return reason


def _at_sqi_rate(x: np.ndarray, fs: float) -> tuple[np.ndarray, float]:
    """The lead at :data:`SQI_FS` Hz and the number of input samples per output sample."""
    from scipy.signal import resample_poly

    if abs(fs - SQI_FS) < 1e-9:
        return x, 1.0
    ratio = Fraction(SQI_FS / fs).limit_denominator(1000)
    return resample_poly(x, ratio.numerator, ratio.denominator), fs / SQI_FS


def _agreement(
    peaks: np.ndarray, other: np.ndarray, first_w: np.ndarray, size: int, n_win: int, fs: float
) -> np.ndarray:
    """bSQI per window: matched / (n1 + n2 - matched), 1 where neither finds a beat."""
    from .detect import match_pairs

    second_w = np.bincount(other // size, minlength=n_win)[:n_win]
    r_idx, _ = match_pairs(peaks, other, fs, MATCH_S)
    both_w = np.bincount(peaks[r_idx] // size, minlength=n_win)[:n_win]
    union = first_w + second_w - both_w
    # a pair across a window edge counts in its first beat's window: cap at 1
    return np.where(union > 0, np.minimum(both_w / np.maximum(union, 1), 1.0), 1.0)


def _second_detector(x_low: np.ndarray, ratio: float, method: str) -> np.ndarray:
    """A second detector (:data:`SECOND_DETECTORS`) on the lead at :data:`SQI_FS`, through
    :func:`ecg_utils.detect.detect_r_peaks` (so a long lead goes in chunks); beats in
    samples at the lead's rate."""
    from .detect import detect_r_peaks

    found = _safe_detect(lambda: detect_r_peaks(x_low, SQI_FS, method=method, refine=False))
    return np.unique(np.rint(found * ratio).astype(np.int64))


def _safe_detect(run) -> np.ndarray:
    """A detector's beats, or none when it refuses this signal (which then reads noisy)."""
    try:
        return np.asarray(run(), np.int64)
    except EcgError:  # detect_r_peaks says so for flat, short or odd signal
        return np.zeros(0, np.int64)


def _merge(windows: np.ndarray, window_s: float, duration_s: float) -> np.ndarray:
    out: list[list[float]] = []
    for k in windows:
        start, end = k * window_s, min((k + 1) * window_s, duration_s)
        if out and out[-1][1] >= start:
            out[-1][1] = end
        else:
            out.append([start, end])
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)
