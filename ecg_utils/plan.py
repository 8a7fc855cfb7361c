"""What a study run will do and how long it will take, said before it starts.

The estimate comes from the results files: each experiment's recorded training time
(its cross-validation included), scaled by how fast this machine's device runs a fixed
small training step compared with the machine that recorded them
(:func:`~ecg_utils.device.measure_speed`, stored as ``speed`` in
``results/study.json``). It is a guide, not a promise: the two-core machines the
study was recorded on share their cores with whatever else runs.
"""

from __future__ import annotations

import json
from pathlib import Path

from .device import describe_device, measure_speed, resolve_device
from .experiments import PRODUCT, default_experiments
from .study import StudyOptions, _is_done, _wanted, experiment_data, quick_config


def plan_study(opts: StudyOptions, data: dict | None = None, speed: float | None = None) -> dict:
    """What :func:`~ecg_utils.study.run_study` would train, reuse, and its time estimate.

    Parameters
    ----------
    opts : StudyOptions
    data : dict, optional
        The data the run will train on, as results record it (``fingerprint``,
        ``segmentation_version``, ``quick``); None assumes the recorded data.
    speed : float, optional
        This machine's :func:`~ecg_utils.device.measure_speed`; measured when None.

    Returns
    -------
    dict
        ``train`` and ``reuse`` (experiment names), ``recorded_seconds`` (recorded
        training time of those to train, with their cross-validation; None for a smoke
        run, whose models are too small for the records to say), ``unknown`` (ones to
        train with no recorded time), ``estimate_seconds`` (scaled to this machine),
        ``device`` (:func:`~ecg_utils.device.describe_device`), ``speed`` and
        ``reference_speed`` (steps per second here and on the recording machine).
    """
    results = opts.results_dir
    train, reuse, unknown, seconds = [], [], [], 0.0
    experiments = [e for e in default_experiments() if _wanted(e, opts)]
    extra = [] if opts.experiments or opts.quick else _new_patient_runs(results)
    for name, cfg in [(e.name, e.config) for e in experiments] + extra:
        cfg = quick_config(cfg) if opts.quick else cfg
        result_file = results / f"{name}.json"
        recorded = data or _recorded_data(result_file, opts.quick)
        recorded = recorded and experiment_data(recorded, cfg, opts.out_dir)
        if (
            not opts.force
            and recorded
            and _is_done(
                result_file, opts.runs_dir / f"{name}.pth", cfg, recorded, opts.reuse_results
            )
        ):
            reuse.append(name)
            continue
        train.append(name)
        recorded = _recorded_seconds(result_file)
        if recorded is None:
            unknown.append(name)
        else:
            seconds += recorded
    where = resolve_device(opts.device)
    speed = measure_speed(opts.device) if speed is None else speed
    reference = _reference_speed(results)
    factor = reference / speed if reference and speed else 1.0
    return {
        "train": train,
        "reuse": reuse,
        "unknown": unknown,
        "recorded_seconds": None if opts.quick else seconds,
        "estimate_seconds": None if opts.quick else seconds * factor,
        "device": describe_device(where),
        "speed": speed,
        "reference_speed": reference,
    }


def describe_plan(plan: dict) -> str:
    """The plan in a few lines, for the start of a run."""
    dev = plan["device"]
    where = dev["name"] if dev["type"] != "cpu" else f"the CPU ({dev.get('threads')} threads)"
    lines = [
        f"This run trains {len(plan['train'])} model(s) and reuses {len(plan['reuse'])} "
        f"finished one(s), on {where}."
    ]
    if plan["recorded_seconds"] is None:
        lines.append("Smoke run: one epoch per model on a few thousand beats.")
    elif plan["recorded_seconds"]:
        estimate = plan["estimate_seconds"] / 60
        recorded = plan["recorded_seconds"] / 60
        ratio = (
            f"; this machine runs a training step {plan['speed'] / plan['reference_speed']:.1f}"
            " times as fast as the one that recorded them"
            if plan["reference_speed"]
            else ""
        )
        lines.append(
            f"Their recorded training took {recorded:.0f} min{ratio}: expect about "
            f"{estimate:.0f} min of training here, plus a few minutes of checks and figures."
        )
    if plan["recorded_seconds"] is not None and plan["unknown"]:
        lines.append(f"No recorded time for: {', '.join(plan['unknown'])}.")
    if plan["reuse"] or plan["train"]:
        lines.append(
            "Finished results are kept only with their run's weights in runs/; "
            "--reuse-results keeps the committed ones."
            if plan["train"] and not plan["reuse"]
            else "Stop with Ctrl-C at any time; finished models are kept."
        )
    return "\n".join(lines)


def _new_patient_runs(results: Path) -> list[tuple[str, object]]:
    """The ensemble members and product models that a full run also trains, as recorded."""
    from .training import TrainConfig

    runs = []
    for path in sorted(results.glob("*.json")):
        try:
            r = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(r, dict) or not r.get("config"):
            continue
        if r.get("member_of") or r.get("name") == PRODUCT:
            runs.append((r["name"], TrainConfig.from_dict(r["config"])))
    return runs


def _recorded_data(result_file: Path, quick: bool) -> dict | None:
    """The data a recorded result was trained on (fingerprint, segmentation, quick)."""
    if not result_file.exists():
        return None
    try:
        data = json.loads(result_file.read_text()).get("data")
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("quick") == quick else None


def _recorded_seconds(result_file: Path) -> float | None:
    if not result_file.exists():
        return None
    try:
        r = json.loads(result_file.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if r.get("train_seconds") is None:
        return None
    cv = r.get("cross_validation") or {}
    return float(r["train_seconds"]) + float(cv.get("seconds") or 0.0)


def _reference_speed(results: Path) -> float | None:
    path = results / "study.json"
    try:
        return json.loads(path.read_text()).get("speed")
    except (OSError, json.JSONDecodeError):
        return None
