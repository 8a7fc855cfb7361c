"""Reading ECG samples from CSV and NumPy files as users export them.

A CSV may start with a header row that names its columns; a column named like time
(``time``, ``t``, ``seconds``, ``time_s``, ``ms`` …) or, without a name, one that steps
up uniformly gives the sampling rate; a sample counter (``sample``, ``index``, or
unnamed integers 0, 1, 2 …) is left out. The lead is chosen among the other columns as
in WFDB records (:func:`choose_lead`). A CSV of 188 unnamed columns is Kaggle-format
beats (:func:`ecg_utils.sources.load_kaggle_csv`), as the ``predict`` command expects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ._io import FS_MAX, FS_MIN, EcgError, check_fs
from .beats import lead_key, pick_lead

TIME_COLUMNS: dict[str, float | None] = {
    **dict.fromkeys(("time", "t", "elapsed", "elapsed_time", "timestamp"), None),
    **dict.fromkeys(
        (
            "s",
            "sec",
            "secs",
            "second",
            "seconds",
            "time_s",
            "time_sec",
            "time_secs",
            "time_seconds",
            "elapsed_s",
            "timestamp_s",
        ),
        1.0,
    ),  # fmt: skip
    **dict.fromkeys(
        (
            "ms",
            "msec",
            "millisecond",
            "milliseconds",
            "time_ms",
            "time_msec",
            "elapsed_ms",
            "timestamp_ms",
        ),
        1e-3,
    ),  # fmt: skip
}
"""Column names (lower case, brackets and spaces as ``_``: ``"Time (s)"`` is ``time_s``)
taken for a time axis, and the factor from their unit to seconds. None (no unit in the
name, as for an unnamed uniform column): seconds, or milliseconds when seconds give no
ECG sampling rate and milliseconds do (the two ranges do not overlap)."""
INDEX_COLUMNS = frozenset({"sample", "samples", "sample_index", "index", "idx"})
"""Column names taken for a sample counter: neither time nor ECG (not ``i``: lead I)."""
FS_TOLERANCE = 0.01
"""Largest relative difference between ``--fs`` and a time column's rate (text rounding)."""


def _column_key(name: str) -> str:
    return re.sub(r"[\s_()\[\]]+", "_", name.strip().lower()).strip("_")


@dataclass(frozen=True)
class SampleTable:
    """The columns of a CSV of samples, classified.

    Attributes
    ----------
    data : ndarray, shape (n_samples, n_columns), float64
    names : list of str
        Column names (``column <i>`` when the file has no header row).
    header : bool
        Whether the first row named the columns.
    time : int or None
        Column of the time axis.
    fs : float or None
        Sampling rate in Hz that the time column gives.
    ignored : tuple of int
        Sample-counter columns.
    """

    data: np.ndarray
    names: list[str]
    header: bool
    time: int | None
    fs: float | None
    ignored: tuple[int, ...]

    @property
    def signals(self) -> list[int]:
        """Columns that may hold the ECG."""
        skip = {*self.ignored, *([] if self.time is None else [self.time])}
        return [i for i in range(len(self.names)) if i not in skip]


