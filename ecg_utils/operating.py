"""Operating points: class offsets on the logits chosen for what a user needs.

A model for unseen patients is trained and calibrated for the mean F1 of N, S and V
("balanced"). A Holter analyst who reviews flagged beats wants another trade-off: as
many S and V beats found as possible while the flags stay mostly right. The "high"
operating point is the highest S sensitivity with S +P >= 50 % and the highest V
sensitivity with V +P >= 90 % (:data:`HIGH_SENSITIVITY_PPV`), chosen on pooled
out-of-fold predictions of whole records (never on a test set). Both offset sets are
stored in the weights' metadata; :func:`with_operating_point` applies one.
"""

from __future__ import annotations

import copy

import numpy as np

from .beats import CLASS_NAMES
from .checkpoint import LoadedModel

OPERATING_VERSION = 2
"""Bump when how the operating points are chosen changes: the study then recomputes them
for finished runs from their fold models, without retraining."""
OPERATING_POINTS = ("balanced", "high")
"""``balanced``: offsets for the mean F1 of N, S and V (folded into the weights);
``high``: the highest S and V sensitivity whose +P stays above :data:`HIGH_SENSITIVITY_PPV`."""
HIGH_SENSITIVITY_PPV = {"S": 0.50, "V": 0.90}
"""Lowest positive predictivity the ``high`` operating point accepts, per class."""
OFFSET_GRID = np.round(np.arange(-1.0, 6.01, 0.25), 2)
"""Logit offsets (added to log-probabilities) searched for the S and V classes."""


def offset_logits(proba: np.ndarray, offsets=None) -> np.ndarray:
    """Log-probabilities ``(n_beats, 5)`` plus per-class ``offsets`` (none: zeros)."""
    logits = np.log(np.clip(np.asarray(proba, np.float64), 1e-12, None))
    return logits if offsets is None else logits + np.asarray(offsets, np.float64)


def without_offsets(proba: np.ndarray, offsets) -> np.ndarray:
    """Probabilities of a model whose last layer holds ``offsets``, with them taken off
    (what the offsets were chosen on), ``(n_beats, 5)``."""
    raw = np.asarray(proba, np.float64) * np.exp(-np.asarray(offsets, np.float64))
    return raw / raw.sum(axis=1, keepdims=True)


def se_ppv(pred: np.ndarray, y: np.ndarray, k: int) -> tuple[float, float]:
    """Sensitivity and positive predictivity of class ``k`` (0 where undefined)."""
    tp = float(np.sum((pred == k) & (y == k)))
    n_true, n_pred = float(np.sum(y == k)), float(np.sum(pred == k))
    return (tp / n_true if n_true else 0.0), (tp / n_pred if n_pred else 0.0)


def high_sensitivity_offsets(
    proba: np.ndarray, y: np.ndarray, base: list[float] | None = None
) -> list[float]:
    """Offsets for the ``high`` operating point, chosen on ``proba`` and ``y``.

    Starting from the balanced offsets ``base``, the S offset and then the V offset are
    raised along :data:`OFFSET_GRID` to the value that finds the most beats of that class
    while its +P stays at or above :data:`HIGH_SENSITIVITY_PPV`; two such sweeps, since
    the classes share the beats they take from N. An offset is never lowered below
    ``base``: where even the balanced point misses a class's +P floor, that class keeps
    its balanced offset (fewer beats flagged cannot be what a user asking for high
    sensitivity wants).

    Parameters
    ----------
    proba : ndarray, shape (n_beats, 5)
        Out-of-fold class probabilities (without offsets).
    y : ndarray, shape (n_beats,)
        Their labels 0..4.
    base : list of float, optional
        Offsets of the balanced point (default zeros); N, F and Q keep theirs.

    Returns
    -------
    list of float
        One offset per class, to add to ``log(proba)``.
    """
    logits = offset_logits(proba)
    y = np.asarray(y)
    base = np.zeros(len(CLASS_NAMES)) if base is None else np.asarray(base, np.float64)
    offsets = base.copy()
    for _ in range(2):
        for cls, floor in HIGH_SENSITIVITY_PPV.items():
            k = CLASS_NAMES.index(cls)
            best_se, best = -1.0, offsets[k]
            for value in [base[k]] + [v for v in OFFSET_GRID if v > base[k]]:
                trial = offsets.copy()
                trial[k] = value
                se, ppv = se_ppv((logits + trial).argmax(1), y, k)
                if ppv >= floor and se > best_se + 1e-12:
                    best_se, best = se, value
            offsets[k] = best
    return [float(b) for b in offsets]


