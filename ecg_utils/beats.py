"""Beat segmentation as in Kachuee et al. (2018) and the AAMI class mapping.

Kachuee et al. describe the Kaggle "ECG Heartbeat Categorization" set as resampled to
125 Hz, normalised per 10 s window and cut into 1.2 T segments (T = the window's median
RR). Its published rows show what was done instead, and :func:`segment_beats` follows
them: every third 360 Hz sample (so 120 Hz, ``FS_BEAT``) from the annotated R peak,
1.2 x the beat's next RR interval, min-max scaled per beat, zero-padded to 187 samples.
Each record's last beat (no next RR) is not in the Kaggle set, and is dropped here too.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._io import EcgError, atomic_path, check_fs

FS_BEAT = 120
"""Sampling rate of segmented beats, in Hz: every third 360 Hz sample, as in the Kaggle
rows (the paper says 125 Hz; the published data are at 120 Hz)."""
BEAT_LENGTH = 187
"""Samples per beat (1.558 s at 120 Hz)."""
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


@dataclass
class Beats:
    """Segmented beats and what is known about each.

    Attributes
    ----------
    x : ndarray, shape (n_beats, 187), float32
        Beats at 120 Hz, values in [0, 1], starting at the R peak.
    y : ndarray, shape (n_beats,), int64
        AAMI labels 0..4 (-1 when unknown, for unlabelled records).
    record : ndarray, shape (n_beats,), str
        Record name of each beat.
    r_peak : ndarray, shape (n_beats,), int64
        R-peak position in samples at the record's own sampling rate.
    rr : ndarray, shape (n_beats, 4), float32
        RR intervals in seconds: previous, next, local mean (last 10 beats) and record mean.
    wide : ndarray, shape (n_beats, 156), float32, or None
        The stretch from 0.9 s before to 0.4 s after each R peak at 120 Hz, scaled per
        recording (:func:`wide_windows`); None where the raw signal is not known (beats
        read from Kaggle's CSVs).
    relative : ndarray, shape (n_beats, 103), float32, or None
        The patient-relative features of two leads (:func:`ecg_utils.relative.
        relative_features`, NaN for a missing second lead); None where the raw signal is
        not known.
    """

    x: np.ndarray
    y: np.ndarray
    record: np.ndarray
    r_peak: np.ndarray
    rr: np.ndarray
    meta: dict = field(default_factory=dict)
    wide: np.ndarray | None = None
    relative: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx: np.ndarray) -> Beats:
        """Return the beats at ``idx`` (an index or boolean mask)."""
        return Beats(
            self.x[idx],
            self.y[idx],
            self.record[idx],
            self.r_peak[idx],
            self.rr[idx],
            self.meta,
            None if self.wide is None else self.wide[idx],
            None if self.relative is None else self.relative[idx],
        )

    def counts(self) -> dict[str, int]:
        """Number of beats per AAMI class name."""
        return {name: int((self.y == k).sum()) for k, name in enumerate(CLASS_NAMES)}

    @staticmethod
    def concat(parts: list[Beats], meta: dict | None = None) -> Beats:
        """Stack several ``Beats`` into one."""
        if not parts:
            return Beats.empty(meta)
        wide = relative = None
        if all(p.wide is not None for p in parts):
            wide = np.concatenate([p.wide for p in parts])
        if all(p.relative is not None for p in parts):
            relative = np.concatenate([p.relative for p in parts])
        return Beats(
            np.concatenate([p.x for p in parts]),
            np.concatenate([p.y for p in parts]),
            np.concatenate([p.record for p in parts]),
            np.concatenate([p.r_peak for p in parts]),
            np.concatenate([p.rr for p in parts]),
            meta or {},
            wide,
            relative,
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
    last_rr: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut beats from one lead exactly the way the Kaggle heartbeat set was built.

    Kachuee et al. (2018) describe resampling to 125 Hz, 10 s windows normalised to
    [0, 1] and 1.2 T segments with T the window's median RR. The published Kaggle rows
    say otherwise, and this function follows the rows: two rows traced back to MIT-BIH
    (train row 0 = record 122 beat at sample 82213, test row 0 = record 103 at 322111)
    are every third raw 360 Hz sample from the annotated R peak (so 120 Hz, with no
    filtering or interpolation), min-max scaled over the beat itself (its minimum
    and maximum lie inside the row, e.g. the next beat's R peak), and the segment
    length follows the beat's own next RR interval.

    For beat ``i`` with R peak ``r_i``: ``L = round(1.2 * (r_{i+1} - r_i) * 120 / fs)``
    samples (at most 187) are taken at ``r_i + round(k * fs / 120)``, ``k < L`` (the
    nearest input sample to each 120 Hz instant; at 360 Hz every third sample); the
    segment is scaled to [0, 1] by its own min and max (a flat segment gives zeros) and
    zero-padded to 187. The last peak has no next RR and uses the median RR of
    ``r_peaks`` instead (1 s when there is a single peak); Kaggle has no such beats
    (it drops each record's last beat). No anti-aliasing filter is applied, as in the
    Kaggle set: faithful to it and harmless for ECG, whose QRS energy is mostly below
    the 60 Hz Nyquist limit of 120 Hz. Below 120 Hz, nearest-sample picking repeats
    input samples.

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
        One ECG lead (any units: each beat is min-max scaled) at ``fs`` Hz. NaN gaps are
        linearly interpolated.
    fs : float
        Sampling rate of ``x`` in Hz (:func:`~ecg_utils._io.check_fs`: 50 to 20,000 Hz).
    r_peaks : ndarray, shape (n_beats,)
        R-peak positions in samples at ``fs``, sorted.
    last_rr : float, optional
        RR interval in samples that sizes the last peak's segment (default: the median
        RR of ``r_peaks``); lets a long recording be segmented in chunks.

    Returns
    -------
    beats : ndarray, shape (n_kept, 187), float32
        Values in [0, 1]; each starts at its R peak and is zero-padded after 1.2 RR.
    kept : ndarray, shape (n_kept,), int64
        Indices into ``r_peaks`` of the beats returned (peaks outside the signal are
        dropped; every peak inside it is kept).
    """
    fs = check_fs(fs)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise EcgError(f"expected a 1-D signal, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        x = _fill_nonfinite(x)
    r_peaks = np.asarray(r_peaks, dtype=np.int64)
    if len(r_peaks) and np.any(np.diff(r_peaks) < 0):
        raise EcgError("R peaks must be sorted")
    n = len(x)
    kept = np.flatnonzero((r_peaks >= 0) & (r_peaks < n))
    peaks = r_peaks[kept]
    out = np.zeros((len(peaks), BEAT_LENGTH), np.float32)
    if len(peaks) == 0:
        return out, kept
    step = fs / FS_BEAT  # input samples per output sample
    rr = np.diff(peaks).astype(np.float64)
    if last_rr is None:
        last_rr = np.median(rr) if len(rr) else fs
    rr = np.append(rr, last_rr)
    length = np.clip(np.rint(1.2 * rr / step), 1, BEAT_LENGTH).astype(np.int64)
    offsets = np.rint(np.arange(BEAT_LENGTH) * step).astype(np.int64)
    idx = peaks[:, None] + offsets[None, :]
    valid = (np.arange(BEAT_LENGTH)[None, :] < length[:, None]) & (idx < n)
    seg = x[np.minimum(idx, n - 1)]
    lo = np.where(valid, seg, np.inf).min(axis=1, keepdims=True)
    hi = np.where(valid, seg, -np.inf).max(axis=1, keepdims=True)
    # scale by the larger magnitude first so that hi - lo cannot overflow
    scale = np.maximum(np.abs(lo), np.abs(hi))
    scale[scale == 0] = 1.0
    lo_s, hi_s = lo / scale, hi / scale
    span = hi_s - lo_s
    flat = ~(span > 0)
    norm = (seg / scale - lo_s) / np.where(flat, 1.0, span)
    norm = np.clip(norm, 0.0, 1.0)
    norm[~valid | flat] = 0.0
    out[:] = norm
    return out, kept


WIDE_BEFORE = 108
"""Samples of the wide window before the R peak (0.9 s at 120 Hz)."""
WIDE_LENGTH = 156
"""Samples of the wide window: 0.9 s before the R peak to 0.39 s after it, at 120 Hz."""
WIDE_QRS = 12
"""Half-width in samples (0.1 s at 120 Hz) of the QRS stretch that sets a recording's scale."""
WIDE_CLIP = 4.0
"""Wide-window values are clipped to +-this many median QRS amplitudes."""


def wide_windows(x: np.ndarray, fs: float, r_peaks: np.ndarray) -> np.ndarray:
    """The stretch around each R peak that holds the beat's own P wave and the beat before.

    The Kachuee window (:func:`segment_beats`) starts at the R peak, so a network that
    reads it never sees the P wave that tells a supraventricular beat from a sinus one,
    nor the end of the previous beat. This window runs from 0.9 s before the R peak
    (past the previous beat's T wave at ordinary rates) to 0.39 s after it, at 120 Hz,
    by nearest-sample picking as in :func:`segment_beats`. Each window's median is
    subtracted (baseline wander); the amplitude is scaled per recording, not per beat,
    by the median over all beats of the QRS peak-to-peak amplitude (R peak +- 0.1 s), so
    that a beat larger or smaller than the patient's usual one stays so. Samples before
    the start or after the end of the signal repeat the edge sample.

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
        One ECG lead (any units) at ``fs`` Hz; NaN gaps are linearly interpolated.
    fs : float
        Sampling rate in Hz.
    r_peaks : ndarray, shape (n_beats,)
        R-peak positions in samples at ``fs`` (all of one recording: they set its scale).

    Returns
    -------
    ndarray, shape (n_beats, 156), float32
        The R peak is at index 108 (:data:`WIDE_BEFORE`); values in units of the
        recording's median QRS amplitude, clipped to +-4.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0:
        raise EcgError(f"expected a non-empty 1-D signal, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        x = _fill_nonfinite(x)
    peaks = np.asarray(r_peaks, dtype=np.int64)
    if len(peaks) == 0:
        return np.zeros((0, WIDE_LENGTH), np.float32)
    steps = np.arange(WIDE_LENGTH) - WIDE_BEFORE
    offsets = np.rint(steps * (fs / FS_BEAT)).astype(np.int64)
    seg = x[np.clip(peaks[:, None] + offsets[None, :], 0, len(x) - 1)]
    seg -= np.median(seg, axis=1, keepdims=True)
    qrs = seg[:, WIDE_BEFORE - WIDE_QRS : WIDE_BEFORE + WIDE_QRS + 1]
    amplitude = float(np.median(qrs.max(axis=1) - qrs.min(axis=1)))
    if not amplitude > 0:
        amplitude = 1.0
    return np.clip(seg / amplitude, -WIDE_CLIP, WIDE_CLIP).astype(np.float32)


def _fill_nonfinite(x: np.ndarray) -> np.ndarray:
    """Replace NaN/inf samples by linear interpolation (WFDB marks gaps as NaN)."""
    good = np.isfinite(x)
    if not good.any():
        raise EcgError("signal has no finite samples")
    idx = np.arange(len(x))
    return np.interp(idx, idx[good], x[good])


def annotated_beats(samples: np.ndarray, symbols: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The beats among annotations: R peaks and AAMI labels, sorted by position.

    Parameters
    ----------
    samples : ndarray, shape (n_annotations,)
        Annotation positions in samples.
    symbols : list of str, length n_annotations
        Annotation symbols; those outside :data:`AAMI_CLASSES` are not beats.

    Returns
    -------
    peaks : ndarray of int64, shape (n_beats,)
    labels : ndarray of int64, shape (n_beats,)
        0..4 (N, S, V, F, Q).
    """
    samples = np.asarray(samples, dtype=np.int64)
    labels = np.array([AAMI_CLASSES.get(s, -1) for s in symbols], dtype=np.int64)
    is_beat = labels >= 0
    order = np.argsort(samples[is_beat], kind="stable")
    return samples[is_beat][order], labels[is_beat][order]


def beats_from_annotations(
    x: np.ndarray,
    fs: float,
    samples: np.ndarray,
    symbols: list[str],
    record: str = "",
    drop_last: bool = True,
    other_lead: np.ndarray | None = None,
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
    drop_last : bool
        Drop the record's last beat, as the Kaggle set does (its segment length would
        need the next RR interval).
    other_lead : ndarray, shape (n_samples,), optional
        The record's second lead, read by the patient-relative features beside ``x``.
    """
    from .relative import RELATIVE_LEADS, relative_features

    peaks, labels = annotated_beats(samples, symbols)
    rr = rr_features(peaks, fs)
    xb, kept = segment_beats(x, fs, peaks)
    wide = wide_windows(x, fs, peaks[kept])  # scaled over every beat, the last included
    leads = x[:, None] if other_lead is None else np.column_stack([x, other_lead])
    relative = relative_features(leads, fs, peaks[kept], n_leads=RELATIVE_LEADS)
    if drop_last and len(kept) and kept[-1] == len(peaks) - 1:
        # the last beat has no next RR interval to size its segment; Kaggle drops it
        xb, kept, wide, relative = xb[:-1], kept[:-1], wide[:-1], relative[:-1]
    return Beats(
        xb,
        labels[kept],
        np.full(len(kept), record, dtype="<U8"),
        peaks[kept],
        rr[kept],
        wide=wide,
        relative=relative,
    )


LEAD_FALLBACKS = ("MLII", "II", "V1")
"""Leads taken, in this order, when the preferred one is missing: the models were trained
on MIT-BIH's modified lead II, so lead II of a 12-lead ECG first, then V1 (MIT-BIH's usual
second lead), else the first signal."""


def lead_key(name: str) -> str:
    """A lead name for matching: case-insensitive, without an ``ECG``/``Lead`` prefix
    (``"ECG II"``, ``"Lead II"`` and ``"ii"`` all match ``"II"``)."""
    return re.sub(r"^(?:ecg|lead)[\s_-]+", "", name.strip().lower())


def pick_lead(sig_names: list[str], preferred: str | None = "MLII") -> tuple[int, str | None]:
    """Index of the preferred lead, else of the first of :data:`LEAD_FALLBACKS`, else 0,
    and a note saying which lead was used instead.

    Names match case-insensitively (:func:`lead_key`).

    Returns
    -------
    index : int
    note : str or None
        None when the preferred lead was found (or none was asked for).
    """
    if preferred is None:
        return 0, None
    names = [s.strip() for s in sig_names]
    keys = [lead_key(s) for s in names]
    if lead_key(preferred) in keys:
        return keys.index(lead_key(preferred)), None
    found = [keys.index(lead_key(f)) for f in LEAD_FALLBACKS if lead_key(f) in keys]
    idx = found[0] if found else 0
    return idx, f"lead {preferred} not found, using {names[idx]} (leads: {', '.join(names)})"


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
    others = [i for i in range(sig.shape[1]) if i != idx]
    other = sig[:, others[0]] if others else None
    try:
        beats = beats_from_annotations(
            sig[:, idx], fs, ann_samples, ann_symbols, record_path.name, other_lead=other
        )
    except EcgError as exc:
        if exc.path is not None:
            raise
        raise EcgError(
            f"lead {names[idx]}: {exc.problem}", record_path.with_suffix(".dat")
        ) from exc
    beats.meta = {"lead": names[idx], "lead_note": note, "fs": fs}
    return beats


_RECORD_NAME = re.compile(r"[A-Za-z0-9_-]+")


def _records_list(mitdb_dir: Path) -> list[str]:
    """Record names from ``RECORDS``, else from the ``*.hea`` files of the folder."""
    path = mitdb_dir / "RECORDS"
    if path.is_file():
        try:
            names = path.read_text(encoding="ascii").split()
        except (UnicodeDecodeError, OSError) as exc:
            raise EcgError(f"cannot read the record list: {exc}", path) from None
        if not names:
            raise EcgError("lists no records", path)
        return _check_record_names(names, path)
    names = sorted(p.stem for p in mitdb_dir.glob("*.hea"))
    if not names:
        raise EcgError("no WFDB records (*.hea) found", mitdb_dir)
    return _check_record_names(names, mitdb_dir)


def _check_record_names(names: list[str], where: str | Path) -> list[str]:
    """Refuse names that are not plain record names (``100``, ``x_mitdb-1``)."""
    for name in names:
        if not isinstance(name, str) or not _RECORD_NAME.fullmatch(name):
            raise EcgError(
                f"invalid record name {name!r}: expected letters, digits, '_' or '-'", where
            )
    return list(names)


def file_checksums(mitdb_dir: str | Path, records: list[str]) -> dict[str, str]:
    """SHA-256 (hex) of the header, signal and annotation files of ``records``.

    Returns
    -------
    dict
        ``{"100.hea": "…", "100.dat": "…", …}`` in record order; files that do not
        exist are left out. Compare with PhysioNet's ``SHA256SUMS``.
    """
    out = {}
    for rec in records:
        for ext in ("hea", "dat", "atr"):
            p = Path(mitdb_dir) / f"{rec}.{ext}"
            if p.is_file():
                out[f"{rec}.{ext}"] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def data_fingerprint(mitdb_dir: str | Path, records: list[str]) -> str:
    """SHA-256 over the header, signal and annotation files of ``records``."""
    h = hashlib.sha256()
    for name, digest in file_checksums(mitdb_dir, records).items():
        h.update(name.encode())
        h.update(bytes.fromhex(digest))
    return h.hexdigest()


SEGMENTATION_VERSION = 3
"""Bump when the Kachuee beats change, so cached beat sets are rebuilt (and the study's
results marked stale)."""
WIDE_VERSION = 1
"""Bump when :func:`wide_windows` changes: cached beat sets are rebuilt, results kept."""
CACHE_RELATIVE_VERSION = 1
"""Bump when :mod:`ecg_utils.relative` changes: cached beat sets are rebuilt, the
networks' results kept (they do not read the relative features)."""


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
    records = _check_record_names(list(records), mitdb_dir) if records else _records_list(mitdb_dir)
    fingerprint = data_fingerprint(mitdb_dir, records)
    key = hashlib.sha256(
        json.dumps(
            [fingerprint, records, lead, SEGMENTATION_VERSION, WIDE_VERSION, CACHE_RELATIVE_VERSION]
        ).encode()
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
        try:
            save_beats(beats, cache)
        except OSError as exc:  # a cache that cannot be written only costs time
            import warnings

            warnings.warn(f"{cache}: beat cache not written: {exc}", stacklevel=2)
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
            **({} if beats.wide is None else {"wide": beats.wide}),
            **({} if beats.relative is None else {"relative": beats.relative}),
        )


def load_beats(path: str | Path) -> Beats:
    """Read a ``Beats`` set written by :func:`save_beats` (no pickles are loaded)."""
    with np.load(path, allow_pickle=False) as z:
        wide = z["wide"] if "wide" in z.files else None
        relative = z["relative"] if "relative" in z.files else None
        meta = json.loads(str(z["meta"]))
        beats = Beats(z["x"], z["y"], z["record"], z["r_peak"], z["rr"], meta, wide, relative)
    n = len(beats.y)
    if (
        (wide is not None and wide.shape != (n, WIDE_LENGTH))
        or (relative is not None and len(relative) != n)
        or beats.x.shape != (n, BEAT_LENGTH)
        or beats.rr.shape != (n, 4)
        or len(beats.record) != n
        or len(beats.r_peak) != n
        or not isinstance(beats.meta, dict)
    ):
        raise EcgError("beat file arrays do not fit together (damaged file?)", path)
    return beats


RR_FEATURES = ("rr_prev_rel", "rr_next_rel", "rr_prev_local", "rr_ratio", "rr_prev_s", "rr_next_s")
MORPH_FEATURES = ("template_corr", "template_rms_qrs", "template_rms_st", "template_rms_all")
CONTEXT_FEATURES = ("rr_prev_median", "rr_next_median", "rr_prev_change", "rr_irregularity")
RR_RELATIVE = RR_FEATURES[:4]
"""The RR features without the raw intervals in seconds, which tie a model to the
heart rates of its training patients (cross-validation on DS1 found them to hurt)."""
WIDE_COLUMNS = tuple(f"wide_{i:03d}" for i in range(WIDE_LENGTH))
"""Columns holding the wide window (:func:`wide_windows`), last in a feature set."""
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "rr": RR_FEATURES,
    "rr+morph": RR_FEATURES + MORPH_FEATURES,
    "rhythm": RR_RELATIVE + MORPH_FEATURES + CONTEXT_FEATURES,
    "rr+morph+wide": RR_FEATURES + MORPH_FEATURES + WIDE_COLUMNS,
    "rhythm+wide": RR_RELATIVE + MORPH_FEATURES + CONTEXT_FEATURES + WIDE_COLUMNS,
}
RELATIVE_SET = "relative"
"""The patient-relative feature set (:mod:`ecg_utils.relative`): computed from the whole
recording's leads, not from the 120 Hz beats, so it is not among :data:`FEATURE_SETS`
(the networks' sets) and :func:`beat_features` reads it from ``Beats.relative``."""
"""Per-beat feature sets a model can ask for, with the names of their columns."""