def read_csv_table(path: str | Path) -> SampleTable:
    """Read a CSV of samples: header row, delimiter, time and counter columns.

    Parameters
    ----------
    path : path
        Comma-, semicolon-, tab- or space-separated numbers, optionally below one
        header row.

    Returns
    -------
    SampleTable

    Raises
    ------
    EcgError
        Naming the file when it cannot be parsed, is empty, holds text below the header,
        has two time columns, or a time column that is not a uniform time axis.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
            first = handle.readline()
    except OSError as exc:
        raise EcgError(f"cannot read CSV: {exc.strerror or exc}", path) from None
    sep = _delimiter(first)
    cells = [c.strip().strip('"').strip("'") for c in re.split(sep, first.strip())]
    header = any(c and not _is_number(c) for c in cells)
    try:
        frame = pd.read_csv(
            path, sep=sep, header=0 if header else None, encoding="utf-8-sig", engine="c"
        )
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise EcgError(f"cannot parse CSV: {str(exc).splitlines()[0]}", path) from exc
    if frame.size == 0:
        raise EcgError("CSV is empty" + (" (a header row, no samples)" if header else ""), path)
    if header:  # as written: pandas would rename a repeated name ("II" and "II.1")
        names = cells if len(cells) == frame.shape[1] else [str(c) for c in frame.columns]
        names = [n or f"column {i}" for i, n in enumerate(names)]
    else:
        names = [f"column {i}" for i in range(frame.shape[1])]
    text = [n for n, dt in zip(names, frame.dtypes, strict=True) if dt.kind not in "fiu"]
    if text:
        where = f"column {text[0]}" if header else "the CSV"
        hint = "" if header else " (a header row is read only when it is the first line)"
        raise EcgError(f"{where} holds text; expected numbers{hint}", path)
    data = frame.to_numpy(dtype=np.float64)
    time, fs, ignored = _time_columns(data, names if header else None, path)
    return SampleTable(data, names, header, time, fs, ignored)


def _delimiter(line: str) -> str:
    for sep in (",", ";", "\t"):
        if sep in line:
            return sep
    return r"\s+"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _time_columns(data: np.ndarray, names: list[str] | None, path: Path):
    """(time column, its rate in Hz, counter columns) of a table of samples."""
    named, counters, uniform = [], [], []
    for i in range(data.shape[1]):
        key = _column_key(names[i]) if names else None
        if key in INDEX_COLUMNS:
            counters.append(i)
        elif key in TIME_COLUMNS:
            named.append(i)
        else:
            step = _uniform_step(data[:, i])
            if step is not None:
                if step == 1 and np.all(data[:, i] == np.round(data[:, i])):
                    counters.append(i)  # 0, 1, 2 …: a sample counter
                else:
                    uniform.append(i)
    candidates = named or uniform
    label = (lambda i: repr(names[i])) if names else (lambda i: f"column {i}")
    if len(candidates) > 1:
        which = " and ".join(label(i) for i in candidates)
        raise EcgError(f"two time columns ({which}): keep one", path)
    if not candidates:
        return None, None, tuple(counters)
    col = candidates[0]
    step = _uniform_step(data[:, col])
    if step is None:
        raise EcgError(
            f"time column {label(col)} is not a uniform time axis (unsorted, repeated or "
            "missing samples)",
            path,
        )
    scale = TIME_COLUMNS[_column_key(names[col])] if col in named else None
    if scale is None:  # no unit: seconds, or milliseconds when seconds give no ECG rate
        in_ms = FS_MIN <= 1e3 / step <= FS_MAX and not FS_MIN <= 1.0 / step <= FS_MAX
        scale = 1e-3 if in_ms else 1.0
    fs = 1.0 / (step * scale)
    try:
        fs = check_fs(round(fs, 6), path)
    except EcgError as exc:
        raise EcgError(
            f"time column {label(col)} steps by {step:g} ({'s' if scale == 1 else 'ms'}): "
            f"{exc.problem}",
            path,
        ) from None
    return col, fs, tuple(counters)


def _uniform_step(values: np.ndarray) -> float | None:
    """The step of a strictly increasing column on a uniform grid, else None.

    Every value, and every difference, must lie within half a step of ``first + i *
    step`` and ``step``: text rounding of the times passes, a missing sample does not.
    """
    n = len(values)
    if n < 3 or not np.all(np.isfinite(values)):
        return None
    diffs = np.diff(values)
    if not np.all(diffs > 0):
        return None
    step = (values[-1] - values[0]) / (n - 1)
    grid = values[0] + step * np.arange(n)
    on_grid = np.max(np.abs(values - grid)) <= 0.5 * step
    return float(step) if on_grid and np.all(np.abs(diffs - step) < 0.5 * step) else None


def choose_lead(
    names: list[str],
    lead: str | None,
    path: str | Path,
    candidates: list[int] | None = None,
) -> tuple[int, str | None]:
    """The column of the lead to classify: the one rule of WFDB, EDF, CSV and NPY files.

    Parameters
    ----------
    names : list of str
        Lead (column) names in file order.
    lead : str or None
        ``--lead``: a name, matched case-insensitively (:func:`ecg_utils.beats.lead_key`),
        or a column index (0-based, in file order); None takes MLII, else lead II, else
        V1, else the first (:func:`ecg_utils.beats.pick_lead`).
    path : path
        The file, for the errors.
    candidates : list of int, optional
        Columns that may be chosen (a CSV's time column may not); default all.

    Returns
    -------
    index : int
    note : str or None
        Which lead was used when the default was missing.

    Raises
    ------
    EcgError
        When ``lead`` names no column or several, or is an index out of range or of a
        column that is not a signal.
    """
    candidates = list(range(len(names))) if candidates is None else candidates
    if not candidates:
        raise EcgError("no signal column besides the time and sample columns", path)
    shown = ", ".join(names[i] for i in candidates)
    if lead is None:
        idx, note = pick_lead([names[i] for i in candidates], "MLII")
        if len(candidates) == 1:
            note = None  # the only signal: nothing to choose
        return candidates[idx], note
    matches = [i for i in range(len(names)) if lead_key(names[i]) == lead_key(lead)]
    if len(matches) > 1:
        raise EcgError(f"lead {lead} names {len(matches)} columns ({shown}): give its index", path)
    if matches:
        if matches[0] not in candidates:
            raise EcgError(f"column {names[matches[0]]} is not a signal (leads: {shown})", path)
        return matches[0], None
    if re.fullmatch(r"\d+", lead.strip()):
        idx = int(lead)
        if idx not in candidates:
            what = "out of range" if idx >= len(names) else f"the {names[idx]} column"
            raise EcgError(f"--lead {idx} is {what}; signal columns: {shown}", path)
        return idx, None
    raise EcgError(f"lead {lead} not in record (leads: {shown})", path)


def check_given_fs(given: float | None, actual: float, path: str | Path, source: str) -> None:
    """Refuse a ``--fs`` that differs from the rate a file states (by over 1 %).

    Parameters
    ----------
    given : float or None
        ``--fs`` in Hz; None checks nothing.
    actual : float
        The file's rate in Hz.
    source : str
        What states it (``"header"``, ``"time column t"``), for the message.
    """
    if given is not None and abs(given - actual) > FS_TOLERANCE * actual:
        raise EcgError(
            f"--fs {given:g} Hz contradicts the {source} ({actual:g} Hz); leave --fs out", path
        )


def read_npy(path: str | Path) -> np.ndarray:
    """A ``.npy`` array of samples, (n_samples,) or (n_samples, n_leads), as float64.

    Raises
    ------
    EcgError
        Naming the file when it is not a readable, non-empty 1-D or 2-D numeric array.
    """
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise EcgError(f"not a readable NumPy array: {exc}", path) from exc
    if data.dtype.kind not in "fiu" or data.ndim not in (1, 2) or data.size == 0:
        raise EcgError(
            f"expected a non-empty 1-D or 2-D numeric array, got {data.dtype} {data.shape}", path
        )
    return data.astype(np.float64)