def sensitivity_curve(
    proba: np.ndarray, y: np.ndarray, cls: str, offsets: list[float] | None = None
) -> list[dict]:
    """Sensitivity and +P of one class as its offset sweeps :data:`OFFSET_GRID`.

    Parameters
    ----------
    proba : ndarray, shape (n_beats, 5)
        Class probabilities without offsets.
    y : ndarray, shape (n_beats,)
    cls : str
        Class name, e.g. ``"S"``.
    offsets : list of float, optional
        Offsets of the other classes (default zeros).

    Returns
    -------
    list of dict
        ``{"offset", "sensitivity", "ppv"}`` per grid point, in grid order.
    """
    logits = offset_logits(proba)
    k = CLASS_NAMES.index(cls)
    base = np.zeros(len(CLASS_NAMES)) if offsets is None else np.asarray(offsets, np.float64)
    rows = []
    for value in OFFSET_GRID:
        trial = base.copy()
        trial[k] = value
        se, ppv = se_ppv((logits + trial).argmax(1), np.asarray(y), k)
        rows.append({"offset": float(value), "sensitivity": se, "ppv": ppv})
    return rows


def with_operating_point(loaded: LoadedModel, point: str) -> LoadedModel:
    """``loaded`` at another operating point (a copy; ``loaded`` is left as it is).

    The weights carry the balanced offsets in their last layer's bias; the copy adds the
    difference to the asked-for point's offsets (``meta["operating_points"]``).

    Raises
    ------
    EcgError
        For an unknown point, or weights that store no such point.
    """
    from ._io import EcgError
    from .models import add_logit_offsets

    if point not in OPERATING_POINTS:
        raise EcgError(
            f"unknown operating point {point!r}; choose one of: {', '.join(OPERATING_POINTS)}"
        )
    points = loaded.meta.get("operating_points") or {}
    if point == "balanced" and point not in points:
        return loaded  # weights from before operating points: their offsets are the balanced ones
    if point not in points:
        raise EcgError(f"these weights store no {point!r} operating point (trained before it)")
    applied = np.asarray(points.get("balanced") or np.zeros(len(CLASS_NAMES)), np.float64)
    change = np.asarray(points[point], np.float64) - applied
    model = copy.deepcopy(loaded.model)
    add_logit_offsets(model, change.tolist())
    meta = {**loaded.meta, "operating_point": point}
    return LoadedModel(model=model, meta=meta)


def plot_operating_curves(
    curves: dict[str, dict], path, title: str = "", floors: dict[str, float] | None = None
):
    """Sensitivity against +P of S and V as each class's offset sweeps its grid.

    Parameters
    ----------
    curves : dict
        Label (e.g. ``"out-of-fold (DS1)"``) -> ``{"S": rows, "V": rows}`` as
        :func:`sensitivity_curve` gives them.
    path : path
        PNG to write (atomically).
    title : str
    floors : dict, optional
        Class -> the +P floor of the weights' ``high`` point, drawn as a dotted line
        (default :data:`HIGH_SENSITIVITY_PPV`, the networks').
    """
    from .evaluation import _new_figure, _save_figure

    floors = HIGH_SENSITIVITY_PPV if floors is None else floors
    fig, axes = _new_figure((10, 4.2), 2)
    for ax, cls in zip(axes, ("S", "V"), strict=True):
        for label, by_class in curves.items():
            rows = by_class[cls]
            ax.plot(
                [100 * r["ppv"] for r in rows],
                [100 * r["sensitivity"] for r in rows],
                marker=".",
                label=label,
            )
        floor = 100 * floors[cls]
        ax.axvline(floor, color="grey", linestyle=":", label=f"+P floor of 'high' ({floor:.0f} %)")
        ax.set(
            xlabel=f"{cls} +P (%)", ylabel=f"{cls} sensitivity (%)", xlim=(0, 100), ylim=(0, 100)
        )
        ax.set_title(f"{cls} beats: offset swept from -1 to +6")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    if title:
        fig.suptitle(title)
    return _save_figure(fig, path)
