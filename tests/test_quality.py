"""Tests for ecg_utils.quality: the signal-quality index, its rules and the detection gate.

Units use synthetic ECG-like leads (Gaussian QRS spikes) with stretches of known noise;
the slow test adds the project's noise to a real MIT-BIH record.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ecg_utils.holter import table_summary
from ecg_utils.noise import make_noise, noise_stress
from ecg_utils.predict import classify_with_quality
from ecg_utils.quality import (
    REASONS,
    QualityRule,
    SignalQuality,
    assess_quality,
    beat_similarity,
    gate_peaks,
    noisy_intervals,
)

REPO = Path(__file__).resolve().parents[1]
FS = 360.0


def spikes(seconds: float = 120.0, fs: float = FS, rr_s: float = 0.8, seed: int = 0):
    """One lead of 1 mV Gaussian QRS spikes every ``rr_s`` s, a little noise; and the peaks."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    t = np.arange(n)
    peaks = np.arange(int(0.5 * fs), n - int(0.5 * fs), int(rr_s * fs))
    x = 0.01 * rng.standard_normal(n)
    width = 0.012 * fs
    for p in peaks:
        lo, hi = p - int(6 * width), p + int(6 * width)
        x[lo:hi] += np.exp(-0.5 * ((t[lo:hi] - p) / width) ** 2)
    return x, peaks


