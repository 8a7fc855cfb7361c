"""Tests for ecg_utils.beats: segmentation, AAMI labels, lead choice, beat sets and cache."""

from __future__ import annotations

import shutil
import string
import time

import numpy as np
import pytest
from conftest import write_record
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ecg_utils import EcgError
from ecg_utils.beats import (
    AAMI_CLASSES,
    BEAT_LENGTH,
    CLASS_NAMES,
    FEATURE_SETS,
    FS_BEAT,
    WIDE_BEFORE,
    WIDE_LENGTH,
    Beats,
    aami_label,
    build_beats,
    context_features,
    feature_matrix,
    load_beats,
    pick_lead,
    read_record_beats,
    rr_features,
    save_beats,
    segment_beats,
    waveform_length,
    wide_windows,
)
from ecg_utils.sources import load_kaggle_csv

ANNOTATION_COUNTS = {"N": 90_631, "S": 2_781, "V": 7_236, "F": 803, "Q": 8_043}
"""Beat annotations of each AAMI class in the 48 MIT-BIH records (109,494 in all)."""
KAGGLE_COUNTS = {"N": 90_589, "S": 2_779, "V": 7_236, "F": 803, "Q": 8_039}
"""Beats of each class in Kaggle's heartbeat set, train + test (109,446 in all)."""


def spikes(fs: float, seconds: float, peaks_s: np.ndarray) -> np.ndarray:
    """A signal of Gaussian spikes (10 ms wide) at ``peaks_s`` seconds."""
    t = np.arange(int(seconds * fs)) / fs
    return sum(np.exp(-0.5 * ((t - p) / 0.01) ** 2) for p in peaks_s)


# ---------------------------------------------------------------------------
# segment_beats
# ---------------------------------------------------------------------------


def test_segment_beats_shape_range_dtype():
    fs = 360
    peaks_s = np.arange(0.5, 19.5, 0.8)
    x, kept = segment_beats(spikes(fs, 20, peaks_s), fs, np.rint(peaks_s * fs).astype(int))
    assert x.shape == (len(peaks_s), BEAT_LENGTH)
    assert x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    np.testing.assert_array_equal(kept, np.arange(len(peaks_s)))


def test_segment_beats_starts_at_the_r_peak_and_pads_after_1_2_rr():
    fs = 360
    peaks_s = np.arange(0.5, 9.5, 0.8)  # RR 0.8 s = 96 samples at 120 Hz
    x, _ = segment_beats(spikes(fs, 10, peaks_s), fs, np.rint(peaks_s * fs).astype(int))
    assert FS_BEAT == 120
    assert np.all(x[:, 0] == 1)  # the R peak is the first sample, and the beat's maximum
    assert np.all(x[:, 115:] == 0)  # 1.2 * 96 = 115 samples, then zero padding
    assert np.all(x[:-1, 96] == 1)  # the next beat's R peak, 0.8 s later


def test_segment_beats_drops_peaks_outside_the_signal():
    fs = 250
    x, kept = segment_beats(spikes(fs, 5, [1.0, 2.0]), fs, np.array([-10, 250, 500, 5000]))
    np.testing.assert_array_equal(kept, [1, 2])
    assert x.shape == (2, BEAT_LENGTH)


def test_segment_beats_rejects_unsorted_peaks_and_2d_signals():
    with pytest.raises(EcgError, match="sorted"):
        segment_beats(np.zeros(1000), 360, np.array([500, 100]))
    with pytest.raises(EcgError, match="1-D"):
        segment_beats(np.zeros((1000, 2)), 360, np.array([100]))


def test_segment_beats_rejects_bad_sampling_rate():
    with pytest.raises(EcgError, match="sampling rate must be between 50 and 20000 Hz"):
        segment_beats(np.zeros(1000), 0, np.array([100]))


@pytest.mark.parametrize("value", [0.0, 5.0, -3.2])
def test_constant_signal_gives_zero_beats(value):
    x, kept = segment_beats(np.full(3600, value), 360, np.array([100, 500, 900]))
    assert len(kept) == 3
    assert np.all(np.isfinite(x)) and x.min() >= 0 and x.max() <= 1


def test_flat_window_inside_a_signal_gives_zero_beats():
    sig = 0.5 + spikes(360, 30, np.arange(0.5, 10, 0.8))  # beats for 10 s, then flat
    x, _ = segment_beats(sig, 360, np.array([360 * 15, 360 * 25]))
    assert np.all(x == 0)


