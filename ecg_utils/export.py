"""Export trained weights to ONNX and run the exported model with ONNX Runtime.

The ONNX graph takes ``beats`` of shape ``(batch, 1, 187)`` (float32 in [0, 1] at
120 Hz) and, for models with per-beat features, ``features`` of shape ``(batch, k)``;
it returns ``logits`` and ``probabilities``, both ``(batch, 5)``. The batch axis is
dynamic. A JSON file beside the model (``model.onnx.json``) holds the checkpoint's
metadata (classes, sampling rate, feature set, ...) plus the graph's inputs and outputs.

The TorchScript exporter (``dynamo=False``) is used: in torch 2.13 the default
torch.export-based exporter has no opset-17 implementations, and its conversion down
from opset 18 fails on ResNet1D's ``ReduceMean``, silently leaving opset 18; it also
writes the weights to a separate ``.onnx.data`` file. ONNX packages are optional
dependencies (``pip install .[export]``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._io import EcgError, atomic_path, write_text_atomic
from .checkpoint import load_model

INPUT_BEATS = "beats"
INPUT_FEATURES = "features"
OUTPUTS = ("logits", "probabilities")
_CHUNK = 8192
"""Beats per ONNX Runtime call in :func:`onnx_predict_proba`."""


class _WithProbabilities(nn.Module):
    """Wrap a classifier so the graph returns logits and softmax probabilities."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(*inputs)
        return logits, torch.softmax(logits, dim=1)


def onnx_metadata_path(path: str | os.PathLike) -> Path:
    """The JSON file beside an ONNX model (``model.onnx`` -> ``model.onnx.json``)."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def _example_inputs(meta: dict, model: nn.Module) -> tuple[torch.Tensor, ...]:
    length = int(meta.get("input_length", 187))
    beats = torch.rand(2, 1, length)
    if not meta.get("feature_set"):
        return (beats,)
    return beats, torch.rand(2, int(getattr(model, "n_features", 0)))


def _export_bytes(model: nn.Module, inputs: tuple[torch.Tensor, ...], opset: int) -> bytes:
    """Serialise ``model`` to an ONNX protobuf with a dynamic batch axis."""
    names = [INPUT_BEATS, INPUT_FEATURES][: len(inputs)]
    dynamic = {name: {0: "batch"} for name in (*names, *OUTPUTS)}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript exporter, on purpose
        torch.onnx.export(
            _WithProbabilities(model).eval(),
            inputs,
            buffer,
            input_names=names,
            output_names=list(OUTPUTS),
            dynamic_axes=dynamic,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return buffer.getvalue()


def _graph_io(model_proto) -> dict:
    """Names and shapes (``"batch"`` for the dynamic axis) of the graph's inputs/outputs."""

    def shape(value) -> list:
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    return {
        "inputs": {v.name: shape(v) for v in model_proto.graph.input},
        "outputs": {v.name: shape(v) for v in model_proto.graph.output},
    }


def export_onnx(weights: str | os.PathLike, path: str | os.PathLike, opset: int = 17) -> Path:
    """Export a weights file to ONNX, with its metadata as JSON beside it.

    Parameters
    ----------
    weights : path-like
        A ``.pth`` state dict readable by :func:`ecg_utils.checkpoint.load_model`.
    path : path-like
        Output ``.onnx`` file, written atomically; ``path + ".json"`` gets the metadata.
    opset : int
        ONNX operator set version.

    Returns
    -------
    Path
        ``path``. The graph maps ``beats`` (batch, 1, 187) [and ``features`` (batch, k)]
        to ``logits`` and ``probabilities`` (batch, 5); it passes ``onnx.checker``.
    """
    import onnx

    loaded = load_model(weights)
    inputs = _example_inputs(loaded.meta, loaded.model)
    proto = onnx.load_from_string(_export_bytes(loaded.model, inputs, opset))
    meta = {
        **loaded.meta,
        "format": "onnx",
        "opset": opset,
        **_graph_io(proto),
        "source_weights": str(weights),
        "source_sha256": hashlib.sha256(Path(weights).read_bytes()).hexdigest(),
        "torch_version": torch.__version__,
    }
    for key in ("architecture", "classes", "fs", "feature_set"):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(meta.get(key))
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise EcgError(f"exported ONNX model fails onnx.checker: {exc}", path) from exc
    with atomic_path(path) as tmp:
        tmp.write_bytes(proto.SerializeToString())
    write_text_atomic(onnx_metadata_path(path), json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return Path(path)


def onnx_session(path: str | os.PathLike, threads: int | None = None):
    """An ONNX Runtime CPU session with all graph optimisations.

    Parameters
    ----------
    path : path-like
        An ``.onnx`` file from :func:`export_onnx`.
    threads : int, optional
        Intra-op threads; default ``torch.get_num_threads()``.

    Returns
    -------
    onnxruntime.InferenceSession
    """
    import onnxruntime as ort

    if not Path(path).is_file():
        raise EcgError("ONNX model not found", path)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own, unexported exception types
        raise EcgError(f"not a loadable ONNX model: {str(exc).splitlines()[0]}", path) from exc


def onnx_predict_proba(
    path, x: np.ndarray, features: np.ndarray | None = None, batch_size: int = _CHUNK
) -> np.ndarray:
    """Class probabilities of beats from an exported ONNX model.

    Parameters
    ----------
    path : path-like or onnxruntime.InferenceSession
        An ``.onnx`` file from :func:`export_onnx`, or a session from :func:`onnx_session`.
    x : ndarray, shape (n_beats, 187) or (n_beats, 1, 187)
        Beats in [0, 1] at 120 Hz.
    features : ndarray, shape (n_beats, k), optional
        Per-beat features, required when the graph has a ``features`` input.
    batch_size : int
        Beats per ONNX Runtime call.

    Returns
    -------
    ndarray, shape (n_beats, n_classes), float32
    """
    session = path if hasattr(path, "run") else onnx_session(path)
    xb = np.ascontiguousarray(x, dtype=np.float32)
    xb = xb[:, None, :] if xb.ndim == 2 else xb
    wanted = {i.name for i in session.get_inputs()}
    if INPUT_FEATURES in wanted and features is None:
        raise EcgError("this ONNX model needs per-beat features (batch, k)")
    feats = None if INPUT_FEATURES not in wanted else np.ascontiguousarray(features, np.float32)
    out = []
    for start in range(0, len(xb), batch_size):
        feed = {INPUT_BEATS: xb[start : start + batch_size]}
        if feats is not None:
            feed[INPUT_FEATURES] = feats[start : start + batch_size]
        out.append(session.run([OUTPUTS[1]], feed)[0])
    if not out:
        return np.zeros((0, int(session.get_outputs()[1].shape[1])), np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)
