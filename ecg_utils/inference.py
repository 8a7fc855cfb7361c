"""Batched inference for beats ``(n_beats, 187)`` at 120 Hz.

Throughput on CPU (``bench/inference.py``) depends mostly on the batch size: batches of
a few hundred beats keep the activations (32 x 187 floats per beat after the first
convolution) in the CPU caches, while batches of thousands spill them to memory and
run 3-4 times slower. For long inputs BatchNorm is also folded into the preceding
convolutions, which removes one pass over the activations.

Long inputs are split into one contiguous share per core (``torch.get_num_threads()``),
each run in its own Python thread with single-threaded operators: the cores never wait
for each other between operators, so a machine shared with other processes slows
inference down in proportion to the CPU taken, instead of stalling every operator
while one of its threads is descheduled. (While this runs, ``torch.get_num_threads()``
reads 1 in every thread of the process.)
"""

from __future__ import annotations

import copy
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.fx
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .beats import beat_features

DEFAULT_BATCH_SIZE = 256
"""Beats per forward pass: small enough to stay in cache, large enough to amortise calls."""
FUSE_MIN_BEATS = 16384
"""Fold BatchNorm only for inputs this long: folding costs a model copy (about 30 ms)."""
PARALLEL_MIN_BATCHES = 4
"""Split the beats over one Python thread per core once each gets this many batches."""


def fuse_for_inference(model: nn.Module) -> nn.Module:
    """A copy of an eval-mode model with each BatchNorm folded into its convolution.

    Uses ``torch.fx`` to find ``Conv1d -> BatchNorm1d`` pairs (the convolution's output
    used only by the BatchNorm); the copy computes the same function up to float
    rounding (about 1e-5 on logits). Models in training mode, or that ``torch.fx``
    cannot trace, are returned unchanged.
    """
    if model.training:
        return model
    try:
        graph_module = torch.fx.symbolic_trace(copy.deepcopy(model))
    except Exception:  # untraceable control flow: run the model as it is
        return model
    modules = dict(graph_module.named_modules())
    for node in list(graph_module.graph.nodes):
        conv = _conv_before_batchnorm(node, modules)
        if conv is None:
            continue
        fused = fuse_conv_bn_eval(modules[conv.target], modules[node.target])
        parent, _, name = conv.target.rpartition(".")
        setattr(graph_module.get_submodule(parent), name, fused)
        node.replace_all_uses_with(conv)
        graph_module.graph.erase_node(node)
    graph_module.delete_all_unused_submodules()
    graph_module.recompile()
    return graph_module


def _conv_before_batchnorm(node, modules: dict[str, nn.Module]):
    """The Conv1d node feeding ``node`` when ``node`` is a foldable BatchNorm1d, else None."""
    if node.op != "call_module" or not isinstance(modules.get(node.target), nn.BatchNorm1d):
        return None
    if not modules[node.target].track_running_stats:
        return None
    conv = node.args[0]
    is_conv = isinstance(conv, torch.fx.Node) and conv.op == "call_module"
    if not is_conv or not isinstance(modules.get(conv.target), nn.Conv1d):
        return None
    return conv if len(conv.users) == 1 else None


def predict_proba(
    model: nn.Module,
    x: np.ndarray,
    features: np.ndarray | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> np.ndarray:
    """Class probabilities of beats.

    Parameters
    ----------
    model : nn.Module
        Called as ``model(x)`` or ``model(x, features)``; it is put in eval mode.
    x : ndarray, shape (n_beats, 187)
        Beats in [0, 1] at 120 Hz.
    features : ndarray, shape (n_beats, k), optional
        Per-beat features for models that take them.
    batch_size : int
        Beats per forward pass; a few hundred is fastest on CPU (see module notes).

    Returns
    -------
    ndarray, shape (n_beats, n_classes), float32
    """
    model.eval()
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(1)
    ft = None if features is None or features.shape[1] == 0 else torch.from_numpy(features)
    if len(xt) == 0:
        return np.zeros((0, 5), np.float32)
    device = _device_of(model)
    if device.type != "cpu":  # a model moved to a GPU runs there, batch by batch
        return _forward_batches(model, xt, ft, batch_size, device)
    if len(xt) >= FUSE_MIN_BEATS:
        model = fuse_for_inference(model)
    workers = min(torch.get_num_threads(), len(xt) // (PARALLEL_MIN_BATCHES * batch_size))
    if workers < 2:
        return _forward_batches(model, xt, ft, batch_size)
    bounds = np.linspace(0, len(xt), workers + 1).astype(int)
    parts = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    with _one_intra_op_thread, ThreadPoolExecutor(workers) as pool:
        chunks = pool.map(
            lambda p: _forward_batches(model, xt[p], None if ft is None else ft[p], batch_size),
            parts,
        )
        return np.concatenate(list(chunks))


def _device_of(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (the CPU for neither)."""
    for tensor in [*model.parameters(), *model.buffers()][:1]:
        return tensor.device
    return torch.device("cpu")


@torch.inference_mode()
def _forward_batches(
    model, xt: torch.Tensor, ft, batch_size: int, device: torch.device | None = None
) -> np.ndarray:
    """Softmax of ``model`` over ``xt`` (batch, 1, 187) in batches, in this thread, on
    ``device`` (the CPU when None); the result is a CPU array."""
    out = []
    for start in range(0, len(xt), batch_size):
        xb = xt[start : start + batch_size]
        fb = None if ft is None else ft[start : start + batch_size]
        if device is not None:
            xb = xb.to(device)
            fb = None if fb is None else fb.to(device)
        logits = model(xb) if fb is None else model(xb, fb)
        out.append(torch.softmax(logits, dim=1).float().cpu())
    return torch.cat(out).numpy()


class _OneIntraOpThread:
    """Context: torch operators single-threaded while any caller is inside (re-entrant).

    A count shared by all threads restores the caller's thread setting only when the
    last concurrent :func:`predict_proba` call leaves.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._users = 0
        self._saved = 1

    def __enter__(self):
        with self._lock:
            if self._users == 0:
                self._saved = torch.get_num_threads()
                torch.set_num_threads(1)
            self._users += 1

    def __exit__(self, *exc):
        with self._lock:
            self._users -= 1
            if self._users == 0:
                torch.set_num_threads(self._saved)


_one_intra_op_thread = _OneIntraOpThread()


def predict_beats(loaded, beats, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """Probabilities for a :class:`~ecg_utils.beats.Beats` set with a loaded model.

    ``loaded`` is a :class:`~ecg_utils.checkpoint.LoadedModel`; its metadata says which
    per-beat features to compute.
    """
    return predict_beat_set(loaded.model, beats, loaded.meta.get("feature_set"), batch_size)


def predict_beat_set(
    model: nn.Module, beats, feature_set: str | None, batch_size: int = DEFAULT_BATCH_SIZE
) -> np.ndarray:
    """Probabilities ``(n_beats, 5)`` for a Beats set, computing its ``feature_set``."""
    return predict_proba(model, beats.x, beat_features(beats, feature_set), batch_size)
