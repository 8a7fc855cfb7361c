"""The report's "New patients" section: the benchmark and product models, their
operating points, the ablation of what was tried for new patients, and where they fail.

Like :mod:`ecg_utils.report`, every figure comes from the results files.
"""

from __future__ import annotations

from .evaluation import fmt_pct
from .experiments import BENCHMARK_ENSEMBLE, PRODUCT_ENSEMBLE, PRODUCT_TARGET, UNSEEN_PATIENT_TARGET

IP_GOALS = {"S": (0.80, 0.50), "V": (0.90, 0.90)}
"""Inter-patient goals: (sensitivity, positive predictivity) per class."""
IP_ACCURACY_GOAL = 0.95
TRAINING_GOAL_S = 15 * 60
"""Each shipped model for new patients trains from scratch (cross-validation, members
and final training together) in at most this many seconds on 2 CPU cores."""

LITERATURE = (
    # method, accuracy %, S Se / +P, V Se / +P, note marks; "—" where not found
    ("de Chazal et al. 2004, linear discriminants", "—", "75.9 / 38.5", "77.7 / 81.9", ""),
    ("Zhang et al. 2014, feature selection + SVM", "86.7–88.3", "79.1 / 36.0", "85.5 / 92.7", "†"),
    ("Mondéjar-Guerra et al. 2019, SVM ensemble", "94.5", "—", "—", "‡"),
    ("Mousavi & Afghah 2019, seq2seq", "—", "88.9 / 92.6", "99.9 / 99.5", "§"),
)
"""Published DS1 → DS2 figures, quoted (not recomputed); see :data:`LITERATURE_NOTES`."""
LITERATURE_NOTES = (
    "de Chazal et al.: the configuration chosen on DS1, as their abstract reports it.",
    "† Checked only against secondary sources (four classes, Q excluded); the accuracy "
    "range spans the figures quoted for it.",
    "‡ Accuracy from the authors' public comparison table; four classes (Q dropped), e and "
    "j beats counted as S; per-class figures not found.",
    "§ Not comparable: only N, S and V are kept; the published code pools each record set's "
    "beats class by class and cuts them into sequences of 10 beats, so test sequences are "
    "mostly of one class and not consecutive in time (a shortcut a sequence model can use); "
    "DS1 is oversampled with SMOTE, and DS2 is scored during training with no validation "
    "set.",
)

_OOF, _DS2 = (
    ("out-of-fold S Se / +P (%)", "out-of-fold V Se / +P (%)"),
    (
        "DS2 S Se / +P (%)",
        "DS2 V Se / +P (%)",
    ),
)
ABLATION_COLUMNS = [
    "lever",
    "pooled DS1 score",
    *_OOF,
    *_DS2,
    "DS2 accuracy (%)",
    "parameters",
    "time (min)",
]
SEED_COLUMNS = ["model", "members", "pooled score", *_OOF, *_DS2]
ADAPTATION_COLUMNS = [
    "adaptation",
    "pooled DS1 score",
    *_OOF,
    "pooled score, all 48 records",
    *_DS2,
    "s per record",
]


def _table(columns: list[str], rows: list[str], text_columns: int = 1) -> str:
    """A Markdown table: the first ``text_columns`` left-aligned, the rest right-aligned."""
    rule = "|" + "---|" * text_columns + "---:|" * (len(columns) - text_columns)
    return "\n".join(["| " + " | ".join(columns) + " |", rule, *rows])


def _cell(scores: dict) -> str:
    return f"{fmt_pct(scores['sensitivity'])} / {fmt_pct(scores['ppv'])}"


def _ci_cell(scores: dict, ci: dict | None, key: str) -> str:
    """``value [lo–hi]`` in percent for one class statistic with its interval."""
    text = fmt_pct(scores[key])
    if ci and ci.get(key) and None not in ci[key]:
        lo, hi = ci[key]
        text += f" [{fmt_pct(lo)}–{fmt_pct(hi)}]"
    return text


def _goal_text(c: dict) -> str:
    """Which of the inter-patient S and V goals a set of per-class figures meets."""
    return _goal_text_for(c, IP_GOALS)


def _shipped(results: dict, target: str) -> dict | None:
    name = (results.get("shipped") or {}).get(target)
    return results.get(name) if name else None


