"""Measure the R-peak detectors of ``ecg_utils.detect`` on the MIT-BIH Arrhythmia Database.

Every detector in ``DETECTORS`` runs on all records (lead MLII, else the first
channel) and is scored against the reference beat annotations (symbols in
``AAMI_CLASSES``) with one-to-one matching, closest pairs first, within 150 ms:
sensitivity Se = TP / (TP + FN) and positive predictivity +P = TP / (TP + FP),
summed over all records. Scores are also given with the ventricular flutter
episodes (``[`` ... ``]``, whose flutter waves are annotated ``!``, not beats)
left out, as ANSI/AAMI EC57 does. Offsets (detection - reference) are reported
before and after :func:`ecg_utils.detect.refine_peaks`; timing covers detection
plus refinement (not file reading) on the current machine.

The chosen method is the most accurate (fewest FP + FN); methods within 0.05
percentage points of the best error rate count as equally accurate and the fastest
of those wins. The chosen method is then run at 128/250/500 Hz (records
resampled) and on a 24-hour recording (all records joined, read as a memory map
and processed in 10-minute chunks).

Usage::

    python bench/detection.py [--mitdb-dir DIR] [--methods pt_adaptive xqrs] [--out PATH]

The MIT-BIH folder is ``--mitdb-dir``, else ``$ECG_MITDB_DIR``, else
``../shared/data/mitdb`` relative to the repository root. Results go to
``results/detection.json`` (written through a temporary file).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import tracemalloc
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ecg_utils import detect  # noqa: E402
from ecg_utils._io import EcgError, write_text_atomic  # noqa: E402
from ecg_utils.beats import CLASS_NAMES, annotated_beats, pick_lead  # noqa: E402
from ecg_utils.records import read_annotations, read_signal  # noqa: E402

TOLERANCE_S = 0.15
TIE_PERCENT = 0.05
SWEEP_FS = (128.0, 250.0, 500.0)


def default_mitdb_dir() -> Path:
    """``$ECG_MITDB_DIR`` or ``../shared/data/mitdb`` relative to the repository root."""
    env = os.environ.get("ECG_MITDB_DIR")
    return Path(env) if env else (REPO / ".." / "shared" / "data" / "mitdb").resolve()


def record_names(mitdb_dir: Path) -> list[str]:
    """Names listed in ``RECORDS``, else every ``*.hea`` stem."""
    listing = mitdb_dir / "RECORDS"
    if listing.exists():
        return listing.read_text().split()
    return sorted(p.stem for p in mitdb_dir.glob("*.hea"))


def load_record(mitdb_dir: Path, name: str) -> dict:
    """One lead (MLII else first), reference beats and flutter intervals, in samples."""
    t0 = time.perf_counter()
    sig, fs, leads = read_signal(mitdb_dir / name)
    lead, _ = pick_lead(leads)
    samples, symbols = read_annotations(mitdb_dir / name)
    read_s = time.perf_counter() - t0
    ref, labels = annotated_beats(samples, symbols)
    symbols = np.asarray(symbols)
    starts, ends = samples[symbols == "["], samples[symbols == "]"]
    return {
        "name": name,
        "x": sig[:, lead],
        "fs": fs,
        "lead": leads[lead],
        "ref": ref,
        "ref_class": labels,
        "flutter": list(zip(starts.tolist(), ends.tolist(), strict=False)),
        "read_s": read_s,
    }


def outside(positions: np.ndarray, intervals: list[tuple[int, int]]) -> np.ndarray:
    """Mask of positions outside every closed interval (in samples)."""
    keep = np.ones(len(positions), dtype=bool)
    for a, b in intervals:
        keep &= (positions < a) | (positions > b)
    return keep


def score(ref: np.ndarray, test: np.ndarray, fs: float) -> dict:
    """TP/FP/FN and matched offsets (test - reference) in samples."""
    r_idx, t_idx = detect.match_pairs(ref, test, fs, TOLERANCE_S)
    return {
        "tp": len(r_idx),
        "fp": len(test) - len(r_idx),
        "fn": len(ref) - len(r_idx),
        "offsets": np.sort(test)[t_idx] - np.sort(ref)[r_idx],
        "ref_idx": r_idx,
        "unmatched": np.delete(np.sort(test), t_idx),
    }


def run_method(rec: dict, method: str) -> dict:
    """Detect, refine and score one record."""
    x, fs, ref = rec["x"], rec["fs"], rec["ref"]
    t0 = time.perf_counter()
    try:
        raw = detect.detect_r_peaks(x, fs, method=method, refine=False)
        peaks = detect.refine_peaks(x, fs, raw)
        error = None
    except EcgError as exc:
        raw = peaks = np.zeros(0, np.int64)
        error = str(exc)
    seconds = time.perf_counter() - t0
    s_raw, s_ref = score(ref, raw, fs), score(ref, peaks, fs)
    keep_r, keep_p = outside(ref, rec["flutter"]), outside(peaks, rec["flutter"])
    s_ex = score(ref[keep_r], peaks[keep_p], fs)
    return {
        "tp": s_ref["tp"],
        "fp": s_ref["fp"],
        "fn": s_ref["fn"],
        "fp_in_flutter": int((~outside(s_ref["unmatched"], rec["flutter"])).sum()),
        "tp_ex": s_ex["tp"],
        "fp_ex": s_ex["fp"],
        "fn_ex": s_ex["fn"],
        "off_raw_ms": s_raw["offsets"] * 1000.0 / fs,
        "off_ms": s_ref["offsets"] * 1000.0 / fs,
        "off_samples": s_ref["offsets"],
        "off_class": rec["ref_class"][s_ref["ref_idx"]],
        "seconds": seconds,
        "error": error,
    }


def pct(num: int, den: int) -> float:
    return 100.0 * num / den if den else float("nan")


def offset_stats(ms: np.ndarray, samples: np.ndarray | None = None, fs: float = 360.0) -> dict:
    """Median, quartiles, 5/95 % percentiles in ms; share within +-1 sample and +-8 ms."""
    if len(ms) == 0:
        return {}
    q = np.percentile(ms, [5, 25, 50, 75, 95])
    out = {
        "median_ms": float(q[2]),
        "iqr_ms": float(q[3] - q[1]),
        "p5_ms": float(q[0]),
        "p95_ms": float(q[4]),
        "within_8ms_pct": float(100 * np.mean(np.abs(ms) <= 8.0)),
    }
    if samples is not None:
        out["exact_pct"] = float(100 * np.mean(samples == 0))
        out[f"within_1_sample_at_{fs:g}Hz_pct"] = float(100 * np.mean(np.abs(samples) <= 1))
    return out


def by_class(per: dict[str, dict], fs: float) -> dict:
    """Refined offset statistics per AAMI class of the reference beat."""
    ms = np.concatenate([r["off_ms"] for r in per.values()])
    samples = np.concatenate([r["off_samples"] for r in per.values()])
    cls = np.concatenate([r["off_class"] for r in per.values()])
    return {
        name: {"n": int((cls == k).sum()), **offset_stats(ms[cls == k], samples[cls == k], fs)}
        for k, name in enumerate(CLASS_NAMES)
    }


def summarise(per: dict[str, dict], fs: float) -> dict:
    """Totals over records for one method."""
    tot = {k: sum(r[k] for r in per.values()) for k in ("tp", "fp", "fn", "tp_ex", "fp_ex")}
    tot["fn_ex"] = sum(r["fn_ex"] for r in per.values())
    seconds = np.array([r["seconds"] for r in per.values()])
    refined = np.concatenate([r["off_ms"] for r in per.values()])
    refined_samples = np.concatenate([r["off_samples"] for r in per.values()])
    return {
        "se": pct(tot["tp"], tot["tp"] + tot["fn"]),
        "ppv": pct(tot["tp"], tot["tp"] + tot["fp"]),
        **{k: int(v) for k, v in tot.items()},
        "fp_in_flutter": int(sum(r["fp_in_flutter"] for r in per.values())),
        "se_excl_flutter": pct(tot["tp_ex"], tot["tp_ex"] + tot["fn_ex"]),
        "ppv_excl_flutter": pct(tot["tp_ex"], tot["tp_ex"] + tot["fp_ex"]),
        "error_rate_pct": pct(tot["fp"] + tot["fn"], tot["tp"] + tot["fn"]),
        "offsets_raw": offset_stats(np.concatenate([r["off_raw_ms"] for r in per.values()])),
        "offsets_refined": offset_stats(refined, refined_samples, fs),
        "offsets_refined_by_class": by_class(per, fs),
        "seconds_per_record": float(seconds.mean()),
        "seconds_max": float(seconds.max()),
        "failed_records": {n: r["error"] for n, r in per.items() if r["error"]},
    }


def choose(totals: dict[str, dict]) -> str:
    """Fewest errors; among methods within TIE_PERCENT of the best, the fastest."""
    best = min(t["error_rate_pct"] for t in totals.values())
    tied = [m for m, t in totals.items() if t["error_rate_pct"] <= best + TIE_PERCENT]
    return min(tied, key=lambda m: totals[m]["seconds_per_record"])


def print_table(totals: dict[str, dict]) -> None:
    head = (
        f"{'method':16s} {'Se %':>7s} {'+P %':>7s} {'FP':>5s} {'FN':>5s} "
        f"{'Se* %':>7s} {'+P* %':>7s} {'raw med/IQR ms':>15s} {'ref med/IQR ms':>15s} "
        f"{'<=1smp %':>8s} {'<=8ms %':>7s} {'s/rec':>6s}"
    )
    print(head)
    print("-" * len(head))
    for m, t in totals.items():
        raw, ref = t["offsets_raw"], t["offsets_refined"]
        one = next((v for k, v in ref.items() if k.startswith("within_1")), float("nan"))
        print(
            f"{m:16s} {t['se']:7.3f} {t['ppv']:7.3f} {t['fp']:5d} {t['fn']:5d} "
            f"{t['se_excl_flutter']:7.3f} {t['ppv_excl_flutter']:7.3f} "
            f"{raw.get('median_ms', np.nan):7.1f}/{raw.get('iqr_ms', np.nan):<7.1f} "
            f"{ref.get('median_ms', np.nan):7.1f}/{ref.get('iqr_ms', np.nan):<7.1f} "
            f"{one:8.1f} {ref.get('within_8ms_pct', np.nan):7.1f} "
            f"{t['seconds_per_record']:6.3f}"
        )
    print("* = ventricular flutter episodes of the reference left out (EC57)")


def per_record_table(per: dict[str, dict], records: dict[str, dict]) -> dict:
    out = {}
    for name, r in per.items():
        out[name] = {
            "lead": records[name]["lead"],
            "n_ref": r["tp"] + r["fn"],
            "tp": r["tp"],
            "fp": r["fp"],
            "fn": r["fn"],
            "fp_in_flutter": r["fp_in_flutter"],
            "se": pct(r["tp"], r["tp"] + r["fn"]),
            "ppv": pct(r["tp"], r["tp"] + r["fp"]),
            "offset_median_ms": float(np.median(r["off_ms"])) if len(r["off_ms"]) else None,
            "within_8ms_pct": float(100 * np.mean(np.abs(r["off_ms"]) <= 8))
            if len(r["off_ms"])
            else None,
            "seconds": r["seconds"],
            "read_seconds": records[name]["read_s"],
            "error": r["error"],
        }
    return out


def fs_sweep(records: dict[str, dict], method: str) -> dict:
    """Se/+P and offsets of ``method`` with every record resampled to other rates."""
    out = {}
    for fs_new in SWEEP_FS:
        tp = fp = fn = 0
        offsets, seconds = [], 0.0
        for rec in records.values():
            ratio = Fraction(fs_new / rec["fs"]).limit_denominator(1000)
            x = resample_poly(rec["x"], ratio.numerator, ratio.denominator)
            ref = np.rint(rec["ref"] * fs_new / rec["fs"]).astype(np.int64)
            t0 = time.perf_counter()
            peaks = detect.detect_r_peaks(x, fs_new, method=method)
            seconds += time.perf_counter() - t0
            s = score(ref, peaks, fs_new)
            tp, fp, fn = tp + s["tp"], fp + s["fp"], fn + s["fn"]
            offsets.append(s["offsets"] * 1000.0 / fs_new)
        ms = np.concatenate(offsets)
        out[f"{fs_new:g}"] = {
            "se": pct(tp, tp + fn),
            "ppv": pct(tp, tp + fp),
            "fp": fp,
            "fn": fn,
            "median_offset_ms": float(np.median(ms)),
            "within_8ms_pct": float(100 * np.mean(np.abs(ms) <= 8.0)),
            "within_half_sample_at_125Hz_pct": float(100 * np.mean(np.abs(ms) <= 4.0)),
            "seconds_per_record": seconds / len(records),
        }
        print(f"  fs {fs_new:5g} Hz: " + _fmt(out[f"{fs_new:g}"]))
    return out


def _fmt(d: dict) -> str:
    return ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in d.items())


def long_recording(records: dict[str, dict], method: str) -> dict:
    """All records joined (24 h at 360 Hz), read from a memory map in 10-min chunks."""
    recs = list(records.values())
    fs = recs[0]["fs"]
    if any(r["fs"] != fs for r in recs):
        return {"skipped": "records differ in sampling rate"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "joined.npy"
        np.save(path, np.concatenate([r["x"] for r in recs]))
        x = np.load(path, mmap_mode="r")
        t0 = time.perf_counter()
        peaks = detect.detect_r_peaks_chunked(x, fs, chunk_s=600.0, overlap_s=5.0, method=method)
        seconds = time.perf_counter() - t0
        tracemalloc.start()
        detect.detect_r_peaks_chunked(x[: int(2 * 3600 * fs)], fs, method=method)
        peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    starts = np.cumsum([0] + [len(r["x"]) for r in recs[:-1]])
    ref = np.concatenate([r["ref"] + s for r, s in zip(recs, starts, strict=True)])
    s = score(ref, peaks, fs)
    out = {
        "hours": len(x) / fs / 3600,
        "seconds": seconds,
        "peak_memory_2h_slice_mib": peak_mib,
        "signal_mib": len(x) * 8 / 2**20,
        "se": pct(s["tp"], s["tp"] + s["fn"]),
        "ppv": pct(s["tp"], s["tp"] + s["fp"]),
    }
    print("  " + _fmt(out))
    return out


def environment() -> dict:
    import neurokit2
    import scipy
    import wfdb

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "neurokit2": neurokit2.__version__,
        "wfdb": wfdb.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mitdb-dir", type=Path, default=None, help="MIT-BIH folder")
    p.add_argument("--methods", nargs="+", default=list(detect.DETECTORS), help="detectors")
    p.add_argument("--records", nargs="+", default=None, help="record names (default: all)")
    p.add_argument("--out", type=Path, default=REPO / "results" / "detection.json")
    p.add_argument("--skip-extra", action="store_true", help="skip fs sweep and 24-h run")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mitdb = (args.mitdb_dir or default_mitdb_dir()).resolve()
    bad = [m for m in args.methods if m not in detect.DETECTORS]
    if bad or not mitdb.is_dir():
        print(f"error: unknown methods {bad}" if bad else f"error: {mitdb}: not a folder")
        return 2
    names = args.records or record_names(mitdb)
    records = {n: load_record(mitdb, n) for n in names}
    fs = next(iter(records.values()))["fs"]
    results: dict[str, dict[str, dict]] = {}
    for m in args.methods:
        results[m] = {n: run_method(r, m) for n, r in records.items()}
        print(f"{m}: done in {sum(r['seconds'] for r in results[m].values()):.1f} s", flush=True)
    totals = {m: summarise(per, fs) for m, per in results.items()}
    print()
    print_table(totals)
    chosen = choose(totals)
    print(f"\nchosen: {chosen} (code default: {detect.DEFAULT_METHOD})")
    report = {
        "dataset": {
            "mitdb_dir": str(mitdb),
            "records": names,
            "n_reference_beats": int(sum(len(r["ref"]) for r in records.values())),
            "leads": {n: r["lead"] for n, r in records.items()},
            "mean_read_seconds": float(np.mean([r["read_s"] for r in records.values()])),
        },
        "protocol": {
            "tolerance_s": TOLERANCE_S,
            "matching": "one-to-one, closest pairs first",
            "reference": "annotations whose symbol is in AAMI_CLASSES",
            "excl_flutter": "ventricular flutter episodes ([ ... ]) left out, as in EC57",
            "timing": "detection + refinement per record, file reading excluded",
            "choice": f"fewest FP+FN; within {TIE_PERCENT} pp of the best, the fastest",
        },
        "methods": totals,
        "chosen": chosen,
        "default_method": detect.DEFAULT_METHOD,
        "per_record": per_record_table(results[chosen], records),
        "environment": environment(),
    }
    if not args.skip_extra:
        print(f"\n{chosen} at other sampling rates (records resampled):")
        report["fs_sweep"] = fs_sweep(records, chosen)
        print(f"\n{chosen} on one long recording (all records joined):")
        report["long_recording"] = long_recording(records, chosen)
    write_text_atomic(args.out, json.dumps(report, indent=1, allow_nan=True) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
