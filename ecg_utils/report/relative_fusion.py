"""The report's section on networks and stacked fusions for new patients
(``results/relative.json`` ``"fusion"``, :mod:`ecg_utils.relative_fusion`)."""

from __future__ import annotations

from ..evaluation import fmt_pct
from .common import se_ppv, table

COLUMNS = [
    "candidate",
    "DS1 folds S / V Se / +P (%)",
    "svdb-dev S / V Se / +P (%)",
    "score",
    "s to train",
    "DS2 acc. (%)",
    "DS2 S / V (%)",
]


def _cells(r: dict) -> str:
    return (
        f"{se_ppv(r['ds1_folds']['classes']['S'])}, {se_ppv(r['ds1_folds']['classes']['V'])} | "
        f"{se_ppv(r['svdb_dev']['classes']['S'])}, {se_ppv(r['svdb_dev']['classes']['V'])} | "
        f"{r['score']:.3f}"
    )


def _ds2(r: dict) -> str:
    d = r["ds2"]
    return f"{fmt_pct(d['accuracy'])} | {se_ppv(d['classes']['S'])}, {se_ppv(d['classes']['V'])}"


def _svdb_training(rel: dict) -> list[str]:
    check = rel.get("svdb_training")
    if not check:
        return []
    names = {"without": "MIT-BIH only (the product)", "with": "MIT-BIH + svdb-dev"}
    rows = [
        f"| {names[k]} | {se_ppv(r['mitdb_out_of_fold']['classes']['S'])}, "
        f"{se_ppv(r['mitdb_out_of_fold']['classes']['V'])} | "
        f"{se_ppv(r['svdb_dev_out_of_fold']['classes']['S'])}, "
        f"{se_ppv(r['svdb_dev_out_of_fold']['classes']['V'])} | {r['score']:.3f} |"
        for k, r in check["rows"].items()
    ]
    verdict = (
        f"It gains {check['gain']:+.3f} (≥ {check['keep_gain']}): by the rule the product "
        "may train on svdb-dev, at the price of the validation database the recipes, "
        "adaptations and operating points are chosen on. Not taken in this run: the "
        "product's figures as `predict` runs it (adaptation, `high` point) would have to be "
        "chosen and measured again on out-of-fold predictions of both databases; the shipped "
        "product is trained on MIT-BIH alone."
        if check["trains_on_svdb"]
        else f"It changes the score by {check['gain']:+.3f} (a gain of ≥ {check['keep_gain']} "
        "was needed): the product trains on MIT-BIH alone."
    )
    return [
        "### Training on svdb-dev too? (leave records out of both databases)",
        "",
        "The chosen recipe trained with and without svdb-dev, each record judged by a model "
        "that never saw it: MIT-BIH by the product's record folds over the 48 records (with "
        "all of svdb-dev added to training, or not), svdb-dev by "
        f"{len(check['svdb_folds'])} record folds of its own (trained on all 48 MIT-BIH "
        "records with, or without, its other folds; without = the product itself). "
        f"{check['seconds'] / 60:.0f} min on this CPU.",
        "",
        table(
            [
                "trained on",
                "MIT-BIH out-of-fold S / V Se / +P (%)",
                "svdb-dev out-of-fold S / V Se / +P (%)",
                "score",
            ],
            rows,
        ),
        "",
        verdict,
        "",
    ]


MACN_LIKE = "macn_like_ip"
"""The network study's MACN-like entry (:mod:`ecg_utils.experiments`)."""


def _macn_like(results: dict, ref: dict) -> list[str]:
    """The MACN-like network beside the chosen recipe on the DS1 folds (the same four
    folds), and its DS2 figures; "" before the network study trained it."""
    r = results.get(MACN_LIKE)
    cv = (r or {}).get("cross_validation") or {}
    if not r or "test" not in r or not cv.get("out_of_fold"):
        return [
            "Not measured in these results: the MACN-like network (`macn_like_ip`, "
            "`python -m ecg_utils run --only macn_like_ip`).",
            "",
        ]
    oof, test, mine = cv["out_of_fold"]["classes"], r["test"], ref["ds1_folds"]["classes"]
    seconds = cv.get("seconds", 0.0) + r["train_seconds"]
    return [
        f"**MACN-like network** (`{MACN_LIKE}`, from the network study: {r['title']}; "
        f"MACN's ±0.7 s centred window and time-stretch are not built, the nearest is this "
        f"wide window, 0.9 s before to 0.39 s after the R peak, with amplitude, baseline, "
        f"noise and time-shift augmentation; {r['n_parameters']:,} parameters, "
        f"{seconds / 60:.0f} min for its {len(cv['folds'])} DS1 folds and final training). "
        "It is judged on the DS1 folds alone (a network on the beat's absolute shape, not "
        "scored on svdb-dev by the study), so it cannot enter the choice rule: out-of-fold "
        f"S {se_ppv(oof['S'])}, V {se_ppv(oof['V'])} against the chosen recipe's "
        f"S {se_ppv(mine['S'])}, V {se_ppv(mine['V'])}; on DS2 (with its class offsets "
        f"chosen on those folds) accuracy {fmt_pct(test['accuracy'])} %, "
        f"S {se_ppv(test['classes']['S'])}, V {se_ppv(test['classes']['V'])}. MACN's quoted "
        "figures are in the benchmark table above.",
        "",
    ]


