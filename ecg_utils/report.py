"""``report.md`` generated from the results files: nothing in it is typed by hand.

Each section is a function of the loaded results that returns Markdown, or an empty
string when the results it needs are missing (a partial run still gives a report).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ._io import EcgError, write_text_atomic
from .beats import CLASS_NAMES
from .device import device_phrase
from .evaluation import fmt_pct, metrics_table_markdown
from .experiments import (
    KAGGLE_BEST_TARGET,
    KAGGLE_TARGET,
    PRODUCT_TARGET,
    UNSEEN_PATIENT_TARGET,
    default_experiments,
)
from .report_archive import readme_archive_line, section_archive_speed
from .report_kaggle import KAGGLE_GOALS, STRONG, kaggle_target_rows, section_strong_model
from .report_new_patients import (
    IP_GOALS,
    kept_product_out_of_fold,
    new_patient_training_rows,
    section_new_patients,
    section_patient_specific,
)
from .splits import PROTOCOLS
from .study import validation_score

TARGETS = {
    "kaggle": f"the strongest model under 1 M parameters (`{KAGGLE_BEST_TARGET}`): "
    f"macro-F1 ≥ {KAGGLE_GOALS[STRONG]['macro_f1']:.2f} and accuracy ≥ "
    f"{100 * KAGGLE_GOALS[STRONG]['accuracy']:.1f} %; `{KAGGLE_TARGET}` (ECG1DCNN, distilled "
    f"when that wins on validation): macro-F1 ≥ {KAGGLE_GOALS['ecg_cnn']['macro_f1']:.3f}",
    "inter-patient": "S Se ≥ 80 % with +P ≥ 50 %; V Se ≥ 90 % with +P ≥ 90 %",
}


def load_results(results_dir: str | Path) -> dict[str, dict]:
    """Every ``*.json`` in ``results_dir``, keyed by file stem.

    Raises
    ------
    EcgError
        When the folder does not exist, holds no ``*.json`` file, or a file is not a
        JSON object (the message names it).
    """
    folder = Path(results_dir)
    if not folder.is_dir():
        raise EcgError("results folder not found; run 'python -m ecg_utils run' first", folder)
    out = {}
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EcgError(f"not a valid results file: {exc}", path) from None
        if not isinstance(data, dict):
            raise EcgError("not a results file (expected a JSON object)", path)
        out[path.stem] = data
    if not out:
        raise EcgError("no results files (*.json); run 'python -m ecg_utils run' first", folder)
    return out


def se_ppv(scores: dict) -> str:
    """``"Se / +P"`` in percent of one class's ``{sensitivity, ppv}`` (a table cell)."""
    return f"{fmt_pct(scores['sensitivity'])} / {fmt_pct(scores['ppv'])}"


def experiments(results: dict, protocol: str, repeats: bool = False) -> list[dict]:
    """Finished experiments of a protocol, in the order the study runs them; only the
    seed repeats when ``repeats`` is True, none of them otherwise. Ensembles and their
    members are left to the New patients section."""

    order = {e.name: i for i, e in enumerate(default_experiments())}
    found = [
        r
        for r in results.values()
        if isinstance(r, dict)
        and r.get("protocol") == protocol
        and "test" in r
        and bool(r.get("repeat_of")) == repeats
        and not r.get("member_of")  # ensembles and their members: the New patients section
        and not r.get("members")
    ]
    return sorted(found, key=lambda r: (order.get(r.get("name"), len(order)), r.get("name", "")))


def shipped_name(results: dict, target: str) -> str | None:
    """Name of the experiment shipped as ``target`` (chosen on validation)."""
    return (results.get("shipped") or {}).get(target)


