"""Metrics, bootstrap confidence intervals, figures and tables for AAMI beat classifiers.

Labels are integers 0..4 (N, S, V, F, Q; see :data:`ecg_utils.beats.CLASS_NAMES`).
Per-class statistics follow the AAMI/EC57 names: sensitivity (Se, recall), positive
predictive value (+P, precision) and F1.

A class with no true and no predicted beats gets sensitivity, +P and F1 of 0 (scikit-learn's
``zero_division=0``) and still counts in the macro-F1, which is always the mean over all
five classes. On inter-patient splits where a class is absent from the test records this
pulls macro-F1 down by design: the denominator never changes between models or splits.

Matplotlib and seaborn are imported inside the plotting functions, so importing this
module stays cheap and never selects a GUI backend.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    precision_recall_fscore_support,
)

from ._io import EcgError, atomic_path
from .beats import CLASS_NAMES, FS_BEAT

N_CLASSES = len(CLASS_NAMES)
_DPI = 120
_STATS = ("sensitivity", "ppv", "f1")


def _class_names(n_classes: int) -> tuple[str, ...]:
    return CLASS_NAMES if n_classes == N_CLASSES else tuple(str(i) for i in range(n_classes))


def _as_labels(y: Sequence[int] | np.ndarray, name: str, n_classes: int) -> np.ndarray:
    """Return ``y`` as a 1-D int64 array of labels in ``[0, n_classes)`` or raise EcgError."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise EcgError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        arr = arr.astype(np.int64)
    if arr.size and arr.dtype.kind not in "iub":
        raise EcgError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise EcgError(
            f"{name} labels must lie in 0..{n_classes - 1}, got {arr.min()}..{arr.max()}"
        )
    return arr


