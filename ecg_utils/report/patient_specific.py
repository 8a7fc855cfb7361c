"""The report's "Patient-adaptive mode" section: labelled beats from each patient
(``results/patient_specific.json``), with its few-labels cluster review.
"""

from __future__ import annotations

from ..evaluation import fmt_pct
from .common import ci_cell, goals_met, se_ppv, table

PATIENT_GOALS = {"S": (0.90, 0.80), "V": (0.97, 0.95)}
"""Patient-specific goals: (sensitivity, positive predictivity) per class."""


def section_patient_specific(results: dict) -> str:
    """The patient-specific protocol: the first minutes of each DS2 record labelled."""
    r = results.get("patient_specific")
    if not r:
        return ""
    rows = []
    for label, m in (
        ("without adaptation (same beats)", r["global"]),
        ("adapted to each patient", r["adapted"]),
    ):
        ci = m.get("ci") or {}
        cells = []
        for k in "SV":
            kci = ci.get("classes", {}).get(k)
            cells.append(
                f"{ci_cell(m['classes'][k], kci, 'sensitivity')} / "
                f"{ci_cell(m['classes'][k], kci, 'ppv')}"
            )
        rows.append(f"| {label} | {ci_cell(m, ci, 'accuracy')} | {cells[0]} | {cells[1]} |")
    goals = "; ".join(
        f"{k} Se ≥ {100 * se:.0f} % with +P ≥ {100 * ppv:.0f} %"
        for k, (se, ppv) in PATIENT_GOALS.items()
    )
    met = goals_met(r["adapted"]["classes"], PATIENT_GOALS)
    per = r["per_record"]
    changes = sorted(per.items(), key=lambda kv: kv[1]["errors_adapted"] - kv[1]["errors_global"])
    worse = [(rec, v) for rec, v in changes if v["errors_adapted"] > v["errors_global"]]
    best = "; ".join(
        f"{rec}: {v['errors_global']:,} → {v['errors_adapted']:,} errors"
        for rec, v in changes[:4]
        if v["errors_adapted"] < v["errors_global"]
    )
    worse_text = (
        "Records that got worse: "
        + "; ".join(
            f"{rec} ({v['errors_global']:,} → {v['errors_adapted']:,} errors, S found "
            f"{v['S_found_global']} → {v['S_found_adapted']} of {v['S']}, V found "
            f"{v['V_found_global']} → {v['V_found_adapted']} of {v['V']})"
            for rec, v in worse
        )
        + "."
        if worse
        else "No record got worse."
    )
    n_boot = (r["adapted"].get("ci") or {}).get("n_boot", 0)
    return f"""## Patient-adaptive mode (labelled beats from each patient)

AAMI EC57's patient-specific protocol: the reference labels of the first
{r["minutes"]:g} minutes of each DS2 record adapt the benchmark model
(`{r["experiment"]}`, trained on DS1) to that patient, and only the beats after them are
scored, by the adapted and by the unadapted model. Adaptation keeps the model and adds a
memory of the patient's labelled beats: each beat's probabilities are mixed with the vote
of its 5 nearest labelled beats in the model's own representation
(`python -m ecg_utils adapt RECORD --ann atr --minutes 5 --out patient.pth`, or
`ecg_utils.adapt`). {_vote_text(r)} It takes {r["seconds_per_record"]:.2f} s per record on
2 cores. This table never mixes with the strict inter-patient one: here each patient's own
labels are used.

{table(["model", "accuracy (%)", "S Se / +P (%)", "V Se / +P (%)"], rows)}

95 % intervals from {n_boot} bootstrap resamples of records. Goals: {goals}; met: {met}.
Largest gains: {best or "none"}. {worse_text}
{_few_labels(r)}"""


FEW_LABEL_GOAL = (20, "S", 0.80, 0.70)
"""With 20 labelled beats per recording: S sensitivity and +P goals."""


def _few_labels(r: dict) -> str:
    """What each extra label buys: k labelled beats per record, chosen by a cluster review."""
    few = r.get("few_labels")
    if not few:
        return ""
    rows = []
    for k, res in sorted(few.items(), key=lambda kv: int(kv[0])):
        m, g = res["adapted"], res["global"]
        rows.append(
            f"| {k} | {fmt_pct(m['accuracy'])} | {se_ppv(m['classes']['S'])} "
            f"| {se_ppv(m['classes']['V'])} | {se_ppv(g['classes']['S'])} "
            f"| {res['seconds_per_record']:.2f} |"
        )
    k, cls, se, ppv = FEW_LABEL_GOAL
    goal = few.get(str(k))
    verdict = ""
    if goal:
        c = goal["adapted"]["classes"][cls]
        ok = c["sensitivity"] >= se and c["ppv"] >= ppv
        verdict = (
            f" Goal with {k} labels: {cls} Se ≥ {100 * se:.0f} % with +P ≥ {100 * ppv:.0f} %: "
            f"{se_ppv(c)} %, {'met' if ok else 'not met'}."
        )
    columns = [
        "labelled beats per record",
        "accuracy (%)",
        "S Se / +P (%)",
        "V Se / +P (%)",
        "S without adaptation (%)",
        "s per record",
    ]
    return f"""
### Few labels: a cluster review

The few-labels protocol: each record's beats are grouped into k families (morphology and
prematurity, no label used; `python -m ecg_utils clusters RECORD --out DIR` writes them
for review), the reference label of each family's most typical beat stands in for the
analyst and labels its whole family (`adapt RECORD --clusters DIR/families.csv`), and every
other beat is scored.{verdict}

{table(columns, rows)}
"""


def _vote_text(r: dict) -> str:
    """How the share of the neighbours' vote was chosen (on DS1, never on DS2)."""
    scores = r.get("vote_weight_scores")
    if not scores:
        return ""
    tried = ", ".join(f"{w}: {v:.3f}" for w, v in scores.items())
    return (
        f"The vote's share, {r['vote_weight']:g}, was chosen on DS1: each DS1 record adapted "
        f"from its own first minutes by the fold model of {r['vote_weight_chosen_on']} that "
        f"never saw it, pooled mean F1 of N, S and V ({tried})."
    )
