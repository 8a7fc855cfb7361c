"""Shared fixtures: the real MIT-BIH folder and tiny synthetic WFDB records.

``synthetic_record`` writes a record with ``wfdb.wrsamp``/``wfdb.wrann`` whose beats sit
at known positions with known symbols, so segmentation and labelling can be checked
exactly; ``synthetic_mitdb`` is a small folder in MIT-BIH layout (DS1 and DS2 record
names, every AAMI class present) for the commands that need a whole database.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
"""The project root (holds ``ecg_utils/``)."""
SEED_WEIGHTS = ROOT.parent / "shared" / "seed" / "ecg_cnn.pth"
"""The seed notebook's published weights (CUDA tensors, no metadata): only the
seed-compatibility tests need them (``seed_weights``)."""
CNN_WEIGHTS = ROOT / "ecg_cnn.pth"
"""The project's committed ECG1DCNN (Kaggle protocol, with ``ecg_cnn.json``): the weights
the predict, evaluate, explain and export tests run (``cnn_weights``)."""

if os.environ.get("ECG_MITDB_DIR"):
    # tests run commands from temporary folders: a relative path would point nowhere there
    os.environ["ECG_MITDB_DIR"] = str(Path(os.environ["ECG_MITDB_DIR"]).resolve())

BEAT_SYMBOLS = ("N", "N", "A", "N", "V", "N", "F", "N", "/", "L", "R", "E", "S", "j", "f", "Q")
"""Default symbol cycle of synthetic beats: every AAMI class, several symbols per class."""


@pytest.fixture(scope="session")
def mitdb_dir() -> Path:
    """The real MIT-BIH records: ``$ECG_MITDB_DIR``, ``../shared/data/mitdb`` or the
    download cache (:func:`ecg_utils.sources.find_mitdb_dir`); tests that need them are
    skipped, with the reason in the summary, when none holds them (``make test`` fetches
    them first)."""
    from ecg_utils.sources import find_mitdb_dir

    path = find_mitdb_dir()
    if path is None:
        pytest.skip(NO_RECORDS)
    return path


NO_RECORDS = (
    "MIT-BIH records not found: set ECG_MITDB_DIR or run `python -m ecg_utils records "
    "--download` (make test does)"
)


def pytest_terminal_summary(terminalreporter):
    """Say in one line, at the end, how many tests the missing records skipped."""
    skipped = [
        r for r in terminalreporter.stats.get("skipped", []) if NO_RECORDS in str(r.longrepr)
    ]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} tests on the real records were SKIPPED: {NO_RECORDS}", red=True
        )


@pytest.fixture(scope="session")
def cnn_weights() -> Path:
    """The committed ``ecg_cnn.pth`` (an ECG1DCNN with its metadata); never skipped: it is
    part of the repository."""
    assert CNN_WEIGHTS.is_file() and CNN_WEIGHTS.with_suffix(".json").is_file(), CNN_WEIGHTS
    return CNN_WEIGHTS


@pytest.fixture(scope="session")
def seed_weights() -> Path:
    """The seed's ``ecg_cnn.pth``, for the tests of seed compatibility only (loading its
    bare state dict); they are skipped without it."""
    if not SEED_WEIGHTS.is_file():
        pytest.skip(f"seed weights not found at {SEED_WEIGHTS}")
    return SEED_WEIGHTS


@dataclass
class SyntheticRecord:
    """A WFDB record written by :func:`write_record` and what it holds.

    Attributes
    ----------
    path : Path
        Record path without extension.
    fs : float
    signal : ndarray, shape (n_samples, n_leads)
        Physical signal (mV) as written.
    samples, symbols :
        All annotations, beats and non-beats, in time order.
    """

    path: Path
    fs: float
    signal: np.ndarray
    samples: np.ndarray
    symbols: list[str]

    @property
    def beat_samples(self) -> np.ndarray:
        """Positions of the beat annotations (non-beats such as ``+`` left out)."""
        from ecg_utils.beats import aami_label

        beats = [aami_label(sym) is not None for sym in self.symbols]
        return self.samples[np.asarray(beats, dtype=bool)]

    @property
    def beat_labels(self) -> np.ndarray:
        """AAMI labels (0..4) of the beat annotations."""
        from ecg_utils.beats import aami_label

        labels = [aami_label(sym) for sym in self.symbols]
        return np.array([x for x in labels if x is not None], dtype=np.int64)

    def file(self, ext: str) -> Path:
        """The record's ``.hea``/``.dat``/``.atr`` file."""
        return self.path.with_suffix(f".{ext}")


