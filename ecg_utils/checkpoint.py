"""Saving and loading weights with the metadata that rebuilds the model.

A model is stored as two files side by side: ``name.pth``, a plain state dict of CPU
tensors (so ``model.load_state_dict(torch.load("name.pth"))`` works on any machine),
and ``name.json``, the metadata: architecture and its arguments, class names, sampling
rate, input length, per-beat features, training configuration and data fingerprint.
"""

from __future__ import annotations

import json
import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ._io import EcgError, atomic_open, write_text_atomic
from .beats import BEAT_LENGTH, CLASS_NAMES, FS_BEAT
from .models import build_model


@dataclass
class LoadedModel:
    """A model in eval mode with its metadata.

    Call :meth:`predict_proba` for class probabilities: ``.model`` itself takes tensors
    and, for most models, per-beat features as a second input.
    """

    model: nn.Module
    meta: dict = field(default_factory=dict)

    @property
    def feature_set(self) -> str | None:
        """Per-beat feature set the model takes besides the beat (``"rr"``), or None."""
        return self.meta.get("feature_set")

    @property
    def n_features(self) -> int:
        """Number of per-beat features the model takes besides each beat (0 for none)."""
        return int(getattr(self.model, "n_features", 0) or 0)

    def predict_proba(self, beats, features=None, batch_size: int | None = None):
        """Class probabilities of beats, for every architecture.

        Parameters
        ----------
        beats : array_like, shape (n_beats, 187) or (187,)
            Beats at 120 Hz, scaled to [0, 1] as Kachuee et al. (2018) (the Kaggle
            CSVs, :func:`ecg_utils.beats.segment_beats`).
        features : array_like, shape (n_beats, n_features), optional
            The per-beat features of :attr:`feature_set` (RR intervals, morphology),
            required when :attr:`n_features` > 0. They come from the recording the beats
            were cut from: ``ecg_utils.predict.recording_inputs(signal, fs, None, 0,
            loaded.feature_set)`` returns R peaks, beats and features together.
        batch_size : int, optional
            Beats per forward pass (default :data:`ecg_utils.inference.DEFAULT_BATCH_SIZE`).

        Returns
        -------
        ndarray, shape (n_beats, 5), float32
            Probabilities of N, S, V, F, Q (rows sum to 1), at the weights' balanced
            operating point, each beat on its own (:func:`ecg_utils.classify_record`
            also adapts to a recording when the weights' metadata says so).

        Raises
        ------
        EcgError
            When the model needs features that were not given (saying which and how to
            get them), or beats or features have the wrong shape.
        """
        import numpy as np

        from .inference import DEFAULT_BATCH_SIZE, predict_proba

        x = np.asarray(beats, dtype=np.float32)
        x = x[None] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[1] != BEAT_LENGTH:
            raise EcgError(
                f"beats must have shape (n_beats, {BEAT_LENGTH}) (120 Hz), got {x.shape}"
            )
        k = self.n_features
        if k and features is None:
            name = self.meta.get("architecture", type(self.model).__name__)
            raise EcgError(
                f"this {name} model takes {k} per-beat features ({self.feature_set!r}: RR "
                "intervals and more, from the recording) besides the beats: classify the "
                "recording with ecg_utils.classify_record(signal, fs), or get beats and "
                "features with ecg_utils.predict.recording_inputs(signal, fs, None, 0, "
                "loaded.feature_set)"
            )
        f = None
        if features is not None:
            f = np.asarray(features, dtype=np.float32)
            f = f[None] if f.ndim == 1 else f
            if not k:
                raise EcgError("this model takes no per-beat features; leave features out")
            if f.shape != (len(x), k):
                raise EcgError(
                    f"features must have shape ({len(x)}, {k}) for these beats, got {f.shape}"
                )
        return predict_proba(self.model, x, f, batch_size or DEFAULT_BATCH_SIZE)


def metadata_path(weights: str | Path) -> Path:
    """The metadata file that sits beside ``weights`` (``x.pth`` -> ``x.json``)."""
    return Path(weights).with_suffix(".json")


def _input_meta() -> dict:
    """What every model here takes and gives: beats at ``fs`` Hz, five classes, no features."""
    return {
        "classes": list(CLASS_NAMES),
        "fs": FS_BEAT,
        "input_length": BEAT_LENGTH,
        "feature_set": None,
    }


def save_model(model: nn.Module, path: str | Path, meta: dict) -> None:
    """Write ``model``'s state dict (CPU tensors) and its metadata atomically.

    ``meta`` must hold ``architecture`` and ``model_args``; class names, ``fs`` and
    ``input_length`` are filled in when missing.
    """
    meta = {**_input_meta(), **meta}
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    save_tensors(state, path)
    write_metadata(path, meta)


def write_metadata(weights: str | Path, meta: dict) -> None:
    """Write the metadata file beside ``weights`` (sorted keys, atomically)."""
    write_text_atomic(metadata_path(weights), json.dumps(meta, indent=2, sort_keys=True) + "\n")


