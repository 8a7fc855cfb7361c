"""The report's sections on R-peak detection (``results/detection.json``) and on
unseen patients with detected R peaks (``results/detected_peaks.json``).
"""

from __future__ import annotations

from ..evaluation import fmt_pct, metrics_table_markdown


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
