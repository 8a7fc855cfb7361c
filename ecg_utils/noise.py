"""Noise made by the project, added to clean records the way the noise stress test does.

The MIT-BIH Noise Stress Test Database (Moody, Muldrow & Mark 1984) adds recorded noise
to clean ECGs with the ``nst`` program: a 5-minute clean learning period, then 2-minute
stretches that alternate noisy and clean until the end of the record, the noise scaled to
a chosen signal-to-noise ratio. Its noise records are not reachable here, so this module
makes noise of the same five kinds from documented generators (all seeded):

* ``baseline``: baseline wander, a breathing-rate sinusoid (0.15-0.4 Hz) plus random
  components below 0.5 Hz;
* ``muscle``: electromyographic noise, Gaussian noise band-passed to 10-150 Hz (upper edge
  capped at 0.45 ``fs``) whose amplitude comes in bursts of a few seconds;
* ``electrode_motion``: what moving electrodes do: a wandering baseline below 2 Hz, steps
  that decay over 0.2-1 s, and 40-200 ms transients in the QRS band at random times (1.5 a
  second, heavy-tailed amplitudes) carrying 60 % of the power; the kind that makes
  detectors find false beats;
* ``powerline``: 60 Hz mains with a 10 % third harmonic (where the rate allows), its
  amplitude drifting slowly;
* ``ambulatory``: electrode motion, muscle and baseline wander at equal power, the mixture
  of a Holter recording.

And one that is not additive, ``lead_off``: within each noisy stretch the lead is flat for
a few seconds at a time (the electrode off, the amplifier at a constant) and clipped
elsewhere (the amplifier saturated at 30 % of the QRS amplitude); it has no SNR.

Signal-to-noise ratio as ``nst`` defines it: the signal power is that of a sine with the
QRS complexes' peak-to-peak amplitude (A^2 / 8, A the mean peak-to-peak amplitude within
+-50 ms of each reference beat, the largest and smallest 5 % left out), the noise power is
the mean square of the (zero-mean) noise; the noise is scaled so that
``10 log10(S / N)`` is the wanted SNR in dB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

NOISE_KINDS = ("baseline", "muscle", "electrode_motion", "powerline", "ambulatory", "lead_off")
"""Kinds of noise :func:`make_noise` and :func:`noise_stress` know."""
SNRS_DB = (24.0, 18.0, 12.0, 6.0, 0.0, -6.0)
"""Signal-to-noise ratios of the EC57 noise test, in dB."""
LEARN_S = 300.0
"""Clean learning period at the start of a record, in seconds."""
STRETCH_S = 120.0
"""Length of the alternating noisy and clean stretches after it, in seconds."""
QRS_HALF_S = 0.05
"""Half-width of the window in which a QRS complex's peak-to-peak amplitude is taken, s."""


@dataclass(frozen=True)
class NoisyRecord:
    """A record with noise added in the noise-test layout.

    Attributes
    ----------
    signal : ndarray, shape (n_samples, n_leads)
        The noisy signal, same units and rate as the clean one.
    noisy_s : ndarray, shape (k, 2)
        ``(start, end)`` of the noisy stretches in seconds.
    clean_s : ndarray, shape (m, 2)
        ``(start, end)`` of the clean stretches after the learning period, in seconds.
    gains : ndarray, shape (n_leads,)
        Noise gain applied to each lead (0 for ``lead_off``).
    """

    signal: np.ndarray
    noisy_s: np.ndarray
    clean_s: np.ndarray
    gains: np.ndarray


