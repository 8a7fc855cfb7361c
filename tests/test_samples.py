"""Tests for ecg_utils.samples: CSV and NPY files of samples as users export them.

Each CSV is written here from a known signal at a known rate: a header row names the
columns, a time column gives the rate, ``--lead`` picks a column by name or index, and
whatever cannot be decided is one clear error naming the file.
"""

from __future__ import annotations

import numpy as np
import pytest

from ecg_utils import EcgError
from ecg_utils.samples import check_given_fs, choose_lead, read_csv_table

FS = 250.0


def signal(n=1000, fs=FS):
    t = np.arange(n) / fs
    return t, np.sin(2 * np.pi * 1.2 * t), 0.5 * np.cos(2 * np.pi * 1.2 * t)


def write(path, header, *columns, fmt="%.6f", sep=","):
    rows = np.column_stack(columns)
    text = (sep.join(header) + "\n" if header else "") + "\n".join(
        sep.join(fmt % v for v in row) for row in rows
    )
    path.write_text(text + "\n")
    return path


@pytest.mark.parametrize(
    ("name", "scale"), [("time", 1.0), ("Time (s)", 1.0), ("t", 1.0), ("ms", 1e3)]
)
def test_header_row_and_time_column_give_the_rate(tmp_path, name, scale):
    t, ii, v1 = signal()
    path = write(tmp_path / "x.csv", [name, "II", "V1"], t * scale, ii, v1)
    table = read_csv_table(path)
    assert table.header and table.names == [name, "II", "V1"]
    assert table.time == 0 and table.fs == pytest.approx(FS)
    assert table.signals == [1, 2]
    np.testing.assert_allclose(table.data[:, 1], ii, atol=1e-6)


def test_unnamed_time_column_is_found_by_its_uniform_steps(tmp_path):
    t, ii, _ = signal()
    path = write(tmp_path / "x.csv", None, t, ii, fmt="%.4f")  # times rounded: 0.004 s
    table = read_csv_table(path)
    assert not table.header and (table.time, table.signals) == (0, [1])
    assert table.fs == pytest.approx(FS)
    ms = write(tmp_path / "ms.csv", ["elapsed", "ecg"], t * 1000, ii)  # unnamed unit: ms
    assert read_csv_table(ms).fs == pytest.approx(FS)


def test_sample_counter_is_neither_time_nor_ecg(tmp_path):
    t, ii, _ = signal()
    path = write(tmp_path / "x.csv", ["sample", "MLII"], np.arange(len(t)), ii)
    table = read_csv_table(path)
    assert (table.time, table.fs, table.ignored, table.signals) == (None, None, (0,), [1])
    bare = write(tmp_path / "bare.csv", None, np.arange(len(t)), ii, fmt="%g")
    assert read_csv_table(bare).ignored == (0,)


def test_semicolons_and_a_single_column(tmp_path):
    t, ii, v1 = signal()
    table = read_csv_table(write(tmp_path / "s.csv", ["time", "ecg"], t, ii, sep=";"))
    assert table.fs == pytest.approx(FS) and table.signals == [1]
    single = read_csv_table(write(tmp_path / "one.csv", None, ii))
    assert (single.time, single.signals, single.header) == (None, [0], False)


@pytest.mark.parametrize(
    ("header", "columns", "message"),
    [
        (["time", "ms", "II"], "two", "two time columns ('time' and 'ms')"),
        (["time", "II"], "gap", "time column 'time' is not a uniform time axis"),
        (["time", "II"], "text", "column II holds text"),
        (["time_s", "II"], "slow", "steps by 0.5 (s): sampling rate must be between 50"),
    ],
)
def test_undecidable_csv_is_one_error_naming_the_file(tmp_path, header, columns, message):
    t, ii, _ = signal()
    path = tmp_path / "bad.csv"
    if columns == "two":
        write(path, header, t, t * 1000, ii)
    elif columns == "gap":
        write(path, header, np.delete(t, 500), np.delete(ii, 500))
    elif columns == "slow":
        write(path, header, np.arange(len(t)) * 0.5, ii)  # 2 Hz
    else:
        path.write_text("time,II\n0,0.1\n0.004,abc\n0.008,0.2\n")
    with pytest.raises(EcgError) as err:
        read_csv_table(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value), err.value


def test_choose_lead_by_name_index_or_default(tmp_path):
    names = ["time", "I", "II", "V1"]
    idx, note = choose_lead(names, None, "f", [1, 2, 3])
    assert idx == 2 and note == "lead MLII not found, using II (leads: I, II, V1)"
    assert choose_lead(names, "v1", "f", [1, 2, 3]) == (3, None)  # case-insensitive
    assert choose_lead(names, "3", "f", [1, 2, 3]) == (3, None)  # file column index
    assert choose_lead(["ECG I", "ECG II"], "ii", "f") == (1, None)
    idx, note = choose_lead(["a", "b"], None, "f")
    assert idx == 0 and "lead MLII not found, using a" in note
    assert choose_lead(["time", "ecg"], None, "f", [1]) == (1, None)  # the only signal
    cases = [
        (["time", "II", "ii"], "II", "lead II names 2 columns"),
        (names, "0", "--lead 0 is the time column"),
        (names, "7", "--lead 7 is out of range"),
        (names, "V5", "lead V5 not in record (leads: I, II, V1)"),
        (names, "time", "column time is not a signal"),
    ]
    for cols, lead, message in cases:
        with pytest.raises(EcgError, match=message.replace("(", r"\(").replace(")", r"\)")):
            choose_lead(cols, lead, tmp_path / "f.csv", [1, 2, 3] if cols == names else None)


def test_given_fs_is_checked():
    check_given_fs(None, 360.0, "f", "header")
    check_given_fs(361.0, 360.0, "f", "header")  # text rounding of a time column
    with pytest.raises(EcgError, match=r"--fs 250 Hz contradicts the header \(360 Hz\)"):
        check_given_fs(250.0, 360.0, "f", "header")
