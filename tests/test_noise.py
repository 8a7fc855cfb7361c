"""Tests for ecg_utils.noise: the generators, the SNR calibration and the test layout."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_utils.noise import (
    LEARN_S,
    NOISE_KINDS,
    STRETCH_S,
    make_noise,
    noise_stress,
    qrs_signal_power,
    stretches,
)

FS = 360.0


def spikes(seconds: float = 1500.0, fs: float = FS):
    n = int(seconds * fs)
    peaks = np.arange(int(0.5 * fs), n - int(0.5 * fs), int(0.8 * fs))
    x = np.zeros(n)
    t = np.arange(-10, 11)
    for p in peaks:
        x[p + t] += 2.0 * np.exp(-0.5 * (t / 4.0) ** 2)
    return x, peaks


@pytest.mark.parametrize("kind", [k for k in NOISE_KINDS if k != "lead_off"])
def test_noise_has_zero_mean_unit_power_and_is_seeded(kind):
    a = make_noise(kind, 36_000, FS, np.random.default_rng(0))
    b = make_noise(kind, 36_000, FS, np.random.default_rng(0))
    c = make_noise(kind, 36_000, FS, np.random.default_rng(1))
    assert a.mean() == pytest.approx(0.0, abs=1e-9)
    assert np.mean(a**2) == pytest.approx(1.0)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_spectra_are_where_each_kind_lives():
    def share(x, lo, hi):
        f = np.fft.rfftfreq(len(x), 1 / FS)
        p = np.abs(np.fft.rfft(x)) ** 2
        return p[(f >= lo) & (f < hi)].sum() / p.sum()

    rng = np.random.default_rng(0)
    assert share(make_noise("baseline", 360_000, FS, rng), 0, 1.0) > 0.95
    assert share(make_noise("muscle", 360_000, FS, rng), 10, 150) > 0.9
    assert share(make_noise("powerline", 360_000, FS, rng), 59, 61) > 0.95
    assert share(make_noise("electrode_motion", 360_000, FS, rng), 1, 40) > 0.3
    with pytest.raises(ValueError, match="unknown additive noise"):
        make_noise("lead_off", 100, FS, rng)


def test_layout_is_five_clean_minutes_then_alternating_two_minute_stretches():
    noisy, clean = stretches(1780.0)
    assert noisy[0].tolist() == [LEARN_S, LEARN_S + STRETCH_S]
    assert clean[0].tolist() == [LEARN_S + STRETCH_S, LEARN_S + 2 * STRETCH_S]
    assert noisy.tolist() == [[300 + 240 * k, 420 + 240 * k] for k in range(6)]
    assert clean[-1].tolist() == [1620.0, 1740.0]  # the 40 s left are under half a stretch
    assert stretches(1805.0)[0][-1].tolist() == [1740.0, 1805.0]  # 65 s: a short stretch


@pytest.mark.parametrize("snr", [24.0, 6.0, -6.0])
def test_noise_is_scaled_to_the_snr_only_inside_noisy_stretches(snr):
    x, peaks = spikes()
    rec = noise_stress(x, FS, peaks, "muscle", snr, seed=3)
    added = rec.signal[:, 0] - x
    inside = np.zeros(len(x), bool)
    for a, b in rec.noisy_s:
        inside[int(a * FS) : int(b * FS)] = True
    assert not added[~inside].any()
    measured = 10 * np.log10(qrs_signal_power(x, FS, peaks) / np.mean(added[inside] ** 2))
    assert measured == pytest.approx(snr, abs=0.2)
    # the same seed gives the same noise at another SNR, only scaled
    other = noise_stress(x, FS, peaks, "muscle", snr + 6.0, seed=3).signal[:, 0] - x
    assert np.allclose(other[inside] * 10 ** (6.0 / 20), added[inside])


def test_qrs_power_is_that_of_a_sine_of_the_peak_to_peak_amplitude():
    x, peaks = spikes(60.0)
    assert qrs_signal_power(x, FS, peaks) == pytest.approx(2.0**2 / 8, rel=0.01)
    with pytest.raises(ValueError, match="no R peaks"):
        qrs_signal_power(x, FS, np.array([], np.int64))


def test_lead_off_is_flat_and_clipped_in_noisy_stretches_only():
    x, peaks = spikes()
    rec = noise_stress(np.stack([x, x], 1), FS, peaks, "lead_off", None, seed=0)
    y = rec.signal[:, 0]
    a, b = (int(v * FS) for v in rec.noisy_s[0])
    assert np.array_equal(y[: int(LEARN_S * FS)], x[: int(LEARN_S * FS)])
    assert y[a:b].max() < x[a:b].max()  # clipped
    assert (np.diff(y[a:b]) == 0).mean() > 0.2  # flat for seconds at a time
    assert rec.gains.tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="needs an SNR"):
        noise_stress(x, FS, peaks, "muscle", None)
