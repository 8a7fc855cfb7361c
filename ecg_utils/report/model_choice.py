"""The report's "Choosing the model for unseen patients" section: pooled out-of-fold
scores on DS1, and how well they ranked the candidates for DS2 (read after the fact).
"""

from __future__ import annotations

from ..beats import CLASS_NAMES
from ..experiments import UNSEEN_PATIENT_TARGET
from .common import experiments, se_ppv, shipped_name


def section_model_choice(results: dict) -> str:
    """How the model for unseen patients was chosen: pooled out-of-fold scores on DS1."""
    rows = [r for r in experiments(results, "inter-patient") if r.get("cross_validation")]
    if not rows:
        return ""
    shipped = shipped_name(results, UNSEEN_PATIENT_TARGET)
    n_folds = len(rows[0]["cross_validation"]["folds"])
    lines = [
        "## Choosing the model for unseen patients",
        "",
        f"Each candidate is cross-validated over {n_folds} folds of whole DS1 records: a model "
        "trained on the other folds predicts each fold after every epoch, and the "
        "predictions of all folds are pooled, so every DS1 patient is judged once by a model "
        "that never saw them. The epoch and the class offsets are chosen on the pooled "
        "predictions (mean F1 of N, S and V), then the model is trained on all of DS1 up to "
        "that epoch. The candidate with the best pooled score is shipped; DS2 plays no part.",
        "",
        "| model | pooled score | epoch | offsets N, S, V, F, Q | out-of-fold S Se / +P (%) "
        "| out-of-fold V Se / +P (%) | cross-validation (s) | final training (s) |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        cv = r["cross_validation"]
        c = cv["out_of_fold"]["classes"]
        pair = {k: se_ppv(c[k]) for k in "SV"}
        offsets = ", ".join(f"{v:+.2f}" for v in cv["class_bias"] or [0.0] * len(CLASS_NAMES))
        name = r["title"] + (" (shipped)" if r["name"] == shipped else "")
        lines.append(
            f"| {name} | {cv['score']:.3f} | {cv['epoch']} | {offsets} | {pair['S']} "
            f"| {pair['V']} | {cv['seconds']:.0f} | {r['train_seconds']:.0f} |"
        )
    folds = "; ".join(", ".join(f) for f in rows[0]["cross_validation"]["folds"])
    lines += ["", f"Folds (records): {folds}."]
    if len(rows) >= 3:
        lines += ["", _choice_versus_test(rows, shipped)]
    chosen = next((r for r in rows if r["name"] == shipped), None)
    per_record = (chosen or {}).get("cross_validation", {}).get("per_record")
    if per_record:
        worst = sorted(per_record.items(), key=lambda kv: -kv[1]["errors"])[:4]
        text = "; ".join(
            f"{rec}: {v['errors']:,} of {v['beats']:,}, mostly {v['top_confusion']}"
            for rec, v in worst
        )
        lines += ["", f"Out-of-fold errors of the shipped candidate, worst DS1 records: {text}."]
    return "\n".join(lines) + "\n"


def _choice_versus_test(rows: list[dict], shipped: str | None) -> str:
    """How well the pooled DS1 score ranked the candidates for DS2 (read after the fact;
    the choice itself never sees DS2)."""
    from scipy.stats import spearmanr

    def nsv_f1(r):
        return sum(r["test"]["classes"][k]["f1"] for k in "NSV") / 3

    rho = spearmanr([r["cross_validation"]["score"] for r in rows], [nsv_f1(r) for r in rows])
    best = max(rows, key=nsv_f1)
    chosen = next((r for r in rows if r["name"] == shipped), None)
    text = (
        f"Read after the fact (DS2 played no part in the choice): across these {len(rows)} "
        f"candidates, the rank correlation between the pooled DS1 score and the same score "
        f"on DS2 is {rho.statistic:+.2f}. The best candidate on DS2, {best['title']}, scores "
        f"{nsv_f1(best):.3f} there"
    )
    if chosen is not None:
        text += f"; the shipped one {nsv_f1(chosen):.3f}"
    verdict = (
        "the pooled score ranks them much as DS2 does"
        if rho.statistic >= 0.5
        else "the 22 training patients cannot tell these candidates apart"
    )
    return f"{text}: {verdict}."