def section_dataset(results: dict) -> str:
    ds = results.get("dataset")
    if not ds:
        return ""
    ref = ds["kaggle_reference_counts"]
    rows = "\n".join(
        f"| {c} | {ds['counts'][c]:,} | {ref[c]:,} | {ds['counts'][c] - ref[c]:+,} |"
        for c in CLASS_NAMES
    )
    total_ref = sum(ref.values())
    kaggle_vs_ours = _fewer_or_more(ds["n_beats"] - total_ref)
    notes = "; ".join(f"{k}: {v}" for k, v in (ds.get("lead_notes") or {}).items()) or "none"
    return f"""## Data

MIT-BIH Arrhythmia Database 1.0.0 (Moody & Mark 2001; PhysioNet, Goldberger et al. 2000),
{len(ds["records"] or [])} records, ODC-By 1.0. Beats segmented as in the Kaggle set of
Kachuee et al. (2018), reproduced from its published rows: every third 360 Hz sample (120 Hz)
from each annotated R peak, 1.2 × the next RR interval, min-max scaled per beat, zero-padded
to 187 samples (the paper says 125 Hz and 10 s normalisation windows; the rows say
otherwise); AAMI classes from the annotation symbols.

| class | our beats | Kaggle set | difference |
|---|---:|---:|---:|
{rows}
| all | {ds["n_beats"]:,} | {total_ref:,} | {ds["n_beats"] - total_ref:+,} |

Every annotated beat of the AAMI classes is kept except each record's last one, whose
segment length would need the next RR interval; Kaggle's set drops the same beats, and
{kaggle_vs_ours}. Lead MLII everywhere except: {notes}.
"""


def _fewer_or_more(diff: int) -> str:
    """How Kaggle's beat count compares with ours (``diff`` = ours - Kaggle's)."""
    if diff == 0:
        return "the counts agree class by class"
    return f"Kaggle's set has {abs(diff):,} {'fewer' if diff > 0 else 'more'} beats than ours"


