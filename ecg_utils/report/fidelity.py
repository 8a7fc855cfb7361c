"""The report's fidelity check: the seed's weights on our rebuilt beats
(``results/fidelity.json``).
"""

from __future__ import annotations

from ..evaluation import fmt_pct


def section_fidelity(results: dict) -> str:
    fid = results.get("fidelity")
    if not fid:
        return ""
    a = fid["all_beats"]
    lines = [
        "## Fidelity check: the seed's weights on our rebuilt beats",
        "",
        "The seed's published weights were trained on Kaggle's CSV. If our segmentation matches",
        "Kaggle's, they should classify our beats about as well as Kaggle's test rows (≈ 98 %).",
        "",
        "| beats | n | accuracy (%) | macro-F1 |",
        "|---|---:|---:|---:|",
        f"| all records | {a['n_beats']:,} | {fmt_pct(a['accuracy'])} | {a['macro_f1']:.3f} |",
    ]
    for key, val in fid.items():
        if key.endswith("_test"):
            lines.append(
                f"| {key[:-5]} test side | {val['n_beats']:,} | {fmt_pct(val['accuracy'])} | "
                f"{val['macro_f1']:.3f} |"
            )
    return "\n".join(lines) + "\n"
