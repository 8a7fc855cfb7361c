"""The report's "Targets" section: the goals beside what the shipped models measure."""

from __future__ import annotations

import math

from ..experiments import UNSEEN_PATIENT_TARGET
from .common import se_ppv, shipped_name
from .kaggle import kaggle_target_rows
from .new_patients import IP_GOALS, new_patient_training_rows
from .relative import relative_target_rows
from .relative_patient import patient_target_rows


def section_targets(results: dict) -> str:
    """The goals beside what the shipped models measure: new patients first (the relative
    models `predict` runs, fine-tuning to a patient, then the earlier network models),
    then the training times and the Kaggle protocol's strong and distilled models."""
    rows = relative_target_rows(results) + patient_target_rows(results)
    ip = results.get(shipped_name(results, UNSEEN_PATIENT_TARGET) or "")
    if ip:
        points = [("balanced", ip["test"])]
        if ip.get("test_high_sensitivity"):
            points.append(("high", ip["test_high_sensitivity"]))
        for point, m in points:
            c = m["classes"]
            for k, (se, ppv) in IP_GOALS.items():
                rows.append(
                    (
                        f"network benchmark `{UNSEEN_PATIENT_TARGET}` on DS2 ({point}): "
                        f"{k} Se ≥ {se:.0%}, +P ≥ {ppv:.0%}",
                        f"{se_ppv(c[k])} %",
                        c[k]["sensitivity"] >= se and c[k]["ppv"] >= ppv,
                    )
                )
            rows.append(
                (
                    f"network benchmark `{UNSEEN_PATIENT_TARGET}` on DS2 ({point}): "
                    "accuracy ≥ 95 %",
                    f"{100 * m['accuracy']:.2f} %",
                    m["accuracy"] >= 0.95,
                )
            )
    rows += new_patient_training_rows(results)
    rows += kaggle_target_rows(results)
    if not rows:
        return ""
    table = "\n".join(f"| {a} | {b} | {'met' if ok else 'not met'} |" for a, b, ok in rows)
    return f"""## Targets

The goals that come first are for new patients: the relative models `predict` runs (issue
18; chosen on DS1 record folds and svdb-dev, DS2 read once), fine-tuning to a patient's
labelled beats (issue 19; chosen on DS1 folds), then the earlier network benchmark's goals
at both operating points, the training-time goals and the Kaggle-protocol goals (test
side). Each row names the weights it measures:

| goal | measured | |
|---|---:|---|
{table}

Goals not met stay here as goals. Times are wall-clock on this 2-core machine, summed over
cross-validation, ensemble members and final training. On the Kaggle protocol, ECG1DCNN
plateaus at 0.933–0.936 macro-F1 over recipes and seeds (below); its goal now asks what
distillation from a stronger model can add.
{_s_target_note(results)}"""


def _s_target_note(results: dict) -> str:
    """What the S sensitivity goal asks of DS2's record with the most S beats."""
    ds = results.get("dataset") or {}
    counts, ds2 = ds.get("record_counts"), ds.get("ds2")
    if not counts or not ds2:
        return ""
    s_beats = {rec: counts[rec]["S"] for rec in ds2 if rec in counts}
    total = sum(s_beats.values())
    if not total:
        return ""
    top = max(s_beats, key=s_beats.get)
    goal = IP_GOALS["S"][0]
    need = math.ceil(goal * total) - (total - s_beats[top])
    return (
        f"\nRecord {top} holds {s_beats[top]:,} of DS2's {total:,} S beats "
        f"({100 * s_beats[top] / total:.0f} %), so S Se ≥ {100 * goal:.0f} % needs at least "
        f"{need:,} of them ({100 * need / s_beats[top]:.0f} %) even with every other S beat "
        "found.\n"
    )
