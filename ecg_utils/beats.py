"""Beat segmentation as in Kachuee et al. (2018) and the AAMI class mapping.

The Kaggle "ECG Heartbeat Categorization" set was made this way from MIT-BIH: each
record is resampled to 125 Hz, cut into 10 s windows that are min-max normalised to
[0, 1], and every beat becomes a segment of 1.2 T samples starting at its R peak
(T = median RR interval of the window), zero-padded or cut to 187 samples.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import signal as sps

from ._io import EcgError, atomic_path

FS_BEAT = 125
"""Sampling rate of segmented beats, in Hz."""
BEAT_LENGTH = 187
"""Samples per beat (1.496 s at 125 Hz)."""
WINDOW_SECONDS = 10.0
"""Length of the normalisation window, in seconds."""
CLASS_NAMES = ("N", "S", "V", "F", "Q")
"""AAMI class names, indexed by label 0..4."""

AAMI_CLASSES: dict[str, int] = {
    **dict.fromkeys("NLRej", 0),
    **dict.fromkeys("AaJS", 1),
    **dict.fromkeys("VE", 2),
    "F": 3,
    **dict.fromkeys("/fQ", 4),
}
"""MIT-BIH beat annotation symbol -> AAMI label (0 N, 1 S, 2 V, 3 F, 4 Q)."""

NON_BEAT_SYMBOLS = frozenset("+~|x![]\"=p^t-u?`'s*TD@()rTUP")
"""Annotation symbols that mark rhythm, signal quality or waves: not beats."""


def aami_label(symbol: str) -> int | None:
    """Return the AAMI label (0..4) of a beat annotation symbol, or None for non-beats."""
    return AAMI_CLASSES.get(symbol)


def resample_signal(x: np.ndarray, fs_in: float, fs_out: float = FS_BEAT) -> np.ndarray:
    """Resample a 1-D signal from ``fs_in`` to ``fs_out`` Hz with a polyphase filter.

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
    fs_in, fs_out : float
        Sampling rates in Hz.

    Returns
    -------
    ndarray, shape (round(n_samples * fs_out / fs_in),), float64
    """
    if fs_in <= 0 or not np.isfinite(fs_in):
        raise EcgError(f"sampling frequency must be a positive number, got {fs_in}")
    if fs_in == fs_out:
        return np.asarray(x, dtype=np.float64)
    ratio = _rational(fs_out / fs_in)
    return sps.resample_poly(np.asarray(x, dtype=np.float64), ratio[0], ratio[1])


def _rational(r: float, max_den: int = 1000) -> tuple[int, int]:
    from fractions import Fraction

    f = Fraction(r).limit_denominator(max_den)
    return f.numerator, f.denominator


@dataclass
class Beats:
    """Segmented beats and what is known about each.

    Attributes
    ----------
    x : ndarray, shape (n_beats, 187), float32
        Beats at 125 Hz, values in [0, 1], starting at the R peak.
    y : ndarray, shape (n_beats,), int64
        AAMI labels 0..4 (-1 when unknown, for unlabelled records).
    record : ndarray, shape (n_beats,), str
        Record name of each beat.
    r_peak : ndarray, shape (n_beats,), int64
        R-peak position in samples at the record's own sampling rate.
    rr : ndarray, shape (n_beats, 4), float32
        RR intervals in seconds: previous, next, local mean (last 10 beats) and record mean.
    """

    x: np.ndarray
    y: np.ndarray
    record: np.ndarray
    r_peak: np.ndarray
    rr: np.ndarray
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx: np.ndarray) -> Beats:
        """Return the beats at ``idx`` (an index or boolean mask)."""
        return Beats(
            self.x[idx], self.y[idx], self.record[idx], self.r_peak[idx], self.rr[idx], self.meta
        )

    def counts(self) -> dict[str, int]:
        """Number of beats per AAMI class name."""
        return {name: int((self.y == k).sum()) for k, name in enumerate(CLASS_NAMES)}

    @staticmethod
    def concat(parts: list[Beats], meta: dict | None = None) -> Beats:
        """Stack several ``Beats`` into one."""
        if not parts:
            return Beats.empty(meta)
        return Beats(
            np.concatenate([p.x for p in parts]),
            np.concatenate([p.y for p in parts]),
            np.concatenate([p.record for p in parts]),
            np.concatenate([p.r_peak for p in parts]),
            np.concatenate([p.rr for p in parts]),
            meta or {},
        )

    @staticmethod
    def empty(meta: dict | None = None) -> Beats:
        return Beats(
            np.zeros((0, BEAT_LENGTH), np.float32),
            np.zeros(0, np.int64),
            np.zeros(0, "<U8"),
            np.zeros(0, np.int64),
            np.zeros((0, 4), np.float32),
            meta or {},
        )


def rr_features(r_peaks: np.ndarray, fs: float, local: int = 10) -> np.ndarray:
    """RR intervals around each beat, in seconds.

    Parameters
    ----------
    r_peaks : ndarray, shape (n_beats,)
        Sorted R-peak positions in samples.
    fs : float
        Sampling rate in Hz.
    local : int
        Number of preceding intervals averaged for the local mean.

    Returns
    -------
    ndarray, shape (n_beats, 4), float32
        Columns: previous RR, next RR, local mean RR, record mean RR. The first beat's
        previous RR and the last beat's next RR repeat their neighbour's value.
    """
    n = len(r_peaks)
    if n < 2:
        return np.full((n, 4), 1.0, np.float32)
    rr = np.diff(np.asarray(r_peaks, dtype=np.float64)) / fs
    prev = np.concatenate([[rr[0]], rr])
    nxt = np.concatenate([rr, [rr[-1]]])
    csum = np.concatenate([[0.0], np.cumsum(prev)])
    idx = np.arange(1, n + 1)
    lo = np.maximum(idx - local, 0)
    local_mean = (csum[idx] - csum[lo]) / (idx - lo)
    record_mean = np.full(n, rr.mean())
    return np.stack([prev, nxt, local_mean, record_mean], axis=1).astype(np.float32)


def segment_beats(
    x: np.ndarray,
    fs: float,
    r_peaks: np.ndarray,
    window_s: float = WINDOW_SECONDS,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut beats from one lead the way Kachuee et al. (2018) built the Kaggle set.

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
        One ECG lead in physical units (mV) at ``fs`` Hz.
    fs : float
        Sampling rate of ``x`` in Hz (any rate; the signal is resampled to 125 Hz).
    r_peaks : ndarray, shape (n_beats,)
        R-peak positions in samples at ``fs``, sorted.
    window_s : float
        Normalisation window length in seconds.

    Returns
    -------
    beats : ndarray, shape (n_kept, 187), float32
        Values in [0, 1]; each starts at its R peak and is zero-padded after 1.2 T.
    kept : ndarray, shape (n_kept,), int64
        Indices into ``r_peaks`` of the beats returned (peaks outside the signal are dropped).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise EcgError(f"expected a 1-D signal, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        x = _fill_nonfinite(x)
    r_peaks = np.asarray(r_peaks, dtype=np.int64)
    if len(r_peaks) and np.any(np.diff(r_peaks) < 0):
        raise EcgError("R peaks must be sorted")
    xr = resample_signal(x, fs)
    n = len(xr)
    peaks = np.rint(r_peaks * (FS_BEAT / fs)).astype(np.int64)
    inside = np.flatnonzero((peaks >= 0) & (peaks < n))
    peaks = peaks[inside]
    win = int(round(window_s * FS_BEAT))
    out = np.zeros((len(peaks), BEAT_LENGTH), np.float32)
    record_period = np.median(np.diff(peaks)) if len(peaks) > 1 else FS_BEAT
    win_of_peak = peaks // win
    for w in np.unique(win_of_peak):
        members = np.flatnonzero(win_of_peak == w)
        seg = xr[w * win : min((w + 1) * win, n)]
        lo, hi = seg.min(), seg.max()
        norm = (seg - lo) / (hi - lo) if hi > lo else np.zeros_like(seg)
        in_win = peaks[members]
        period = np.median(np.diff(in_win)) if len(in_win) > 1 else record_period
        length = min(int(round(1.2 * period)), BEAT_LENGTH)
        for i, p in zip(members, in_win - w * win, strict=True):
            piece = norm[p : p + length]
            out[i, : len(piece)] = piece
    return out, inside


def _fill_nonfinite(x: np.ndarray) -> np.ndarray:
    """Replace NaN/inf samples by linear interpolation (WFDB marks gaps as NaN)."""
    good = np.isfinite(x)
    if not good.any():
        raise EcgError("signal has no finite samples")
    idx = np.arange(len(x))
    return np.interp(idx, idx[good], x[good])


def beats_from_annotations(
    x: np.ndarray, fs: float, samples: np.ndarray, symbols: list[str], record: str = ""
) -> Beats:
    """Segment every annotated beat of one lead and label it with the AAMI mapping.

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
        One lead in mV at ``fs`` Hz.
    fs : float
        Sampling rate in Hz.
    samples : ndarray, shape (n_annotations,)
        Annotation positions in samples.
    symbols : list of str, length n_annotations
        MIT-BIH annotation symbols; non-beat symbols and beat symbols outside the
        AAMI map (none in MIT-BIH) are skipped.
    record : str
        Record name stored with each beat.
    """
    samples = np.asarray(samples, dtype=np.int64)
    labels = np.array([AAMI_CLASSES.get(s, -1) for s in symbols], dtype=np.int64)
    is_beat = labels >= 0
    peaks, labels = samples[is_beat], labels[is_beat]
    order = np.argsort(peaks, kind="stable")
    peaks, labels = peaks[order], labels[order]
    rr = rr_features(peaks, fs)
    xb, kept = segment_beats(x, fs, peaks)
    return Beats(
        xb,
        labels[kept],
        np.full(len(kept), record, dtype="<U8"),
        peaks[kept],
        rr[kept],
    )


def pick_lead(sig_names: list[str], preferred: str | None = "MLII") -> tuple[int, str | None]:
    """Index of the preferred lead, else 0, and a note saying which lead was used instead.

    Returns
    -------
    index : int
    note : str or None
        None when the preferred lead was found (or none was asked for).
    """
    if preferred is None:
        return 0, None
    names = [s.strip() for s in sig_names]
    if preferred in names:
        return names.index(preferred), None
    return 0, f"lead {preferred} not found, using {names[0]} (leads: {', '.join(names)})"


def read_record_beats(record_path: str | Path, lead: str | None = "MLII") -> Beats:
    """Read one WFDB record and its ``atr`` annotations and segment its beats.

    Parameters
    ----------
    record_path : path
        Record path without extension (``…/mitdb/100``).
    lead : str or None
        Preferred lead name; the first channel is used when it is missing.
    """
    from .records import read_annotations, read_signal

    record_path = Path(record_path)
    sig, fs, names = read_signal(record_path)
    idx, note = pick_lead(names, lead)
    ann_samples, ann_symbols = read_annotations(record_path)
    beats = beats_from_annotations(sig[:, idx], fs, ann_samples, ann_symbols, record_path.name)
    beats.meta = {"lead": names[idx], "lead_note": note, "fs": fs}
    return beats


def _records_list(mitdb_dir: Path) -> list[str]:
    path = mitdb_dir / "RECORDS"
    if path.exists():
        return [r.strip() for r in path.read_text().split() if r.strip()]
    names = sorted(p.stem for p in mitdb_dir.glob("*.hea"))
    if not names:
        raise EcgError("no WFDB records (*.hea) found", mitdb_dir)
    return names


def data_fingerprint(mitdb_dir: str | Path, records: list[str]) -> str:
    """SHA-256 over the header, signal and annotation files of ``records``."""
    h = hashlib.sha256()
    for rec in records:
        for ext in ("hea", "dat", "atr"):
            p = Path(mitdb_dir) / f"{rec}.{ext}"
            if p.exists():
                h.update(f"{rec}.{ext}".encode())
                h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


SEGMENTATION_VERSION = 1
"""Bump when the segmentation changes, so cached beat sets are rebuilt."""


def build_beats(
    mitdb_dir: str | Path,
    cache_dir: str | Path | None = None,
    records: list[str] | None = None,
    lead: str = "MLII",
    progress: bool = True,
) -> Beats:
    """Segment all beats of a folder of WFDB records (MIT-BIH layout), with caching.

    Parameters
    ----------
    mitdb_dir : path
        Folder holding ``NNN.hea/.dat/.atr`` and optionally ``RECORDS``.
    cache_dir : path, optional
        Where to keep the segmented set (``beats-<hash>.npz``). The key covers the
        input files' contents and the segmentation version, so a second build with the
        same data is a file read.
    records : list of str, optional
        Record names; default: all listed in ``RECORDS``.
    lead : str
        Preferred lead (MLII); records without it fall back to their first channel.

    Returns
    -------
    Beats
        With ``meta`` holding ``fingerprint``, ``records`` and lead notes.
    """
    from tqdm.auto import tqdm

    mitdb_dir = Path(mitdb_dir)
    if not mitdb_dir.is_dir():
        raise EcgError("MIT-BIH folder not found", mitdb_dir)
    records = records or _records_list(mitdb_dir)
    fingerprint = data_fingerprint(mitdb_dir, records)
    key = hashlib.sha256(
        json.dumps([fingerprint, records, lead, SEGMENTATION_VERSION]).encode()
    ).hexdigest()[:16]
    cache = Path(cache_dir) / f"beats-{key}.npz" if cache_dir else None
    if cache is not None and cache.exists():
        try:
            return load_beats(cache)
        except Exception:  # a damaged cache is rebuilt, never trusted
            cache.unlink(missing_ok=True)
    parts, notes = [], {}
    for rec in tqdm(records, desc="segmenting records", disable=not progress, leave=False):
        part = read_record_beats(mitdb_dir / rec, lead)
        if part.meta.get("lead_note"):
            notes[rec] = part.meta["lead_note"]
        parts.append(part)
    meta = {
        "fingerprint": fingerprint,
        "records": records,
        "lead": lead,
        "lead_notes": notes,
        "segmentation_version": SEGMENTATION_VERSION,
    }
    beats = Beats.concat(parts, meta)
    if cache is not None:
        save_beats(beats, cache)
    return beats


def save_beats(beats: Beats, path: str | Path) -> None:
    """Write a ``Beats`` set to an ``.npz`` file atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            x=beats.x,
            y=beats.y,
            record=beats.record,
            r_peak=beats.r_peak,
            rr=beats.rr,
            meta=np.array(json.dumps(beats.meta)),
        )


