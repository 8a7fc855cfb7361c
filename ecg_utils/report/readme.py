"""The README's generated results block (between :data:`README_START` and
:data:`README_END`): the shipped models beside the seed recipe, and the headline speeds.
"""

from __future__ import annotations

from pathlib import Path

from ..evaluation import fmt_pct
from ..experiments import PRODUCT_TARGET, UNSEEN_PATIENT_TARGET
from .adaptation import kept_product_out_of_fold
from .archive import readme_archive_line
from .common import experiments, se_ppv, shipped_name, write_if_changed
from .reproducibility import training_time_text

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
    rows += relative_rows(results)
    rows += patient_rows(results)
    network = "previous network recipe"
    bench = results.get(shipped_name(results, UNSEEN_PATIENT_TARGET) or "")
    if bench and bench.get("members"):  # an ensemble: not among experiments()
        adapted = ", clusters adaptation on" if bench.get("adaptation") else ""
        title = f"{bench['title']} → `{bench['ship_as']}` (balanced{adapted})"
        rows.append((f"inter-patient, {network}", title, bench["test"]))
        if bench.get("test_without_adaptation"):
            rows.append(
                (
                    f"inter-patient, {network}",
                    "the same, adaptation off",
                    bench["test_without_adaptation"],
                )
            )
    product = results.get(shipped_name(results, PRODUCT_TARGET) or "")
    if product:
        cv = product["cross_validation"]
        label = f"new patients, out-of-fold over all 48 records, {network}"
        title = f"{product['title']} → `{PRODUCT_TARGET}` (balanced, adaptation off)"
        rows.append((label, title, cv["out_of_fold"]))
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
    if training_time_text(results):
        lines += ["", training_time_text(results, "`make study` from scratch")]
    rel = results.get("relative")
    if rel and "shipped" in rel:
        ship = rel["shipped"]
        minutes = (
            rel.get("seconds", 0)
            + ship["product"].get("cv_seconds", 0)
            + ship["benchmark"]["train_seconds"]
            + ship["product"]["train_seconds"]
        ) / 60
        checks = [
            (sum(r["seconds"] for r in rel["fusion"]["rows"].values()), "the networks and fusions")
            if rel.get("fusion")
            else None,
            (rel["svdb_training"]["seconds"], "the svdb-dev training check")
            if rel.get("svdb_training")
            else None,
            (_patient_seconds(results), "the patient-specific protocols")
            if results.get("relative_patient")
            else None,
        ]
        more = "; ".join(f"{t / 60:.0f} min for {what}" for t, what in filter(None, checks))
        lines += [
            "",
            f"The patient-relative recipe (`python -m ecg_utils run --only relative`) takes about "
            f"{minutes:.0f} min on this machine to judge its {len(rel['candidates'])} "
            "candidates, ship both models and cross-validate the product (training the "
            f"benchmark alone: {ship['benchmark']['train_seconds']:.0f} s, the product "
            f"{ship['product']['train_seconds']:.0f} s)" + (f"; then {more}." if more else "."),
        ]
    lines += _readme_noise(results)
    lines += _readme_speed(results)
    return "\n".join(lines) + "\n"


def _readme_noise(results: dict) -> list[str]:
    """One line: the noise stress test at 6 dB of the ambulatory mixture (DS2)."""
    ns = results.get("noise_stress")
    if not ns:
        return []
    rows = {(r["kind"], r["snr_db"]): r for r in ns["ds2"]["rows"]}
    r = rows.get(("ambulatory", 6.0))
    if r is None:
        return []
    n = r["detection_noisy"]
    return [
        "",
        "Noise (`bench/noise_stress.py`, the project's own ambulatory noise at 6 dB on DS2, "
        f"`{ns['ds2']['weights']}`): detection in the noisy stretches Se {n['se']:.1f} % / "
        f"+P {n['ppv']:.1f} % (goals ≥ 99 / ≥ 95); {r['false_v_per_h']:.0f} false V and "
        f"{r['false_s_per_h']:.0f} false S per hour of noise (goal < 50; "
        f"{r['false_v_per_h_kept']:.0f} and {r['false_s_per_h_kept']:.0f} without the quality "
        f"check's Q labels); noisy stretches flagged {r['flag_sensitivity']:.0f} % (goal ≥ 90 "
        f"%), clean ones left alone {r['flag_specificity']:.0f} %.",
    ]


