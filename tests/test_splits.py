"""Tests for ecg_utils.splits: the Kaggle beat split and de Chazal's inter-patient split."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_utils import EcgError
from ecg_utils.beats import BEAT_LENGTH, Beats
from ecg_utils.splits import DS1, DS2, PACED, kaggle_split, make_split, record_folds


def fake_beats(records, per_record: int = 40, seed: int = 0) -> Beats:
    """Beats of the named records with random labels (class 0 most frequent)."""
    rng = np.random.default_rng(seed)
    n = per_record * len(records)
    y = rng.choice(5, size=n, p=[0.6, 0.1, 0.15, 0.05, 0.1])
    return Beats(
        rng.random((n, BEAT_LENGTH), dtype=np.float32),
        y.astype(np.int64),
        np.repeat(np.asarray(records, dtype="<U8"), per_record),
        np.tile(np.arange(per_record) * 300, len(records)),
        np.ones((n, 4), np.float32),
    )


ALL_RECORDS = sorted(DS1 + DS2 + PACED)


@pytest.fixture(scope="module")
def mitbih_like() -> Beats:
    return fake_beats(ALL_RECORDS)


def test_ds1_ds2_paced_are_the_48_records():
    assert len(DS1) == len(DS2) == 22
    assert set(DS1).isdisjoint(DS2) and set(PACED).isdisjoint(DS1 + DS2)
    assert set(PACED) == {"102", "104", "107", "217"}
    assert len(ALL_RECORDS) == 48


def test_inter_patient_sides_share_no_record(mitbih_like):
    split = make_split(mitbih_like, "inter-patient")
    recs = split.records(mitbih_like)
    assert set(recs["train"]).isdisjoint(recs["val"])
    assert set(recs["train"]).isdisjoint(recs["test"])
    assert set(recs["val"]).isdisjoint(recs["test"])
    assert set(recs["train"]) | set(recs["val"]) == set(DS1)
    assert set(recs["test"]) == set(DS2)
    assert not set(PACED) & (set(recs["train"]) | set(recs["val"]) | set(recs["test"]))
    assert 1 <= len(recs["val"]) <= 4  # about a tenth of DS1's 22 records


def test_inter_patient_uses_every_ds_beat_once(mitbih_like):
    split = make_split(mitbih_like, "inter-patient")
    used = np.concatenate([split.train, split.val, split.test])
    assert len(used) == len(set(used.tolist()))
    expected = np.flatnonzero(~np.isin(mitbih_like.record, PACED))
    np.testing.assert_array_equal(np.sort(used), expected)


def test_inter_patient_validation_is_deterministic(mitbih_like):
    a, b = make_split(mitbih_like, "inter-patient"), make_split(mitbih_like, "inter-patient")
    np.testing.assert_array_equal(a.val, b.val)
    c = make_split(mitbih_like, "inter-patient", seed=7)
    assert set(a.train) | set(a.val) == set(c.train) | set(c.val)


def test_record_folds_cover_the_records_once_and_keep_records_whole(mitbih_like):
    idx = np.flatnonzero(np.isin(mitbih_like.record, DS1))
    folds = record_folds(mitbih_like.y, mitbih_like.record, idx, 4)
    assert len(folds) == 4
    np.testing.assert_array_equal(np.sort(np.concatenate(folds)), idx)
    records = [set(mitbih_like.record[f].tolist()) for f in folds]
    assert all(a.isdisjoint(b) for i, a in enumerate(records) for b in records[i + 1 :])
    again = record_folds(mitbih_like.y, mitbih_like.record, idx, 4)
    assert all(np.array_equal(a, b) for a, b in zip(folds, again, strict=True))


def test_more_folds_than_records_is_a_clear_error(mitbih_like):
    idx = np.flatnonzero(np.isin(mitbih_like.record, DS1[:3]))
    with pytest.raises(EcgError, match="cannot make 4 record folds from 3 records"):
        record_folds(mitbih_like.y, mitbih_like.record, idx, 4)


def test_kaggle_split_is_stratified_deterministic_and_disjoint(mitbih_like):
    y = mitbih_like.y
    train, test = kaggle_split(y)
    again = kaggle_split(y)
    np.testing.assert_array_equal(train, again[0])
    np.testing.assert_array_equal(test, again[1])
    assert set(train.tolist()).isdisjoint(test.tolist())
    assert len(train) + len(test) == len(y)
    for k in range(5):  # every class is split 80/20
        assert abs((y[test] == k).sum() - 0.2 * (y == k).sum()) <= 1


def test_kaggle_validation_comes_from_the_training_side(mitbih_like):
    split = make_split(mitbih_like, "kaggle")
    train_side, test_side = kaggle_split(mitbih_like.y)
    assert set(split.val.tolist()) <= set(train_side.tolist())
    assert set(split.train.tolist()) | set(split.val.tolist()) == set(train_side.tolist())
    np.testing.assert_array_equal(split.test, test_side)
    assert set(split.train.tolist()).isdisjoint(split.val.tolist())
    assert len(split.val) == pytest.approx(0.1 * len(train_side), abs=1)


def test_kaggle_csv_split_keeps_the_given_test_rows():
    beats = fake_beats(["kaggle"], per_record=500)
    split = make_split(beats, "kaggle", test_beats=100)
    np.testing.assert_array_equal(split.test, np.arange(400, 500))
    assert set(split.train.tolist()) | set(split.val.tolist()) == set(range(400))


def test_kaggle_csv_cannot_serve_the_inter_patient_protocol():
    with pytest.raises(EcgError, match="needs the MIT-BIH records"):
        make_split(fake_beats(["kaggle"], per_record=100), "inter-patient")


@pytest.mark.parametrize(
    ("beats", "protocol", "message"),
    [
        (fake_beats(["100"]), "bogus", "unknown protocol 'bogus'"),
        (fake_beats(["x1", "x2"]), "inter-patient", "needs DS1 and DS2 records"),
        (fake_beats([]), "kaggle", "no beats"),
    ],
)
def test_bad_split_requests(beats, protocol, message):
    with pytest.raises(EcgError, match=message):
        make_split(beats, protocol)


def test_class_too_rare_to_stratify_is_a_clear_error():
    beats = fake_beats(["100"], per_record=50)
    beats.y[:] = 0
    beats.y[0] = 3  # a single F beat cannot be on both sides
    with pytest.raises(EcgError, match="cannot split the beats for the kaggle protocol"):
        make_split(beats, "kaggle")


@pytest.mark.slow
def test_real_inter_patient_split(mitdb_dir, tmp_path):
    from ecg_utils.beats import build_beats

    beats = build_beats(mitdb_dir, tmp_path, progress=False)
    split = make_split(beats, "inter-patient")
    recs = split.records(beats)
    assert set(recs["test"]) == set(DS2)
    assert set(recs["train"]) | set(recs["val"]) == set(DS1)
    assert set(recs["train"]).isdisjoint(recs["val"])
    val_counts = beats.subset(split.val).counts()
    assert val_counts["S"] > 0 and val_counts["V"] > 0  # stratified by records
    kaggle = make_split(beats, "kaggle")
    assert len(kaggle.test) == pytest.approx(0.2 * len(beats), abs=2)