def test_signal_with_gaps_is_interpolated():
    sig = spikes(360, 10, [1.0, 2.0, 3.0])
    sig[1000:1200] = np.nan
    x, _ = segment_beats(sig, 360, np.array([360, 720, 1080]))
    assert np.all(np.isfinite(x))


def test_all_nan_signal_is_a_clear_error():
    with pytest.raises(EcgError, match="no finite samples"):
        segment_beats(np.full(3600, np.nan), 360, np.array([100]))


def test_signal_shorter_than_one_beat_and_one_window():
    x, kept = segment_beats(spikes(360, 0.3, [0.1]), 360, np.array([36]))
    assert x.shape == (1, BEAT_LENGTH) and np.all(np.isfinite(x))
    np.testing.assert_array_equal(kept, [0])


@st.composite
def signal_and_peaks(draw):
    """Any finite signal of 2-60 s at a common rate, with sorted peaks inside it."""
    fs = draw(st.sampled_from([100, 128, 250, 360, 500]))
    n = int(draw(st.floats(2.0, 60.0)) * fs)
    finite = st.floats(allow_nan=False, allow_infinity=False)
    kind = draw(st.sampled_from(["sparse", "noise"]))
    if kind == "sparse":  # a constant with a few arbitrary (possibly huge) samples
        x = draw(arrays(np.float64, n, elements=finite, fill=finite))
    else:
        scale = draw(st.floats(1e-300, 1e300))
        x = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).standard_normal(n) * scale
    peaks = draw(st.lists(st.integers(0, n - 1), min_size=0, max_size=80).map(sorted))
    return x, fs, np.asarray(peaks, dtype=np.int64)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(signal_and_peaks())
def test_segment_beats_property_any_finite_signal(case):
    x, fs, peaks = case
    beats, kept = segment_beats(x, fs, peaks)
    assert beats.shape == (len(kept), BEAT_LENGTH)
    assert beats.dtype == np.float32
    assert np.all(np.isfinite(beats))
    assert beats.min(initial=0) >= 0 and beats.max(initial=0) <= 1
    assert len(kept) == len(peaks)  # peaks inside the signal are never dropped


def test_segment_beats_near_float_max():
    x = np.full(1000, 1.5e308)
    x[10] = -1.5e308
    beats, _ = segment_beats(x, 100, np.array([0]))
    assert np.all(np.isfinite(beats))


# ---------------------------------------------------------------------------
# AAMI labels
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbols", "label"),
    [("NLRej", 0), ("AaJS", 1), ("VE", 2), ("F", 3), ("/fQ", 4)],
)
def test_aami_mapping(symbols, label):
    for s in symbols:
        assert aami_label(s) == label


@pytest.mark.parametrize("symbol", list('+~|x![]"') + ["", "NN", "n", "B", "?"])
def test_non_beat_symbols_have_no_label(symbol):
    assert aami_label(symbol) is None


def test_class_names_cover_the_labels():
    assert sorted(set(AAMI_CLASSES.values())) == list(range(len(CLASS_NAMES)))


@given(st.text(max_size=3) | st.characters())
def test_aami_label_is_total(symbol):
    label = aami_label(symbol)
    assert label is None or label in range(5)


# ---------------------------------------------------------------------------
# Records -> beats
# ---------------------------------------------------------------------------


def test_record_beats_land_on_the_annotated_peaks(synthetic_record):
    rec = synthetic_record(seconds=40)
    beats = read_record_beats(rec.path)
    # every beat but the last, which has no next RR interval (the Kaggle set drops it too)
    np.testing.assert_array_equal(beats.r_peak, rec.beat_samples[:-1])
    np.testing.assert_array_equal(beats.y, rec.beat_labels[:-1])
    assert "+" in rec.symbols and "~" in rec.symbols  # non-beats were there, and skipped
    assert set(beats.record) == {"syn"}
    assert beats.meta == {"lead": "MLII", "lead_note": None, "fs": 360.0}
    # each segment starts at its R peak: the first sample tops the rest of the beat
    assert np.all(beats.x[:, 0] >= beats.x[:, 5:80].max(axis=1))


def test_rr_features_of_a_regular_rhythm():
    rr = rr_features(np.arange(0, 3600, 360), 360.0)
    np.testing.assert_allclose(rr, 1.0)
    assert rr.shape == (10, 4) and rr.dtype == np.float32