def window_reason(q: SignalQuality, start_s: float) -> str:
    return q.reason[int(start_s // q.window_s)]


def test_clean_spikes_are_good():
    x, peaks = spikes()
    q = assess_quality(x, FS, peaks)
    assert set(q.reason) == {""}
    assert q.bsqi.min() == 1.0
    assert np.nanmin(q.morphology) > 0.99
    assert q.intervals().shape == (0, 2)
    assert q.noisy_share == 0.0


@pytest.mark.parametrize(
    "spoil, reason",
    [
        (lambda x, lo, hi: x.__setitem__(slice(lo, hi), np.nan), "missing"),
        (lambda x, lo, hi: x.__setitem__(slice(lo, hi), 0.3), "flat"),
        (lambda x, lo, hi: x.__setitem__(slice(lo, lo + int(3 * FS)), 0.3), "flat"),  # 3 s
        (lambda x, lo, hi: np.clip(x[lo:hi], -0.05, 0.05, out=x[lo:hi]), "clipped"),
        (lambda x, lo, hi: x.__setitem__(slice(lo, hi), x[lo:hi] * 20), "artefact"),
    ],
)
def test_amplitude_rules_mark_their_window(spoil, reason):
    x, peaks = spikes()
    lo, hi = int(50 * FS), int(60 * FS)
    spoil(x, lo, hi)
    q = assess_quality(x, FS, peaks)
    assert window_reason(q, 50) == reason
    assert q.intervals().tolist() == [[50.0, 60.0]]
    assert reason in REASONS


def test_noise_in_a_stretch_is_flagged_and_nothing_else():
    x, _ = spikes()
    lo, hi = int(40 * FS), int(70 * FS)
    x[lo:hi] += 0.5 * make_noise("muscle", hi - lo, FS, np.random.default_rng(1))
    q = assess_quality(x, FS)
    assert q.noisy[4:7].all()
    assert "detectors disagree" in set(q.reason[4:7])
    assert not q.noisy[:4].any() and not q.noisy[7:].any()
    assert q.intervals().tolist() == [[40.0, 70.0]]


def test_noisy_intervals_is_assess_quality_merged():
    x, _ = spikes()
    x[int(20 * FS) : int(40 * FS)] = np.nan
    assert noisy_intervals(x, FS).tolist() == [[20.0, 40.0]]
    assert noisy_intervals(np.ones(1000), 100.0).tolist() == [[0.0, 10.0]]  # all flat


def test_beat_similarity_high_for_repeating_beats_and_bigeminy():
    fs = 180.0
    x, peaks = spikes(fs=fs)
    wide = np.zeros_like(x)  # every other beat three times as wide: bigeminy of wide beats
    t = np.arange(len(x))
    for p in peaks[1::2]:
        lo, hi = max(p - 40, 0), min(p + 40, len(x))
        wide[lo:hi] += np.exp(-0.5 * ((t[lo:hi] - p) / (0.036 * fs)) ** 2)
        x[lo:hi] -= np.exp(-0.5 * ((t[lo:hi] - p) / (0.012 * fs)) ** 2)
    s = beat_similarity(x + wide, peaks, fs)
    assert np.nanmin(s) > 0.95
    noise = np.random.default_rng(0).standard_normal(len(x))
    assert np.nanmedian(beat_similarity(noise, peaks, fs)) < 0.7


def test_gate_keeps_good_windows_and_agreed_or_similar_beats_in_noisy_ones():
    peaks = np.array([100, 1000, 4000, 4500, 5000, 5500])
    reason = np.array(["", "detectors disagree"], dtype=object)
    q = SignalQuality(
        fs=360.0,
        n_samples=7200,
        window_s=10.0,
        bsqi=np.array([1.0, 0.5]),
        morphology=np.array([0.99, 0.5]),
        reason=reason,
        beat_similarity=np.array([0.2, 0.99, 0.99, 0.2, 0.95, 0.1]),
        second_peaks=np.array([4010, 5495]),
        peaks=peaks,
        amplitude=np.array(["", ""], dtype=object),
    )
    # window 0 (0-3600) is good: both its beats stay, even the one unlike its neighbours
    assert gate_peaks(peaks, q, QualityRule(gate="")).tolist() == peaks.tolist()
    assert gate_peaks(peaks, q, QualityRule(gate="agreed")).tolist() == [100, 1000, 4000, 5500]
    kept = gate_peaks(peaks, q, QualityRule(gate="agreed_or_similar", similar_min=0.9))
    assert kept.tolist() == [100, 1000, 4000, 5000, 5500]
    with pytest.raises(ValueError, match="unknown gate"):
        QualityRule(gate="sometimes")


def two_lead_record(seconds: float = 120.0):
    x, peaks = spikes(seconds)
    y, _ = spikes(seconds, seed=1)
    sig = np.stack([x, 0.5 * y], axis=1)
    lo, hi = int(40 * FS), int(70 * FS)
    rng = np.random.default_rng(3)
    for lead in range(2):
        sig[lo:hi, lead] += 0.5 * make_noise("electrode_motion", hi - lo, FS, rng)
    return sig, peaks


@pytest.fixture(scope="module")
def noisy_tables():
    sig, peaks = two_lead_record()
    default, q = classify_with_quality(sig, FS, r_peaks=peaks, device="cpu")
    kept, _ = classify_with_quality(sig, FS, r_peaks=peaks, device="cpu", keep_noisy=True)
    off, none = classify_with_quality(sig, FS, r_peaks=peaks, device="cpu", quality=False)
    return default, kept, off, q, none


def test_beats_in_noisy_stretches_are_marked_and_labelled_q(noisy_tables):
    default, kept, off, q, none = noisy_tables
    t = default["time_s"].to_numpy()
    inside = (t >= 40) & (t < 70)
    assert (default.loc[inside, "quality"] == "noisy").all()
    assert (default.loc[~inside, "quality"] == "good").all()
    assert (default.loc[inside, "class"] == "Q").all()
    assert not default.loc[inside, "class"].isin(["S", "V"]).any()
    # outside the noise nothing changes, and --keep-noisy keeps the classifier's labels
    assert (default.loc[~inside, "label"] == kept.loc[~inside, "label"]).all()
    assert (kept["label"] == off["label"]).all()
    assert (kept["quality"] == default["quality"]).all()
    assert (off["quality"] == "unassessed").all() and none is None
    assert q.intervals().tolist() == [[40.0, 70.0]]


def test_holter_summary_counts_only_readable_beats(noisy_tables):
    default, _, _, q, _ = noisy_tables
    summary = table_summary(default, 120.0, q.intervals())
    inside = int(((default["time_s"] >= 40) & (default["time_s"] < 70)).sum())
    assert summary["beats_noisy"] == inside
    assert summary["beats"] == len(default) - inside
    assert summary["Q"] == int((default["class"] == "Q").sum()) - inside
    assert summary["analysed_s"] == pytest.approx(90.0)
    assert summary["noisy_pct"] == pytest.approx(25.0)


def test_detected_peaks_are_gated_in_noisy_windows():
    sig, peaks = two_lead_record()
    lo = int(45 * FS)
    sig[lo : lo + int(0.04 * FS), 0] += 3.0  # an electrode pop: a large, unlike transient
    gated, q = classify_with_quality(sig, FS, device="cpu")
    raw, _ = classify_with_quality(sig, FS, device="cpu", quality=QualityRule(gate=""))
    assert q.noisy[4]
    assert len(gated) <= len(raw)
    # good windows keep every detection
    good = ~q.noisy_beats(raw["sample"].to_numpy())
    assert set(raw["sample"][good]) <= set(gated["sample"])


def test_defaults_are_those_chosen_on_ds1():
    chosen = json.loads((REPO / "results" / "noise_stress.json").read_text())["choice_ds1"]
    rule = QualityRule()
    for key, value in chosen["chosen"].items():
        assert getattr(rule, key) == value, key


@pytest.mark.slow
def test_real_record_with_added_noise(mitdb_dir):
    from ecg_utils.beats import annotated_beats
    from ecg_utils.records import read_annotations, read_signal

    sig, fs, _ = read_signal(mitdb_dir / "100")
    ref, _ = annotated_beats(*read_annotations(mitdb_dir / "100"))
    noisy = noise_stress(sig, fs, ref, "ambulatory", 0.0, seed=0)
    table, q = classify_with_quality(noisy.signal, fs, device="cpu")
    windows = [np.arange(int(a // 10), int(b // 10)) for a, b in noisy.noisy_s]
    clean = [np.arange(int(a // 10), int(b // 10)) for a, b in noisy.clean_s]
    assert np.mean([q.noisy[w].mean() >= 0.5 for w in windows]) >= 0.9
    assert np.mean([q.noisy[w].mean() >= 0.5 for w in clean]) <= 0.05
    t = table["time_s"].to_numpy()
    inside = np.any([(t >= a) & (t < b) for a, b in noisy.noisy_s], axis=0)
    shown = table["class"].to_numpy()
    # record 100 has 1 V beat: noise must not make a burst of them
    assert (shown[inside] == "V").sum() <= 5
