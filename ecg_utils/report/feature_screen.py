"""The report's input screen for unseen patients (``results/feature_screen.json``)."""

from __future__ import annotations

from .common import se_ppv


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