def write_record(
    folder: Path,
    name: str = "syn",
    fs: float = 360,
    seconds: float = 30.0,
    leads: tuple[str, ...] = ("MLII", "V1"),
    symbols: tuple[str, ...] = BEAT_SYMBOLS,
    rr_s: float = 0.8,
    noise: float = 0.01,
    seed: int = 0,
) -> SyntheticRecord:
    """Write a record of Gaussian QRS-like spikes at known positions, with annotations.

    Beats come every ``rr_s`` seconds from 0.5 s to 0.5 s before the end, with symbols
    cycling through ``symbols``; a rhythm annotation ``+`` opens the record and a noise
    annotation ``~`` sits between the first two beats (neither is a beat). Lead ``i``
    has amplitude ``1 / (i + 1)`` mV; ventricular beats (V, E, F) are twice as wide.
    """
    import wfdb

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fs))
    t = np.arange(n)
    peaks = np.arange(int(0.5 * fs), n - int(0.5 * fs), int(round(rr_s * fs)))
    beat_symbols = [symbols[i % len(symbols)] for i in range(len(peaks))]
    sig = np.zeros((n, len(leads)))
    for p, sym in zip(peaks, beat_symbols, strict=True):
        width = (0.02 if sym in "VEF" else 0.01) * fs
        lo, hi = max(p - int(6 * width), 0), min(p + int(6 * width), n)
        spike = np.exp(-0.5 * ((t[lo:hi] - p) / width) ** 2)
        for i in range(len(leads)):
            sig[lo:hi, i] += spike / (i + 1)
    sig += noise * rng.standard_normal(sig.shape)
    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV"] * len(leads),
        sig_name=list(leads),
        p_signal=sig,
        fmt=["212"] * len(leads),
        write_dir=str(folder),
    )
    samples = [1, *peaks[:1], (peaks[0] + peaks[1]) // 2, *peaks[1:]] if len(peaks) > 1 else [1]
    syms = ["+", *beat_symbols[:1], "~", *beat_symbols[1:]] if len(peaks) > 1 else ["+"]
    aux = ["(N"] + [""] * (len(samples) - 1)
    wfdb.wrann(
        name,
        "atr",
        np.asarray(samples, dtype=np.int64),
        syms,
        aux_note=aux,
        write_dir=str(folder),
    )
    return SyntheticRecord(folder / name, fs, sig, np.asarray(samples, np.int64), syms)


@pytest.fixture
def synthetic_record(tmp_path):
    """Factory: ``synthetic_record(name="syn", fs=360, seconds=30, ...)`` -> SyntheticRecord.

    Records are written under a fresh ``tmp_path / "records"``; see :func:`write_record`.
    """

    def make(name: str = "syn", **kwargs) -> SyntheticRecord:
        return write_record(tmp_path / "records", name, **kwargs)

    return make


SYNTHETIC_RECORDS = ("101", "106", "108", "109", "112", "114", "115", "116", "118", "119")
SYNTHETIC_RECORDS += ("100", "103", "105")
"""Names of the synthetic database: ten DS1 records (enough for the inter-patient
validation folds) and three DS2 records."""


@pytest.fixture(scope="session")
def synthetic_mitdb(tmp_path_factory) -> Path:
    """A small MIT-BIH-like folder: 13 records of 30 s (about 500 beats) and RECORDS.

    Shared by many tests: do not modify it; copy it first (``shutil.copytree``).
    """
    folder = tmp_path_factory.mktemp("synthetic_mitdb")
    for i, name in enumerate(SYNTHETIC_RECORDS):
        write_record(folder, name, seconds=30.0, rr_s=0.6 + 0.03 * i, seed=i)
    (folder / "RECORDS").write_text("\n".join(SYNTHETIC_RECORDS) + "\n")
    return folder


@pytest.fixture(scope="session")
def quick_study(tmp_path_factory, synthetic_mitdb) -> Path:
    """Output folder of a quick study on the synthetic database: three experiments (one
    cross-validated), the ensemble of that one's seeds and the product models."""
    import torch

    from ecg_utils.study import StudyOptions, run_study

    out = tmp_path_factory.mktemp("study")
    opts = StudyOptions(
        mitdb_dir=synthetic_mitdb,
        out_dir=out,
        cache_dir=out / "cache",
        quick=True,
        progress=False,
        experiments=[
            "seed_kaggle",
            "seed_ip",
            "relative_ip",
            "ensemble_ip",
            "product_all",
            "product_ensemble",
        ],
        seed_weights=SEED_WEIGHTS if SEED_WEIGHTS.is_file() else None,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest on a busy machine
    try:
        run_study(opts)
    finally:
        torch.set_num_threads(threads)
    return out


def tmp_files(folder: Path) -> list[Path]:
    """Temporary files (``*.tmp``) anywhere under ``folder``."""
    return sorted(p for p in Path(folder).rglob("*") if p.name.endswith(".tmp"))
