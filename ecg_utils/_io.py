"""Small helpers shared by every module: user-facing errors and atomic writes."""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


class EcgError(Exception):
    """A problem with the user's input, reported as one line without a traceback.

    The message names the file (when there is one) and what is wrong, for example
    ``"data/100.hea: sampling frequency must be positive, got 0"``.
    """

    def __init__(self, problem: str, path: str | os.PathLike | None = None):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{path}: {problem}")


FS_MIN, FS_MAX = 50.0, 20_000.0
"""Sampling rates, in Hz, that the project reads and classifies: the one rule for every
recording (WFDB headers, samples given with ``--fs``, arrays given to the API)."""


def check_fs(fs, path: str | os.PathLike | None = None) -> float:
    """``fs`` as a float when it is a sampling rate in [:data:`FS_MIN`, :data:`FS_MAX`] Hz.

    Raises
    ------
    EcgError
        Naming ``path`` when given, for anything else.
    """
    import math

    try:
        value = float(str(fs).split("/")[0]) if isinstance(fs, str) else float(fs)
    except (TypeError, ValueError):
        raise EcgError(f"sampling rate must be a number, got {fs!r}", path) from None
    if not (math.isfinite(value) and FS_MIN <= value <= FS_MAX):
        raise EcgError(
            f"sampling rate must be between {FS_MIN:g} and {FS_MAX:g} Hz, got {fs}", path
        )
    return value


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    Use it for libraries that want a file name (``torch.save``, ``savefig``). If the
    block raises (``KeyboardInterrupt`` included), the temporary file is removed and any
    existing ``path`` is kept, so a failed run never leaves a half-written output behind.
    A process killed outright (``SIGKILL``) cannot clean up: its temporary file
    (``.name.<pid>.<random>.tmp``) is removed by the next write to the same ``path``
    once that process no longer exists.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        # mkstemp makes files private (0600); outputs get the usual umask permissions
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def _remove_stale_temps(target: Path) -> None:
    """Delete temporary files of ``target`` left by processes that no longer run."""
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return
    prefix = f".{target.name}."
    for tmp in target.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = tmp.name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_exists(int(pid)):
            with contextlib.suppress(OSError):
                tmp.unlink()


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists but belongs to someone else
        return True
    return True


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator:
    """Open a temporary file beside ``path`` for writing; rename it onto ``path`` on success."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` (UTF-8) through a temporary file."""
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def environment_info() -> dict:
    """Python, platform, package versions and git commit, for results and weights metadata.

    Returns
    -------
    dict
        ``python``, ``platform``, ``packages`` (name -> version or None), ``torch_threads``,
        ``git_commit`` (None outside a git checkout) and ``git_dirty`` (uncommitted
        changes to tracked files; None when unknown). Git is asked about the folder of
        this package, not the current directory.
    """
    import importlib.metadata as md
    import platform
    import subprocess

    versions = {}
    for pkg in ("ecg-classification", "numpy", "scipy", "torch", "wfdb", "scikit-learn", "pandas"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    if versions["ecg-classification"] is None:  # running from a checkout, not installed
        from . import __version__

        versions["ecg-classification"] = __version__
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=here, capture_output=True, text=True, check=True, timeout=5
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = git("rev-parse", "HEAD") or None
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    try:
        import torch

        threads = torch.get_num_threads()
    except ImportError:  # pragma: no cover - torch is a dependency
        threads = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "torch_threads": threads,
        "git_commit": commit,
        "git_dirty": None if status is None else bool(status),
    }


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 (hex) of a file's bytes, read a megabyte at a time: the one checksum of
    files (downloads, weights, recordings, teachers)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
