"""Grad-CAM saliency for beat classifiers: which part of a beat drove the decision.

Grad-CAM (Selvaraju et al. 2017) weights the feature maps of the last convolution by
the gradient of the class score, sums them and keeps the positive part; here it is
computed with captum's ``LayerGradCam`` and upsampled linearly from the layer's length
(93 samples for ECG1DCNN, 47 for ResNet1D) to the 187 samples of a beat at 120 Hz.

Captum is an optional dependency (``pip install .[explain]``); it is imported when
an attribution is computed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._io import EcgError
from .beats import BEAT_LENGTH, CLASS_NAMES, FS_BEAT, Beats, beat_features
from .models import ECG1DCNN, ResNet1D

_CHUNK = 512
"""Beats per Grad-CAM pass (forward and backward), to bound memory."""


def last_conv_layer(model: nn.Module) -> nn.Conv1d:
    """The last convolution of a model, the layer Grad-CAM attributes to.

    Parameters
    ----------
    model : nn.Module
        ECG1DCNN (its ``conv2``), ResNet1D (the last residual block's ``conv2``) or any
        module holding ``nn.Conv1d`` layers (the last one registered).

    Returns
    -------
    nn.Conv1d
    """
    if isinstance(model, ECG1DCNN):
        return model.conv2
    if isinstance(model, ResNet1D):
        return model.stages[-1].conv2
    convs = [m for m in model.modules() if isinstance(m, nn.Conv1d)]
    if not convs:
        raise EcgError(f"{type(model).__name__} has no Conv1d layer to explain")
    return convs[-1]


def cam_layer(model: nn.Module) -> nn.Module:
    """The layer Grad-CAM attributes to by default: one whose maps say something.

    For ECG1DCNN that is ``bn2``, the normalised output of its last convolution: at
    ``conv2`` itself about half of the V beats got an all-zero map, because the raw
    output carries an offset that ``bn2`` removes. Other models: :func:`last_conv_layer`.
    """
    if isinstance(model, ECG1DCNN):
        return model.bn2
    return last_conv_layer(model)


def _as_tensor(a: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.detach().float().cpu()
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _beats_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Beats as a ``(batch, 1, 187)`` float32 tensor."""
    xt = _as_tensor(x)
    if xt.ndim == 2:
        xt = xt.unsqueeze(1)
    if xt.ndim != 3 or xt.shape[1] != 1:
        raise EcgError(f"beats must have shape (n, 187) or (n, 1, 187), got {tuple(xt.shape)}")
    return xt


def _normalise(cam: torch.Tensor) -> np.ndarray:
    """Scale each row to [0, 1] by its maximum; all-zero rows stay zero."""
    peak = cam.amax(dim=1, keepdim=True)
    return torch.where(peak > 0, cam / peak.clamp_min(1e-12), torch.zeros_like(cam)).numpy()


def grad_cam(
    model: nn.Module,
    x: np.ndarray | torch.Tensor,
    target: int | np.ndarray | None = None,
    features: np.ndarray | torch.Tensor | None = None,
    layer: nn.Module | None = None,
) -> np.ndarray:
    """Grad-CAM attributions of beats, upsampled to the beat's 187 samples.

    Parameters
    ----------
    model : nn.Module
        A beat classifier mapping ``(batch, 1, 187)`` beats (and ``(batch, k)``
        features when it takes them) to ``(batch, n_classes)`` logits. It is put in
        eval mode.
    x : ndarray, shape (n_beats, 187) or (n_beats, 1, 187)
        Beats in [0, 1] at 120 Hz.
    target : int or ndarray of int, shape (n_beats,), optional
        Class explained for each beat; default the predicted class.
    features : ndarray, shape (n_beats, k), optional
        Per-beat features for models that take them (passed as additional forward
        arguments, not attributed).
    layer : nn.Module, optional
        Layer whose output is attributed; default :func:`cam_layer` (``bn2`` for
        ECG1DCNN, the last convolution otherwise).

    Returns
    -------
    ndarray, shape (n_beats, 187), float32
        Non-negative (ReLU'd) attributions, each beat scaled to a maximum of 1 (0
        everywhere when no region supports the class).
    """
    from captum.attr import LayerAttribution, LayerGradCam

    model.eval()
    xt = _beats_tensor(x)
    ft = None if features is None or np.shape(features)[-1] == 0 else _as_tensor(features)
    targets = _targets(model, xt, ft, target)
    cam = LayerGradCam(model, layer if layer is not None else cam_layer(model))
    out = []
    # captum differentiates: gradients on, even when called under inference_mode/no_grad
    with torch.inference_mode(False), torch.enable_grad():
        for start in range(0, len(xt), _CHUNK):
            part = slice(start, start + _CHUNK)
            extra = None if ft is None else (ft[part].clone(),)
            attr = cam.attribute(
                xt[part].clone(),
                target=targets[part].tolist(),
                additional_forward_args=extra,
                relu_attributions=True,
            )
            up = LayerAttribution.interpolate(attr, (xt.shape[-1],), interpolate_mode="linear")
            out.append(up.detach()[:, 0])
    if not out:
        return np.zeros((0, xt.shape[-1]), np.float32)
    return _normalise(torch.cat(out)).astype(np.float32)


def _targets(model, xt, ft, target) -> torch.Tensor:
    """Per-beat class indices: ``target`` broadcast, or the model's predictions."""
    n = len(xt)
    if target is not None:
        t = torch.as_tensor(np.broadcast_to(np.asarray(target, dtype=np.int64), (n,)).copy())
        return t
    from .inference import predict_proba

    ftn = None if ft is None else ft.numpy()
    return torch.from_numpy(predict_proba(model, xt[:, 0].numpy(), ftn).argmax(axis=1))


# --------------------------------------------------------------------------- figure


def select_examples(
    proba: np.ndarray, y_true: np.ndarray, n_per_class: int
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Pick, per true class, typical correct beats and the most confident mistakes.

    Parameters
    ----------
    proba : ndarray, shape (n_beats, n_classes)
    y_true : ndarray of int, shape (n_beats,)
    n_per_class : int

    Returns
    -------
    dict of int to (ndarray, ndarray)
        Class -> (indices of correctly classified beats whose probability of their class
        is closest to the class's median among correct beats; indices of misclassified
        beats with the highest probability of the wrong class).
    """
    pred = proba.argmax(axis=1)
    conf = proba.max(axis=1)
    picks = {}
    for k in range(proba.shape[1]):
        right = np.flatnonzero((y_true == k) & (pred == k))
        wrong = np.flatnonzero((y_true == k) & (pred != k))
        centre = np.median(conf[right]) if right.size else 0.0
        typical = right[np.argsort(np.abs(conf[right] - centre), kind="stable")]
        worst = wrong[np.argsort(-conf[wrong], kind="stable")]
        picks[k] = (typical[:n_per_class], worst[:n_per_class])
    return picks


def _draw_beat(ax, beat: np.ndarray, attribution: np.ndarray, title: str, color: str) -> None:
    """One beat over its attribution, shown as a red background strip."""
    t = np.arange(len(beat)) / FS_BEAT
    extent = (t[0], t[-1], -0.05, 1.05)
    ax.imshow(
        attribution[None, :],
        aspect="auto",
        cmap="Reds",
        vmin=0,
        vmax=1,
        extent=extent,
        alpha=0.7,
        interpolation="nearest",
    )
    ax.plot(t, beat, color="black", linewidth=0.8)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_title(title, fontsize=7, color=color)
    ax.tick_params(labelsize=6)


def _empty_panel(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=7, transform=ax.transAxes)
    ax.set_axis_off()  # not set_xticks([]): the axes share their ticks


def plot_explanations(
    loaded,
    beats: Beats | np.ndarray,
    y_true: np.ndarray | None,
    path: str | os.PathLike,
    n_per_class: int = 3,
) -> Path:
    """Save a grid of beats with their Grad-CAM attributions as PNG.

    One row per AAMI class: ``n_per_class`` typical correctly classified beats (left,
    black titles) and the ``n_per_class`` most confident misclassifications (right, red
    titles), each drawn over its attribution for the predicted class (red background,
    darker = more important). Time is in seconds from the R peak (120 Hz).

    Parameters
    ----------
    loaded : LoadedModel
        Model and metadata from :func:`ecg_utils.checkpoint.load_model`.
    beats : Beats or ndarray, shape (n_beats, 187)
        Beats at 120 Hz; a bare array only for models without per-beat features.
    y_true : ndarray of int, shape (n_beats,), optional
        True labels; default ``beats.y``.
    path : path-like
        Output PNG; written atomically.
    n_per_class : int
        Beats per panel group.

    Returns
    -------
    Path
        ``path``.
    """
    from matplotlib.figure import Figure

    from .evaluation import _save_figure
    from .inference import predict_proba

    x, feats, y = _explain_inputs(loaded, beats, y_true)
    proba = predict_proba(loaded.model, x, feats)
    picks = select_examples(proba, y, n_per_class)
    chosen = np.concatenate([np.concatenate(p) for p in picks.values()]).astype(np.int64)
    cams = grad_cam(loaded.model, x[chosen], features=None if feats is None else feats[chosen])
    cam_of = dict(zip(chosen.tolist(), cams, strict=True))
    ncols = 2 * n_per_class
    fig = Figure(figsize=(1.9 * ncols, 1.5 * len(CLASS_NAMES)), layout="constrained")
    axes = fig.subplots(len(CLASS_NAMES), ncols, sharex=True, sharey=True, squeeze=False)
    for k, name in enumerate(CLASS_NAMES):
        for j, (group, ok) in enumerate(((picks[k][0], True), (picks[k][1], False))):
            for i in range(n_per_class):
                ax = axes[k, j * n_per_class + i]
                if i >= len(group):
                    _empty_panel(ax, "no correct beats" if ok else "no errors")
                    continue
                b = int(group[i])
                pred = int(proba[b].argmax())
                title = f"{name}→{CLASS_NAMES[pred]} p={proba[b, pred]:.2f}"
                _draw_beat(ax, x[b], cam_of[b], title, "black" if ok else "firebrick")
        axes[k, 0].set_ylabel(f"true {name}", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("time (s)", fontsize=7)
    fig.suptitle(
        "Grad-CAM of the predicted class: typical correct beats (left), "
        "most confident errors (right)",
        fontsize=9,
    )
    return _save_figure(fig, path)


def _explain_inputs(loaded, beats, y_true):
    """Beats ``(n, 187)``, features ``(n, k)`` or None, and labels ``(n,)``."""
    feature_set = loaded.meta.get("feature_set")
    if isinstance(beats, Beats):
        x = beats.x
        feats = beat_features(beats, feature_set) if feature_set else None
        y = beats.y if y_true is None else y_true
    else:
        if feature_set:
            raise EcgError(f"the model needs {feature_set!r} features: pass a Beats set")
        x, feats, y = np.asarray(beats, np.float32), None, y_true
    if y is None:
        raise EcgError("true labels are needed to pick correct and misclassified beats")
    y = np.asarray(y, dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != BEAT_LENGTH or len(y) != len(x):
        raise EcgError(f"expected beats (n, {BEAT_LENGTH}) and n labels, got {x.shape}, {y.shape}")
    return x, feats, y
