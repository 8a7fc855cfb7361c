"""Noise stress test of detection, classification and the quality flag, on the project's noise.

MIT-BIH records get noise of each kind of :mod:`ecg_utils.noise` in the EC57 layout (clean
for 5 minutes, then 2-minute stretches alternately noisy and clean) at SNR 24, 18, 12,
6, 0 and -6 dB (``lead_off`` has no SNR), on both leads, each lead its own noise.

1. **Choice on DS1** (the 22 DS1 records): the quality thresholds
   (:class:`ecg_utils.quality.QualityRule`: ``bsqi_min`` x ``morph_min`` x ``unlike_max``
   on a grid) that
   mark the most noisy stretches at <= 6 dB (every kind, lead-off included) while marking
   at most 5 % of clean stretches (every stretch of the clean records and the clean
   stretches of the noisy ones); a stretch is marked when at least half of its 10-s windows
   are noisy, and at most 2 % of the clean records' 10-s windows (their beats would be
   labelled Q). Then the detection gate (:data:`ecg_utils.quality.GATES`): the highest +P in
   noisy stretches at 6 dB among gates that keep clean detection Se within 0.1 point and
   6 dB Se within 1 point of no gate.
2. **Figures on DS2** (the 22 DS2 records, with ``BENCHMARK_WEIGHTS``: trained on DS1, so
   the patients are new to it), through :func:`ecg_utils.predict.classify_with_quality`
   exactly as ``predict`` runs it (detected peaks, adaptation on, the chosen rule), per
   kind and SNR:

   * detection Se / +P (150 ms matching) over the whole record and in the noisy stretches;
   * beats whose class changed: reference beats in noisy stretches found in both the clean
     and the noisy run, whose class differs;
   * false V and S per hour of noise: beats in noisy stretches called V (S) that are not a
     reference beat the clean run calls V (S), per hour of noisy stretch;
   * the quality flag's sensitivity (noisy stretches marked) and specificity (clean
     stretches not marked);

   each also with ``keep_noisy`` (what the classifier said anyway). The clean records are
   also classified at their reference beats with the quality check on and off (the
   inter-patient figures), and their detection is scored with and without the gate.
3. **Cost**: ``classify_record`` on DS2 records with the quality check and without
   (median of per-record time ratios).

Usage::

    python bench/noise_stress.py [--mitdb-dir DIR] [--records-ds1 101 106] [--out PATH]

Writes ``results/noise_stress.json`` (through a temporary file); the log says progress.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ecg_utils import BENCHMARK_WEIGHTS  # noqa: E402
from ecg_utils._io import write_text_atomic  # noqa: E402
from ecg_utils.beats import CLASS_NAMES, annotated_beats, pick_lead  # noqa: E402
from ecg_utils.detect import detect_r_peaks, match_pairs  # noqa: E402
from ecg_utils.evaluation import classification_metrics  # noqa: E402
from ecg_utils.noise import NOISE_KINDS, SNRS_DB, noise_stress, stretches  # noqa: E402
from ecg_utils.predict import classify_with_quality, resolve_weights  # noqa: E402
from ecg_utils.quality import (  # noqa: E402
    QualityRule,
    assess_quality,
    gate_peaks,
    window_reasons,
)
from ecg_utils.records import read_annotations, read_signal  # noqa: E402
from ecg_utils.sources import find_mitdb_dir  # noqa: E402
from ecg_utils.splits import DS1, DS2  # noqa: E402

TOLERANCE_S = 0.15
BSQI_GRID = (0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
MORPH_GRID = (0.8, 0.85, 0.9, 0.93, 0.95, 0.97)
SIMILAR_GRID = (0.8, 0.9, 0.95)
UNLIKE_GRID = (0.1, 0.2, 0.3, 1.0)
MAX_CLEAN_WINDOWS = 0.02
MAX_CLEAN_MARKED = 0.05
MARKED_SHARE = 0.5
LOW_SNR_DB = 6.0
SEED = 20
V, S = CLASS_NAMES.index("V"), CLASS_NAMES.index("S")


def load(mitdb: Path, name: str) -> dict:
    """Both leads (MLII first), reference beats and their labels."""
    sig, fs, leads = read_signal(mitdb / name)
    lead, _ = pick_lead(leads)
    order = [lead] + [i for i in range(sig.shape[1]) if i != lead][:1]
    ref, labels = annotated_beats(*read_annotations(mitdb / name))
    return {"name": name, "x": sig[:, order], "fs": fs, "ref": ref, "labels": labels}


def conditions() -> list[tuple[str, float | None]]:
    """Every (kind, SNR) of the test; lead-off once, without an SNR."""
    out = [(k, snr) for k in NOISE_KINDS if k != "lead_off" for snr in SNRS_DB]
    return out + [("lead_off", None)]


def seed_of(name: str, kind: str) -> list[int]:
    """The noise of one record and kind: the same at every SNR."""
    return [SEED, int(name), NOISE_KINDS.index(kind)]


def in_intervals(samples: np.ndarray, intervals: np.ndarray, fs: float) -> np.ndarray:
    t = np.asarray(samples) / fs
    out = np.zeros(len(t), bool)
    for a, b in intervals:
        out |= (t >= a) & (t < b)
    return out


def stretch_windows(intervals: np.ndarray, window_s: float) -> list[np.ndarray]:
    return [np.arange(int(a // window_s), int(np.ceil(b / window_s))) for a, b in intervals]


def marked(noisy: np.ndarray, windows: list[np.ndarray]) -> np.ndarray:
    """Bool per stretch: at least half of its windows noisy."""
    return np.array([noisy[w[w < len(noisy)]].mean() >= MARKED_SHARE for w in windows], bool)


def det_counts(ref: np.ndarray, peaks: np.ndarray, fs: float) -> np.ndarray:
    r_idx, _ = match_pairs(ref, peaks, fs, TOLERANCE_S)
    return np.array([len(r_idx), len(peaks) - len(r_idx), len(ref) - len(r_idx)])


def se_ppv(c) -> dict:
    tp, fp, fn = (int(v) for v in c)
    return {
        "se": 100.0 * tp / (tp + fn) if tp + fn else float("nan"),
        "ppv": 100.0 * tp / (tp + fp) if tp + fp else float("nan"),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


# ------------------------------------------------------------------ DS1: choice


def judge(x0: np.ndarray, fs: float, ref: np.ndarray, layout) -> dict:
    """The unthresholded quality of one lead and what the gate needs."""
    peaks = detect_r_peaks(x0, fs)
    q = assess_quality(x0, fs, peaks)
    noisy_s, clean_s = layout
    return {
        "q": q,
        "peaks": peaks,
        "ref": ref,
        "noisy_w": stretch_windows(noisy_s, q.window_s),
        "clean_w": stretch_windows(clean_s, q.window_s),
        "noisy_s": noisy_s,
    }


def choose_on_ds1(mitdb: Path, names: list[str], log) -> dict:
    judged = []  # (kind, snr, judgement)
    for i, name in enumerate(names):
        rec = load(mitdb, name)
        fs, ref = rec["fs"], rec["ref"]
        layout = stretches(len(rec["x"]) / fs)
        clean = judge(rec["x"][:, 0], fs, ref, layout)
        # every stretch of the clean record is clean
        clean["clean_w"] = clean["noisy_w"] + clean["clean_w"]
        clean["noisy_w"] = []
        judged.append(("clean", None, clean))
        for kind, snr in conditions():
            noisy = noise_stress(rec["x"], fs, ref, kind, snr, seed=seed_of(name, kind))
            judged.append((kind, snr, judge(noisy.signal[:, 0], fs, ref, layout)))
        log(f"DS1 {i + 1}/{len(names)} {name}")
    grid = []
    for b, m, u in itertools.product(BSQI_GRID, MORPH_GRID, UNLIKE_GRID):
        rule = QualityRule(bsqi_min=b, morph_min=m, unlike_max=u)
        low, clean_marks, clean_windows = [], [], []
        for kind, snr, j in judged:
            q = j["q"]
            noisy = window_reasons(q.amplitude, q.bsqi, q.morphology, rule, q.unlike) != ""
            clean_marks.extend(marked(noisy, j["clean_w"]))
            if kind == "clean":
                clean_windows.append(noisy)
            if kind != "clean" and (snr is None or snr <= LOW_SNR_DB):
                low.extend(marked(noisy, j["noisy_w"]))
        grid.append(
            {
                "bsqi_min": b,
                "morph_min": m,
                "unlike_max": u,
                "sensitivity": float(np.mean(low)),
                "clean_marked": float(np.mean(clean_marks)),
                "clean_windows": float(np.mean(np.concatenate(clean_windows))),
            }
        )
    allowed = [
        g
        for g in grid
        if g["clean_marked"] <= MAX_CLEAN_MARKED and g["clean_windows"] <= MAX_CLEAN_WINDOWS
    ] or grid
    best = max(allowed, key=lambda g: (g["sensitivity"], -g["clean_marked"]))
    gates = []
    for gate, similar in [("", None), ("agreed", None)] + [
        ("agreed_or_similar", v) for v in SIMILAR_GRID
    ]:
        extra = {"similar_min": similar} if similar is not None else {}
        rule = QualityRule(
            bsqi_min=best["bsqi_min"],
            morph_min=best["morph_min"],
            unlike_max=best["unlike_max"],
            gate=gate,
            **extra,
        )
        clean_c, low_c = np.zeros(3), np.zeros(3)
        for kind, snr, j in judged:
            q = j["q"]
            reason = window_reasons(q.amplitude, q.bsqi, q.morphology, rule, q.unlike)
            q = dataclasses.replace(q, reason=reason)
            kept = gate_peaks(j["peaks"], q, rule)
            if kind == "clean":
                clean_c += det_counts(j["ref"], kept, q.fs)
            elif snr == LOW_SNR_DB:
                inside_r = in_intervals(j["ref"], j["noisy_s"], q.fs)
                inside_p = in_intervals(kept, j["noisy_s"], q.fs)
                low_c += det_counts(j["ref"][inside_r], kept[inside_p], q.fs)
        gates.append(
            {
                "gate": gate,
                "similar_min": similar,
                "clean": se_ppv(clean_c),
                "snr6_noisy": se_ppv(low_c),
            }
        )
    none = gates[0]
    ok = [
        g
        for g in gates
        if g["clean"]["se"] >= none["clean"]["se"] - 0.1
        and g["snr6_noisy"]["se"] >= none["snr6_noisy"]["se"] - 1.0
    ]
    gate = max(ok, key=lambda g: g["snr6_noisy"]["ppv"])
    return {
        "records": names,
        "grid": grid,
        "chosen": {
            "bsqi_min": best["bsqi_min"],
            "morph_min": best["morph_min"],
            "unlike_max": best["unlike_max"],
            "gate": gate["gate"],
            **({"similar_min": gate["similar_min"]} if gate["similar_min"] is not None else {}),
        },
        "gates": gates,
        "rule": (
            f"most noisy stretches marked at <= {LOW_SNR_DB:g} dB with at most "
            f"{100 * MAX_CLEAN_MARKED:g} % of clean stretches marked and at most "
            f"{100 * MAX_CLEAN_WINDOWS:g} % of the clean records' windows noisy (each is a "
            "beat labelled Q); then the gate with the "
            "highest +P in noisy stretches at 6 dB keeping clean Se within 0.1 point and 6 dB "
            "Se within 1 point of no gate"
        ),
    }


# ------------------------------------------------------------------ DS2: figures


def run_table(x, fs, rule, loaded, r_peaks=None, quality=True):
    table, q = classify_with_quality(
        x,
        fs,
        r_peaks=r_peaks,
        weights=loaded,
        quality=rule if quality else False,
        keep_noisy=True,
        device="cpu",
    )
    kept = table["label"].to_numpy().copy()
    shown = kept.copy()
    if q is not None:
        shown[(table["quality"] == "noisy").to_numpy()] = CLASS_NAMES.index("Q")
    return table["sample"].to_numpy(), shown, kept, q


def figures_on_ds2(mitdb: Path, names: list[str], rule: QualityRule, loaded, log) -> dict:
    acc: dict = {}
    clean_rows = {"gate": np.zeros(3), "no_gate": np.zeros(3)}
    ip = {"on": ([], []), "off": ([], [])}
    timing = []
    for i, name in enumerate(names):
        rec = load(mitdb, name)
        x, fs, ref, labels = rec["x"], rec["fs"], rec["ref"], rec["labels"]
        # the clean run, as predict runs it, is what the noisy runs are compared with
        t0 = time.perf_counter()
        c_peaks, c_shown, _, cq = run_table(x, fs, rule, loaded)
        t_on = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_table(x, fs, rule, loaded, quality=False)
        t_off = time.perf_counter() - t0
        timing.append({"record": name, "with_quality_s": t_on, "without_s": t_off})
        clean_rows["gate"] += det_counts(ref, c_peaks, fs)
        clean_rows["no_gate"] += det_counts(ref, detect_r_peaks(x[:, 0], fs), fs)
        for key, quality in (("on", True), ("off", False)):
            _, shown, _, _ = run_table(x, fs, rule, loaded, r_peaks=ref, quality=quality)
            ip[key][0].append(labels)
            ip[key][1].append(shown)
        r_idx, t_idx = match_pairs(ref, c_peaks, fs, TOLERANCE_S)
        clean_class = np.full(len(ref), -1)
        clean_class[r_idx] = c_shown[t_idx]
        for kind, snr in conditions():
            noisy = noise_stress(x, fs, ref, kind, snr, seed=seed_of(name, kind))
            peaks, shown, kept, q = run_table(noisy.signal, fs, rule, loaded)
            key = f"{kind}" if snr is None else f"{kind}@{snr:g}"
            a = acc.setdefault(key, _empty(kind, snr))
            _accumulate(
                a, ref, peaks, shown, kept, q, clean_class, noisy.noisy_s, noisy.clean_s, fs
            )
        log(f"DS2 {i + 1}/{len(names)} {name}")
    rows = [_finish(a) for a in acc.values()]
    ratios = [t["with_quality_s"] / t["without_s"] for t in timing]
    inter = {}
    for key, (truth, pred) in ip.items():
        t, p = np.concatenate(truth), np.concatenate(pred)
        m = classification_metrics(t, p)
        inter[key] = {
            "accuracy": m["accuracy"],
            "S": m["classes"]["S"],
            "V": m["classes"]["V"],
            "q_share": float((p == CLASS_NAMES.index("Q")).mean()),
        }
    return {
        "records": names,
        "rows": rows,
        "clean_detection": {k: se_ppv(v) for k, v in clean_rows.items()},
        "interpatient_reference_beats": inter,
        "cost": {
            "median_ratio": float(np.median(ratios)),
            "median_with_s": float(np.median([t["with_quality_s"] for t in timing])),
            "median_without_s": float(np.median([t["without_s"] for t in timing])),
        },
    }


def _empty(kind, snr) -> dict:
    return {
        "kind": kind,
        "snr_db": snr,
        "det_all": np.zeros(3),
        "det_noisy": np.zeros(3),
        "changed": np.zeros(2),
        "changed_kept": np.zeros(2),
        "false_v": 0,
        "false_s": 0,
        "false_v_kept": 0,
        "false_s_kept": 0,
        "noise_s": 0.0,
        "noisy_marked": [],
        "clean_marked": [],
    }


def _accumulate(a, ref, peaks, shown, kept, q, clean_class, noisy_s, clean_s, fs) -> None:
    a["det_all"] += det_counts(ref, peaks, fs)
    inside_r, inside_p = in_intervals(ref, noisy_s, fs), in_intervals(peaks, noisy_s, fs)
    a["det_noisy"] += det_counts(ref[inside_r], peaks[inside_p], fs)
    r_idx, t_idx = match_pairs(ref, peaks, fs, TOLERANCE_S)
    ref_class_of_peak = np.full(len(peaks), -1)
    ref_class_of_peak[t_idx] = clean_class[r_idx]
    both = inside_p & (ref_class_of_peak >= 0)
    a["changed"] += [int((shown[both] != ref_class_of_peak[both]).sum()), int(both.sum())]
    a["changed_kept"] += [int((kept[both] != ref_class_of_peak[both]).sum()), int(both.sum())]
    for label, key in ((V, "v"), (S, "s")):
        a[f"false_{key}"] += int((inside_p & (shown == label) & (ref_class_of_peak != label)).sum())
        a[f"false_{key}_kept"] += int(
            (inside_p & (kept == label) & (ref_class_of_peak != label)).sum()
        )
    a["noise_s"] += float((noisy_s[:, 1] - noisy_s[:, 0]).sum())
    a["noisy_marked"].extend(marked(q.noisy, stretch_windows(noisy_s, q.window_s)).tolist())
    a["clean_marked"].extend(marked(q.noisy, stretch_windows(clean_s, q.window_s)).tolist())


def _finish(a) -> dict:
    hours = a["noise_s"] / 3600.0
    return {
        "kind": a["kind"],
        "snr_db": a["snr_db"],
        "detection_all": se_ppv(a["det_all"]),
        "detection_noisy": se_ppv(a["det_noisy"]),
        "changed_pct": 100.0 * a["changed"][0] / max(a["changed"][1], 1),
        "changed_kept_pct": 100.0 * a["changed_kept"][0] / max(a["changed_kept"][1], 1),
        "false_v_per_h": a["false_v"] / hours,
        "false_s_per_h": a["false_s"] / hours,
        "false_v_per_h_kept": a["false_v_kept"] / hours,
        "false_s_per_h_kept": a["false_s_kept"] / hours,
        "noise_hours": hours,
        "flag_sensitivity": 100.0 * float(np.mean(a["noisy_marked"])),
        "flag_specificity": 100.0 * (1.0 - float(np.mean(a["clean_marked"]))),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mitdb-dir", type=Path, default=None)
    ap.add_argument("--records-ds1", nargs="*", default=None)
    ap.add_argument("--records-ds2", nargs="*", default=None)
    ap.add_argument("--out", type=Path, default=REPO / "results" / "noise_stress.json")
    args = ap.parse_args(argv)
    mitdb = args.mitdb_dir or find_mitdb_dir()
    if mitdb is None:
        print("error: MIT-BIH records not found; pass --mitdb-dir or set ECG_MITDB_DIR")
        return 2
    t_start = time.time()

    def log(msg: str) -> None:
        print(f"[{time.time() - t_start:6.0f} s] {msg}", flush=True)

    import torch

    torch.set_num_threads(1)
    choice = choose_on_ds1(mitdb, args.records_ds1 or list(DS1), log)
    log(f"chosen {choice['chosen']}")
    rule = QualityRule(**choice["chosen"])
    loaded = resolve_weights(BENCHMARK_WEIGHTS)
    ds2 = figures_on_ds2(mitdb, args.records_ds2 or list(DS2), rule, loaded, log)
    ds2["weights"] = BENCHMARK_WEIGHTS.name
    out = {
        "config": {
            "kinds": list(NOISE_KINDS),
            "snrs_db": list(SNRS_DB),
            "seed": SEED,
            "tolerance_s": TOLERANCE_S,
            "marked_share": MARKED_SHARE,
            "bsqi_grid": list(BSQI_GRID),
            "morph_grid": list(MORPH_GRID),
        },
        "choice_ds1": choice,
        "ds2": ds2,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "wall_s": time.time() - t_start,
    }
    write_text_atomic(args.out, json.dumps(out, indent=1, default=float) + "\n")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
