"""Tests for ecg_utils.detect: synthetic ECGs at several rates, bad input, one real record."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ecg_utils import detect
from ecg_utils._io import EcgError
from ecg_utils.detect import (
    DETECTORS,
    detect_r_peaks,
    detect_r_peaks_chunked,
    match_pairs,
    match_peaks,
    refine_peaks,
)

REPO = Path(__file__).resolve().parents[1]

# (centre relative to R in s, amplitude in mV, width in s) of Q, R, S and of P, T
QRS = ((-0.03, -0.12, 0.01), (0.0, 1.2, 0.011), (0.03, -0.3, 0.01))
P_T = ((-0.2, 0.15, 0.025), (0.3, 0.35, 0.05))


def synthetic_ecg(
    fs: float, duration_s: float = 30.0, hr_bpm: float = 72.0, seed: int = 0, sign: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-wave ECG with irregular RR, baseline wander and noise.

    Returns the signal in mV and the R-peak positions in samples.
    """
    rng = np.random.default_rng(seed)
    n_max = int(duration_s * hr_bpm / 60) + 5
    rr = np.clip(60.0 / hr_bpm * (1 + 0.1 * rng.standard_normal(n_max)), 0.45, 1.6)
    r_times = 0.6 + np.cumsum(np.concatenate([[0.0], rr]))
    r_times = r_times[r_times < duration_s - 0.6]
    t = np.arange(int(duration_s * fs)) / fs
    x = 0.1 * np.sin(2 * np.pi * 0.25 * t) + 0.01 * rng.standard_normal(len(t))
    for tr in r_times:
        near = np.abs(t - tr) < 0.6
        waves = [(dt, sign * amp, w) for dt, amp, w in QRS] + list(P_T)
        for dt, amp, width in waves:
            x[near] += amp * np.exp(-0.5 * ((t[near] - tr - dt) / width) ** 2)
    return x, np.rint(r_times * fs).astype(np.int64)


@pytest.mark.parametrize("fs", [100.0, 128.0, 250.0, 360.0, 500.0, 1000.0])
def test_synthetic_beats_found_at_any_rate(fs):
    x, truth = synthetic_ecg(fs)
    peaks = detect_r_peaks(x, fs)
    assert peaks.dtype == np.int64
    assert np.all(np.diff(peaks) > 0)
    assert match_peaks(truth, peaks, fs) == (len(truth), 0, 0)
    r_idx, t_idx = match_pairs(truth, peaks, fs)
    assert np.max(np.abs(peaks[t_idx] - truth[r_idx])) <= 1  # on the R peak, +-1 sample


@pytest.mark.parametrize("fs", [128.0, 360.0])
def test_negative_qrs_lands_on_deepest_deflection(fs):
    x, truth = synthetic_ecg(fs, seed=3, sign=-1.0)
    peaks = detect_r_peaks(x, fs)
    assert match_peaks(truth, peaks, fs) == (len(truth), 0, 0)
    r_idx, t_idx = match_pairs(truth, peaks, fs)
    assert np.max(np.abs(peaks[t_idx] - truth[r_idx])) <= 1


def test_neurokit_simulation_beat_count():
    nk = pytest.importorskip("neurokit2")
    fs = 250
    x = nk.ecg_simulate(duration=30, sampling_rate=fs, heart_rate=75, random_state=42)
    peaks = detect_r_peaks(x, fs)
    rr = np.diff(peaks) / fs
    assert abs(len(peaks) - 30 * 75 / 60) <= 2
    assert np.all(np.abs(rr - 60 / 75) < 0.15)


def test_nan_gaps_are_interpolated():
    fs = 360.0
    x, truth = synthetic_ecg(fs, seed=1)
    gap = slice(int(10 * fs), int(10.3 * fs))
    x[gap] = np.nan
    peaks = detect_r_peaks(x, fs)
    outside = truth[(truth < gap.start - 20) | (truth > gap.stop + 20)]
    tp, _, fn = match_peaks(outside, peaks, fs)
    assert fn == 0 and tp == len(outside)


@pytest.mark.parametrize(
    ("signal", "message"),
    [
        (np.full(3600, 0.4), "flat"),
        (np.zeros(3600), "flat"),
        (np.full(3600, np.nan), "no finite samples"),
        (np.ones(100), "too short"),
        (np.zeros((3600, 2)), "1-D"),
    ],
)
def test_bad_signals_raise_ecg_error(signal, message):
    with pytest.raises(EcgError, match=message):
        detect_r_peaks(signal, 360.0)


@pytest.mark.parametrize("fs", [0, -1, float("nan"), 20, "abc"])
def test_bad_sampling_rate(fs):
    x, _ = synthetic_ecg(250.0, duration_s=5)
    with pytest.raises(EcgError, match="sampling rate must be"):
        detect_r_peaks(x, fs)


def test_unknown_method():
    x, _ = synthetic_ecg(250.0, duration_s=5)
    with pytest.raises(EcgError, match="unknown R-peak detector"):
        detect_r_peaks(x, 250.0, method="magic")