def load_beats(path: str | Path) -> Beats:
    """Read a ``Beats`` set written by :func:`save_beats` (no pickles are loaded)."""
    with np.load(path, allow_pickle=False) as z:
        return Beats(z["x"], z["y"], z["record"], z["r_peak"], z["rr"], json.loads(str(z["meta"])))


FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "rr": ("rr_prev_rel", "rr_next_rel", "rr_prev_local", "rr_ratio", "rr_prev_s", "rr_next_s"),
}
"""Per-beat feature sets a model can ask for, with the names of their columns."""


def feature_matrix(rr: np.ndarray, feature_set: str | None) -> np.ndarray:
    """Per-beat features from RR intervals, normalised so they transfer across patients.

    Parameters
    ----------
    rr : ndarray, shape (n_beats, 4)
        Previous, next, local mean and record mean RR in seconds (:func:`rr_features`).
    feature_set : {"rr"} or None

    Returns
    -------
    ndarray, shape (n_beats, k), float32
        For ``"rr"``: previous and next RR relative to the record mean, previous RR
        relative to the local mean, next/previous ratio (prematurity and compensatory
        pause), and the raw previous and next RR in seconds. ``k = 0`` for None.
    """
    if not feature_set:
        return np.zeros((len(rr), 0), np.float32)
    if feature_set not in FEATURE_SETS:
        raise EcgError(f"unknown feature set {feature_set!r}; known: {', '.join(FEATURE_SETS)}")
    rr = np.asarray(rr, dtype=np.float64)
    prev, nxt, local, record = (np.clip(rr[:, i], 0.1, 5.0) for i in range(4))
    cols = [prev / record, nxt / record, prev / local, nxt / prev, prev, nxt]
    return np.stack(cols, axis=1).astype(np.float32)