def waveform_length(feature_set: str | None) -> int:
    """How many of a feature set's last columns are the wide window (0 or 156)."""
    return WIDE_LENGTH if feature_set and feature_set.endswith("+wide") else 0


def feature_matrix(
    rr: np.ndarray,
    feature_set: str | None,
    x: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    wide: np.ndarray | None = None,
) -> np.ndarray:
    """Per-beat features normalised so that they transfer across patients.

    Parameters
    ----------
    rr : ndarray, shape (n_beats, 4)
        Previous, next, local mean and record mean RR in seconds (:func:`rr_features`).
    feature_set : {"rr", "rr+morph", "rhythm"} or None
    x : ndarray, shape (n_beats, 187), optional
        The beats (needed by ``"rr+morph"`` and ``"rhythm"``).
    groups : ndarray, shape (n_beats,), optional
        Recording of each beat (``Beats.record``); None means one recording. Beats of a
        recording must be in time order (as :func:`build_beats` gives them).
    wide : ndarray, shape (n_beats, 156), optional
        The wide windows (:func:`wide_windows`), needed by the ``"+wide"`` sets.

    Returns
    -------
    ndarray, shape (n_beats, k), float32
        ``"rr"``: previous and next RR relative to the record mean, previous RR relative
        to the local mean, next/previous ratio (prematurity and compensatory pause), and
        the raw previous and next RR in seconds. ``"rr+morph"`` adds how each beat
        differs from its recording's median beat (see :func:`template_features`).
        ``"rhythm"`` has only scale-free columns: the first four of ``"rr"`` (no
        seconds), the template ones, and the rhythm around the beat (see
        :func:`context_features`). A ``"+wide"`` set adds the 156 samples of the wide
        window after the columns of the set it extends. ``k = 0`` for None.
    """
    if not feature_set:
        return np.zeros((len(rr), 0), np.float32)
    if feature_set not in FEATURE_SETS:
        raise EcgError(f"unknown feature set {feature_set!r}; known: {', '.join(FEATURE_SETS)}")
    base = feature_set.removesuffix("+wide")
    rr = np.asarray(rr, dtype=np.float64)
    prev, nxt, local, record = (np.clip(rr[:, i], 0.1, 5.0) for i in range(4))
    cols = [prev / record, nxt / record, prev / local, nxt / prev]
    if base != "rhythm":
        cols += [prev, nxt]
    out = np.stack(cols, axis=1).astype(np.float32)
    if base != "rr":
        if x is None:
            raise EcgError(f"feature set {feature_set!r} needs the beats themselves")
        out = np.concatenate([out, template_features(x, groups)], axis=1)
    if base == "rhythm":
        out = np.concatenate([out, context_features(rr, groups)], axis=1)
    if waveform_length(feature_set):
        if wide is None:
            raise EcgError(
                f"feature set {feature_set!r} needs the wide window around each R peak, "
                "which only a raw recording gives (not Kaggle's beat CSVs)"
            )
        out = np.concatenate([out, np.asarray(wide, dtype=np.float32)], axis=1)
    return out


