"""Speed and memory of ``python -m ecg_utils predict`` and of building the beat dataset.

Three measurements, each printed next to its goal:

a. ``predict`` on one MIT-BIH record (default 100, 30 min at 360 Hz) with ``--out``:
   wall time of the command in a subprocess (median of ``--repeats``, interpreter
   start-up and imports included), with torch's default thread count and with
   ``OMP_NUM_THREADS=1`` (when other jobs keep the cores busy, several threads make
   the classification many times slower); and the in-process steps (one thread):
   load the model, read the record, detect R peaks, judge the signal quality, compute
   the model's inputs, classify, write.
b. ``predict`` on a 24-hour two-lead 360 Hz recording, made by tiling a real record
   and written with ``wfdb.wrsamp`` (format 212) to a temporary folder: wall time and
   peak resident memory of the subprocess (``RUSAGE_CHILDREN``'s ``ru_maxrss``, KB on
   Linux, read in a parent process of its own); ``--threads`` sets its thread count.
c. ``build_beats`` over all records of the MIT-BIH folder: cold (fresh cache folder)
   and cached (the second call reads the cache).

Other processes may share the CPU, so the load average is recorded with the figures.
Writes ``results/bench_predict.json`` (through a temporary file).

Usage::

    python bench/predict.py [--weights W] [--mitdb-dir DIR] [--record 100] [--hours 24]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecg_utils import DEFAULT_WEIGHTS  # noqa: E402
from ecg_utils._io import environment_info, write_text_atomic  # noqa: E402

SEED_WEIGHTS = ROOT.parent / "shared" / "seed" / "ecg_cnn.pth"
GOALS = {
    "record_wall_s": 3.0,
    "holter_wall_s": 60.0,
    "holter_peak_rss_mb": 2048.0,
    "build_cold_s": 10.0,
    "build_cached_s": 1.0,
}
"""Goal for each figure (upper bounds): seconds, or MB of resident memory."""


def default_weights() -> Path:
    """``ecg_utils.DEFAULT_WEIGHTS`` when it exists, else the seed's ``ecg_cnn.pth``."""
    return DEFAULT_WEIGHTS if DEFAULT_WEIGHTS.is_file() else SEED_WEIGHTS


def default_mitdb_dir() -> Path:
    """``$ECG_MITDB_DIR`` or ``../shared/data/mitdb`` relative to the repository root."""
    env = os.environ.get("ECG_MITDB_DIR")
    return Path(env) if env else (ROOT.parent / "shared" / "data" / "mitdb")


def run_predict(record: Path, weights: Path, out_csv: Path, threads: int | None = None) -> float:
    """Run the ``predict`` command in a subprocess; return its wall time in seconds.

    ``threads`` sets ``OMP_NUM_THREADS`` for the subprocess (None: torch's default).
    """
    cmd = [sys.executable, "-m", "ecg_utils", "predict", str(record)]
    cmd += ["--out", str(out_csv), "--weights", str(weights), "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=child_env(threads))
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"predict failed ({proc.returncode}): {proc.stderr.strip()}")
    print(f"  {seconds:.2f} s ({threads or 'default'} threads): {proc.stdout.splitlines()[0]}")
    return seconds


