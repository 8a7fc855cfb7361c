"""ECG heartbeat classification (AAMI classes N, S, V, F, Q) on MIT-BIH with 1D CNNs.

The public API re-exported here covers the whole study: reading data, segmenting beats
as in the Kaggle set of Kachuee et al. 2018 (187 samples at 120 Hz from the R peak, in
[0, 1]), protocols, models, training, evaluation, prediction on new recordings and
loading the shipped weights. Nothing runs at import time.
"""

from pathlib import Path

from ._io import EcgError
from .beats import (
    AAMI_CLASSES,
    BEAT_LENGTH,
    CLASS_NAMES,
    FS_BEAT,
    Beats,
    aami_label,
    build_beats,
    segment_beats,
)
from .checkpoint import LoadedModel, load_model, save_model
from .evaluation import bootstrap_ci, classification_metrics
from .inference import predict_proba
from .models import ECG1DCNN, ResNet1D
from .splits import DS1, DS2, make_split
from .training import TrainConfig, train

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "interpatient.pth"
"""The model for unseen patients (trained on DS1); prediction uses it by default."""

__version__ = "0.1.0"

__all__ = [
    "AAMI_CLASSES",
    "BEAT_LENGTH",
    "CLASS_NAMES",
    "DEFAULT_WEIGHTS",
    "DS1",
    "DS2",
    "FS_BEAT",
    "Beats",
    "ECG1DCNN",
    "EcgError",
    "LoadedModel",
    "ResNet1D",
    "TrainConfig",
    "aami_label",
    "bootstrap_ci",
    "build_beats",
    "classification_metrics",
    "load_model",
    "make_split",
    "predict_proba",
    "save_model",
    "segment_beats",
    "train",
]
