"""Execute a notebook top to bottom with nbclient and save it with its outputs.

Usage: ``python tools/run_notebook.py NOTEBOOK [OUTPUT]`` (OUTPUT defaults to NOTEBOOK).
The kernel runs in the current folder; parameters come from the environment and win over
the notebook's parameter cell (``ECG_QUICK=1`` for a smoke run, ``ECG_TRAIN_ALL=1`` to
run the whole study, ``ECG_REUSE_RESULTS=0`` to retrain what is committed, ``ECG_OUT``
for the output folder, ``ECG_DEVICE``, ``ECG_MITDB_DIR``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ecg_utils._io import atomic_open  # noqa: E402


def execute(path: Path, out: Path, timeout: int | None = None) -> None:
    """Run ``path`` and write it with its outputs to ``out``. No time limit per cell by
    default: the study cell runs for hours with ``ECG_TRAIN_ALL=1``, and a busy machine
    is slow, not stuck."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={})
    client.execute(cwd=str(Path.cwd()))
    with atomic_open(out, "w", encoding="utf-8") as handle:
        nbformat.write(nb, handle)


if __name__ == "__main__":
    src = Path(sys.argv[1])
    execute(src, Path(sys.argv[2]) if len(sys.argv) > 2 else src)
