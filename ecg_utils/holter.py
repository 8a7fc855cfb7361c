"""Holter statistics of one recording from its beat table: rates, ectopy, pauses, noise.

Pure numpy/pandas over beat times (seconds) and AAMI classes (N, S, V, F, Q); no model
and no signal. The definitions follow the conventions of ambulatory ECG reports (ACC/AHA
guidelines for ambulatory electrocardiography, Crawford et al., JACC 1999;34:912-48, and
the ACC/AHA/HRS 2017 ventricular arrhythmia guideline, Al-Khatib et al., Circulation
2018;138:e272-e391, for the names *couplet*, *run* and *NSVT*); where they leave a choice
open (how many cycles make an episode of bigeminy, which minutes count for the heart rate)
the rule chosen here is stated in :func:`holter_summary` and in the README. Those choices
are conventions of this project, not of the guidelines.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .beats import CLASS_NAMES

CLASSES = CLASS_NAMES
"""AAMI classes as they appear in a beat table's ``class`` column."""
ECTOPIC = ("S", "V")
"""Families of ectopic beats counted for burden, couplets, runs, bigeminy and trigeminy."""
PAUSE_S = 2.0
"""An RR interval longer than this (seconds) is a pause."""
WINDOW_S = 60.0
"""Heart-rate window (seconds)."""
MIN_RR_PER_WINDOW = 10
"""A heart-rate window needs at least this many RR intervals."""
MIN_CLEAN_SHARE = 0.5
"""A heart-rate window needs at least this share of its time free of noise."""
MIN_CYCLES = 3
"""Least number of consecutive cycles of a bigeminy or trigeminy episode."""
_BREAK = "|"  # a noisy interval between two beats: no sequence continues across it

SUMMARY_FIELDS = (
    "duration_s",
    "analysed_s",
    "noisy_pct",
    "beats",
    "beats_noisy",
    *CLASSES,
    "hr_min_bpm",
    "hr_mean_bpm",
    "hr_max_bpm",
    "hr_windows",
    *(
        f"{e}_{what}"
        for e in ECTOPIC
        for what in ("burden_pct", "couplets", "runs", "longest_run", "bigeminy", "trigeminy")
    ),
    "pauses",
    "longest_pause_s",
)
"""Keys of :func:`holter_summary`, in the column order of ``summary.csv``."""


def merge_intervals(intervals, duration_s: float) -> np.ndarray:
    """Sort, clip to ``[0, duration_s]`` and merge overlapping intervals.

    Parameters
    ----------
    intervals : array-like, shape (k, 2)
        ``(start, end)`` in seconds.
    duration_s : float
        Recording length in seconds.

    Returns
    -------
    ndarray, shape (m, 2), float64
        Disjoint intervals in time order, each of positive length.
    """
    a = np.asarray(intervals if intervals is not None else [], dtype=np.float64).reshape(-1, 2)
    a = np.clip(a, 0.0, duration_s)
    a = a[a[:, 1] > a[:, 0]]
    if len(a) == 0:
        return np.zeros((0, 2))
    a = a[np.argsort(a[:, 0], kind="stable")]
    out = [a[0].copy()]
    for start, end in a[1:]:
        if start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append(np.array([start, end]))
    return np.asarray(out)


def sequence_runs(classes: str, family: str) -> np.ndarray:
    """Lengths of the maximal runs of consecutive ``family`` beats in a class string.

    Parameters
    ----------
    classes : str
        One character per beat in time order (``"NNVVN|VN"``); ``"|"`` marks a break
        (noise) that no run crosses.
    family : str
        ``"S"`` or ``"V"``.

    Returns
    -------
    ndarray of int
        One length per run, in time order (1 = an isolated beat, 2 = a couplet).
    """
    return np.array([len(m) for m in re.findall(f"{re.escape(family)}+", classes)], dtype=int)


def episodes(classes: str, family: str, normals: int) -> int:
    """Episodes of bigeminy (``normals=1``) or trigeminy (``normals=2``) of one family.

    A cycle is ``normals`` N beats followed by one ``family`` beat; an episode is a
    maximal chain of at least :data:`MIN_CYCLES` consecutive cycles (``NVNVNV``,
    ``NNVNNVNNV``). Episodes are counted left to right without overlap.
    """
    cycle = "N" * normals + re.escape(family)
    return len(re.findall(f"(?:{cycle}){{{MIN_CYCLES},}}", classes))


