"""The "Adapting to the recording without labels" part of the New patients section
(``results/adaptation.json``).
"""

from __future__ import annotations

from .common import DS2_COLUMNS, OOF_COLUMNS, se_ppv, table

ADAPTATION_COLUMNS = [
    "adaptation",
    "pooled DS1 score",
    *OOF_COLUMNS,
    "pooled score, all 48 records",
    *DS2_COLUMNS,
    "s per record",
]


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


def subsection_adaptation(results: dict) -> str:
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
            f"| {v['variant']} | {b['score']:.3f} | {se_ppv(c['S'])} | {se_ppv(c['V'])} "
            f"| {product_cell} | {se_ppv(t['S'])} | {se_ppv(t['V'])} "
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

{table(ADAPTATION_COLUMNS, rows)}

`batchnorm` recomputes BatchNorm statistics on the record; `self_training` fine-tunes the
classifier head on the record's beats predicted with probability ≥ 0.95; `clusters` averages
each beat's probabilities with those of its family (k-means on shape and RR ratios).
"""