CONTEXT_BEATS = 8
"""Beats on each side of a beat whose RR intervals give its local rhythm."""


def context_features(rr: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """The rhythm around each beat, robust to the ectopic beats in it.

    The local rhythm is the median previous-RR of the :data:`CONTEXT_BEATS` beats on
    each side (a median, so that a run of premature beats does not drag it, as it drags
    a mean); prematurity is also measured against the previous beat's own RR. The
    irregularity of the rhythm tells an early beat in a regular rhythm (a premature
    beat) from one in a rhythm that is irregular throughout (atrial fibrillation).

    Parameters
    ----------
    rr : ndarray, shape (n_beats, 4)
        :func:`rr_features` columns, in seconds; beats of a recording in time order.
    groups : ndarray, shape (n_beats,), optional
        Recording of each beat; None means one recording.

    Returns
    -------
    ndarray, shape (n_beats, 4), float32
        Previous and next RR over the local median; previous RR over the previous
        beat's previous RR (1 where the previous beat is not its neighbour: the first
        beat, or a gap in the beats given); and the local median of the absolute
        changes between successive previous-RRs over the local median RR (0 for a
        regular rhythm, about 0.1-0.3 in atrial fibrillation).
    """
    from scipy.ndimage import median_filter

    rr = np.clip(np.asarray(rr, dtype=np.float64), 0.1, 5.0)
    out = np.ones((len(rr), len(CONTEXT_FEATURES)), np.float32)
    groups = np.zeros(len(rr), np.int64) if groups is None else np.asarray(groups)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        prev, nxt = rr[idx, 0], rr[idx, 1]
        median = median_filter(prev, size=2 * CONTEXT_BEATS + 1, mode="nearest")
        out[idx, 0] = prev / median
        out[idx, 1] = nxt / median
        # neighbours share an interval: the next RR of one is the previous RR of the other
        adjacent = np.isclose(nxt[:-1], prev[1:], rtol=1e-5, atol=0)
        change = np.ones(len(idx))
        change[1:] = np.where(adjacent, prev[1:] / prev[:-1], 1.0)
        out[idx, 2] = change
        steps = np.abs(np.diff(prev, prepend=prev[0]))
        out[idx, 3] = median_filter(steps, size=2 * CONTEXT_BEATS + 1, mode="nearest") / median
    return out


def beat_features(beats: Beats, feature_set: str | None) -> np.ndarray:
    """:func:`feature_matrix` of a :class:`Beats` set, grouped by its records, or its
    patient-relative features for :data:`RELATIVE_SET`.

    Returns
    -------
    ndarray, shape (n_beats, k), float32
        ``k = 0`` when ``feature_set`` is None.
    """
    if feature_set == RELATIVE_SET:
        if beats.relative is None:
            raise EcgError(
                "the relative feature set needs the raw recordings (build the beats from "
                "WFDB records, not Kaggle's beat CSVs)"
            )
        return beats.relative
    return feature_matrix(beats.rr, feature_set, beats.x, beats.record, beats.wide)


def template_features(x: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """How each beat differs from the median beat of its recording.

    A patient's dominant beat is normal for that patient (even a bundle-branch-block
    beat that would look ventricular in someone else), so the distance to it transfers
    across patients better than the shape alone. Uses no labels.

    Parameters
    ----------
    x : ndarray, shape (n_beats, 187)
        Beats at 120 Hz.
    groups : ndarray, shape (n_beats,), optional
        Recording of each beat; None means all beats come from one recording.

    Returns
    -------
    ndarray, shape (n_beats, 4), float32
        Correlation with the template over the first 0.75 s, and RMS differences over
        the QRS (first 0.3 s), the ST-T segment (0.3–1.0 s) and the whole beat.
    """
    x = np.asarray(x, dtype=np.float32)
    out = np.zeros((len(x), len(MORPH_FEATURES)), np.float32)
    if len(x) == 0:
        return out
    groups = np.zeros(len(x), np.int64) if groups is None else np.asarray(groups)
    qrs, st, corr_end = int(0.3 * FS_BEAT), int(1.0 * FS_BEAT), int(0.75 * FS_BEAT)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        template = np.median(x[idx], axis=0)
        diff = x[idx] - template
        a = x[idx, :corr_end] - x[idx, :corr_end].mean(axis=1, keepdims=True)
        b = template[:corr_end] - template[:corr_end].mean()
        denom = np.sqrt((a**2).sum(axis=1) * (b**2).sum()) + 1e-6
        out[idx, 0] = (a @ b) / denom
        out[idx, 1] = np.sqrt((diff[:, :qrs] ** 2).mean(axis=1))
        out[idx, 2] = np.sqrt((diff[:, qrs:st] ** 2).mean(axis=1))
        out[idx, 3] = np.sqrt((diff**2).mean(axis=1))
    return out
