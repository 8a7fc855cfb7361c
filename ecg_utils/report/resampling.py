"""The report's section on a record resampled to other rates (``results/resampling.json``)."""

from __future__ import annotations


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
