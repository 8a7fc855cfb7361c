"""The report's Grad-CAM section: what the shipped models look at."""

from __future__ import annotations


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
