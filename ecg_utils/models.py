"""Neural network models for beats of shape ``(batch, 1, 187)`` at 120 Hz."""

from __future__ import annotations

import torch
from torch import nn

from .relative_network import RelativeBeatCNN
from .trees import BoostedTrees, ByLeads, LinearBeatModel, PatientTrees


class ECG1DCNN(nn.Module):
    """The seed's two-layer 1D CNN, with its parameter names.

    Input ``(batch, 1, 187)`` beats in [0, 1] at 120 Hz; output ``(batch, num_classes)``
    logits. Parameter names (conv1, bn1, conv2, bn2, fc1, fc2) match the seed's
    ``ecg_cnn.pth`` so its state dict loads unchanged.
    """

    def __init__(self, num_classes: int = 5, dropout: float = 0.5):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 32, kernel_size=7, padding=3)
        self.bn1 = nn.BatchNorm1d(32)
        self.conv2 = nn.Conv1d(32, 64, kernel_size=5, padding=2)
        self.bn2 = nn.BatchNorm1d(64)
        self.pool = nn.MaxPool1d(2)
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(64 * 46, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(self.embed(x)))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The beat's representation before the last layer, ``(batch, 128)``."""
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = self.pool(torch.relu(self.bn2(self.conv2(x))))
        return torch.relu(self.fc1(x.flatten(1)))


class SqueezeExcite1d(nn.Module):
    """Channel gates from the time-averaged channels (Hu et al. 2018), for ``(batch, c, t)``."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=2)))))
        return x * gate.unsqueeze(2)


class ResBlock1d(nn.Module):
    """Two 1-D convolutions with a skip connection (He et al. 2016, as in Kachuee et al. 2018),
    optionally with squeeze-and-excitation gates on the residual branch."""

    def __init__(
        self,
        channels_in: int,
        channels_out: int,
        kernel: int = 5,
        stride: int = 1,
        se: bool = False,
    ):
        super().__init__()
        pad = kernel // 2
        self.conv1 = nn.Conv1d(channels_in, channels_out, kernel, stride, pad, bias=False)
        self.bn1 = nn.BatchNorm1d(channels_out)
        self.conv2 = nn.Conv1d(channels_out, channels_out, kernel, 1, pad, bias=False)
        self.bn2 = nn.BatchNorm1d(channels_out)
        self.se = SqueezeExcite1d(channels_out) if se else nn.Identity()
        self.skip = (
            nn.Identity()
            if stride == 1 and channels_in == channels_out
            else nn.Sequential(
                nn.Conv1d(channels_in, channels_out, 1, stride, bias=False),
                nn.BatchNorm1d(channels_out),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.se(self.bn2(self.conv2(out))) + self.skip(x))


WIDE_BINS = 4
"""Time bins the wide-window branch keeps (about 0.33 s each), so the head knows what
came before the R peak and what after."""


class ResNet1D(nn.Module):
    """A small residual 1D CNN for beats ``(batch, 1, 187)``, optionally with features.

    Parameters
    ----------
    num_classes : int
    width : int
        Channels of the first stage; stages double it twice.
    n_features : int
        Length of the per-beat feature vector (RR intervals, …) concatenated after
        pooling; 0 for a morphology-only model.
    wide : int
        How many of the feature vector's last columns are a waveform (the wide window
        around the R peak, 156 samples at 120 Hz): a second convolutional branch of the
        same shape reads them and keeps :data:`WIDE_BINS` time bins. 0: none.
    blocks : int
        Residual blocks per stage (three stages; the first block of the second and third
        halves the time axis).
    se : bool
        Squeeze-and-excitation gates in every block of the beat branch.
    dropout : float
        Dropout before the last layer.

    The defaults (one block a stage, no gates, dropout 0.2) are the project's original
    small network, whose saved weights keep loading.
    """

    def __init__(
        self,
        num_classes: int = 5,
        width: int = 32,
        n_features: int = 0,
        wide: int = 0,
        blocks: int = 1,
        se: bool = False,
        dropout: float = 0.2,
    ):
        super().__init__()
        if blocks < 1:
            raise ValueError(f"blocks must be >= 1, got {blocks}")
        if not 0 <= wide <= n_features:
            raise ValueError(f"wide ({wide}) must lie between 0 and n_features ({n_features})")
        self.n_features = n_features
        self.wide = wide
        self.stem = _stem(width)
        self.stages = _stages(width, blocks, se)
        if wide:
            self.wide_stem = _stem(width)
            self.wide_stages = nn.Sequential(
                ResBlock1d(width, width, stride=2),
                ResBlock1d(width, 2 * width, stride=2),
                ResBlock1d(2 * width, 4 * width, stride=2),
                nn.AdaptiveAvgPool1d(WIDE_BINS),
            )
        n_in = 4 * width + (n_features - wide) + (4 * width * WIDE_BINS if wide else 0)
        self.head = nn.Sequential(
            nn.Linear(n_in, 64),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(64, num_classes),
        )

    def forward(self, x: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        return self.head[3](self.head[2](self.embed(x, features)))

    def embed(self, x: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """The beat's representation before the last layer, ``(batch, 64)``: what the
        convolutions and the features say of it, after the head's hidden layer."""
        z = self.stages(self.stem(x)).mean(dim=2)
        if self.wide:
            scalars = features[:, : self.n_features - self.wide]
            waveform = features[:, self.n_features - self.wide :].unsqueeze(1)
            w = self.wide_stages(self.wide_stem(waveform)).flatten(1)
            z = torch.cat([z, scalars, w], dim=1)
        elif self.n_features:
            z = torch.cat([z, features], dim=1)
        return self.head[1](self.head[0](z))