def _single(results: dict, benchmark: dict) -> dict:
    """The single run behind a benchmark (itself, or an ensemble's seed-0 member)."""
    if not benchmark.get("members"):
        return benchmark
    return results.get(benchmark["recipe_of"], benchmark)


def section_new_patients(results: dict) -> str:
    """The whole section, or "" when the new-patient models have no results yet."""
    bench = _shipped(results, UNSEEN_PATIENT_TARGET)
    if not bench or not (bench.get("cross_validation") or {}).get("operating_points"):
        return ""
    parts = [
        _intro(results, bench),
        _benchmark_table(results, bench),
        _product_table(results),
        _ablation(results, bench),
        _seeds(results),
        _adaptation(results),
        _curves(results),
        _failures(results, bench),
    ]
    return "\n".join(p for p in parts if p)


def _intro(results: dict, bench: dict) -> str:
    product = _shipped(results, PRODUCT_TARGET)
    product_text = (
        f"**Product** (`ecg_utils.DEFAULT_WEIGHTS`, `{PRODUCT_TARGET}`): {product['title']}. "
        "The same recipe, fixed by the benchmark's choice before any DS2 figure was read, "
        "trained on all 48 records (the paced ones teach Q); `predict` and "
        "`classify_record` use it. Its figures for new patients come from its own "
        "cross-validation over folds of whole records of all 48, with bootstrap intervals "
        "over records: it has no test set, since every record trained it."
        if product
        else "The product model (all 48 records) has no results yet."
    )
    if product and bench.get("members") and not product.get("members"):
        product_text += (
            f" The benchmark averages {bench['k']} seeds; the product's own ensemble of "
            f"{bench['k']} seeds on all 48 records was not trained in this study (each "
            f"seed costs {_minutes(product):.0f} min on 2 cores), so the product is its "
            "seed-0 model alone."
        )
    return f"""## New patients

Two models for two jobs:

- **Benchmark** (`ecg_utils.BENCHMARK_WEIGHTS`, `{UNSEEN_PATIENT_TARGET}`): {bench["title"]}.
  Trained on DS1 only and chosen by cross-validation over folds of whole DS1 records;
  its DS1 → DS2 figures are the ones to set beside the literature.
- {product_text}

Each model stores two operating points (`predict --sensitivity balanced|high`): *balanced*
maximises the mean F1 of N, S and V; *high* finds as many S beats as it can with S +P ≥
50 % and as many V beats as it can with V +P ≥ 90 %. Both are chosen on pooled
out-of-fold predictions, never on DS2.
"""


def _benchmark_table(results: dict, bench: dict) -> str:
    rows = []
    seed = results.get("seed_ip")
    if seed and seed.get("test"):
        m = seed["test"]
        rows.append(
            f"| Seed recipe (ECG1DCNN) | {fmt_pct(m['accuracy'])} | {_cell(m['classes']['S'])} "
            f"| {_cell(m['classes']['V'])} | {_goal_text(m['classes'])} |"
        )
    adapted = bench.get("adaptation")
    how = f" + {', '.join(adapted)} adaptation" if adapted else ""
    points = [("balanced" + how, "test"), ("high" + how, "test_high_sensitivity")]
    if adapted:
        points += [
            ("balanced, no adaptation", "test_without_adaptation"),
            ("high, no adaptation", "test_high_without_adaptation"),
        ]
    for label, key in points:
        m = bench.get(key)
        if m:
            c = m["classes"]
            rows.append(
                f"| **ours, {label}**: {bench['title']} | {fmt_pct(m['accuracy'])} "
                f"| {_cell(c['S'])} | {_cell(c['V'])} | {_goal_text(c)} |"
            )
    for method, acc, s_cell, v_cell, mark in LITERATURE:
        rows.append(f"| {method}{mark} | {acc} | {s_cell} | {v_cell} | |")
    goals = "; ".join(
        f"{k} Se ≥ {100 * se:.0f} % with +P ≥ {100 * ppv:.0f} %"
        for k, (se, ppv) in IP_GOALS.items()
    )
    return f"""### Benchmark: DS1 → DS2

{_table(["model", "accuracy (%)", "S Se / +P (%)", "V Se / +P (%)", "goals met"], rows)}

Goals: {goals}; accuracy ≥ {100 * IP_ACCURACY_GOAL:.0f} %. Published rows are quoted, not
recomputed; their classes, features and ways of choosing settings differ from ours:

{chr(10).join("- " + note for note in LITERATURE_NOTES)}
"""


