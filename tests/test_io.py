"""Tests for ecg_utils._io: one-line errors, atomic writes and environment metadata."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from conftest import ROOT, tmp_files

from ecg_utils._io import (
    EcgError,
    atomic_open,
    atomic_path,
    environment_info,
    write_text_atomic,
)


def test_ecg_error_names_the_file():
    err = EcgError("sampling frequency must be positive, got 0", "data/100.hea")
    assert str(err) == "data/100.hea: sampling frequency must be positive, got 0"
    assert (err.path, err.problem) == ("data/100.hea", "sampling frequency must be positive, got 0")
    assert str(EcgError("no beats")) == "no beats" and EcgError("x").path is None


def test_write_text_atomic_creates_folders_and_replaces(tmp_path):
    path = tmp_path / "a" / "b" / "out.txt"
    write_text_atomic(path, "one")
    write_text_atomic(path, "two")
    assert path.read_text() == "two"
    assert tmp_files(tmp_path) == []


def test_atomic_files_get_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "out.txt", "x")
    finally:
        os.umask(umask)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("exc", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failure_midway_keeps_the_old_file_and_leaves_no_temp(tmp_path, exc):
    path = tmp_path / "report.md"
    path.write_text("old and complete")
    with pytest.raises(type(exc)), atomic_open(path) as f:
        f.write("new but half")
        f.flush()
        raise exc
    assert path.read_text() == "old and complete"
    assert tmp_files(tmp_path) == []


def test_failure_midway_creates_no_file(tmp_path):
    with pytest.raises(ValueError), atomic_path(tmp_path / "new.pth") as tmp:
        tmp.write_bytes(b"partial")
        raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []


KILLED_WRITER = """
import importlib.util, os, signal, sys
spec = importlib.util.spec_from_file_location("ecg_io", sys.argv[1])
io = importlib.util.module_from_spec(spec)
spec.loader.exec_module(io)
with io.atomic_open(sys.argv[2]) as f:
    f.write("new but half")
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_killed_writer_keeps_the_old_file_and_its_temp_is_cleaned_later(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("old and complete")
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(ROOT / "ecg_utils/_io.py"), str(path)],
    )
    assert proc.wait() == -signal.SIGKILL
    assert path.read_text() == "old and complete"
    (stale,) = tmp_files(tmp_path)  # a kill leaves its temp behind...
    assert stale.name.startswith(f".results.json.{proc.pid}.")
    write_text_atomic(path, "new")  # ...and the next write of that file removes it
    assert path.read_text() == "new"
    assert tmp_files(tmp_path) == []


def test_temps_of_live_writers_are_left_alone(tmp_path):
    path = tmp_path / "out.txt"
    live = tmp_path / f".out.txt.{os.getppid()}.abc.tmp"  # our parent is alive
    live.write_text("busy")
    write_text_atomic(path, "x")
    assert live.exists()


def test_environment_info_for_reproducibility():
    env = environment_info()
    assert env["python"].count(".") == 2
    assert {"numpy", "scipy", "torch", "wfdb", "scikit-learn", "ecg-classification"} <= set(
        env["packages"]
    )
    assert env["packages"]["ecg-classification"]
    if (ROOT / ".git").exists():
        assert len(env["git_commit"]) == 40
        assert isinstance(env["git_dirty"], bool)


@pytest.mark.parametrize("fs", [0, -1, 49.9, 20_001, float("nan"), float("inf"), "abc", None])
def test_one_rule_for_sampling_rates(fs):
    from ecg_utils._io import check_fs

    with pytest.raises(EcgError, match="sampling rate must be"):
        check_fs(fs, "x.hea")


@pytest.mark.parametrize(("fs", "value"), [(360, 360.0), ("250/2", 250.0), (50, 50.0)])
def test_sampling_rates_inside_the_rule_pass(fs, value):
    from ecg_utils._io import check_fs

    assert check_fs(fs) == value
