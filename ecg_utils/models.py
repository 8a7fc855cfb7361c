"""Neural network models for beats of shape ``(batch, 1, 187)`` at 120 Hz."""

from __future__ import annotations

import torch
from torch import nn


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
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = self.pool(torch.relu(self.bn2(self.conv2(x))))
        x = self.dropout(torch.relu(self.fc1(x.flatten(1))))
        return self.fc2(x)


class ResBlock1d(nn.Module):
    """Two 1-D convolutions with a skip connection (He et al. 2016, as in Kachuee et al. 2018)."""

    def __init__(self, channels_in: int, channels_out: int, kernel: int = 5, stride: int = 1):
        super().__init__()
        pad = kernel // 2
        self.conv1 = nn.Conv1d(channels_in, channels_out, kernel, stride, pad, bias=False)
        self.bn1 = nn.BatchNorm1d(channels_out)
        self.conv2 = nn.Conv1d(channels_out, channels_out, kernel, 1, pad, bias=False)
        self.bn2 = nn.BatchNorm1d(channels_out)
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
        return torch.relu(self.bn2(self.conv2(out)) + self.skip(x))


class ResNet1D(nn.Module):
    """A small residual 1D CNN for beats ``(batch, 1, 187)``, optionally with RR features.

    Parameters
    ----------
    num_classes : int
    width : int
        Channels of the first stage; stages double it twice.
    n_features : int
        Length of the per-beat feature vector (RR intervals, …) concatenated after
        pooling; 0 for a morphology-only model.
    """

    def __init__(self, num_classes: int = 5, width: int = 32, n_features: int = 0):
        super().__init__()
        self.n_features = n_features
        self.stem = nn.Sequential(
            nn.Conv1d(1, width, 7, padding=3, bias=False), nn.BatchNorm1d(width), nn.ReLU()
        )
        self.stages = nn.Sequential(
            ResBlock1d(width, width),
            ResBlock1d(width, 2 * width, stride=2),
            ResBlock1d(2 * width, 4 * width, stride=2),
        )
        self.head = nn.Sequential(
            nn.Linear(4 * width + n_features, 64),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(64, num_classes),
        )

    def forward(self, x: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        z = self.stages(self.stem(x)).mean(dim=2)
        if self.n_features:
            z = torch.cat([z, features], dim=1)
        return self.head(z)


def add_logit_offsets(model: nn.Module, offsets) -> None:
    """Add per-class offsets to the output logits, in place, via the last layer's bias."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.bias += torch.as_tensor(offsets, dtype=last.bias.dtype)


MODELS: dict[str, type[nn.Module]] = {"ecg1dcnn": ECG1DCNN, "resnet1d": ResNet1D}
"""Architecture name -> class, as recorded in weight metadata."""


def build_model(architecture: str, **model_args) -> nn.Module:
    """Instantiate a registered architecture by name."""
    if architecture not in MODELS:
        raise ValueError(f"unknown architecture {architecture!r}; known: {', '.join(MODELS)}")
    return MODELS[architecture](**model_args)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