def _product_table(results: dict) -> str:
    product = _shipped(results, PRODUCT_TARGET)
    if not product:
        return ""
    cv = product["cross_validation"]
    rows = []
    kept = kept_product_out_of_fold(results)
    for label, m, ci in (
        ("balanced", cv["out_of_fold"], cv.get("ci")),
        ("high", (cv.get("high") or {}), (cv.get("high") or {}).get("ci")),
        *([(f"balanced + {kept[0]} adaptation", kept[1], None)] if kept else []),
    ):
        if not m:
            continue
        cells = []
        for k in "SV":
            kci = (ci or {}).get("classes", {}).get(k)
            cells.append(
                f"{_ci_cell(m['classes'][k], kci, 'sensitivity')} / "
                f"{_ci_cell(m['classes'][k], kci, 'ppv')}"
            )
        acc = _ci_cell(m, ci, "accuracy")
        rows.append(f"| {label} | {acc} | {cells[0]} | {cells[1]} |")
    n_folds = len(cv["folds"])
    n_boot = (cv.get("ci") or {}).get("n_boot", 0)
    return f"""### Product: estimate for new patients

Out-of-fold over {n_folds} folds of whole records of all 48 (every record judged once by a
model that never saw it); 95 % intervals from {n_boot} bootstrap resamples of records.

{_table(["operating point", "accuracy (%)", "S Se / +P (%)", "V Se / +P (%)"], rows)}
"""


def kept_product_out_of_fold(results: dict) -> tuple[str, dict] | None:
    """The kept adaptation's name and the single product model's out-of-fold metrics
    with it (from the adaptation ablation), or None when none was kept."""
    a = results.get("adaptation") or {}
    if a.get("kept", "none") == "none":
        return None
    row = next((v for v in a["variants"] if v["variant"] == a["kept"]), None)
    if not row or not row.get("product"):
        return None
    return a["kept"], row["product"]["out_of_fold"]


def _minutes(r: dict) -> float:
    cv = r.get("cross_validation") or {}
    return (r["train_seconds"] + (cv.get("seconds") or 0.0)) / 60


def _ablation(results: dict, bench: dict) -> str:
    """What each lever for new patients gave: out-of-fold on DS1, then DS2."""
    single = _single(results, bench)
    rows = [_ablation_row(f"best single candidate: {single['title']}", single, single["test"])]
    for name, label in WIDE_ABLATION:
        r = results.get(name)
        if name == single.get("name"):  # already the first row
            continue
        if r and r.get("test") and (r.get("cross_validation") or {}).get("out_of_fold"):
            rows.append(_ablation_row(label, r, r["test"]))
    ens = results.get(BENCHMARK_ENSEMBLE)
    if ens and ens.get("test"):
        rows.append(_ablation_row(f"+ average of seeds (k = {ens['k']} chosen)", ens, ens["test"]))
    if bench.get("test_high_sensitivity"):
        rows.append(
            _ablation_row(
                "+ high-sensitivity operating point",
                bench,
                bench["test_high_sensitivity"],
                bench["cross_validation"]["high"],
            )
        )
    seq = results.get("sequence")
    if seq:
        c, t = seq["out_of_fold"]["classes"], seq["test"]["classes"]
        rows.append(
            f"| sequence head over ±14 beats, stacked on {seq['benchmark']} | {seq['score']:.3f} "
            f"| {_cell(c['S'])} | {_cell(c['V'])} | {_cell(t['S'])} | {_cell(t['V'])} "
            f"| {fmt_pct(seq['test']['accuracy'])} | {seq['n_parameters']:,} "
            f"| {seq['seconds'] / 60:.1f} |"
        )
    if not rows:
        return ""
    note = (
        "The input ablation adds the wide window (0.9 s before to 0.39 s after the R "
        "peak, scaled per recording) to the recipe that was shipped when it was built; "
        "the seeds, the operating point and the sequence head build on the best single "
        f"candidate ({single['title']}). "
    )
    if seq:
        verdict = "kept" if seq["helps"] else "not kept"
        note += (
            f"The sequence head (a temporal convolution over the beat model's out-of-fold "
            f"log-probabilities and rhythm features of the neighbouring beats, offsets "
            f"chosen on its own out-of-fold output) scores {seq['score']:.3f} against the "
            f"beat model's {seq['beat_model_score']:.3f} on the same folds: {verdict} (a "
            f"head must gain {seq['keep_gain']:.3f}). Its inputs on the training folds "
            "came from fold models that had seen the held-out fold, so its out-of-fold "
            "figures are if anything optimistic. "
        )
    return f"""### Ablation: what each lever gave

Pooled out-of-fold figures on DS1 record folds choose; DS2 figures are read after the
choice. Time: cross-validation plus final training, summed over members for an ensemble.
{note}

{_table(ABLATION_COLUMNS, rows)}
"""


