"""The report's section on fine-tuning the relative recipe to a patient's labelled beats
(``results/relative_patient.json``, :mod:`ecg_utils.relative_patient`)."""

from __future__ import annotations

from ..evaluation import fmt_pct
from .common import accuracy_row, goal_rows, goals_met, se_ppv, table

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


SELECTIONS = {"medoids": "families' medoids", "active": "active review (rounds of 5)"}


def _few_row(prefix: str, key: str, m: dict) -> str:
    """A few-labels row: ``key`` is ``"<selection>_<count>"``."""
    selection, count = key.rsplit("_", 1)
    name = f"{prefix}{count} labels, {SELECTIONS[selection]}"
    return _row(name, m["adapted"], f" {m['seconds_per_record']:.1f} |")


def _curve(few: dict) -> str:
    """S and V Se / +P against the number of labels, one column per selection."""
    counts = sorted({int(k.rsplit("_", 1)[1]) for k in few})
    rows = []
    for k in counts:
        cells = []
        for selection in SELECTIONS:
            m = few.get(f"{selection}_{k}")
            c = m["adapted"]["classes"] if m else None
            cells += [se_ppv(c["S"]), se_ppv(c["V"])] if c else ["—", "—"]
        rows.append(f"| {k} | " + " | ".join(cells) + " |")
    columns = ["labels", "medoids: S", "medoids: V", "active: S", "active: V"]
    return table(columns, rows)


def section_relative_patient(results: dict) -> str:
    """Markdown for the relative recipe's patient-adaptive mode, or "" before it ran."""
    r = results.get("relative_patient")
    if not r:
        return ""
    chosen = r["chosen"]
    ds2 = r["ds2"]
    columns = ["model", "accuracy (%)", "S Se / +P (%)", "V Se / +P (%)"]
    setting_rows = [
        _row(
            f"**{name}** (chosen)" if name == chosen else name,
            m["adapted"],
            f" {m['score']:.3f} | {m['seconds_per_record']:.1f} |",
        )
        for name, m in r["ds1_folds"].items()
    ]
    ds1_global = r["ds1_folds"][chosen]["global"]
    few = r["few_labels"]
    few_rows = [_few_row("", k, m) for k, m in few.items() if k.endswith("_20")]
    ds1_few = r.get("ds1_few_labels") or {}
    ds1_few_rows = [_few_row("DS1 folds, ", k, m) for k, m in ds1_few.items()]
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
    params = ", ".join(f"{k}={v}" for k, v in r["fine_tune"].items())
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
            f"**Fine-tuning setting** chosen on DS1 record folds ({r['choice_rule']}); "
            "seconds are the mean time to adapt to one record on this 2-core CPU:",
            "",
            table(
                columns + ["score", "s / record"],
                [_row("fold models, no adaptation", ds1_global, " — | — |"), *setting_rows],
            ),
            "",
            f"Shipped in both models' metadata, `adapt`'s default: {params}. DS1 folds goal "
            f"S ≥ 75 / 75: met for "
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
            "reference class of each picked beat stands in for the analyst; the beats after "
            "them are scored). With 20 labels, DS1 folds (each record adapted by its fold's "
            "model) and DS2 (the benchmark); seconds cover picking the beats and every "
            "fine-tuning (active review: one per round of 5):",
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
            "The curves on DS2 (S and V Se / +P in %, by the number of labels per record):",
            "",
            _curve(few),
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


def patient_target_rows(results: dict) -> list[tuple[str, str, bool]]:
    """Targets rows of issue 19: the benchmark fine-tuned to each DS2 record's first
    5 minutes, the DS1 folds, 20 labels, and the time to adapt."""
    r = results.get("relative_patient")
    if not r:
        return []
    ds2 = r["ds2"]["adapted"]
    name = f"`{r['weights']}` fine-tuned on each DS2 record's first 5 minutes"
    rows = [*goal_rows(name, ds2, DS2_GOALS), accuracy_row(name, ds2, DS2_ACCURACY_GOAL)]
    rows += goal_rows(
        "the same on the DS1 folds (fold models)", r["ds1_folds"][r["chosen"]]["adapted"], DS1_GOALS
    )
    twenty = {k: m for k, m in r["few_labels"].items() if k.endswith("_20")}
    if twenty:
        key = max(twenty, key=lambda k: twenty[k]["adapted"]["classes"]["S"]["f1"])
        selection = SELECTIONS[key.rsplit("_", 1)[0]]
        rows += goal_rows(
            f"20 labels per DS2 record, {selection}", twenty[key]["adapted"], FEW_GOALS
        )
    seconds = r["ds2"]["seconds_per_record"]
    rows.append(
        (
            f"adapting to a 30-minute record takes ≤ {SECONDS_GOAL:g} s on 2 cores",
            f"{seconds:.1f} s",
            seconds <= SECONDS_GOAL,
        )
    )
    return rows
