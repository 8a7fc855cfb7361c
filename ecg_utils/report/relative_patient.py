"""The report's section on fine-tuning the relative recipe to a patient's labelled beats
(``results/relative_patient.json``, :mod:`ecg_utils.relative_patient`)."""

from __future__ import annotations

from ..evaluation import fmt_pct
from .common import goals_met, se_ppv, table

DS2_GOALS = {"S": (0.92, 0.90), "V": (0.98, 0.96)}
"""Issue 19's DS2 goals of the 5-minute protocol (accuracy >= 98.5 %)."""
DS2_ACCURACY_GOAL = 0.985
DS1_GOALS = {"S": (0.75, 0.75)}
FEW_GOALS = {"S": (0.85, 0.80), "V": (0.97, 0.95)}
"""Goals with 20 labels per record (few labels or active review)."""
SECONDS_GOAL = 5.0


def _row(name: str, m: dict, extra: str = "") -> str:
    c = m["classes"]
    return f"| {name} | {fmt_pct(m['accuracy'])} | {se_ppv(c['S'])} | {se_ppv(c['V'])} |{extra}"


def section_relative_patient(results: dict) -> str:
    """Markdown for the relative recipe's patient-adaptive mode, or "" before it ran."""
    r = results.get("relative_patient")
    if not r:
        return ""
    chosen = str(r["chosen_budget"])
    ds2 = r["ds2"]
    columns = ["model", "accuracy (%)", "S Se / +P (%)", "V Se / +P (%)"]
    budget_rows = [
        _row(
            f"{'**' + b + '** (chosen)' if b == chosen else b} trees a class",
            m["adapted"],
            f" {m['score']:.3f} | {m['seconds_per_record']:.1f} |",
        )
        for b, m in r["ds1_folds"].items()
    ]
    ds1_global = r["ds1_folds"][chosen]["global"]
    few = r["few_labels"]
    few_rows = [
        _row(
            f"{k.split('_')[1]} labels, "
            + ("families' medoids" if k.startswith("medoids") else "active review (rounds of 5)"),
            m["adapted"],
            f" {m['seconds_per_record']:.1f} |",
        )
        for k, m in few.items()
    ]
    ds1_few_rows = [
        _row(
            f"DS1 folds, {k.split('_')[1]} labels, "
            + ("families' medoids" if k.startswith("medoids") else "active review"),
            m["adapted"],
            f" {m['seconds_per_record']:.1f} |",
        )
        for k, m in (r.get("ds1_few_labels") or {}).items()
    ]
    per = ds2["per_record"]
    changed = [
        f"| {rec} | {v['scored']} | {v['errors_global']} | {v['errors_adapted']} | "
        f"{v['S']} | {v['S_found_global']} → {v['S_found_adapted']} | {v['V']} | "
        f"{v['V_found_global']} → {v['V_found_adapted']} |"
        for rec, v in per.items()
        if v["errors_global"] != v["errors_adapted"]
    ]
    worse = [rec for rec, v in per.items() if v["errors_adapted"] > v["errors_global"]]
    twenty = [m for k, m in few.items() if k.endswith("_20")]
    best20 = max(twenty, key=lambda m: m["adapted"]["classes"]["S"]["f1"]) if twenty else None
    return "\n".join(
        [
            "## Patient-adaptive mode: fine-tuning the relative recipe with replay",
            "",
            "`adapt` continues the shipped model's boosting on the patient's labelled beats "
            "mixed with a replay of its own training beats (a class-balanced set of up to "
            "600 beats a class stored in the weights: "
            f"{results['relative']['shipped']['product']['replay']['bytes'] / 1e6:.1f} MB in "
            "the product's weights), half of the loss weight each and class-balanced within "
            "each half; scikit-learn's `GradientBoostingClassifier` starts from the shipped "
            "model's probabilities and adds small trees (depth 3). EC57 protocol: the first "
            f"{ds2['minutes']:g} minutes of each record labelled, the rest scored; annotated "
            "beats, one lead pair as `predict` reads them.",
            "",
            f"**Step budget** chosen on DS1 record folds ({r['choice_rule']}):",
            "",
            table(
                columns + ["score", "s / record"],
                [_row("fold models, no adaptation", ds1_global, " — | — |"), *budget_rows],
            ),
            "",
            f"DS1 folds goal S ≥ 75 / 75: met for "
            f"{goals_met(r['ds1_folds'][chosen]['adapted']['classes'], DS1_GOALS)}.",
            "",
            f"**DS2** (`{r['weights']}` adapted to each record, {len(ds2['records'])} records, "
            f"{ds2['seconds_per_record']:.1f} s per record to adapt on this CPU; goal ≤ "
            f"{SECONDS_GOAL:g} s):",
            "",
            table(
                columns,
                [
                    _row("not adapted to labels (as `predict` runs it)", ds2["global"]),
                    _row(f"adapted, first {ds2['minutes']:g} minutes labelled", ds2["adapted"]),
                ],
            ),
            "",
            f"Goals: S ≥ 92 / 90, V ≥ 98 / 96, accuracy ≥ {fmt_pct(DS2_ACCURACY_GOAL)} %: met "
            f"for {goals_met(ds2['adapted']['classes'], DS2_GOALS)} (accuracy "
            f"{fmt_pct(ds2['adapted']['accuracy'])} %).",
            "",
            "**Few labels** (EC57: only the first 5 minutes are grouped and labelled; the "
            "reference class of each picked beat stands in for the analyst). DS1 folds (each "
            "record adapted by its fold's model) first, then DS2 (the benchmark):",
            "",
            table(columns + ["s / record"], [*ds1_few_rows, *few_rows]),
            "",
            (
                f"Goal with 20 labels on DS2, S ≥ 85 / 80, V ≥ 97 / 95: met for "
                f"{goals_met(best20['adapted']['classes'], FEW_GOALS)} (the better of the two "
                "selections by S F1)."
                if best20
                else ""
            ),
            "",
            "Records whose errors changed (DS2, 5-minute protocol):",
            "",
            table(
                [
                    "record",
                    "scored",
                    "errors before",
                    "errors after",
                    "S",
                    "S found",
                    "V",
                    "V found",
                ],
                changed,
            ),
            "",
            f"Records with more errors after adaptation: {', '.join(worse) or 'none'}.",
            "",
        ]
    )
