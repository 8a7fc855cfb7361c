"""The report's "How far results move with the seed alone" section."""

from __future__ import annotations

from ..study import validation_score
from .common import experiments, se_ppv


def section_seed_spread(results: dict) -> str:
    """How far test figures move when only the seed changes, beside how far they move
    between different candidates."""
    lines = [
        row
        for protocol in ("kaggle", "inter-patient")
        for runs in _with_seeds(results, protocol)
        for row in _seed_rows(runs)
    ]
    if not lines:
        return ""
    head = [
        "## How far results move with the seed alone",
        "",
        "Some recipes trained again with other seeds and nothing else changed (a seed "
        "draws the initial weights, the batch order and, for cross-validated recipes, the "
        "DS1 folds). Repeats are never shipped or compared for the choice; they show how "
        "much of a difference between two models a single run can support.",
        "",
        "| model | seed | validation score | test accuracy (%) | test macro-F1 "
        "| S Se / +P (%) | V Se / +P (%) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    return "\n".join(head + lines + ["", _seed_versus_candidates(results)]) + "\n"


def _with_seeds(results: dict, protocol: str) -> list[list[dict]]:
    """Each repeated experiment of a protocol followed by its seed repeats."""
    repeats = experiments(results, protocol, repeats=True)
    groups = [
        [base] + [r for r in repeats if r["repeat_of"] == base["name"]]
        for base in experiments(results, protocol)
    ]
    return [runs for runs in groups if len(runs) > 1]


def _seed_rows(runs: list[dict]) -> list[str]:
    rows = []
    for r in runs:
        m, c = r["test"], r["test"]["classes"]
        pair = {k: se_ppv(c[k]) for k in "SV"}
        rows.append(
            f"| {runs[0]['title']} | {r['config']['seed']} | {validation_score(r):.3f} "
            f"| {100 * m['accuracy']:.2f} | {m['macro_f1']:.3f} | {pair['S']} | {pair['V']} |"
        )
    return rows


def _span(values: list[float], scale: float = 100.0, digits: int = 1) -> str:
    return f"{scale * min(values):.{digits}f}–{scale * max(values):.{digits}f}"


def _spread_row(label: str, runs: list[dict]) -> str:
    def test(k, key):
        return [r["test"]["classes"][k][key] for r in runs]

    return (
        f"| {label} | {len(runs)} | {_span([validation_score(r) for r in runs], 1, 3)} "
        f"| {_span(test('S', 'sensitivity'))} | {_span(test('S', 'ppv'))} "
        f"| {_span(test('V', 'sensitivity'))} | {_span(test('V', 'ppv'))} |"
    )


def _seed_versus_candidates(results: dict) -> str:
    """Spread over the seeds of one recipe against spread over the candidates, and whether
    the pooled score separates the shipped candidate from the runner-up by more."""
    candidates = [r for r in experiments(results, "inter-patient") if r.get("cross_validation")]
    rows, spreads = [], []
    for runs in _with_seeds(results, "inter-patient"):
        if runs[0].get("cross_validation"):
            rows.append(_spread_row(f"{runs[0]['title']}, seeds", runs))
            scores = [validation_score(r) for r in runs]
            spreads.append(max(scores) - min(scores))
    if not rows or len(candidates) < 2:
        return ""
    rows.append(_spread_row("candidates for unseen patients, seed 0", candidates))
    ranked = sorted((validation_score(r) for r in candidates), reverse=True)
    lead, noise = ranked[0] - ranked[1], max(spreads)
    verdict = (
        "which of the leading candidates wins is down to the seed"
        if lead < noise
        else "the lead is larger than the seed alone moves the score"
    )
    return "\n".join(
        [
            "Spread (lowest–highest) over the seeds of one recipe, and over the candidates:",
            "",
            "| runs | n | pooled DS1 score | DS2 S Se (%) | DS2 S +P (%) | DS2 V Se (%) "
            "| DS2 V +P (%) |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"The best pooled score leads the runner-up by {lead:.3f}; the seed alone moves "
            f"one recipe's pooled score by up to {noise:.3f}: {verdict}.",
        ]
    )
