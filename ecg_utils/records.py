"""Reading WFDB records and annotations with clear errors.

``wfdb`` trusts the header: a header that lies about the sampling rate, the gain or the
number of samples is read silently with defaults (a negative rate becomes 250 Hz, a gain
of 0 becomes 200 adu/mV) or fails deep inside numpy. This module parses the header
itself first, checks it against the signal file sizes, and only then calls ``wfdb``, so
every bad input ends in an :class:`~ecg_utils.EcgError` that names the file.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._io import EcgError, check_fs

MAX_HEADER_BYTES = 1_000_000
"""Largest header file read; real headers are a few hundred bytes."""

BYTES_PER_SAMPLE: dict[str, float] = {
    "8": 1,
    "16": 2,
    "24": 3,
    "32": 4,
    "61": 2,
    "80": 1,
    "160": 2,
    "212": 1.5,
    "310": 4 / 3,
    "311": 4 / 3,
}
"""Uncompressed WFDB signal formats and their size; sizes of these files are checked."""
COMPRESSED_FORMATS = frozenset({"508", "516", "524"})
"""FLAC-compressed formats: readable, but their size says nothing about their length."""

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_FORMAT_FIELD = re.compile(r"(?P<fmt>\d+)(?:x(?P<spf>\d+))?(?::(?P<skew>\d+))?(?:\+(?P<off>\d+))?")
_GAIN_FIELD = re.compile(rf"(?P<gain>{_NUMBER})(?:\((?P<baseline>-?\d+)\))?(?:/(?P<units>\S*))?")
_FILE_NAME = re.compile(r"[-\w]+(?:\.[\w]+)?")


@dataclass(frozen=True)
class SignalSpec:
    """One signal line of a WFDB header (the fields this project relies on)."""

    file_name: str
    fmt: str
    samples_per_frame: int
    byte_offset: int
    gain: float | None
    name: str
    units: str = "mV"

    @property
    def calibrated(self) -> bool:
        """False for an ADC gain of 0: the samples have no known scale (digital units)."""
        return self.gain != 0


@dataclass(frozen=True)
class Header:
    """The parts of a WFDB header that decide how the signal file is read."""

    path: Path
    record_name: str
    fs: float
    sig_len: int | None
    signals: tuple[SignalSpec, ...]
    start: str | None = None
    """Base time and date of the record, ISO 8601 (:func:`iso_start`), when it has them."""


def read_header(record_path: str | Path) -> Header:
    """Parse and check a WFDB header (``record_path.hea``) strictly.

    Parameters
    ----------
    record_path : path
        Record path without extension (``…/mitdb/100``).

    Returns
    -------
    Header

    Raises
    ------
    EcgError
        Naming the ``.hea`` file when it is missing, not text, or holds a sampling rate
        that is not a number in (0, 100000] Hz, an unknown signal format, a sample count
        that is not a whole number, a multi-segment layout, or signal files outside the
        record's folder. An ADC gain of 0 (an uncalibrated signal, allowed by the WFDB
        format) is read as ``gain=0.0``: see :func:`read_signal` and :func:`lead_units`.
    """
    header = Path(record_path).with_suffix(".hea")
    if not header.is_file():
        raise EcgError("WFDB header not found", header)
    if header.stat().st_size > MAX_HEADER_BYTES:
        raise EcgError(f"header is implausibly large ({header.stat().st_size} bytes)", header)
    try:
        text = header.read_bytes().decode("ascii")
    except UnicodeDecodeError:
        raise EcgError("not a WFDB header (not ASCII text)", header) from None
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines:
        raise EcgError("header is empty", header)
    fields = lines[0].split()
    if len(fields) < 2:
        raise EcgError(f"record line needs a name and a signal count: {lines[0]!r}", header)
    name_field, n_sig_field = fields[0], fields[1]
    if "/" in name_field:
        raise EcgError("multi-segment records are not supported", header)
    if not n_sig_field.isdigit():
        raise EcgError(f"number of signals is not a whole number: {n_sig_field!r}", header)
    n_sig = int(n_sig_field)
    if n_sig == 0:
        raise EcgError("header describes no signals", header)
    fs = _parse_fs(fields[2], header) if len(fields) > 2 else 250.0  # WFDB default
    sig_len = None
    if len(fields) > 3:
        if not fields[3].isdigit():
            raise EcgError(f"number of samples is not a whole number: {fields[3]!r}", header)
        sig_len = int(fields[3])
        if sig_len == 0:
            raise EcgError("header says the record holds 0 samples", header)
    signal_lines = lines[1:]
    if len(signal_lines) < n_sig:
        raise EcgError(
            f"header announces {n_sig} signals but describes {len(signal_lines)}", header
        )
    signals = tuple(_parse_signal(ln, header) for ln in signal_lines[:n_sig])
    start = _parse_start(fields[4] if len(fields) > 4 else None, fields[5:6])
    return Header(header, name_field, fs, sig_len, signals, start)


def _parse_start(base_time: str | None, base_date: list[str]) -> str | None:
    """The record line's base time (``HH:MM:SS[.s]``) and date (``DD/MM/YYYY``) as ISO
    text; None when absent or not readable (wfdb reads the signal without them)."""
    import datetime as dt

    if base_time is None:
        return None
    try:
        hms = [float(v) for v in base_time.split(":")]
        while len(hms) < 3:
            hms.insert(0, 0.0)
        seconds = hms[2]
        clock = dt.time(int(hms[0]), int(hms[1]), int(seconds), round(seconds % 1 * 1e6))
        day = dt.datetime.strptime(base_date[0], "%d/%m/%Y").date() if base_date else None
    except ValueError:
        return None
    return iso_start(day, clock)


def _parse_fs(text: str, header: Path) -> float:
    return check_fs(text, header)


def _parse_signal(line: str, header: Path) -> SignalSpec:
    fields = line.split(maxsplit=8)
    if len(fields) < 2:
        raise EcgError(f"signal line needs a file name and a format: {line!r}", header)
    file_name = fields[0]
    if not _FILE_NAME.fullmatch(file_name):
        raise EcgError(
            f"signal file {file_name!r} must be a plain file name in the record's folder", header
        )
    m = _FORMAT_FIELD.fullmatch(fields[1])
    if not m:
        raise EcgError(f"signal format field is malformed: {fields[1]!r}", header)
    fmt = m["fmt"]
    if fmt not in BYTES_PER_SAMPLE and fmt not in COMPRESSED_FORMATS:
        known = ", ".join([*BYTES_PER_SAMPLE, *sorted(COMPRESSED_FORMATS)])
        raise EcgError(f"unknown signal format {fmt} (known: {known})", header)
    spf = int(m["spf"]) if m["spf"] else 1
    if spf < 1:
        raise EcgError("samples per frame must be >= 1", header)
    gain, units = None, "mV"  # WFDB defaults: 200 adu/mV
    if len(fields) > 2:
        g = _GAIN_FIELD.fullmatch(fields[2])
        if not g:
            raise EcgError(f"ADC gain field is malformed: {fields[2]!r}", header)
        gain = float(g["gain"])
        if not math.isfinite(gain):
            raise EcgError(f"ADC gain must be a finite number, got {g['gain']}", header)
        units = g["units"] or "mV"
    name = fields[8].strip() if len(fields) > 8 else ""
    return SignalSpec(file_name, fmt, spf, int(m["off"] or 0), gain, name, units)


def check_signal_files(info: Header) -> int:
    """Check that every signal file exists and holds what the header announces.

    Returns
    -------
    int
        The number of samples per signal (from the header, or from the file size when
        the header does not say).

    Raises
    ------
    EcgError
        Naming the ``.dat`` file when it is missing, empty, or shorter than the header's
        sample count implies.
    """
    folder = info.path.parent
    by_file: dict[str, list[SignalSpec]] = {}
    for s in info.signals:
        by_file.setdefault(s.file_name, []).append(s)
    lengths = []
    for file_name, specs in by_file.items():
        path = folder / file_name
        if not path.is_file():
            raise EcgError("signal file not found", path)
        size = path.stat().st_size
        if size == 0:
            raise EcgError("signal file is empty", path)
        fmts = {s.fmt for s in specs}
        if len(fmts) > 1:
            raise EcgError(f"signals of one file have different formats {sorted(fmts)}", path)
        fmt = fmts.pop()
        if fmt in COMPRESSED_FORMATS:
            continue
        frame = sum(s.samples_per_frame for s in specs)
        offset = specs[0].byte_offset
        if info.sig_len is None:
            n = int((size - offset) // (BYTES_PER_SAMPLE[fmt] * frame)) if size > offset else 0
            if n == 0:
                raise EcgError("signal file holds no complete sample", path)
            lengths.append(n)
            continue
        needed = offset + _bytes_needed(fmt, info.sig_len * frame)
        if size < needed:
            have = max(size - offset, 0) / (BYTES_PER_SAMPLE[fmt] * frame)
            raise EcgError(
                f"signal file is truncated: {size} bytes hold about {int(have)} samples per "
                f"signal, the header announces {info.sig_len} ({needed} bytes in format {fmt})",
                path,
            )
        lengths.append(info.sig_len)
    return info.sig_len if info.sig_len is not None else min(lengths, default=0)


def _bytes_needed(fmt: str, n_samples: int) -> int:
    """Bytes that ``n_samples`` samples occupy in an uncompressed format (as wfdb reads)."""
    if fmt == "212":
        return math.ceil(n_samples * 1.5)
    if fmt in ("310", "311"):
        return math.ceil(n_samples * 4 / 3)
    return int(n_samples * BYTES_PER_SAMPLE[fmt])


UNCALIBRATED_UNITS = "adu"
"""Units of a signal whose ADC gain is 0: its digital samples (analogue-to-digital units)."""


def read_signal(
    record_path: str | Path,
    channels: list[int] | None = None,
    *,
    allow_uncalibrated: bool = False,
) -> tuple[np.ndarray, float, list[str]]:
    """Read a WFDB record's signals in physical units, after checking its files.

    Parameters
    ----------
    record_path : path
        Record path without extension (``…/mitdb/100``).
    channels : list of int, optional
        Indices of the signals to read (header order); None reads them all. Reading one
        lead of a two-lead record halves the memory of the returned array.
    allow_uncalibrated : bool
        Read signals whose ADC gain is 0 (uncalibrated; allowed by the WFDB format) as
        their digital samples, in :data:`UNCALIBRATED_UNITS` ("adu"), instead of
        refusing them. The other signals are still in physical units;
        :func:`lead_units` says which is which.

    Returns
    -------
    signal : ndarray, shape (n_samples, n_leads), float64
        Samples in physical units (mV for MIT-BIH), or in adu for uncalibrated signals
        read with ``allow_uncalibrated``; gaps are NaN. ``n_leads`` is ``len(channels)``
        when given.
    fs : float
        Sampling rate in Hz.
    names : list of str
        Lead names, one per column.

    Raises
    ------
    EcgError
        Naming the header or signal file: see :func:`read_header` and
        :func:`check_signal_files`; naming the header when a signal read is
        uncalibrated and ``allow_uncalibrated`` is False.
    """
    import wfdb

    record_path = Path(record_path)
    info = read_header(record_path)
    header = info.path
    check_signal_files(info)
    if channels is not None:
        channels = [int(c) for c in channels]
        if not channels or not all(0 <= c < len(info.signals) for c in channels):
            raise EcgError(
                f"channels {channels} out of range for {len(info.signals)} signal(s)", header
            )
    wanted = [info.signals[c] for c in (channels or range(len(info.signals)))]
    digital = [not s.calibrated for s in wanted]
    if any(digital) and not allow_uncalibrated:
        first = wanted[digital.index(True)]
        raise EcgError(
            f"ADC gain is 0 in {first.file_name} (uncalibrated signal): cannot convert to mV",
            header,
        )
    try:
        digital_read = {"physical": False} if any(digital) else {}
        rec = wfdb.rdrecord(str(record_path), channels=channels, **digital_read)
    except Exception as exc:  # wfdb raises many types for malformed files
        raise EcgError(f"cannot read WFDB record: {_one_line(exc)}", header) from exc
    if rec.fs is None or not math.isclose(float(rec.fs), info.fs, rel_tol=1e-9):
        raise EcgError(
            f"header's sampling frequency {info.fs:g} Hz was read as {rec.fs} by wfdb", header
        )
    if any(digital) and rec.d_signal is not None:
        # wfdb converts with gain 200 where the header says 0; NaN marks the gaps
        signal = rec.dac(return_res=64)
        uncal = np.flatnonzero(digital)
        signal[:, uncal] = np.where(np.isnan(signal[:, uncal]), np.nan, rec.d_signal[:, uncal])
    else:
        signal = rec.p_signal
    if signal is None or signal.ndim != 2 or signal.shape[0] == 0:
        raise EcgError("record holds no samples", header)
    if signal.shape[1] != len(wanted):
        raise EcgError(
            f"read {signal.shape[1]} signals, the header describes {len(wanted)}", header
        )
    names = [str(n).strip() or f"signal{i}" for i, n in enumerate(rec.sig_name or [])]
    return np.asarray(signal, dtype=np.float64), info.fs, names


def lead_units(record_path: str | Path) -> list[str]:
    """The units of each signal of a WFDB record, from its header alone.

    Returns
    -------
    list of str
        One per signal, in header order: the header's units (``"mV"`` by default), or
        :data:`UNCALIBRATED_UNITS` (``"adu"``) for a signal whose ADC gain is 0, which
        :func:`read_signal` reads with ``allow_uncalibrated=True`` as digital samples.
    """
    info = read_header(Path(record_path))
    return [s.units if s.calibrated else UNCALIBRATED_UNITS for s in info.signals]


@dataclass(frozen=True)
class EdfHeader:
    """The ECG signals of an EDF/EDF+ file, from its header (annotation channels dropped).

    Attributes
    ----------
    path : Path
    labels : tuple of str
        Signal labels, in file order (``signal<i>`` for a blank label).
    fs : tuple of float
        Sampling rate of each signal in Hz.
    units : tuple of str
        Units of each signal as :func:`read_edf` returns it: ``"mV"`` for a physical
        dimension in nV, µV, mV or V (converted), else the file's dimension as it is.
    start : str or None
        Start of the recording, ISO 8601 (``2024-05-01T08:30:00``; the time alone when
        the date is anonymised).
    """

    path: Path
    labels: tuple[str, ...]
    fs: tuple[float, ...]
    units: tuple[str, ...]
    start: str | None


def _open_edf(path: Path):
    """The file read by ``edfio`` (data loaded lazily), with its problems as EcgError."""
    import warnings

    import edfio

    if not path.is_file():
        raise EcgError("file not found", path)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            edf = edfio.read_edf(path, lazy_load_data=True)
    except Exception as exc:  # the reader raises many types for malformed files
        raise EcgError(f"cannot read EDF file: {_one_line(exc)}", path) from exc
    for w in caught:
        text = str(w.message)
        if "truncated" in text or "data records" in text:
            raise EcgError(f"EDF file is truncated: {text}", path)
    return edf


def _edf_units(dimension: str) -> tuple[float, str]:
    """Factor to mV and units of an EDF physical dimension (kept when not a voltage)."""
    factor = _TO_MV.get(dimension.strip().lower().replace("µ", "u").replace("μ", "u"))
    return (factor, "mV") if factor is not None else (1.0, dimension.strip())


def read_edf_header(path: str | Path) -> EdfHeader:
    """Read the header of an EDF/EDF+ file (``edfio``); no signal is loaded.

    Raises
    ------
    EcgError
        Naming the file when it is missing, not EDF, truncated, or holds no signal
        besides annotations.
    """
    path = Path(path)
    edf = _open_edf(path)
    return _edf_header(path, edf)


def _edf_header(path: Path, edf) -> EdfHeader:
    signals = list(edf.signals)  # edfio keeps "EDF Annotations" apart from the signals
    if not signals:
        raise EcgError("EDF file holds no signal (annotations only)", path)
    labels = tuple(str(s.label).strip() or f"signal{i}" for i, s in enumerate(signals))
    fs = tuple(float(s.sampling_frequency) for s in signals)
    units = tuple(_edf_units(str(s.physical_dimension))[1] for s in signals)
    try:
        day = edf.startdate
    except ValueError:  # anonymised ("X") or unreadable date
        day = None
    try:
        clock = edf.starttime
    except ValueError:
        clock = None
    return EdfHeader(path, labels, fs, units, iso_start(day, clock))


def iso_start(day, clock) -> str | None:
    """A recording's start as ISO 8601 text from its date and time (either may be None).

    The one rule for WFDB base date/time and EDF start date/time: ``2024-05-01T08:30:00``,
    the time alone without a date, None without a time.
    """
    import datetime as dt

    if clock is None:
        return None
    if day is None:
        return clock.isoformat()
    return dt.datetime.combine(day, clock).isoformat()


def read_edf(
    path: str | Path, channels: list[int] | None = None
) -> tuple[np.ndarray, float, list[str]]:
    """Read an EDF/EDF+ file's signals in physical units with ``edfio``.

    EDF+ annotation channels (``EDF Annotations``) are dropped; any data record
    duration is read.

    Parameters
    ----------
    path : path
        The ``.edf`` file.
    channels : list of int, optional
        Indices of the signals to read, as in :attr:`EdfHeader.labels` (annotation
        channels left out); None reads them all. Only these need to share a rate.

    Returns
    -------
    signal : ndarray, shape (n_samples, n_leads), float64
        Samples in mV: signals in µV, nV or V (the file's physical dimension) are
        converted; any other dimension is kept as it is (:attr:`EdfHeader.units`).
    fs : float
        Sampling rate in Hz (every signal read must share it).
    names : list of str
        Signal labels, one per column.

    Raises
    ------
    EcgError
        Naming the file when it is missing, unreadable, truncated, or the signals read
        have different sampling rates.
    """
    path = Path(path)
    edf = _open_edf(path)
    info = _edf_header(path, edf)
    if channels is None:
        channels = list(range(len(info.labels)))
    channels = [int(c) for c in channels]
    if not channels or not all(0 <= c < len(info.labels) for c in channels):
        raise EcgError(f"channels {channels} out of range for {len(info.labels)} signal(s)", path)
    rates = sorted({info.fs[c] for c in channels})
    if len(rates) > 1:
        listed = ", ".join(f"{info.labels[c]} {info.fs[c]:g} Hz" for c in channels)
        raise EcgError(f"signals have different sampling rates ({listed}); pick one", path)
    fs = check_fs(rates[0], path)
    signals = list(edf.signals)
    columns = []
    for c in channels:
        try:
            data = np.asarray(signals[c].data, dtype=np.float64)
        except Exception as exc:
            problem = f"cannot read EDF signal {info.labels[c]}: {_one_line(exc)}"
            raise EcgError(problem, path) from exc
        columns.append(data * _edf_units(str(signals[c].physical_dimension))[0])
    n = min(len(col) for col in columns)
    if n == 0:
        raise EcgError("EDF file holds no samples", path)
    signal = np.stack([col[:n] for col in columns], axis=1)
    return signal, fs, [info.labels[c] for c in channels]


_TO_MV = {"nv": 1e-6, "uv": 1e-3, "mv": 1.0, "v": 1e3}
"""Factors from an EDF signal's physical dimension to mV."""


def lead_names(record_path: str | Path) -> list[str]:
    """The lead names of a WFDB record, from its header alone (no signal is read).

    Names are as :func:`read_signal` returns them (``signal<i>`` for a blank name).
    """
    info = read_header(Path(record_path))
    return [s.name.strip() or f"signal{i}" for i, s in enumerate(info.signals)]


def read_annotations(record_path: str | Path, extension: str = "atr"):
    """Read a WFDB annotation file.

    Returns
    -------
    samples : ndarray, shape (n,), int64
        Annotation positions in samples.
    symbols : list of str
        Annotation symbols (beat and non-beat).

    Raises
    ------
    EcgError
        Naming the annotation file when it is missing, empty or not a WFDB
        annotation file.
    """
    import wfdb

    record_path = Path(record_path)
    path = record_path.with_suffix(f".{extension}")
    if not path.is_file():
        raise EcgError("annotation file not found", path)
    size = path.stat().st_size
    if size == 0:
        raise EcgError("annotation file is empty", path)
    if size % 2:
        raise EcgError(f"not a WFDB annotation file (odd size {size}: truncated or corrupt)", path)
    try:
        ann = wfdb.rdann(str(record_path), extension)
    except Exception as exc:
        raise EcgError(f"cannot read annotations: {_one_line(exc)}", path) from exc
    samples = np.asarray(ann.sample, dtype=np.int64)
    symbols = list(ann.symbol)
    if len(samples) != len(symbols):
        raise EcgError("annotation positions and symbols do not pair up (corrupt file)", path)
    if len(samples) and samples.min() < 0:
        raise EcgError("annotation file holds negative sample positions (corrupt file)", path)
    return samples, symbols


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
