"""Speed and memory of ``predict`` over whole archives (``ecg_utils.archive``).

Three measurements, each printed next to its goal:

a. The MIT-BIH records (default all 48) through the folder run with a process pool of
   ``--workers`` (default 2): wall time of a fresh Python process (interpreter start-up,
   imports, the run, ``summary.csv``), recordings per minute and beats per second.
b. A synthetic archive of ``--n-long`` (default 20) records of ``--hours`` (default 24)
   hours, two leads at 360 Hz, each made by tiling a different MIT-BIH record (format
   212, written once to ``$ECG_CACHE_DIR/bench_archive/`` and reused; never in the
   repository): wall time, recordings per minute, beats per second and the peak
   resident memory of each worker process (``resource.getrusage(RUSAGE_SELF)``'s
   ``ru_maxrss`` read by the worker after each recording; the largest per worker).
c. The records of (a) on a Dask ``LocalCluster`` (``--workers`` processes, one thread
   each, on 127.0.0.1): wall time and whether every output file (Parquet, CSV, Holter
   JSON, manifests, ``summary.csv``) is byte-identical to the process pool's.

Each run happens in a child Python (``--child``) so its wall time includes start-up.
Other processes may share the CPU, so the load average is recorded with the figures.
Writes ``results/bench_archive.json`` (through a temporary file).

Usage::

    python bench/archive.py [--mitdb-dir DIR] [--workers 2] [--records 48]
                            [--n-long 20] [--hours 24] [--skip-long] [--skip-cluster]
    python bench/archive.py --records 3 --n-long 2 --hours 0.5 --out /tmp/b.json  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
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

GOALS = {
    "mitdb_wall_s": 30.0,
    "long_wall_s": 300.0,
    "long_peak_rss_mb": 1536.0,
}
"""Goal for each figure (upper bounds): seconds, or MB of resident memory per worker."""


def default_mitdb_dir() -> Path:
    """``$ECG_MITDB_DIR`` or ``../shared/data/mitdb`` relative to the repository root."""
    env = os.environ.get("ECG_MITDB_DIR")
    return Path(env) if env else (ROOT.parent / "shared" / "data" / "mitdb")


def default_cache_dir() -> Path:
    from ecg_utils.sources import default_cache_dir as cache

    return Path(cache())


def record_names(mitdb: Path) -> list[str]:
    """Record names of the folder (its RECORDS file, else its headers), sorted."""
    listing = mitdb / "RECORDS"
    if listing.is_file():
        return sorted(ln.strip() for ln in listing.read_text().splitlines() if ln.strip())
    return sorted(p.stem for p in mitdb.glob("*.hea"))


# --------------------------------------------------------------------------- child


def child(spec_path: str) -> int:
    """Run one archive as the spec says and print its results as JSON (``--child``)."""
    from ecg_utils.archive import ArchiveOptions, find_recordings, run_archive, weights_checksum

    spec = json.loads(Path(spec_path).read_text())
    weights = Path(spec["weights"])
    opts = ArchiveOptions(str(weights), weights_checksum(weights), csv=spec["csv"])
    recordings = find_recordings(spec["inputs"])
    result = run_archive(
        recordings, spec["out"], opts, workers=spec["workers"], scheduler=spec["scheduler"]
    )
    print(json.dumps({"wall_s": result.wall_s, "results": result.results}))
    return 0


def run_child(inputs: list[str], out: Path, workers: int, scheduler: str | None, tmp: Path):
    """Run :func:`child` in a fresh Python; return (wall seconds, its results)."""
    spec = {
        "inputs": inputs,
        "out": str(out),
        "workers": workers,
        "scheduler": scheduler,
        "csv": True,
        "weights": str(DEFAULT_WEIGHTS),
    }
    spec_path = tmp / f"spec.{out.name}.json"
    spec_path.write_text(json.dumps(spec))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", str(spec_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"archive run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, json.loads(proc.stdout.strip().splitlines()[-1])


def figures_of(wall: float, child_out: dict) -> dict:
    """Throughput and per-worker memory of one run."""
    results = child_out["results"]
    beats = sum(r["n_beats"] or 0 for r in results if r["status"] != "failed")
    per_worker: dict[str, float] = {}
    for r in results:
        if r.get("pid") is not None:
            key = str(r["pid"])
            per_worker[key] = max(per_worker.get(key, 0.0), r["peak_rss_mb"])
    n = len(results)
    return {
        "n_recordings": n,
        "n_failed": sum(r["status"] == "failed" for r in results),
        "n_beats": beats,
        "wall_s": wall,
        "run_s": child_out["wall_s"],
        "recordings_per_min": 60.0 * n / wall if wall else None,
        "beats_per_s": beats / wall if wall else None,
        "peak_rss_mb_per_worker": per_worker,
        "peak_rss_mb_max": max(per_worker.values(), default=None),
        "failures": [r["error"] for r in results if r["status"] == "failed"],
    }


# --------------------------------------------------------------------------- long records


def write_long(source: Path, hours: float, folder: Path, name: str) -> Path:
    """Write ``name``: ``hours`` of ``source`` repeated (all leads, format 212, 360 Hz)."""
    import wfdb

    rec = wfdb.rdrecord(str(source), physical=False, return_res=16)
    n = int(round(hours * 3600 * rec.fs))
    reps = -(-n // rec.sig_len)
    digital = np.tile(rec.d_signal.astype(np.int16), (reps, 1))[:n]
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(
        name,
        fs=rec.fs,
        units=rec.units,
        sig_name=rec.sig_name,
        d_signal=digital,
        fmt=["212"] * rec.n_sig,
        adc_gain=rec.adc_gain,
        baseline=rec.baseline,
        write_dir=str(folder),
    )
    return folder / f"{name}.hea"


def long_archive(mitdb: Path, n_long: int, hours: float, cache: Path) -> tuple[Path, float]:
    """The synthetic archive's folder (written when missing) and the seconds it took."""
    folder = cache / "bench_archive" / f"long_{n_long}x{hours:g}h"
    done = folder / "COMPLETE"
    if done.is_file():
        return folder, 0.0
    t0 = time.perf_counter()
    names = record_names(mitdb)
    for i in range(n_long):
        src = names[i % len(names)]
        write_long(mitdb / src, hours, folder, f"long{i:02d}_{src}")
    done.write_text("\n")
    return folder, time.perf_counter() - t0


