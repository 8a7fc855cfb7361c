"""Training: one configuration dataclass, a seeded loop, per-epoch checkpoints."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, WeightedRandomSampler

from ._io import EcgError, environment_info
from .beats import CLASS_NAMES, FEATURE_SETS, FS_BEAT, Beats, beat_features, waveform_length
from .checkpoint import save_model
from .datasets import BeatDataset
from .device import describe_device, make_deterministic, resolve_device
from .inference import predict_beat_set, predict_proba
from .models import MODELS, add_logit_offsets, build_model, count_parameters
from .operating import high_sensitivity_offsets, offset_logits
from .splits import PROTOCOLS

TRAINABLE = tuple(
    name
    for name in MODELS
    if name not in ("ensemble", "patient", "trees", "linear", "by_leads", "patient_trees")
)
"""Architectures one training run can train (an ensemble is assembled from runs, a
patient-adapted model from a trained one and a patient's labels)."""


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved in the weights' metadata.

    Attributes
    ----------
    architecture : str
        ``"ecg1dcnn"`` (the seed's network) or ``"resnet1d"``.
    model_args : dict
        Keyword arguments of the architecture (``num_classes`` is always 5).
    feature_set : str or None
        Per-beat features given to the model besides the beat (a key of
        :data:`~ecg_utils.beats.FEATURE_SETS`: ``"rr"``, ``"rr+morph"``, ``"rhythm"``),
        or None.
    epochs, batch_size, lr, weight_decay :
        Optimisation (Adam). ``lr`` is the peak rate when ``schedule`` is ``"onecycle"``.
    schedule : {"none", "onecycle", "cosine"}
    loss : {"ce", "weighted_ce"}
        Plain cross-entropy, or weighted by inverse square-root class frequency.
    sampler : {"none", "balanced"}
        ``"balanced"`` draws beats with inverse square-root class-frequency weights.
    augment : bool
        Random amplitude scale, baseline wander, noise and time shift (see ``augment_batch``).
    patience : int
        Stop after this many epochs without a better validation macro-F1 (0: never).
    ema : float
        Decay per optimiser step of an exponential moving average of the weights (and
        BatchNorm statistics); when > 0, the average is what is validated, chosen and
        saved. 0 turns it off. Averaging steadies a model whose judgement of new
        patients swings from epoch to epoch.
    ema_bn : {"average", "recompute"}
        BatchNorm statistics of the weight average: averaged like the weights, or
        recomputed after every epoch from one pass over the training beats (as
        ``torch.optim.swa_utils.update_bn`` does), since averaged statistics need not fit
        averaged weights.
    calibrate : bool
        After training, add per-class offsets to the output logits, chosen to maximise
        validation macro-F1 (a prior shift for patients unlike the training ones); the
        offsets are folded into the last layer's bias, so every inference path uses them.
    select_classes : str
        Classes whose mean F1 on validation chooses the epoch and the offsets, e.g.
        ``"NSV"`` when validation records hold too few F and Q beats to judge them.
    protocol : {"kaggle", "inter-patient", "all-records"}
        ``all-records`` trains on all 48 records (with ``cv_folds``; no test side).
    val_fraction : float
        Share of the training side held out for validation (records for inter-patient).
    cv_folds : int
        Protocols of whole records only: when >= 2, the epoch, the offsets and the
        model's score come from cross-validation over this many folds of whole training
        records (pooled out-of-fold predictions), then the model is trained on every
        training record up to that epoch (see :func:`train_cross_validated`); 0 uses
        ``val_fraction``.
    seed : int
    fold_seed : int or None
        Seed of the cross-validation folds; None uses ``seed``. Seeds of one recipe that
        share ``fold_seed`` share their folds, so their out-of-fold predictions can be
        averaged (an ensemble).
    threads : int
        Torch CPU threads (0: leave torch's default).
    teacher : str or None
        Weights file of a trained model whose softened probabilities the model also
        learns (knowledge distillation, Hinton et al. 2015); a relative path is looked
        up from the working directory, then from the project's root. None: labels only.
    distill_weight : float
        Share of the distillation term in the loss, in [0, 1]:
        ``(1 - w) * CE(labels) + w * T² * KL(teacher_T || student_T)``.
    distill_temperature : float
        Temperature ``T`` that softens both models' probabilities in that term.
    """

    architecture: str = "ecg1dcnn"
    model_args: dict = field(default_factory=dict)
    feature_set: str | None = None
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "none"
    loss: str = "ce"
    sampler: str = "none"
    augment: bool = False
    patience: int = 0
    ema: float = 0.0
    ema_bn: str = "average"
    protocol: str = "kaggle"
    val_fraction: float = 0.1
    cv_folds: int = 0
    calibrate: bool = False
    select_classes: str = "NSVFQ"
    seed: int = 0
    fold_seed: int | None = None
    threads: int = 0
    teacher: str | None = None
    distill_weight: float = 0.5
    distill_temperature: float = 2.0

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Raise EcgError for values that cannot work (wrong types included)."""
        self._check_types()
        checks = [
            (
                self.architecture in TRAINABLE,
                f"unknown architecture {self.architecture!r}; known: {', '.join(TRAINABLE)}",
            ),
            (
                self.feature_set is None or self.feature_set in FEATURE_SETS,
                f"unknown feature set {self.feature_set!r}; known: {', '.join(FEATURE_SETS)}",
            ),
            (math.isfinite(self.lr), f"learning rate must be finite, got {self.lr}"),
            (
                math.isfinite(self.weight_decay),
                f"weight decay must be finite, got {self.weight_decay}",
            ),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (self.lr > 0, f"learning rate must be > 0, got {self.lr}"),
            (self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay}"),
            (0 < self.val_fraction < 1, f"val_fraction must be in (0, 1), got {self.val_fraction}"),
            (self.patience >= 0, f"patience must be >= 0, got {self.patience}"),
            (0 <= self.ema < 1, f"ema must be in [0, 1), got {self.ema}"),
            (
                self.ema_bn in ("average", "recompute"),
                f"unknown ema_bn {self.ema_bn!r}; choose average or recompute",
            ),
            (
                self.ema_bn == "average" or self.ema > 0,
                "ema_bn='recompute' needs a weight average (ema > 0)",
            ),
            (self.threads >= 0, f"threads must be >= 0, got {self.threads}"),
            (
                self.cv_folds == 0 or self.cv_folds >= 2,
                f"cv_folds must be 0 or >= 2, got {self.cv_folds}",
            ),
            (
                self.cv_folds == 0 or self.protocol != "kaggle",
                "cv_folds needs a protocol of whole records (folds are whole records)",
            ),
            (
                self.cv_folds >= 2 or self.protocol != "all-records",
                "the all-records protocol has no validation records: it needs cv_folds >= 2",
            ),
            (
                self.schedule in ("none", "onecycle", "cosine"),
                f"unknown schedule {self.schedule!r}",
            ),
            (self.loss in ("ce", "weighted_ce"), f"unknown loss {self.loss!r}"),
            (self.sampler in ("none", "balanced"), f"unknown sampler {self.sampler!r}"),
            (
                0 <= self.distill_weight <= 1,
                f"distill_weight must be in [0, 1], got {self.distill_weight}",
            ),
            (
                self.distill_temperature > 0,
                f"distill_temperature must be > 0, got {self.distill_temperature}",
            ),
            (
                not (self.teacher and self.augment),
                "distillation uses the teacher's outputs on the unaugmented training beats: "
                "turn augment off",
            ),
            (
                self.protocol in PROTOCOLS,
                f"unknown protocol {self.protocol!r}; choose one of: {', '.join(PROTOCOLS)}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise EcgError(message)
        self._check_model_args()

    def _check_types(self) -> None:
        kinds = {
            "architecture": (str,),
            "model_args": (dict,),
            "feature_set": (str, type(None)),
            "epochs": (int,),
            "batch_size": (int,),
            "lr": (int, float),
            "weight_decay": (int, float),
            "schedule": (str,),
            "loss": (str,),
            "sampler": (str,),
            "augment": (bool,),
            "patience": (int,),
            "ema": (int, float),
            "ema_bn": (str,),
            "calibrate": (bool,),
            "select_classes": (str,),
            "protocol": (str,),
            "val_fraction": (int, float),
            "cv_folds": (int,),
            "seed": (int,),
            "fold_seed": (int, type(None)),
            "threads": (int,),
            "teacher": (str, type(None)),
            "distill_weight": (int, float),
            "distill_temperature": (int, float),
        }
        for name, types in kinds.items():
            value = getattr(self, name)
            wrong_bool = isinstance(value, bool) and bool not in types
            if wrong_bool or not isinstance(value, types):
                expected = " or ".join(
                    "null"
                    if t is type(None)
                    else {"str": "text", "dict": "object"}.get(t.__name__, t.__name__)
                    for t in types
                )
                raise EcgError(f"training option {name} must be {expected}, got {value!r}")

    def _check_model_args(self) -> None:
        import inspect

        fixed = {"num_classes", "n_features", "wide"} & set(self.model_args)
        if fixed:
            raise EcgError(
                f"model_args may not set {', '.join(sorted(fixed))}: the number of classes is "
                "fixed (5) and n_features and wide follow feature_set"
            )
        try:
            inspect.signature(MODELS[self.architecture]).bind(**self.model_args)
        except TypeError as exc:
            raise EcgError(f"model_args do not fit {self.architecture}: {exc}") from None
        takes = inspect.signature(MODELS[self.architecture]).parameters
        if self.feature_set and "n_features" not in takes:
            raise EcgError(f"architecture {self.architecture} takes no per-beat features")
        if waveform_length(self.feature_set) and "wide" not in takes:
            raise EcgError(f"architecture {self.architecture} cannot read the wide window")

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Build a config from a mapping; unknown keys are errors."""
        if not isinstance(values, dict):
            raise EcgError(
                f"a training configuration must be a mapping, got {type(values).__name__}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise EcgError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**values)

    def replace(self, **overrides) -> TrainConfig:
        """A copy with some fields changed (unknown names are errors)."""
        return TrainConfig.from_dict({**asdict(self), **overrides})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    """What training produced: the best model (eval mode) and how it got there."""

    model: nn.Module
    config: TrainConfig
    history: list[dict]
    best_epoch: int
    seconds: float
    n_parameters: int
    class_bias: list[float] | None = None
    cv: dict | None = None
    device: dict | None = None


def model_arguments(cfg: TrainConfig) -> dict:
    """The architecture's keyword arguments: ``cfg.model_args`` plus the number of classes
    and, for models that take features, their count and the wide window's length."""
    args = {"num_classes": len(CLASS_NAMES), **cfg.model_args}
    if cfg.feature_set:
        args["n_features"] = len(FEATURE_SETS[cfg.feature_set])
    if waveform_length(cfg.feature_set):
        args["wide"] = waveform_length(cfg.feature_set)
    return args


def seed_everything(seed: int) -> None:
    # numpy's global RNG is not used by the training code; torch's is
    torch.manual_seed(seed)


def class_weights(y: np.ndarray, n_classes: int = len(CLASS_NAMES)) -> np.ndarray:
    """Inverse square-root class frequencies, normalised to mean 1 over the beats."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = 1.0 / np.sqrt(np.maximum(counts, 1))
    return w / (w[y].mean())


def augment_batch(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Randomly perturb beats ``(batch, 1, 187)`` at 120 Hz, then clip to [0, 1].

    Amplitude scale 0.85–1.15 about the beat's baseline, a slow sinusoidal baseline
    wander (0.1–0.5 Hz, up to 0.05 of full scale), Gaussian noise at 25–40 dB SNR and a
    shift of up to ±2 samples (±16 ms). The R peak stays at the start, as in training data.
    """
    b, _, n = x.shape
    shape = (b, 1, 1)

    def uniform(lo, hi):
        return lo + (hi - lo) * torch.rand(shape, generator=generator)

    baseline = x[..., -1:].clone()
    x = baseline + (x - baseline) * uniform(0.85, 1.15)
    t = torch.arange(n, dtype=x.dtype) / FS_BEAT
    freq, phase, amp = uniform(0.1, 0.5), uniform(0, 2 * np.pi), uniform(0, 0.05)
    x = x + amp * torch.sin(2 * np.pi * freq * t + phase)
    power = x.var(dim=2, keepdim=True).clamp_min(1e-6)
    snr_db = uniform(25, 40)
    noise = torch.randn(x.shape, generator=generator) * torch.sqrt(power / 10 ** (snr_db / 10))
    x = x + noise
    shift = int(torch.randint(-2, 3, (1,), generator=generator))
    if shift > 0:
        x = torch.cat([x[..., :1].expand(-1, -1, shift), x[..., :-shift]], dim=2)
    elif shift < 0:
        x = torch.cat([x[..., -shift:], torch.zeros_like(x[..., :(-shift)])], dim=2)
    return x.clamp(0.0, 1.0)


def teacher_path(teacher: str, out_dir: str | Path | None = None) -> Path:
    """Where a configuration's ``teacher`` weights are.

    An absolute path as given; a relative one under ``out_dir`` (a study's output folder,
    where it ships the teacher) when it is there, else under the working directory when
    it is there, else under the project's root (the committed teacher, which smoke runs,
    shipping nothing, distil from).
    """
    path = Path(teacher)
    if path.is_absolute():
        return path
    if out_dir is not None and (Path(out_dir) / path).exists():
        return Path(out_dir) / path
    if path.exists():
        return path
    return Path(__file__).resolve().parents[1] / path


def teacher_logits(teacher: str, beats: Beats) -> torch.Tensor:
    """The teacher's log-probabilities ``(n_beats, 5)`` for ``beats`` (its own features,
    offsets included), computed once before training."""
    from .checkpoint import load_model

    loaded = load_model(teacher_path(teacher))
    proba = predict_beat_set(loaded.model, beats, loaded.meta.get("feature_set"))
    return torch.log(torch.from_numpy(proba).clamp_min(1e-12))


def distillation_loss(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``T² * KL(softmax(teacher / T) || softmax(student / T))``, mean over the batch;
    the T² keeps its gradients on the scale of the label loss (Hinton et al. 2015)."""
    t = temperature
    return (
        nn.functional.kl_div(
            nn.functional.log_softmax(student / t, dim=1),
            nn.functional.log_softmax(teacher / t, dim=1),
            reduction="batchmean",
            log_target=True,
        )
        * t
        * t
    )


def _loader(
    train: Beats, cfg: TrainConfig, generator: torch.Generator, pin_memory: bool = False
) -> DataLoader:
    """Batches of the training beats (in memory, so no worker processes: they would only
    copy them); pinned memory speeds up the copies to a CUDA device."""
    soft = teacher_logits(cfg.teacher, train) if cfg.teacher else None
    dataset = BeatDataset(train, cfg.feature_set, soft)
    if cfg.sampler == "balanced":
        weights = torch.from_numpy(class_weights(train.y)[train.y])
        sampler = WeightedRandomSampler(weights, len(train), replacement=True, generator=generator)
        return DataLoader(
            dataset, batch_size=cfg.batch_size, sampler=sampler, pin_memory=pin_memory
        )
    return DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        shuffle=True,
        generator=generator,
        pin_memory=pin_memory,
    )


def _scheduler(optimizer, cfg: TrainConfig, steps_per_epoch: int):
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch
        )
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.epochs * steps_per_epoch)
    return None


def _weight_average(model: nn.Module, decay: float):
    """An exponential moving average of ``model`` (weights and buffers), or None."""
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def recompute_batchnorm(
    model: nn.Module, x: torch.Tensor, features: torch.Tensor, batch_size: int
) -> nn.Module:
    """A copy of ``model`` whose BatchNorm statistics are those of the given beats.

    Parameters
    ----------
    model : nn.Module
    x : Tensor, shape (n_beats, 1, 187)
        Beats at 120 Hz (the training beats, without augmentation).
    features : Tensor, shape (n_beats, k)
        Their per-beat features (``k = 0`` for none).
    batch_size : int

    Returns
    -------
    nn.Module
        In eval mode; the running means and variances are the averages over all batches
        (momentum None), every other layer unchanged (dropout stays off during the pass).
    """
    import copy

    fresh = copy.deepcopy(model).eval()
    device = next(fresh.parameters()).device
    norms = [m for m in fresh.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            batch = (x[i : i + batch_size], features[i : i + batch_size])
            _forward(fresh, *(t.to(device) for t in batch))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    return fresh.eval()


def _forward(model, xb, fb):
    return model(xb) if fb.shape[1] == 0 else model(xb, fb)


def _validate(model, val: Beats, val_features: np.ndarray, cfg: TrainConfig) -> dict:
    return validation_scores(predict_proba(model, val.x, val_features), val.y, cfg)


def validation_scores(proba: np.ndarray, y: np.ndarray, cfg: TrainConfig) -> dict:
    """Loss, accuracy, macro-F1 and selection F1 of probabilities ``(n_beats, 5)``."""
    from sklearn.metrics import accuracy_score, f1_score

    loss = float(
        nn.functional.nll_loss(
            torch.log(torch.from_numpy(proba).clamp_min(1e-12)), torch.from_numpy(y)
        )
    )
    pred = proba.argmax(1)
    return {
        "val_loss": loss,
        "val_accuracy": float(accuracy_score(y, pred)),
        "val_macro_f1": float(
            f1_score(y, pred, labels=range(len(CLASS_NAMES)), average="macro", zero_division=0)
        ),
        "val_selection_f1": float(
            f1_score(y, pred, labels=_labels(cfg), average="macro", zero_division=0)
        ),
    }


def _labels(cfg: TrainConfig) -> list[int]:
    """Labels whose mean F1 selects the epoch and the class offsets."""
    return [CLASS_NAMES.index(c) for c in cfg.select_classes]


def _save_checkpoint(path: Path, state: dict) -> None:
    from .checkpoint import save_tensors

    save_tensors(state, path)


def _load_checkpoint(path: Path, cfg: TrainConfig, data_key: str) -> dict | None:
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        config = json.loads(state["config"])
    except Exception as exc:  # truncated, foreign or damaged file
        detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise EcgError(
            f"cannot resume from this checkpoint ({detail}); remove it to start afresh", path
        ) from None
    if config != cfg.to_dict():
        raise EcgError("checkpoint was made with a different configuration; remove it", path)
    if state.get("data") != data_key:
        raise EcgError("checkpoint was made with different training data; remove it", path)
    return state


def data_key(*parts: Beats) -> str:
    """SHA-256 over the beats and labels of ``parts`` (checkpoints refuse other data)."""
    h = hashlib.sha256()
    for b in parts:
        h.update(str(b.x.shape).encode())
        h.update(np.ascontiguousarray(b.x, dtype=np.float32).tobytes())
        h.update(np.ascontiguousarray(b.y, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(b.rr, dtype=np.float32).tobytes())
    return h.hexdigest()


def train(
    cfg: TrainConfig,
    train_beats: Beats,
    val_beats: Beats | None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
    keep_epoch: int | None = None,
    on_epoch: Callable[[int, nn.Module], None] | None = None,
    device: str = "auto",
) -> TrainResult:
    """Train a model on ``train_beats``, choosing the epoch by validation macro-F1.

    Parameters
    ----------
    cfg : TrainConfig
    train_beats, val_beats : Beats
        Beats ``(n, 187)`` at 120 Hz with labels; validation never touches the test set.
        ``val_beats`` may be None only with ``keep_epoch``.
    keep_epoch : int, optional
        Train with ``cfg``'s schedule up to this epoch and keep that model, without
        validation (the epoch was chosen beforehand, e.g. by cross-validation).
    on_epoch : callable, optional
        Called as ``on_epoch(epoch, model)`` after every epoch (the model in eval mode).
    checkpoint : path, optional
        Where to save the full training state after every epoch (for ``resume``).
    resume : bool
        Continue from ``checkpoint`` when it exists; the result equals an uninterrupted
        run with the same configuration.
    stop_after : int, optional
        Stop (as if interrupted) after this many epochs of this call; for tests.
    device : str
        ``auto``, ``cpu``, ``cuda`` (``cuda:N``) or ``mps`` (see :mod:`ecg_utils.device`).
        The returned model is on the CPU whatever the device, so its saved weights
        load anywhere.
    """
    if keep_epoch is None and val_beats is None:
        raise EcgError("training needs validation beats unless keep_epoch is given")
    if keep_epoch is not None and not 1 <= keep_epoch <= cfg.epochs:
        raise EcgError(f"keep_epoch must be in [1, {cfg.epochs}], got {keep_epoch}")
    if len(train_beats) == 0 or (val_beats is not None and len(val_beats) == 0):
        raise EcgError("training and validation sets must not be empty")
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _train(
            cfg,
            train_beats,
            val_beats,
            checkpoint,
            resume,
            progress,
            stop_after,
            keep_epoch,
            on_epoch,
            resolve_device(device),
        )
    finally:
        torch.set_num_threads(threads)


def _train(
    cfg: TrainConfig,
    train_beats: Beats,
    val_beats: Beats | None,
    checkpoint: str | Path | None,
    resume: bool,
    progress: bool,
    stop_after: int | None,
    keep_epoch: int | None,
    on_epoch: Callable[[int, nn.Module], None] | None,
    device: torch.device,
) -> TrainResult:
    from tqdm.auto import tqdm

    make_deterministic(device)
    seed_everything(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    aug_generator = torch.Generator().manual_seed(cfg.seed + 1)
    model = build_model(cfg.architecture, **model_arguments(cfg)).to(device)
    average = _weight_average(model, cfg.ema)
    judged = average.module if average is not None else model  # what is validated and kept
    loader = _loader(train_beats, cfg, generator, pin_memory=device.type == "cuda")
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = _scheduler(optimizer, cfg, len(loader))
    weight = (
        torch.tensor(class_weights(train_beats.y), dtype=torch.float32, device=device)
        if cfg.loss == "weighted_ce"
        else None
    )
    criterion = nn.CrossEntropyLoss(weight=weight)
    # fixed, so computed once
    val_features = None if val_beats is None else beat_features(val_beats, cfg.feature_set)
    last_epoch = keep_epoch or cfg.epochs

    history: list[dict] = []
    best = {"score": -1.0, "epoch": 0, "state": None}
    start_epoch, elapsed = 1, 0.0
    ckpt_path = Path(checkpoint) if checkpoint else None
    key = data_key(*[b for b in (train_beats, val_beats) if b is not None]) if ckpt_path else ""
    state = _load_checkpoint(ckpt_path, cfg, key) if (resume and ckpt_path) else None
    if state is not None:
        model.load_state_dict(state["model"])
        if average is not None:
            average.load_state_dict(state["average"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        aug_generator.set_state(state["aug_generator"])
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and len(state.get("cuda_rng", [])):
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        history = json.loads(state["history"])
        best = {"score": state["best_score"], "epoch": state["best_epoch"], "state": state["best"]}
        start_epoch, elapsed = state["epoch"] + 1, state["seconds"]

    t0 = time.perf_counter() - elapsed
    for epochs_run, epoch in enumerate(range(start_epoch, last_epoch + 1), start=1):
        model.train()
        total, n_seen = 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch}/{cfg.epochs}", disable=not progress, leave=False)
        for xb, fb, yb, tb in bar:
            if cfg.augment:  # on the CPU, where its generator is
                xb = augment_batch(xb, aug_generator)
            xb, fb, yb, tb = (t.to(device, non_blocking=True) for t in (xb, fb, yb, tb))
            optimizer.zero_grad(set_to_none=True)
            out = _forward(model, xb, fb)
            loss = criterion(out, yb)
            if cfg.teacher:
                w = cfg.distill_weight
                loss = (1 - w) * loss + w * distillation_loss(out, tb, cfg.distill_temperature)
            loss.backward()
            optimizer.step()
            if average is not None:
                average.update_parameters(model)
            if scheduler is not None:
                scheduler.step()
            total += float(loss.detach()) * len(yb)
            n_seen += len(yb)
        row = {"epoch": epoch, "train_loss": total / n_seen}
        if average is not None and cfg.ema_bn == "recompute":
            judged = recompute_batchnorm(
                average.module, *loader.dataset.tensors[:2], cfg.batch_size
            )
        if val_beats is not None:
            row.update(_validate(judged, val_beats, val_features, cfg))
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        if on_epoch is not None:
            judged.eval()
            on_epoch(epoch, judged)
        if epoch == keep_epoch or row.get("val_selection_f1", -1.0) > best["score"]:
            best = {
                "score": row.get("val_selection_f1", -1.0),
                "epoch": epoch,
                "state": {k: v.detach().clone() for k, v in judged.state_dict().items()},
            }
        if progress and val_beats is not None:
            tqdm.write(
                f"epoch {epoch}: train loss {row['train_loss']:.4f}, "
                f"val loss {row['val_loss']:.4f}, val acc {row['val_accuracy']:.4f}, "
                f"val macro-F1 {row['val_macro_f1']:.4f}"
            )
        if ckpt_path is not None:
            _save_checkpoint(
                ckpt_path,
                {
                    "config": json.dumps(cfg.to_dict()),
                    "data": key,
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "average": average.state_dict() if average is not None else {},
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else {},
                    "generator": generator.get_state(),
                    "aug_generator": aug_generator.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": (
                        torch.cuda.get_rng_state(device)
                        if device.type == "cuda"
                        else torch.zeros(0, dtype=torch.uint8)
                    ),
                    "history": json.dumps(history),
                    "best": best["state"],
                    "best_score": best["score"],
                    "best_epoch": best["epoch"],
                    "seconds": row["seconds"],
                },
            )
        if cfg.patience and keep_epoch is None and epoch - best["epoch"] >= cfg.patience:
            break
        if stop_after is not None and epochs_run >= stop_after:
            raise KeyboardInterrupt(f"stopped after {epochs_run} epoch(s) as asked")

    model.load_state_dict(best["state"])
    model.cpu().eval()
    bias = (
        calibrate_class_bias(model, val_beats, cfg)
        if cfg.calibrate and val_beats is not None
        else None
    )
    return TrainResult(
        model=model,
        config=cfg,
        history=history,
        best_epoch=best["epoch"],
        seconds=time.perf_counter() - t0,
        n_parameters=count_parameters(model),
        class_bias=bias,
        device=describe_device(device),
    )


BIAS_GRID = np.round(np.arange(-1.0, 2.01, 0.25), 2)
"""Candidate logit offsets for :func:`calibrate_class_bias`; kept narrow because a few
validation records cannot support large prior shifts."""


def calibrate_class_bias(model: nn.Module, val: Beats, cfg: TrainConfig) -> list[float]:
    """Choose additive logit offsets per class on validation beats and fold them in.

    Coordinate ascent over :data:`BIAS_GRID` for the selection classes other than N
    (N stays at 0), two sweeps, maximising their mean F1 on validation. The offsets are
    added to the bias of the model's last linear layer.

    Returns
    -------
    list of float
        The offsets, one per class.
    """
    bias, _ = choose_class_offsets(predict_beat_set(model, val, cfg.feature_set), val.y, cfg)
    add_logit_offsets(model, bias)
    return bias


def choose_class_offsets(
    proba: np.ndarray, y: np.ndarray, cfg: TrainConfig
) -> tuple[list[float], float]:
    """The logit offsets of :func:`calibrate_class_bias` for given probabilities.

    Parameters
    ----------
    proba : ndarray, shape (n_beats, 5)
        Validation (or out-of-fold) class probabilities.
    y : ndarray, shape (n_beats,)
        Their labels.

    Returns
    -------
    offsets : list of float
        One per class (N's is 0).
    score : float
        Mean F1 of ``cfg.select_classes`` with the offsets applied.
    """
    from sklearn.metrics import f1_score

    logits = np.log(np.clip(proba, 1e-12, None))
    labels = _labels(cfg)

    def score(b):
        pred = (logits + b).argmax(1)
        return f1_score(y, pred, labels=labels, average="macro", zero_division=0)

    bias = np.zeros(len(CLASS_NAMES))
    best = score(bias)
    for _ in range(2):
        for k in [k for k in labels if k != 0]:
            for value in BIAS_GRID:
                trial = bias.copy()
                trial[k] = value
                s = score(trial)
                if s > best + 1e-9:
                    best, bias = s, trial
    return [float(b) for b in bias], float(best)


def cross_validate(
    cfg: TrainConfig,
    beats: Beats,
    progress: bool = True,
    workers: int | None = None,
    device: str = "auto",
) -> dict:
    """Choose the epoch and class offsets of ``cfg`` by record-fold cross-validation.

    The records of ``beats`` are split into ``cfg.cv_folds`` folds (drawn with
    ``cfg.fold_seed``, else ``cfg.seed``, see :func:`~ecg_utils.splits.record_folds`); a
    model is trained on all folds but one for every epoch of ``cfg`` (patience is not used)
    and predicts the held-out fold after each epoch. The out-of-fold probabilities of all
    folds are pooled per epoch: the epoch with the best selection F1
    (``cfg.select_classes``) is chosen, then, with ``cfg.calibrate``, offsets on the pooled
    probabilities of that epoch. Each beat is judged by a model that never saw its patient,
    and every training record is judged once: far steadier than one small validation split.

    Folds train in ``workers`` processes at once (default: as many as the CPU cores
    allow at ``cfg.threads`` threads each); the result does not depend on it. On a GPU
    (``device``) they train one after the other.

    Returns
    -------
    dict
        ``folds`` (records held out by each fold), ``history`` (pooled scores per epoch,
        train loss averaged over folds), ``epoch``, ``class_bias`` (None without
        ``calibrate``), ``score`` (selection F1 at that epoch, offsets applied),
        ``operating_points`` (``balanced``: those offsets, zeros without
        ``calibrate``; ``high``: see
        :func:`~ecg_utils.operating.high_sensitivity_offsets`), ``out_of_fold``
        (:func:`~ecg_utils.evaluation.classification_metrics` of the pooled predictions
        at that epoch, offsets applied), ``predictions`` (those labels, ``(n_beats,)``),
        ``proba`` (the pooled probabilities at that epoch without offsets,
        ``(n_beats, 5)``), ``fold_states`` (each fold's state dict at that epoch, without
        offsets, in the order of ``folds``: the models that never saw each fold's
        records), ``seconds``.
    """
    from .evaluation import classification_metrics
    from .splits import record_folds

    t0 = time.perf_counter()
    fold_seed = cfg.seed if cfg.fold_seed is None else cfg.fold_seed
    folds = record_folds(beats.y, beats.record, np.arange(len(beats)), cfg.cv_folds, fold_seed)
    jobs = [
        (cfg.to_dict(), beats.subset(np.setdiff1d(np.arange(len(beats)), held)), beats.subset(held))
        for held in folds
    ]
    where = resolve_device(device)
    if workers is None:
        workers = max(1, (os.cpu_count() or 1) // max(cfg.threads, 1))
    workers = min(workers, len(jobs)) if where.type == "cpu" else 1
    if workers > 1:
        ctx = multiprocessing.get_context("spawn")  # fork and OpenMP threads do not mix
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            outcomes = list(pool.map(_fold_outcome, *zip(*jobs, strict=True)))
    else:
        outcomes = [_fold_outcome(*job, progress=progress, device=str(where)) for job in jobs]
    proba = np.zeros((cfg.epochs, len(beats), len(CLASS_NAMES)), np.float32)
    for held, (fold_proba, _, _) in zip(folds, outcomes, strict=True):
        proba[:, held] = fold_proba
    train_loss = np.array([losses for _, losses, _ in outcomes])
    history = [
        {"epoch": e + 1, "train_loss": float(train_loss[:, e].mean())}
        | validation_scores(proba[e], beats.y, cfg)
        for e in range(cfg.epochs)
    ]
    best = max(range(cfg.epochs), key=lambda e: history[e]["val_selection_f1"])
    bias, score = None, history[best]["val_selection_f1"]
    if cfg.calibrate:
        bias, score = choose_class_offsets(proba[best], beats.y, cfg)
    logits = offset_logits(proba[best], bias)
    balanced = bias if bias is not None else [0.0] * len(CLASS_NAMES)
    return {
        "folds": [sorted(set(beats.record[f].tolist())) for f in folds],
        "history": history,
        "epoch": best + 1,
        "class_bias": bias,
        "score": score,
        "operating_points": {
            "balanced": balanced,
            "high": high_sensitivity_offsets(proba[best], beats.y, balanced),
        },
        "out_of_fold": classification_metrics(beats.y, logits.argmax(1)),
        "predictions": logits.argmax(1),
        "proba": proba[best],
        "fold_states": [states[best] for _, _, states in outcomes],
        "seconds": time.perf_counter() - t0,
    }


def _fold_outcome(
    cfg_dict: dict, rest: Beats, held_out: Beats, progress: bool = False, device: str = "cpu"
) -> tuple[np.ndarray, list[float], list[dict]]:
    """Train on ``rest`` and predict ``held_out`` after every epoch (one fold; runs in a
    worker process, hence the plain-dict configuration).

    Returns
    -------
    proba : ndarray, shape (epochs, n_held_out, 5)
    train_loss : list of float, one per epoch
    states : list of dict
        The model's state dict after each epoch.
    """
    cfg = TrainConfig.from_dict(cfg_dict)
    proba = np.zeros((cfg.epochs, len(held_out), len(CLASS_NAMES)), np.float32)
    states = []

    def keep(epoch, model):
        proba[epoch - 1] = predict_beat_set(model, held_out, cfg.feature_set)
        states.append({k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})

    # every epoch is judged by ``keep``: no validation inside train, no early stop
    fold = train(
        cfg,
        rest,
        None,
        progress=progress,
        keep_epoch=cfg.epochs,
        on_epoch=keep,
        device=device,
    )
    return proba, [row["train_loss"] for row in fold.history], states


def train_cross_validated(
    cfg: TrainConfig,
    beats: Beats,
    progress: bool = True,
    workers: int | None = None,
    device: str = "auto",
) -> TrainResult:
    """Cross-validate ``cfg`` on ``beats`` (:func:`cross_validate`), then train on all of them.

    The final model follows ``cfg``'s schedule up to the chosen epoch, on every record
    of ``beats``, and gets the chosen offsets. Its ``history`` is the cross-validation
    one; ``seconds`` is the final training alone (``cv["seconds"]`` the folds).
    """
    if cfg.cv_folds < 2:
        raise EcgError("train_cross_validated needs cfg.cv_folds >= 2")
    cv = cross_validate(cfg, beats, progress, workers, device)
    final = train(cfg, beats, None, progress=progress, keep_epoch=cv["epoch"], device=device)
    if cv["class_bias"] is not None:
        add_logit_offsets(final.model, cv["class_bias"])
    return dataclasses.replace(
        final,
        history=cv.pop("history"),
        class_bias=cv["class_bias"],
        cv=cv,
    )


def _cv_summary(cv: dict | None) -> dict | None:
    """What weights metadata keeps of a cross-validation (not its per-epoch history)."""
    if cv is None:
        return None
    return {k: cv.get(k) for k in ("folds", "epoch", "class_bias", "score", "seconds")}


def save_trained(result: TrainResult, path: str | Path, extra_meta: dict | None = None) -> None:
    """Save the best weights and metadata (architecture, config, history) beside them."""
    cfg = result.config
    meta = {
        "architecture": cfg.architecture,
        "model_args": model_arguments(cfg),
        "feature_set": cfg.feature_set,
        "train_config": cfg.to_dict(),
        "best_epoch": result.best_epoch,
        "train_seconds": round(result.seconds, 1),
        "n_parameters": result.n_parameters,
        "class_bias": result.class_bias,
        "cross_validation": _cv_summary(result.cv),
        "operating_points": (result.cv or {}).get("operating_points"),
        "environment": environment_info(),
        "device": result.device,
        **(extra_meta or {}),
    }
    save_model(result.model, path, meta)
