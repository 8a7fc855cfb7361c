"""Evaluation protocols: Kaggle's intra-patient beat split and de Chazal's inter-patient split."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from ._io import EcgError
from .beats import Beats

DS1 = (
    "101",
    "106",
    "108",
    "109",
    "112",
    "114",
    "115",
    "116",
    "118",
    "119",
    "122",
    "124",
    "201",
    "203",
    "205",
    "207",
    "208",
    "209",
    "215",
    "220",
    "223",
    "230",
)
"""de Chazal et al. (2004) training records."""
DS2 = (
    "100",
    "103",
    "105",
    "111",
    "113",
    "117",
    "121",
    "123",
    "200",
    "202",
    "210",
    "212",
    "213",
    "214",
    "219",
    "221",
    "222",
    "228",
    "231",
    "232",
    "233",
    "234",
)
"""de Chazal et al. (2004) test records."""
PACED = ("102", "104", "107", "217")
"""Records with paced beats, excluded from the inter-patient protocol (AAMI EC57)."""

PROTOCOLS = ("kaggle", "inter-patient", "all-records")
"""``all-records`` trains on every record (the paced ones too) and has no test side: the
product model for new patients, judged by record-fold cross-validation alone."""
SPLIT_SEED = 2018
"""Seed of the Kaggle-style 80/20 beat split: fixed so training and evaluation agree."""


@dataclass
class Split:
    """Beat indices of one protocol's training, validation and test sides."""

    protocol: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def records(self, beats: Beats) -> dict[str, list[str]]:
        """Record names on each side."""
        return {
            side: sorted(set(beats.record[getattr(self, side)].tolist()))
            for side in ("train", "val", "test")
        }


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise EcgError(f"unknown protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}")
    return protocol


def kaggle_split(y: np.ndarray, test_size: float = 0.2, seed: int = SPLIT_SEED):
    """Stratified random beat split (intra-patient: the same patients on both sides).

    Returns
    -------
    train, test : ndarray of int
        Indices into ``y``.
    """
    idx = np.arange(len(y))
    train, test = train_test_split(idx, test_size=test_size, stratify=y, random_state=seed)
    return np.sort(train), np.sort(test)


def inter_patient_sides(records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of DS1 (training) and DS2 (test) beats; paced records belong to neither."""
    return np.flatnonzero(np.isin(records, DS1)), np.flatnonzero(np.isin(records, DS2))


def validation_by_beats(y: np.ndarray, idx: np.ndarray, fraction: float, seed: int):
    """Carve a stratified validation set of beats out of ``idx``."""
    train, val = train_test_split(idx, test_size=fraction, stratify=y[idx], random_state=seed)
    return np.sort(train), np.sort(val)


def validation_by_records(
    y: np.ndarray, records: np.ndarray, idx: np.ndarray, n_folds: int, seed: int
):
    """Hold out about 1/n_folds of the records in ``idx`` for validation.

    Records are grouped so that no record is on both sides; the fold whose class mix
    is closest to the whole (scikit-learn's StratifiedGroupKFold) is chosen, so the
    validation records contain S and V beats.
    """
    folds = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # rare classes (8 Q beats in DS1) cannot fill every fold
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        train_pos, val_pos = next(folds.split(idx, y[idx], groups=records[idx]))
    return np.sort(idx[train_pos]), np.sort(idx[val_pos])


def record_folds(
    y: np.ndarray, records: np.ndarray, idx: np.ndarray, n_folds: int, seed: int = SPLIT_SEED
) -> list[np.ndarray]:
    """Partition ``idx`` into ``n_folds`` held-out folds of whole records.

    scikit-learn's StratifiedGroupKFold keeps each record in one fold and spreads the
    classes as evenly as records allow (cross-validation on the training side).

    Returns
    -------
    list of ndarray of int
        Sorted indices into ``y`` of each fold's held-out beats; together they cover
        ``idx`` once.
    """
    if not 2 <= n_folds <= len(set(records[idx].tolist())):
        raise EcgError(f"cannot make {n_folds} record folds from {len(set(records[idx]))} records")
    folds = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        return [np.sort(idx[held]) for _, held in folds.split(idx, y[idx], groups=records[idx])]


def make_split(
    beats: Beats,
    protocol: str,
    val_fraction: float = 0.1,
    seed: int = SPLIT_SEED,
    test_beats: int | None = None,
) -> Split:
    """Split ``beats`` for ``protocol``.

    Parameters
    ----------
    beats : Beats
        All beats of the MIT-BIH records (or Kaggle's train CSV followed by its test CSV,
        with ``test_beats`` = the number of test rows at the end).
    protocol : {"kaggle", "inter-patient", "all-records"}
    val_fraction : float
        Fraction of the training side held out for validation (beats for ``kaggle``,
        records — about ``1 / round(1 / val_fraction)`` of them — for ``inter-patient``).
    seed : int
        Seed of the validation split.
    """
    check_protocol(protocol)
    if not 0 < val_fraction < 1:
        raise EcgError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if len(beats) == 0:
        raise EcgError("no beats to split")
    try:
        return _make_split(beats, protocol, val_fraction, seed, test_beats)
    except ValueError as exc:  # scikit-learn: too few beats or records of a class
        raise EcgError(f"cannot split the beats for the {protocol} protocol: {exc}") from None


def _check_records(beats: Beats, protocol: str) -> None:
    if np.all(beats.record == beats.record[0]) and beats.record[0] == "kaggle":
        raise EcgError(f"the {protocol} protocol needs the MIT-BIH records, not Kaggle CSVs")


def _make_split(
    beats: Beats, protocol: str, val_fraction: float, seed: int, test_beats: int | None
) -> Split:
    y = beats.y
    if protocol == "all-records":
        _check_records(beats, protocol)
        none = np.zeros(0, np.int64)
        return Split(protocol, np.arange(len(y)), none, none)
    if protocol == "kaggle":
        if test_beats is not None:
            n = len(y)
            if not 0 < test_beats < n:
                raise EcgError(f"test_beats must be in (0, {n}), got {test_beats}")
            train, test = np.arange(n - test_beats), np.arange(n - test_beats, n)
        else:
            train, test = kaggle_split(y)
        train, val = validation_by_beats(y, train, val_fraction, seed)
    else:
        _check_records(beats, protocol)
        train, test = inter_patient_sides(beats.record)
        if len(train) == 0 or len(test) == 0:
            raise EcgError("the inter-patient protocol needs DS1 and DS2 records")
        n_folds = max(2, round(1 / val_fraction))
        train, val = validation_by_records(y, beats.record, train, n_folds, seed)
    return Split(protocol, train, val, test)
