"""Helpers shared by the report's sections: the results files, finished experiments,
shipped models and Markdown table cells.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .._io import EcgError, write_text_atomic
from ..evaluation import fmt_pct
from ..experiments import default_experiments


def load_results(results_dir: str | Path) -> dict[str, dict]:
    """Every ``*.json`` in ``results_dir``, keyed by file stem.

    Raises
    ------
    EcgError
        When the folder does not exist, holds no ``*.json`` file, or a file is not a
        JSON object (the message names it).
    """
    folder = Path(results_dir)
    if not folder.is_dir():
        raise EcgError("results folder not found; run 'python -m ecg_utils run' first", folder)
    out = {}
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EcgError(f"not a valid results file: {exc}", path) from None
        if not isinstance(data, dict):
            raise EcgError("not a results file (expected a JSON object)", path)
        out[path.stem] = data
    if not out:
        raise EcgError("no results files (*.json); run 'python -m ecg_utils run' first", folder)
    return out


def se_ppv(scores: dict) -> str:
    """``"Se / +P"`` in percent of one class's ``{sensitivity, ppv}`` (a table cell)."""
    return f"{fmt_pct(scores['sensitivity'])} / {fmt_pct(scores['ppv'])}"


def ci_cell(scores: dict, ci: dict | None, key: str) -> str:
    """``value [lo–hi]`` in percent for one class statistic with its interval."""
    text = fmt_pct(scores[key])
    if ci and ci.get(key) and None not in ci[key]:
        lo, hi = ci[key]
        text += f" [{fmt_pct(lo)}–{fmt_pct(hi)}]"
    return text


def table(columns: list[str], rows: list[str], text_columns: int = 1) -> str:
    """A Markdown table: the first ``text_columns`` left-aligned, the rest right-aligned."""
    rule = "|" + "---|" * text_columns + "---:|" * (len(columns) - text_columns)
    return "\n".join(["| " + " | ".join(columns) + " |", rule, *rows])


def goals_met(c: dict, goals: dict) -> str:
    """Which of ``goals`` (class -> (Se, +P)) a set of per-class figures meets."""
    met = [k for k, (se, ppv) in goals.items() if c[k]["sensitivity"] >= se and c[k]["ppv"] >= ppv]
    return ", ".join(met) if met else "none"


def goal_rows(prefix: str, m: dict, goals: dict) -> list[tuple[str, str, bool]]:
    """Targets rows for per-class (Se, +P) goals of one set of figures."""
    return [
        (
            f"{prefix}: {k} Se ≥ {fmt_pct(se)} %, +P ≥ {fmt_pct(ppv)} %",
            f"{se_ppv(m['classes'][k])} %",
            m["classes"][k]["sensitivity"] >= se and m["classes"][k]["ppv"] >= ppv,
        )
        for k, (se, ppv) in goals.items()
    ]


def accuracy_row(prefix: str, m: dict, goal: float) -> tuple[str, str, bool]:
    return (
        f"{prefix}: accuracy ≥ {fmt_pct(goal)} %",
        f"{fmt_pct(m['accuracy'])} %",
        m["accuracy"] >= goal,
    )


def experiments(results: dict, protocol: str, repeats: bool = False) -> list[dict]:
    """Finished experiments of a protocol, in the order the study runs them; only the
    seed repeats when ``repeats`` is True, none of them otherwise. Ensembles and their
    members are left to the New patients section."""

    order = {e.name: i for i, e in enumerate(default_experiments())}
    found = [
        r
        for r in results.values()
        if isinstance(r, dict)
        and r.get("protocol") == protocol
        and "test" in r
        and bool(r.get("repeat_of")) == repeats
        and not r.get("member_of")  # ensembles and their members: the New patients section
        and not r.get("members")
    ]
    return sorted(found, key=lambda r: (order.get(r.get("name"), len(order)), r.get("name", "")))


def shipped_name(results: dict, target: str) -> str | None:
    """Name of the experiment shipped as ``target`` (chosen on validation)."""
    return (results.get("shipped") or {}).get(target)


def shipped_result(results: dict, target: str) -> dict | None:
    """Results of the experiment shipped as ``target``, or None."""
    name = shipped_name(results, target)
    return results.get(name) if name else None


OOF_COLUMNS = ("out-of-fold S Se / +P (%)", "out-of-fold V Se / +P (%)")
"""Column headings of pooled out-of-fold S and V figures."""
DS2_COLUMNS = ("DS2 S Se / +P (%)", "DS2 V Se / +P (%)")
"""Column headings of S and V figures on DS2 (the benchmark's test records)."""


FIGURE_LINK = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<target>figures/[^)\s]+)\)$", re.MULTILINE)
"""A figure of the report: an image on a line of its own, linked under ``figures/``."""


def link_existing_figures(text: str, figures_dir: str | Path | None) -> str:
    """``text`` with each figure line whose file is missing from ``figures_dir`` replaced
    by a note naming the file (no link); unchanged when ``figures_dir`` is None.

    Sections link the figures the study should have drawn; a study may not have drawn
    one (a model without test beats has no Grad-CAM figure), so existence is checked
    where the report is written rather than assumed.
    """
    if figures_dir is None:
        return text
    folder = Path(figures_dir)

    def keep_or_note(match: re.Match) -> str:
        target = match["target"]
        if (folder / target.removeprefix("figures/")).is_file():
            return match[0]
        return f"*Not generated: `{target}` ({match['alt']}).*"

    return FIGURE_LINK.sub(keep_or_note, text)


def write_if_changed(path: str | Path, text: str) -> bool:
    """Write ``text`` to ``path`` atomically unless the file already holds exactly that
    text (then it is left alone, mtime included). True when the file was written."""
    path = Path(path)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass  # missing or unreadable: write it
    write_text_atomic(path, text)
    return True
