"""Reading WFDB records and annotations with clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._io import EcgError


def read_signal(record_path: str | Path) -> tuple[np.ndarray, float, list[str]]:
    """Read a WFDB record's signals in physical units.

    Parameters
    ----------
    record_path : path
        Record path without extension (``…/mitdb/100``).

    Returns
    -------
    signal : ndarray, shape (n_samples, n_leads), float64
        Samples in physical units (mV for MIT-BIH); gaps are NaN.
    fs : float
        Sampling rate in Hz.
    names : list of str
        Lead names, one per column.
    """
    import wfdb

    record_path = Path(record_path)
    header = record_path.with_suffix(".hea")
    if not header.exists():
        raise EcgError("WFDB header not found", header)
    try:
        rec = wfdb.rdrecord(str(record_path))
    except Exception as exc:  # wfdb raises many types for malformed files
        raise EcgError(f"cannot read WFDB record: {_one_line(exc)}", header) from exc
    fs = float(rec.fs or 0)
    if not np.isfinite(fs) or fs <= 0 or fs > 100_000:
        raise EcgError(f"sampling frequency must be in (0, 100000] Hz, got {rec.fs}", header)
    if rec.p_signal is None or rec.p_signal.size == 0:
        raise EcgError("record holds no samples", header)
    if np.any(np.asarray(rec.adc_gain) == 0):
        raise EcgError("a signal has ADC gain 0", header)
    return np.asarray(rec.p_signal, dtype=np.float64), fs, list(rec.sig_name)


def read_annotations(record_path: str | Path, extension: str = "atr"):
    """Read a WFDB annotation file.

    Returns
    -------
    samples : ndarray, shape (n,), int64
        Annotation positions in samples.
    symbols : list of str
        Annotation symbols (beat and non-beat).
    """
    import wfdb

    record_path = Path(record_path)
    path = record_path.with_suffix(f".{extension}")
    if not path.exists():
        raise EcgError("annotation file not found", path)
    try:
        ann = wfdb.rdann(str(record_path), extension)
    except Exception as exc:
        raise EcgError(f"cannot read annotations: {_one_line(exc)}", path) from exc
    return np.asarray(ann.sample, dtype=np.int64), list(ann.symbol)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