def child_env(threads: int | None) -> dict[str, str]:
    """This process's environment, with ``OMP_NUM_THREADS`` set when ``threads`` is."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def time_steps(record: Path, weights: Path, out_csv: Path) -> dict[str, float]:
    """Seconds of each step of ``predict`` on a WFDB record, run in this process.

    The steps of :func:`ecg_utils.predict.classify_with_quality`: detect, judge the signal
    quality (and gate the detections), compute the model's inputs, classify (with the
    adaptation the weights name), write.
    """
    from ecg_utils.checkpoint import load_model
    from ecg_utils.detect import detect_r_peaks
    from ecg_utils.predict import (
        beats_table,
        read_input,
        recording_inputs,
        recording_proba,
        wants_two_leads,
        with_other_lead,
        write_table,
    )
    from ecg_utils.quality import assess_quality, gate_peaks

    times, t0 = {}, time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t0
        now = time.perf_counter()
        times[name] = now - t0
        t0 = now

    loaded = load_model(weights)
    lap("load_model")
    _, x, fs, extra = read_input(record, None, None, wants_two_leads(loaded))
    signal = with_other_lead(x, extra)
    lap("read")
    peaks = detect_r_peaks(x, fs)
    lap("detect")
    quality = assess_quality(x, fs, peaks)
    peaks = gate_peaks(peaks, quality)
    lap("quality")
    peaks, beats, feats = recording_inputs(signal, fs, peaks, 0, loaded.feature_set)
    lap("inputs")
    proba = recording_proba(loaded, loaded.model, beats, feats, peaks, fs)
    lap("classify")
    write_table(beats_table(peaks, fs, proba), out_csv)
    lap("write")
    times["total"] = sum(times.values())
    times["n_beats"] = len(peaks)
    return times


def write_holter(source: Path, hours: float, folder: Path) -> Path:
    """Write a ``hours``-long record made by repeating ``source`` (all leads, format 212).

    Returns
    -------
    Path
        The new record's path without extension.
    """
    import wfdb

    rec = wfdb.rdrecord(str(source), physical=False, return_res=16)
    n = int(round(hours * 3600 * rec.fs))
    reps = -(-n // rec.sig_len)
    digital = np.tile(rec.d_signal.astype(np.int16), (reps, 1))[:n]
    wfdb.wrsamp(
        "holter",
        fs=rec.fs,
        units=rec.units,
        sig_name=rec.sig_name,
        d_signal=digital,
        fmt=["212"] * rec.n_sig,
        adc_gain=rec.adc_gain,
        baseline=rec.baseline,
        write_dir=str(folder),
    )
    return folder / "holter"


def bench_record(record: Path, weights: Path, repeats: int, tmp: Path) -> dict:
    """(a) predict on one record: subprocess wall times and in-process steps.

    The command runs with torch's default thread count and with one thread, in
    alternation: on a machine whose cores are busy, several threads slow it down.
    """
    print(f"(a) predict {record.name} ({repeats} runs of each in subprocesses)")
    walls: dict[str, list[float]] = {"default": [], "1": []}
    for _ in range(repeats):
        for key in walls:
            threads = None if key == "default" else int(key)
            walls[key].append(run_predict(record, weights, tmp / "record.csv", threads))
    steps = time_steps(record, weights, tmp / "steps.csv")
    return {
        "wall_s": walls["default"],
        "wall_median_s": statistics.median(walls["default"]),
        "wall_1_thread_s": walls["1"],
        "wall_1_thread_median_s": statistics.median(walls["1"]),
        "steps_s": steps,
        "steps_threads": 1,
    }


def bench_holter(source: Path, hours: float, weights: Path, tmp: Path, threads: int | None) -> dict:
    """(b) predict on a long recording in a fresh subprocess: wall time and peak RSS."""
    print(f"(b) predict on a {hours:g}-hour recording (tiled {source.name})")
    t0 = time.perf_counter()
    record = write_holter(source, hours, tmp)
    made_s = time.perf_counter() - t0
    seconds, rss_kb = run_in_fresh_parent(record, weights, tmp / "holter.csv", threads)
    with open(tmp / "holter.csv") as handle:
        n_beats = sum(1 for _ in handle) - 1
    return {
        "hours": hours,
        "record_bytes": sum(p.stat().st_size for p in tmp.glob("holter.*") if p.suffix != ".csv"),
        "write_record_s": made_s,
        "wall_s": seconds,
        "peak_rss_mb": rss_kb / 1024,
        "n_beats": n_beats,
        "threads": threads or "default",
    }


def run_in_fresh_parent(
    record: Path, weights: Path, out_csv: Path, threads: int | None
) -> tuple[float, int]:
    """Run :func:`run_predict` under a new Python so ``RUSAGE_CHILDREN`` sees one child.

    ``ru_maxrss`` of ``RUSAGE_CHILDREN`` is the largest of all reaped children, so the
    predict process gets a parent of its own that starts nothing else.
    """
    code = (
        "import resource, subprocess, sys, time\n"
        "t0 = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "dt = time.perf_counter() - t0\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(p.returncode, dt, rss, p.stdout.splitlines()[:1], p.stderr.strip()[-300:])\n"
    )
    cmd = [sys.executable, "-c", code, sys.executable, "-m", "ecg_utils", "predict"]
    cmd += [str(record), "--out", str(out_csv), "--weights", str(weights), "--quiet"]
    env = child_env(threads)
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, check=True).stdout
    rc, seconds, rss, rest = out.split(" ", 3)
    if rc != "0":
        raise RuntimeError(f"predict failed ({rc}): {rest.strip()}")
    print(f"  {rest.strip()}")
    return float(seconds), int(rss)


def bench_build(mitdb: Path, tmp: Path) -> dict:
    """(c) ``build_beats`` over the whole folder: cold, then from the cache."""
    from ecg_utils.beats import build_beats

    print(f"(c) build_beats over {mitdb}")
    cache = tmp / "cache"
    t0 = time.perf_counter()
    beats = build_beats(mitdb, cache, progress=False)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = build_beats(mitdb, cache, progress=False)
    cached = time.perf_counter() - t0
    assert len(again) == len(beats)
    return {
        "n_records": len(beats.meta["records"]),
        "n_beats": len(beats),
        "cold_s": cold,
        "cached_s": cached,
    }


def figures(report: dict) -> list[tuple[str, float, float, str]]:
    """(label, value, goal, unit) rows of the summary table."""
    rec, hol, build = report["record"], report["holter"], report["build"]
    return [
        ("predict one record, wall", rec["wall_median_s"], GOALS["record_wall_s"], "s"),
        ("  same, 1 thread", rec["wall_1_thread_median_s"], GOALS["record_wall_s"], "s"),
        (
            f"predict {hol['hours']:g} h record, wall ({hol['threads']} thr.)",
            hol["wall_s"],
            GOALS["holter_wall_s"],
            "s",
        ),
        (
            f"predict {hol['hours']:g} h record, peak RSS",
            hol["peak_rss_mb"],
            GOALS["holter_peak_rss_mb"],
            "MB",
        ),
        ("build beats, cold", build["cold_s"], GOALS["build_cold_s"], "s"),
        ("build beats, cached", build["cached_s"], GOALS["build_cached_s"], "s"),
    ]


def print_table(report: dict) -> None:
    print(f"\n{'figure':<42}{'value':>10}{'goal':>10}  ok")
    for label, value, goal, unit in figures(report):
        ok = "yes" if value <= goal else "NO"
        print(f"{label:<42}{value:>8.2f} {unit:<2}{'<= ' + f'{goal:g}':>8}  {ok}")
    steps = report["record"]["steps_s"]
    print("\nin-process steps on one record (s): ", end="")
    print(", ".join(f"{k} {v:.3f}" for k, v in steps.items() if k != "n_beats"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, default=None, help="default: DEFAULT_WEIGHTS or seed")
    p.add_argument("--mitdb-dir", type=Path, default=None, help="MIT-BIH folder")
    p.add_argument("--record", default="100", help="record for (a) and (b)")
    p.add_argument("--hours", type=float, default=24.0, help="length of the (b) recording")
    p.add_argument("--repeats", type=int, default=3, help="subprocess runs for (a)")
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for (b)")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "bench_predict.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import torch

    torch.set_num_threads(1)  # the in-process steps; the subprocesses use torch's default
    args = parse_args(argv)
    weights = (args.weights or default_weights()).resolve()
    mitdb = (args.mitdb_dir or default_mitdb_dir()).resolve()
    if not weights.is_file() or not (mitdb / f"{args.record}.hea").is_file():
        print(f"error: weights {weights} or record {mitdb / args.record} not found")
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="bench_predict."))
    try:
        report = {
            "weights": str(weights),
            "mitdb_dir": str(mitdb),
            "load_before": os.getloadavg(),
            "record": bench_record(mitdb / f"{args.record}.hea", weights, args.repeats, tmp),
            "holter": bench_holter(mitdb / args.record, args.hours, weights, tmp, args.threads),
            "build": bench_build(mitdb, tmp),
            "load_after": os.getloadavg(),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report["goals"] = GOALS
    report["met"] = {label.strip(): value <= goal for label, value, goal, _ in figures(report)}
    report["environment"] = {**environment_info(), "cpu_count": os.cpu_count()}
    report["environment"]["cpu"] = platform.processor() or platform.machine()
    print_table(report)
    write_text_atomic(args.out, json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
