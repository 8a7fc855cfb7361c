"""Where models train and run: ``auto``, ``cpu``, ``cuda`` (``cuda:N``) or ``mps``.

One rule for every command (``--device``) and function (``device=``): ``auto`` takes a
CUDA GPU when PyTorch sees one, else Apple's ``mps``, else the CPU; a device that was
asked for by name but is not there is an error, never a silent fall back to the CPU.

Determinism. On the CPU, results are bit-identical from run to run, as they always
were. On CUDA, the seeds are the same and cuDNN is told to pick deterministic
algorithms (``torch.backends.cudnn.deterministic``, no autotuning), and
``torch.use_deterministic_algorithms(True, warn_only=True)`` warns about any operation
that has no deterministic CUDA kernel; ``CUBLAS_WORKSPACE_CONFIG`` is set for
deterministic cuBLAS when it is not set already. The one such operation this project's
models are known to use is the backward pass of ``AdaptiveAvgPool1d`` (the wide-window
branch of ``ResNet1D``, as ``adaptive_avg_pool2d_backward_cuda``): runs that use it can
differ in the last bits from run to run. CUDA results differ from the CPU's in any case
(other kernels, other summation order). Mixed precision is not used:
no GPU was available to check that its results stay within the same bootstrap
intervals.
"""

from __future__ import annotations

import copy
import os
import time
import weakref

import torch
from torch import nn

from ._io import EcgError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
"""Names ``--device`` accepts (``cuda:N`` picks one of several GPUs)."""


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """The torch device for a name.

    Parameters
    ----------
    name : str, torch.device or None
        ``"auto"`` (or None): CUDA when available, else MPS, else CPU. ``"cpu"``,
        ``"cuda"``, ``"cuda:N"``, ``"mps"``: that device, which must be available.

    Raises
    ------
    EcgError
        For an unknown name or a device this machine does not have.
    """
    if isinstance(name, torch.device):
        name = str(name)
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind, _, index = name.partition(":")
    if kind not in DEVICE_CHOICES[1:] or (index and not (kind == "cuda" and index.isdigit())):
        raise EcgError(f"unknown device {name!r}; choose auto, cpu, cuda, cuda:N or mps")
    if kind == "cuda":
        # cuBLAS reads its workspace size when it starts: set before any CUDA work, so
        # that the deterministic kernels asked for by make_deterministic() take effect
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        if not torch.cuda.is_available():
            raise EcgError("device 'cuda' asked for, but PyTorch sees no CUDA GPU here")
        if index and int(index) >= torch.cuda.device_count():
            raise EcgError(
                f"device {name!r} asked for, but there are {torch.cuda.device_count()} GPU(s)"
            )
    if kind == "mps" and not _mps_available():
        raise EcgError("device 'mps' asked for, but PyTorch has no MPS backend here")
    return torch.device(name)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def make_deterministic(device: torch.device) -> None:
    """Ask PyTorch for deterministic kernels on ``device`` (nothing to do on the CPU).

    On CUDA this stays on for the rest of the process (``torch.use_deterministic_algorithms``
    is global); ``CUBLAS_WORKSPACE_CONFIG`` is set by :func:`resolve_device`.
    """
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)


def describe_device(device: torch.device) -> dict:
    """What results and weights metadata record about the device: its type and name."""
    info = {"type": device.type, "name": "cpu", "torch": torch.__version__}
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    elif device.type == "mps":
        info["name"] = "Apple MPS"
    else:
        info["threads"] = torch.get_num_threads()
    return info


def device_phrase(info: dict | None, threads: int | None = None) -> str:
    """A :func:`describe_device` record in words, for reports: ``"the CPU (2 threads)"``,
    ``"a GPU (NVIDIA H200)"``, ``"Apple MPS"``; ``threads`` when the record has none."""
    info = info or {}
    if info.get("type") == "cuda":
        return f"a GPU ({info.get('name')})"
    if info.get("type") == "mps":
        return "Apple MPS"
    threads = info.get("threads") or threads
    return f"the CPU ({threads} threads)" if threads else "the CPU"


_copies: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def on_device(model: nn.Module, device: str | torch.device | None = "auto") -> nn.Module:
    """``model`` ready to run on ``device``: the model itself on the CPU (where loaded
    models live), else an eval-mode copy on the device, made once per model and device
    (so the cached CPU model that other callers share is never moved)."""
    where = resolve_device(device)
    if where.type == "cpu":
        return model
    copies = _copies.setdefault(model, {})
    if str(where) not in copies:
        copies[str(where)] = copy.deepcopy(model).to(where).eval()
    return copies[str(where)]


SPEED_SECONDS = 1.5
"""How long :func:`measure_speed` trains its probe model (after one warm-up step)."""


def measure_speed(device: str = "auto") -> float:
    """Training steps per second of a fixed probe on ``device``.

    The probe is the project's small ResNet1D (width 16) on random beats, batches of 256
    ``(256, 1, 187)``, Adam, for about :data:`SPEED_SECONDS` s; at the threads torch uses.
    Torch's global random state (the CPU's, and the GPU's when it runs on one) is left as
    it was.
    """
    where = resolve_device(device)
    forked = [where] if where.type == "cuda" else []  # its dropout draws on the device
    with torch.random.fork_rng(devices=forked):
        return _probe_speed(where)


def _probe_speed(where: torch.device) -> float:
    from .models import ResNet1D

    generator = torch.Generator().manual_seed(0)
    model = ResNet1D(width=16).to(where)
    optimizer = torch.optim.Adam(model.parameters())
    x = torch.rand((256, 1, 187), generator=generator).to(where)
    y = torch.randint(0, 5, (256,), generator=generator).to(where)

    def step():
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    step()
    _synchronize(where)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < SPEED_SECONDS:
        step()
        steps += 1
    _synchronize(where)
    return steps / (time.perf_counter() - t0)


def _synchronize(where: torch.device) -> None:
    """Wait for the device's queued work (GPU kernels run asynchronously)."""
    if where.type == "cuda":
        torch.cuda.synchronize(where)
    elif where.type == "mps":
        torch.mps.synchronize()