def test_context_features_see_a_premature_beat_against_the_local_rhythm():
    peaks = np.arange(0, 36000, 360)  # 1 s rhythm with one premature beat in it
    peaks[50] -= 144  # 0.6 s after the previous beat, then a 1.4 s pause
    ctx = context_features(rr_features(peaks, 360.0))
    prev_med, next_med, change, irregularity = ctx.T
    np.testing.assert_allclose(ctx[49, :3], [1.0, 0.6, 1.0], rtol=1e-5)
    np.testing.assert_allclose(ctx[50, :3], [0.6, 1.4, 0.6], rtol=1e-5)
    np.testing.assert_allclose(ctx[51, :3], [1.4, 1.0, 1.4 / 0.6], rtol=1e-5)  # the pause
    np.testing.assert_allclose(ctx[52, :3], [1.0, 1.0, 1.0 / 1.4], rtol=1e-5)
    np.testing.assert_allclose(np.delete(ctx[:, :3], range(49, 53), axis=0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(irregularity, 0.0, atol=1e-6)  # one early beat: still regular


def test_context_features_find_an_irregular_rhythm():
    rng = np.random.default_rng(0)
    regular = np.cumsum(np.full(200, 300))
    chaotic = np.cumsum(rng.integers(150, 450, 200))  # RR 0.4-1.25 s at 360 Hz
    irregularity = [context_features(rr_features(p, 360.0))[:, 3] for p in (regular, chaotic)]
    assert np.median(irregularity[0]) == 0 and np.median(irregularity[1]) > 0.15


def test_context_features_stay_within_each_recording_and_its_gaps():
    rr = rr_features(np.arange(0, 3600, 360), 360.0)
    rr2 = rr_features(np.arange(0, 3600, 180), 360.0)  # a faster recording
    both = np.concatenate([rr, rr2])
    groups = np.array(["a"] * len(rr) + ["b"] * len(rr2))
    ctx = context_features(both, groups)
    np.testing.assert_allclose(ctx[:, :3], 1.0, rtol=1e-5)  # each judged by its own rhythm
    np.testing.assert_allclose(ctx[:, 3], 0.0, atol=1e-6)
    gap = context_features(rr_features(np.array([0, 360, 720, 1440, 1800]), 360.0)[[0, 1, 3, 4]])
    assert gap[2, 2] == 1.0  # beats 1 and 3 are not neighbours: no change is measured


@pytest.mark.parametrize("feature_set", sorted(FEATURE_SETS))
def test_feature_matrix_columns_match_their_names(feature_set):
    rng = np.random.default_rng(0)
    x = rng.random((30, BEAT_LENGTH)).astype(np.float32)
    rr = rr_features(np.cumsum(rng.integers(200, 400, 30)), 360.0)
    wide = rng.random((30, WIDE_LENGTH)).astype(np.float32)
    f = feature_matrix(rr, feature_set, x, wide=wide)
    assert f.shape == (30, len(FEATURE_SETS[feature_set])) and f.dtype == np.float32
    assert np.isfinite(f).all()


def test_record_at_another_sampling_rate(synthetic_record):
    rec = synthetic_record(fs=250, seconds=20, leads=("MLII",))
    beats = read_record_beats(rec.path)
    np.testing.assert_array_equal(beats.r_peak, rec.beat_samples[:-1])
    assert beats.meta["fs"] == 250.0


def test_missing_lead_falls_back_to_the_first_with_a_note(synthetic_record):
    rec = synthetic_record(leads=("V5", "V2"))
    beats = read_record_beats(rec.path, lead="MLII")
    assert beats.meta["lead"] == "V5"
    assert beats.meta["lead_note"] == "lead MLII not found, using V5 (leads: V5, V2)"


def test_preferred_lead_is_found_in_any_position():
    assert pick_lead(["V1", "MLII"]) == (1, None)
    assert pick_lead(["V1", "MLII"], None) == (0, None)


def test_lead_notes_are_collected_by_build_beats(tmp_path):
    write_record(tmp_path, "r1", seconds=10)
    write_record(tmp_path, "r2", seconds=10, leads=("V5", "V2"))
    beats = build_beats(tmp_path, records=["r1", "r2"], progress=False)
    assert beats.meta["lead_notes"] == {"r2": "lead MLII not found, using V5 (leads: V5, V2)"}


def test_build_beats_refuses_bad_record_names(tmp_path):
    (tmp_path / "RECORDS").write_text("100\n../etc/passwd\n")
    with pytest.raises(EcgError, match="invalid record name") as err:
        build_beats(tmp_path, progress=False)
    assert "RECORDS" in str(err.value)


def test_build_beats_missing_folder(tmp_path):
    with pytest.raises(EcgError, match="not found") as err:
        build_beats(tmp_path / "nope", progress=False)
    assert "nope" in str(err.value)


def test_beats_subset_concat_and_counts():
    y = np.array([0, 1, 2, 3, 4, 0])
    b = Beats(
        np.zeros((6, BEAT_LENGTH), np.float32),
        y,
        np.array(["a"] * 6),
        np.arange(6),
        np.ones((6, 4), np.float32),
    )
    both = Beats.concat([b.subset(y == 0), b.subset(y != 0)])
    assert both.counts() == {"N": 2, "S": 1, "V": 1, "F": 1, "Q": 1}
    assert len(Beats.concat([])) == 0


# ---------------------------------------------------------------------------
# Beat files and the cache
# ---------------------------------------------------------------------------


def assert_beats_equal(a: Beats, b: Beats) -> None:
    for name in ("x", "y", "record", "r_peak", "rr"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.meta == b.meta


def test_save_and_load_beats_round_trip(tmp_path, synthetic_mitdb):
    beats = build_beats(synthetic_mitdb, records=["101"], progress=False)
    save_beats(beats, tmp_path / "b.npz")
    assert_beats_equal(load_beats(tmp_path / "b.npz"), beats)


def test_cache_is_reused_and_equal(tmp_path, synthetic_mitdb):
    first = build_beats(synthetic_mitdb, tmp_path, progress=False)
    (cache,) = tmp_path.glob("beats-*.npz")
    stamp = cache.stat().st_mtime_ns
    second = build_beats(synthetic_mitdb, tmp_path, progress=False)
    assert cache.stat().st_mtime_ns == stamp  # read, not rewritten
    assert_beats_equal(first, second)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "wrong_shape"])
def test_damaged_cache_is_rebuilt(tmp_path, synthetic_mitdb, damage):
    first = build_beats(synthetic_mitdb, tmp_path, progress=False)
    (cache,) = tmp_path.glob("beats-*.npz")
    data = cache.read_bytes()
    if damage == "truncate":
        cache.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        cache.write_bytes(b"not a zip file" * 100)
    elif damage == "empty":
        cache.write_bytes(b"")
    else:
        broken = first.subset(np.arange(len(first)))
        broken.x = broken.x[:, :100]
        save_beats(broken, cache)
    second = build_beats(synthetic_mitdb, tmp_path, progress=False)
    assert_beats_equal(first, second)
    assert_beats_equal(load_beats(cache), first)  # the cache was written again


def test_changed_data_misses_the_cache(tmp_path, synthetic_mitdb):
    folder = tmp_path / "db"
    shutil.copytree(synthetic_mitdb, folder)
    build_beats(folder, tmp_path / "cache", progress=False)
    write_record(folder, "101", seconds=20, seed=99)
    build_beats(folder, tmp_path / "cache", progress=False)
    assert len(list((tmp_path / "cache").glob("beats-*.npz"))) == 2


# ---------------------------------------------------------------------------
# Kaggle CSV reader on junk
# ---------------------------------------------------------------------------


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.text(alphabet=string.printable, max_size=400)
    | st.lists(
        st.lists(st.sampled_from(["0.5", "1", "", "nan", "x", "-1", "2.0", "1e9"]), max_size=190),
        max_size=4,
    ).map(lambda rows: "\n".join(",".join(r) for r in rows))
    | st.binary(max_size=300).map(lambda b: b.decode("latin-1"))
)
def test_load_kaggle_csv_on_junk_raises_only_ecg_error(tmp_path, text):
    path = tmp_path / "junk.csv"
    path.write_text(text, encoding="latin-1")
    try:
        x, y = load_kaggle_csv(path)
    except EcgError as exc:
        assert "junk.csv" in str(exc)
    else:
        assert x.shape[1] == BEAT_LENGTH and len(x) == len(y)


