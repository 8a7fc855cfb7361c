"""The report's section on noise (``results/noise_stress.json``, ``bench/noise_stress.py``)."""

from __future__ import annotations

GOALS_6DB = {"se": 99.0, "ppv": 95.0, "false_v": 50.0, "false_s": 50.0}
"""The issue's goals at 6 dB (DS2): detection Se and +P (%), false V and S per hour."""
GOAL_FLAG = (90.0, 5.0)
"""The quality flag: >= 90 % of noisy stretches at <= 6 dB marked, <= 5 % of clean ones."""


def _snr(r: dict) -> str:
    return "—" if r["snr_db"] is None else f"{r['snr_db']:g}"


def _row(r: dict) -> str:
    a, n = r["detection_all"], r["detection_noisy"]
    return (
        f"| {r['kind']} | {_snr(r)} | {a['se']:.1f} / {a['ppv']:.1f} | {n['se']:.1f} / "
        f"{n['ppv']:.1f} | {r['changed_pct']:.1f} ({r['changed_kept_pct']:.1f}) | "
        f"{r['false_v_per_h']:.0f} ({r['false_v_per_h_kept']:.0f}) | "
        f"{r['false_s_per_h']:.0f} ({r['false_s_per_h_kept']:.0f}) | "
        f"{r['flag_sensitivity']:.0f} | {r['flag_specificity']:.0f} |"
    )


def _goals(rows: list[dict]) -> list[str]:
    out = []
    for r in rows:
        if r["snr_db"] != 6.0:
            continue
        n = r["detection_noisy"]
        missed = [
            name
            for name, ok in (
                (f"Se {n['se']:.1f} %", n["se"] >= GOALS_6DB["se"]),
                (f"+P {n['ppv']:.1f} %", n["ppv"] >= GOALS_6DB["ppv"]),
                (f"false V {r['false_v_per_h']:.0f}/h", r["false_v_per_h"] < GOALS_6DB["false_v"]),
                (f"false S {r['false_s_per_h']:.0f}/h", r["false_s_per_h"] < GOALS_6DB["false_s"]),
                (
                    f"flag {r['flag_sensitivity']:.0f} %",
                    r["flag_sensitivity"] >= GOAL_FLAG[0],
                ),
            )
            if not ok
        ]
        verdict = "all met" if not missed else "missed: " + ", ".join(missed)
        out.append(f"- {r['kind']}: {verdict}")
    return out