def _stem(width: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(1, width, 7, padding=3, bias=False), nn.BatchNorm1d(width), nn.ReLU()
    )


def _stages(width: int, blocks: int = 1, se: bool = False) -> nn.Sequential:
    layers = []
    for c_in, c_out, stride in (
        (width, width, 1),
        (width, 2 * width, 2),
        (2 * width, 4 * width, 2),
    ):
        layers.append(ResBlock1d(c_in, c_out, stride=stride, se=se))
        layers.extend(ResBlock1d(c_out, c_out, se=se) for _ in range(blocks - 1))
    return nn.Sequential(*layers)


class Ensemble(nn.Module):
    """The average of several models' class probabilities (seeds of one recipe).

    Parameters
    ----------
    member : str
        Architecture of the members (a key of :data:`MODELS`).
    member_args : dict
        Their keyword arguments (all members alike).
    k : int
        Number of members.

    The output ``log(mean_i softmax(member_i(x, features))) + logit_offsets`` is a
    logit vector ``(batch, num_classes)``: its softmax is the members' mean probability
    shifted by the ensemble's own class offsets (a buffer, which
    :func:`add_logit_offsets` changes). The members carry no offsets of their own.
    """

    def __init__(self, member: str = "resnet1d", member_args: dict | None = None, k: int = 2):
        super().__init__()
        if member == "ensemble" or member not in MODELS:
            raise ValueError(f"unknown member architecture {member!r}")
        if k < 1:
            raise ValueError(f"an ensemble needs at least one member, got k={k}")
        args = dict(member_args or {})
        self.members = nn.ModuleList(build_model(member, **args) for _ in range(k))
        self.n_features = getattr(self.members[0], "n_features", 0)
        self.wide = getattr(self.members[0], "wide", 0)
        classes = args.get("num_classes", 5)
        self.register_buffer("logit_offsets", torch.zeros(classes))

    def forward(self, x: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        probs = [torch.softmax(logits(m, x, features), dim=1) for m in self.members]
        mean = torch.stack(probs).mean(dim=0)
        return torch.log(mean.clamp_min(1e-12)) + self.logit_offsets

    def embed(self, x: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """The members' representations side by side, ``(batch, k * d)``."""
        return torch.cat([embed(m, x, features) for m in self.members], dim=1)


def logits(model: nn.Module, x: torch.Tensor, features: torch.Tensor | None = None):
    """``model``'s output, with ``features`` passed only when the model takes them."""
    return model(x, features) if getattr(model, "n_features", 0) else model(x)


def embed(model: nn.Module, x: torch.Tensor, features: torch.Tensor | None = None):
    """``model.embed`` called as the model is (with features only when it takes them)."""
    if getattr(model, "n_features", 0):
        return model.embed(x, features)
    return model.embed(x)


class PatientAdapted(nn.Module):
    """A model plus a memory of one patient's labelled beats (nearest neighbours).

    The output mixes the base model's probabilities with the vote of the ``k`` labelled
    beats nearest to each beat in the base model's representation (:func:`embed`,
    standardised by the memory's own mean and spread):
    ``log((1 - weight) * softmax(base(x)) + weight * knn(x))``. A beat of this patient
    that looks like one the analyst labelled takes that label; one unlike any keeps
    mostly the base model's judgement (its vote is spread by the smoothing).

    Parameters
    ----------
    base : str
        Architecture of the base model (a key of :data:`MODELS`).
    base_args : dict
        Its keyword arguments.
    n_labelled : int
        Labelled beats in the memory.
    embed_dim : int
        Length of the base model's representation.
    k : int
        Neighbours that vote.
    weight : float
        Share of the vote in the output probabilities.
    """

    def __init__(
        self,
        base: str = "resnet1d",
        base_args: dict | None = None,
        n_labelled: int = 1,
        embed_dim: int = 64,
        k: int = 5,
        weight: float = 0.5,
    ):
        super().__init__()
        if base == "patient" or base not in MODELS:
            raise ValueError(f"unknown base architecture {base!r}")
        self.base = build_model(base, **dict(base_args or {}))
        self.n_features = getattr(self.base, "n_features", 0)
        self.wide = getattr(self.base, "wide", 0)
        self.k, self.weight = int(k), float(weight)
        self.n_classes = [m for m in self.base.modules() if isinstance(m, nn.Linear)][
            -1
        ].out_features
        self.register_buffer("memory", torch.zeros(n_labelled, embed_dim))
        self.register_buffer("memory_labels", torch.zeros(n_labelled, dtype=torch.long))
        self.register_buffer("center", torch.zeros(embed_dim))
        self.register_buffer("scale", torch.ones(embed_dim))

    def remember(self, embeddings: torch.Tensor, labels: torch.Tensor) -> None:
        """Store the labelled beats' representations ``(n_labelled, embed_dim)``."""
        with torch.no_grad():
            self.center.copy_(embeddings.mean(0))
            self.scale.copy_(embeddings.std(0, unbiased=False).clamp_min(1e-3))
            self.memory.copy_((embeddings - self.center) / self.scale)
            self.memory_labels.copy_(labels)

    def vote(self, x: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """The nearest labelled beats' class shares ``(batch, classes)``, smoothed."""
        z = (embed(self.base, x, features) - self.center) / self.scale
        k = min(self.k, len(self.memory))
        nearest = torch.cdist(z, self.memory).topk(k, largest=False).indices
        votes = nn.functional.one_hot(self.memory_labels[nearest], self.n_classes)
        return (votes.sum(1).float() + 0.1) / (k + 0.1 * self.n_classes)

    def forward(self, x: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        base = torch.softmax(logits(self.base, x, features), 1)
        mixed = (1 - self.weight) * base + self.weight * self.vote(x, features)
        return torch.log(mixed.clamp_min(1e-12))


def add_logit_offsets(model: nn.Module, offsets) -> None:
    """Add per-class offsets to the output logits, in place: to an ensemble's
    ``logit_offsets``, else to the last linear layer's bias."""
    target = getattr(model, "logit_offsets", None)
    if target is None:
        target = [m for m in model.modules() if isinstance(m, nn.Linear)][-1].bias
    with torch.no_grad():
        target += torch.as_tensor(offsets, dtype=target.dtype)


MODELS: dict[str, type[nn.Module]] = {
    "ecg1dcnn": ECG1DCNN,
    "resnet1d": ResNet1D,
    "ensemble": Ensemble,
    "patient": PatientAdapted,
    "trees": BoostedTrees,
    "linear": LinearBeatModel,
    "by_leads": ByLeads,
    "relative_cnn": RelativeBeatCNN,
    "patient_trees": PatientTrees,
}
"""Architecture name -> class, as recorded in weight metadata."""


def build_model(architecture: str, **model_args) -> nn.Module:
    """Instantiate a registered architecture by name."""
    if architecture not in MODELS:
        raise ValueError(f"unknown architecture {architecture!r}; known: {', '.join(MODELS)}")
    return MODELS[architecture](**model_args)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