def section_relative_fusion(results: dict) -> str:
    """Markdown for the networks and fusions judged after the relative choice, or ""."""
    rel = results.get("relative") or {}
    fusion = rel.get("fusion")
    if not fusion:
        return ""
    ref = rel["candidates"][fusion["reference"]["name"]]
    rows = [
        f"| {fusion['reference']['name']} (the chosen recipe, shipped) | {_cells(ref)} | "
        f"{ref['seconds']:.0f} | {_ds2(ref)} |"
    ]
    rows += [
        f"| {name}: {r['title']}{' (**post hoc** for DS2)' if r.get('post_hoc') else ''} | "
        f"{_cells(r)} | {r['seconds']:.0f} | {_ds2(r)} |"
        for name, r in fusion["rows"].items()
    ]
    best = fusion["best"]
    post_hoc = " (designed after DS2 figures of the stacks had been read)"
    verdict = (
        f"**{best}**{post_hoc if fusion['rows'][best].get('post_hoc') else ''} beats the "
        f"chosen recipe's score ({fusion['reference']['score']:.3f}) by ≥ "
        f"{fusion['keep_gain']} ({fusion['rows'][best]['score']:.3f}) and would be the "
        "recipe to ship. Shipping a fusion is not built: the unsupervised adaptation, the "
        "operating points and the fine-tuning with replay were chosen on the trees and would "
        "have to be chosen again on it, so the shipped models stay the chosen trees."
        if fusion["replaces_chosen"]
        else f"None beats the chosen recipe's score ({fusion['reference']['score']:.3f}) by "
        f"≥ {fusion['keep_gain']} (best: {best}, {fusion['rows'][best]['score']:.3f}): the "
        "shipped models stay the chosen trees."
    )
    return "\n".join(
        [
            "### Networks and fusions for new patients",
            "",
            "Judged after the recipe was chosen, by the same rule on the same DS1 record folds "
            "and svdb-dev, before their DS2 figures were computed (`ecg_utils.relative_fusion`)."
            " The relative CNN (`ecg_utils.relative_network`) reads each lead's own and "
            "relative beat (22 samples each) as the channels of two 1-D convolutions, max-"
            "pooled, and joins the rhythm and per-lead scalar columns in a small MLP; class-"
            "weighted cross-entropy, AdamW, one-cycle schedule, seeded; a two-lead / one-lead "
            "pair like every candidate. A stack joins the chosen trees with other members: "
            "a class-weighted logistic regression (C = "
            f"{fusion['stack_params']['C']:g}) on their log-probabilities, fitted per DS1 "
            "fold on the other folds' out-of-fold rows (slightly optimistic: those rows' "
            "members were trained with the held-out fold) and, for svdb-dev and DS2, on all "
            "DS1 out-of-fold rows. A mean averages the members' probabilities and fits "
            "nothing; the two means were added after the stacks' DS2 figures had been read "
            "(their class-weighted stacker over-called S and V on the DS1 folds and svdb-dev "
            "as well), so their DS2 columns are **post hoc**. Seconds: training every fold "
            "model and the DS1 model on this 2-core CPU (a fusion's include its members').",
            "",
            table(COLUMNS, rows),
            "",
            verdict,
            "",
            *_macn_like(results, ref),
            "![The benchmark's S and V sensitivity against +P](figures/relative_operating.png)",
            "",
            "Each class's logit offset swept from −1 to +6 with the others at the balanced "
            "point (`ecg_utils.operating.sensitivity_curve`), for the shipped benchmark "
            f"(`{rel['shipped']['benchmark']['weights']}`, no adaptation): on svdb-dev, where "
            "operating points may be chosen, and on DS2, read after every choice; the dotted "
            "line is the +P floor of its `high` point.",
            "",
            *_svdb_training(rel),
        ]
    )
