"""The report's section on the class offsets chosen on validation data."""

from __future__ import annotations

from .common import experiments, se_ppv


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
