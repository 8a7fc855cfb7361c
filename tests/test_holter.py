"""Tests for ecg_utils.holter and ecg_utils.quality on synthetic beat sequences.

Each definition of the Holter summary (README "Whole archives") is checked on a label
sequence whose answer is known by construction: beats every ``rr`` seconds with the
classes given as a string ("NNVVN..."), optional noisy intervals.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ecg_utils.holter import (
    SUMMARY_FIELDS,
    episodes,
    holter_summary,
    merge_intervals,
    sequence_runs,
)


def summary(classes: str, rr: float = 1.0, duration: float | None = None, noisy=None, t0=0.5):
    """Holter summary of beats ``t0, t0 + rr, ...`` with one class per character."""
    t = t0 + rr * np.arange(len(classes))
    duration = duration if duration is not None else float(t[-1] + rr) if len(t) else 60.0
    return holter_summary(t, list(classes), duration, noisy)


def test_keys_and_counts():
    s = summary("NNSVVFQN")
    assert tuple(s) == SUMMARY_FIELDS
    assert (s["beats"], s["N"], s["S"], s["V"], s["F"], s["Q"]) == (8, 3, 1, 2, 1, 1)
    assert s["S_burden_pct"] == pytest.approx(100 / 8)
    assert s["V_burden_pct"] == pytest.approx(200 / 8)


def test_integer_labels_are_classes():
    a = holter_summary([1.0, 2.0, 3.0], [0, 2, 1], 4.0)
    assert (a["N"], a["V"], a["S"]) == (1, 1, 1)


@pytest.mark.parametrize(
    ("classes", "couplets", "runs", "longest"),
    [
        ("NVNVN", 0, 0, 0),  # isolated beats
        ("NVVN", 1, 0, 0),  # a couplet
        ("NVVNVVN", 2, 0, 0),
        ("NVVVN", 0, 1, 3),  # a run of 3 (the shortest NSVT)
        ("NVVVVVVNVVVVNVVN", 1, 2, 6),
        ("VVVVVVVVVV", 0, 1, 10),
        ("NVVSSVN", 1, 0, 0),  # families apart: V couplet, S couplet, isolated V
    ],
)
def test_couplets_and_runs(classes, couplets, runs, longest):
    s = summary(classes)
    assert (s["V_couplets"], s["V_runs"], s["V_longest_run"]) == (couplets, runs, longest)
    assert s["S_couplets"] == classes.count("SS")


def test_s_runs_are_counted_apart_from_v():
    s = summary("NSSSSNVVN")
    assert (s["S_runs"], s["S_longest_run"], s["S_couplets"]) == (1, 4, 0)
    assert (s["V_runs"], s["V_couplets"]) == (0, 1)


def test_sequence_runs_lengths():
    assert sequence_runs("VVNVNVVV|VV", "V").tolist() == [2, 1, 3, 2]


@pytest.mark.parametrize(
    ("classes", "bigeminy", "trigeminy"),
    [
        ("NVNV", 0, 0),  # two cycles: not enough
        ("NVNVNV", 1, 0),  # three cycles
        ("NNVNVNVNVNNN", 1, 0),  # one long episode, counted once
        ("NVNVNVNNNNVNVNVNV", 2, 0),  # two episodes apart
        ("NVNVFNV", 0, 0),  # an F beat breaks the chain
        ("NNVNNVNNV", 0, 1),
        ("NNVNNVNNVNNVNNN", 0, 1),
        ("NNVNNV", 0, 0),
        ("NNVNNVNNVNNNNNVNNVNNV", 0, 2),
        ("NVVNVNV", 0, 0),  # a couplet is not a cycle: (N V) (V N)...
    ],
)
def test_bigeminy_and_trigeminy(classes, bigeminy, trigeminy):
    s = summary(classes)
    assert (s["V_bigeminy"], s["V_trigeminy"]) == (bigeminy, trigeminy)
    assert (s["S_bigeminy"], s["S_trigeminy"]) == (0, 0)


def test_supraventricular_bigeminy():
    s = summary("NSNSNSNSN")
    assert (s["S_bigeminy"], s["V_bigeminy"]) == (1, 0)
    assert episodes("NSNSNS", "S", 1) == 1 and episodes("NSNSNS", "V", 1) == 0


def test_pauses():
    t = np.array([0.0, 1.0, 2.0, 4.5, 5.5, 6.5, 8.5, 9.5])  # RR 2.5 s and exactly 2.0 s
    s = holter_summary(t, ["N"] * len(t), 10.0)
    assert s["pauses"] == 1
    assert s["longest_pause_s"] == pytest.approx(2.5)
    assert math.isnan(summary("NNNN")["longest_pause_s"])


def test_heart_rate_per_minute():
    # first minute at 60 bpm (RR 1 s), second at 120 bpm (RR 0.5 s), then 30 s at 75 bpm
    t = np.concatenate([np.arange(0, 60, 1.0), np.arange(60, 120, 0.5), np.arange(120, 150, 0.8)])
    s = holter_summary(t, ["N"] * len(t), 150.0)
    assert s["hr_windows"] == 2  # the trailing half-minute is dropped
    assert s["hr_min_bpm"] == pytest.approx(60.0)
    # the second minute's RR intervals end in it: the first is the 1 s one from 59 s
    second = 60.0 / np.mean([1.0] + [0.5] * 119)
    assert s["hr_max_bpm"] == pytest.approx(second)
    assert s["hr_mean_bpm"] == pytest.approx((60.0 + second) / 2)


def test_heart_rate_needs_enough_beats_and_clean_time():
    sparse = holter_summary(np.arange(0, 60, 7.0), ["N"] * 9, 60.0)  # 8 RR < 10
    assert sparse["hr_windows"] == 0 and math.isnan(sparse["hr_mean_bpm"])
    t = np.arange(0, 120, 1.0)
    noisy = holter_summary(t, ["N"] * len(t), 120.0, noisy_s=[[60.0, 95.0]])  # 35 s noisy
    assert noisy["hr_windows"] == 1
    short = holter_summary(np.arange(0, 30, 1.0), ["N"] * 30, 30.0)  # shorter than a minute
    assert short["hr_windows"] == 1 and short["hr_mean_bpm"] == pytest.approx(60.0)


def test_noise_removes_beats_and_breaks_sequences():
    # beats every second; V V | V: the noisy interval between the 2nd and 3rd V
    classes = "NVV" + "N" + "VN"
    t = np.array([0.5, 1.5, 2.5, 3.5, 6.5, 7.5])
    s = holter_summary(t, list(classes), 10.0, noisy_s=[[3.0, 6.0]])
    assert s["beats"] == 5 and s["N"] == 2  # the N at 3.5 s lies in noise
    assert (s["V_couplets"], s["V_runs"]) == (1, 0)
    assert s["noisy_pct"] == pytest.approx(30.0)
    assert s["analysed_s"] == pytest.approx(7.0)
    assert s["pauses"] == 0  # the 4 s gap spans noise: not a pause
    joined = holter_summary(t, list("NVVVVN"), 10.0, noisy_s=[[3.0, 6.0]])
    assert (joined["V_runs"], joined["V_couplets"]) == (0, 1)  # VV | VV: no run of 4


def test_empty_table():
    s = holter_summary([], [], 60.0)
    assert s["beats"] == 0 and s["hr_windows"] == 0 and math.isnan(s["V_burden_pct"])


def test_merge_intervals():
    merged = merge_intervals([[5, 8], [0, 2], [1, 3], [7, 12], [-1, 0]], 10.0)
    assert merged.tolist() == [[0.0, 3.0], [5.0, 10.0]]
    assert merge_intervals(None, 10).shape == (0, 2)
