"""The report's failure analysis: the DS2 records with the most errors."""

from __future__ import annotations

from ..experiments import UNSEEN_PATIENT_TARGET
from .common import experiments, shipped_name


def section_failures(results: dict) -> str:
    exps = experiments(results, "inter-patient")
    if not exps:
        return ""
    name = shipped_name(results, UNSEEN_PATIENT_TARGET)
    best = next((e for e in exps if e["name"] == name), exps[-1])
    per = best["test"]["per_record"]
    worst = sorted(per.items(), key=lambda kv: -kv[1]["errors"])[:8]
    rows = "\n".join(
        f"| {rec} | {v['beats']:,} | {v['errors']:,} | {v['top_confusion'] or '—'} |"
        for rec, v in worst
    )
    return f"""## Failure analysis ({best["title"]}, inter-patient)

Records of DS2 with the most errors:

| record | beats | errors | most frequent confusion (true→predicted) |
|---|---:|---:|---|
{rows}
"""
