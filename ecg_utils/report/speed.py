"""The report's speed sections: end-to-end prediction (``results/bench_predict.json``)
and batched inference throughput (``results/bench_inference.json``).
"""

from __future__ import annotations

from pathlib import Path


def section_predict_speed(results: dict) -> str:
    """End-to-end prediction and dataset build figures (``bench/predict.py``)."""
    b = results.get("bench_predict")
    if not b:
        return ""
    rec, holter, build, goals = b["record"], b["holter"], b["build"], b["goals"]
    steps = rec["steps_s"]
    step_text = ", ".join(
        f"{k} {v:.2f} s" for k, v in steps.items() if k not in ("total", "n_beats")
    )
    rows = [
        (
            "`predict` of a 30-min 360 Hz record (wall, median)",
            f"{rec['wall_median_s']:.2f} s",
            f"≤ {goals['record_wall_s']:.0f} s",
        ),
        ("the same steps in-process", f"{steps['total']:.2f} s", ""),
        (
            f"`predict` of a {holter['hours']:.0f}-hour two-lead record "
            f"({holter['n_beats']:,} beats)",
            f"{holter['wall_s']:.1f} s",
            f"≤ {goals['holter_wall_s']:.0f} s",
        ),
        (
            "its peak memory",
            f"{holter['peak_rss_mb'] / 1024:.2f} GB",
            f"≤ {goals['holter_peak_rss_mb'] / 1024:.0f} GB",
        ),
        (
            "beat set from the 48 records, cold",
            f"{build['cold_s']:.2f} s",
            f"≤ {goals['build_cold_s']:.0f} s",
        ),
        ("beat set, cached", f"{build['cached_s']:.2f} s", f"≤ {goals['build_cached_s']:.0f} s"),
    ]
    table = "\n".join(f"| {a} | {b_} | {c} |" for a, b_, c in rows)
    return f"""## Prediction speed (`bench/predict.py`, this 2-core CPU)

| what | measured | goal |
|---|---:|---:|
{table}

In-process steps of the 30-minute record: {step_text}. The rest of the wall time is
Python start-up and imports.
"""


def section_inference_speed(results: dict) -> str:
    """Batched inference throughput (``bench/inference.py``)."""
    b = results.get("bench_inference")
    if not b or not b.get("models"):
        return ""
    parts = [
        "## Inference throughput (`bench/inference.py`, this 2-core CPU)",
        "",
        f"sgemm measured at {b['sgemm_flops'] / 1e9:.0f} GFLOP/s; efficiency = beats/s × "
        "FLOPs per beat ÷ sgemm FLOP/s. Best of interleaved rounds (load average "
        f"{b['load_average_before'][0]:.1f} before, {b['load_average_after'][0]:.1f} after).",
    ]
    for m in b["models"]:
        rows = "\n".join(
            f"| {r['method']} | {r['batch']} | {r['beats_per_s']:,} | {r['efficiency']:.2f} "
            f"| {r['speedup_vs_seed_loop']:.2f}× |"
            for r in m["table"]
        )
        parts += [
            "",
            f"`{Path(m['weights']).name}` ({m['architecture']}, "
            f"{m['flops_per_beat'] / 1e6:.2f} MFLOP per beat, {m['n_beats']:,} beats):",
            "",
            "| method | batch | beats/s | efficiency | vs seed loop |",
            "|---|---:|---:|---:|---:|",
            rows,
        ]
    parts.append(
        "\nGoals: efficiency ≥ 0.6 for ECG1DCNN and ≥ 3× the seed-style loop "
        "(DataLoader, batch 64). `predict_proba` keeps batches of a few hundred beats, and for "
        "long inputs folds BatchNorm into the convolutions and runs one single-threaded share "
        "per core, which holds up when other work competes for the cores."
    )
    return "\n".join(parts) + "\n"