def holter_summary(
    time_s,
    classes,
    duration_s: float,
    noisy_s=None,
) -> dict:
    """The figures of a Holter report for one recording.

    Definitions (stated in the README with their sources):

    * **noise**: ``noisy_s`` are the intervals judged too noisy to classify
      (:class:`ecg_utils.quality.SignalQuality`; ``predict`` labels their beats Q).
      Beats inside them are left out of every figure (``beats_noisy`` counts them), RR
      intervals that overlap them are not used, and no couplet, run or episode continues
      across them. ``noisy_pct`` = noisy time / duration x 100; ``analysed_s`` (the
      analysable time) = duration - noisy time.
    * **beats** and the class counts: the readable beats, those outside noise.
    * **burden** of S or V = its beats / all readable beats x 100 (beats in noise are
      in neither count).
    * **couplet**: exactly 2 consecutive beats of the family; **run**: 3 or more
      (a V run is a run of non-sustained VT when shorter than 30 s, an S run an SVT
      run); ``longest_run`` is its length in beats (0 when there is none).
    * **bigeminy**: at least 3 consecutive (N, E) cycles, E the family's beat;
      **trigeminy**: at least 3 consecutive (N, N, E) cycles. Any other beat (F, Q, the
      other family) or a noisy interval ends an episode.
    * **pause**: an RR interval longer than 2.0 s; ``longest_pause_s`` is the longest
      such interval (NaN when there is none).
    * **heart rate**: per minute of recording (``[60 k, 60 (k + 1))`` s; the trailing
      part-minute is dropped unless the recording is shorter than one minute), 60 / the
      mean of the RR intervals that end in that minute. A minute counts when at least
      half of it is free of noise and it holds at least 10 RR intervals; min, mean (of
      the minutes) and max are over counted minutes (NaN when none).

    Parameters
    ----------
    time_s : array-like, shape (n,)
        Beat times in seconds (R peaks), any order (sorted here).
    classes : array-like, shape (n,)
        AAMI class of each beat: ``"N"``, ``"S"``, ``"V"``, ``"F"`` or ``"Q"``, or the
        labels 0-4 in that order.
    duration_s : float
        Length of the recording in seconds.
    noisy_s : array-like, shape (k, 2), optional
        Noisy intervals ``(start, end)`` in seconds.

    Returns
    -------
    dict
        The keys of :data:`SUMMARY_FIELDS`: seconds, percentages, beats per minute and
        counts; floats (NaN when undefined) and ints.
    """
    t = np.asarray(time_s, dtype=np.float64).reshape(-1)
    c = np.asarray(classes).reshape(-1)
    if len(t) != len(c):
        raise ValueError(f"{len(t)} beat times but {len(c)} classes")
    if c.dtype.kind in "iu":
        c = np.asarray(CLASSES)[c]
    c = c.astype(str)
    order = np.argsort(t, kind="stable")
    t, c = t[order], c[order]
    duration_s = float(duration_s)
    noisy = merge_intervals(noisy_s, duration_s)
    noisy_total = float((noisy[:, 1] - noisy[:, 0]).sum())

    # segment of each beat: how many noisy intervals end at or before it; drop beats in noise
    in_noise = np.zeros(len(t), bool)
    if len(noisy):
        k = np.searchsorted(noisy[:, 0], t, side="right") - 1
        in_noise = (k >= 0) & (t < noisy[np.maximum(k, 0), 1])
    segment = np.searchsorted(noisy[:, 1], t, side="right") if len(noisy) else np.zeros(len(t))
    t, c, segment = t[~in_noise], c[~in_noise], segment[~in_noise]

    text = "".join(
        (_BREAK if i and segment[i] != segment[i - 1] else "") + cls for i, cls in enumerate(c)
    )
    counts = pd.Series(c).value_counts().reindex(CLASSES, fill_value=0)
    n = len(c)
    out: dict = {
        "duration_s": duration_s,
        "analysed_s": duration_s - noisy_total,
        "noisy_pct": 100.0 * noisy_total / duration_s if duration_s > 0 else float("nan"),
        "beats": int(n),
        "beats_noisy": int(in_noise.sum()),
        **{cls: int(counts[cls]) for cls in CLASSES},
    }
    out.update(_heart_rate(t, segment, duration_s, noisy))
    for fam in ECTOPIC:
        runs = sequence_runs(text, fam)
        out[f"{fam}_burden_pct"] = 100.0 * counts[fam] / n if n else float("nan")
        out[f"{fam}_couplets"] = int((runs == 2).sum())
        out[f"{fam}_runs"] = int((runs >= 3).sum())
        out[f"{fam}_longest_run"] = int(runs[runs >= 3].max()) if (runs >= 3).any() else 0
        out[f"{fam}_bigeminy"] = episodes(text, fam, 1)
        out[f"{fam}_trigeminy"] = episodes(text, fam, 2)
    rr = _clean_rr(t, segment)[0]
    pauses = rr[rr > PAUSE_S]
    out["pauses"] = int(len(pauses))
    out["longest_pause_s"] = float(pauses.max()) if len(pauses) else float("nan")
    return {key: out[key] for key in SUMMARY_FIELDS}


def _clean_rr(t: np.ndarray, segment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RR intervals (s) between consecutive beats of one noise-free segment, and their ends."""
    same = segment[1:] == segment[:-1]
    return np.diff(t)[same], t[1:][same]


def _heart_rate(t: np.ndarray, segment: np.ndarray, duration_s: float, noisy: np.ndarray) -> dict:
    rr, end = _clean_rr(t, segment)
    n_win = int(duration_s // WINDOW_S) if duration_s >= WINDOW_S else 1
    width = WINDOW_S if duration_s >= WINDOW_S else duration_s
    rates = []
    for k in range(n_win):
        lo, hi = k * width, (k + 1) * width
        overlap = np.clip(np.minimum(noisy[:, 1], hi) - np.maximum(noisy[:, 0], lo), 0, None)
        if width - overlap.sum() < MIN_CLEAN_SHARE * width:
            continue
        here = rr[(end >= lo) & (end < hi)]
        if len(here) >= MIN_RR_PER_WINDOW:
            rates.append(60.0 / here.mean())
    nan = float("nan")
    return {
        "hr_min_bpm": float(min(rates)) if rates else nan,
        "hr_mean_bpm": float(np.mean(rates)) if rates else nan,
        "hr_max_bpm": float(max(rates)) if rates else nan,
        "hr_windows": len(rates),
    }


def table_summary(table: pd.DataFrame, duration_s: float, noisy_s=None) -> dict:
    """:func:`holter_summary` of a beat table (``time_s`` and ``class`` columns)."""
    times, classes = table["time_s"].to_numpy(), table["class"].to_numpy()
    return holter_summary(times, classes, duration_s, noisy_s)