def _check_pair(y_true, y_pred, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    t = _as_labels(y_true, "y_true", n_classes)
    p = _as_labels(y_pred, "y_pred", n_classes)
    if t.shape != p.shape:
        raise EcgError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    if t.size == 0:
        raise EcgError("no beats to evaluate")
    return t, p


# --------------------------------------------------------------------------- metrics


def classification_metrics(y_true, y_pred, n_classes: int = N_CLASSES) -> dict:
    """Accuracy, macro-F1, per-class Se/+P/F1 and the confusion matrix, ready for JSON.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n_beats,)
        Reference and predicted labels in ``0..n_classes-1``.
    n_classes : int
        Number of classes; every class is reported even when absent.

    Returns
    -------
    dict
        ``{"n_beats": int, "accuracy": float, "macro_f1": float,
        "classes": {name: {"sensitivity", "ppv", "f1": float, "support": int}},
        "confusion": list[list[int]]}`` with ``confusion[i][j]`` the number of beats of
        true class ``i`` predicted as ``j``. A class with no support (or no predictions)
        gets 0 for the undefined ratios and still counts in ``macro_f1``.
    """
    t, p = _check_pair(y_true, y_pred, n_classes)
    labels = list(range(n_classes))
    prec, rec, f1, support = precision_recall_fscore_support(t, p, labels=labels, zero_division=0)
    classes = {
        name: {
            "sensitivity": float(rec[i]),
            "ppv": float(prec[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(_class_names(n_classes))
    }
    cm = confusion_matrix(t, p, labels=labels)
    return {
        "n_beats": int(t.size),
        "accuracy": float(accuracy_score(t, p)),
        "macro_f1": float(np.mean(f1)),
        "classes": classes,
        "confusion": [[int(v) for v in row] for row in cm],
    }


def classification_report_text(y_true, y_pred) -> str:
    """Scikit-learn's text report over the five AAMI classes (3 digits, zero_division=0).

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n_beats,)
    """
    t, p = _check_pair(y_true, y_pred, N_CLASSES)
    return classification_report(
        t,
        p,
        labels=list(range(N_CLASSES)),
        target_names=list(CLASS_NAMES),
        digits=3,
        zero_division=0,
    )


# --------------------------------------------------------------------------- bootstrap


def _stats_from_confusions(cms: np.ndarray) -> dict[str, np.ndarray]:
    """Vectorised statistics of a stack of confusion matrices.

    Parameters
    ----------
    cms : ndarray, shape (n_boot, k, k)
        Rows true, columns predicted.

    Returns
    -------
    dict
        ``accuracy`` and ``macro_f1`` of shape (n_boot,); ``sensitivity``, ``ppv`` and
        ``f1`` of shape (n_boot, k), NaN where undefined (zero denominator). ``macro_f1``
        counts an undefined F1 as 0, like :func:`classification_metrics`.
    """
    tp = np.diagonal(cms, axis1=1, axis2=2).astype(np.float64)
    support = cms.sum(axis=2).astype(np.float64)
    predicted = cms.sum(axis=1).astype(np.float64)
    total = support.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sens = np.where(support > 0, tp / support, np.nan)
        ppv = np.where(predicted > 0, tp / predicted, np.nan)
        # 2TP / (2TP + FP + FN) equals the harmonic mean and is defined whenever the
        # class appears at all, which is how scikit-learn computes it.
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), np.nan)
        acc = np.where(total > 0, tp.sum(axis=1) / total, np.nan)
    return {
        "accuracy": acc,
        "macro_f1": np.nan_to_num(f1, nan=0.0).mean(axis=1),
        "sensitivity": sens,
        "ppv": ppv,
        "f1": f1,
    }


def _group_cells(t: np.ndarray, p: np.ndarray, groups, k: int) -> np.ndarray:
    """Flattened confusion matrix per group, shape (n_groups, k * k)."""
    g = np.asarray(groups)
    if g.shape != t.shape:
        raise EcgError(f"groups must have one entry per beat: {g.size} vs {t.size}")
    _, inv = np.unique(g, return_inverse=True)
    n_groups = int(inv.max()) + 1
    flat = inv.ravel() * (k * k) + t * k + p
    return np.bincount(flat, minlength=n_groups * k * k).reshape(n_groups, k * k)


def _resampled_confusions(
    cells: np.ndarray, n_boot: int, rng: np.random.Generator, by_group: bool
) -> np.ndarray:
    """Draw ``n_boot`` bootstrap confusion matrices, flattened: shape (n_boot, k * k).

    Parameters
    ----------
    cells : ndarray, shape (n_groups, k * k) or (k * k,)
        Per-group flattened confusion matrices (``by_group``) or the pooled one.
    """
    if not by_group:
        # Resampling n beats with replacement only matters through how many land in each
        # (true, pred) cell, and those counts are exactly multinomial(n, cell frequencies).
        n = int(cells.sum())
        return rng.multinomial(n, cells / n, size=n_boot).astype(np.float64)
    n_groups = cells.shape[0]
    cells_f = cells.astype(np.float64)
    # Count how often each group is drawn (bincount of sampled indices), then sum the
    # drawn groups' matrices with one product; chunks bound the (chunk, n_groups) counts.
    chunk = max(1, min(n_boot, 2_000_000 // n_groups))
    out = np.empty((n_boot, cells.shape[1]))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        drawn = rng.integers(0, n_groups, size=(size, n_groups))
        drawn += np.arange(size)[:, None] * n_groups
        counts = np.bincount(drawn.ravel(), minlength=size * n_groups).reshape(size, n_groups)
        out[start : start + size] = counts @ cells_f
    return out


def _interval(values: np.ndarray, alpha: float) -> list[float | None]:
    """Percentile interval ignoring NaN; ``[None, None]`` when every value is NaN."""
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return [None, None]
    lo, hi = np.percentile(finite, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return [float(lo), float(hi)]


def bootstrap_ci(
    y_true,
    y_pred,
    groups=None,
    n_boot: int = 1000,
    seed: int | np.random.Generator | None = 0,
    alpha: float = 0.05,
) -> dict:
    """Percentile bootstrap intervals for accuracy, macro-F1 and per-class Se/+P/F1.

    With ``groups`` (e.g. the record name of each beat) whole groups are resampled with
    replacement, which is the right unit for the inter-patient protocol: beats of one
    patient are not independent. Without it, beats are resampled. Both work on confusion
    matrices (one per group, or the pooled one), so 1000 resamples of 50,000 beats take
    milliseconds.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n_beats,)
        Labels in 0..4.
    groups : array-like, shape (n_beats,), optional
        Group (record) identifier of each beat.
    n_boot : int
        Number of resamples.
    seed : int or numpy Generator or None
        Random seed; the same seed gives the same intervals.
    alpha : float
        Two-sided level: the interval is the ``alpha/2`` and ``1 - alpha/2`` percentiles.

    Returns
    -------
    dict
        ``{"accuracy": [lo, hi], "macro_f1": [lo, hi], "classes": {name: {"sensitivity":
        [lo, hi], "ppv": [lo, hi], "f1": [lo, hi]}}, "n_boot": int, "unit": "record" |
        "beat"}``. A resample where a statistic is undefined (e.g. +P of a class with no
        predictions) is skipped for that statistic; bounds are ``None`` when it is
        undefined in every resample.
    """
    if n_boot < 1:
        raise EcgError(f"n_boot must be at least 1, got {n_boot}")
    if not 0 < alpha < 1:
        raise EcgError(f"alpha must lie in (0, 1), got {alpha}")
    t, p = _check_pair(y_true, y_pred, N_CLASSES)
    k = N_CLASSES
    rng = np.random.default_rng(seed)
    by_group = groups is not None
    # Per-record confusion matrices, or the pooled one: resampling only needs these.
    cells = _group_cells(t, p, groups, k) if by_group else np.bincount(t * k + p, minlength=k * k)
    cms = _resampled_confusions(cells, n_boot, rng, by_group).reshape(n_boot, k, k)
    stats = _stats_from_confusions(cms)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        classes = {
            name: {s: _interval(stats[s][:, i], alpha) for s in _STATS}
            for i, name in enumerate(CLASS_NAMES)
        }
        return {
            "accuracy": _interval(stats["accuracy"], alpha),
            "macro_f1": _interval(stats["macro_f1"], alpha),
            "classes": classes,
            "n_boot": int(n_boot),
            "unit": "record" if by_group else "beat",
        }


# --------------------------------------------------------------------------- figures


def _new_figure(figsize: tuple[float, float], ncols: int, **kwargs):
    """A pyplot-free Figure: no global state and no GUI backend, PNG rendered by Agg."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False, **kwargs)[0]
    return fig, axes


def _save_figure(fig, path: str | os.PathLike) -> Path:
    """Render ``fig`` and write it to ``path`` as a 256-colour PNG, atomically."""
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI)
    buffer.seek(0)
    # Antialiased traces make full-colour PNGs of overlaid beats 300+ KB; a 256-colour
    # palette looks the same on plots and keeps every figure well under 150 KB.
    with Image.open(buffer) as image:
        palette = image.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE)
    # The temporary name ends in .tmp, so the format must be given explicitly.
    with atomic_path(path) as tmp:
        palette.save(tmp, format="PNG", optimize=True, dpi=(_DPI, _DPI))
    return Path(path)


def plot_confusion_matrices(confusion, path: str | os.PathLike, title: str = "") -> Path:
    """Save counts and row-normalised (recall) confusion matrices side by side as PNG.

    Parameters
    ----------
    confusion : array-like of int, shape (k, k)
        Rows true class, columns predicted class.
    path : path-like
        Output PNG; written atomically.
    title : str
        Figure title.

    Returns
    -------
    Path
        ``path``.
    """
    import seaborn as sns

    cm = np.asarray(confusion, dtype=np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise EcgError(f"confusion matrix must be square, got shape {cm.shape}")
    names = list(_class_names(cm.shape[0]))
    rows = cm.sum(axis=1, keepdims=True)
    # Classes absent from the reference have no recall: NaN leaves their row blank.
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(rows > 0, cm / np.maximum(rows, 1), np.nan)
    fig, axes = _new_figure((10.5, 4.4), 2)
    panels = (
        (cm, "d", "Counts", "Blues", None),
        (norm, ".2f", "Row-normalised (recall)", "Greens", 1),
    )
    for ax, (data, fmt, label, cmap, vmax) in zip(axes, panels, strict=True):
        sns.heatmap(
            data,
            annot=True,
            fmt=fmt,
            cmap=cmap,
            vmin=0,
            vmax=vmax,
            ax=ax,
            xticklabels=names,
            yticklabels=names,
            square=True,
            cbar=True,
            annot_kws={"fontsize": 8},
        )
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(label)
        ax.tick_params(axis="y", rotation=0)
    if title:
        fig.suptitle(title)
    return _save_figure(fig, path)


def _series(history: list[dict], key: str) -> tuple[list[float], list[float]]:
    """(epochs, values) of the epochs that report ``key`` with a finite value."""
    xs, ys = [], []
    for i, row in enumerate(history):
        value = row.get(key)
        if value is None or not math.isfinite(float(value)):
            continue
        xs.append(float(row.get("epoch", i + 1)))
        ys.append(float(value))
    return xs, ys


def plot_learning_curves(history: list[dict], path: str | os.PathLike, title: str = "") -> Path:
    """Save training/validation losses and validation macro-F1/accuracy per epoch as PNG.

    Parameters
    ----------
    history : list of dict
        One dict per epoch with any of ``epoch``, ``train_loss``, ``val_loss``,
        ``val_macro_f1``, ``val_accuracy``; missing keys are skipped (a missing ``epoch``
        means the 1-based position).
    path : path-like
        Output PNG; written atomically.
    title : str
        Figure title.

    Returns
    -------
    Path
        ``path``. The best epoch (highest ``val_macro_f1``) is marked on both panels.
    """
    if not history:
        raise EcgError("learning-curve history is empty")
    from matplotlib.ticker import MaxNLocator

    fig, (ax_loss, ax_score) = _new_figure((10, 4), 2)
    for ax, keys in (
        (ax_loss, ("train_loss", "val_loss")),
        (ax_score, ("val_macro_f1", "val_accuracy")),
    ):
        for key in keys:
            xs, ys = _series(history, key)
            if xs:
                ax.plot(xs, ys, marker="o", markersize=3, label=key)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    ax_loss.set_ylabel("loss")
    ax_score.set_ylabel("validation score")
    xs, ys = _series(history, "val_macro_f1")
    if xs:
        best = xs[int(np.argmax(ys))]
        for ax in (ax_loss, ax_score):
            ax.axvline(
                best, color="grey", linestyle="--", linewidth=1, label=f"best epoch {best:g}"
            )
    for ax in (ax_loss, ax_score):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save_figure(fig, path)


def plot_class_examples(
    x: np.ndarray, y, path: str | os.PathLike, n_per_class: int = 5, seed: int = 0
) -> Path:
    """Save a few overlaid example beats of each class, one panel per class, as PNG.

    Parameters
    ----------
    x : ndarray, shape (n_beats, n_samples)
        Beats sampled at 120 Hz (``n_samples`` is 187 for the Kachuee segmentation).
    y : array-like of int, shape (n_beats,)
        Labels in 0..4.
    path : path-like
        Output PNG; written atomically.
    n_per_class : int
        Beats drawn at random (without replacement) per class.
    seed : int
        Seed of the draw.

    Returns
    -------
    Path
        ``path``.
    """
    beats = np.asarray(x, dtype=np.float64)
    if beats.ndim != 2:
        raise EcgError(f"beats must have shape (n_beats, n_samples), got {beats.shape}")
    labels = _as_labels(y, "y", N_CLASSES)
    if labels.size != beats.shape[0]:
        raise EcgError(f"x and y differ in length: {beats.shape[0]} vs {labels.size}")
    rng = np.random.default_rng(seed)
    time = np.arange(beats.shape[1]) / FS_BEAT
    fig, axes = _new_figure((13, 2.8), N_CLASSES, sharey=True)
    for label, (ax, name) in enumerate(zip(axes, CLASS_NAMES, strict=True)):
        idx = np.flatnonzero(labels == label)
        pick = rng.choice(idx, size=min(n_per_class, idx.size), replace=False)
        for i in pick:
            ax.plot(time, beats[i], linewidth=0.8)
        if pick.size == 0:
            ax.text(0.5, 0.5, "no beats", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlim(time[0], time[-1])
        ax.set_title(f"{name} (n={idx.size})")
        ax.set_xlabel("time (s)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("amplitude")
    return _save_figure(fig, path)


def plot_per_class_bars(
    results: dict[str, dict], path: str | os.PathLike, metric: str = "f1"
) -> Path:
    """Save grouped bars of one per-class metric for several models as PNG.

    Parameters
    ----------
    results : dict of str to dict
        Model name -> :func:`classification_metrics` output.
    path : path-like
        Output PNG; written atomically.
    metric : {"f1", "sensitivity", "ppv"}
        Per-class statistic to compare.

    Returns
    -------
    Path
        ``path``.
    """
    if metric not in _STATS:
        raise EcgError(f"metric must be one of {', '.join(_STATS)}, got {metric!r}")
    if not results:
        raise EcgError("no models to compare")
    names = list(CLASS_NAMES)
    fig, (ax,) = _new_figure((max(6.0, 1.2 * len(names) + 0.4 * len(results)), 3.8), 1)
    width = 0.8 / len(results)
    centres = np.arange(len(names))
    for j, (model, metrics) in enumerate(results.items()):
        values = [metrics["classes"][c][metric] for c in names]
        ax.bar(centres + (j - (len(results) - 1) / 2) * width, values, width, label=model)
    ax.set_xticks(centres, names)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("class")
    ax.set_ylabel(metric)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _save_figure(fig, path)


# --------------------------------------------------------------------------- tables


def fmt_pct(x: float | None) -> str:
    """A fraction as a percentage with one decimal: ``0.9871 -> "98.7"``; "n/a" if undefined."""
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{100 * x:.1f}"


def _fmt_f1(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.3f}"


def _with_ci(value: float, bounds: list | None, fmt) -> str:
    if not bounds or bounds[0] is None:
        return fmt(value)
    return f"{fmt(value)} [{fmt(bounds[0])}–{fmt(bounds[1])}]"


def metrics_table_markdown(rows: dict[str, dict], ci: dict[str, dict] | None = None) -> str:
    """A markdown table with one row per model: accuracy, macro-F1 and per-class Se/+P.

    Parameters
    ----------
    rows : dict of str to dict
        Model name -> :func:`classification_metrics` output.
    ci : dict of str to dict, optional
        Model name -> :func:`bootstrap_ci` output; models present get ``value [lo–hi]``.

    Returns
    -------
    str
        Accuracy, Se and +P in percent with one decimal, macro-F1 as a fraction with
        three; ends with a newline.
    """
    ci = ci or {}
    header = ["Model", "Acc (%)", "Macro-F1"]
    for name in CLASS_NAMES:
        header += [f"{name} Se (%)", f"{name} +P (%)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model, m in rows.items():
        c = ci.get(model, {})
        cells = [
            model.replace("|", "\\|"),
            _with_ci(m["accuracy"], c.get("accuracy"), fmt_pct),
            _with_ci(m["macro_f1"], c.get("macro_f1"), _fmt_f1),
        ]
        for name in CLASS_NAMES:
            cls_ci = c.get("classes", {}).get(name, {})
            cells.append(
                _with_ci(m["classes"][name]["sensitivity"], cls_ci.get("sensitivity"), fmt_pct)
            )
            cells.append(_with_ci(m["classes"][name]["ppv"], cls_ci.get("ppv"), fmt_pct))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