def same_files(a: Path, b: Path) -> tuple[bool, list[str]]:
    """Whether two output folders hold the same files with the same bytes (and which differ)."""

    def listing(folder: Path) -> dict[str, Path]:
        return {str(p.relative_to(folder)): p for p in folder.rglob("*") if p.is_file()}

    fa, fb = listing(a), listing(b)
    differ = sorted(set(fa) ^ set(fb))
    differ += sorted(k for k in set(fa) & set(fb) if fa[k].read_bytes() != fb[k].read_bytes())
    return not differ, differ


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mitdb-dir", type=Path, default=None, help="MIT-BIH folder")
    p.add_argument("--workers", type=int, default=2, help="processes (pool and LocalCluster)")
    p.add_argument("--records", type=int, default=48, help="MIT-BIH records for (a) and (c)")
    p.add_argument("--n-long", type=int, default=20, help="long records for (b)")
    p.add_argument("--hours", type=float, default=24.0, help="length of each long record")
    p.add_argument("--skip-long", action="store_true", help="leave out (b)")
    p.add_argument("--skip-cluster", action="store_true", help="leave out (c)")
    p.add_argument("--cache-dir", type=Path, default=None, help="where (b)'s records are kept")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "bench_archive.json")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def figure_rows(report: dict) -> list[tuple[str, float, float | None, str]]:
    """(label, value, goal, unit) rows of the summary table."""
    rows = []
    a = report.get("mitdb")
    if a:
        rows.append((f"{a['n_recordings']} MIT-BIH records, wall", a["wall_s"], None, "s"))
        if a["n_recordings"] == 48:
            rows[-1] = (rows[-1][0], a["wall_s"], GOALS["mitdb_wall_s"], "s")
        rows.append(("  recordings per minute", a["recordings_per_min"], None, "/min"))
        rows.append(("  beats per second", a["beats_per_s"], None, "/s"))
    b = report.get("long")
    if b:
        full = b["n_recordings"] == 20 and b["hours"] >= 24
        label = f"{b['n_recordings']} x {b['hours']:g} h records"
        rows.append((f"{label}, wall", b["wall_s"], GOALS["long_wall_s"] if full else None, "s"))
        goal = GOALS["long_peak_rss_mb"] if full else None
        rows.append(("  peak RSS per worker (max)", b["peak_rss_mb_max"], goal, "MB"))
        rows.append(("  beats per second", b["beats_per_s"], None, "/s"))
    c = report.get("cluster")
    if c:
        rows.append(("LocalCluster, same records, wall", c["wall_s"], None, "s"))
    return rows


