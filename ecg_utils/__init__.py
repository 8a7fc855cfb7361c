"""ECG heartbeat classification (AAMI classes N, S, V, F, Q) on MIT-BIH with 1D CNNs.

The public API re-exported here covers the whole study: reading data, segmenting beats
as in the Kaggle set of Kachuee et al. 2018 (187 samples at 120 Hz from the R peak, in
[0, 1]), protocols, models, training, evaluation, prediction on new recordings and
loading the shipped weights. Nothing runs at import time, and the heavy modules (torch,
scikit-learn) load on first use, so the command line starts quickly.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ._io import EcgError as EcgError  # re-exported

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "relative_all.pth"
"""The product model for new patients: boosted trees on patient-relative inputs
(:mod:`ecg_utils.relative`), the recipe chosen on DS1 record folds and svdb-dev, trained
on all 48 MIT-BIH records; prediction uses it by default."""
BENCHMARK_WEIGHTS = Path(__file__).parent / "weights" / "relative_ds1.pth"
"""The benchmark model for new patients: the same recipe trained on DS1 only; its
DS1 -> DS2 figures are the inter-patient benchmark."""
NETWORK_PRODUCT_WEIGHTS = Path(__file__).parent / "weights" / "product.pth"
"""The previous product model (a narrow ResNet1D ensemble with RR and template features,
trained on all 48 records), kept for comparison and for the study's network sections."""
NETWORK_BENCHMARK_WEIGHTS = Path(__file__).parent / "weights" / "interpatient.pth"
"""The previous benchmark model (the same network recipe trained on DS1)."""

KAGGLE_BEST_WEIGHTS = Path(__file__).parent / "weights" / "kaggle_best.pth"
"""The strongest beat model on the Kaggle protocol (random beat split, so patients it has
seen): for that benchmark, not for new patients."""

__version__ = "0.1.0"

_EXPORTS = {
    "adaptation": ("adapt",),
    "archive": ("ArchiveOptions", "find_recordings", "read_beats", "run_archive"),
    "beats": (
        "AAMI_CLASSES",
        "BEAT_LENGTH",
        "CLASS_NAMES",
        "FS_BEAT",
        "Beats",
        "aami_label",
        "build_beats",
        "segment_beats",
        "WIDE_LENGTH",
        "wide_windows",
    ),
    "checkpoint": ("LoadedModel", "load_model", "save_model"),
    "datasets": ("BeatDataset",),
    "device": ("resolve_device",),
    "evaluation": ("bootstrap_ci", "classification_metrics"),
    "holter": ("holter_summary",),
    "inference": ("predict_proba",),
    "models": ("ECG1DCNN", "ResNet1D", "build_model", "count_parameters"),
    "operating": ("OPERATING_POINTS", "with_operating_point"),
    "plan": ("describe_plan", "plan_study"),
    "noise": ("NOISE_KINDS", "make_noise", "noise_stress"),
    "predict": ("classify_record", "classify_with_quality"),
    "quality": ("QualityRule", "SignalQuality", "assess_quality", "noisy_intervals"),
    "relative": ("relative_features", "rhythm_features"),
    "review": ("review_beats",),
    "splits": ("DS1", "DS2", "make_split"),
    "training": ("TrainConfig", "train"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(
    [
        "BENCHMARK_WEIGHTS",
        "DEFAULT_WEIGHTS",
        "KAGGLE_BEST_WEIGHTS",
        "NETWORK_BENCHMARK_WEIGHTS",
        "NETWORK_PRODUCT_WEIGHTS",
        "EcgError",
        *_MODULE_OF,
    ]
)


def __getattr__(name: str):
    """Load a public name from its module on first access (PEP 562)."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'ecg_utils' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