def section_noise(results: dict) -> str:
    """Noise stress test: detection, classes and the quality flag per kind and SNR."""
    ns = results.get("noise_stress")
    if not ns:
        return ""
    choice, ds2 = ns["choice_ds1"], ns["ds2"]
    chosen = choice["chosen"]
    keys = ("bsqi_min", "morph_min", "unlike_max")
    best = next(g for g in choice["grid"] if all(g.get(k) == chosen.get(k) for k in keys))

    def gate_name(g: dict) -> str:
        similar = g.get("similar_min")
        return (g["gate"] or "none") + ("" if similar is None else f" (similarity {similar:g})")

    gate_rows = [
        f"| {gate_name(g)} | {g['clean']['se']:.2f} / {g['clean']['ppv']:.2f} | "
        f"{g['snr6_noisy']['se']:.2f} / {g['snr6_noisy']['ppv']:.2f} |"
        for g in choice["gates"]
    ]
    rows = ds2["rows"]
    flag_low = [r for r in rows if r["snr_db"] is None or r["snr_db"] <= 6.0]
    mean_low = sum(r["flag_sensitivity"] for r in flag_low) / len(flag_low)
    spec = min(r["flag_specificity"] for r in rows)
    clean_det = ds2["clean_detection"]
    inter = ds2["interpatient_reference_beats"]
    cost = ds2["cost"]

    def ip_row(name: str, m: dict) -> str:
        return (
            f"| {name} | {100 * m['accuracy']:.1f} | {100 * m['S']['sensitivity']:.1f} / "
            f"{100 * m['S']['ppv']:.1f} | {100 * m['V']['sensitivity']:.1f} / "
            f"{100 * m['V']['ppv']:.1f} | {100 * m['q_share']:.2f} |"
        )

    return f"""## Noise: unreadable signal is flagged, not classified

A noise stress test the project runs itself (`python bench/noise_stress.py`, about
{ns["wall_s"] / 60:.0f} minutes here). The MIT-BIH Noise Stress Test Database's noise records
are not reachable from here, so the noise is made by `ecg_utils.noise` (seeded): baseline
wander, muscle (band-passed Gaussian noise in bursts), electrode motion (wander, decaying steps
and QRS-band transients), 60 Hz powerline, their mixture (*ambulatory*: electrode motion,
muscle and wander at equal power) and lead-off (flat seconds and clipping; no SNR). The layout
is EC57's: 5 clean minutes, then 2-minute stretches alternately noisy and clean, at SNR 24,
18, 12, 6, 0 and −6 dB, noise on both leads, signal power measured on the QRS as `nst` does
((mean QRS peak-to-peak)² / 8). This is generated noise, not the recorded noise of the
NSTDB: figures measured on the real records (outside this repository) may differ.

**Quality check** (`ecg_utils.quality`, per 10-s window of the classified lead): missing,
flat, clipped or artefact samples; the agreement of the project's detector with neurokit2's
`neurokit` and `kalidas2017` detectors (bSQI, the better of the two); the median similarity
of each beat's QRS to its neighbours, and the share of beats like none of them. `predict`
labels beats in noisy windows **Q** (`quality` column `noisy`; `--keep-noisy` keeps the
classifier's label), and the Holter
summary leaves them out (`beats_noisy`, `analysed_s`, `noisy_pct`).

**Chosen on DS1** ({len(choice["records"])} records, every kind and SNR; rule: {choice["rule"]}):
bSQI < {chosen["bsqi_min"]:g}, median similarity < {chosen["morph_min"]:g} or more than
{100 * chosen.get("unlike_max", 1.0):g} % of beats unlike their neighbours marks a window;
it marks {100 * best["sensitivity"]:.0f} % of DS1's noisy stretches at ≤ 6 dB,
{100 * best["clean_marked"]:.1f} % of its clean stretches and {100 * best["clean_windows"]:.1f} %
of the clean records' windows. Detection gate in noisy windows (Se / +P %, DS1):

| gate | clean records | noisy stretches at 6 dB |
|---|---:|---:|
{chr(10).join(gate_rows)}

Chosen gate: **{gate_name(chosen)}**.

**DS2** ({len(ds2["records"])} records, `{ds2["weights"]}`: trained on DS1, so these patients
are new to it; detected peaks, adaptation on, the chosen rule, exactly as `predict` runs).
*Changed*: reference beats in noisy stretches whose class differs from the clean run's (Q for
unreadable counts as changed). *False V / S*: beats in noisy stretches called V / S that are
not a beat the clean run calls V / S, per hour of noise. In brackets: with `--keep-noisy`
(what the classifier says anyway). Flag: % of noisy stretches marked (Se) and of clean
stretches left unmarked (Sp).

| noise | SNR (dB) | detection Se / +P | in noise Se / +P | changed % | false V/h \
| false S/h | flag Se | flag Sp |
|---|---|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(_row(r) for r in rows)}

Goals at 6 dB on DS2 (detection Se ≥ {GOALS_6DB["se"]:g} %, +P ≥ {GOALS_6DB["ppv"]:g} % in the
noisy stretches; false V and S < {GOALS_6DB["false_v"]:g} per hour of noise; flag ≥
{GOAL_FLAG[0]:g} %):

{chr(10).join(_goals(rows))}

Flag over every kind at ≤ 6 dB: {mean_low:.0f} % of noisy stretches marked on average (goal ≥
{GOAL_FLAG[0]:g} %); the lowest specificity of any condition {spec:.0f} % (goal ≥
{100 - GOAL_FLAG[1]:g} %). The clean stretches of DS2 include the records' own noise (105,
203, 207 and others have noisy minutes of their own), which the flag also marks.

**Clean DS2.** Detection with the gate: Se {clean_det["gate"]["se"]:.2f} %, +P
{clean_det["gate"]["ppv"]:.2f} % (without: {clean_det["no_gate"]["se"]:.2f} /
{clean_det["no_gate"]["ppv"]:.2f}).
The inter-patient figures at the reference beats, with and without the quality check (the
beats it labels Q count as errors):

| quality check | accuracy % | S Se / +P | V Se / +P | beats labelled Q by it % |
|---|---:|---:|---:|---:|
{ip_row("on (as predict runs)", inter["on"])}
{ip_row("off", inter["off"])}

**Cost**: `classify_record` takes {cost["median_with_s"]:.2f} s per DS2 record with the
check and {cost["median_without_s"]:.2f} s without (median; ratio {cost["median_ratio"]:.2f};
goal ≤ 1.20).
"""