def save_tensors(obj, path: str | Path) -> None:
    """``torch.save`` through a file handle, atomically.

    Saved by name, torch would call the archive after the (temporary) file, so the same
    tensors would give different bytes each time; through a handle the bytes depend on
    the tensors alone, and equal weights have equal hashes.
    """
    with atomic_open(path, "wb") as handle:
        torch.save(obj, handle)


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict safely: CPU tensors, ``weights_only=True`` (no code runs).

    Raises
    ------
    EcgError
        Naming the file when it is missing, truncated or not a PyTorch file, when it
        carries objects other than tensors (a pickled payload is refused, never run), or
        when it is not a flat mapping of names to tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise EcgError("weights file not found", path)
    if path.stat().st_size == 0:
        raise EcgError("weights file is empty", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols on junk
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        blocked = re.search(r"GLOBAL (\S+)", str(exc))
        if blocked:
            raise EcgError(
                f"refused to load: the file holds objects other than tensors "
                f"({blocked.group(1)}; possible code payload); only plain state dicts are "
                f"accepted",
                path,
            ) from None
        raise EcgError("not a PyTorch weights file (corrupt, or another format)", path) from None
    except OSError as exc:
        raise EcgError(f"cannot read weights: {exc.strerror or exc}", path) from None
    except Exception:  # torch raises RuntimeError, EOFError, KeyError, ... on junk
        raise EcgError(
            "not a readable PyTorch weights file (truncated or corrupt?)", path
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        hint = (
            " (this looks like a training checkpoint; use the .pth written after training)"
            if isinstance(state, dict) and "optimizer" in state
            else ""
        )
        raise EcgError(f"expected a state dict of tensors{hint}", path)
    return state


def read_metadata(path: str | Path) -> dict:
    """Metadata of a weights file; the seed's weights (no metadata) are an ECG1DCNN."""
    meta_file = metadata_path(path)
    if not meta_file.exists():
        return {
            "architecture": "ecg1dcnn",
            "model_args": {"num_classes": 5},
            **_input_meta(),
            "note": "no metadata file; assumed the seed's ECG1DCNN",
        }
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EcgError(f"metadata is not valid JSON: {exc}", meta_file) from None
    except OSError as exc:
        raise EcgError(f"cannot read metadata: {exc.strerror or exc}", meta_file) from None
    if not isinstance(meta, dict) or "architecture" not in meta:
        raise EcgError("metadata lacks 'architecture'", meta_file)
    if not isinstance(meta.get("model_args", {}), dict):
        raise EcgError("metadata 'model_args' must be an object", meta_file)
    if meta.get("classes", list(CLASS_NAMES)) != list(CLASS_NAMES):
        raise EcgError(
            f"metadata classes {meta.get('classes')} differ from {list(CLASS_NAMES)}", meta_file
        )
    return meta


def load_model(path: str | Path) -> LoadedModel:
    """Load any of the project's weight files (or the seed's) on CPU, in eval mode.

    Parameters
    ----------
    path : path
        A ``.pth`` state dict; its ``.json`` metadata beside it says how to rebuild
        the model.

    Returns
    -------
    LoadedModel
        ``.model`` maps ``(batch, 1, 187)`` beats (and features when
        ``.features`` is not empty) to ``(batch, 5)`` logits; ``.meta`` is the metadata.
    """
    meta = read_metadata(path)
    state = load_state_dict(path)
    try:
        model = build_model(meta["architecture"], **meta.get("model_args", {}))
    except (TypeError, ValueError) as exc:
        raise EcgError(f"metadata describes an unknown model: {exc}", metadata_path(path)) from exc
    problem = _state_mismatch(model, state)
    if problem:
        raise EcgError(
            f"weights do not fit architecture {meta['architecture']!r} ({problem})", path
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise EcgError(
            f"weights do not fit architecture {meta['architecture']!r} "
            f"({str(exc).splitlines()[0]})",
            path,
        ) from exc
    model.eval()
    return LoadedModel(model, meta)


def _state_mismatch(model: nn.Module, state: dict[str, torch.Tensor]) -> str | None:
    """A short description of how ``state`` differs from ``model``'s, or None if it fits."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]

    def few(keys: list[str]) -> str:
        return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")

    parts = []
    if missing:
        parts.append(f"missing {few(missing)}")
    if unexpected:
        parts.append(f"unexpected {few(unexpected)}")
    if shapes:
        parts.append(f"shape of {few(shapes)}")
    return "; ".join(parts) or None


def fold_models_path(weights: str | Path) -> Path:
    """Where the cross-validation fold models of ``weights`` are kept (``x_folds.pth``)."""
    weights = Path(weights)
    return weights.with_name(weights.stem + "_folds.pth")


def save_fold_models(states: list[dict], path: str | Path) -> None:
    """Save the fold models' state dicts in one file (keys ``"<fold>.<parameter>"``)."""
    save_tensors({f"{i}.{k}": v for i, state in enumerate(states) for k, v in state.items()}, path)


def load_fold_models(weights: str | Path) -> list[LoadedModel]:
    """The cross-validation fold models of ``weights``, in the order of its folds.

    Returns
    -------
    list of LoadedModel
        Each with the weights' metadata, less its offsets (``class_bias`` and
        ``operating_points`` are None: fold models carry no offsets) and with ``fold``.
    """
    meta = load_model(weights).meta
    flat = load_state_dict(fold_models_path(weights))
    n = 1 + max(int(k.split(".", 1)[0]) for k in flat)
    models = []
    for i in range(n):
        state = {k.split(".", 1)[1]: v for k, v in flat.items() if k.split(".", 1)[0] == str(i)}
        model = build_model(meta["architecture"], **meta["model_args"])
        model.load_state_dict(state)
        fold_meta = {**meta, "class_bias": None, "operating_points": None, "fold": i}
        models.append(LoadedModel(model.eval(), fold_meta))
    return models
