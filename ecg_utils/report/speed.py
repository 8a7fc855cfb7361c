"""The report's speed sections: end-to-end prediction (``results/bench_predict.json``)
and batched inference throughput (``results/bench_inference.json``).
"""

from __future__ import annotations

from pathlib import PurePath


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
    weights = PurePath(b.get("weights") or "?").name
    return f"""## Prediction speed (`bench/predict.py`, `{weights}`, this 2-core CPU)

| what | measured | goal |
|---|---:|---:|
{table}

In-process steps of the 30-minute record: {step_text}. The rest of the wall time is
Python start-up and imports.
"""


def section_inference_speed(results: dict) -> str:
    """Batched inference throughput (``bench/inference.py``): one table per weights file,
    titled by which weights were timed (:func:`_weights_title`) and with which methods
    (the benchmark times every method on its first file, the main ones on the others)."""
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
    for i, m in enumerate(b["models"]):
        rows = "\n".join(
            f"| {r['method']} | {r['batch']} | {r['beats_per_s']:,} | {r['efficiency']:.2f} "
            f"| {r['speedup_vs_seed_loop']:.2f}× |"
            for r in m["table"]
        )
        parts += [
            "",
            f"{_weights_title(results, m['weights'])}, "
            f"{'every method' if i == 0 else 'the main methods'} ({m['architecture']}, "
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


def _weights_title(results: dict, weights: str) -> str:
    """Which weights file a benchmark timed, in words, from the path it recorded.

    The seed's published weights are the file the fidelity check used
    (``results/fidelity.json``); a shipped file is one whose path ends with a key of
    ``results/shipped.json`` (a path relative to the repository). Files of the same name
    are told apart that way. The shipped file is named as the benchmark found it, not
    as the experiment shipped there now: the benchmark records no checksum.
    """
    parts = PurePath(weights).parts
    seed = (results.get("fidelity") or {}).get("weights")
    if seed:
        seed_parts = tuple(p for p in PurePath(seed).parts if p not in ("..", "."))
        if seed_parts and parts[-len(seed_parts) :] == seed_parts:
            return f"The seed's published `{PurePath(weights).name}`"
    keys = sorted((results.get("shipped") or {}), key=lambda k: -len(PurePath(k).parts))
    for key in keys:
        key_parts = PurePath(key).parts
        if parts[-len(key_parts) :] == key_parts:
            return f"The repository's shipped `{key}`"
    return f"`{weights}`"