WIDE_ABLATION = (
    ("plain_ip", "input: RR + template features (recipe of the wide-window run)"),
    ("wide_ip", "input: + wide window around the R peak (P wave, previous beat)"),
)
"""The input ablation: the same recipe without and with the wide window."""


def _ablation_row(label: str, r: dict, test: dict, oof: dict | None = None) -> str:
    cv = r["cross_validation"]
    oof = oof or cv["out_of_fold"]
    c, t = oof["classes"], test["classes"]
    return (
        f"| {label} | {cv['score']:.3f} | {_cell(c['S'])} | {_cell(c['V'])} | {_cell(t['S'])} "
        f"| {_cell(t['V'])} | {fmt_pct(test['accuracy'])} | {r['n_parameters']:,} "
        f"| {_minutes(r):.1f} |"
    )


def _seeds(results: dict) -> str:
    """Single seeds beside their average (the ensemble)."""
    lines = []
    for ens_name in (BENCHMARK_ENSEMBLE, PRODUCT_ENSEMBLE):
        ens = results.get(ens_name)
        if not ens:
            continue
        for name in ens["members"]:
            r = results.get(name)
            if r:
                lines.append(_seed_row(r, f"seed {r['config']['seed']}"))
        lines.append(_seed_row(ens, f"average of {ens['k']}"))
    if not lines:
        return ""
    return f"""### Seeds and their average

Members share their record folds, so their out-of-fold probabilities average as their
predictions will; the number of members is the smallest within 0.002 of the best pooled
score. Each member costs one more forward pass per beat at inference.

{_table(SEED_COLUMNS, lines, text_columns=2)}
"""


def _seed_row(r: dict, label: str) -> str:
    cv = r["cross_validation"]
    c = cv["out_of_fold"]["classes"]
    test = r.get("test")
    ds2 = f"{_cell(test['classes']['S'])} | {_cell(test['classes']['V'])}" if test else "— | —"
    base = r["title"].split(", seed")[0]
    return f"| {base} | {label} | {cv['score']:.3f} | {_cell(c['S'])} | {_cell(c['V'])} | {ds2} |"


def _adaptation(results: dict) -> str:
    a = results.get("adaptation")
    if not a:
        return ""
    rows = []
    for v in a["variants"]:
        b = v["benchmark"]
        c, t = b["out_of_fold"]["classes"], b["test"]["classes"]
        product = v.get("product")
        product_cell = f"{product['score']:.3f}" if product else "—"
        rows.append(
            f"| {v['variant']} | {b['score']:.3f} | {_cell(c['S'])} | {_cell(c['V'])} "
            f"| {product_cell} | {_cell(t['S'])} | {_cell(t['V'])} "
            f"| {b['seconds_per_record']:.1f} |"
        )
    kept = a["kept"]
    verdict = (
        "no adaptation beats none on DS1 folds by the margin, so none is used"
        if kept == "none"
        else f"`{kept}` is kept: it beats no adaptation on DS1 folds by the margin, and the "
        "shipped models use it (`predict --no-adaptation` or `classify_record(..., "
        "adaptation=False)` turns it off)"
    )
    return f"""### Adapting to the recording without labels

Each fold model of the best single benchmark candidate ({a["benchmark"]}) and of the single
product model adapts to each held-out record on its own, with no label; the pooled score
(mean F1 of N, S, V) decides, with a margin of {a["keep_gain"]:.3f}. DS2 figures use the
benchmark's final model, read after the choice: {verdict}.

{_table(ADAPTATION_COLUMNS, rows)}

`batchnorm` recomputes BatchNorm statistics on the record; `self_training` fine-tunes the
classifier head on the record's beats predicted with probability ≥ 0.95; `clusters` averages
each beat's probabilities with those of its family (k-means on shape and RR ratios).
"""


