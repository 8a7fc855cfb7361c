"""Patient-relative features: clipping, prematurity against the patient's own rhythm,
gain invariance and the dominant beat."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_utils._io import EcgError
from ecg_utils.relative import (
    N_COLUMNS_ONE_LEAD,
    RHYTHM_COLUMNS,
    RR_CLIP_S,
    clipped_rr,
    column_names,
    dominant_beat,
    relative_features,
    rhythm_features,
)

FS = 360.0


def _recording(premature_every: int = 7, n_beats: int = 120, rr_s: float = 1.0, seed: int = 0):
    """Two leads of QRS-like spikes at ``rr_s``; every ``premature_every``-th beat comes
    at 0.7 RR with a compensatory pause. Returns (signal, peaks, premature mask)."""
    rng = np.random.default_rng(seed)
    times, premature, t = [], [], 1.0
    for i in range(n_beats):
        early = i % premature_every == premature_every - 1
        t += rr_s * (0.7 if early else 1.0)
        if i and premature[-1]:
            t += 0.3 * rr_s  # the compensatory pause after an early beat
        times.append(t)
        premature.append(early)
    peaks = np.rint(np.asarray(times) * FS).astype(np.int64)
    n = int(peaks[-1] + 2 * FS)
    s = np.arange(n)
    sig = np.zeros((n, 2))
    for p in peaks:
        lo, hi = p - 40, p + 40
        spike = np.exp(-0.5 * ((s[lo:hi] - p) / 4.0) ** 2)
        sig[lo:hi, 0] += spike
        sig[lo:hi, 1] -= 0.4 * spike
    sig += 0.005 * rng.standard_normal(sig.shape)
    return sig, peaks, np.asarray(premature)


def test_every_rr_is_clipped_before_any_average():
    peaks = np.array([0, 360, 720, 720 + 100 * 360, 720 + 101 * 360, 720 + 102 * 360])
    pre, post = clipped_rr(peaks, FS)
    assert pre.max() == RR_CLIP_S and post.max() == RR_CLIP_S
    rhythm = rhythm_features(peaks, FS)
    # the 100 s gap counts as 3 s in the averages: the beat after it is 3x its neighbours,
    # and the ordinary beats' ratios stay near 1 / mean(1, 1, 3, 1, 1) ~ 0.7, not ~0.05
    col = RHYTHM_COLUMNS.index("pre_over_local")
    assert rhythm[1, col] == pytest.approx(1 / np.mean([1, 1, 3, 1, 1, 1]), rel=1e-5)
    assert rhythm[3, col] == pytest.approx(3 / np.mean([1, 1, 3, 1, 1, 1]), rel=1e-5)


def test_premature_beats_are_premature_against_the_patients_own_rhythm():
    sig, peaks, premature = _recording()
    rhythm = rhythm_features(peaks, FS)
    for name in ("pre_over_long", "pre_over_local"):
        col = rhythm[:, RHYTHM_COLUMNS.index(name)]
        assert col[premature].max() < 0.8 < col[~premature & (np.arange(len(peaks)) > 0)].min()
    # the same rhythm twice as slow gives the same ratios: nothing is in seconds
    slow = rhythm_features(peaks * 2, FS)
    np.testing.assert_allclose(slow, rhythm, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gain", [0.1, 10.0, -1.0e3])
def test_features_do_not_depend_on_the_gain(gain):
    sig, peaks, _ = _recording()
    ref = relative_features(sig, FS, peaks)
    scaled = relative_features(sig * abs(gain), FS, peaks)
    np.testing.assert_allclose(scaled, ref, rtol=1e-4, atol=1e-5)


def test_the_dominant_beat_is_the_usual_one_and_an_odd_beat_differs_from_it():
    sig, peaks, _ = _recording(premature_every=1000)
    sig[peaks[50] - 30 : peaks[50] + 30, 0] *= -1  # one beat of another shape
    x = relative_features(sig, FS, peaks)
    names = column_names(2)
    rel = [i for i, n in enumerate(names) if n.startswith("l0_rel_")]
    corr = names.index("l0_corr")
    assert np.abs(x[50, rel]).max() > 1.0
    assert np.median(np.abs(x[:, rel])) < 0.05
    assert x[50, corr] < 0 < np.median(x[:, corr]) > 0.9
    template, c = dominant_beat(np.vstack([np.ones((9, 4)) * [0, 1, 0, 0], [[1, 0, 0, 0]]]))
    np.testing.assert_allclose(template, [0, 1, 0, 0])
    assert c[-1] < 0


def test_a_missing_second_lead_is_nan_and_the_first_lead_is_unchanged():
    sig, peaks, _ = _recording()
    two = relative_features(sig, FS, peaks, n_leads=2)
    one = relative_features(sig[:, :1], FS, peaks, n_leads=2)
    assert two.shape == one.shape == (len(peaks), len(column_names(2)))
    np.testing.assert_allclose(one[:, :N_COLUMNS_ONE_LEAD], two[:, :N_COLUMNS_ONE_LEAD])
    assert np.isnan(one[:, N_COLUMNS_ONE_LEAD:]).all()
    assert np.isfinite(two).all()


def test_bad_inputs_are_one_clear_error():
    with pytest.raises(EcgError, match="sorted"):
        clipped_rr(np.array([10, 5, 20]), FS)
    with pytest.raises(EcgError, match="shape"):
        relative_features(np.zeros((0, 2)), FS, np.array([], np.int64))
    assert relative_features(np.random.default_rng(0).normal(size=1000), FS, []).shape == (
        0,
        N_COLUMNS_ONE_LEAD,
    )