# ---------------------------------------------------------------------------
# The real database
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_real_annotation_counts(mitdb_dir):
    from ecg_utils.records import read_annotations

    counts = dict.fromkeys(CLASS_NAMES, 0)
    for rec in (mitdb_dir / "RECORDS").read_text().split():
        for symbol in read_annotations(mitdb_dir / rec)[1]:
            label = aami_label(symbol)
            if label is not None:
                counts[CLASS_NAMES[label]] += 1
    assert counts == ANNOTATION_COUNTS
    assert sum(counts.values()) == 109_494


@pytest.mark.slow
def test_real_beats_match_kaggle_and_the_cache_is_fast(mitdb_dir, tmp_path):
    t0 = time.perf_counter()
    beats = build_beats(mitdb_dir, tmp_path, progress=False)
    build_s = time.perf_counter() - t0
    # every annotated beat but each record's last (no next RR), exactly as in Kaggle's set
    assert beats.counts() == KAGGLE_COUNTS
    assert len(beats) == 109_446 == 109_494 - 48
    assert beats.x.shape == (109_446, BEAT_LENGTH) and beats.x.dtype == np.float32
    assert beats.x.min() >= 0 and beats.x.max() <= 1
    assert set(beats.meta["lead_notes"]) == {"102", "104"}
    assert len(set(beats.record)) == 48

    t0 = time.perf_counter()
    again = build_beats(mitdb_dir, tmp_path, progress=False)
    cached_s = time.perf_counter() - t0
    assert cached_s < 1.0, f"cached build took {cached_s:.2f} s (uncached {build_s:.2f} s)"
    assert_beats_equal(beats, again)