def test_third_party_failure_becomes_ecg_error(monkeypatch):
    def broken(x, fs):
        raise ValueError("inner library problem\nwith a second line")

    monkeypatch.setitem(detect._RUNNERS, "neurokit", broken)
    x, _ = synthetic_ecg(250.0, duration_s=5)
    with pytest.raises(EcgError, match="'neurokit' failed: inner library problem$"):
        detect_r_peaks(x, 250.0, method="neurokit")


@pytest.mark.parametrize("method", DETECTORS)
def test_every_detector_runs(method):
    fs = 360.0
    x, truth = synthetic_ecg(fs, duration_s=20, seed=2)
    tp, fp, fn = match_peaks(truth, detect_r_peaks(x, fs, method=method), fs)
    assert tp >= 0.9 * len(truth) and fp <= 2


def test_chunked_matches_whole_signal():
    fs = 250.0
    x, truth = synthetic_ecg(fs, duration_s=300, seed=4)
    whole = detect_r_peaks(x, fs)
    chunked = detect_r_peaks_chunked(x, fs, chunk_s=60, overlap_s=5)
    np.testing.assert_array_equal(chunked, whole)
    assert match_peaks(truth, chunked, fs) == (len(truth), 0, 0)


def test_long_signal_is_chunked_automatically(monkeypatch):
    fs = 250.0
    x, truth = synthetic_ecg(fs, duration_s=120, seed=5)
    monkeypatch.setattr(detect, "MAX_BLOCK_S", 30.0)
    calls = []
    real = detect.detect_r_peaks_chunked
    monkeypatch.setattr(
        detect, "detect_r_peaks_chunked", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    peaks = detect.detect_r_peaks(x, fs)
    assert calls and match_peaks(truth, peaks, fs) == (len(truth), 0, 0)


def test_chunked_skips_flat_chunk_and_reads_memmap(tmp_path):
    fs = 250.0
    x, truth = synthetic_ecg(fs, duration_s=180, seed=6)
    x[int(60 * fs) : int(120 * fs)] = 0.0  # electrode off for one chunk
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    peaks = detect_r_peaks_chunked(mm, fs, chunk_s=60, overlap_s=2)
    keep = (truth < 59 * fs) | (truth > 121 * fs)
    assert match_peaks(truth[keep], peaks, fs)[2] == 0
    assert not np.any((peaks > 61 * fs) & (peaks < 119 * fs))


def test_chunked_all_flat_raises():
    with pytest.raises(EcgError, match="flat"):
        detect_r_peaks_chunked(np.zeros(250 * 100), 250.0, chunk_s=30)


def test_refine_moves_onto_r_peak():
    fs = 360.0
    x, truth = synthetic_ecg(fs, seed=7)
    refined = refine_peaks(x, fs, truth + 15)  # 42 ms late
    np.testing.assert_allclose(refined, truth, atol=1)


def test_match_peaks_one_to_one():
    assert match_peaks([100, 200, 300], [102, 250], fs=100.0) == (1, 1, 2)
    assert match_peaks([100], [98, 103], fs=100.0) == (1, 1, 0)
    assert match_peaks([100, 110], [105], fs=100.0) == (1, 0, 1)
    assert match_peaks([], [5], fs=100.0) == (0, 1, 0)
    r_idx, t_idx = match_pairs([100, 200], [199, 101], fs=100.0)
    np.testing.assert_array_equal(r_idx, [0, 1])
    np.testing.assert_array_equal(t_idx, [0, 1])


def _mitdb_dir() -> Path:
    env = os.environ.get("ECG_MITDB_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data" / "mitdb"


def test_real_record_100():
    from ecg_utils.beats import AAMI_CLASSES, pick_lead
    from ecg_utils.records import read_annotations, read_signal

    path = _mitdb_dir() / "100"
    if not path.with_suffix(".hea").exists():
        pytest.skip(f"MIT-BIH record 100 not found in {path.parent}")
    sig, fs, names = read_signal(path)
    lead, _ = pick_lead(names)
    samples, symbols = read_annotations(path)
    ref = samples[[s in AAMI_CLASSES for s in symbols]]
    peaks = detect_r_peaks(sig[:, lead], fs)
    tp, fp, fn = match_peaks(ref, peaks, fs)
    assert tp / (tp + fn) >= 0.995 and tp / (tp + fp) >= 0.995
    r_idx, t_idx = match_pairs(ref, peaks, fs)
    assert np.mean(np.abs(peaks[t_idx] - ref[r_idx]) <= 1) >= 0.9


def test_chunked_short_last_chunk_without_overlap():
    fs = 250.0
    x, truth = synthetic_ecg(fs, duration_s=61, seed=8)  # last chunk: 1 s
    peaks = detect_r_peaks_chunked(x, fs, chunk_s=20, overlap_s=0)
    assert match_peaks(truth, peaks, fs)[2] <= 1  # a beat on a boundary may be lost


def test_non_numeric_signal():
    with pytest.raises(EcgError, match="numeric"):
        detect_r_peaks(np.array(["a"] * 1000), 250.0)