def section_targets(results: dict) -> str:
    """The goals beside what the shipped models measure: new patients first, then the
    training times and the Kaggle protocol's strong and distilled models."""
    rows = []
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
                        f"inter-patient, benchmark ({point}): {k} Se ≥ {se:.0%}, +P ≥ {ppv:.0%}",
                        f"{se_ppv(c[k])} %",
                        c[k]["sensitivity"] >= se and c[k]["ppv"] >= ppv,
                    )
                )
            rows.append(
                (
                    f"inter-patient, benchmark ({point}): accuracy ≥ 95 %",
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

The goals that come first are for new patients. The shipped models were chosen on
validation data (DS1 record folds); the benchmark's DS2 figures against the goals, at both
operating points, then the training-time goals and the Kaggle-protocol goals (test side):

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


def _protocol_section(results: dict, protocol: str, heading: str, intro: str) -> str:
    exps = experiments(results, protocol)
    if not exps:
        return ""
    rows = {e["title"]: e["test"] for e in exps}
    cis = {e["title"]: e["test"]["ci"] for e in exps if e["test"].get("ci")}
    ci = next((c for c in cis.values() if c), None)
    ci_text = (
        f"95 % bootstrap intervals in brackets ({ci['n_boot']} resamples of\n{ci['unit']}s). "
        if ci
        else ""
    )
    table = metrics_table_markdown(rows, cis)
    details = "\n".join(
        f"| {e['title']} | {e['n_parameters']:,} | {e['best_epoch']} / {len(e['history'])} | "
        f"{e['train_seconds']:.0f} | {e['test']['n_beats']:,} |"
        for e in exps
    )
    figs = "\n".join(
        f"![{e['title']}: confusion matrices](figures/confusion_{e['name']}.png)\n"
        f"![{e['title']}: learning curves](figures/curves_{e['name']}.png)"
        for e in exps
    )
    return f"""## {heading}

{intro}

Target: {TARGETS[protocol]}.

{table}

{ci_text}Se = sensitivity (recall),
+P = positive predictivity (precision).

| model | parameters | best / trained epochs | training time (s) | test beats |
|---|---:|---:|---:|---:|
{details}

{figs}
"""


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


def section_seed_spread(results: dict) -> str:
    """How far test figures move when only the seed changes, beside how far they move
    between different candidates."""
    lines = [
        row
        for protocol in ("kaggle", "inter-patient")
        for runs in _with_seeds(results, protocol)
        for row in _seed_rows(runs)
    ]
    if not lines:
        return ""
    head = [
        "## How far results move with the seed alone",
        "",
        "Some recipes trained again with other seeds and nothing else changed (a seed "
        "draws the initial weights, the batch order and, for cross-validated recipes, the "
        "DS1 folds). Repeats are never shipped or compared for the choice; they show how "
        "much of a difference between two models a single run can support.",
        "",
        "| model | seed | validation score | test accuracy (%) | test macro-F1 "
        "| S Se / +P (%) | V Se / +P (%) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    return "\n".join(head + lines + ["", _seed_versus_candidates(results)]) + "\n"


def _with_seeds(results: dict, protocol: str) -> list[list[dict]]:
    """Each repeated experiment of a protocol followed by its seed repeats."""
    repeats = experiments(results, protocol, repeats=True)
    groups = [
        [base] + [r for r in repeats if r["repeat_of"] == base["name"]]
        for base in experiments(results, protocol)
    ]
    return [runs for runs in groups if len(runs) > 1]


def _seed_rows(runs: list[dict]) -> list[str]:
    rows = []
    for r in runs:
        m, c = r["test"], r["test"]["classes"]
        pair = {k: se_ppv(c[k]) for k in "SV"}
        rows.append(
            f"| {runs[0]['title']} | {r['config']['seed']} | {validation_score(r):.3f} "
            f"| {100 * m['accuracy']:.2f} | {m['macro_f1']:.3f} | {pair['S']} | {pair['V']} |"
        )
    return rows


def _span(values: list[float], scale: float = 100.0, digits: int = 1) -> str:
    return f"{scale * min(values):.{digits}f}–{scale * max(values):.{digits}f}"


def _spread_row(label: str, runs: list[dict]) -> str:
    def test(k, key):
        return [r["test"]["classes"][k][key] for r in runs]

    return (
        f"| {label} | {len(runs)} | {_span([validation_score(r) for r in runs], 1, 3)} "
        f"| {_span(test('S', 'sensitivity'))} | {_span(test('S', 'ppv'))} "
        f"| {_span(test('V', 'sensitivity'))} | {_span(test('V', 'ppv'))} |"
    )


def _seed_versus_candidates(results: dict) -> str:
    """Spread over the seeds of one recipe against spread over the candidates, and whether
    the pooled score separates the shipped candidate from the runner-up by more."""
    candidates = [r for r in experiments(results, "inter-patient") if r.get("cross_validation")]
    rows, spreads = [], []
    for runs in _with_seeds(results, "inter-patient"):
        if runs[0].get("cross_validation"):
            rows.append(_spread_row(f"{runs[0]['title']}, seeds", runs))
            scores = [validation_score(r) for r in runs]
            spreads.append(max(scores) - min(scores))
    if not rows or len(candidates) < 2:
        return ""
    rows.append(_spread_row("candidates for unseen patients, seed 0", candidates))
    ranked = sorted((validation_score(r) for r in candidates), reverse=True)
    lead, noise = ranked[0] - ranked[1], max(spreads)
    verdict = (
        "which of the leading candidates wins is down to the seed"
        if lead < noise
        else "the lead is larger than the seed alone moves the score"
    )
    return "\n".join(
        [
            "Spread (lowest–highest) over the seeds of one recipe, and over the candidates:",
            "",
            "| runs | n | pooled DS1 score | DS2 S Se (%) | DS2 S +P (%) | DS2 V Se (%) "
            "| DS2 V +P (%) |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"The best pooled score leads the runner-up by {lead:.3f}; the seed alone moves "
            f"one recipe's pooled score by up to {noise:.3f}: {verdict}.",
        ]
    )


def section_feature_screen(results: dict) -> str:
    """More inputs for unseen patients, screened on DS1 folds (``bench/feature_screen.py``)."""
    r = results.get("feature_screen")
    if not r:
        return ""
    rows = "\n".join(
        f"| {name} | {v['nsv_f1']:.3f} | {se_ppv(v['S'])} | {se_ppv(v['V'])} |"
        for name, v in r["sets"].items()
    )
    return f"""## Screening more inputs for unseen patients (`bench/feature_screen.py`)

Training a network candidate takes minutes, so inputs it does not have yet were first \
screened with a fast stand-in: gradient-boosted trees ({r["model"]}), judged out-of-fold \
on DS1 over {len(r["folds"])} folds of whole records, never on DS2. Besides the model's \
feature sets: the second lead (template features, as on the first lead) and the P wave \
(the stretch {r["p_wave_seconds"][0]:.2f}–{r["p_wave_seconds"][1]:.2f} s before each R \
peak against the record's median stretch), on one or both leads.

| inputs | mean F1 of N, S, V | S Se / +P (%) | V Se / +P (%) |
|---|---:|---:|---:|
{rows}

{_screen_verdict(r["sets"])}
"""


def _screen_verdict(sets: dict) -> str:
    """How each extra input moved the out-of-fold score from the set it extends."""
    base = sets.get("rhythm")
    extended = {k: v for k, v in sets.items() if k.startswith("rhythm + ")}
    if not base or not extended:
        return ""
    moves = "; ".join(
        f"{k.removeprefix('rhythm + ')} {v['nsv_f1'] - base['nsv_f1']:+.3f}"
        for k, v in extended.items()
    )
    gain = max(v["nsv_f1"] - base["nsv_f1"] for v in extended.values())
    verdict = (
        "none of them earns a place in the network yet"
        if gain < 0.01
        else "worth building into the network"
    )
    return f"Change of the mean F1 from `rhythm` alone: {moves}; {verdict}."


def section_calibration(results: dict) -> str:
    """The effect of the validation-chosen class offsets."""
    rows = [
        r
        for protocol in ("kaggle", "inter-patient")
        for r in experiments(results, protocol)
        if r.get("class_bias")
    ]
    if not rows:
        return ""
    lines = [
        "## Class offsets chosen on validation data",
        "",
        "Per-class logit offsets chosen to maximise the mean F1 of the selection classes on "
        "validation beats, or on the pooled out-of-fold predictions of a cross-validated "
        "model (never the test set), folded into the last layer. Test figures with and "
        "without them:",
        "",
        "| model | offsets N, S, V, F, Q | macro-F1 without → with | S Se / +P without → with "
        "| V Se / +P without → with |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        a, b = r["test_without_class_bias"]["classes"], r["test"]["classes"]
        offsets = ", ".join(f"{v:+.2f}" for v in r["class_bias"])
        lines.append(
            f"| {r['title']} | {offsets} | {r['test_without_class_bias']['macro_f1']:.3f} → "
            f"{r['test']['macro_f1']:.3f} | {se_ppv(a['S'])} → {se_ppv(b['S'])} "
            f"| {se_ppv(a['V'])} → {se_ppv(b['V'])} |"
        )
    return "\n".join(lines) + "\n"


def section_detection(results: dict) -> str:
    """R-peak detectors measured on all 48 records (``bench/detection.py``)."""
    det = results.get("detection")
    if not det:
        return ""
    rows = []
    for name, m in sorted(det["methods"].items(), key=lambda kv: kv[1]["error_rate_pct"]):
        off = m["offsets_refined"]
        rows.append(
            f"| {name}{' (default)' if name == det['chosen'] else ''} | {m['se']:.2f} "
            f"| {m['ppv']:.2f} | {m['ppv_excl_flutter']:.2f} | {m['fp']:,} | {m['fn']:,} "
            f"| {off['within_1_sample_at_360Hz_pct']:.1f} |"
        )
    sweep = det.get("fs_sweep") or {}
    sweep_text = "; ".join(
        f"{fs} Hz: Se {v['se']:.2f} %, +P {v['ppv']:.2f} %" for fs, v in sweep.items()
    )
    return f"""## R-peak detection for new recordings

Every detector on all 48 records against the reference beat annotations
({det["protocol"]["tolerance_s"] * 1000:.0f} ms tolerance, one-to-one matching); each detection
is then moved to the largest deflection of the 5–20 Hz band-passed signal so that beats start
where the annotations put them. Goal: Se and +P ≥ 99.5 %. +P* leaves out the ventricular flutter
episodes of record 207, whose flutter waves are annotated as non-beats (as EC57 allows).

| detector | Se (%) | +P (%) | +P* (%) | FP | FN | within ±1 sample of the annotation (%) |
|---|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

Resampled records: {sweep_text or "not measured"}.
"""


def _pct(x: float) -> str:
    """A fraction as a percentage with two decimals (detection figures)."""
    return f"{100 * x:.2f}"


def section_detected_peaks(results: dict) -> str:
    """DS2 classification with detected instead of annotated R peaks."""
    dp = results.get("detected_peaks")
    if not dp:
        return ""
    rows = {
        "annotated R peaks": dp["annotated"],
        "detected R peaks (matched beats)": dp["detected"],
    }
    table = metrics_table_markdown(rows)
    e2e = ", ".join(f"{k} {fmt_pct(v)} %" for k, v in dp["end_to_end_sensitivity"].items())
    d = dp["detection"]
    weights = dp.get("weights", "the shipped model")
    return f"""## Unseen patients with detected R peaks (DS2, `{weights}`)

{table}

Detection on DS2: Se {_pct(d["se"])} %, +P {_pct(d["ppv"])} %, {d["extra"]:,} extra detections.
Sensitivity counting missed beats as errors: {e2e}.
"""


def section_explanations(results: dict) -> str:
    """Grad-CAM figures of the shipped models (written by the study)."""
    names = (results.get("shipped") or {}).values()
    shipped = [results[n] for n in names if n in results]
    if not shipped:
        return ""
    figs = "\n".join(
        f"![{r['title']} ({r['protocol']}): Grad-CAM](figures/explain_{r['name']}.png)"
        for r in shipped
    )
    return f"""## What the shipped models look at

Grad-CAM (captum `LayerGradCam` on the last convolution, ReLU applied, interpolated to the
187 input samples) for test beats of each class: typical correct beats on the left, the most
confident errors on the right; the red background marks where the evidence for the predicted
class lies (`python -m ecg_utils explain`).

{figs}
"""


def section_resampling(results: dict) -> str:
    """Class agreement after resampling a record (``bench/resampling.py``)."""
    r = results.get("resampling")
    if not r:
        return ""
    rates = [str(x) for x in r["rates"]]
    head = " | ".join(f"{x} Hz" for x in rates)
    rows = "\n".join(
        f"| {rec} | {v[rates[0]]['beats']:,} | "
        + " | ".join(f"{100 * v[x]['detected']:.1f} ({100 * v[x]['annotated']:.1f})" for x in rates)
        + " |"
        for rec, v in r["per_record"].items()
    )
    return f"""## The same record at other sampling rates (`bench/resampling.py`, `{r["weights"]}`)

Share of beats (%) whose class is unchanged from 360 Hz after resampling, with detected
R peaks matched to those found at 360 Hz (in brackets: annotated peaks mapped to the new
rate, which prediction re-places on the signal while the 360 Hz baseline keeps them as
annotated). Goal: ≥ {100 * r["goal"]:.0f} %.

| record | beats | {head} |
|---|---:|{"---:|" * len(rates)}
{rows}
"""


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
    return f"""## Prediction speed (`bench/predict.py`, this 2-core CPU)

| what | measured | goal |
|---|---:|---:|
{table}

In-process steps of the 30-minute record: {step_text}. The rest of the wall time is
Python start-up and imports.
"""


def section_inference_speed(results: dict) -> str:
    """Batched inference throughput (``bench/inference.py``)."""
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
    for m in b["models"]:
        rows = "\n".join(
            f"| {r['method']} | {r['batch']} | {r['beats_per_s']:,} | {r['efficiency']:.2f} "
            f"| {r['speedup_vs_seed_loop']:.2f}× |"
            for r in m["table"]
        )
        parts += [
            "",
            f"`{Path(m['weights']).name}` ({m['architecture']}, "
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


def section_failures(results: dict) -> str:
    exps = experiments(results, "inter-patient")
    if not exps:
        return ""
    name = shipped_name(results, UNSEEN_PATIENT_TARGET)
    best = next((e for e in exps if e["name"] == name), exps[-1])
    per = best["test"]["per_record"]
    worst = sorted(per.items(), key=lambda kv: -kv[1]["errors"])[:8]
    rows = "\n".join(
        f"| {rec} | {v['beats']:,} | {v['errors']:,} | {v['top_confusion'] or '—'} |"
        for rec, v in worst
    )
    return f"""## Failure analysis ({best["title"]}, inter-patient)

Records of DS2 with the most errors:

| record | beats | errors | most frequent confusion (true→predicted) |
|---|---:|---:|---|
{rows}
"""


def study_training_time(results: dict) -> tuple[int, float]:
    """Number of trained models and the sum of their recorded training times in seconds
    (cross-validation included): what a fresh full run spends training."""
    runs = [
        r
        for r in results.values()
        if isinstance(r, dict)
        and r.get("protocol") in PROTOCOLS
        and "train_seconds" in r
        and not r.get("members")  # an ensemble trains nothing beyond its members
    ]
    seconds = sum(
        r["train_seconds"] + ((r.get("cross_validation") or {}).get("seconds") or 0.0) for r in runs
    )
    return len(runs), seconds


def _training_time_text(results: dict, subject: str = "A fresh full run") -> str:
    n, seconds = study_training_time(results)
    if not n:
        return ""
    return (
        f"{subject} trains {n} models; their recorded training times add up to "
        f"{seconds / 3600:.1f} h on this 2-core machine (evaluation and figures come on top)."
    )


def section_environment(results: dict) -> str:
    study = results.get("study")
    if not study:
        return ""
    env = study["environment"]
    pk = ", ".join(f"{k} {v}" for k, v in env["packages"].items())
    commit = f"`{env.get('git_commit') or 'unknown'}`"
    if env.get("git_dirty"):
        commit += " (with uncommitted changes)"
    seeds = study.get("seeds") or {}
    seed_text = (
        "; training seeds " + ", ".join(f"{k} {v}" for k, v in sorted(seeds.items()))
        if seeds
        else ""
    )
    split_seed = study.get("split_seed")
    split_text = f"; split seed {split_seed}" if split_seed is not None else ""
    files = study.get("data_files") or {}
    files_text = (
        f" over {len(files)} files (SHA-256 of each in `results/study.json`)" if files else ""
    )
    return f"""## Reproducibility

Generated by `python -m ecg_utils run` (quick mode: {study["quick"]}; its last call took
{study["seconds"]:.0f} s, finished steps being skipped; training times are in the tables above);
Python {env["python"]} on {env["platform"]}; {pk}; git commit {commit}{split_text}{seed_text};
data fingerprint `{(study.get("data_fingerprint") or "unknown")[:16]}…`{files_text}.
{_training_time_text(results)}
{_device_text(study)}
"""


def _device_text(study: dict) -> str:
    """Where the study ran, and the GPU wall time when one was used."""
    dev = study.get("device")
    if not dev:
        return ""
    speed = study.get("speed")
    probe = f" (speed probe: {speed:.1f} training steps/s)" if speed else ""
    text = f"Device: {device_phrase(dev)}{probe}."
    if dev.get("type") == "cpu":
        text += (
            " Every model also trains on a GPU (`--device cuda`); no GPU was available to "
            "this project to time the study on one, so there is no GPU wall time to report."
        )
    return text


LIMITATIONS = """## Limitations

- MIT-BIH has 47 patients; DS2 has 22. Per-class figures for rare classes (F, and S in
  most records) rest on few patients, hence the wide record-level intervals.
- The Kaggle protocol splits beats at random: the same patients are on both sides, so its
  figures overstate what a model does for a new patient. Use the inter-patient figures for that.
- Q (paced and unclassifiable) beats are excluded from the inter-patient protocol with the
  paced records, as AAMI EC57 recommends; macro-F1 there still averages all five classes, so
  F and Q (a handful of beats in DS2) pull it down: read the per-class figures.
- The baselines' inter-patient validation holds out four DS1 records, and almost all of
  their S beats come from one of them (118), so their chosen epochs are noisy. The
  candidates for unseen patients are chosen by cross-validation over all of DS1 instead,
  but DS1 still has only 22 patients: the out-of-fold figures are estimates with wide
  uncertainty, and the test figures on DS2 can differ from them.
"""

REFERENCES = """## References

- Moody GB, Mark RG. The impact of the MIT-BIH Arrhythmia Database.
  IEEE Eng Med Biol 20(3):45-50, 2001.
- Goldberger AL et al. PhysioBank, PhysioToolkit, and PhysioNet.
  Circulation 101(23):e215-e220, 2000.
- Kachuee M, Fazeli S, Sarrafzadeh M. ECG heartbeat classification: a deep transferable
  representation. IEEE ICHI 2018 (arXiv:1805.00794).
- de Chazal P, O'Dwyer M, Reilly RB. Automatic classification of heartbeats using ECG morphology
  and heartbeat interval features. IEEE TBME 51(7):1196-1206, 2004.
"""


def render_report(results: dict) -> str:
    """The whole report as Markdown."""
    parts = [
        "# ECG heartbeat classification on MIT-BIH: report",
        "",
        "Generated from `results/*.json` by `python -m ecg_utils report`; do not edit by hand.",
        "",
        section_dataset(results),
        section_targets(results),
        section_new_patients(results),
        section_patient_specific(results),
        section_fidelity(results),
        _protocol_section(
            results,
            "kaggle",
            "Kaggle protocol (intra-patient random beat split)",
            "A stratified random 80/20 split of beats (seed fixed); validation is 10 % of the "
            "training beats. The same patients appear on both sides.",
        ),
        _protocol_section(
            results,
            "inter-patient",
            "Inter-patient protocol (de Chazal DS1 → DS2)",
            "Trained on DS1 records, tested on the 22 DS2 records (new patients); paced "
            "records excluded. Baselines hold out a fifth of DS1's records (by patient) for "
            "validation; the rhythm-aware candidates are cross-validated over DS1 record "
            "folds instead (next sections). Epochs and class offsets are chosen on the mean "
            "F1 of N, S and V (DS1 has too few F and Q beats to judge those).",
        ),
        section_strong_model(results),
        section_ablation(results),
        section_model_choice(results),
        section_seed_spread(results),
        section_feature_screen(results),
        section_calibration(results),
        section_failures(results),
        section_explanations(results),
        section_detection(results),
        section_detected_peaks(results),
        section_resampling(results),
        section_predict_speed(results),
        section_inference_speed(results),
        section_archive_speed(results),
        section_environment(results),
        LIMITATIONS,
        REFERENCES,
    ]
    return "\n".join(p for p in parts if p is not None).rstrip() + "\n"


README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"


def readme_summary(results: dict) -> str:
    """The README's results block: shipped models beside the seed recipe."""
    lines = [
        "## Results (generated from `results/*.json`; details in [report.md](report.md))",
        "",
        "| protocol | model | accuracy (%) | macro-F1 | S Se / +P (%) | V Se / +P (%) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    shipped_names = set((results.get("shipped") or {}).values())
    rows = [
        (protocol, r["title"] + (f" → `{r['ship_as']}`" if r["name"] in shipped_names else ""), m)
        for protocol in ("kaggle", "inter-patient")
        for r in experiments(results, protocol)
        if r["name"].startswith("seed") or r["name"] in shipped_names
        for m in [r["test"]]
    ]
    bench = results.get(shipped_name(results, UNSEEN_PATIENT_TARGET) or "")
    if bench and bench.get("members"):  # an ensemble: not among experiments()
        rows.append(("inter-patient", f"{bench['title']} → `{bench['ship_as']}`", bench["test"]))
    if bench and bench.get("test_high_sensitivity"):
        rows.append(
            ("inter-patient", "the same, `--sensitivity high`", bench["test_high_sensitivity"])
        )
    product = results.get(shipped_name(results, PRODUCT_TARGET) or "")
    if product:
        cv = product["cross_validation"]
        label = "new patients, out-of-fold over all 48 records"
        rows.append((label, f"{product['title']} → `{PRODUCT_TARGET}`", cv["out_of_fold"]))
        if cv.get("high"):
            rows.append((label, "the same, `--sensitivity high`", cv["high"]))
        kept = kept_product_out_of_fold(results)
        if kept:
            rows.append((label, f"the same, with the {kept[0]} adaptation (seed 0)", kept[1]))
    for protocol, title, m in rows:
        c = m["classes"]
        lines.append(
            f"| {protocol} | {title} | {fmt_pct(m['accuracy'])} | {m['macro_f1']:.3f} "
            f"| {se_ppv(c['S'])} | {se_ppv(c['V'])} |"
        )
    if len(lines) == 4:
        return ""
    if _training_time_text(results):
        lines += ["", _training_time_text(results, "`make study` from scratch")]
    lines += _readme_speed(results)
    return "\n".join(lines) + "\n"


def _rate(row: dict) -> float:
    return row["beats_per_s"]


def _readme_speed(results: dict) -> list[str]:
    """One line per benchmark: the headline figures beside their goals."""
    out = []
    b = results.get("bench_predict")
    if b:
        out += [
            "",
            f"Speed on this 2-core CPU (`bench/predict.py`): `predict` of a 30-minute record "
            f"{b['record']['wall_median_s']:.1f} s (goal ≤ 3 s); of a 24-hour two-lead record "
            f"{b['holter']['wall_s']:.0f} s and {b['holter']['peak_rss_mb'] / 1024:.1f} GB "
            f"(goals ≤ 60 s, ≤ 2 GB); beat set from the 48 records {b['build']['cold_s']:.1f} s "
            f"cold, {b['build']['cached_s']:.2f} s cached.",
        ]
    inf = results.get("bench_inference")
    if inf and inf.get("models"):
        table = inf["models"][0]["table"]
        ours = max((r for r in table if r["method"] == "predict_proba"), key=_rate)
        best = max((r for r in table if r["method"] != "seed-loop"), key=_rate)
        seed = next(r for r in table if r["method"] == "seed-loop")
        out += [
            "",
            f"Inference (`bench/inference.py`, ECG1DCNN): `predict_proba` {ours['beats_per_s']:,} "
            f"beats/s (batch {ours['batch']}), efficiency {ours['efficiency']:.2f} of sgemm, "
            f"{ours['speedup_vs_seed_loop']:.1f}× the seed-style loop ({seed['beats_per_s']:,} "
            f"beats/s); fastest measured: {best['method']} at {best['beats_per_s']:,} beats/s "
            "(goals: efficiency ≥ 0.6, ≥ 3× the seed loop).",
        ]
    out += readme_archive_line(results)
    return out


def update_readme(readme: str | Path, results: dict) -> None:
    """Replace the README's generated results block (between the markers)."""
    path = Path(readme)
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        return
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    new = f"{head}{README_START}\n{readme_summary(results)}{README_END}{tail}"
    if new != text:
        write_text_atomic(path, new)


def write_report(
    results_dir: str | Path, path: str | Path, readme: str | Path | None = None
) -> Path:
    """Render ``report.md`` from ``results_dir`` and write it atomically.

    When ``readme`` is given, its results block (between ``README_START`` and
    ``README_END``) is regenerated from the same results.

    Raises
    ------
    EcgError
        When there are no results to report (see :func:`load_results`) or they lack
        fields the report needs (files from another version: rerun the study); no
        report is written then.
    """
    results = load_results(results_dir)
    try:
        text = render_report(results)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise EcgError(
            f"results files are incomplete or from another version ({type(exc).__name__}: "
            f"{exc}); rerun the study",
            results_dir,
        ) from None
    write_text_atomic(path, text)
    if readme is not None:
        update_readme(readme, results)
    return Path(path)