def _spikes(fs: float, peaks, heights, n: int) -> np.ndarray:
    x = np.zeros(n)
    for p, h in zip(peaks, heights, strict=True):
        x[p] = h
    return x


def test_wide_window_puts_the_r_peak_at_108_and_sees_the_p_wave():
    fs = 360.0
    peaks = np.array([720, 1080, 1440])
    x = _spikes(fs, peaks, [1.0, 1.0, 1.0], 2200)
    x[1080 - 54] = 0.2  # a P wave 0.15 s before the middle beat's R peak
    w = wide_windows(x, fs, peaks)
    assert w.shape == (3, WIDE_LENGTH) and w.dtype == np.float32
    assert WIDE_LENGTH == 156 and WIDE_BEFORE == 108
    assert np.argmax(w[1]) == WIDE_BEFORE
    assert w[1, WIDE_BEFORE - 18] == pytest.approx(0.2)  # 0.15 s at 120 Hz
    assert w[0, WIDE_BEFORE - 18] == 0.0  # the first beat has no P wave


def test_wide_window_scale_is_the_recordings_not_the_beats():
    fs = 360.0
    peaks = np.arange(400, 7000, 400)
    heights = np.ones(len(peaks))
    heights[5] = 3.0  # one beat three times taller than the patient's usual one
    w = wide_windows(_spikes(fs, peaks, heights, 7400), fs, peaks)
    assert w[5, WIDE_BEFORE] == pytest.approx(3 * w[4, WIDE_BEFORE])
    doubled = wide_windows(2 * _spikes(fs, peaks, heights, 7400), fs, peaks)
    np.testing.assert_allclose(doubled, w, atol=1e-6)  # units do not matter


def test_wide_window_repeats_the_edges_and_fills_gaps():
    fs = 250.0
    x = np.sin(np.arange(1000) / 10.0)
    x[500:510] = np.nan
    w = wide_windows(x, fs, np.array([10, 505, 995]))
    assert np.isfinite(w).all() and w.shape == (3, WIDE_LENGTH)
    assert np.all(w[0, : WIDE_BEFORE - 10] == w[0, 0])  # before the signal: first sample
    assert wide_windows(x, fs, np.array([], dtype=np.int64)).shape == (0, WIDE_LENGTH)


def test_record_beats_carry_their_wide_windows_through_subset_concat_and_files(
    synthetic_record, tmp_path
):
    beats = read_record_beats(synthetic_record().path)
    assert beats.wide.shape == (len(beats), WIDE_LENGTH)
    part = beats.subset(np.arange(3))
    np.testing.assert_array_equal(part.wide, beats.wide[:3])
    both = Beats.concat([part, part])
    assert both.wide.shape == (6, WIDE_LENGTH)
    save_beats(beats, tmp_path / "b.npz")
    np.testing.assert_array_equal(load_beats(tmp_path / "b.npz").wide, beats.wide)
    no_wide = Beats(part.x, part.y, part.record, part.r_peak, part.rr)
    assert Beats.concat([part, no_wide]).wide is None


def test_wide_feature_sets_append_the_window_and_need_it(synthetic_record):
    beats = read_record_beats(synthetic_record().path)
    base = feature_matrix(beats.rr, "rr+morph", beats.x, beats.record)
    full = feature_matrix(beats.rr, "rr+morph+wide", beats.x, beats.record, beats.wide)
    assert full.shape == (len(beats), base.shape[1] + WIDE_LENGTH)
    np.testing.assert_array_equal(full[:, : base.shape[1]], base)
    np.testing.assert_array_equal(full[:, base.shape[1] :], beats.wide)
    assert waveform_length("rr+morph+wide") == WIDE_LENGTH and waveform_length("rr") == 0
    with pytest.raises(EcgError, match="wide window"):
        feature_matrix(beats.rr, "rhythm+wide", beats.x, beats.record)