def print_table(report: dict) -> None:
    print(f"\n{'figure':<40}{'value':>12}{'goal':>10}  ok")
    for label, value, goal, unit in figure_rows(report):
        ok = "" if goal is None else ("yes" if value <= goal else "NO")
        goal_text = "" if goal is None else f"<= {goal:g}"
        print(f"{label:<40}{value:>10.1f} {unit:<4}{goal_text:>8}  {ok}")
    c = report.get("cluster")
    if c:
        print(f"LocalCluster tables byte-identical to the pool's: {c['identical']}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child(args.child)
    mitdb = (args.mitdb_dir or default_mitdb_dir()).resolve()
    names = record_names(mitdb)[: args.records]
    if not names or not DEFAULT_WEIGHTS.is_file():
        print(f"error: no records in {mitdb} or no weights at {DEFAULT_WEIGHTS}")
        return 2
    inputs = [str(mitdb / f"{n}.hea") for n in names]
    tmp = Path(tempfile.mkdtemp(prefix="bench_archive."))
    report: dict = {
        "mitdb_dir": str(mitdb),
        "weights": str(DEFAULT_WEIGHTS),
        "workers": args.workers,
        "load_before": os.getloadavg(),
    }
    try:
        print(f"(a) {len(names)} MIT-BIH records, process pool of {args.workers}")
        wall, out = run_child(inputs, tmp / "pool", args.workers, None, tmp)
        report["mitdb"] = figures_of(wall, out)
        print(f"  {wall:.1f} s, {report['mitdb']['n_beats']} beats")
        if not args.skip_long:
            cache = (args.cache_dir or default_cache_dir()).resolve()
            print(f"(b) {args.n_long} records of {args.hours:g} h (kept in {cache})")
            folder, made_s = long_archive(mitdb, args.n_long, args.hours, cache)
            wall, out = run_child([str(folder)], tmp / "long", args.workers, None, tmp)
            report["long"] = {
                **figures_of(wall, out),
                "hours": args.hours,
                "write_records_s": made_s,
                "memory_measured_as": "ru_maxrss of each worker process (RUSAGE_SELF), max "
                "over the recordings it ran",
            }
            print(f"  {wall:.1f} s, peak {report['long']['peak_rss_mb_max']:.0f} MB per worker")
        if not args.skip_cluster:
            print(f"(c) the same {len(names)} records on a LocalCluster of {args.workers}")
            wall, out = run_child(inputs, tmp / "cluster", args.workers, "local", tmp)
            identical, differ = same_files(tmp / "pool", tmp / "cluster")
            report["cluster"] = {**figures_of(wall, out), "identical": identical}
            report["cluster"]["differing_files"] = differ[:20]
            print(f"  {wall:.1f} s, byte-identical to the pool: {identical}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report["load_after"] = os.getloadavg()
    report["goals"] = GOALS
    report["met"] = {
        label.strip(): value <= goal for label, value, goal, _ in figure_rows(report) if goal
    }
    report["environment"] = {**environment_info(), "cpu_count": os.cpu_count()}
    report["environment"]["cpu"] = platform.processor() or platform.machine()
    print_table(report)
    write_text_atomic(args.out, json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
