"""Tests for ecg_utils.archive and ``predict`` over folders of recordings.

Small synthetic WFDB records (conftest ``write_record``, 20 s each) and one NumPy file
of samples are classified with a tiny untrained ResNet1D (RR features), so every test
runs in seconds. Checked: discovery, the Parquet dataset and the CSVs against
``classify_record``, resume (skipped recordings keep their files; a changed input is
redone), an interrupted run (no temporary or half-written file, redone next time), a
bad recording among good ones (listed in failures.csv, exit status 1), and that the
process pool and a Dask LocalCluster on 127.0.0.1 write byte-identical files. A slow
test runs the same on real MIT-BIH records.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from cli_helpers import run_main
from conftest import tmp_files, write_record

from ecg_utils import archive
from ecg_utils._io import EcgError
from ecg_utils.archive import (
    ArchiveOptions,
    find_recordings,
    process_recording,
    read_beats,
    run_archive,
    weights_checksum,
)
from ecg_utils.beats import FEATURE_SETS
from ecg_utils.checkpoint import save_model
from ecg_utils.holter import SUMMARY_FIELDS
from ecg_utils.models import ResNet1D
from ecg_utils.predict import classify_record, read_input

pytest.importorskip("pyarrow", reason="Parquet output needs pyarrow (requirements.txt)")

DASK_REASON = "Dask is an optional extra: pip install '.[cluster]'"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny untrained ResNet1D with RR features (fast, deterministic)."""
    path = tmp_path_factory.mktemp("model") / "tiny.pth"
    args = {"width": 4, "n_features": len(FEATURE_SETS["rr"])}
    torch.manual_seed(0)
    meta = {"architecture": "resnet1d", "model_args": args, "feature_set": "rr"}
    save_model(ResNet1D(**args), path, meta)
    return path


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """Three 20 s WFDB records and a 20 s NumPy file of samples at 360 Hz (read-only)."""
    folder = tmp_path_factory.mktemp("archive_in")
    for i, name in enumerate(("rec_a", "rec_b", "rec_c")):
        write_record(folder, name, seconds=20.0, rr_s=0.7 + 0.05 * i, seed=i)
    x = write_record(folder / "npy_src", "tmp", seconds=20.0, rr_s=0.9, seed=7).signal[:, 0]
    shutil.rmtree(folder / "npy_src")
    np.save(folder / "samples.npy", x)
    return folder


@pytest.fixture
def inputs(tmp_path, source) -> Path:
    """A fresh copy of ``source`` that a test may modify."""
    return Path(shutil.copytree(source, tmp_path / "in"))


def options(weights: Path, **kwargs) -> ArchiveOptions:
    return ArchiveOptions(str(weights), weights_checksum(weights), fs=360.0, **kwargs)