def _curves(results: dict) -> str:
    figs = [
        f"![{name}: S and V sensitivity against +P](figures/operating_{name}.png)"
        for target in (UNSEEN_PATIENT_TARGET, PRODUCT_TARGET)
        if (name := (results.get("shipped") or {}).get(target))
        and ((results.get(name) or {}).get("cross_validation") or {}).get("curves")
    ]
    if not figs:
        return ""
    return (
        "### Sensitivity against +P\n\nEach class's offset swept from −1 to +6 with the "
        "others at the balanced point; the dotted line is the +P floor of the high "
        "operating point.\n\n" + "\n".join(figs) + "\n"
    )


def _failures(results: dict, bench: dict) -> str:
    lines = []
    for title, per in (
        ("Benchmark on DS2", (bench.get("test") or {}).get("per_record")),
        (
            "Product, out-of-fold over all 48 records",
            ((_shipped(results, PRODUCT_TARGET) or {}).get("cross_validation") or {}).get(
                "per_record"
            ),
        ),
    ):
        if not per:
            continue
        worst = sorted(per.items(), key=lambda kv: -kv[1]["errors"])[:6]
        text = "; ".join(
            f"{rec}: {v['errors']:,} of {v['beats']:,}, mostly {v['top_confusion']}"
            for rec, v in worst
        )
        lines.append(f"- {title}: {text}.")
    if not lines:
        return ""
    return "### Where they fail, by record\n\n" + "\n".join(lines) + "\n"


def new_patient_training_rows(results: dict) -> list[tuple[str, str, bool]]:
    """Targets rows: each shipped new-patient model's time from scratch on 2 cores."""
    rows = []
    for target in (UNSEEN_PATIENT_TARGET, PRODUCT_TARGET):
        r = _shipped(results, target)
        if not r:
            continue
        minutes, cv = _minutes(r), r.get("cross_validation") or {}
        members = f", {r['k']} seeds" if r.get("members") else ""
        parts = (
            f" ({(cv.get('seconds') or 0.0) / 60:.1f} cross-validation + "
            f"{r['train_seconds'] / 60:.1f} final training{members})"
        )
        rows.append(
            (
                f"`{target}` trains from scratch in ≤ {TRAINING_GOAL_S // 60} min on 2 cores",
                f"{minutes:.1f} min{parts}",
                minutes * 60 <= TRAINING_GOAL_S,
            )
        )
    return rows


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
                f"{_ci_cell(m['classes'][k], kci, 'sensitivity')} / "
                f"{_ci_cell(m['classes'][k], kci, 'ppv')}"
            )
        rows.append(f"| {label} | {_ci_cell(m, ci, 'accuracy')} | {cells[0]} | {cells[1]} |")
    goals = "; ".join(
        f"{k} Se ≥ {100 * se:.0f} % with +P ≥ {100 * ppv:.0f} %"
        for k, (se, ppv) in PATIENT_GOALS.items()
    )
    met = _goal_text_for(r["adapted"]["classes"], PATIENT_GOALS)
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

{_table(["model", "accuracy (%)", "S Se / +P (%)", "V Se / +P (%)"], rows)}

95 % intervals from {n_boot} bootstrap resamples of records. Goals: {goals}; met: {met}.
Largest gains: {best or "none"}. {worse_text}
{_few_labels(r)}"""


def _goal_text_for(c: dict, goals: dict) -> str:
    """Which of ``goals`` (class -> (Se, +P)) a set of per-class figures meets."""
    met = [k for k, (se, ppv) in goals.items() if c[k]["sensitivity"] >= se and c[k]["ppv"] >= ppv]
    return ", ".join(met) if met else "none"


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
            f"| {k} | {fmt_pct(m['accuracy'])} | {_cell(m['classes']['S'])} "
            f"| {_cell(m['classes']['V'])} | {_cell(g['classes']['S'])} "
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
            f"{_cell(c)} %, {'met' if ok else 'not met'}."
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

{_table(columns, rows)}
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
