"""The report's ablation of ECG1DCNN recipes on the Kaggle protocol."""

from __future__ import annotations

from ..experiments import default_experiments
from .common import se_ppv


def section_ablation(results: dict) -> str:
    """What each part of our recipe adds to ECG1DCNN on the Kaggle protocol."""

    order = [e.name for e in default_experiments() if e.ablation]
    rows = [results[n] for n in order if n in results and "test" in results[n]]
    if not rows:
        return ""
    lines = [
        "## Ablation: ECG1DCNN recipes on the Kaggle protocol",
        "",
        "Each row changes the row above as it says; all keep the seed's architecture.",
        "",
        "| step | accuracy (%) | macro-F1 | S Se / +P (%) | V Se / +P (%) | F Se / +P (%) "
        "| best / trained epochs | time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        m, c = r["test"], r["test"]["classes"]
        pair = {k: se_ppv(c[k]) for k in "SVF"}
        lines.append(
            f"| {r['ablation']} | {100 * m['accuracy']:.2f} | {m['macro_f1']:.3f} | {pair['S']} "
            f"| {pair['V']} | {pair['F']} | {r['best_epoch']} / {len(r['history'])} "
            f"| {r['train_seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"