def files_of(folder: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file under ``folder``."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


# --------------------------------------------------------------------------- discovery


def test_find_recordings(source, tmp_path):
    names = [r.name for r in find_recordings([source])]
    assert names == ["rec_a", "rec_b", "rec_c", "samples"]
    by_glob = find_recordings([str(source / "rec_*.hea")])
    assert [r.name for r in by_glob] == ["rec_a", "rec_b", "rec_c"]
    by_dat = find_recordings([source / "rec_a.dat", source / "rec_b"])
    assert [Path(r.path).name for r in by_dat] == ["rec_a.hea", "rec_b.hea"]
    nested = tmp_path / "nested"
    for patient in ("p1", "p2"):
        shutil.copytree(source, nested / patient)
    assert "p2_rec_b" in [r.name for r in find_recordings([nested])]
    assert find_recordings([nested], exclude=nested / "p1")[0].name == "p2_rec_a"
    with pytest.raises(EcgError, match="two recordings named rec_a"):
        find_recordings([nested / "p1" / "rec_a.hea", nested / "p2" / "rec_a.hea"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(EcgError, match="holds no recording"):
        find_recordings([tmp_path / "empty"])
    with pytest.raises(EcgError, match="matches no file"):
        find_recordings([str(tmp_path / "*.hea")])
    (tmp_path / "notes.txt").write_text("not a recording")
    with pytest.raises(EcgError, match="matches no recording"):
        find_recordings([str(tmp_path / "*.txt")])


def test_recording_names_that_look_like_numbers_stay_text(source, tmp_path, tiny_model):
    folder = tmp_path / "numbered"
    folder.mkdir()
    shutil.copyfile(source / "samples.npy", folder / "0100.npy")
    out = tmp_path / "out"
    run_archive(find_recordings([folder]), out, options(tiny_model), workers=1)
    assert set(read_beats(out)["recording"]) == {"0100"}


# --------------------------------------------------------------------------- outputs


def test_folder_run_writes_the_dataset_and_the_summary(inputs, tmp_path, tiny_model):
    out = tmp_path / "out"
    result = run_archive(find_recordings([inputs]), out, options(tiny_model, csv=True), workers=1)
    assert (result.count("done"), result.count("failed")) == (4, 0)
    beats = read_beats(out)
    for name in ("rec_a", "samples"):
        path = inputs / (f"{name}.hea" if name.startswith("rec") else f"{name}.npy")
        _, x, fs, _ = read_input(path, 360.0, None)
        want = classify_record(x, fs, weights=tiny_model)
        got = beats[beats["recording"] == name].drop(columns="recording").reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
        csv = pd.read_csv(out / "csv" / f"{name}.csv")
        assert csv["sample"].tolist() == want["sample"].tolist()
        holter = json.loads((out / "holter" / f"{name}.json").read_text())
        assert holter["summary"]["beats"] + 0 == len(want)
    summary = pd.read_csv(out / "summary.csv")
    assert summary["recording"].tolist() == ["rec_a", "rec_b", "rec_c", "samples"]
    assert set(SUMMARY_FIELDS) <= set(summary.columns)
    assert (summary["duration_s"] == 20.0).all()
    assert pd.read_csv(out / "failures.csv").empty
    assert tmp_files(out) == []


def test_cli_folder_run_matches_single_file_predict(inputs, tmp_path, tiny_model, capsys):
    out = tmp_path / "out"
    rc, stdout, err = run_main(
        capsys, "predict", inputs, "--out", out, "--fs", "360", "--csv", "--workers", "1",
        "--weights", tiny_model,
    )  # fmt: skip
    assert rc == 0, err
    assert "4 recordings: 4 classified, 0 skipped" in stdout
    rc, _, err = run_main(
        capsys,
        "predict",
        inputs / "rec_b.hea",
        "--out",
        tmp_path / "b.csv",
        "--weights",
        tiny_model,
    )
    assert rc == 0, err
    assert (out / "csv" / "rec_b.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--workers", "2"], ["--workers", "folders"]),  # a single file with archive options
        (["DIR"], ["--out FOLDER"]),
        (["DIR", "--out", "x.csv"], ["must be a folder"]),
        (["DIR", "--out", "OUT", "--plot", "p.png"], ["--plot"]),
    ],
)
def test_cli_archive_usage_errors(inputs, tmp_path, tiny_model, capsys, argv, words):
    argv = [str(inputs) if a == "DIR" else str(tmp_path / "o") if a == "OUT" else a for a in argv]
    first = [] if argv and argv[0] == str(inputs) else [str(inputs / "rec_a.hea")]
    rc, _, err = run_main(capsys, "predict", *first, *argv, "--weights", tiny_model)
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err


# --------------------------------------------------------------------------- resume


def test_resume_skips_up_to_date_recordings_and_redoes_changed_ones(inputs, tmp_path, tiny_model):
    out = tmp_path / "out"
    opts = options(tiny_model)
    recordings = find_recordings([inputs])
    first = run_archive(recordings, out, opts, workers=1)
    assert first.count("done") == 4
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}
    again = run_archive(recordings, out, opts, workers=1)
    assert (again.count("skipped"), again.count("done")) == (4, 0)
    assert again.n_beats == first.n_beats
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")} == stamps
    assert pd.read_csv(out / "summary.csv").shape[0] == 4
    write_record(inputs, "rec_b", seconds=20.0, rr_s=0.5, seed=9)  # new signal, same name
    changed = run_archive(recordings, out, opts, workers=1)
    assert {r["name"]: r["status"] for r in changed.results} == {
        "rec_a": "skipped",
        "rec_b": "done",
        "rec_c": "skipped",
        "samples": "skipped",
    }
    other = run_archive(recordings, out, options(tiny_model, adaptation=False), workers=1)
    assert other.count("done") == 4  # other options: every recording is redone