def relative_rows(results: dict) -> list[tuple[str, str, dict]]:
    """The shipped patient-relative models, each row naming what ran; the rows of what
    ``predict`` runs by default say so."""
    from .relative import default_path

    rel = results.get("relative")
    if not rel or "shipped" not in rel:
        return []
    bench, product = rel["shipped"]["benchmark"], rel["shipped"]["product"]
    title = rel["candidates"][rel["chosen"]]["spec"]["title"]
    dp = default_path(rel)
    ip = "inter-patient (DS1 → DS2)"
    oof = "new patients, out-of-fold over all 48 records"
    svdb = "svdb-dev (validation, another database, annotated R peaks)"
    weights_ds1, weights_all = f"`{bench['weights']}`", f"`{product['weights']}`"
    rows = [(ip, f"{title} → {weights_ds1} (balanced, no adaptation)", bench["ds2_balanced"])]
    rows.append((ip, "the same, `--sensitivity high`", bench["ds2_high"]))
    if dp:
        rows.append((ip, f"the same, balanced, {dp['label']} (as `predict` runs it)", dp["ds2"]))
    name = f"the same recipe on all 48 records → {weights_all}"
    default = f"**default `predict`**: balanced, {dp['label'] if dp else 'no adaptation'}"
    rows.append((oof, f"{name}, {default}", dp["oof"] if dp else product["out_of_fold_balanced"]))
    if dp:
        rows.append((oof, "the same, adaptation off", product["out_of_fold_balanced"]))
    rows.append(
        (oof, "the same, adaptation off, `--sensitivity high`", product["out_of_fold_high"])
    )
    rows.append((svdb, f"{weights_all}, {default}", dp["svdb"] if dp else product["svdb_dev"]))
    if dp:
        rows.append((svdb, "the same, adaptation off", product["svdb_dev"]))
    return rows


def patient_rows(results: dict) -> list[tuple[str, str, dict]]:
    """The benchmark fine-tuned to each DS2 record (EC57: labels from the first 5 minutes,
    the rest scored): every beat of those minutes, or 20 of them by each selection."""
    r = results.get("relative_patient")
    if not r:
        return []
    from .relative_patient import SELECTIONS

    protocol = "patient-specific (DS2, scored after each record's first 5 min)"
    rows = [
        (
            protocol,
            f"`{r['weights']}` fine-tuned on every beat of the first 5 min",
            r["ds2"]["adapted"],
        )
    ]
    for selection, title in SELECTIONS.items():
        few = r["few_labels"].get(f"{selection}_20")
        if few:
            rows.append(
                (protocol, f"the same, 20 of those beats labelled: {title}", few["adapted"])
            )
    return rows


def _patient_seconds(results: dict) -> float:
    """Recorded time of the patient-specific step: the DS1-fold choice, the DS1 few-labels
    runs, DS2, and the few-labels curves (adapting only; each record's classification
    comes on top)."""
    r = results["relative_patient"]
    n_ds1 = len(next(iter(r["ds1_folds"].values()))["per_record"])
    n_ds2 = len(r["ds2"]["records"])
    few_ds1 = sum(m["seconds_per_record"] for m in (r.get("ds1_few_labels") or {}).values())
    few_ds2 = sum(m["seconds_per_record"] for m in r["few_labels"].values())
    return r["ds1_seconds"] + few_ds1 * n_ds1 + (r["ds2"]["seconds_per_record"] + few_ds2) * n_ds2


def _rate(row: dict) -> float:
    return row["beats_per_s"]


def _readme_speed(results: dict) -> list[str]:
    """One line per benchmark: the headline figures beside their goals."""
    out = []
    b = results.get("bench_predict")
    if b:
        out += [
            "",
            f"Speed on this 2-core CPU (`bench/predict.py`, "
            f"`{Path(b.get('weights') or '?').name}`): `predict` of a 30-minute record "
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
    """Replace the README's generated results block (between the markers); the file is
    rewritten only when that changes its text."""
    path = Path(readme)
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        return
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    new = f"{head}{README_START}\n{readme_summary(results)}{README_END}{tail}"
    write_if_changed(path, new)
