"""The report's "Data" section: our beat set beside Kaggle's (``results/dataset.json``)."""

from __future__ import annotations

from ..beats import CLASS_NAMES


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