def stretches(duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The noisy and clean stretches of a record of ``duration_s`` seconds.

    Returns
    -------
    noisy, clean : ndarray, shape (k, 2)
        ``(start, end)`` in seconds: noisy from :data:`LEARN_S` on, every other
        :data:`STRETCH_S`; clean the stretches between them (the learning period not
        included). A last stretch shorter than half a stretch is dropped.
    """
    noisy, clean = [], []
    start, is_noisy = LEARN_S, True
    while start + STRETCH_S / 2 <= duration_s:
        end = min(start + STRETCH_S, duration_s)
        (noisy if is_noisy else clean).append((start, end))
        start, is_noisy = end, not is_noisy
    return (
        np.asarray(noisy, np.float64).reshape(-1, 2),
        np.asarray(clean, np.float64).reshape(-1, 2),
    )


def qrs_signal_power(x: np.ndarray, fs: float, peaks: np.ndarray) -> float:
    """Signal power of one lead as ``nst`` measures it: (mean QRS peak-to-peak)^2 / 8.

    Parameters
    ----------
    x : ndarray, shape (n_samples,)
        One lead at ``fs`` Hz.
    fs : float
        Sampling rate in Hz.
    peaks : ndarray of int
        Reference R peaks in samples.
    """
    half = max(int(round(QRS_HALF_S * fs)), 1)
    peaks = np.asarray(peaks, np.int64)
    peaks = peaks[(peaks >= half) & (peaks < len(x) - half)]
    if len(peaks) == 0:
        raise ValueError("no R peaks to measure the signal amplitude on")
    windows = x[peaks[:, None] + np.arange(-half, half + 1)]
    ptp = np.sort(windows.max(1) - windows.min(1))
    cut = int(0.05 * len(ptp))
    kept = ptp[cut : len(ptp) - cut] if len(ptp) > 2 * cut else ptp
    return float(np.mean(kept) ** 2 / 8.0)


def make_noise(kind: str, n: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of one kind of additive noise at ``fs`` Hz, zero mean, unit power.

    Parameters
    ----------
    kind : str
        One of :data:`NOISE_KINDS` except ``lead_off`` (which is not additive).
    n : int
        Number of samples.
    fs : float
        Sampling rate in Hz.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape (n,), float64
        Mean 0, mean square 1.
    """
    if kind == "ambulatory":
        parts = [make_noise(k, n, fs, rng) for k in ("electrode_motion", "muscle", "baseline")]
        noise = np.sum(parts, axis=0)
    elif kind in _GENERATORS:
        noise = _GENERATORS[kind](n, fs, rng)
    else:
        raise ValueError(f"unknown additive noise {kind!r}; choose one of {NOISE_KINDS[:-1]}")
    noise = noise - noise.mean()
    power = float(np.mean(noise**2))
    return noise / np.sqrt(power) if power > 0 else noise


def noise_stress(
    signal: np.ndarray,
    fs: float,
    peaks: np.ndarray,
    kind: str,
    snr_db: float | None,
    seed: int = 0,
) -> NoisyRecord:
    """Add noise to a clean record in the noise-test layout (:func:`stretches`).

    Parameters
    ----------
    signal : ndarray, shape (n_samples,) or (n_samples, n_leads)
        The clean record at ``fs`` Hz, any units.
    fs : float
        Sampling rate in Hz.
    peaks : ndarray of int
        Reference R peaks in samples (the signal amplitude is measured on them).
    kind : str
        One of :data:`NOISE_KINDS`.
    snr_db : float or None
        SNR in dB during the noisy stretches; ignored (None) for ``lead_off``.
    seed : int
        Seed of the noise; the same seed gives the same noise at every SNR (only the gain
        differs), and each lead its own noise.

    Returns
    -------
    NoisyRecord
    """
    x = np.asarray(signal, np.float64)
    x = x[:, None] if x.ndim == 1 else x
    n = len(x)
    noisy_s, clean_s = stretches(n / fs)
    mask = np.zeros(n, bool)
    for start, end in noisy_s:
        mask[int(round(start * fs)) : int(round(end * fs))] = True
    out = x.copy()
    gains = np.zeros(x.shape[1])
    for lead in range(x.shape[1]):
        rng = np.random.default_rng([seed, lead])
        if kind == "lead_off":
            out[:, lead] = _lead_off(x[:, lead], fs, peaks, noisy_s, rng)
            continue
        if snr_db is None:
            raise ValueError(f"noise {kind!r} needs an SNR in dB")
        noise = make_noise(kind, n, fs, rng)
        power = qrs_signal_power(x[:, lead], fs, peaks)
        gains[lead] = np.sqrt(power / 10 ** (snr_db / 10.0))
        out[mask, lead] += gains[lead] * noise[mask]
    return NoisyRecord(out, noisy_s, clean_s, gains)


# ------------------------------------------------------------------ generators


def _lowpass(x: np.ndarray, fs: float, hz: float) -> np.ndarray:
    sos = sps.butter(2, min(hz, 0.45 * fs), btype="lowpass", fs=fs, output="sos")
    return sps.sosfiltfilt(sos, x)


def _baseline(n: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / fs
    breath = np.sin(2 * np.pi * rng.uniform(0.15, 0.4) * t + rng.uniform(0, 2 * np.pi))
    # the random part at 10 Hz, then interpolated: a 0.5 Hz low-pass at 360 Hz is unstable
    coarse = np.arange(0, n / fs + 0.2, 0.1)
    slow = _lowpass(rng.standard_normal(len(coarse)), 10.0, 0.5)
    slow = np.interp(t, coarse, slow / (slow.std() or 1.0))
    return breath + slow


def _muscle(n: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    hi = min(150.0, 0.45 * fs)
    sos = sps.butter(4, [min(10.0, 0.5 * hi), hi], btype="bandpass", fs=fs, output="sos")
    emg = sps.sosfiltfilt(sos, rng.standard_normal(n))
    t = np.arange(n) / fs
    coarse = np.arange(0, n / fs + 0.2, 0.1)
    envelope = np.abs(_lowpass(rng.standard_normal(len(coarse)), 10.0, 0.3))
    envelope = np.interp(t, coarse, envelope / (envelope.mean() or 1.0))
    return emg * (0.3 + envelope)


def _unit(x: np.ndarray) -> np.ndarray:
    x = x - x.mean()
    return x / (x.std() or 1.0)


def _electrode_motion(n: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / fs
    coarse = np.arange(0, n / fs + 0.2, 0.05)
    wander = _lowpass(np.cumsum(rng.standard_normal(len(coarse))), 20.0, 2.0)
    wander = np.interp(t, coarse, wander)
    # steps that decay (the half-cell potential jumping as the electrode moves)
    steps = np.zeros(n)
    for at in rng.uniform(0, n, size=max(int(n / fs / 8.0), 1)).astype(int):
        tau = rng.uniform(0.2, 1.0) * fs
        length = min(n - at, int(5 * tau))
        steps[at : at + length] += rng.normal(0, 1.0) * np.exp(-np.arange(length) / tau)
    # transients in the QRS band: a Gaussian's derivative 40-200 ms wide, 1.5 a second
    transients = np.zeros(n)
    for at in rng.uniform(0, n, size=max(int(1.5 * n / fs), 1)).astype(int):
        width = rng.uniform(0.04, 0.2) * fs / 4
        half = int(4 * width)
        k = np.arange(-half, half + 1)
        shape = -k / width * np.exp(-0.5 * (k / width) ** 2)
        lo, hi = max(at - half, 0), min(at + half + 1, n)
        transients[lo:hi] += rng.standard_t(3) * shape[lo - (at - half) : hi - (at - half)]
    # power: 20 % wander, 20 % steps, 60 % transients (most of it in the QRS band)
    return (
        np.sqrt(0.2) * _unit(wander)
        + np.sqrt(0.2) * _unit(steps)
        + np.sqrt(0.6) * _unit(transients)
    )


def _powerline(n: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / fs
    phase = rng.uniform(0, 2 * np.pi)
    out = np.zeros(n)
    for harmonic, weight in ((1, 1.0), (3, 0.1)):
        hz = 60.0 * harmonic
        if hz < 0.5 * fs:
            out += weight * np.sin(2 * np.pi * hz * t + harmonic * phase)
    drift = 1.0 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.01, 0.05) * t + rng.uniform(0, 6.3))
    return out * drift


_GENERATORS = {
    "baseline": _baseline,
    "muscle": _muscle,
    "electrode_motion": _electrode_motion,
    "powerline": _powerline,
}

LEAD_OFF_FLAT_S = (2.0, 10.0)
"""Lengths of the flat (electrode off) segments of ``lead_off``, in seconds."""
CLIP_FRACTION = 0.3
"""``lead_off`` clips the lead at this fraction of the QRS peak-to-peak amplitude."""


def _lead_off(
    x: np.ndarray, fs: float, peaks: np.ndarray, noisy_s: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Flat segments and clipping within the noisy stretches (not additive)."""
    out = x.copy()
    amp = np.sqrt(8 * qrs_signal_power(x, fs, peaks))
    for start, end in noisy_s:
        lo, hi = int(round(start * fs)), int(round(end * fs))
        seg = out[lo:hi]
        centre = float(np.median(seg))
        np.clip(seg, centre - CLIP_FRACTION * amp, centre + CLIP_FRACTION * amp, out=seg)
        at = 0
        while at < len(seg):
            gap = int(rng.uniform(2.0, 10.0) * fs)
            flat = int(rng.uniform(*LEAD_OFF_FLAT_S) * fs)
            at += gap
            seg[at : at + flat] = centre + CLIP_FRACTION * amp * rng.choice([-1.0, 1.0])
            at += flat
    return out
