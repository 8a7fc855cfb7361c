"""The report's two protocol sections (Kaggle's random beat split, inter-patient DS1 → DS2):
every finished experiment of the protocol, its figures and its figures' files.
"""

from __future__ import annotations

from ..evaluation import metrics_table_markdown
from ..experiments import KAGGLE_BEST_TARGET, KAGGLE_TARGET
from .common import experiments
from .kaggle import KAGGLE_GOALS, STRONG

TARGETS = {
    "kaggle": f"the strongest model under 1 M parameters (`{KAGGLE_BEST_TARGET}`): "
    f"macro-F1 ≥ {KAGGLE_GOALS[STRONG]['macro_f1']:.2f} and accuracy ≥ "
    f"{100 * KAGGLE_GOALS[STRONG]['accuracy']:.1f} %; `{KAGGLE_TARGET}` (ECG1DCNN, distilled "
    f"when that wins on validation): macro-F1 ≥ {KAGGLE_GOALS['ecg_cnn']['macro_f1']:.3f}",
    "inter-patient": "S Se ≥ 80 % with +P ≥ 50 %; V Se ≥ 90 % with +P ≥ 90 %",
}


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


def section_kaggle_protocol(results: dict) -> str:
    """Every finished experiment on the Kaggle protocol (random beat split)."""
    return _protocol_section(
        results,
        "kaggle",
        "Kaggle protocol (intra-patient random beat split)",
        "A stratified random 80/20 split of beats (seed fixed); validation is 10 % of the "
        "training beats. The same patients appear on both sides.",
    )


def section_inter_patient_protocol(results: dict) -> str:
    """Every finished experiment on the inter-patient protocol (DS1 → DS2)."""
    return _protocol_section(
        results,
        "inter-patient",
        "Inter-patient protocol (de Chazal DS1 → DS2)",
        "Trained on DS1 records, tested on the 22 DS2 records (new patients); paced "
        "records excluded. Baselines hold out a fifth of DS1's records (by patient) for "
        "validation; the rhythm-aware candidates are cross-validated over DS1 record "
        "folds instead (next sections). Epochs and class offsets are chosen on the mean "
        "F1 of N, S and V (DS1 has too few F and Q beats to judge those).",
    )
