"""Which parts of a lead are too noisy to classify: a simple, documented criterion.

The classifier has no notion of signal quality (it labels whatever the detector finds),
so the Holter summary (:mod:`ecg_utils.holter`) needs one. This module cuts the lead into
10-second windows and marks a window noisy when it is

* **missing**: more than half of its samples are not finite (gaps are NaN in WFDB);
* **flat**: its peak-to-peak amplitude is below 5 % of the recording's median window
  peak-to-peak (lead off, amplifier saturated at a constant);
* **artefact**: its peak-to-peak amplitude is above 6 times that median (movement,
  electrode pops; QRS complexes are what sets the median).

The thresholds are relative, so they hold for signals in any unit. They are a
convention of this project, not a validated signal-quality index: a window of flutter
or of very large ectopic beats can be marked, and noise of ordinary amplitude is not.
"""

from __future__ import annotations

import numpy as np

WINDOW_S = 10.0
"""Window length in seconds."""
MISSING_SHARE = 0.5
"""A window with more than this share of non-finite samples is missing."""
FLAT_RATIO = 0.05
"""A window whose peak-to-peak is below this fraction of the median is flat."""
ARTEFACT_RATIO = 6.0
"""A window whose peak-to-peak is above this multiple of the median is an artefact."""


def noisy_intervals(x: np.ndarray, fs: float, window_s: float = WINDOW_S) -> np.ndarray:
    """The noisy windows of one lead, merged into intervals.

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
        One lead at ``fs`` Hz (any unit; NaN for gaps).
    fs : float
        Sampling rate in Hz.
    window_s : float
        Window length in seconds; the last, shorter window is judged like the others.

    Returns
    -------
    ndarray, shape (k, 2), float64
        ``(start, end)`` in seconds, disjoint and in time order.
    """
    x = np.asarray(x)
    size = max(int(round(window_s * fs)), 1)
    n_win = -(-len(x) // size)
    ptp = np.full(n_win, np.nan)
    missing = np.zeros(n_win, bool)
    for k in range(n_win):  # one window at a time: no copy of a 24-hour lead
        w = x[k * size : (k + 1) * size]
        finite = np.isfinite(w)
        n_finite = int(finite.sum())
        missing[k] = n_finite <= MISSING_SHARE * len(w)
        if n_finite and not missing[k]:
            v = w if n_finite == len(w) else w[finite]
            ptp[k] = float(v.max() - v.min())
    known = ptp[np.isfinite(ptp)]
    median = float(np.median(known)) if len(known) else 0.0
    bad = missing.copy()
    if median > 0:
        with np.errstate(invalid="ignore"):
            bad |= (ptp < FLAT_RATIO * median) | (ptp > ARTEFACT_RATIO * median)
    else:  # every window flat or missing
        bad[:] = True
    out = []
    duration = len(x) / fs
    for k in np.flatnonzero(bad):
        start, end = k * size / fs, min((k + 1) * size / fs, duration)
        if out and out[-1][1] >= start:
            out[-1][1] = end
        else:
            out.append([start, end])
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)