def test_an_interrupted_run_leaves_no_partial_file(inputs, tmp_path, tiny_model, monkeypatch):
    out = tmp_path / "out"
    opts = options(tiny_model)
    recordings = find_recordings([inputs / "rec_a.hea"])
    real = archive.atomic_path

    @contextlib.contextmanager
    def interrupted(path):
        with real(path) as tmp:
            yield tmp
            if Path(path).parent.name == "holter":  # the second file, once written
                assert Path(tmp).stat().st_size > 0
                raise KeyboardInterrupt

    monkeypatch.setattr(archive, "atomic_path", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_archive(recordings, out, opts, workers=1)
    assert tmp_files(out) == []
    assert not (out / "holter" / "rec_a.json").exists()
    assert not (out / "manifests" / "rec_a.json").exists()  # written last: never
    monkeypatch.setattr(archive, "atomic_path", real)
    again = run_archive(recordings, out, opts, workers=1)
    assert again.count("done") == 1  # not taken for complete


# --------------------------------------------------------------------------- failures


def test_a_bad_recording_does_not_stop_the_others(inputs, tmp_path, tiny_model, capsys):
    out = tmp_path / "out"
    dat = inputs / "rec_b.dat"
    dat.write_bytes(dat.read_bytes()[:100])  # truncated signal file
    np.save(inputs / "strings.npy", np.array(["a", "b"]))
    rc, stdout, err = run_main(
        capsys, "predict", inputs, "--out", out, "--fs", "360", "--workers", "1",
        "--weights", tiny_model,
    )  # fmt: skip
    assert rc == 1, err
    assert "3 classified, 0 skipped (up to date), 2 failed" in stdout
    failures = pd.read_csv(out / "failures.csv")
    assert failures["recording"].tolist() == ["rec_b", "strings"]
    assert "rec_b.dat: signal file is truncated" in failures["reason"][0]
    assert "strings.npy" in failures["reason"][1] and "numeric" in failures["reason"][1]
    assert "failed: " in err and "rec_b.dat" in err
    assert sorted(pd.read_csv(out / "summary.csv")["recording"]) == ["rec_a", "rec_c", "samples"]
    assert not (out / "beats" / "recording=rec_b").exists()


def test_an_unexpected_reader_error_fails_only_its_recording(
    inputs, tmp_path, tiny_model, monkeypatch
):
    from ecg_utils import predict

    real = predict.read_input

    def flaky(path, *args, **kwargs):
        if Path(path).stem == "rec_b":
            raise IndexError("list index out of range")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(predict, "read_input", flaky)
    result = run_archive(find_recordings([inputs]), tmp_path / "out", options(tiny_model), 1)
    assert (result.count("done"), result.count("failed")) == (3, 1)
    assert "rec_b.hea: IndexError: list index out of range" in result.failed[0]["error"]


def test_a_recording_that_fails_later_loses_its_old_outputs(inputs, tmp_path, tiny_model):
    out = tmp_path / "out"
    rec = find_recordings([inputs / "rec_a.hea"])[0]
    assert process_recording(rec, options(tiny_model), str(out))["status"] == "done"
    (inputs / "rec_a.dat").write_bytes(b"")
    res = process_recording(rec, options(tiny_model), str(out))
    assert res["status"] == "failed" and "rec_a.dat: signal file is empty" in res["error"]
    assert not (out / "manifests" / "rec_a.json").exists()
    assert not (out / "beats" / "recording=rec_a" / "part-0.parquet").exists()


# --------------------------------------------------------------------------- schedulers


def test_the_process_pool_writes_what_one_process_writes(source, tmp_path, tiny_model):
    opts = options(tiny_model, csv=True)
    recordings = find_recordings([source / "rec_a.hea", source / "rec_c.hea"])
    run_archive(recordings, tmp_path / "inline", opts, workers=1)
    pool = run_archive(recordings, tmp_path / "pool", opts, workers=2)
    assert pool.count("done") == 2
    assert len({r["pid"] for r in pool.results}) >= 1
    assert files_of(tmp_path / "pool") == files_of(tmp_path / "inline")


def test_a_dask_cluster_writes_the_same_bytes(source, tmp_path, tiny_model):
    pytest.importorskip("dask.distributed", reason=DASK_REASON)
    from dask.distributed import LocalCluster

    opts = options(tiny_model, csv=True)
    recordings = find_recordings([source / "rec_a.hea", source / "samples.npy"])
    run_archive(recordings, tmp_path / "local", opts, workers=1)
    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        host="127.0.0.1",
        protocol="tcp",
        dashboard_address=None,
    ) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        result = run_archive(
            recordings, tmp_path / "dask", opts, scheduler=cluster.scheduler_address
        )
    assert result.count("done") == 2
    assert files_of(tmp_path / "dask") == files_of(tmp_path / "local")


def test_an_unreachable_scheduler_is_one_clear_error(source, tmp_path, tiny_model):
    pytest.importorskip("dask.distributed", reason=DASK_REASON)
    recordings = find_recordings([source / "rec_a.hea"])
    with pytest.raises(EcgError, match="cannot reach the Dask scheduler"):
        archive._run_dask(
            recordings, str(tmp_path), options(tiny_model), 1, "tcp://127.0.0.1:1", None
        )


# --------------------------------------------------------------------------- real records


@pytest.mark.slow
def test_real_records_with_the_pool_and_a_local_cluster(mitdb_dir, tmp_path, capsys):
    """Records 100, 119 (ventricular bigeminy) and 208 with the shipped model."""
    pytest.importorskip("dask.distributed", reason=DASK_REASON)
    records = [mitdb_dir / f"{r}.hea" for r in ("100", "119", "208")]
    pool, dask = tmp_path / "pool", tmp_path / "dask"
    rc, stdout, err = run_main(capsys, "predict", *records, "--out", pool, "--workers", "2")
    assert rc == 0, err
    rc, _, err = run_main(
        capsys, "predict", *records, "--out", dask, "--scheduler", "local", "--workers", "2"
    )
    assert rc == 0, err
    assert files_of(pool) == files_of(dask)
    summary = pd.read_csv(pool / "summary.csv", dtype={"recording": str}).set_index("recording")
    assert summary.loc["119", "V_bigeminy"] > 0
    assert summary.loc["208", "V_couplets"] > 0
    assert 60 < summary.loc["100", "hr_mean_bpm"] < 90
    rc, stdout, _ = run_main(capsys, "predict", *records, "--out", pool, "--workers", "2")
    assert rc == 0 and "3 skipped" in stdout


# --------------------------------------------------------------------------- report


def test_report_section_is_empty_until_measured():
    from ecg_utils.report.archive import readme_archive_line, section_archive_speed

    assert section_archive_speed({}) is None
    bench = {
        "workers": 2,
        "goals": {"mitdb_wall_s": 30.0, "long_wall_s": 300.0, "long_peak_rss_mb": 1536.0},
        "mitdb": {"n_recordings": 48, "wall_s": 25.0, "recordings_per_min": 115.2,
                  "beats_per_s": 4400.0},
        "long": {"n_recordings": 20, "hours": 24, "n_beats": 2_000_000, "wall_s": 280.0,
                 "peak_rss_mb_max": 900.0, "beats_per_s": 7000.0},
        "cluster": {"wall_s": 27.0, "identical": True},
    }  # fmt: skip
    text = section_archive_speed({"bench_archive": bench})
    assert "| 48 MIT-BIH records, wall | 25.0 s | ≤ 30 s |" in text
    assert "| 20 records of 24 h (2,000,000 beats), wall | 280.0 s | ≤ 300 s |" in text
    assert "byte-identical to the process pool's | yes |" in text
    line = "".join(readme_archive_line({"bench_archive": bench}))
    assert "48 MIT-BIH records in 25.0 s (goal ≤ 30 s)" in line
    assert "20 records of 24 h in 280 s and 0.88 GB per worker" in line
    assert readme_archive_line({}) == []
